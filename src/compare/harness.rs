//! The processes a comparison runs against, all on loopback: gnapd
//! instances (this very binary, `serve`, each on a fresh data dir with its
//! metrics on a listener of their own) and, in this process on a thread of
//! its own, the upstream MCP server ([`super::upstream`]).

use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::probe::ServerProbe;

/// How long an instance may take to say where it listens.
const START: Duration = Duration::from_secs(30);

/// Why the harness could not start something.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HarnessError(pub String);

/// How to start one gnapd instance.
#[derive(Debug, Clone, Default)]
pub struct InstanceSpec {
    /// A name for its data dir and log (`auto`, `interactive`, ...).
    pub name: String,
    /// Flags after `serve` (`--dev`, `--require-interaction`, ...).
    pub flags: Vec<String>,
    /// TOML appended to the generated config file.
    pub config: String,
    /// Where it listens (None: a port the OS picks). An instance whose URL
    /// another process must know before it starts (the external AS names
    /// the gateway's resources) gets one chosen ahead ([`free_port`]).
    pub listen: Option<SocketAddr>,
}

/// A running gnapd instance; stopped when dropped.
#[derive(Debug)]
pub struct Instance {
    /// Its name.
    pub name: String,
    /// `http://127.0.0.1:PORT`: the AS, the OAuth face and the gateway.
    pub base: String,
    /// The grant endpoint it printed.
    pub grant_endpoint: String,
    /// Its data dir.
    pub data_dir: PathBuf,
    /// Its metrics URL.
    pub metrics_url: String,
    /// Its stderr log.
    pub log: PathBuf,
    child: Child,
}

impl Instance {
    /// Starts `exe serve` (`exe`: a gnapd binary, usually this one) for
    /// `spec` under `work` (which holds its data dir, config and log), with
    /// `upstream_config` (the `[[upstream]]` tables) in its config file.
    ///
    /// The metrics port is picked free just before gnapd binds it; should
    /// another process take it in between ("Address already in use"), the
    /// instance is started again on a fresh data dir with another port.
    pub fn start(
        exe: &Path,
        work: &Path,
        spec: &InstanceSpec,
        upstream_config: &str,
    ) -> Result<Self, HarnessError> {
        const TRIES: usize = 5;
        let mut tries = 1;
        loop {
            match Self::start_once(exe, work, spec, upstream_config) {
                Err(e) if tries < TRIES && e.0.contains("Address already in use") => {
                    tries += 1;
                    let _ = std::fs::remove_dir_all(work.join(&spec.name));
                }
                outcome => return outcome,
            }
        }
    }

    fn start_once(
        exe: &Path,
        work: &Path,
        spec: &InstanceSpec,
        upstream_config: &str,
    ) -> Result<Self, HarnessError> {
        let err = |what: &str, e: &dyn std::fmt::Display| {
            HarnessError(format!("instance {}: {what}: {e}", spec.name))
        };
        let dir = work.join(&spec.name);
        std::fs::create_dir_all(&dir).map_err(|e| err("data dir", &e))?;
        let data_dir = dir.join("data");
        let metrics = free_port().map_err(|e| err("a free port", &e))?;
        let config = dir.join("gnapd.toml");
        std::fs::write(
            &config,
            format!(
                "metrics_listen = \"{metrics}\"\n{}\n{upstream_config}\n",
                spec.config
            ),
        )
        .map_err(|e| err("config", &e))?;
        let log = dir.join("gnapd.log");
        let log_file = std::fs::File::create(&log).map_err(|e| err("log", &e))?;
        let mut child = Command::new(exe)
            .arg("serve")
            .arg("--listen")
            .arg(
                spec.listen
                    .map_or_else(|| "127.0.0.1:0".to_owned(), |a| a.to_string()),
            )
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--config")
            .arg(&config)
            .args(&spec.flags)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .map_err(|e| err("spawn", &e))?;
        let first = first_line(&mut child, START).ok_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            HarnessError(format!(
                "instance {} did not start; its log:\n{}",
                spec.name,
                tail.lines().rev().take(20).collect::<Vec<_>>().join("\n")
            ))
        })?;
        let (addr, grant_endpoint) = parse_listening(&first).ok_or_else(|| {
            HarnessError(format!(
                "instance {}: unexpected first line {first:?}",
                spec.name
            ))
        })?;
        Ok(Self {
            name: spec.name.clone(),
            base: format!("http://{addr}"),
            grant_endpoint,
            data_dir,
            metrics_url: format!("http://{metrics}/metrics"),
            log,
            child,
        })
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the probes read of it.
    pub fn probe(&self) -> ServerProbe {
        ServerProbe {
            pid: self.pid(),
            metrics_url: self.metrics_url.clone(),
            data_dir: self.data_dir.clone(),
        }
    }

    /// The gateway URL of upstream `name`.
    pub fn gateway(&self, name: &str) -> String {
        format!("{}/mcp/{name}", self.base)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port free at the time of asking (the OS may give it to
/// another process before gnapd binds it: [`Instance::start`] then starts
/// again).
pub fn free_port() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// The child's first stdout line (where a server says it listens), within
/// `within`; later lines are read and dropped so the pipe never fills.
pub(crate) fn first_line(child: &mut Child, within: Duration) -> Option<String> {
    let stdout = child.stdout.take()?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            let _ = tx.send(line);
        }
    });
    rx.recv_timeout(within).ok()
}

/// `gnapd listening on ADDR, grant endpoint URL` → (ADDR, URL).
fn parse_listening(line: &str) -> Option<(SocketAddr, String)> {
    let rest = line.strip_prefix("gnapd listening on ")?;
    let (addr, endpoint) = rest.split_once(", grant endpoint ")?;
    Some((addr.parse().ok()?, endpoint.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_line_gives_address_and_grant_endpoint() {
        let (addr, endpoint) = parse_listening(
            "gnapd listening on 127.0.0.1:4000, grant endpoint http://127.0.0.1:4000/gnap",
        )
        .unwrap();
        assert_eq!(addr.port(), 4000);
        assert_eq!(endpoint, "http://127.0.0.1:4000/gnap");
        assert!(parse_listening("something else").is_none());
    }
}
