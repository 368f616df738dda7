//! What the agents saw in one phase, and the summary over runs.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use crate::attack;

/// Latencies (ms) and failures as the agents record them.
#[derive(Default)]
pub struct Samples {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    grants: Vec<f64>,
    calls: Vec<f64>,
    grant_failures: u64,
    call_failures: u64,
    /// Failures by status (0: no answer).
    statuses: BTreeMap<u16, u64>,
}

impl Samples {
    pub fn record(&self, grant: bool, elapsed: Duration, ok: bool) {
        let ms = elapsed.as_secs_f64() * 1000.0;
        if let Ok(mut s) = self.inner.lock() {
            match (grant, ok) {
                (true, true) => s.grants.push(ms),
                (false, true) => s.calls.push(ms),
                (true, false) => s.grant_failures += 1,
                (false, false) => s.call_failures += 1,
            }
        }
    }

    pub fn status(&self, status: u16) {
        if let Ok(mut s) = self.inner.lock() {
            *s.statuses.entry(status).or_default() += 1;
        }
    }

    /// The phase these samples make, `took` long.
    pub fn phase(&self, took: Duration, rss_peak: f64, cpu: f64) -> Phase {
        let Ok(mut s) = self.inner.lock() else {
            return Phase::default();
        };
        s.grants.sort_by(f64::total_cmp);
        s.calls.sort_by(f64::total_cmp);
        let rate = |failed: u64, ok: usize| {
            let all = failed as f64 + ok as f64;
            if all == 0.0 {
                f64::NAN
            } else {
                100.0 * failed as f64 / all
            }
        };
        let answered = (s.grants.len() + s.calls.len()) as f64;
        Phase {
            grant_p50: pct(&s.grants, 50.0),
            grant_p99: pct(&s.grants, 99.0),
            call_p50: pct(&s.calls, 50.0),
            call_p99: pct(&s.calls, 99.0),
            grant_errors: rate(s.grant_failures, s.grants.len()),
            call_errors: rate(s.call_failures, s.calls.len()),
            ops_per_s: answered / took.as_secs_f64(),
            rss_peak,
            cpu_per_s: cpu / took.as_secs_f64(),
            statuses: s.statuses.clone(),
        }
    }
}

/// One phase's figures: latencies in ms, error rates in %, RSS in MiB,
/// gnapd's CPU in cores.
#[derive(Default, Clone)]
pub struct Phase {
    pub grant_p50: f64,
    pub grant_p99: f64,
    pub call_p50: f64,
    pub call_p99: f64,
    pub grant_errors: f64,
    pub call_errors: f64,
    pub ops_per_s: f64,
    pub rss_peak: f64,
    pub cpu_per_s: f64,
    pub statuses: BTreeMap<u16, u64>,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "grants p50 {:.1} p99 {:.1} ms, errors {:.2}% | calls p50 {:.1} p99 {:.1} ms, errors {:.2}% | {:.0} ops/s | gnapd RSS peak {:.1} MiB, CPU {:.2} cores",
            self.grant_p50,
            self.grant_p99,
            self.grant_errors,
            self.call_p50,
            self.call_p99,
            self.call_errors,
            self.ops_per_s,
            self.rss_peak,
            self.cpu_per_s,
        )?;
        if !self.statuses.is_empty() {
            write!(
                f,
                " | failures by status (0 = no answer): {:?}",
                self.statuses
            )?;
        }
        Ok(())
    }
}

pub fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn mmm(values: impl Iterator<Item = f64>) -> String {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    format!(
        "{:>9.2} {:>9.2} {:>9.2}",
        v.first().copied().unwrap_or(f64::NAN),
        pct(&v, 50.0),
        v.last().copied().unwrap_or(f64::NAN)
    )
}

/// min / median / max over the runs.
pub fn summary(results: &[(Phase, Phase, attack::Report)]) {
    println!(
        "\nover {} runs:                         min    median       max",
        results.len()
    );
    type Pick = fn(&Phase) -> f64;
    let rows: [(&str, Pick); 9] = [
        ("grant p50 (ms)", |p| p.grant_p50),
        ("grant p99 (ms)", |p| p.grant_p99),
        ("grant errors (%)", |p| p.grant_errors),
        ("call p50 (ms)", |p| p.call_p50),
        ("call p99 (ms)", |p| p.call_p99),
        ("call errors (%)", |p| p.call_errors),
        ("agent ops/s", |p| p.ops_per_s),
        ("gnapd RSS peak (MiB)", |p| p.rss_peak),
        ("gnapd CPU (cores)", |p| p.cpu_per_s),
    ];
    for (name, pick) in rows {
        println!(
            "  alone        {name:<22} {}",
            mmm(results.iter().map(|r| pick(&r.0)))
        );
        println!(
            "  under attack {name:<22} {}",
            mmm(results.iter().map(|r| pick(&r.1)))
        );
    }
    type PickA = fn(&attack::Report) -> f64;
    let attack_rows: [(&str, PickA); 4] = [
        ("idle held, lowest", |a| a.idle_low as f64),
        ("slow held, lowest", |a| a.slow_low as f64),
        ("closed by gnapd", |a| a.closed as f64),
        ("connects failed", |a| a.failed as f64),
    ];
    for (name, pick) in attack_rows {
        println!(
            "  attack       {name:<22} {}",
            mmm(results.iter().map(|r| pick(&r.2)))
        );
    }
}
