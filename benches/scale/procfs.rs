//! What /proc says about a process: its CPU time and its memory.

use serde::Serialize;

use super::Res;

/// Clock ticks a second in /proc/PID/stat (`getconf CLK_TCK`; 100 on Linux).
pub fn clk_tck() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a process, all its threads, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Res<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces: count after its ')'.
    let rest = stat.rsplit_once(')').ok_or("odd /proc stat")?.1;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11).ok_or("short /proc stat")?.parse()?;
    let stime: u64 = fields.get(12).ok_or("short /proc stat")?.parse()?;
    Ok(utime + stime)
}

/// The CPU ticks of `root` and of every process whose parent it is (a
/// PostgreSQL server: its postmaster and the backends serving the
/// connections). A process that ended meanwhile no longer counts, so a
/// window over it must span processes that live through it, as a
/// store's pooled connections do.
pub fn tree_ticks(root: u32) -> Res<u64> {
    let mut total = cpu_ticks(root)?;
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if parent_of(pid) == Some(root) {
            total += cpu_ticks(pid).unwrap_or(0);
        }
    }
    Ok(total)
}

/// The parent of a process, if it still runs.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    rest.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// This process's CPU ticks.
pub fn own_ticks() -> Res<u64> {
    cpu_ticks(std::process::id())
}

/// A process's resident memory, in bytes, from /proc/PID/status.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Memory {
    /// `VmRSS`: all resident pages.
    pub rss: u64,
    /// `RssAnon`: resident anonymous pages (the heap, stacks): what the
    /// process itself holds, apart from file pages the kernel can drop.
    pub anon: u64,
    /// `RssFile`: resident file-backed pages (the binary, mapped files).
    pub file: u64,
    /// `VmHWM`: the peak of `VmRSS` since the process started.
    pub peak: u64,
}

impl Memory {
    pub fn of(pid: u32) -> Res<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| -> Res<u64> {
            let line = status
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .ok_or_else(|| format!("/proc/{pid}/status has no {name}"))?;
            let kb: u64 = line
                .split_whitespace()
                .next()
                .ok_or("empty /proc status field")?
                .parse()?;
            Ok(kb * 1024)
        };
        Ok(Self {
            rss: field("VmRSS")?,
            anon: field("RssAnon")?,
            file: field("RssFile")?,
            peak: field("VmHWM")?,
        })
    }

    /// "RSS 41.2 MB (anon 30.1 MB)".
    pub fn show(&self) -> String {
        format!("RSS {} (anon {})", mb(self.rss), mb(self.anon))
    }
}

pub fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_default()
}
