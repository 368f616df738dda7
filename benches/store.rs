//! Durable `create_grant` throughput of the sled store: group commit against
//! a flush per write, 1/4/16 writer threads, 3 runs each, min/median/max.
//! A report, never a pass/fail check: `cargo bench --bench store`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/it/store_fixture.rs"]
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

fn main() {
    let run = Duration::from_secs(2);
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
