//! gnapd as a child process: its directory, its config file, starting it
//! (timed, on restart), stopping it with SIGTERM, and asking its admin
//! socket what its tables hold.

use std::fs::{File, OpenOptions};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::Res;
use super::process::Proc;
use super::wire;

/// The upstream's name at the gateway, and the credential gnapd sends it.
pub const UPSTREAM: &str = "bench";
const UPSTREAM_SECRET: &str = "SCALE-BENCH-UPSTREAM-SECRET";

/// How long gnapd may take to print where it listens, or to stop: a store
/// of millions of records may take a while to open or to flush.
const PATIENCE: Duration = Duration::from_secs(300);

/// The run's directory: gnapd's data dir, its config file and its log.
/// Removed when dropped, unless kept.
pub struct Place {
    pub root: PathBuf,
    pub data: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
    keep: bool,
}

impl Place {
    pub fn new(data_root: &Path, name: &str, keep: bool) -> Res<Self> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let root = data_root.join(format!("{name}-{}-{stamp}", std::process::id()));
        std::fs::create_dir_all(&root)?;
        Ok(Self {
            data: root.join("data"),
            config: root.join("gnapd.toml"),
            log: root.join("gnapd.log"),
            root,
            keep,
        })
    }

    /// Writes the config file: `lines`, after what every run needs, then
    /// the command line's `--set` lines (a key set twice is refused by
    /// gnapd, so `--set` cannot quietly override the bench's own).
    pub fn write_config(&self, lines: &str, settings: &[String]) -> Res<()> {
        // Every agent comes from loopback: many agents behind one address,
        // which a deployment expecting this load configures for; the
        // default (10 grants a second per address) would measure the rate
        // limit instead. The replay budgets are gnapd's defaults
        // (3,400,000 unapproved signatures, about 11,000 new agents a
        // second sustained), which this load stays under.
        let text = format!(
            "grant_rate_per_address = {{ burst = 1000000, per_minute = 1000000000 }}\n\
             {lines}{}",
            settings.concat()
        );
        std::fs::write(&self.config, text)?;
        Ok(())
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("scale: kept {}", self.root.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// Start-up on an existing data dir, from spawn.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Startup {
    /// To the `gnapd listening on …` line on stdout.
    pub to_listening_line_ms: f64,
    /// To the first 200 answer over HTTP (polled every millisecond).
    pub to_first_answer_ms: f64,
}

/// How a stop went.
#[derive(Debug, Clone, Serialize)]
pub struct Stop {
    pub exit: String,
    pub secs: f64,
}

/// A running gnapd in front of the bench's upstream.
pub struct Gnapd {
    process: Proc,
    pub addr: SocketAddr,
    /// `http://ADDR/gnap`.
    pub grant_endpoint: String,
    /// `http://ADDR`, the public URL.
    pub base: String,
    data: PathBuf,
}

impl Gnapd {
    fn command(
        bin: &Path,
        place: &Place,
        listen: &str,
        upstream: SocketAddr,
        extra: &[String],
    ) -> Res<Command> {
        let mut cmd = Command::new(bin);
        cmd.args(["serve", "--dev", "--listen", listen, "--data-dir"])
            .arg(&place.data)
            .arg("--config")
            .arg(&place.config)
            .arg("--upstream")
            .arg(format!("{UPSTREAM}=http://{upstream}/mcp"))
            .arg("--upstream-credential")
            .arg(format!("{UPSTREAM}=bearer:{UPSTREAM_SECRET}"))
            .args(extra);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&place.log)?;
        cmd.stdin(Stdio::null()).stderr(Stdio::from(log));
        Ok(cmd)
    }

    fn spawned(process: Proc, place: &Place) -> Res<Self> {
        let (addr, grant_endpoint) = process.gnapd_address()?;
        let base = grant_endpoint
            .strip_suffix("/gnap")
            .ok_or_else(|| format!("odd grant endpoint {grant_endpoint}"))?
            .to_owned();
        Ok(Self {
            process,
            addr,
            grant_endpoint,
            base,
            data: place.data.clone(),
        })
    }

    /// Starts gnapd on a fresh port.
    pub fn start(bin: &Path, place: &Place, upstream: SocketAddr) -> Res<Self> {
        Self::start_with(bin, place, upstream, &[])
    }

    /// [`Self::start`] with more command-line arguments (a node of a
    /// cluster: `--store`, `--public-url`, `--master-key-file`).
    pub fn start_with(
        bin: &Path,
        place: &Place,
        upstream: SocketAddr,
        extra: &[String],
    ) -> Res<Self> {
        File::create(&place.log)?;
        let cmd = Self::command(bin, place, "127.0.0.1:0", upstream, extra)?;
        let (process, _) = Proc::spawn(cmd, PATIENCE).map_err(|e| with_log(e, place))?;
        Self::spawned(process, place)
    }

    /// Starts gnapd again at `addr` (where it listened before), timing the
    /// start-up from the spawn.
    pub fn start_timed(
        bin: &Path,
        place: &Place,
        addr: SocketAddr,
        upstream: SocketAddr,
    ) -> Res<(Self, Startup)> {
        let cmd = Self::command(bin, place, &addr.to_string(), upstream, &[])?;
        let stop = Arc::new(AtomicBool::new(false));
        let since = Instant::now();
        let poller = {
            let stop = stop.clone();
            std::thread::spawn(move || wire::first_answer(addr, since, PATIENCE, stop))
        };
        let spawned = Proc::spawn(cmd, PATIENCE);
        let to_line = since.elapsed();
        let process = match spawned {
            Ok((process, _)) => process,
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                let _ = poller.join();
                return Err(with_log(e, place));
            }
        };
        let to_answer = poller.join().map_err(|_| "the start-up poller failed")??;
        let gnapd = Self::spawned(process, place)?;
        Ok((
            gnapd,
            Startup {
                to_listening_line_ms: to_line.as_secs_f64() * 1e3,
                to_first_answer_ms: to_answer.as_secs_f64() * 1e3,
            },
        ))
    }

    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }

    /// SIGTERM, then the wait for gnapd to drain and close its store.
    pub fn stop(mut self) -> Stop {
        let t = Instant::now();
        let exit = match self.process.terminate(PATIENCE) {
            Some(status) => status.to_string(),
            None => format!("killed after {} s", PATIENCE.as_secs()),
        };
        Stop {
            exit,
            secs: t.elapsed().as_secs_f64(),
        }
    }

    /// The admin socket's `store_stats`; see [`store_stats`].
    pub fn store_stats(&self) -> Value {
        store_stats(&self.data)
    }
}

/// The admin socket's `store_stats` for the gnapd serving `data` (records
/// and bytes of keys plus values, table by table), or why not. It reads
/// every record, so it is asked only outside the measuring windows.
pub fn store_stats(data: &Path) -> Value {
    let ask = serde_json::json!({"op": "store_stats"});
    match gnapd::admin::socket::call(data, &ask) {
        Ok(answer) => answer["tables"].clone(),
        Err(e) => serde_json::json!({ "unavailable": e.to_string() }),
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A failed start, with the end of gnapd's log.
fn with_log(e: BoxError, place: &Place) -> BoxError {
    let log = std::fs::read_to_string(&place.log).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    format!("starting gnapd: {e}; the end of its log:\n{tail}").into()
}
