//! `contrastive train`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;

use anyhow::{bail, Result};
use clap::Args;

use contrastive::train::{self, Progress, TrainOptions};
use contrastive::Config;

#[derive(Args)]
pub struct TrainArgs {
    /// TOML config: a preset from configs/ or your own (see `contrastive presets`).
    #[arg(long, short, required_unless_present = "resume")]
    config: Option<PathBuf>,
    /// Override a config value, e.g. `--set train.epochs=3` (repeatable); the value is
    /// TOML (numbers, booleans, [lists], "strings") or a bare string.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Run directory (default: runs/<config name>, numbered if it exists). It receives
    /// config.toml (resolved), metrics.jsonl, checkpoints/.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in RUN_DIR from its last intact checkpoint, exactly as if it had
    /// not stopped (its config.toml is used; --config and --set are not allowed).
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["config", "set", "out"])]
    resume: Option<PathBuf>,
    /// Empty --out first when it holds an earlier run (without it, a directory that holds
    /// anything is refused; a folder that holds no run is never emptied).
    #[arg(long, requires = "out")]
    overwrite: bool,
    /// Print nothing while training.
    #[arg(long, short)]
    quiet: bool,
    /// With --resume: continue a run trained on another number of MPI ranks (inexactly:
    /// per-rank batch-norm statistics and float sums differ from the uninterrupted run).
    #[arg(long, requires = "resume")]
    any_ranks: bool,
}

pub fn run(a: TrainArgs) -> Result<()> {
    let world = contrastive::dist::world();
    let progress = if a.quiet || !world.is_root() {
        Progress::Quiet
    } else {
        Progress::auto()
    };
    let mut opts = TrainOptions::new(progress);
    opts.overwrite = a.overwrite;
    opts.any_ranks = a.any_ranks;
    opts.stop = Some(stop_on_signals()?);
    if world.size() > 1 {
        report_rank_on_term(world.rank(), world.size())?;
    }
    let out = match (a.resume, a.config) {
        (Some(dir), _) => train::resume(&dir, &opts)?,
        (None, Some(config)) => {
            let cfg = Config::load(&config, &a.set)?;
            let dir = a.out.unwrap_or_else(|| fresh_run_dir(&config));
            train::run(&cfg, &dir, &opts)?
        }
        (None, None) => bail!("give --config FILE or --resume RUN_DIR"),
    };
    if !world.is_root() {
        return Ok(()); // rank 0 reports
    }
    println!("run directory: {}", out.dir.display());
    match out.final_loss {
        Some(loss) => println!(
            "training: {:.0} images/s, final loss {loss:.4}",
            out.images_per_s
        ),
        None => println!("training: already finished, evaluated again"),
    }
    println!(
        "{:<24} {:>9} {:>12}",
        "representation", "kNN top-1", "linear top-1"
    );
    let row = |name: &str, s: &contrastive::eval::Scores| {
        let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
        println!(
            "{name:<24} {:>9} {:>12}",
            show(s.knn_top1),
            show(s.linear_top1)
        );
    };
    if let Some(b) = &out.baseline {
        row("raw inputs", b);
    }
    if let Some(r) = &out.random_init {
        row("random-init encoder (h)", r);
    }
    row("trained encoder (h)", &out.scores);
    if let Some(why) = &out.unlabelled {
        println!("{why}");
    }
    Ok(())
}

/// A flag that the first SIGINT or SIGTERM sets to its number, so that training stops
/// after its step with a checkpoint; a second one exits at once with status 128 + signal.
pub(super) fn stop_on_signals() -> Result<Arc<AtomicUsize>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = Arc::new(AtomicUsize::new(0));
    for signal in [SIGINT, SIGTERM] {
        let asked = Arc::new(AtomicBool::new(false));
        // registered first, so it sees `asked` still false on the first signal
        signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, asked.clone())?;
        signal_hook::flag::register(signal, asked)?;
        signal_hook::flag::register_usize(signal, stop.clone(), signal as usize)?;
    }
    Ok(stop)
}

/// Under mpirun, a rank that the launcher ends (because another rank failed, or mpirun
/// was interrupted) says which rank it is and at which step, in one line on stderr. The
/// handler only formats into a stack buffer and calls write(2): async-signal-safe.
fn report_rank_on_term(rank: usize, size: usize) -> Result<()> {
    use signal_hook::consts::SIGTERM;
    let action = move || {
        let mut buf = [0u8; 192];
        let mut len = 0;
        let mut put = |bytes: &[u8]| {
            let n = bytes.len().min(buf.len() - len);
            buf[len..len + n].copy_from_slice(&bytes[..n]);
            len += n;
        };
        put(b"error: rank ");
        put(digits(rank).as_slice());
        put(b" of ");
        put(digits(size).as_slice());
        put(b" ended by mpirun during step ");
        put(digits(contrastive::dist::current_step()).as_slice());
        put(b" (another rank stopped); --resume continues from the last checkpoint\n");
        // SAFETY: write(2) on stderr from a signal handler is async-signal-safe.
        unsafe {
            libc::write(2, buf.as_ptr().cast(), len);
        }
    };
    // SAFETY: the action allocates nothing, takes no lock and calls only write(2).
    unsafe { signal_hook::low_level::register(SIGTERM, action) }?;
    Ok(())
}

/// The decimal digits of `n`, in a fixed buffer (no allocation: used in a signal handler).
fn digits(mut n: usize) -> Digits {
    let mut d = Digits([0; 20], 20);
    loop {
        d.1 -= 1;
        d.0[d.1] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return d;
        }
    }
}

struct Digits([u8; 20], usize);

impl Digits {
    fn as_slice(&self) -> &[u8] {
        &self.0[self.1..]
    }
}

/// `runs/<stem>`, or `runs/<stem>-N` for the first N that does not exist yet.
fn fresh_run_dir(config: &std::path::Path) -> PathBuf {
    let stem = config.file_stem().and_then(|s| s.to_str()).unwrap_or("run");
    let base = PathBuf::from("runs").join(stem);
    if !base.exists() {
        return base;
    }
    (2..)
        .map(|n| PathBuf::from("runs").join(format!("{stem}-{n}")))
        .find(|p| !p.exists())
        .unwrap_or(base)
}
