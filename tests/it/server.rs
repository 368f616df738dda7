//! A `gnapd serve` process for the loopback tests: real binary, real sled on
//! a temporary directory, real TCP.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server; killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub grant_endpoint: String,
}

impl Server {
    /// Starts `gnapd serve --listen 127.0.0.1:0 --data-dir DIR` plus `args`.
    pub fn start(data_dir: &Path, args: &[&str]) -> Self {
        Self::spawn(Self::command(data_dir, args)).0
    }

    /// The command [`Self::start`] runs, to adjust before [`Self::spawn`].
    pub fn command(data_dir: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gnapd"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(args);
        command
    }

    /// Starts `command` (one that runs `gnapd serve`) and waits for the
    /// address it reports; its later stdout lines arrive on the receiver.
    pub fn spawn(mut command: Command) -> (Self, std::sync::mpsc::Receiver<String>) {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Keeps draining, so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let _ = tx.send(line);
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("gnapd serve did not report its address"));
        // "gnapd listening on ADDR, grant endpoint URL"
        let rest = line.strip_prefix("gnapd listening on ").unwrap();
        let (addr, endpoint) = rest.split_once(", grant endpoint ").unwrap();
        let server = Self {
            child,
            addr: addr.parse().unwrap(),
            grant_endpoint: endpoint.to_owned(),
        };
        (server, rx)
    }

    /// The public base URL.
    pub fn base(&self) -> String {
        self.grant_endpoint.trim_end_matches("/gnap").to_owned()
    }

    /// SIGTERM, then wait (bounded) for a clean exit; returns the exit code.
    pub fn stop(mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
