//! Heap bytes and time per remembered signature in the replay memory, the
//! layout before issue 19's compaction (`old.rs`) beside the current
//! `MemoryNonceStore`, in one run: every signature from its own key (a
//! brand-new agent's one grant request), at 100,000, 1,000,000 and
//! 4,000,000 live values. Bytes are counted by a wrapping global
//! allocator (all heap the store takes, empty slots included); times are
//! the mean `remember` of a fresh value while filling, and of a replay
//! once full (capacity twice the values: shards fill unevenly). A report, never a pass/fail check:
//! `cargo bench --bench replay_memory`.
//!
//! One run on the 2-core machine (ns are noisy there):
//! 100,000: old 65.7 B, 687/444 ns; new 14.5 B, 321/290 ns.
//! 1,000,000: old 104.9 B, 917/636 ns; new 19.1 B, 453/524 ns.
//! 4,000,000: old 104.9 B, 1094/1006 ns; new 18.9 B, 676/696 ns.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod old;

use std::alloc::System;
use std::time::Instant;

use gnapd::proto::httpsig::nonce::{MemoryNonceStore, NonceStore, Seen};
use gnapd::proto::jwk::Thumbprint;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const NOW: i64 = 1_790_000_000;

/// Heap bytes held now by everything allocated since `region` began.
fn held(region: &Region<'_, System>) -> isize {
    let change = region.change();
    change.bytes_allocated as isize + change.bytes_reallocated - change.bytes_deallocated as isize
}

/// A distinct thumbprint-shaped scope per agent (43 base64url characters).
fn scopes(n: usize) -> Vec<Thumbprint> {
    (0..n)
        .map(|i| Thumbprint::of_certificate(&format!("agent-{i:0>37}")))
        .collect()
}

struct Measured {
    bytes_per_value: f64,
    fresh_ns: f64,
    replay_ns: f64,
}

fn measure(store: &dyn NonceStore, scopes: &[Thumbprint], region: &Region<'_, System>) -> Measured {
    // The store's fixed costs (shards, quota counters) count too: the
    // region began before it was made.
    let before = 0;
    // A signature's replay value: "b:" and the SHA-256 of its base.
    let value = |i: usize| {
        let mut v = b"b:".to_vec();
        v.extend_from_slice(&gnapd::proto::hash::sha256(&i.to_le_bytes()));
        v
    };
    let made = held(region);
    let values: Vec<Vec<u8>> = (0..scopes.len()).map(value).collect();
    let values_bytes = held(region) - made;
    let start = Instant::now();
    for (scope, value) in scopes.iter().zip(&values) {
        assert_eq!(
            store.remember(scope, value, NOW + 300, NOW),
            Ok(Seen::Fresh)
        );
    }
    let fresh = start.elapsed();
    let bytes = held(region) - before - values_bytes;
    let start = Instant::now();
    for (scope, value) in scopes.iter().zip(&values).take(200_000) {
        assert_eq!(
            store.remember(scope, value, NOW + 300, NOW + 1),
            Ok(Seen::Replayed)
        );
    }
    let replays = scopes.len().min(200_000);
    Measured {
        bytes_per_value: bytes as f64 / scopes.len() as f64,
        fresh_ns: fresh.as_nanos() as f64 / scopes.len() as f64,
        replay_ns: start.elapsed().as_nanos() as f64 / replays as f64,
    }
}

fn main() {
    println!(
        "live values | layout | heap bytes/value | ns/remember (fresh) | ns/remember (replay)"
    );
    for n in [100_000, 1_000_000, 4_000_000] {
        let scopes = scopes(n);
        for layout in ["old", "new"] {
            let region = Region::new(GLOBAL);
            let store: Box<dyn NonceStore> = match layout {
                "old" => Box::new(old::OldNonceStore::with_capacity(2 * n)),
                _ => Box::new(MemoryNonceStore::with_capacity(2 * n)),
            };
            let m = measure(store.as_ref(), &scopes, &region);
            println!(
                "{n:>11} | {layout:>6} | {:>16.1} | {:>19.0} | {:>20.0}",
                m.bytes_per_value, m.fresh_ns, m.replay_ns
            );
        }
    }
}
