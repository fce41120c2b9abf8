//! Facts about this process and machine that runs, leases and connections record: the host's name, and whether a
//! recorded process still runs.

/// This machine's name, as leases and `pg_stat_activity` record it.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this machine".to_owned())
}

/// Whether a process still runs (Linux: /proc; elsewhere every recorded process is taken as alive, so a run is
/// marked interrupted only where that can be told).
pub fn alive(pid: i64) -> bool {
    if cfg!(target_os = "linux") {
        std::path::Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}
