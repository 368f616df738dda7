//! Several `PostgresStore`s on one schema, as several nodes hold them:
//! what one writes retires the others' record caches (LISTEN/NOTIFY), a
//! cache that heard nothing still serves nothing older than its maximum
//! age, a signature one accepted is refused by the others, and every
//! node hears of upstream and credential-set writes (admin commands).

use std::sync::Barrier;
use std::time::{Duration, Instant};

use gnapd::proto::httpsig::nonce::Seen;
use gnapd::store::Store;
use gnapd::store::postgres::{CACHE_MAX_AGE, CONNECTIONS, PostgresStore};
use gnapd::store::replay::ReplayBudget;
use gnapd::store::{RECORD_VERSION, TokenHash, UpstreamRecord, UpstreamTransport};

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

#[test]
fn a_signature_one_postgres_node_accepted_is_refused_by_every_other_in_either_budget() {
    let schema = Schema::new();
    let (a, b) = (node(&schema, CACHE_MAX_AGE), node(&schema, CACHE_MAX_AGE));
    let f = Fixture::new();
    let scope = f.scope();
    let bound = ReplayBudget::Bound;
    assert_eq!(
        a.replay(bound).remember(scope, b"sig-1", 1_300, 1_000),
        Ok(Seen::Fresh)
    );
    assert_eq!(
        b.replay(bound).remember(scope, b"sig-1", 1_300, 1_000),
        Ok(Seen::Replayed)
    );
    assert_eq!(
        b.replay(ReplayBudget::Unapproved)
            .remember(scope, b"sig-1", 1_300, 1_000),
        Ok(Seen::Replayed)
    );
    assert_eq!(
        a.replay(bound).remember(scope, b"sig-1", 1_300, 1_000),
        Ok(Seen::Replayed),
        "and by the node that accepted it"
    );
    // Another key's identical bytes are its own.
    let other = Fixture::new();
    assert_eq!(
        b.replay(bound)
            .remember(other.scope(), b"sig-1", 1_300, 1_000),
        Ok(Seen::Fresh)
    );
    // A claim past its expiry (not swept yet) no longer refuses.
    assert_eq!(
        a.replay(bound).remember(scope, b"sig-2", 1_010, 1_000),
        Ok(Seen::Fresh)
    );
    assert_eq!(
        b.replay(bound).remember(scope, b"sig-2", 1_400, 1_100),
        Ok(Seen::Fresh)
    );
    a.sweep(1_350).unwrap();
    let left: i64 = schema
        .client()
        .query_one("SELECT count(*) FROM replay", &[])
        .unwrap()
        .get(0);
    assert_eq!(left, 1, "only sig-2's renewed claim outlives the sweep");
    a.close().unwrap();
    b.close().unwrap();
}

#[test]
fn concurrent_claims_of_one_signature_on_three_postgres_nodes_have_exactly_one_winner() {
    let schema = Schema::new();
    let nodes: Vec<_> = (0..3).map(|_| node(&schema, CACHE_MAX_AGE)).collect();
    let f = Fixture::new();
    for round in 0..20u32 {
        let value = round.to_be_bytes();
        let barrier = Barrier::new(6);
        let fresh = std::thread::scope(|s| {
            let claims: Vec<_> = (0..6)
                .map(|i| {
                    let (node, barrier, scope) = (&nodes[i % 3], &barrier, f.scope());
                    s.spawn(move || {
                        barrier.wait();
                        node.replay(ReplayBudget::Bound)
                            .remember(scope, &value, 2_000, 1_000)
                            .unwrap()
                    })
                })
                .collect();
            claims
                .into_iter()
                .map(|claim| claim.join().unwrap())
                .filter(|seen| *seen == Seen::Fresh)
                .count()
        });
        assert_eq!(fresh, 1, "round {round}");
    }
    for node in &nodes {
        node.close().unwrap();
    }
}

