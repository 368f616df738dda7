//! Process-wide counts of cryptographic operations, by operation and
//! algorithm: what `gnapd compare` reports as "crypto operations by kind",
//! read on the server from `/metrics`
//! (`gnapd_crypto_operations_total{operation,algorithm}`) and on the
//! client from this process. Counting costs a short lock and an atomic add.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// A signature made.
    Sign,
    /// A signature checked (each signature of a batch counts once).
    Verify,
    /// A hash computed (a digest, a stored token's hash, a thumbprint).
    Hash,
    /// A MAC computed or checked.
    Mac,
    /// An AEAD seal.
    Seal,
    /// An AEAD open.
    Open,
    /// A key pair generated.
    KeyGen,
}

impl Operation {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sign => "sign",
            Self::Verify => "verify",
            Self::Hash => "hash",
            Self::Mac => "mac",
            Self::Seal => "seal",
            Self::Open => "open",
            Self::KeyGen => "keygen",
        }
    }
}

// A handful of (operation, algorithm) pairs exist: a short lock around a
// small map finds the pair's counter (tens of nanoseconds uncontended,
// beside operations of microseconds), the add itself is atomic.
static COUNTERS: Mutex<BTreeMap<(Operation, &'static str), &'static AtomicU64>> =
    Mutex::new(BTreeMap::new());

/// Counts one `operation` with `algorithm` (a lower-case name:
/// `ed25519`, `ecdsa-p256-sha256`, `sha-256`, `hmac-sha256`, ...).
pub fn count(operation: Operation, algorithm: &'static str) {
    count_n(operation, algorithm, 1);
}

/// Counts `n` operations at once.
pub fn count_n(operation: Operation, algorithm: &'static str, n: u64) {
    let counter = {
        let mut counters = match COUNTERS.lock() {
            Ok(counters) => counters,
            Err(poisoned) => poisoned.into_inner(),
        };
        *counters
            .entry((operation, algorithm))
            .or_insert_with(|| Box::leak(Box::new(AtomicU64::new(0))))
    };
    counter.fetch_add(n, Ordering::Relaxed);
    #[cfg(test)]
    THIS_THREAD.with(|mine| {
        *mine
            .borrow_mut()
            .entry(format!("{}:{algorithm}", operation.as_str()))
            .or_default() += n;
    });
}

// Unit tests run side by side in one process under `cargo test`; each
// reads the counts of its own thread to assert exact numbers.
#[cfg(test)]
thread_local! {
    static THIS_THREAD: std::cell::RefCell<BTreeMap<String, u64>> =
        const { std::cell::RefCell::new(BTreeMap::new()) };
}

/// This thread's counts so far (tests only), keyed `operation:algorithm`.
#[cfg(test)]
pub fn this_thread() -> BTreeMap<String, u64> {
    THIS_THREAD.with(|mine| mine.borrow().clone())
}

/// How much `key` (`operation:algorithm`) moved on this thread while `f`
/// ran (tests only).
#[cfg(test)]
pub fn moved<T>(key: &str, f: impl FnOnce() -> T) -> (T, u64) {
    let before = this_thread().get(key).copied().unwrap_or(0);
    let value = f();
    let after = this_thread().get(key).copied().unwrap_or(0);
    (value, after - before)
}

/// The series the counts are exposed in on `/metrics`.
pub const SERIES: &str = "gnapd_crypto_operations_total";

/// Appends every count so far to a Prometheus text page: one
/// `gnapd_crypto_operations_total{operation="…",algorithm="…"}` series per
/// pair seen (operation and algorithm names need no escaping).
pub fn render(out: &mut String) {
    use std::fmt::Write as _;
    let counters: Vec<((Operation, &'static str), u64)> = {
        let counters = match COUNTERS.lock() {
            Ok(counters) => counters,
            Err(poisoned) => poisoned.into_inner(),
        };
        counters
            .iter()
            .map(|(pair, n)| (*pair, n.load(Ordering::Relaxed)))
            .collect()
    };
    let _ = writeln!(
        out,
        "# HELP {SERIES} Cryptographic operations done by this process, by operation and algorithm.\n# TYPE {SERIES} counter"
    );
    for ((operation, algorithm), n) in counters {
        let _ = writeln!(
            out,
            "{SERIES}{{operation=\"{}\",algorithm=\"{algorithm}\"}} {n}",
            operation.as_str()
        );
    }
}

/// Every count so far, keyed `operation:algorithm`.
pub fn snapshot() -> BTreeMap<String, u64> {
    let counters = match COUNTERS.lock() {
        Ok(counters) => counters,
        Err(poisoned) => poisoned.into_inner(),
    };
    counters
        .iter()
        .map(|((operation, algorithm), n)| {
            (
                format!("{}:{algorithm}", operation.as_str()),
                n.load(Ordering::Relaxed),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_has_one_series_per_pair() {
        count(Operation::Seal, "test-only-aead");
        let mut text = String::new();
        render(&mut text);
        assert!(text.contains("# TYPE gnapd_crypto_operations_total counter\n"));
        let line = text
            .lines()
            .find(|l| l.contains("algorithm=\"test-only-aead\""))
            .unwrap();
        assert!(line.starts_with(
            "gnapd_crypto_operations_total{operation=\"seal\",algorithm=\"test-only-aead\"} "
        ));
    }

    #[test]
    fn counts_add_up_per_operation_and_algorithm() {
        let before = snapshot();
        let key = "keygen:test-only-alg";
        count(Operation::KeyGen, "test-only-alg");
        count_n(Operation::KeyGen, "test-only-alg", 2);
        let after = snapshot();
        assert_eq!(
            after.get(key).copied().unwrap_or(0) - before.get(key).copied().unwrap_or(0),
            3
        );
    }
}
