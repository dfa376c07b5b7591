//! What the host has to give: the memory available, and byte counts written for people.
//! A leaf module, so that data loading and the run-size estimate ([`crate::memory`]) can
//! both ask without importing each other.

/// Memory the kernel says is available to a new allocation (`MemAvailable`), in bytes;
/// `None` where there is no `/proc/meminfo`.
pub fn available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Bytes as KB, MB, GB or TB.
pub fn human(bytes: f64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    format!("{v:.1} {}", units[u])
}