/// What a claim costs, printed for spec-notes/store.md: each call is a
/// fresh signature (so every one reaches the table).
#[test]
fn a_shared_replay_claim_costs_one_round_trip_without_a_flush() {
    let schema = Schema::new();
    let a = node(&schema, CACHE_MAX_AGE);
    let f = Fixture::new();
    const CALLS: u32 = 2_000;
    let start = Instant::now();
    for i in 0..CALLS {
        assert_eq!(
            a.replay(ReplayBudget::Bound)
                .remember(f.scope(), &i.to_be_bytes(), 2_000, 1_000),
            Ok(Seen::Fresh)
        );
    }
    let mean = start.elapsed() / CALLS;
    eprintln!("a shared replay claim: {mean:?} a call (mean of {CALLS})");
    // Only a gross regression (a flush, or a statement prepared per
    // call, on a quiet machine is well under this) fails it.
    assert!(mean < Duration::from_millis(5), "{mean:?}");
    a.close().unwrap();
}

/// A listener whose connection broke hears nothing of what was written
/// meanwhile: on connecting again it retires everything.
#[test]
fn a_postgres_node_whose_listener_reconnects_retires_every_cached_record() {
    let schema = Schema::new();
    let a = node(&schema, NEVER_STALE);
    let f = Fixture::new();
    let (grant, tokens) = f.grant(1, FOREVER);
    a.create_grant(&grant, &tokens).unwrap();
    let token = &tokens[0];
    assert!(cached(&a, &token.0));
    let mut admin = schema.client();
    // Gone behind the node's back, with no notification.
    admin
        .execute("DELETE FROM tokens WHERE hash = $1", &[&token.0.0.to_vec()])
        .unwrap();
    assert!(cached(&a, &token.0), "nothing told the node");
    let listener = format!("{} listener", schema.name);
    let killed: i64 = admin
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
             WHERE application_name = $1) AS t",
            &[&listener],
        )
        .unwrap()
        .get(0);
    assert_eq!(killed, 1, "the node's one listener");
    let seen = until(|| !cached(&a, &token.0));
    assert!(seen < WITHIN, "retired after {seen:?}");
    a.close().unwrap();
}

