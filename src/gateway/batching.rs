//! Gathers the calls that wait for their signature check at the same moment
//! into one batch ([`crate::proto::httpsig::batch`]).
//!
//! No call waits for others to arrive. A call queues its signature and
//! yields once, so that the tasks already runnable on its thread (other
//! connections whose requests have arrived) reach the same point and queue
//! theirs. The first queued call to run again takes the whole queue, checks
//! it on its own thread and hands every other call its answer. A quiet
//! gateway checks each call alone, for the price of one yield; a busy one
//! checks several at a time for less CPU each.
//!
//! A call dropped while queued (its client went away) leaves its signature
//! to be checked with the next batch and the answer unread. A call that
//! takes the queue checks it without an await, so it cannot be dropped
//! halfway and leave others without an answer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use tokio::sync::oneshot;

use crate::proto::httpsig::batch::{self, Checked, Pending};

/// Where calls meet.
#[derive(Debug)]
pub struct Batcher {
    /// Off: every signature is checked alone, at once (`serve
    /// --no-signature-batching`, for measuring what batching buys).
    enabled: bool,
    queue: Mutex<Queue>,
    stats: Stats,
}

#[derive(Debug, Default)]
struct Queue {
    /// Bumped whenever a call takes the queue: a queued call that finds it
    /// unchanged knows its signature is still there.
    round: u64,
    waiting: Vec<(Pending, oneshot::Sender<Option<Checked>>)>,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
struct Stats {
    checked: AtomicU64,
    equations: AtomicU64,
    in_equations: AtomicU64,
    failed: AtomicU64,
}

impl Batcher {
    /// A batcher; `enabled = false` checks every signature alone.
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            queue: Mutex::default(),
            stats: Stats::default(),
        }
    }

    /// Checks `pending`, with whatever other calls are waiting at the same
    /// moment. `Some` if it verified.
    pub async fn check(&self, pending: Pending) -> Option<Checked> {
        if !self.enabled {
            return self.run(vec![pending]).pop().flatten();
        }
        let (answer, answered) = oneshot::channel();
        let round = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.waiting.push((pending, answer));
            queue.round
        };
        tokio::task::yield_now().await;
        let taken = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            (queue.round == round).then(|| {
                queue.round = queue.round.wrapping_add(1);
                std::mem::take(&mut queue.waiting)
            })
        };
        if let Some(waiting) = taken {
            let (pending, answers): (Vec<_>, Vec<_>) = waiting.into_iter().unzip();
            for (checked, answer) in self.run(pending).into_iter().zip(answers) {
                // A caller that went away does not read its answer.
                let _ = answer.send(checked);
            }
        }
        // The answer was sent before the round ended; a lost one (the taker
        // panicked) refuses the call rather than letting it through.
        answered.await.ok().flatten()
    }

    fn run(&self, pending: Vec<Pending>) -> Vec<Option<Checked>> {
        let count = pending.len() as u64;
        let (checked, tally) = batch::check(pending);
        let stats = &self.stats;
        stats.checked.fetch_add(count, Ordering::Relaxed);
        stats
            .equations
            .fetch_add(tally.equations as u64, Ordering::Relaxed);
        stats
            .in_equations
            .fetch_add(tally.in_equations as u64, Ordering::Relaxed);
        stats.failed.fetch_add(tally.failed as u64, Ordering::Relaxed);
        checked
    }

    /// The counters in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let stats = &self.stats;
        for (name, help, value) in [
            (
                "gnapd_gateway_signatures_checked_total",
                "Gateway signatures that reached the cryptographic check.",
                &stats.checked,
            ),
            (
                "gnapd_gateway_signature_batches_total",
                "Batch equations the gateway evaluated.",
                &stats.equations,
            ),
            (
                "gnapd_gateway_signatures_batched_total",
                "Gateway signatures checked in a batch equation.",
                &stats.in_equations,
            ),
            (
                "gnapd_gateway_signature_batches_failed_total",
                "Batch equations that failed (their signatures were then checked one by one).",
                &stats.failed,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
    }
}
