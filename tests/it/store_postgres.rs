//! What only the PostgreSQL store can show (the contract itself runs in
//! `store_contract`, `store_postgres`): its schema's version, migration by
//! several openers at once, connections that break, calls from the
//! runtime's own threads, and a reopen that finds everything.

use std::sync::Barrier;
use std::time::Duration;

use gnapd::store::postgres::{PostgresStore, SCHEMA_VERSION, SWEEP_BATCH};
use gnapd::store::{InstanceRecord, RECORD_VERSION, Store};

use crate::store_contract::{FOREVER, Fixture};
use crate::support::postgres::Schema;

#[test]
fn postgres_reopened_keeps_grants_tokens_instances_and_swaps() {
    let schema = Schema::new();
    let f = Fixture::new();
    let (grant, tokens) = f.grant(2, FOREVER);
    let rotated = f.token(&grant.id, FOREVER);
    let instance = InstanceRecord {
        v: RECORD_VERSION,
        key: f.key.clone(),
        created_at: 5,
        expires_at: Some(FOREVER),
    };
    {
        let store = PostgresStore::open(&schema.parsed()).unwrap();
        store.create_grant(&grant, &tokens).unwrap();
        assert!(
            store
                .token_swap(&tokens[0].1.manage, &tokens[0].0, &rotated)
                .unwrap()
        );
        assert!(store.revoke_token(&tokens[1].1.manage).unwrap());
        store.create_instance("inst", &instance).unwrap();
        store.close().unwrap();
        // Closed: calls fail rather than hang.
        assert!(store.grant(&grant.id).is_err());
    }
    let store = PostgresStore::open(&schema.parsed()).unwrap();
    let stored = store.grant(&grant.id).unwrap().unwrap();
    assert!(stored.tokens.contains(&rotated.0));
    assert!(!stored.tokens.contains(&tokens[0].0));
    assert_eq!(store.token(&rotated.0).unwrap(), Some(rotated.1.clone()));
    assert_eq!(store.token(&tokens[0].0).unwrap(), None, "rotated away");
    assert_eq!(store.token(&tokens[1].0).unwrap(), None, "revoked");
    assert_eq!(store.instance("inst").unwrap(), Some(instance));
}

#[test]
fn postgres_refuses_a_schema_newer_than_it_knows_and_leaves_it_alone() {
    let schema = Schema::new();
    drop(PostgresStore::open(&schema.parsed()).unwrap());
    let mut admin = schema.client();
    let version: i32 = admin
        .query_one("SELECT version FROM gnapd_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, SCHEMA_VERSION);
    let newer = SCHEMA_VERSION + 1;
    admin
        .execute("UPDATE gnapd_schema SET version = $1", &[&newer])
        .unwrap();
    let refused = PostgresStore::open(&schema.parsed()).unwrap_err();
    assert!(refused.to_string().contains("newer"), "{refused}");
    let version: i32 = admin
        .query_one("SELECT version FROM gnapd_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, newer);
}

#[test]
fn postgres_nodes_opening_an_empty_database_at_once_create_the_schema_once() {
    let schema = Schema::new();
    let conninfo = schema.parsed();
    let openers = 4;
    let start = Barrier::new(openers);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..openers)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    PostgresStore::open(&conninfo).map(drop)
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap().unwrap();
        }
    });
    let rows: i64 = schema
        .client()
        .query_one("SELECT count(*) FROM gnapd_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
}

#[test]
fn postgres_a_connection_the_server_closed_is_opened_again_for_a_later_call() {
    let schema = Schema::new();
    let store = PostgresStore::open_at(&schema.parsed(), 1, 0).unwrap();
    let f = Fixture::new();
    let (grant, tokens) = f.grant(1, FOREVER);
    store.create_grant(&grant, &tokens).unwrap();
    let killed: i64 = schema
        .client()
        .query_one(
            // Waits (up to 5 s) until the backend is gone: both calls
            // below then meet a dead connection, not a dying one.
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
             WHERE application_name = $1) AS t",
            &[&schema.name],
        )
        .unwrap()
        .get(0);
    assert_eq!(killed, 1, "the store's one connection");
    // The call that finds the connection dead may fail (a 500, never a
    // wrong answer); the ones after it reconnect.
    let _ = store.grant(&grant.id);
    assert_eq!(store.grant(&grant.id).unwrap(), Some(grant));
}

