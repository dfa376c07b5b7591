//! Learning-rate schedules, evaluated per optimisation step.

/// Learning rate at `step` of `total`: linear warm-up over `warmup` steps from 0, then
/// cosine decay `0.5 * base * (1 + cos(pi * t / T))` over the remaining steps (as the
/// PyTorch reference sets it per step), or constant.
pub fn learning_rate(base: f64, cosine: bool, step: usize, total: usize, warmup: usize) -> f64 {
    if step < warmup {
        return base * (step + 1) as f64 / warmup as f64;
    }
    if !cosine || total <= warmup {
        return base;
    }
    let t = (step - warmup) as f64 / (total - warmup) as f64;
    0.5 * base * (1.0 + (std::f64::consts::PI * t).cos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_starts_at_base_and_halves_midway() {
        assert_eq!(learning_rate(0.06, true, 0, 100, 0), 0.06);
        assert!((learning_rate(0.06, true, 50, 100, 0) - 0.03).abs() < 1e-12);
        assert!(learning_rate(0.06, true, 99, 100, 0) < 1e-4);
    }

    #[test]
    fn warmup_rises_linearly() {
        assert!((learning_rate(1.0, true, 4, 100, 10) - 0.5).abs() < 1e-12);
        assert_eq!(learning_rate(1.0, false, 50, 100, 10), 1.0);
    }
}
