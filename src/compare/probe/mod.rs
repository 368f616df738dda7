//! What the recorder reads at each step boundary: CPU time on both sides,
//! cryptographic operation counts on both sides, the server's state, and
//! the requests the servers made on their own.
//!
//! A step's window is [`Probes::start`] … [`Probes::end`]: CPU is read last
//! when a step starts and first when it ends, so the scrapes of counters
//! and state between steps are charged to no step.

pub mod cpu;
pub mod crypto;
pub mod outbound;
pub mod state;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

pub use outbound::Outbound;

use super::meter::{Meter, Request, Tap};

/// One gnapd process under measurement.
#[derive(Debug, Clone)]
pub struct ServerProbe {
    /// Its pid.
    pub pid: u32,
    /// Its metrics URL (a listener of its own, so scrapes never share the
    /// AS's connections or limits).
    pub metrics_url: String,
    /// Its data dir (the admin socket).
    pub data_dir: PathBuf,
}

/// The readings at one boundary.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When.
    pub at: Instant,
    /// Nanoseconds every server thread has run, all servers.
    pub server_cpu_ns: u64,
    /// Nanoseconds the client's thread has run.
    pub client_cpu_ns: u64,
    /// Server crypto counts, all servers.
    pub server_crypto: BTreeMap<String, u64>,
    /// Client crypto counts.
    pub client_crypto: BTreeMap<String, u64>,
    /// Server state, all servers summed per table.
    pub state: BTreeMap<String, state::Size>,
    /// Server-made requests by kind.
    pub outbound: BTreeMap<String, u64>,
}

/// Everything measured, for one run of the tool.
#[derive(Debug)]
pub struct Probes {
    servers: Vec<ServerProbe>,
    // Server processes whose CPU is all that can be read (the external
    // AS: no metrics, no store the tool can see).
    processes: Vec<u32>,
    outbound: Outbound,
    // Scrapes go through a meter of their own whose exchanges are dropped.
    scraper: Meter,
    scraper_tap: Tap,
}

impl Probes {
    /// Probes for `servers`, counting `outbound`.
    pub fn new(servers: Vec<ServerProbe>, outbound: Outbound) -> Self {
        let scraper_tap = Tap::new();
        Self {
            servers,
            processes: Vec::new(),
            outbound,
            scraper: Meter::agent(&scraper_tap),
            scraper_tap,
        }
    }

    /// These probes, also counting the CPU of the processes `pids` as
    /// server CPU.
    pub fn with_processes(mut self, pids: impl IntoIterator<Item = u32>) -> Self {
        self.processes.extend(pids);
        self
    }

    /// Readings for a step that starts now: counters first, CPU and the
    /// clock last.
    pub async fn start(&mut self) -> Result<Snapshot, String> {
        let (server_crypto, client_crypto, state, outbound) = self.counters().await?;
        let server_cpu_ns = self.server_cpu()?;
        let client_cpu_ns = cpu::this_thread_ns().map_err(|e| e.to_string())?;
        Ok(Snapshot {
            at: Instant::now(),
            server_cpu_ns,
            client_cpu_ns,
            server_crypto,
            client_crypto,
            state,
            outbound,
        })
    }

    /// Readings for a step that ends now: the clock and CPU first.
    pub async fn end(&mut self) -> Result<Snapshot, String> {
        let at = Instant::now();
        let client_cpu_ns = cpu::this_thread_ns().map_err(|e| e.to_string())?;
        let server_cpu_ns = self.server_cpu()?;
        let (server_crypto, client_crypto, state, outbound) = self.counters().await?;
        Ok(Snapshot {
            at,
            server_cpu_ns,
            client_cpu_ns,
            server_crypto,
            client_crypto,
            state,
            outbound,
        })
    }

    fn server_cpu(&self) -> Result<u64, String> {
        let mut total = 0;
        let pids = self
            .servers
            .iter()
            .map(|s| s.pid)
            .chain(self.processes.iter().copied());
        for pid in pids {
            total += cpu::process_ns(pid).map_err(|e| format!("pid {pid}: {e}"))?;
        }
        Ok(total)
    }

    #[allow(clippy::type_complexity)]
    async fn counters(
        &mut self,
    ) -> Result<
        (
            BTreeMap<String, u64>,
            BTreeMap<String, u64>,
            BTreeMap<String, state::Size>,
            BTreeMap<String, u64>,
        ),
        String,
    > {
        let client_crypto = crypto::client();
        let mut server_crypto = BTreeMap::new();
        let mut sizes: BTreeMap<String, state::Size> = BTreeMap::new();
        for server in self.servers.clone() {
            let page = self
                .scraper
                .send(Request::new("GET", &server.metrics_url))
                .await
                .map_err(|e| e.to_string())?;
            for (kind, n) in crypto::from_exposition(&page.text()) {
                *server_crypto.entry(kind).or_insert(0) += n;
            }
            for (table, size) in state::server(&server.data_dir)? {
                let sum = sizes.entry(table).or_default();
                sum.records += size.records;
                sum.bytes += size.bytes;
            }
        }
        self.scraper_tap.drain();
        Ok((
            server_crypto,
            client_crypto,
            sizes,
            self.outbound.snapshot(),
        ))
    }
}
