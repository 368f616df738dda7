//! The replay cache against its contract: a reference model on random
//! sequences, the bound on how long a value outlives its window, and
//! racing threads.

use std::collections::HashMap;
use std::sync::{Arc, Barrier};

use proptest::prelude::*;

use super::*;
use crate::proto::httpsig::Algorithm;
use crate::proto::jwk::SigningKey;

fn scopes(n: usize) -> Vec<Thumbprint> {
    (0..n)
        .map(|_| {
            SigningKey::generate(Algorithm::Ed25519)
                .unwrap()
                .verifying_key()
                .thumbprint()
                .clone()
        })
        .collect()
}

/// Until when the store keeps a value taken at `now` for `until`: to the
/// end of its bucket (never before the bucket `now` is in).
fn kept_until(until: i64, now: i64) -> i64 {
    let bucket = until
        .div_euclid(EXPIRY_BUCKET_SECS)
        .max(now.div_euclid(EXPIRY_BUCKET_SECS));
    (bucket + 1) * EXPIRY_BUCKET_SECS
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_store_answers_as_a_set_with_expiry_would(
        steps in prop::collection::vec((0usize..3, 0u8..24, -20i64..1_400, 0i64..40), 1..300)
    ) {
        let store = MemoryNonceStore::with_capacity(1_000_000);
        let scopes = scopes(3);
        // (scope, value) → (its `until`, end of the bucket that keeps it).
        let mut model: HashMap<(usize, u8), (i64, i64)> = HashMap::new();
        let mut now = 1_700_000_000;
        for (scope, value, ahead, wait) in steps {
            now += wait;
            let until = now + ahead;
            let answer = store.remember(&scopes[scope], &[value], until, now).unwrap();
            let live = model.get(&(scope, value)).copied();
            if let Some((earlier_until, _)) = live {
                prop_assert!(
                    earlier_until < now || answer == Seen::Replayed,
                    "a value inside its window was fresh twice"
                );
            }
            let expected = match live {
                Some((_, kept)) if kept > now => Seen::Replayed,
                _ => Seen::Fresh,
            };
            prop_assert_eq!(answer, expected);
            if answer == Seen::Fresh {
                model.insert((scope, value), (until, kept_until(until, now)));
            }
        }
        for shard in &store.shards {
            let shard = shard.lock().unwrap();
            prop_assert_eq!(shard.held_total(), shard.len(), "quota counts follow expiry");
        }
    }
}

#[test]
fn a_value_outlives_its_until_by_at_most_one_bucket() {
    let s = scopes(1).remove(0);
    for until in 1_000..1_000 + 2 * EXPIRY_BUCKET_SECS {
        // A store each: time only moves forward in each.
        let store = MemoryNonceStore::default();
        let value = until.to_be_bytes();
        assert_eq!(store.remember(&s, &value, until, 900), Ok(Seen::Fresh));
        assert_eq!(store.remember(&s, &value, until, until), Ok(Seen::Replayed));
        // The last second its bucket keeps it, and the first after.
        let end = kept_until(until, 900);
        assert!(
            end > until && end - until <= EXPIRY_BUCKET_SECS,
            "{until} {end}"
        );
        assert_eq!(
            store.remember(&s, &value, until, end - 1),
            Ok(Seen::Replayed)
        );
        assert_eq!(store.remember(&s, &value, end + 300, end), Ok(Seen::Fresh));
    }
}

#[test]
fn a_value_expiring_past_the_ring_is_kept_until_it_expires() {
    // An hour's window: further ahead than the table's buckets reach, so
    // the value waits aside and joins the table as time comes near.
    let store = MemoryNonceStore::default();
    let s = scopes(1).remove(0);
    assert_eq!(store.remember(&s, b"long", 3_600, 0), Ok(Seen::Fresh));
    for now in (0..3_600).step_by(7) {
        assert_eq!(
            store.remember(&s, b"long", 3_600, now),
            Ok(Seen::Replayed),
            "{now}"
        );
    }
    assert_eq!(
        store.remember(&s, b"long", 3_600, 3_600),
        Ok(Seen::Replayed)
    );
    assert_eq!(store.remember(&s, b"long", 9_000, 3_605), Ok(Seen::Fresh));
    assert_eq!(store.len(), 1);
}

#[test]
fn threads_racing_on_one_value_see_exactly_one_fresh() {
    const THREADS: usize = 8;
    let store = Arc::new(MemoryNonceStore::default());
    let scope = Arc::new(scopes(1).remove(0));
    for round in 0..100u32 {
        let barrier = Arc::new(Barrier::new(THREADS));
        let racers: Vec<_> = (0..THREADS)
            .map(|_| {
                let (store, scope, barrier) = (store.clone(), scope.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    store.remember(&scope, &round.to_be_bytes(), 400, 100)
                })
            })
            .collect();
        let fresh = racers
            .into_iter()
            .map(|racer| racer.join().unwrap())
            .filter(|answer| *answer == Ok(Seen::Fresh))
            .count();
        assert_eq!(fresh, 1, "round {round}");
    }
}

#[test]
fn a_one_value_key_costs_under_twenty_bytes_at_a_hundred_thousand() {
    let store = MemoryNonceStore::default();
    let empty = store.bytes();
    let s = scopes(1).remove(0);
    for i in 0..100_000u32 {
        // Another value each time; one key is enough here, since a key
        // costs nothing of its own.
        assert_eq!(
            store.remember(&s, &i.to_be_bytes(), 400, 100),
            Ok(Seen::Fresh)
        );
    }
    let per_value = (store.bytes() - empty) / 100_000;
    assert!(per_value <= 20, "{per_value} bytes a value");
}
