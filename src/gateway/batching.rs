//! Gathers the calls that wait for their signature check at the same moment
//! into one batch ([`crate::proto::httpsig::batch`]).
//!
//! No call waits for others to arrive beyond a turn of its thread. A call
//! queues its signature and yields once, so that the tasks already
//! runnable on its thread (other connections whose requests have arrived)
//! reach the same point and queue theirs; one that finds itself alone on a
//! lane that was busy a moment ago yields once more. The first queued call to run again takes the whole queue, checks
//! it on its own thread and hands every other call its answer. A quiet
//! gateway checks each call alone, for the price of one yield; a busy one
//! checks several at a time for less CPU each.
//!
//! A call dropped while queued (its client went away) leaves its signature
//! to be checked with the next batch and the answer unread. A call that
//! takes the queue checks it without an await, so it cannot be dropped
//! halfway and leave others without an answer.
//!
//! Each runtime thread queues into a lane of its own ([`LANES`], picked by
//! a per-thread number): the calls a taker answers are then the ones its
//! own thread runs, woken without waking another thread (a wake across
//! threads is a futex call and a context switch on each side). A task that
//! another thread stole after its yield still finds its lane, which it
//! remembers.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use tokio::sync::oneshot;

use crate::proto::httpsig::batch::{self, Checked, Pending};

/// Queues, one per runtime thread up to this many (threads past it share).
const LANES: usize = 8;

/// This thread's lane: numbers are handed out in the order threads first
/// queue a call.
fn lane() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static LANE: Cell<Option<usize>> = const { Cell::new(None) };
    }
    LANE.with(|lane| match lane.get() {
        Some(n) => n,
        None => {
            let n = NEXT.fetch_add(1, Ordering::Relaxed) % LANES;
            lane.set(Some(n));
            n
        }
    })
}

/// Where calls meet.
#[derive(Debug)]
pub(crate) struct Batcher {
    /// Off: every signature is checked alone, at once (`serve
    /// --no-signature-batching`, for measuring what batching buys).
    enabled: bool,
    lanes: [Mutex<Queue>; LANES],
    stats: Stats,
}

