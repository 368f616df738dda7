//! The external AS process: `tests/interop/oidc/external_as.mjs` (embedded
//! here, written into the work dir) run by the located Node binary with
//! `--module` naming the located package. It prints where it listens on its
//! first stdout line; it is stopped with SIGTERM, then killed, whenever its
//! handle is dropped (the world's end, an error while starting, a panic).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::locate::OidcProvider;
use crate::compare::harness::{HarnessError, first_line};

/// The script, as the repository has it.
pub const SCRIPT: &str = include_str!("../../../tests/interop/oidc/external_as.mjs");

/// How long the AS may take to say where it listens.
const START: Duration = Duration::from_secs(30);

/// How long SIGTERM is given before the kill.
const STOP: Duration = Duration::from_secs(3);

/// What the AS is started with.
#[derive(Debug, Clone)]
pub struct ExternalSpec {
    /// The resource servers (the gateway's URLs for each upstream).
    pub resources: Vec<String>,
    /// Resource servers whose access tokens live `short_ttl` seconds (the
    /// short-lived gateway's URLs); may be empty.
    pub short_resources: Vec<String>,
    /// Their access tokens' lifetime in seconds.
    pub short_ttl: u32,
    /// The gateway's client ID at the introspection endpoint.
    pub introspector_id: String,
    /// Its secret.
    pub introspector_secret: String,
}

/// The running external AS.
#[derive(Debug)]
pub struct ExternalAs {
    /// Its issuer identifier (`http://127.0.0.1:PORT`).
    pub issuer: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its stderr log.
    pub log: PathBuf,
    child: Child,
}

impl ExternalAs {
    /// Writes the script under `work/external-as` and starts it.
    pub fn start(
        provider: &OidcProvider,
        work: &Path,
        spec: &ExternalSpec,
    ) -> Result<Self, HarnessError> {
        let err = |what: &str, e: &dyn std::fmt::Display| {
            HarnessError(format!("external AS: {what}: {e}"))
        };
        let dir = work.join("external-as");
        std::fs::create_dir_all(&dir).map_err(|e| err("its dir", &e))?;
        let script = dir.join("external_as.mjs");
        std::fs::write(&script, SCRIPT).map_err(|e| err("the script", &e))?;
        let log = dir.join("external-as.log");
        let log_file = std::fs::File::create(&log).map_err(|e| err("log", &e))?;
        let mut command = Command::new(&provider.node);
        command.arg(&script);
        for resource in &spec.resources {
            command.arg("--resource").arg(resource);
        }
        for resource in &spec.short_resources {
            command.arg("--short-resource").arg(resource);
        }
        if !spec.short_resources.is_empty() {
            command.arg("--short-ttl").arg(spec.short_ttl.to_string());
        }
        command
            .arg("--introspector-id")
            .arg(&spec.introspector_id)
            .arg("--introspector-secret")
            .arg(&spec.introspector_secret)
            .arg("--module")
            .arg(&provider.package)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file));
        let child = command.spawn().map_err(|e| err("spawn", &e))?;
        // From here on the handle owns the process: any early return stops it.
        let mut external = Self {
            issuer: String::new(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            child,
        };
        let first = first_line(&mut external.child, START).ok_or_else(|| {
            let tail = std::fs::read_to_string(&external.log).unwrap_or_default();
            HarnessError(format!(
                "the external AS did not start; its log:\n{}",
                tail.lines().rev().take(20).collect::<Vec<_>>().join("\n")
            ))
        })?;
        let (port, issuer) = parse_listening(&first)
            .ok_or_else(|| HarnessError(format!("external AS: unexpected first line {first:?}")))?;
        external.addr = SocketAddr::from(([127, 0, 0, 1], port));
        external.issuer = issuer;
        Ok(external)
    }

    /// Its pid (its CPU is server CPU).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ExternalAs {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let pid = i32::try_from(self.child.id())
                .ok()
                .and_then(rustix::process::Pid::from_raw);
            if let Some(pid) = pid {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
            let deadline = Instant::now() + STOP;
            while Instant::now() < deadline {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `external-as listening on PORT, issuer URL` → (PORT, URL).
fn parse_listening(line: &str) -> Option<(u16, String)> {
    let rest = line.strip_prefix("external-as listening on ")?;
    let (port, issuer) = rest.split_once(", issuer ")?;
    Some((port.parse().ok()?, issuer.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_line_gives_port_and_issuer() {
        assert_eq!(
            parse_listening("external-as listening on 4100, issuer http://127.0.0.1:4100"),
            Some((4100, "http://127.0.0.1:4100".to_owned()))
        );
        assert!(parse_listening("provider listening on 1, issuer x").is_none());
        assert!(SCRIPT.contains("external-as listening on"));
        // The options `ExternalAs::start` passes are the script's.
        for option in ["--resource", "--short-resource", "--short-ttl", "--module"] {
            assert!(SCRIPT.contains(&format!("'{option}'")), "{option}");
        }
    }
}
