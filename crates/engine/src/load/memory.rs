//! How much memory this machine has, and how much a new allocation can use
//! (`MemAvailable`: free memory plus the caches the kernel can drop).

fn meminfo(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
}

/// The machine's memory, in bytes (None where /proc/meminfo is absent).
pub fn total() -> Option<u64> {
    meminfo("MemTotal")
}

/// Memory a new allocation can use now, in bytes.
pub fn available() -> Option<u64> {
    meminfo("MemAvailable")
}

/// Bytes in GiB for messages, e.g. "15.0 GiB".
pub fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_machine() {
        if std::path::Path::new("/proc/meminfo").exists() {
            let (t, a) = (super::total().unwrap(), super::available().unwrap());
            assert!(t > 0 && a <= t, "{a} of {t}");
        }
    }
}
