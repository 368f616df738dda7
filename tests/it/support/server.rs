//! A `gnapd serve` process for the loopback tests: real binary, real sled on
//! a temporary directory, real TCP. [`Serve`] says how to start it (the
//! flags and environment the tests use); [`Server`] is the running process.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use crate::support::agent::Agent;
use crate::support::http_client::{Answer, send};
use crate::support::process::{GNAPD, Proc, serve_command};

/// How long gnapd may take to report its address.
const START: Duration = Duration::from_secs(20);

/// How to start `gnapd serve --listen 127.0.0.1:0 --data-dir DATA`.
#[must_use]
pub struct Serve {
    data: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    env_removed: Vec<OsString>,
    /// gnapd's stderr at `debug` goes here; else nowhere.
    log: Option<PathBuf>,
    /// A shell command run before gnapd in the same process (`umask 000`,
    /// `ulimit -n 128`): what the process inherits.
    shell: Option<String>,
}

impl Serve {
    /// gnapd on the data dir `data`.
    pub fn new(data: &Path) -> Self {
        Self {
            data: data.to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            env_removed: Vec::new(),
            log: None,
            shell: None,
        }
    }

    /// More flags.
    pub fn args<S: AsRef<std::ffi::OsStr>>(mut self, args: &[S]) -> Self {
        self.args.extend(args.iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// `--dev`: every grant approved at once.
    pub fn dev(self) -> Self {
        self.args(&["--dev"])
    }

    /// `--config PATH`.
    pub fn config(self, path: &Path) -> Self {
        self.args(&[OsString::from("--config"), path.into()])
    }

    /// Leaves `name` out of gnapd's environment.
    pub fn env_remove(mut self, name: &str) -> Self {
        self.env_removed.push(name.into());
        self
    }

    /// An environment variable for gnapd.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// gnapd's stderr, at `debug` level, kept in `path`.
    pub fn log(mut self, path: &Path) -> Self {
        self.log = Some(path.to_owned());
        self
    }

    /// Runs `shell` (e.g. `ulimit -n 128`) in the process before it
    /// becomes gnapd.
    pub fn after_shell(mut self, shell: &str) -> Self {
        self.shell = Some(shell.to_owned());
        self
    }

    /// The command this runs, to adjust and run apart.
    pub fn command(&self) -> Command {
        let mut command = match &self.shell {
            None => serve_command(GNAPD, &self.data),
            Some(shell) => {
                let mut command = Command::new("sh");
                command
                    .arg("-c")
                    .arg(format!("{shell} && exec \"$0\" \"$@\""))
                    .arg(GNAPD)
                    .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
                    .arg(&self.data);
                command
            }
        };
        command.args(&self.args).envs(self.env.iter().cloned());
        for name in &self.env_removed {
            command.env_remove(name);
        }
        match &self.log {
            Some(log) => {
                command
                    .env("RUST_LOG", "debug")
                    .stderr(std::fs::File::create(log).unwrap());
            }
            None => {
                command.stderr(Stdio::null());
            }
        }
        command
    }

    /// Starts it and waits for its address.
    pub fn start(self) -> Server {
        self.spawn().0
    }

    /// Runs a gnapd that must refuse to start: its exit status and stderr.
    /// A gnapd still running after `deadline` is killed and the test fails.
    pub fn refused(self, deadline: Duration) -> (std::process::ExitStatus, String) {
        let mut child = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let until = Instant::now() + deadline;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() > until {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        let status =
            status.unwrap_or_else(|| panic!("gnapd started when it should refuse: {stderr}"));
        (status, stderr)
    }

    /// [`Self::start`], with gnapd's later stdout lines on the receiver.
    pub fn spawn(self) -> (Server, Receiver<String>) {
        Server::launch(self.command())
    }
}

/// A running server; killed when dropped.
pub struct Server {
    pub process: Proc,
    pub addr: std::net::SocketAddr,
    pub grant_endpoint: String,
}

/// `gnapd serve` as [`Server::start`] runs it, with its stderr (at `debug`)
/// kept in `log`.
pub fn start_logged(data: &Path, log: &Path, args: &[&str]) -> Server {
    Serve::new(data).args(args).log(log).start()
}

/// [`start_logged`] with extra environment variables for gnapd.
pub fn start_logged_with(data: &Path, log: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
    env.iter()
        .fold(Serve::new(data).args(args).log(log), |serve, (k, v)| {
            serve.env(k, v)
        })
        .start()
}

impl Server {
    /// Starts `gnapd serve --listen 127.0.0.1:0 --data-dir DIR` plus `args`.
    pub fn start(data_dir: &Path, args: &[&str]) -> Self {
        Serve::new(data_dir).args(args).start()
    }

    fn launch(command: Command) -> (Self, Receiver<String>) {
        let (process, rx) = Proc::spawn(command, START)
            .unwrap_or_else(|e| panic!("gnapd serve did not report its address: {e}"));
        let (addr, grant_endpoint) = process.gnapd_address().unwrap();
        let server = Self {
            process,
            addr,
            grant_endpoint,
        };
        (server, rx)
    }

    /// The public base URL.
    pub fn base(&self) -> String {
        self.grant_endpoint.trim_end_matches("/gnap").to_owned()
    }

    /// `agent`'s signed grant request with `body`, sent now.
    pub fn grant(&self, agent: &Agent, body: &serde_json::Value) -> Answer {
        let now = gnapd::clock::Clock::now(&gnapd::clock::SystemClock);
        send(
            self.addr,
            &agent.signed("POST", &self.grant_endpoint, None, Some(body), now),
        )
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }

    /// SIGTERM, then wait (bounded) for a clean exit; returns the exit code.
    pub fn stop(mut self) -> Option<i32> {
        self.process.terminate(Duration::from_secs(20))?.code()
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill(self) {
        // Dropping the process kills it and reaps it.
        drop(self);
    }
}
