//! `--sweep`: does sweeping keep the store bounded? gnapd runs with short
//! token and grant lifetimes and a short `sweep_interval`, under a steady
//! stream of brand-new agents at a fixed rate (each agent gets its first
//! token and never comes back). Every few seconds the data dir's size,
//! gnapd's RSS and the live records are sampled; once the first tokens
//! have lapsed and been swept, the size should stop growing. The
//! steady-state size is reported as the spread of those later samples and
//! their growth per second.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::args::{Config, Sweep};
use super::disk::{self, Disk};
use super::procfs::{self, Memory, mb};
use super::server::{self, Gnapd, Place, Stop};
use super::wire::Conn;
use super::{Res, Upstream, agents, report, runtime};

#[derive(Debug, Clone, Serialize)]
pub struct SweepSample {
    pub secs: f64,
    pub flows: u64,
    pub data_bytes: u64,
    pub data_allocated: u64,
    pub memory: Memory,
    /// Records in the persistent tables, and in `grants` alone (a grant
    /// and its tokens are one record; from `store_stats`; absent if the
    /// admin socket did not answer).
    pub records: Option<u64>,
    pub grants: Option<u64>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Spread {
    fn of(mut values: Vec<f64>) -> Option<Self> {
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = match n {
            0 => return None,
            _ if n % 2 == 1 => values[n / 2],
            _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
        };
        Some(Self {
            min: values[0],
            median,
            max: values[n - 1],
        })
    }
}

/// The samples once the store could be steady: after one lifetime and two
/// sweep intervals.
#[derive(Debug, Clone, Serialize)]
pub struct Steady {
    pub from_secs: f64,
    pub samples: usize,
    pub data_bytes: Spread,
    pub data_allocated: Spread,
    pub rss: Spread,
    pub anon: Spread,
    pub records: Option<Spread>,
    /// Least-squares slope over the steady samples: ~0 when bounded.
    pub data_bytes_growth_per_sec: f64,
    pub data_allocated_growth_per_sec: f64,
    pub rss_growth_per_sec: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SweepFigures {
    pub bench: &'static str,
    pub unix_time: i64,
    pub gnapd: String,
    pub machine: report::Machine,
    pub rate: f64,
    pub lifetime_secs: u64,
    pub sweep_interval_secs: u64,
    pub run_secs: f64,
    pub concurrency: usize,
    pub flows: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Flows that started more than a second after their slot: the rate
    /// was not kept.
    pub late: u64,
    pub achieved_rate: f64,
    pub samples: Vec<SweepSample>,
    pub steady: Option<Steady>,
    pub stop: Stop,
    pub disk_after_stop: Disk,
}

/// Slope of `y` over `x` by least squares (0 for fewer than two points).
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), (x, y)| {
        (num + (x - mx) * (y - my), den + (x - mx) * (x - mx))
    });
    if den == 0.0 { 0.0 } else { num / den }
}

fn steady(samples: &[SweepSample], sweep: &Sweep) -> Option<Steady> {
    let from_secs = (sweep.lifetime + 2 * sweep.interval) as f64;
    let later: Vec<&SweepSample> = samples.iter().filter(|s| s.secs >= from_secs).collect();
    let spread = |f: &dyn Fn(&SweepSample) -> f64| Spread::of(later.iter().map(|s| f(s)).collect());
    let growth = |f: &dyn Fn(&SweepSample) -> f64| {
        slope(&later.iter().map(|s| (s.secs, f(s))).collect::<Vec<_>>())
    };
    let records: Vec<f64> = later
        .iter()
        .filter_map(|s| s.records.map(|r| r as f64))
        .collect();
    Some(Steady {
        from_secs,
        samples: later.len(),
        data_bytes: spread(&|s| s.data_bytes as f64)?,
        data_allocated: spread(&|s| s.data_allocated as f64)?,
        rss: spread(&|s| s.memory.rss as f64)?,
        anon: spread(&|s| s.memory.anon as f64)?,
        records: Spread::of(records),
        data_bytes_growth_per_sec: growth(&|s| s.data_bytes as f64),
        data_allocated_growth_per_sec: growth(&|s| s.data_allocated as f64),
        rss_growth_per_sec: growth(&|s| s.memory.rss as f64),
    })
}

