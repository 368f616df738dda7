//! The environment the numbers were measured in, read off the machine.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use super::report::Environment;

/// Reads the environment; `exe` is the gnapd binary the instances run.
pub fn read(exe: &Path, peers: BTreeMap<String, String>) -> Environment {
    Environment {
        gnapd_version: env!("CARGO_PKG_VERSION").to_owned(),
        commit: commit_of(exe),
        optimized_build: !cfg!(debug_assertions),
        cpu_model: cpu_model().unwrap_or_else(|| "unknown".to_owned()),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        kernel: read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".to_owned()),
        os: os_name().unwrap_or_else(|| "unknown".to_owned()),
        load_average: read_trimmed("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default(),
        peers,
    }
}

/// The commit of the git checkout `exe` sits in (`target/…/gnapd`), with
/// `+changes` when the work tree differs from it: the binary's source as
/// far as the tool can tell (it cannot see an edit made after the build).
fn commit_of(exe: &Path) -> Option<String> {
    let dir = exe.parent()?;
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "HEAD"]).filter(|c| c.len() == 40)?;
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty {
        format!("{commit}+changes")
    } else {
        commit
    })
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

fn os_name() -> Option<String> {
    let release = std::fs::read_to_string("/etc/os-release").ok()?;
    release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_is_described() {
        let env = read(Path::new("/nonexistent/gnapd"), BTreeMap::new());
        assert!(env.cpus >= 1);
        assert_ne!(env.kernel, "unknown");
        assert!(env.commit.is_none());
    }
}
