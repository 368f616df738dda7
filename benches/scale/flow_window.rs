//! First-token CPU in a window: brand-new agents (keys made before the
//! window) to their first token at a fixed concurrency for a few seconds;
//! gnapd's utime+stime over the window divided by the flows.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::Res;
use super::agents::{self, Agent, Target};
use super::procfs::{self, Memory};
use super::wire::Conn;

#[derive(Debug, Clone, Serialize)]
pub struct FlowWindow {
    pub flows: u64,
    /// Failed flows, the warm-up's included.
    pub errors: u64,
    pub first_error: Option<String>,
    pub secs: f64,
    pub flows_per_sec: f64,
    /// gnapd's utime+stime over the window ÷ flows (every node's).
    pub server_cpu_us_per_flow: f64,
    /// The database server's, when the store is PostgreSQL (else 0).
    pub database_cpu_us_per_flow: f64,
    /// This generator's (signing, HTTP, JSON; the upstream too, which is
    /// idle here) ÷ flows.
    pub generator_cpu_us_per_flow: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub memory_start: Memory,
    pub memory_end: Memory,
    /// Agents made for the window, and whether they ran out before its end.
    pub pool: usize,
    pub pool_used_up: bool,
}

/// Where a window runs: one gnapd, or several nodes behind one public URL
/// (benches/nodes), the connections spread over them.
#[derive(Clone)]
pub struct Server {
    /// The nodes' addresses; connection `i` goes to `addrs[i % len]`.
    pub addrs: Vec<SocketAddr>,
    pub target: Arc<Target>,
    /// The first node: whose memory is reported.
    pub pid: u32,
    /// Every node: whose CPU is the server's.
    pub nodes: Vec<u32>,
    /// The database server's postmaster, when the store is PostgreSQL:
    /// its and its backends' CPU is reported beside the nodes'.
    pub database: Option<u32>,
    pub tck: f64,
    pub concurrency: usize,
}

/// CPU ticks at one instant: the nodes', the database's.
#[derive(Clone, Copy)]
pub struct Ticks {
    pub nodes: u64,
    pub database: u64,
}

impl Server {
    /// One gnapd with its store inside it.
    pub fn one(
        addr: SocketAddr,
        target: Arc<Target>,
        pid: u32,
        tck: f64,
        concurrency: usize,
    ) -> Self {
        Self {
            addrs: vec![addr],
            target,
            pid,
            nodes: vec![pid],
            database: None,
            tck,
            concurrency,
        }
    }

    /// The first node's address.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// Where connection `i` goes.
    pub fn addr_for(&self, i: usize) -> SocketAddr {
        self.addrs[i % self.addrs.len()]
    }

    pub fn ticks(&self) -> Res<Ticks> {
        let mut nodes = 0;
        for pid in &self.nodes {
            nodes += procfs::cpu_ticks(*pid)?;
        }
        let database = match self.database {
            Some(postmaster) => procfs::tree_ticks(postmaster)?,
            None => 0,
        };
        Ok(Ticks { nodes, database })
    }
}

/// The `q` quantile of sorted microseconds, in milliseconds.
pub fn quantile_ms(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    f64::from(sorted[i.min(sorted.len() - 1)]) / 1e3
}

/// Flows from `agents` until `duration` has passed or they run out.
pub async fn window(server: &Server, agents: Vec<Agent>, duration: Duration) -> Res<FlowWindow> {
    let pool = agents.len();
    let agents = Arc::new(agents);
    let next = Arc::new(AtomicUsize::new(0));
    let used_up = Arc::new(AtomicBool::new(false));
    let mut conns = Vec::with_capacity(server.concurrency);
    for i in 0..server.concurrency {
        conns.push((Conn::open(server.addr_for(i)).await?, server.addr_for(i)));
    }
    let memory_start = Memory::of(server.pid)?;
    let ticks0 = server.ticks()?;
    let own0 = procfs::own_ticks()?;
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(conns.len());
    for (mut conn, addr) in conns {
        let (agents, next, used_up) = (agents.clone(), next.clone(), used_up.clone());
        let target = server.target.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let (mut errors, mut first_error) = (0u64, None);
            while Instant::now() < deadline {
                let Some(agent) = agents.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    used_up.store(true, Ordering::Relaxed);
                    break;
                };
                let t = Instant::now();
                match agents::first_token(&mut conn, &target, agent).await {
                    Ok(_) => {
                        latencies.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX))
                    }
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| e.to_string());
                        if conn.is_closed() {
                            match Conn::open(addr).await {
                                Ok(c) => conn = c,
                                Err(_) => break,
                            }
                        }
                    }
                }
            }
            (latencies, errors, first_error)
        }));
    }
    let mut latencies = Vec::new();
    let (mut errors, mut first_error) = (0u64, None);
    for task in tasks {
        let (l, e, f) = task.await?;
        latencies.extend(l);
        errors += e;
        if first_error.is_none() {
            first_error = f;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let ticks = server.ticks()?;
    let own = procfs::own_ticks()? - own0;
    let memory_end = Memory::of(server.pid)?;
    latencies.sort_unstable();
    let flows = latencies.len() as u64;
    let per_flow = |ticks: u64| ticks as f64 * 1e6 / server.tck / flows.max(1) as f64;
    Ok(FlowWindow {
        flows,
        errors,
        first_error,
        secs,
        flows_per_sec: flows as f64 / secs,
        server_cpu_us_per_flow: per_flow(ticks.nodes.saturating_sub(ticks0.nodes)),
        database_cpu_us_per_flow: per_flow(ticks.database.saturating_sub(ticks0.database)),
        generator_cpu_us_per_flow: per_flow(own),
        p50_ms: quantile_ms(&latencies, 0.50),
        p99_ms: quantile_ms(&latencies, 0.99),
        memory_start,
        memory_end,
        pool,
        pool_used_up: used_up.load(Ordering::Relaxed),
    })
}

/// A short warm-up window (which also sizes the pool), then the measured
/// one. `rate_guess` (flows a second seen before) sizes the warm-up.
/// Returns the measured window and the grants both made.
pub async fn measure(
    server: &Server,
    duration: Duration,
    rate_guess: Option<f64>,
) -> Res<(FlowWindow, u64)> {
    let warm_for = duration.min(Duration::from_secs(1));
    let warm_pool = rate_guess.map_or(1000, |r| (r * warm_for.as_secs_f64() * 1.5) as usize);
    let warm = window(
        server,
        agents::many(warm_pool.clamp(100, 100_000))?,
        warm_for,
    )
    .await?;
    let rate = warm.flows_per_sec.max(rate_guess.unwrap_or(0.0));
    let pool = ((rate * duration.as_secs_f64() * 2.0) as usize + 200).min(300_000);
    let mut measured = window(server, agents::many(pool)?, duration).await?;
    let made = warm.flows + measured.flows;
    // Every flow must succeed, the warm-up's too.
    measured.errors += warm.errors;
    if measured.first_error.is_none() {
        measured.first_error = warm.first_error;
    }
    Ok((measured, made))
}
