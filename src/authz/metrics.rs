//! Counters and latency histograms, rendered in the Prometheus text format.
//!
//! A handful of fixed series: no labels chosen by clients (a reason label
//! comes from [`Rejection::reason`](crate::proto::httpsig::Rejection::reason),
//! a closed set), so cardinality is bounded.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::proto::exposition::write_counter;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A latency histogram.
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    total: AtomicU64,
    /// Sum in microseconds (integer, so it can be atomic).
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub(crate) fn observe(&self, seconds: f64) {
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            if seconds <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.total.fetch_add(1, Ordering::Relaxed);
        // Truncation to whole microseconds is intended.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let micros = (seconds * 1e6) as u64;
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn render(&self, name: &str, labels: &str, out: &mut String) {
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}le=\"{bound}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        let total = self.total.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {total}");
        #[allow(clippy::cast_precision_loss)]
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let labels = labels.trim_end_matches(',');
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {total}");
    }
}

/// Grant outcomes counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Outcome {
    /// Approved at once.
    Approved,
    /// Waiting for a person.
    Pending,
    /// Refused by policy.
    Denied,
    /// Refused as malformed or unauthenticated.
    Error,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::Pending => "pending",
            Self::Denied => "denied",
            Self::Error => "error",
        }
    }
}

/// The AS's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    grants: Mutex<BTreeMap<Outcome, u64>>,
    tokens_issued: AtomicU64,
    tokens_rotated: AtomicU64,
    tokens_revoked: AtomicU64,
    signature_failures: Mutex<BTreeMap<&'static str, u64>>,
    /// Requests refused at a bound (`super::guards`), by bound.
    limited: Mutex<BTreeMap<&'static str, u64>>,
    /// Grants waiting for a person now (their slots, `super::pending`).
    pending_held: AtomicU64,
    /// Expired records the sweep removed: grants, tokens, replay entries,
    /// instances (`store::Swept`).
    swept: [AtomicU64; 4],
    latency: Mutex<BTreeMap<&'static str, std::sync::Arc<Histogram>>>,
}

impl Metrics {
    /// Counts a grant request's outcome.
    pub(crate) fn grant(&self, outcome: Outcome) {
        if let Ok(mut g) = self.grants.lock() {
            *g.entry(outcome).or_default() += 1;
        }
    }

    /// Counts issued access tokens.
    pub(crate) fn issued(&self, n: usize) {
        self.tokens_issued.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Counts a token rotation.
    pub(crate) fn rotated(&self) {
        self.tokens_rotated.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a token revocation.
    pub(crate) fn revoked(&self) {
        self.tokens_revoked.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a signature failure by reason.
    pub(crate) fn signature_failure(&self, reason: &'static str) {
        if let Ok(mut f) = self.signature_failures.lock() {
            *f.entry(reason).or_default() += 1;
        }
    }

    /// Counts a request refused at the bound named `limit` (a closed set:
    /// the names of `super::guards`).
    pub(crate) fn limited(&self, limit: &'static str) {
        if let Ok(mut l) = self.limited.lock() {
            *l.entry(limit).or_default() += 1;
        }
    }

    /// Sets how many grants wait for a person.
    pub(crate) fn pending_held(&self, held: usize) {
        self.pending_held.store(held as u64, Ordering::Relaxed);
    }

    /// Counts what one sweep removed.
    pub(crate) fn swept(&self, swept: &crate::store::Swept) {
        let removed = [swept.grants, swept.tokens, swept.nonces, swept.instances];
        for (total, n) in self.swept.iter().zip(removed) {
            total.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// Records a request's latency for the named endpoint.
    pub(crate) fn latency(&self, endpoint: &'static str, seconds: f64) {
        let histogram = match self.latency.lock() {
            Ok(mut map) => map.entry(endpoint).or_default().clone(),
            Err(_) => return,
        };
        histogram.observe(seconds);
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub(crate) fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP gnapd_grants_total Grant requests by outcome.\n# TYPE gnapd_grants_total counter\n");
        if let Ok(g) = self.grants.lock() {
            for outcome in [
                Outcome::Approved,
                Outcome::Pending,
                Outcome::Denied,
                Outcome::Error,
            ] {
                let n = g.get(&outcome).copied().unwrap_or(0);
                let _ = writeln!(
                    out,
                    "gnapd_grants_total{{outcome=\"{}\"}} {n}",
                    outcome.label()
                );
            }
        }
        for (name, help, value) in [
            (
                "gnapd_tokens_issued_total",
                "Access tokens issued.",
                &self.tokens_issued,
            ),
            (
                "gnapd_tokens_rotated_total",
                "Access tokens rotated.",
                &self.tokens_rotated,
            ),
            (
                "gnapd_tokens_revoked_total",
                "Access tokens revoked.",
                &self.tokens_revoked,
            ),
        ] {
            write_counter(&mut out, name, help, value);
        }
        out.push_str("# HELP gnapd_signature_failures_total HTTP message signature failures by reason.\n# TYPE gnapd_signature_failures_total counter\n");
        if let Ok(f) = self.signature_failures.lock() {
            for (reason, n) in f.iter() {
                let _ = writeln!(
                    out,
                    "gnapd_signature_failures_total{{reason=\"{reason}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP gnapd_limited_total Requests refused at a bound (rate limit, cap, replay budget), by bound.\n# TYPE gnapd_limited_total counter\n");
        if let Ok(l) = self.limited.lock() {
            for (limit, n) in l.iter() {
                let _ = writeln!(out, "gnapd_limited_total{{limit=\"{limit}\"}} {n}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP gnapd_pending_grants Grants waiting for a person (held slots).\n# TYPE gnapd_pending_grants gauge\ngnapd_pending_grants {}",
            self.pending_held.load(Ordering::Relaxed)
        );
        out.push_str("# HELP gnapd_swept_total Expired records the sweep removed, by kind.\n# TYPE gnapd_swept_total counter\n");
        for (record, n) in ["grants", "tokens", "nonces", "instances"]
            .iter()
            .zip(&self.swept)
        {
            let n = n.load(Ordering::Relaxed);
            let _ = writeln!(out, "gnapd_swept_total{{record=\"{record}\"}} {n}");
        }
        out.push_str("# HELP gnapd_request_duration_seconds Request latency by endpoint.\n# TYPE gnapd_request_duration_seconds histogram\n");
        if let Ok(l) = self.latency.lock() {
            for (endpoint, h) in l.iter() {
                h.render(
                    "gnapd_request_duration_seconds",
                    &format!("endpoint=\"{endpoint}\","),
                    &mut out,
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_sweeps_removed_adds_up_by_kind() {
        let metrics = Metrics::default();
        let swept = crate::store::Swept {
            grants: 2,
            tokens: 3,
            nonces: 5,
            instances: 7,
        };
        metrics.swept(&swept);
        metrics.swept(&swept);
        let text = metrics.render();
        for line in [
            "gnapd_swept_total{record=\"grants\"} 4",
            "gnapd_swept_total{record=\"tokens\"} 6",
            "gnapd_swept_total{record=\"nonces\"} 10",
            "gnapd_swept_total{record=\"instances\"} 14",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in {text}");
        }
    }
}
