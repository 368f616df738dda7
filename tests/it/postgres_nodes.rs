//! Several `PostgresStore`s on one schema, as several nodes hold them:
//! what one writes retires the others' record caches (LISTEN/NOTIFY), a
//! cache that heard nothing still serves nothing older than its maximum
//! age, and a signature one accepted is refused by the others.

use std::time::{Duration, Instant};

use gnapd::store::Store;
use gnapd::store::TokenHash;
use gnapd::store::postgres::{CACHE_MAX_AGE, CONNECTIONS, PostgresStore};

use crate::store_contract::{FOREVER, Fixture, credential_set};
use crate::support::postgres::Schema;

/// What cannot retire a cache in a test that must see a notification at
/// work: an hour.
const NEVER_STALE: Duration = Duration::from_secs(3_600);

/// The bound issue 20 sets for another node to see a revocation.
const WITHIN: Duration = Duration::from_secs(1);

fn node(schema: &Schema, cache_max_age: Duration) -> PostgresStore {
    PostgresStore::open_tuned(&schema.parsed(), CONNECTIONS, 0, cache_max_age).unwrap()
}

/// How long until `gone` holds, polled every 2 ms; panics past 5 s.
fn until(gone: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !gone() {
        assert!(start.elapsed() < Duration::from_secs(5), "never seen");
        std::thread::sleep(Duration::from_millis(2));
    }
    start.elapsed()
}

fn cached(store: &PostgresStore, token: &TokenHash) -> bool {
    store.token_shared(token).unwrap().is_some()
}

#[test]
fn a_revocation_on_one_postgres_node_is_seen_by_another_within_a_second_by_notification() {
    let schema = Schema::new();
    let (a, b) = (node(&schema, NEVER_STALE), node(&schema, CACHE_MAX_AGE));
    let f = Fixture::new();
    let (grant, tokens) = f.grant(2, FOREVER);
    b.create_grant(&grant, &tokens).unwrap();
    let (quiet, revoked) = (&tokens[0], &tokens[1]);
    assert!(cached(&a, &quiet.0) && cached(&a, &revoked.0));
    // A row deleted behind the nodes' backs tells nobody: A's cache still
    // serves it (so what follows is the notification's doing).
    schema
        .client()
        .execute("DELETE FROM tokens WHERE hash = $1", &[&quiet.0.0.to_vec()])
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert!(cached(&a, &quiet.0), "A's cache holds what it read");

    assert!(b.revoke_token(&revoked.1.manage).unwrap());
    let seen = until(|| !cached(&a, &revoked.0));
    assert!(seen < WITHIN, "seen after {seen:?}");
    assert!(!cached(&a, &quiet.0), "the whole cache was retired");
    eprintln!("a revocation on B was seen on A after {seen:?}");
    a.close().unwrap();
    b.close().unwrap();
}

#[test]
fn a_rotation_and_a_credential_set_removal_on_one_postgres_node_are_seen_by_another() {
    let schema = Schema::new();
    let (a, b) = (node(&schema, NEVER_STALE), node(&schema, CACHE_MAX_AGE));
    let f = Fixture::new();
    let (grant, tokens) = f.grant(1, FOREVER);
    b.create_grant(&grant, &tokens).unwrap();
    let old = &tokens[0];
    assert!(cached(&a, &old.0));
    let rotated = f.token(&grant.id, FOREVER);
    assert!(b.token_swap(&old.1.manage, &old.0, &rotated).unwrap());
    assert!(until(|| !cached(&a, &old.0)) < WITHIN);

    b.put_credential_set(&credential_set("set-1", "github", b"sealed"))
        .unwrap();
    assert!(a.credential_set_shared("set-1").unwrap().is_some());
    assert!(b.remove_credential_set("set-1").unwrap());
    let seen = until(|| a.credential_set_shared("set-1").unwrap().is_none());
    assert!(seen < WITHIN, "seen after {seen:?}");
    a.close().unwrap();
    b.close().unwrap();
}

#[test]
fn a_postgres_node_that_heard_of_no_write_serves_no_cached_token_past_the_maximum_age() {
    let schema = Schema::new();
    let a = node(&schema, CACHE_MAX_AGE);
    let f = Fixture::new();
    let (grant, tokens) = f.grant(1, FOREVER);
    a.create_grant(&grant, &tokens).unwrap();
    let token = &tokens[0];
    assert!(cached(&a, &token.0));
    let start = Instant::now();
    schema
        .client()
        .execute("DELETE FROM tokens WHERE hash = $1", &[&token.0.0.to_vec()])
        .unwrap();
    let seen = until(|| !cached(&a, &token.0));
    assert!(
        start.elapsed() <= CACHE_MAX_AGE + Duration::from_millis(100),
        "seen after {seen:?}"
    );
    a.close().unwrap();
}
