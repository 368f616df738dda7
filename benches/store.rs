//! Durable `create_grant` throughput of the sled store: group commit against
//! a flush per write, 1/4/16 writer threads, 3 runs each, min/median/max.
//! Then what `Store::settle` costs an "already done" answer (a revocation
//! of a token already gone), alone and beside 4 writers.
//! A report, never a pass/fail check: `cargo bench --bench store`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/it/support/store_fixture.rs"]
#[allow(dead_code)]
mod store_fixture;

use std::time::{Duration, Instant};

use gnapd::store::Store as _;
use gnapd::store::sled::{Durability, SledStore};
use store_fixture::{FOREVER, Fixture};

/// Process CPU time (user + system) so far, from /proc (10 ms ticks).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Durable `create_grant`s per second with `threads` writers for `run`.
fn rate(durability: Durability, threads: usize, run: Duration) -> (f64, Option<Duration>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open_with(dir.path(), durability).unwrap();
    let fixture = Fixture::new();
    let cpu_before = cpu_time();
    let start = Instant::now();
    let done: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (store, fixture) = (&store, &fixture);
                s.spawn(move || {
                    let mut n = 0;
                    while start.elapsed() < run {
                        let (grant, tokens) = fixture.grant(1, FOREVER);
                        store.create_grant(&grant, &tokens).unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let elapsed = start.elapsed().as_secs_f64();
    store.close().unwrap();
    let cpu = cpu_before
        .zip(cpu_time())
        .map(|(a, b)| (b - a) / u32::try_from(done.max(1)).unwrap_or(u32::MAX));
    #[allow(clippy::cast_precision_loss)]
    let per_second = done as f64 / elapsed;
    (per_second, cpu)
}

/// Mean `settle` latency (µs) over `run`, with `writers` threads writing
/// grants meanwhile.
fn settle_latency(writers: usize, run: Duration) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let fixture = Fixture::new();
    let start = Instant::now();
    let (settled, spent) = std::thread::scope(|s| {
        for _ in 0..writers {
            let (store, fixture) = (&store, &fixture);
            s.spawn(move || {
                while start.elapsed() < run {
                    let (grant, tokens) = fixture.grant(1, FOREVER);
                    store.create_grant(&grant, &tokens).unwrap();
                }
            });
        }
        let (mut n, mut spent) = (0u32, Duration::ZERO);
        while start.elapsed() < run {
            let t = Instant::now();
            store.settle().unwrap();
            spent += t.elapsed();
            n += 1;
        }
        (n, spent)
    });
    store.close().unwrap();
    spent.as_secs_f64() * 1e6 / f64::from(settled.max(1))
}

fn main() {
    let run = Duration::from_secs(2);
    settles(run);
    println!("durable create_grant (grant + continuation + 1 token), {run:?} per run, 3 runs");
    for (name, durability, threads) in [
        ("group commit", Durability::GroupCommit, 1),
        ("group commit", Durability::GroupCommit, 4),
        ("group commit", Durability::GroupCommit, 16),
        ("flush per write", Durability::FlushEachWrite, 1),
        ("flush per write", Durability::FlushEachWrite, 16),
    ] {
        let mut runs: Vec<(f64, Option<Duration>)> =
            (0..3).map(|_| rate(durability, threads, run)).collect();
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let cpu: Vec<String> = runs
            .iter()
            .map(|(_, c)| c.map_or("?".into(), |c| c.as_micros().to_string()))
            .collect();
        println!(
            "{name:>15} threads={threads:>2}: min {:>7.0}/s  median {:>7.0}/s  max {:>7.0}/s  (cpu µs/op by run: {})",
            runs[0].0,
            runs[1].0,
            runs[2].0,
            cpu.join(", ")
        );
    }
}

fn settles(run: Duration) {
    println!("settle (the wait of an \"already done\" answer), {run:?} per run, 3 runs");
    for writers in [0, 4] {
        let mut runs: Vec<f64> = (0..3).map(|_| settle_latency(writers, run)).collect();
        runs.sort_by(f64::total_cmp);
        println!(
            "  beside {writers} writers: mean µs per settle min {:.1}  median {:.1}  max {:.1}",
            runs[0], runs[1], runs[2]
        );
    }
}