#[test]
fn concurrent_additions_to_one_counter_on_three_postgres_nodes_lose_none() {
    let schema = Schema::new();
    let nodes: Vec<PostgresStore> = (0..3).map(|_| node(&schema, CACHE_MAX_AGE)).collect();
    let name = [7u8; 32];
    let (threads, each) = (4, 25);
    let barrier = Barrier::new(nodes.len() * threads);
    let mut seen: Vec<u32> = std::thread::scope(|scope| {
        let handles: Vec<_> = nodes
            .iter()
            .flat_map(|store| std::iter::repeat_n(store, threads))
            .map(|store| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    (0..each)
                        .map(|_| store.add_to_counter(&name, 5, 1, 600).unwrap().unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    // Every addition saw a sum of its own: 1, 2, … 300, none twice.
    seen.sort_unstable();
    let total = u32::try_from(nodes.len() * threads * each).unwrap();
    assert_eq!(seen, (1..=total).collect::<Vec<_>>());
    for store in &nodes {
        assert_eq!(store.add_to_counter(&name, 5, 0, 600).unwrap(), Some(total));
    }
    // Another period, another name: counted apart.
    assert_eq!(
        nodes[0].add_to_counter(&name, 6, 0, 1_200).unwrap(),
        Some(0)
    );
    assert_eq!(
        nodes[0].add_to_counter(&[8u8; 32], 5, 2, 600).unwrap(),
        Some(2)
    );
}

#[test]
fn a_postgres_sweep_removes_lapsed_leases_and_counters_of_past_periods_only() {
    let schema = Schema::new();
    let store = node(&schema, CACHE_MAX_AGE);
    assert!(store.take_lease("lapsed", "node-a", 0, 100).unwrap());
    assert!(store.take_lease("live", "node-a", 0, 10_000).unwrap());
    store.add_to_counter(&[1u8; 32], 0, 1, 600).unwrap();
    store.add_to_counter(&[1u8; 32], 9, 1, 6_000).unwrap();
    store.sweep(1_000).unwrap();
    let mut db = schema.client();
    let leases: Vec<String> = db
        .query("SELECT name FROM leases", &[])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(leases, ["live"]);
    let periods: Vec<i64> = db
        .query("SELECT period FROM counters", &[])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(periods, [9]);
    // Counter names are what the caller hashed: no address is stored.
    let name: Vec<u8> = db
        .query_one("SELECT name FROM counters", &[])
        .unwrap()
        .get(0);
    assert_eq!(name, [1u8; 32]);
}

#[test]
fn a_credential_set_another_postgres_node_rewrote_is_read_past_this_nodes_cache() {
    let schema = Schema::new();
    let (a, b) = (node(&schema, NEVER_STALE), node(&schema, NEVER_STALE));
    let mut set = credential_set("enterprise:github", "github", b"first");
    a.put_credential_set(&set).unwrap();
    assert!(a.credential_set_shared(&set.id).unwrap().is_some());
    set.sealed = b"refreshed".to_vec();
    b.put_credential_set(&set).unwrap();
    // No wait for the notification: the uncached read is the database's.
    assert_eq!(a.credential_set_uncached(&set.id).unwrap(), Some(set));
}

#[test]
fn every_postgres_node_hears_of_upstream_and_credential_set_writes_and_no_other_write() {
    let schema = Schema::new();
    let (a, b) = (node(&schema, NEVER_STALE), node(&schema, NEVER_STALE));
    let mut heard = a.upstream_changes().expect("a shared store says when");
    let moved = |heard: &mut tokio::sync::watch::Receiver<u64>| {
        let start = Instant::now();
        while !heard.has_changed().unwrap() {
            assert!(start.elapsed() < WITHIN, "not heard within {WITHIN:?}");
            std::thread::sleep(Duration::from_millis(2));
        }
        heard.borrow_and_update();
        start.elapsed()
    };
    let upstream = UpstreamRecord {
        v: RECORD_VERSION,
        name: "extra".into(),
        transport: UpstreamTransport::Http {
            url: "http://127.0.0.1:9/mcp".into(),
        },
        created_at: 0,
    };
    b.put_upstream(&upstream).unwrap();
    eprintln!(
        "an upstream stored on B was heard on A after {:?}",
        moved(&mut heard)
    );
    b.put_credential_set(&credential_set("enterprise:extra", "extra", b"old"))
        .unwrap();
    moved(&mut heard);
    let read = |store: &PostgresStore| {
        store
            .credential_set_shared("enterprise:extra")
            .unwrap()
            .map(|set| set.sealed.clone())
    };
    assert_eq!(read(&a).as_deref(), Some(&b"old"[..]));
    b.put_credential_set(&credential_set("enterprise:extra", "extra", b"new"))
        .unwrap();
    moved(&mut heard);
    // Retired before the news: what A reads on hearing is the new set.
    assert_eq!(read(&a).as_deref(), Some(&b"new"[..]));
    assert!(b.remove_credential_set("enterprise:extra").unwrap());
    moved(&mut heard);
    assert!(b.remove_upstream("extra").unwrap());
    moved(&mut heard);

    // A grant, a revocation: nothing for the registry.
    let f = Fixture::new();
    let (grant, tokens) = f.grant(1, FOREVER);
    b.create_grant(&grant, &tokens).unwrap();
    assert!(b.revoke_token(&tokens[0].1.manage).unwrap());
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !heard.has_changed().unwrap(),
        "a token write moved the upstream signal"
    );
    a.close().unwrap();
    b.close().unwrap();
}

#[test]
fn a_store_no_other_node_writes_has_no_upstream_signal() {
    let dir = tempfile::tempdir().unwrap();
    let sled = gnapd::store::sled::SledStore::open(&dir.path().join("store")).unwrap();
    assert!(sled.upstream_changes().is_none());
    assert!(
        gnapd::store::memory::MemoryStore::default()
            .upstream_changes()
            .is_none()
    );
}