fn sample(data: &Path, pid: u32, since: Instant, flows: u64) -> SweepSample {
    let disk = disk::usage(data).unwrap_or_default();
    let tables = server::store_stats(data);
    let records = tables.as_object().and_then(|map| {
        if map.contains_key("unavailable") {
            return None;
        }
        Some(
            map.iter()
                .filter(|(name, _)| !name.starts_with("memory:"))
                .filter_map(|(_, size)| size["records"].as_u64())
                .sum(),
        )
    });
    let grants = tables.get("grants").and_then(|t| t["records"].as_u64());
    SweepSample {
        secs: since.elapsed().as_secs_f64(),
        flows,
        data_bytes: disk.bytes,
        data_allocated: disk.allocated,
        memory: Memory::of(pid).unwrap_or_default(),
        records,
        grants,
    }
}

fn print_sample(s: &SweepSample) {
    let count = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
    println!(
        "  {:>7.1} s  {:>8} flows  data dir {:>13} bytes ({:>13} allocated)  records {:>8}  grants {:>8}  {}",
        s.secs,
        s.flows,
        s.data_bytes,
        s.data_allocated,
        count(s.records),
        count(s.grants),
        s.memory.show()
    );
}

/// Flows at `rate` a second from `concurrency` connections for `run_for`:
/// (flows, errors, first error, late).
async fn paced(
    server: &super::flow_window::Server,
    rate: f64,
    run_for: Duration,
    done: Arc<AtomicU64>,
) -> Res<(u64, u64, Option<String>, u64)> {
    let total = (rate * run_for.as_secs_f64()) as usize;
    let next = Arc::new(AtomicUsize::new(0));
    let late = Arc::new(AtomicU64::new(0));
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..server.concurrency {
        let mut conn = Conn::open(server.addr()).await?;
        let (next, late, done) = (next.clone(), late.clone(), done.clone());
        let (target, addr) = (server.target.clone(), server.addr());
        tasks.push(tokio::spawn(async move {
            let (mut errors, mut first_error) = (0u64, None::<String>);
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= total {
                    break;
                }
                let slot = start + Duration::from_secs_f64(k as f64 / rate);
                tokio::time::sleep_until(slot).await;
                if slot.elapsed() > Duration::from_secs(1) {
                    late.fetch_add(1, Ordering::Relaxed);
                }
                let result = match agents::Agent::new() {
                    Ok(agent) => agents::first_token(&mut conn, &target, &agent).await,
                    Err(e) => Err(e),
                };
                match result {
                    Ok(_) => {
                        done.fetch_add(1, Ordering::Relaxed);
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
            (errors, first_error)
        }));
    }
    let (mut errors, mut first_error) = (0, None);
    for task in tasks {
        let (e, f) = task.await?;
        errors += e;
        if first_error.is_none() {
            first_error = f;
        }
    }
    Ok((
        done.load(Ordering::Relaxed),
        errors,
        first_error,
        late.load(Ordering::Relaxed),
    ))
}

pub fn run(cfg: &Config) -> Res<u64> {
    let sweep = cfg.sweep.ok_or("not in --sweep mode")?;
    if !cfg.gnapd.exists() {
        return Err(format!("no gnapd binary at {}", cfg.gnapd.display()).into());
    }
    let tck = procfs::clk_tck();
    let rt = runtime(cfg)?;
    let begin = report::Figures::begin(cfg);
    println!("scale --sweep: a steady stream of short-lived agents (issue 19)");
    println!(
        "  machine: {} cores ({}); load average at start {}",
        begin.machine.cores, begin.machine.cpu, begin.machine.load_average_start
    );
    println!(
        "  gnapd: {}; {} flows/s for {:.0} s at concurrency {}; token and grant lifetime {} s, sweep every {} s; a sample every {:.0} s",
        cfg.gnapd.display(),
        sweep.rate,
        sweep.run_for.as_secs_f64(),
        cfg.concurrency,
        sweep.lifetime,
        sweep.interval,
        sweep.every.as_secs_f64()
    );
    let place = Place::new(&cfg.data_root, "scale-sweep", cfg.keep)?;
    place.write_config(
        &format!(
            "token_lifetime = {0}\ngrant_lifetime = {0}\nsweep_interval = {1}\n",
            sweep.lifetime, sweep.interval
        ),
        &cfg.settings,
    )?;
    let upstream = Upstream::start()?;
    let gnapd = Gnapd::start(&cfg.gnapd, &place, upstream.addr)?;
    let server = super::server_of(&gnapd, cfg, tck)?;
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let since = Instant::now();
    let sampler = {
        let (done, stop, data, pid) = (done.clone(), stop.clone(), place.data.clone(), server.pid);
        let every = sweep.every;
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            let mut next = since;
            while !stop.load(Ordering::Relaxed) {
                if Instant::now() >= next {
                    let s = sample(&data, pid, since, done.load(Ordering::Relaxed));
                    print_sample(&s);
                    samples.push(s);
                    next += every;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            samples
        })
    };
    let streamed = rt.block_on(paced(&server, sweep.rate, sweep.run_for, done.clone()));
    stop.store(true, Ordering::Relaxed);
    let mut samples = sampler.join().map_err(|_| "the sampler failed")?;
    let (flows, errors, first_error, late) = streamed?;
    let run_secs = since.elapsed().as_secs_f64();
    let last = sample(&place.data, server.pid, since, flows);
    print_sample(&last);
    samples.push(last);
    let stopped = gnapd.stop();
    let disk_after_stop = disk::usage(&place.data)?;
    let steady = steady(&samples, &sweep);
    let figures = SweepFigures {
        bench: "scale-sweep",
        unix_time: agents::unix_now(),
        gnapd: cfg.gnapd.display().to_string(),
        machine: report::Machine {
            load_average_end: procfs::loadavg(),
            ..begin.machine
        },
        rate: sweep.rate,
        lifetime_secs: sweep.lifetime,
        sweep_interval_secs: sweep.interval,
        run_secs,
        concurrency: cfg.concurrency,
        flows,
        errors,
        first_error,
        late,
        achieved_rate: flows as f64 / run_secs,
        samples,
        steady,
        stop: stopped,
        disk_after_stop,
    };
    print_summary(&figures);
    report::write_json(&cfg.json, &figures)?;
    println!("json: {}", cfg.json.display());
    Ok(figures.errors)
}

fn print_summary(f: &SweepFigures) {
    println!();
    println!(
        "streamed {} flows in {:.1} s ({:.0}/s; {} late by over 1 s); {} errors",
        f.flows, f.run_secs, f.achieved_rate, f.late, f.errors
    );
    if let Some(e) = &f.first_error {
        println!("  !! first error: {e}");
    }
    println!(
        "stopped in {:.2} s ({}); data dir after the stop: {} bytes ({} allocated)",
        f.stop.secs, f.stop.exit, f.disk_after_stop.bytes, f.disk_after_stop.allocated
    );
    match &f.steady {
        Some(s) => {
            println!(
                "steady state (the {} samples from {:.0} s on; min / median / max):",
                s.samples, s.from_secs
            );
            let show = |v: &Spread, unit: &dyn Fn(f64) -> String| {
                format!("{} / {} / {}", unit(v.min), unit(v.median), unit(v.max))
            };
            let megabytes = |v: f64| mb(v as u64);
            println!("  data dir size        {}", show(&s.data_bytes, &megabytes));
            println!(
                "  data dir allocated   {}",
                show(&s.data_allocated, &megabytes)
            );
            println!("  RSS                  {}", show(&s.rss, &megabytes));
            println!("  anonymous RSS        {}", show(&s.anon, &megabytes));
            if let Some(r) = &s.records {
                println!(
                    "  live records         {}",
                    show(r, &|v: f64| format!("{v:.0}"))
                );
            }
            println!(
                "  growth per second    data dir {:.0} B/s, allocated {:.0} B/s, RSS {:.0} B/s (about 0 when bounded)",
                s.data_bytes_growth_per_sec, s.data_allocated_growth_per_sec, s.rss_growth_per_sec
            );
        }
        None => println!(
            "no steady state: the run ended before one lifetime and two sweep intervals had passed (--run-for)"
        ),
    }
}