/// The AS calls the store on tokio's worker threads, inside
/// `store::deferring`: where a `postgres::Client` of its own would panic.
/// A commit is durable on return, so nothing is left to wait for.
#[test]
fn postgres_calls_from_a_runtime_worker_answer_and_leave_no_pending_wait() {
    let schema = Schema::new();
    let store = std::sync::Arc::new(PostgresStore::open(&schema.parsed()).unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let f = Fixture::new();
    let (grant, tokens) = f.grant(1, FOREVER);
    let on_worker = store.clone();
    let expected = grant.clone();
    let task = runtime.spawn(async move {
        gnapd::store::deferring(|| {
            on_worker.create_grant(&grant, &tokens)?;
            on_worker.grant(&grant.id)
        })
    });
    let (found, pending) = runtime.block_on(task).unwrap();
    assert!(pending.is_none(), "a PostgreSQL commit needs no ticket");
    assert_eq!(found.unwrap(), Some(expected));
}

/// A store call waiting on the database (here behind a table lock another
/// session holds, as a commit waits for its flush) leaves its runtime
/// worker to the other tasks: with both workers' calls waiting, a third
/// task still runs at once.
#[test]
fn a_postgres_call_waiting_on_the_database_leaves_the_runtime_workers_to_other_tasks() {
    let schema = Schema::new();
    let store = std::sync::Arc::new(PostgresStore::open(&schema.parsed()).unwrap());
    let f = Fixture::new();
    let (grant, tokens) = f.grant(1, FOREVER);
    store.create_grant(&grant, &tokens).unwrap();
    let mut holder = schema.client();
    let mut lock = holder.transaction().unwrap();
    lock.batch_execute("LOCK TABLE grants IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            let (store, id) = (store.clone(), grant.id.clone());
            runtime.spawn(async move { store.grant(&id) })
        })
        .collect();
    // Let both calls reach the lock.
    std::thread::sleep(Duration::from_millis(300));
    let third = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(2), tokio::spawn(async { 42 })).await
    });
    lock.commit().unwrap();
    for call in waiting {
        assert!(runtime.block_on(call).unwrap().unwrap().is_some());
    }
    assert_eq!(
        third
            .expect("a task waited for the database calls to finish")
            .unwrap(),
        42
    );
}

/// A sweep after a long stop finds more lapsed grants than one statement
/// removes: every batch goes, and the count is right.
#[test]
fn postgres_a_sweep_of_more_than_one_batch_removes_every_expired_grant() {
    let schema = Schema::new();
    let store = PostgresStore::open(&schema.parsed()).unwrap();
    let f = Fixture::new();
    let lapsed = usize::try_from(2 * SWEEP_BATCH + 1).unwrap();
    for _ in 0..lapsed {
        let (grant, tokens) = f.grant(1, 100);
        store.create_grant(&grant, &tokens).unwrap();
    }
    let (live, live_tokens) = f.grant(1, FOREVER);
    store.create_grant(&live, &live_tokens).unwrap();
    let swept = store.sweep(101).unwrap();
    assert_eq!((swept.grants, swept.tokens), (lapsed, lapsed));
    assert_eq!(store.sweep(101).unwrap(), Default::default());
    assert_eq!(store.grant(&live.id).unwrap(), Some(live));
}

/// `table_sizes` (the admin's `store_stats`) counts what only several
/// nodes keep: the shared replay claims, the leases, the attempt counters,
/// the shared entries.
#[test]
fn postgres_table_sizes_count_the_replay_claims_leases_and_counters_nodes_share() {
    let schema = Schema::new();
    let store = PostgresStore::open(&schema.parsed()).unwrap();
    let sizes = |store: &PostgresStore| -> std::collections::HashMap<String, u64> {
        store
            .table_sizes()
            .unwrap()
            .into_iter()
            .map(|(name, size)| (name, size.records))
            .collect()
    };
    let before = sizes(&store);
    for table in ["replay", "leases", "counters", "handoffs"] {
        assert_eq!(before.get(table), Some(&0), "{table}: {before:?}");
    }
    let f = Fixture::new();
    let now = 1_790_000_000;
    store
        .replay(gnapd::store::ReplayBudget::Bound)
        .remember(f.scope(), b"one signature", now + 60, now)
        .unwrap();
    assert!(
        store
            .take_lease("refresh:a-set", "node-a", now, now + 60)
            .unwrap()
    );
    store.add_to_counter(&[3u8; 32], 1, 1, now + 600).unwrap();
    store
        .handoffs()
        .unwrap()
        .put_handoff(
            gnapd::store::HandoffKind::OperatorSession,
            &[4u8; 32],
            b"",
            now + 60,
        )
        .unwrap();
    let after = sizes(&store);
    for table in ["replay", "leases", "counters", "handoffs"] {
        assert_eq!(after.get(table), Some(&1), "{table}: {after:?}");
    }
}
