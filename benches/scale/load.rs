//! The load: `n` brand-new agents to their first token through the real
//! grant endpoint, at the window's concurrency, each key made on the fly.
//! A spread-out sample of (token, key) pairs is kept for the gateway calls
//! after the restart; progress is printed as it goes; the last seconds of
//! the load give the first-token CPU at (nearly) full size.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gnapd::proto::jwk::SigningKey;
use serde::Serialize;

use super::Res;
use super::agents::{self, Agent};
use super::flow_window::Server;
use super::monitor::{Monitor, Sample};
use super::procfs::{self, Memory, mb};
use super::wire::Conn;

/// An agent kept from the load: its token and the key it is bound to.
pub struct Holder {
    pub token: String,
    pub key: SigningKey,
}

#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub grants: u64,
    pub secs: f64,
    pub grants_per_sec: f64,
    /// Since the previous progress line.
    pub recent_per_sec: f64,
    pub memory: Memory,
}

/// A stretch of the load, cut from the monitor's samples.
#[derive(Debug, Clone, Serialize)]
pub struct Stretch {
    pub secs: f64,
    pub flows: u64,
    pub flows_per_sec: f64,
    pub server_cpu_us_per_flow: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Load {
    pub asked: u64,
    pub grants: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub secs: f64,
    pub grants_per_sec: f64,
    /// Over the whole load.
    pub server_cpu_us_per_flow: f64,
    /// Key generation included: the load makes keys as it goes.
    pub generator_cpu_us_per_flow: f64,
    /// The last `--duration` seconds of the load.
    pub last_window: Stretch,
    pub progress: Vec<Progress>,
    pub memory_end: Memory,
    /// (token, key) pairs kept for the gateway calls.
    pub kept: usize,
}

/// Past this many failed flows the load stops: something is broken.
const GIVE_UP_AFTER_ERRORS: u64 = 1000;

/// Between the first sample at or before `window` seconds from the end and
/// the last.
fn last_stretch(samples: &[Sample], window: Duration, tck: f64) -> Option<Stretch> {
    let end = samples.last()?;
    let from = samples
        .iter()
        .rev()
        .find(|s| s.secs <= end.secs - window.as_secs_f64())
        .or_else(|| samples.first())?;
    let flows = end.done.saturating_sub(from.done);
    let secs = end.secs - from.secs;
    Some(Stretch {
        secs,
        flows,
        flows_per_sec: flows as f64 / secs.max(1e-9),
        server_cpu_us_per_flow: end.ticks.saturating_sub(from.ticks) as f64 * 1e6
            / tck
            / flows.max(1) as f64,
    })
}

pub async fn run(
    server: &Server,
    n: usize,
    sample: usize,
    window: Duration,
) -> Res<(Load, Vec<Holder>)> {
    let stride = (n / sample.min(n)).max(1);
    let step = if n >= 200_000 {
        100_000
    } else {
        (n / 10).max(1) as u64
    };
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut conns = Vec::with_capacity(server.concurrency);
    for _ in 0..server.concurrency {
        conns.push(Conn::open(server.addr()).await?);
    }
    let progress = Arc::new(std::sync::Mutex::new(Vec::<Progress>::new()));
    let monitor = {
        let progress = progress.clone();
        let mut mark = (0.0f64, 0u64);
        Monitor::start(
            server.pid,
            done.clone(),
            Duration::from_millis(250),
            move |s: &Sample| {
                if s.done / step > mark.1 / step || (s.done == n as u64 && mark.1 < s.done) {
                    let line = Progress {
                        grants: s.done,
                        secs: s.secs,
                        grants_per_sec: s.done as f64 / s.secs.max(1e-9),
                        recent_per_sec: (s.done - mark.1) as f64 / (s.secs - mark.0).max(1e-9),
                        memory: s.memory,
                    };
                    println!(
                        "  {:>9} grants  {:>7.1} s  {:>7.0}/s (since the last line {:>7.0}/s)  {}",
                        line.grants,
                        line.secs,
                        line.grants_per_sec,
                        line.recent_per_sec,
                        line.memory.show()
                    );
                    mark = (s.secs, s.done);
                    if let Ok(mut p) = progress.lock() {
                        p.push(line);
                    }
                }
            },
        )
    };
    let own0 = procfs::own_ticks()?;
    let ticks0 = procfs::cpu_ticks(server.pid)?;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(conns.len());
    for mut conn in conns {
        let (next, done, errors) = (next.clone(), done.clone(), errors.clone());
        let (target, addr) = (server.target.clone(), server.addr());
        tasks.push(tokio::spawn(async move {
            let mut kept = Vec::new();
            let mut first_error: Option<String> = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n || errors.load(Ordering::Relaxed) >= GIVE_UP_AFTER_ERRORS {
                    break;
                }
                let result = match Agent::new() {
                    Ok(agent) => agents::first_token(&mut conn, &target, &agent)
                        .await
                        .map(|token| (token, agent)),
                    Err(e) => Err(e),
                };
                match result {
                    Ok((token, agent)) => {
                        done.fetch_add(1, Ordering::Relaxed);
                        if i % stride == 0 {
                            kept.push(Holder {
                                token,
                                key: agent.key,
                            });
                        }
                    }
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
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
            (kept, first_error)
        }));
    }
    let mut holders = Vec::new();
    let mut first_error = None;
    for task in tasks {
        let (kept, error) = task.await?;
        holders.extend(kept);
        if first_error.is_none() {
            first_error = error;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let ticks = procfs::cpu_ticks(server.pid)?.saturating_sub(ticks0);
    let own = procfs::own_ticks()?.saturating_sub(own0);
    let samples = monitor.finish();
    let grants = done.load(Ordering::Relaxed);
    let per_flow = |t: u64| t as f64 * 1e6 / server.tck / grants.max(1) as f64;
    let last_window =
        last_stretch(&samples, window, server.tck).ok_or("the load took no sample")?;
    let memory_end = Memory::of(server.pid)?;
    let load = Load {
        asked: n as u64,
        grants,
        errors: errors.load(Ordering::Relaxed),
        first_error,
        secs,
        grants_per_sec: grants as f64 / secs,
        server_cpu_us_per_flow: per_flow(ticks),
        generator_cpu_us_per_flow: per_flow(own),
        last_window,
        progress: progress.lock().map(|p| p.clone()).unwrap_or_default(),
        memory_end,
        kept: holders.len(),
    };
    println!(
        "  loaded {} grants in {:.1} s: {:.0} grants/s; {} errors; at the end {} (peak RSS {})",
        load.grants,
        load.secs,
        load.grants_per_sec,
        load.errors,
        load.memory_end.show(),
        mb(load.memory_end.peak)
    );
    Ok((load, holders))
}