#[derive(Debug, Default)]
struct Queue {
    /// Bumped whenever a call takes the queue: a queued call that finds it
    /// unchanged knows its signature is still there.
    round: u64,
    waiting: Vec<(Pending, oneshot::Sender<Option<Checked>>)>,
    /// How many calls the last taker took: more than one means calls are
    /// arriving together on this lane.
    last_taken: usize,
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
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            lanes: Default::default(),
            stats: Stats::default(),
        }
    }

    /// Checks `pending`, with whatever other calls are waiting at the same
    /// moment. `Some` if it verified.
    pub(crate) async fn check(&self, pending: Pending) -> Option<Checked> {
        if !self.enabled {
            return self.run(vec![pending]).pop().flatten();
        }
        let (answer, answered) = oneshot::channel();
        let lane = &self.lanes[lane()];
        let round = {
            let mut queue = lane.lock().unwrap_or_else(PoisonError::into_inner);
            queue.waiting.push((pending, answer));
            queue.round
        };
        tokio::task::yield_now().await;
        // Alone on a lane that was busy a moment ago: one more turn lets
        // the calls about to reach this point join, since a signature
        // checked alone costs nearly twice its share of a batch. A quiet
        // lane (its last taker took one call) does not wait.
        let alone_on_a_busy_lane = {
            let queue = lane.lock().unwrap_or_else(PoisonError::into_inner);
            queue.round == round && queue.waiting.len() == 1 && queue.last_taken > 1
        };
        if alone_on_a_busy_lane {
            tokio::task::yield_now().await;
        }
        let taken = {
            let mut queue = lane.lock().unwrap_or_else(PoisonError::into_inner);
            (queue.round == round).then(|| {
                queue.round = queue.round.wrapping_add(1);
                queue.last_taken = queue.waiting.len();
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
        stats
            .failed
            .fetch_add(tally.failed as u64, Ordering::Relaxed);
        checked
    }

    /// The counters in the Prometheus text format.
    pub(crate) fn render(&self, out: &mut String) {
        let stats = &self.stats;
        for (name, help, value) in [
            (
                "gnapd_gateway_signatures_checked_total",
                "Signatures (gateway calls and grant requests) that reached the cryptographic check.",
                &stats.checked,
            ),
            (
                "gnapd_gateway_signature_batches_total",
                "Batch equations evaluated (gateway calls and grant requests).",
                &stats.equations,
            ),
            (
                "gnapd_gateway_signatures_batched_total",
                "Signatures (gateway calls and grant requests) checked in a batch equation.",
                &stats.in_equations,
            ),
            (
                "gnapd_gateway_signature_batches_failed_total",
                "Batch equations that failed (their signatures were then checked one by one).",
                &stats.failed,
            ),
        ] {
            crate::proto::exposition::write_counter(out, name, help, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::proto::httpsig::{Algorithm, GnapProfile, HttpRequest, SignOptions, sign_gnap};
    use crate::proto::jwk::{SigningKey, VerifyingKey};

    const NOW: i64 = 1_790_000_000;

    /// A signed request's pending check; `corrupt` changes one byte of the
    /// signature, so only the cryptography can tell.
    fn pending(key: &SigningKey, public: &Arc<VerifyingKey>, n: usize, corrupt: bool) -> Pending {
        let mut request = HttpRequest::new("POST", format!("https://gw.example/mcp/s{n}"))
            .with_body(format!("{{\"n\":{n}}}"));
        sign_gnap(&mut request, key, NOW, &SignOptions::default()).unwrap();
        if corrupt {
            let mut value = request.fields.lines("signature").next().unwrap().to_vec();
            let at = value.iter().position(|b| *b == b':').unwrap() + 2;
            value[at] = if value[at] == b'A' { b'B' } else { b'A' };
            request.fields.set("Signature", value);
        }
        GnapProfile::default()
            .screen(&request, public, NOW)
            .unwrap()
    }

    fn key() -> (SigningKey, Arc<VerifyingKey>) {
        let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let jwk = key.verifying_key().public_jwk().unwrap();
        let public = Arc::new(VerifyingKey::from_presented_jwk(jwk).unwrap());
        (key, public)
    }

    /// Spawns one call per pending check, all at once; their answers in
    /// order.
    async fn answers(batcher: &Arc<Batcher>, pending: Vec<Pending>) -> Vec<bool> {
        let tasks: Vec<_> = pending
            .into_iter()
            .map(|pending| {
                let batcher = batcher.clone();
                tokio::spawn(async move { batcher.check(pending).await.is_some() })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        answers
    }

    #[tokio::test(flavor = "current_thread")]
    async fn calls_waiting_together_share_one_equation_and_each_gets_its_own_answer() {
        let (key, public) = key();
        let batcher = Arc::new(Batcher::new(true));
        let calls = (0..8).map(|n| pending(&key, &public, n, n == 5)).collect();
        let answers = answers(&batcher, calls).await;
        assert_eq!(
            answers,
            vec![true, true, true, true, true, false, true, true]
        );
        let stats = &batcher.stats;
        assert_eq!(stats.checked.load(Ordering::Relaxed), 8);
        assert_eq!(stats.equations.load(Ordering::Relaxed), 1);
        assert_eq!(stats.in_equations.load(Ordering::Relaxed), 8);
        assert_eq!(stats.failed.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_lone_call_is_checked_alone_and_a_disabled_batcher_never_batches() {
        let (key, public) = key();
        let on = Batcher::new(true);
        assert!(on.check(pending(&key, &public, 0, false)).await.is_some());
        assert!(on.check(pending(&key, &public, 1, true)).await.is_none());
        assert_eq!(on.stats.equations.load(Ordering::Relaxed), 0);

        let off = Arc::new(Batcher::new(false));
        let calls = (0..4).map(|n| pending(&key, &public, n, n == 2)).collect();
        assert_eq!(answers(&off, calls).await, vec![true, true, false, true]);
        assert_eq!(off.stats.checked.load(Ordering::Relaxed), 4);
        assert_eq!(off.stats.equations.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_call_dropped_while_queued_leaves_the_others_their_answers() {
        let (key, public) = key();
        let batcher = Arc::new(Batcher::new(true));
        // The first call queues its signature and is dropped at its yield.
        let mut first = Box::pin(batcher.check(pending(&key, &public, 0, false)));
        assert!(
            futures_util::FutureExt::now_or_never(&mut first).is_none(),
            "a queued call yields once"
        );
        drop(first);
        let calls = (1..4).map(|n| pending(&key, &public, n, false)).collect();
        assert_eq!(answers(&batcher, calls).await, vec![true; 3]);
        // The dropped call's signature went with the others' batch.
        assert_eq!(batcher.stats.checked.load(Ordering::Relaxed), 4);
        assert!(
            batcher
                .lanes
                .iter()
                .all(|lane| lane.lock().unwrap().waiting.is_empty())
        );
    }
}
