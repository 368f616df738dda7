//! A child process that says where it listens on its first stdout line:
//! gnapd (`gnapd listening on ADDR, grant endpoint URL`) or a peer
//! (`listening on PORT`). The tests and the benches (`#[path]` includes of
//! this file) start every such child here, so this file stands alone:
//! std only, and errors as values (the benches deny `unwrap`).

use std::error::Error;
use std::ffi::OsStr;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

pub type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// The gnapd binary cargo built for this test or bench target.
pub const GNAPD: &str = env!("CARGO_BIN_EXE_gnapd");

/// `BIN serve --listen 127.0.0.1:0 --data-dir DATA`: gnapd on a free
/// loopback port; callers add their flags.
pub fn serve_command(bin: impl AsRef<OsStr>, data: &Path) -> Command {
    let mut command = Command::new(bin);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data);
    command
}

/// A running child; killed when dropped.
pub struct Proc {
    pub child: Child,
    /// What it printed first: where it listens.
    pub first_line: String,
}

impl Proc {
    /// Starts `command` with its stdout piped (its stderr as the caller set
    /// it) and waits up to `wait` for the first line; a child silent that
    /// long is killed. The later lines arrive on the receiver; the pipe is
    /// drained even when the receiver is dropped, so the child never blocks
    /// on a full pipe.
    pub fn spawn(mut command: Command, wait: Duration) -> Res<(Self, Receiver<String>)> {
        let mut child = command.stdout(Stdio::piped()).spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let _ = tx.send(line);
            }
        });
        match rx.recv_timeout(wait) {
            Ok(first_line) => Ok((Self { child, first_line }, rx)),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err("a child process did not report its address".into())
            }
        }
    }

    /// SIGTERM, then up to `within` for a clean exit: its status, or
    /// `None` if the child still runs (dropping it then kills it).
    pub fn terminate(&mut self, within: Duration) -> Option<ExitStatus> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The port of a peer's `listening on PORT`.
    pub fn port(&self) -> Res<u16> {
        let port = self
            .first_line
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("unexpected output: {}", self.first_line))?;
        Ok(port.trim().parse()?)
    }

    /// gnapd's address and grant endpoint, from
    /// `gnapd listening on ADDR, grant endpoint URL`.
    pub fn gnapd_address(&self) -> Res<(SocketAddr, String)> {
        let rest = self
            .first_line
            .strip_prefix("gnapd listening on ")
            .ok_or_else(|| format!("unexpected gnapd output: {}", self.first_line))?;
        let (addr, grant_endpoint) = rest.split_once(", grant endpoint ").ok_or("bad line")?;
        Ok((addr.parse()?, grant_endpoint.to_owned()))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
