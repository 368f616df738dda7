//! The `Store` contract (src/store/mod.rs), one suite run against every
//! implementation: `MemoryStore` (the reference), `SledStore` on a
//! temporary directory and `PostgresStore` on a schema of its own. Then
//! what only a disk can show: reopening, refusing an unknown record
//! version. Throughput is measured by `benches/store.rs`.

use std::sync::Barrier;

use gnapd::proto::gnap::interact::HashMethod;
use gnapd::proto::httpsig::nonce::{NonceStore as _, Seen};
use gnapd::store::memory::MemoryStore;
use gnapd::store::sled::{Durability, SledStore};
use gnapd::store::{
    Continuation, CredentialKind, CredentialSetRecord, FinishKind, GrantId, GrantRecord,
    GrantState, InstanceRecord, InteractionFinish, InteractionRecord, InteractionStatus,
    RECORD_VERSION, ResourceSetRecord, SpentRefresh, Store, StoreError, TokenHash, TokenRecord,
    UpstreamRecord, UpstreamTransport,
};
use serde_json::json;

pub use crate::support::store_fixture::{FOREVER, Fixture, fresh_hash, hash_for};

/// The grant's current continuation token.
fn cont(grant: &GrantRecord) -> TokenHash {
    grant.continuation.as_ref().unwrap().token
}

/// `grant` continued: a new continuation token and one more token.
fn continued(f: &Fixture, grant: &GrantRecord) -> (GrantRecord, Vec<(TokenHash, TokenRecord)>) {
    let mut next = grant.clone();
    let token = f.token(&grant.id, FOREVER);
    next.tokens.push(token.0);
    next.continuation = Some(Continuation {
        token: fresh_hash(),
        wait: 5,
        issued_at: 2_000,
    });
    (next, vec![token])
}

// --- The contract, for any implementation -------------------------------

fn create_grant_is_readable_by_id_continuation_token_and_management_token(store: &dyn Store) {
    let f = Fixture::new();
    let (grant, tokens) = f.grant(2, FOREVER);
    store.create_grant(&grant, &tokens).unwrap();
    assert_eq!(store.grant(&grant.id).unwrap(), Some(grant.clone()));
    assert_eq!(
        store.grant_by_continuation(&cont(&grant)).unwrap(),
        Some(grant.clone())
    );
    for (hash, record) in &tokens {
        assert_eq!(store.token(hash).unwrap().as_ref(), Some(record));
        assert_eq!(
            store.token_by_manage(&record.manage).unwrap(),
            Some((*hash, record.clone()))
        );
    }
    assert_eq!(store.grant(&GrantId("no-such-grant".into())).unwrap(), None);
    assert_eq!(store.grant_by_continuation(&fresh_hash()).unwrap(), None);
    assert_eq!(store.token(&fresh_hash()).unwrap(), None);
    assert_eq!(store.token_by_manage(&fresh_hash()).unwrap(), None);
}

fn continuation_swap_is_single_use_and_moves_the_index(store: &dyn Store) {
    let f = Fixture::new();
    let (grant, tokens) = f.grant(1, FOREVER);
    store.create_grant(&grant, &tokens).unwrap();
    let (next, new_tokens) = continued(&f, &grant);
    assert!(
        store
            .continuation_swap(&cont(&grant), &next, &new_tokens)
            .unwrap()
    );
    // The old continuation token stopped working at once; the new one works.
    assert_eq!(store.grant_by_continuation(&cont(&grant)).unwrap(), None);
    assert_eq!(
        store.grant_by_continuation(&cont(&next)).unwrap(),
        Some(next.clone())
    );
    assert_eq!(
        store.token(&new_tokens[0].0).unwrap(),
        Some(new_tokens[0].1.clone())
    );
    // A second swap with the same expected value fails and changes nothing.
    let (other, other_tokens) = continued(&f, &grant);
    assert!(
        !store
            .continuation_swap(&cont(&grant), &other, &other_tokens)
            .unwrap()
    );
    assert_eq!(store.grant(&grant.id).unwrap(), Some(next));
    assert_eq!(store.token(&other_tokens[0].0).unwrap(), None);
    assert_eq!(store.grant_by_continuation(&cont(&other)).unwrap(), None);
}

fn continuation_swap_refuses_the_token_of_another_grant(store: &dyn Store) {
    let f = Fixture::new();
    let (a, a_tokens) = f.grant(0, FOREVER);
    let (b, b_tokens) = f.grant(0, FOREVER);
    store.create_grant(&a, &a_tokens).unwrap();
    store.create_grant(&b, &b_tokens).unwrap();
    let (next_b, t) = continued(&f, &b);
    assert!(!store.continuation_swap(&cont(&a), &next_b, &t).unwrap());
    assert_eq!(store.grant(&b.id).unwrap(), Some(b.clone()));
    assert_eq!(store.grant_by_continuation(&cont(&a)).unwrap(), Some(a));
}

fn concurrent_continuation_swaps_with_one_token_have_exactly_one_winner(store: &dyn Store) {
    const THREADS: usize = 8;
    let f = Fixture::new();
    for _round in 0..10 {
        let (grant, tokens) = f.grant(0, FOREVER);
        store.create_grant(&grant, &tokens).unwrap();
        let attempts: Vec<_> = (0..THREADS).map(|_| continued(&f, &grant)).collect();
        let barrier = Barrier::new(THREADS);
        let results: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = attempts
                .iter()
                .map(|(next, new_tokens)| {
                    let (barrier, expected) = (&barrier, cont(&grant));
                    s.spawn(move || {
                        barrier.wait();
                        store
                            .continuation_swap(&expected, next, new_tokens)
                            .unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|won| **won).count(), 1, "{results:?}");
        // Only the winner's continuation and token exist.
        for ((next, new_tokens), won) in attempts.iter().zip(&results) {
            let continues = store.grant_by_continuation(&cont(next)).unwrap().is_some();
            let issued = store.token(&new_tokens[0].0).unwrap().is_some();
            assert_eq!((continues, issued), (*won, *won));
        }
    }
}

fn delete_grant_removes_the_grant_its_continuation_and_its_tokens(store: &dyn Store) {
    let f = Fixture::new();
    let (grant, tokens) = f.grant(3, FOREVER);
    let (bystander, bystander_tokens) = f.grant(1, FOREVER);
    store.create_grant(&grant, &tokens).unwrap();
    store.create_grant(&bystander, &bystander_tokens).unwrap();
    assert!(store.delete_grant(&cont(&grant)).unwrap());
    assert_eq!(store.grant(&grant.id).unwrap(), None);
    assert_eq!(store.grant_by_continuation(&cont(&grant)).unwrap(), None);
    for (hash, record) in &tokens {
        assert_eq!(store.token(hash).unwrap(), None);
        assert_eq!(store.token_by_manage(&record.manage).unwrap(), None);
    }
    assert!(
        !store.delete_grant(&cont(&grant)).unwrap(),
        "a second delete with the same token"
    );
    assert_eq!(store.grant(&bystander.id).unwrap(), Some(bystander));
    assert!(store.token(&bystander_tokens[0].0).unwrap().is_some());
}

fn token_swap_kills_the_old_value_at_once_and_moves_the_manage_index(store: &dyn Store) {
    let f = Fixture::new();
    let (grant, tokens) = f.grant(2, FOREVER);
    store.create_grant(&grant, &tokens).unwrap();
    let (old, old_record) = &tokens[0];
    let new = f.token(&grant.id, FOREVER);
    assert!(store.token_swap(&old_record.manage, old, &new).unwrap());
    assert_eq!(store.token(old).unwrap(), None);
    assert_eq!(store.token_by_manage(&old_record.manage).unwrap(), None);
    assert_eq!(store.token(&new.0).unwrap(), Some(new.1.clone()));
    assert_eq!(
        store.token_by_manage(&new.1.manage).unwrap(),
        Some(new.clone())
    );
    let listed = store.grant(&grant.id).unwrap().unwrap().tokens;
    assert!(
        listed.contains(&new.0) && !listed.contains(old),
        "{listed:?}"
    );
    // The other token of the grant is untouched.
    assert_eq!(
        store.token(&tokens[1].0).unwrap(),
        Some(tokens[1].1.clone())
    );
    // Rotating the same old value again fails; so does a stale `old` under
    // the new management token.
    let again = f.token(&grant.id, FOREVER);
    assert!(!store.token_swap(&old_record.manage, old, &again).unwrap());
    assert!(!store.token_swap(&new.1.manage, old, &again).unwrap());
    assert_eq!(store.token(&again.0).unwrap(), None);
}

fn token_swap_may_keep_the_management_token(store: &dyn Store) {
    let f = Fixture::new();
    let (grant, tokens) = f.grant(1, FOREVER);
    store.create_grant(&grant, &tokens).unwrap();
    let (old, old_record) = &tokens[0];
    let mut new = f.token(&grant.id, FOREVER);
    new.1.manage = old_record.manage;
    assert!(store.token_swap(&old_record.manage, old, &new).unwrap());
    assert_eq!(store.token(old).unwrap(), None);
    assert_eq!(
        store.token_by_manage(&old_record.manage).unwrap(),
        Some(new)
    );
}

fn concurrent_token_swaps_of_one_token_have_exactly_one_winner(store: &dyn Store) {
    const THREADS: usize = 8;
    let f = Fixture::new();
    for _round in 0..10 {
        let (grant, tokens) = f.grant(1, FOREVER);
        store.create_grant(&grant, &tokens).unwrap();
        let (old, old_record) = tokens[0].clone();
        let news: Vec<_> = (0..THREADS).map(|_| f.token(&grant.id, FOREVER)).collect();
        let barrier = Barrier::new(THREADS);
        let results: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = news
                .iter()
                .map(|new| {
                    let (barrier, old, manage) = (&barrier, old, old_record.manage);
                    s.spawn(move || {
                        barrier.wait();
                        store.token_swap(&manage, &old, new).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|won| **won).count(), 1, "{results:?}");
        assert_eq!(store.token(&old).unwrap(), None);
        for (new, won) in news.iter().zip(&results) {
            assert_eq!(store.token(&new.0).unwrap().is_some(), *won);
            assert_eq!(
                store.token_by_manage(&new.1.manage).unwrap().is_some(),
                *won
            );
        }
        let listed = store.grant(&grant.id).unwrap().unwrap().tokens;
        assert_eq!(listed.len(), 1, "exactly the winner's token is listed");
    }
}

fn revoke_token_removes_the_token_and_its_manage_index(store: &dyn Store) {
    let f = Fixture::new();
    let (grant, tokens) = f.grant(2, FOREVER);
    store.create_grant(&grant, &tokens).unwrap();
    let (hash, record) = &tokens[0];
    assert!(store.revoke_token(&record.manage).unwrap());
    assert_eq!(store.token(hash).unwrap(), None);
    assert_eq!(store.token_by_manage(&record.manage).unwrap(), None);
    assert!(
        !store.revoke_token(&record.manage).unwrap(),
        "a second revocation"
    );
    assert!(
        !store
            .token_swap(&record.manage, hash, &f.token(&grant.id, FOREVER))
            .unwrap()
    );
    assert!(store.token(&tokens[1].0).unwrap().is_some());
    assert!(
        store.grant(&grant.id).unwrap().is_some(),
        "the grant outlives one token"
    );
}

fn a_token_read_before_it_is_revoked_rotated_deleted_or_swept_is_gone_after(store: &dyn Store) {
    // Reads first (a caching store keeps them), then each way a token dies:
    // the next read must not see it.
    let f = Fixture::new();
    let now = 10_000;
    let (grant, tokens) = f.grant(3, FOREVER);
    let (doomed, doomed_tokens) = f.grant(1, FOREVER);
    let (expired, expired_tokens) = f.grant(1, now - 1);
    store.create_grant(&grant, &tokens).unwrap();
    store.create_grant(&doomed, &doomed_tokens).unwrap();
    store.create_grant(&expired, &expired_tokens).unwrap();
    store
        .put_credential_set(&credential_set("cached-set", "github", b"s"))
        .unwrap();
    let (mut extra, _) = f.grant(0, FOREVER);
    let mut mapped = f.token(&extra.id, FOREVER);
    mapped.1.credential_sets = vec![("github".into(), "cached-set".into())];
    extra.tokens = vec![mapped.0];
    store
        .create_grant(&extra, std::slice::from_ref(&mapped))
        .unwrap();
    let read_all = || {
        for (hash, _) in tokens
            .iter()
            .chain(&doomed_tokens)
            .chain(&expired_tokens)
            .chain([&mapped])
        {
            let _ = store.token(hash).unwrap();
        }
        let _ = store.credential_set("cached-set").unwrap();
    };

    read_all();
    assert!(store.revoke_token(&tokens[0].1.manage).unwrap());
    assert_eq!(store.token(&tokens[0].0).unwrap(), None, "revoked");

    read_all();
    let next = f.token(&grant.id, FOREVER);
    assert!(
        store
            .token_swap(&tokens[1].1.manage, &tokens[1].0, &next)
            .unwrap()
    );
    assert_eq!(store.token(&tokens[1].0).unwrap(), None, "rotated away");

    read_all();
    assert!(store.delete_grant(&cont(&doomed)).unwrap());
    assert_eq!(
        store.token(&doomed_tokens[0].0).unwrap(),
        None,
        "grant deleted"
    );

    read_all();
    store.sweep(now).unwrap();
    assert_eq!(store.token(&expired_tokens[0].0).unwrap(), None, "swept");

    read_all();
    assert!(store.remove_credential_set("cached-set").unwrap());
    assert_eq!(store.token(&mapped.0).unwrap(), None, "set removed");
    assert_eq!(store.credential_set("cached-set").unwrap(), None);

    // A replaced set is read back new.
    store
        .put_credential_set(&credential_set("again", "github", b"one"))
        .unwrap();
    let _ = store.credential_set("again").unwrap();
    store
        .put_credential_set(&credential_set("again", "github", b"two"))
        .unwrap();
    assert_eq!(
        store.credential_set("again").unwrap().unwrap().sealed,
        b"two"
    );
    assert!(
        store.token(&tokens[2].0).unwrap().is_some(),
        "a bystander lives"
    );
}

fn create_grant_with_instance_writes_both(store: &dyn Store) {
    let f = Fixture::new();
    let (grant, tokens) = f.grant(1, FOREVER);
    let instance = InstanceRecord {
        v: RECORD_VERSION,
        key: f.key.clone(),
        created_at: 1_000,
        expires_at: Some(FOREVER),
    };
    store
        .create_grant_with_instance(&grant, &tokens, ("inst-with-grant", &instance))
        .unwrap();
    assert_eq!(store.grant(&grant.id).unwrap(), Some(grant));
    assert_eq!(
        store.token(&tokens[0].0).unwrap(),
        Some(tokens[0].1.clone())
    );
    assert_eq!(store.instance("inst-with-grant").unwrap(), Some(instance));
}

/// gnapd names a new instance after the grant it was minted with (the
/// sled store keeps it in that grant's record): it must still outlive the
/// grant when later grants made with it live longer, and go at its expiry.
fn an_instance_named_after_its_grant_outlives_the_grant_until_its_own_expiry(store: &dyn Store) {
    let f = Fixture::new();
    let (mut first, tokens) = f.grant(1, 5_000);
    first.instance_id = Some(first.id.0.clone());
    let id = first.id.0.clone();
    let instance = InstanceRecord {
        v: RECORD_VERSION,
        key: f.key.clone(),
        created_at: 1_000,
        expires_at: Some(5_000),
    };
    store
        .create_grant_with_instance(&first, &tokens, (&id, &instance))
        .unwrap();
    assert_eq!(store.instance(&id).unwrap(), Some(instance.clone()));
    // A later grant made with the instance keeps it longer.
    let (mut later, later_tokens) = f.grant(1, 9_000);
    later.instance_id = Some(id.clone());
    store.create_grant(&later, &later_tokens).unwrap();
    assert_eq!(store.instance(&id).unwrap().unwrap().expiry(), 9_000);
    // The grant it was minted with goes; the instance stays.
    store.sweep(5_001).unwrap();
    assert_eq!(store.grant(&first.id).unwrap(), None);
    assert_eq!(store.instance(&id).unwrap().unwrap().expiry(), 9_000);
    // Still extended where it now lives.
    let (mut third, third_tokens) = f.grant(0, 9_500);
    third.instance_id = Some(id.clone());
    store.create_grant(&third, &third_tokens).unwrap();
    assert_eq!(store.instance(&id).unwrap().unwrap().expiry(), 9_500);
    let swept = store.sweep(9_501).unwrap();
    assert_eq!(swept.instances, 1);
    assert_eq!(store.instance(&id).unwrap(), None);

    // Deleted rather than swept: the same.
    let (mut deleted, tokens) = f.grant(1, FOREVER);
    deleted.instance_id = Some(deleted.id.0.clone());
    let id = deleted.id.0.clone();
    store
        .create_grant_with_instance(&deleted, &tokens, (&id, &instance))
        .unwrap();
    assert!(store.delete_grant(&cont(&deleted)).unwrap());
    assert_eq!(store.grant(&deleted.id).unwrap(), None);
    assert!(store.instance(&id).unwrap().is_some());
}

fn instance_round_trips(store: &dyn Store) {
    let f = Fixture::new();
    let instance = InstanceRecord {
        v: RECORD_VERSION,
        key: f.key.clone(),
        created_at: 1_234,
        expires_at: Some(5_000),
    };
    store.create_instance("inst-1", &instance).unwrap();
    assert_eq!(store.instance("inst-1").unwrap(), Some(instance));
    assert_eq!(store.instance("inst-2").unwrap(), None);
}

fn sweep_removes_expired_grants_with_their_tokens_and_expired_tokens(store: &dyn Store) {
    let f = Fixture::new();
    let now = 10_000;
    let (old_grant, old_tokens) = f.grant(2, now - 1);
    let (live_grant, mut live_tokens) = f.grant(1, FOREVER);
    live_tokens.push(f.token(&live_grant.id, now - 1));
    // An expiry equal to `now` is not yet expired.
    let (edge_grant, edge_tokens) = f.grant(1, now);
    store.create_grant(&old_grant, &old_tokens).unwrap();
    store.create_grant(&live_grant, &live_tokens).unwrap();
    store.create_grant(&edge_grant, &edge_tokens).unwrap();

    let swept = store.sweep(now).unwrap();
    assert_eq!((swept.grants, swept.tokens), (1, 3), "{swept:?}");
    assert_eq!(store.grant(&old_grant.id).unwrap(), None);
    assert_eq!(
        store.grant_by_continuation(&cont(&old_grant)).unwrap(),
        None
    );
    for (hash, record) in &old_tokens {
        assert_eq!(store.token(hash).unwrap(), None);
        assert_eq!(store.token_by_manage(&record.manage).unwrap(), None);
    }
    assert_eq!(store.token(&live_tokens[1].0).unwrap(), None);
    assert_eq!(
        store.token_by_manage(&live_tokens[1].1.manage).unwrap(),
        None
    );
    assert!(store.grant(&live_grant.id).unwrap().is_some());
    assert!(store.token(&live_tokens[0].0).unwrap().is_some());
    assert!(store.grant(&edge_grant.id).unwrap().is_some());
    assert!(store.token(&edge_tokens[0].0).unwrap().is_some());

    let again = store.sweep(now).unwrap();
    assert_eq!((again.grants, again.tokens), (0, 0), "{again:?}");
}

fn nonce_is_fresh_once_replayed_inside_its_window_and_fresh_after(store: &dyn Store) {
    let f = Fixture::new();
    let other = Fixture::new();
    assert_eq!(store.remember(f.scope(), b"n-1", 100, 0), Ok(Seen::Fresh));
    assert_eq!(
        store.remember(f.scope(), b"n-1", 100, 50),
        Ok(Seen::Replayed)
    );
    assert_eq!(
        store.remember(f.scope(), b"n-1", 100, 100),
        Ok(Seen::Replayed)
    );
    // Expired entries count as absent once their expiry bucket is over
    // (the memory forgets a bucket at a time).
    let after = 100 + gnapd::proto::httpsig::nonce::EXPIRY_BUCKET_SECS;
    assert_eq!(
        store.remember(f.scope(), b"n-1", 200, after),
        Ok(Seen::Fresh)
    );
    // Scopes do not share values.
    assert_eq!(
        store.remember(other.scope(), b"n-1", 200, after),
        Ok(Seen::Fresh)
    );
    assert_eq!(
        store.remember(f.scope(), b"n-2", 200, after),
        Ok(Seen::Fresh)
    );
}

fn concurrent_nonce_remembers_see_exactly_one_fresh(store: &dyn Store) {
    const THREADS: usize = 8;
    let f = Fixture::new();
    for round in 0..50u32 {
        let value = round.to_be_bytes();
        let barrier = Barrier::new(THREADS);
        let fresh = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    let (barrier, f, value) = (&barrier, &f, &value);
                    s.spawn(move || {
                        barrier.wait();
                        store.remember(f.scope(), value, 100, 0).unwrap()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|seen| *seen == Seen::Fresh)
                .count()
        });
        assert_eq!(fresh, 1, "round {round}");
    }
}

fn sweep_leaves_live_nonces_and_forgets_expired_ones(store: &dyn Store) {
    let f = Fixture::new();
    assert_eq!(store.remember(f.scope(), b"old", 50, 0), Ok(Seen::Fresh));
    assert_eq!(store.remember(f.scope(), b"live", 500, 0), Ok(Seen::Fresh));
    store.sweep(100).unwrap();
    assert_eq!(
        store.remember(f.scope(), b"live", 500, 100),
        Ok(Seen::Replayed)
    );
    assert_eq!(store.remember(f.scope(), b"old", 500, 100), Ok(Seen::Fresh));
}

pub fn credential_set(id: &str, upstream: &str, sealed: &[u8]) -> CredentialSetRecord {
    CredentialSetRecord {
        v: RECORD_VERSION,
        id: id.to_owned(),
        upstream: upstream.to_owned(),
        kind: CredentialKind::Header,
        header_name: Some("x-api-key".into()),
        sealed: sealed.to_vec(),
        created_at: 1_000,
        owner: None,
    }
}

fn credential_set_round_trips_and_is_replaced_by_id(store: &dyn Store) {
    let set = credential_set("set-1", "github", b"sealed-one");
    store.put_credential_set(&set).unwrap();
    assert_eq!(store.credential_set("set-1").unwrap(), Some(set));
    let replaced = credential_set("set-1", "github", b"sealed-two");
    store.put_credential_set(&replaced).unwrap();
    assert_eq!(store.credential_set("set-1").unwrap(), Some(replaced));
    assert_eq!(store.credential_set("set-2").unwrap(), None);
    let mut future = credential_set("set-3", "github", b"x");
    future.v = 99;
    assert_eq!(
        store.put_credential_set(&future),
        Err(StoreError::Version(99))
    );
}

fn upstreams_and_credential_sets_are_listed_and_removed(store: &dyn Store) {
    assert!(store.upstreams().unwrap().is_empty());
    let upstream = |name: &str, url: &str| UpstreamRecord {
        v: RECORD_VERSION,
        name: name.into(),
        transport: UpstreamTransport::Http { url: url.into() },
        created_at: 1_000,
    };
    store.put_upstream(&upstream("b", "http://b/")).unwrap();
    store.put_upstream(&upstream("a", "http://a/")).unwrap();
    store.put_upstream(&upstream("b", "http://b2/")).unwrap();
    let mut listed = store.upstreams().unwrap();
    listed.sort_by(|x, y| x.name.cmp(&y.name));
    assert_eq!(
        listed,
        [upstream("a", "http://a/"), upstream("b", "http://b2/")]
    );
    assert!(store.remove_upstream("a").unwrap());
    assert!(!store.remove_upstream("a").unwrap());
    assert_eq!(store.upstreams().unwrap(), [upstream("b", "http://b2/")]);

    store
        .put_credential_set(&credential_set("s2", "github", b"x"))
        .unwrap();
    store
        .put_credential_set(&credential_set("s1", "slack", b"y"))
        .unwrap();
    let mut ids: Vec<String> = store
        .credential_sets()
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    ids.sort();
    assert_eq!(ids, ["s1", "s2"]);
}

fn remove_credential_set_revokes_the_tokens_mapped_to_it(store: &dyn Store) {
    let f = Fixture::new();
    store
        .put_credential_set(&credential_set("gone", "github", b"a"))
        .unwrap();
    store
        .put_credential_set(&credential_set("kept", "slack", b"b"))
        .unwrap();
    let (grant, mut tokens) = f.grant(3, FOREVER);
    tokens[0].1.credential_sets = vec![("github".into(), "gone".into())];
    tokens[1].1.credential_sets = vec![
        ("slack".into(), "kept".into()),
        ("github".into(), "gone".into()),
    ];
    tokens[2].1.credential_sets = vec![("slack".into(), "kept".into())];
    store.create_grant(&grant, &tokens).unwrap();
    assert_eq!(
        store
            .token(&tokens[1].0)
            .unwrap()
            .unwrap()
            .credential_set("github"),
        Some("gone")
    );

    assert!(store.remove_credential_set("gone").unwrap());
    assert_eq!(store.credential_set("gone").unwrap(), None);
    for (hash, record) in &tokens[..2] {
        assert_eq!(store.token(hash).unwrap(), None);
        assert_eq!(store.token_by_manage(&record.manage).unwrap(), None);
    }
    assert_eq!(
        store.token(&tokens[2].0).unwrap(),
        Some(tokens[2].1.clone())
    );
    assert!(store.credential_set("kept").unwrap().is_some());
    assert!(store.grant(&grant.id).unwrap().is_some());
    assert!(
        !store.remove_credential_set("gone").unwrap(),
        "a second removal"
    );
}

fn resource_set(access: serde_json::Value) -> ResourceSetRecord {
    ResourceSetRecord {
        v: RECORD_VERSION,
        access: serde_json::from_value(access).unwrap(),
        resource_server: "rs-thumbprint".into(),
        token_introspection_required: true,
        created_at: 1_000,
    }
}

fn resource_set_registers_once_and_round_trips(store: &dyn Store) {
    let set = resource_set(json!([{"type": "photo-api", "actions": ["read"]}, "dolphin-metadata"]));
    assert!(store.register_resource_set("ref-1", &set).unwrap());
    assert_eq!(store.resource_set("ref-1").unwrap(), Some(set.clone()));
    // A reference, once given out, keeps meaning its set.
    let other = resource_set(json!(["something-else"]));
    assert!(!store.register_resource_set("ref-1", &other).unwrap());
    assert_eq!(store.resource_set("ref-1").unwrap(), Some(set));
    assert!(store.register_resource_set("ref-2", &other).unwrap());
    assert_eq!(store.resource_set("ref-2").unwrap(), Some(other));
    assert_eq!(store.resource_set("ref-3").unwrap(), None);
    let mut future = resource_set(json!(["x"]));
    future.v = 99;
    assert_eq!(
        store.register_resource_set("ref-4", &future),
        Err(StoreError::Version(99))
    );
    assert_eq!(store.resource_set("ref-4").unwrap(), None);
    // Sets do not expire.
    store.sweep(i64::MAX).unwrap();
    assert!(store.resource_set("ref-1").unwrap().is_some());
}

// --- RFC 7591: registered OAuth clients -----------------------------------

fn oauth_client(id: &str, expires_at: i64) -> gnapd::store::OAuthClientRecord {
    use gnapd::proto::oauth::client::{ClientInfo, ClientSource, TokenEndpointAuth};
    gnapd::store::OAuthClientRecord {
        v: RECORD_VERSION,
        client: ClientInfo {
            client_id: id.to_owned(),
            client_name: Some("Example".into()),
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
            token_endpoint_auth: TokenEndpointAuth::ClientSecretBasic,
            secret_hash: Some([7; 32]),
            jwks: None,
            grant_types: vec!["authorization_code".into()],
            source: ClientSource::Registered,
        },
        registered_at: 1_000,
        expires_at,
    }
}

fn oauth_clients_round_trip_are_counted_replaced_and_swept_when_expired(store: &dyn Store) {
    assert_eq!(store.oauth_client("c1").unwrap(), None);
    assert_eq!(store.oauth_client_count().unwrap(), 0);
    let c1 = oauth_client("c1", 5_000);
    store.put_oauth_client(&c1).unwrap();
    store.put_oauth_client(&oauth_client("c2", 2_000)).unwrap();
    assert_eq!(store.oauth_client("c1").unwrap(), Some(c1.clone()));
    assert_eq!(store.oauth_client_count().unwrap(), 2);
    // A use moves the expiry: the record is replaced, not added.
    let moved = oauth_client("c1", 9_000);
    store.put_oauth_client(&moved).unwrap();
    assert_eq!(store.oauth_client_count().unwrap(), 2);
    assert_eq!(store.oauth_client("c1").unwrap(), Some(moved));
    // Expired ones go at the sweep, live ones stay.
    assert_eq!(store.sweep_oauth_clients(3_000).unwrap(), 1);
    assert_eq!(store.oauth_client("c2").unwrap(), None);
    assert!(store.oauth_client("c1").unwrap().is_some());
    assert_eq!(store.oauth_client_count().unwrap(), 1);
    let mut future = oauth_client("c3", 9_000);
    future.v = 99;
    assert_eq!(
        store.put_oauth_client(&future),
        Err(StoreError::Version(99))
    );
}

// --- Interaction (RFC 9635 §4) -------------------------------------------

/// A pending grant and its interaction (with a user code and a push finish).
fn interactive(f: &Fixture, expires_at: i64) -> (GrantRecord, InteractionRecord, TokenHash) {
    let (mut grant, _) = f.grant(0, expires_at);
    grant.state = GrantState::Pending;
    let code = fresh_hash();
    let interaction = InteractionRecord {
        v: RECORD_VERSION,
        grant: grant.id.clone(),
        user_code: Some(code),
        finish: Some(InteractionFinish {
            method: FinishKind::Push,
            uri: "https://client.example/push".into(),
            client_nonce: "client-nonce".into(),
            as_nonce: "as-nonce".into(),
            hash_method: HashMethod::Sha256,
        }),
        page: None,
        created_at: 1_000,
        expires_at: 1_600,
        status: InteractionStatus::Pending,
    };
    (grant, interaction, code)
}

/// Issue 14: an instance minted with a grant nobody approved must not
/// outlive it, and one a later grant uses must not vanish under it.
fn an_instance_lives_as_long_as_its_longest_grant_and_is_swept_after(store: &dyn Store) {
    let f = Fixture::new();
    let instance = |expires_at| InstanceRecord {
        v: RECORD_VERSION,
        key: f.key.clone(),
        created_at: 10,
        expires_at,
    };
    // Minted with a pending grant, it expires with that grant.
    let (mut pending, interaction, _) = interactive(&f, 1_000);
    pending.instance_id = Some("inst-p".into());
    store
        .create_interaction_grant(
            &pending,
            &interaction,
            Some(("inst-p", &instance(Some(1_000)))),
        )
        .unwrap();
    assert_eq!(store.instance("inst-p").unwrap().unwrap().expiry(), 1_000);
    // Approved and finished, the grant lives on, and so does its instance.
    assert!(
        store
            .decide_interaction(&pending.id, &approved(1_100))
            .unwrap()
    );
    let mut finished = pending.clone();
    finished.state = GrantState::Approved;
    finished.expires_at = 9_000;
    finished.continuation = Some(Continuation {
        token: fresh_hash(),
        wait: 5,
        issued_at: 1_200,
    });
    assert!(
        store
            .finish_interaction(&cont(&pending), &finished, &[], 1_200)
            .unwrap()
    );
    assert_eq!(store.instance("inst-p").unwrap().unwrap().expiry(), 9_000);

    // Another pending grant's instance, kept longer by a grant made with it
    // by reference, and not shortened by one that expires sooner.
    let (mut first, interaction, _) = interactive(&f, 2_000);
    first.instance_id = Some("inst-q".into());
    store
        .create_interaction_grant(
            &first,
            &interaction,
            Some(("inst-q", &instance(Some(2_000)))),
        )
        .unwrap();
    let (mut later, tokens) = f.grant(1, 5_000);
    later.instance_id = Some("inst-q".into());
    store.create_grant(&later, &tokens).unwrap();
    let (mut sooner, _) = f.grant(0, 3_000);
    sooner.instance_id = Some("inst-q".into());
    store.create_grant(&sooner, &[]).unwrap();
    assert_eq!(store.instance("inst-q").unwrap().unwrap().expiry(), 5_000);

    // One written before instances expired goes 30 days after it was made.
    store.create_instance("inst-old", &instance(None)).unwrap();
    let legacy_end = 10 + gnapd::store::LEGACY_INSTANCE_LIFETIME;

    let swept = store.sweep(4_000).unwrap();
    assert_eq!(swept.instances, 0, "{swept:?}");
    let swept = store.sweep(5_001).unwrap();
    assert_eq!(swept.instances, 1, "{swept:?}");
    assert_eq!(store.instance("inst-q").unwrap(), None);
    assert!(store.instance("inst-p").unwrap().is_some());
    let swept = store.sweep(9_001).unwrap();
    assert_eq!(swept.instances, 1, "{swept:?}");
    assert_eq!(store.instance("inst-p").unwrap(), None);
    assert!(store.instance("inst-old").unwrap().is_some());
    assert_eq!(store.sweep(legacy_end + 1).unwrap().instances, 1);
    assert_eq!(store.instance("inst-old").unwrap(), None);
}

fn approved(at: i64) -> InteractionStatus {
    InteractionStatus::Approved {
        access: vec![vec![]],
        interact_ref: Some(fresh_hash()),
        decided_at: at,
        credential_sets: Vec::new(),
        by: Some("alice@example.com".into()),
    }
}

fn interaction_grant_is_found_by_id_and_user_code_and_listed_while_pending(store: &dyn Store) {
    let f = Fixture::new();
    let (grant, interaction, code) = interactive(&f, FOREVER);
    let instance = InstanceRecord {
        v: RECORD_VERSION,
        key: f.key.clone(),
        created_at: 1_000,
        expires_at: Some(FOREVER),
    };
    store
        .create_interaction_grant(&grant, &interaction, Some(("inst-i", &instance)))
        .unwrap();
    assert_eq!(store.grant(&grant.id).unwrap(), Some(grant.clone()));
    assert_eq!(
        store.grant_by_continuation(&cont(&grant)).unwrap(),
        Some(grant.clone())
    );
    assert_eq!(store.instance("inst-i").unwrap(), Some(instance));
    assert_eq!(
        store.interaction(&grant.id).unwrap(),
        Some(interaction.clone())
    );
    assert_eq!(
        store.interaction_by_user_code(&code).unwrap(),
        Some(interaction.clone())
    );
    assert_eq!(store.interaction_by_user_code(&fresh_hash()).unwrap(), None);
    assert_eq!(store.pending_interactions().unwrap(), vec![interaction]);
}

fn decide_interaction_happens_once_and_retires_the_user_code(store: &dyn Store) {
    let f = Fixture::new();
    let (grant, interaction, code) = interactive(&f, FOREVER);
    store
        .create_interaction_grant(&grant, &interaction, None)
        .unwrap();
    let denied = InteractionStatus::Denied {
        interact_ref: None,
        decided_at: 1_100,
        by: Some("alice@example.com".into()),
    };
    assert!(store.decide_interaction(&grant.id, &denied).unwrap());
    assert!(
        !store
            .decide_interaction(&grant.id, &approved(1_200))
            .unwrap()
    );
    assert_eq!(
        store.interaction(&grant.id).unwrap().unwrap().status,
        denied
    );
    assert_eq!(store.interaction_by_user_code(&code).unwrap(), None);
    assert!(store.pending_interactions().unwrap().is_empty());
    assert!(
        !store
            .decide_interaction(&GrantId("no-such-grant".into()), &denied)
            .unwrap()
    );
    // Deciding touches the interaction only: the grant and its
    // continuation are as they were.
    assert_eq!(
        store.grant_by_continuation(&cont(&grant)).unwrap(),
        Some(grant)
    );
}

fn concurrent_decisions_have_exactly_one_winner(store: &dyn Store) {
    const THREADS: usize = 8;
    let f = Fixture::new();
    let (grant, interaction, _) = interactive(&f, FOREVER);
    store
        .create_interaction_grant(&grant, &interaction, None)
        .unwrap();
    let barrier = Barrier::new(THREADS);
    let wins = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let (barrier, id) = (&barrier, &grant.id);
                s.spawn(move || {
                    barrier.wait();
                    store
                        .decide_interaction(id, &approved(i64::try_from(i).unwrap()))
                        .unwrap()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|won| *won)
            .count()
    });
    assert_eq!(wins, 1);
}

fn finish_interaction_takes_an_approved_interaction_once(store: &dyn Store) {
    let f = Fixture::new();
    let (grant, interaction, _) = interactive(&f, FOREVER);
    store
        .create_interaction_grant(&grant, &interaction, None)
        .unwrap();
    let (mut next, tokens) = continued(&f, &grant);
    next.state = GrantState::Approved;
    // Not approved yet: nothing is taken, the continuation token still works.
    assert!(
        !store
            .finish_interaction(&cont(&grant), &next, &tokens, 1_300)
            .unwrap()
    );
    assert_eq!(store.token(&tokens[0].0).unwrap(), None);
    assert!(
        store
            .decide_interaction(&grant.id, &approved(1_200))
            .unwrap()
    );
    assert!(
        store
            .finish_interaction(&cont(&grant), &next, &tokens, 1_300)
            .unwrap()
    );
    assert_eq!(
        store.interaction(&grant.id).unwrap().unwrap().status,
        InteractionStatus::Finished {
            at: 1_300,
            by: Some("alice@example.com".into())
        }
    );
    assert_eq!(store.grant_by_continuation(&cont(&grant)).unwrap(), None);
    assert_eq!(
        store.grant_by_continuation(&cont(&next)).unwrap(),
        Some(next.clone())
    );
    assert!(store.token(&tokens[0].0).unwrap().is_some());
    // Taken once: neither the old token nor the new one takes it again.
    let (again, again_tokens) = continued(&f, &next);
    assert!(
        !store
            .finish_interaction(&cont(&grant), &again, &again_tokens, 1_400)
            .unwrap()
    );
    assert!(
        !store
            .finish_interaction(&cont(&next), &again, &again_tokens, 1_400)
            .unwrap()
    );
    assert_eq!(store.token(&again_tokens[0].0).unwrap(), None);
}

fn delete_grant_and_sweep_remove_the_interaction_and_its_user_code(store: &dyn Store) {
    let f = Fixture::new();
    let (grant, interaction, code) = interactive(&f, FOREVER);
    store
        .create_interaction_grant(&grant, &interaction, None)
        .unwrap();
    assert!(store.delete_grant(&cont(&grant)).unwrap());
    assert_eq!(store.interaction(&grant.id).unwrap(), None);
    assert_eq!(store.interaction_by_user_code(&code).unwrap(), None);

    let (old, old_interaction, old_code) = interactive(&f, 2_000);
    store
        .create_interaction_grant(&old, &old_interaction, None)
        .unwrap();
    let swept = store.sweep(2_001).unwrap();
    assert_eq!(swept.grants, 1);
    assert_eq!(store.grant(&old.id).unwrap(), None);
    assert_eq!(store.interaction(&old.id).unwrap(), None);
    assert_eq!(store.interaction_by_user_code(&old_code).unwrap(), None);
    assert!(store.pending_interactions().unwrap().is_empty());
}

/// OAuth 2.1 §4.3.1: a spent refresh token is remembered with its grant
/// until its expiry, whatever else happens to the grant, and the sweep
/// forgets it after.
fn spent_refresh_is_remembered_until_its_expiry_and_swept_after(store: &dyn Store) {
    let refresh = fresh_hash();
    assert_eq!(store.spent_refresh(&refresh).unwrap(), None);
    let spent = SpentRefresh {
        v: RECORD_VERSION,
        grant: GrantId("g-1".into()),
        expires_at: 5_000,
    };
    store.spend_refresh(&refresh, &spent).unwrap();
    assert_eq!(store.spent_refresh(&refresh).unwrap(), Some(spent.clone()));
    assert_eq!(store.spent_refresh(&fresh_hash()).unwrap(), None);
    store.sweep(5_000).unwrap();
    assert_eq!(store.spent_refresh(&refresh).unwrap(), Some(spent));
    store.sweep(5_001).unwrap();
    assert_eq!(store.spent_refresh(&refresh).unwrap(), None);
    let wrong = SpentRefresh {
        v: RECORD_VERSION + 1,
        grant: GrantId("g-2".into()),
        expires_at: 5_000,
    };
    assert!(store.spend_refresh(&fresh_hash(), &wrong).is_err());
}

/// An OAuth token's record holds its refresh token: past the access
/// token's expiry it stays (the refresh token still works) until its grant
/// is swept.
fn an_expired_oauth_token_stays_until_its_grant_is_swept(store: &dyn Store) {
    let f = Fixture::new();
    let (mut grant, _) = f.grant(0, 9_000);
    let (hash, mut record) = f.token(&grant.id, 3_000);
    record.oauth = Some(gnapd::store::OAuthToken {
        client_id: "cli".into(),
        audience: "https://gw.example/mcp/github".into(),
        dpop: false,
    });
    grant.tokens.push(hash);
    store
        .create_grant(&grant, &[(hash, record.clone())])
        .unwrap();
    store.sweep(5_000).unwrap();
    assert!(store.token(&hash).unwrap().is_some());
    assert!(store.token_by_manage(&record.manage).unwrap().is_some());
    store.sweep(9_001).unwrap();
    assert!(store.token(&hash).unwrap().is_none());
    assert!(store.token_by_manage(&record.manage).unwrap().is_none());
}

/// A value minted for a grant names it in the clear; a value made up with
/// the same name and another secret must find nothing and change nothing.
fn a_value_forged_to_name_a_real_grant_finds_nothing(store: &dyn Store) {
    let f = Fixture::new();
    let (grant, tokens) = f.grant(1, FOREVER);
    store.create_grant(&grant, &tokens).unwrap();
    let forged = hash_for(&grant.id);
    assert_eq!(forged.locator(), grant.id.locator().unwrap());
    assert_eq!(store.token(&forged).unwrap(), None);
    assert_eq!(store.token_shared(&forged).unwrap(), None);
    assert_eq!(store.token_by_manage(&forged).unwrap(), None);
    assert_eq!(store.grant_by_continuation(&forged).unwrap(), None);
    assert!(!store.revoke_token(&forged).unwrap());
    assert!(!store.delete_grant(&forged).unwrap());
    let next = f.token(&grant.id, FOREVER);
    assert!(!store.token_swap(&forged, &tokens[0].0, &next).unwrap());
    let (moved, _) = continued(&f, &grant);
    assert!(!store.continuation_swap(&forged, &moved, &[]).unwrap());
    // Untouched.
    assert_eq!(store.grant(&grant.id).unwrap(), Some(grant.clone()));
    assert_eq!(
        store.token(&tokens[0].0).unwrap(),
        Some(tokens[0].1.clone())
    );
}

fn table_sizes_count_each_record_and_its_stored_bytes(store: &dyn Store) {
    let sizes = |store: &dyn Store| -> std::collections::BTreeMap<String, gnapd::store::TableSize> {
        store.table_sizes().unwrap().into_iter().collect()
    };
    let before = sizes(store);
    for table in gnapd::store::TABLES {
        assert_eq!(before[table], Default::default(), "{table}");
    }
    assert!(before.contains_key("memory:replay_bound"));
    assert!(before.contains_key("memory:replay_unapproved"));
    let f = Fixture::new();
    let (grant, tokens) = f.grant(2, FOREVER);
    store.create_grant(&grant, &tokens).unwrap();
    let after = sizes(store);
    // A grant and its two tokens count as one grant; hashes minted for it
    // need no index (in either store's accounting, grant and tokens are
    // counted with their encodings). The sled store's encoding is compact
    // (`store/sled/compact`), so the floor is what no encoding can drop:
    // the 16 digest bytes of each token's and management token's hash.
    let floor = 16 * 2 * tokens.len();
    assert_eq!(after["grants"].records, 1);
    assert!(
        after["grants"].bytes >= floor as u64,
        "{} < {floor}",
        after["grants"].bytes
    );
    assert_eq!(after["instances"], Default::default());
    // A remembered signature shows in its budget.
    let key =
        gnapd::proto::jwk::SigningKey::generate(gnapd::proto::alg::Algorithm::Ed25519).unwrap();
    store
        .remember(key.verifying_key().thumbprint(), b"sig", 100, 0)
        .unwrap();
    let remembered = sizes(store)["memory:replay_bound"];
    assert_eq!(
        remembered.records,
        before["memory:replay_bound"].records + 1
    );
    assert!(remembered.bytes > before["memory:replay_bound"].bytes);
    // Removing the grant gives the bytes back.
    assert!(store.delete_grant(&cont(&grant)).unwrap());
    let gone = sizes(store);
    assert_eq!(gone["grants"], Default::default());
}

fn a_lease_has_one_holder_until_it_lapses_or_is_released(store: &dyn Store) {
    let lease = format!("upstream-refresh:{}", uuid::Uuid::new_v4());
    assert!(store.take_lease(&lease, "node-a", 100, 200).unwrap());
    // Held: another holder is refused, the holder itself extends it.
    assert!(!store.take_lease(&lease, "node-b", 150, 250).unwrap());
    assert!(store.take_lease(&lease, "node-a", 150, 300).unwrap());
    assert!(!store.take_lease(&lease, "node-b", 250, 350).unwrap());
    // Another holder's release leaves it alone.
    store.release_lease(&lease, "node-b").unwrap();
    assert!(!store.take_lease(&lease, "node-b", 260, 360).unwrap());
    // Released by its holder: free at once.
    store.release_lease(&lease, "node-a").unwrap();
    assert!(store.take_lease(&lease, "node-b", 260, 360).unwrap());
    // A holder that never releases (it died) loses it after its `until`,
    // and not before.
    assert!(!store.take_lease(&lease, "node-c", 360, 460).unwrap());
    assert!(store.take_lease(&lease, "node-c", 361, 460).unwrap());
    // The late holder's release does not free the new holder's lease.
    store.release_lease(&lease, "node-b").unwrap();
    assert!(!store.take_lease(&lease, "node-a", 400, 500).unwrap());
    // Leases are independent by name.
    assert!(
        store
            .take_lease(&format!("{lease}-other"), "node-a", 400, 500)
            .unwrap()
    );
}

fn concurrent_takers_of_one_lease_have_exactly_one_winner(store: &dyn Store) {
    let lease = format!("upstream-refresh:{}", uuid::Uuid::new_v4());
    let takers = 8;
    let barrier = Barrier::new(takers);
    let won = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..takers)
            .map(|i| {
                let (barrier, lease) = (&barrier, &lease);
                scope.spawn(move || {
                    barrier.wait();
                    store
                        .take_lease(lease, &format!("node-{i}"), 100, 200)
                        .unwrap()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|won| *won)
            .count()
    });
    assert_eq!(won, 1);
}

fn a_credential_set_read_past_the_cache_is_the_stored_one(store: &dyn Store) {
    let mut set = credential_set("enterprise:github", "github", &[1, 2, 3]);
    assert_eq!(store.credential_set_uncached(&set.id).unwrap(), None);
    store.put_credential_set(&set).unwrap();
    assert!(store.credential_set_shared(&set.id).unwrap().is_some());
    set.sealed = vec![4, 5, 6];
    store.put_credential_set(&set).unwrap();
    assert_eq!(store.credential_set_uncached(&set.id).unwrap(), Some(set));
}

/// Shared entries: a store of one node keeps none (its services keep
/// them in memory); a shared one claims once, reads, takes once, replaces,
/// removes, and never returns a lapsed entry, which the sweep removes.
fn shared_entries_are_claimed_once_taken_once_and_never_read_lapsed(store: &dyn Store) {
    use gnapd::store::HandoffKind::{LoginState, OperatorLink, UsedAssertion};
    let Some(shared) = store.handoffs() else {
        return;
    };
    let key = *uuid::Uuid::new_v4().as_bytes();
    let key: [u8; 32] = std::array::from_fn(|i| key[i % 16] ^ i as u8);
    assert!(
        shared
            .claim_handoff(UsedAssertion, &key, b"", 100, 200)
            .unwrap()
    );
    assert!(
        !shared
            .claim_handoff(UsedAssertion, &key, b"", 150, 300)
            .unwrap()
    );
    // Kinds do not see each other's entries.
    assert!(
        shared
            .claim_handoff(LoginState, &key, b"state", 150, 300)
            .unwrap()
    );
    assert_eq!(
        shared.handoff(UsedAssertion, &key, 200).unwrap(),
        Some(vec![])
    );
    // Lapsed (its expiry before now): not read, claimable again.
    assert_eq!(shared.handoff(UsedAssertion, &key, 201).unwrap(), None);
    assert!(
        shared
            .claim_handoff(UsedAssertion, &key, b"2", 201, 400)
            .unwrap()
    );
    assert_eq!(
        shared.handoff(UsedAssertion, &key, 300).unwrap(),
        Some(b"2".to_vec())
    );

    assert_eq!(
        shared.take_handoff(LoginState, &key, 150).unwrap(),
        Some(b"state".to_vec())
    );
    assert_eq!(shared.take_handoff(LoginState, &key, 150).unwrap(), None);
    shared.put_handoff(LoginState, &key, b"late", 160).unwrap();
    assert_eq!(
        shared.take_handoff(LoginState, &key, 161).unwrap(),
        None,
        "lapsed"
    );

    shared.put_handoff(OperatorLink, &key, b"one", 500).unwrap();
    shared.put_handoff(OperatorLink, &key, b"two", 500).unwrap();
    assert_eq!(
        shared.handoff(OperatorLink, &key, 300).unwrap(),
        Some(b"two".to_vec())
    );
    assert!(shared.remove_handoff(OperatorLink, &key).unwrap());
    assert!(!shared.remove_handoff(OperatorLink, &key).unwrap());
    let other = [9u8; 32];
    shared.put_handoff(OperatorLink, &key, b"", 500).unwrap();
    shared.put_handoff(OperatorLink, &other, b"", 500).unwrap();
    assert_eq!(shared.remove_handoff_kind(OperatorLink).unwrap(), 2);
    assert_eq!(shared.handoff(OperatorLink, &other, 300).unwrap(), None);

    // The sweep takes what lapsed and leaves what lives.
    shared
        .put_handoff(OperatorLink, &other, b"", 1_000)
        .unwrap();
    store.sweep(900).unwrap();
    assert_eq!(shared.handoff(UsedAssertion, &key, 300).unwrap(), None);
    assert_eq!(
        shared.handoff(OperatorLink, &other, 900).unwrap(),
        Some(vec![])
    );
}

fn concurrent_claims_and_takes_of_one_shared_entry_have_exactly_one_winner(store: &dyn Store) {
    use gnapd::store::HandoffKind::{ConnectState, UsedAssertion};
    let Some(shared) = store.handoffs() else {
        return;
    };
    let key = [7u8; 32];
    shared
        .put_handoff(ConnectState, &key, b"verifier", 200)
        .unwrap();
    let barrier = Barrier::new(8);
    let (claims, takes): (Vec<bool>, Vec<bool>) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let claimed = shared
                        .claim_handoff(UsedAssertion, &key, b"", 100, 200)
                        .unwrap();
                    let taken = shared
                        .take_handoff(ConnectState, &key, 100)
                        .unwrap()
                        .is_some();
                    (claimed, taken)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).unzip()
    });
    assert_eq!(claims.iter().filter(|c| **c).count(), 1, "{claims:?}");
    assert_eq!(takes.iter().filter(|t| **t).count(), 1, "{takes:?}");
}

/// Runs every contract check against the store `make()` builds (fresh for
/// each test).
macro_rules! contract_suite {
    ($backend:ident, $make:expr) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;

            contract_suite!(@tests $make;
                create_grant_is_readable_by_id_continuation_token_and_management_token,
                a_value_forged_to_name_a_real_grant_finds_nothing,
                continuation_swap_is_single_use_and_moves_the_index,
                continuation_swap_refuses_the_token_of_another_grant,
                concurrent_continuation_swaps_with_one_token_have_exactly_one_winner,
                delete_grant_removes_the_grant_its_continuation_and_its_tokens,
                token_swap_kills_the_old_value_at_once_and_moves_the_manage_index,
                token_swap_may_keep_the_management_token,
                concurrent_token_swaps_of_one_token_have_exactly_one_winner,
                revoke_token_removes_the_token_and_its_manage_index,
                instance_round_trips,
                create_grant_with_instance_writes_both,
                an_instance_named_after_its_grant_outlives_the_grant_until_its_own_expiry,
                sweep_removes_expired_grants_with_their_tokens_and_expired_tokens,
                nonce_is_fresh_once_replayed_inside_its_window_and_fresh_after,
                concurrent_nonce_remembers_see_exactly_one_fresh,
                sweep_leaves_live_nonces_and_forgets_expired_ones,
                credential_set_round_trips_and_is_replaced_by_id,
                remove_credential_set_revokes_the_tokens_mapped_to_it,
                upstreams_and_credential_sets_are_listed_and_removed,
                a_token_read_before_it_is_revoked_rotated_deleted_or_swept_is_gone_after,
                resource_set_registers_once_and_round_trips,
                oauth_clients_round_trip_are_counted_replaced_and_swept_when_expired,
                interaction_grant_is_found_by_id_and_user_code_and_listed_while_pending,
                decide_interaction_happens_once_and_retires_the_user_code,
                concurrent_decisions_have_exactly_one_winner,
                finish_interaction_takes_an_approved_interaction_once,
                delete_grant_and_sweep_remove_the_interaction_and_its_user_code,
                an_instance_lives_as_long_as_its_longest_grant_and_is_swept_after,
                spent_refresh_is_remembered_until_its_expiry_and_swept_after,
                an_expired_oauth_token_stays_until_its_grant_is_swept,
                table_sizes_count_each_record_and_its_stored_bytes,
                a_lease_has_one_holder_until_it_lapses_or_is_released,
                concurrent_takers_of_one_lease_have_exactly_one_winner,
                a_credential_set_read_past_the_cache_is_the_stored_one,
                shared_entries_are_claimed_once_taken_once_and_never_read_lapsed,
                concurrent_claims_and_takes_of_one_shared_entry_have_exactly_one_winner,
            );
        }
    };
    (@tests $make:expr; $($name:ident),+ $(,)?) => {
        $(
            #[test]
            fn $name() {
                let store = $make;
                super::$name(&*store);
            }
        )+
    };
}

/// A `SledStore` on a temporary directory that outlives it.
pub struct TempSled {
    pub store: SledStore,
    pub dir: tempfile::TempDir,
}

impl TempSled {
    pub fn new() -> Self {
        Self::with(Durability::GroupCommit)
    }

    pub fn with(durability: Durability) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open_with(dir.path(), durability).unwrap();
        Self { store, dir }
    }
}

impl std::ops::Deref for TempSled {
    type Target = SledStore;

    fn deref(&self) -> &SledStore {
        &self.store
    }
}

contract_suite!(store_memory, Box::new(MemoryStore::new()));
contract_suite!(store_sled, TempSled::new());
contract_suite!(
    store_sled_flush_each_write,
    TempSled::with(Durability::FlushEachWrite)
);
// Each test on an empty schema of its own on the shared test server.
contract_suite!(
    store_postgres,
    crate::support::postgres::TempPostgres::new()
);

// --- What only the disk store can show -----------------------------------

#[test]
fn sled_reopened_after_close_keeps_grants_tokens_instances_and_swaps() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new();
    let (grant, tokens) = f.grant(2, FOREVER);
    let (deleted, deleted_tokens) = f.grant(1, FOREVER);
    let (next, next_tokens) = continued(&f, &grant);
    let rotated = f.token(&grant.id, FOREVER);
    let instance = InstanceRecord {
        v: RECORD_VERSION,
        key: f.key.clone(),
        created_at: 5,
        expires_at: Some(FOREVER),
    };
    {
        let store = SledStore::open(dir.path()).unwrap();
        store.create_grant(&grant, &tokens).unwrap();
        store.create_grant(&deleted, &deleted_tokens).unwrap();
        assert!(
            store
                .continuation_swap(&cont(&grant), &next, &next_tokens)
                .unwrap()
        );
        assert!(
            store
                .token_swap(&tokens[0].1.manage, &tokens[0].0, &rotated)
                .unwrap()
        );
        assert!(store.revoke_token(&tokens[1].1.manage).unwrap());
        assert!(store.delete_grant(&cont(&deleted)).unwrap());
        store.create_instance("inst", &instance).unwrap();
        store.close().unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    let stored = store.grant(&grant.id).unwrap().unwrap();
    assert_eq!(stored.continuation, next.continuation);
    assert_eq!(
        store.grant_by_continuation(&cont(&next)).unwrap(),
        Some(stored.clone())
    );
    assert_eq!(store.grant_by_continuation(&cont(&grant)).unwrap(), None);
    assert_eq!(store.token(&rotated.0).unwrap(), Some(rotated.1.clone()));
    assert_eq!(
        store.token_by_manage(&rotated.1.manage).unwrap(),
        Some(rotated.clone())
    );
    assert_eq!(
        store.token(&next_tokens[0].0).unwrap(),
        Some(next_tokens[0].1.clone())
    );
    assert_eq!(store.token(&tokens[0].0).unwrap(), None, "rotated away");
    assert_eq!(store.token(&tokens[1].0).unwrap(), None, "revoked");
    assert_eq!(store.grant(&deleted.id).unwrap(), None);
    assert_eq!(store.token(&deleted_tokens[0].0).unwrap(), None);
    assert_eq!(store.instance("inst").unwrap(), Some(instance));
}

#[test]
fn sled_dropped_without_close_releases_the_directory_and_keeps_writes() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new();
    let (grant, tokens) = f.grant(1, FOREVER);
    {
        let store = SledStore::open(dir.path()).unwrap();
        store.create_grant(&grant, &tokens).unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.grant(&grant.id).unwrap(), Some(grant));
}

#[test]
fn sled_refuses_a_second_opener_of_the_same_directory() {
    let sled = TempSled::new();
    assert!(matches!(
        SledStore::open(sled.dir.path()),
        Err(StoreError::Backend(_))
    ));
}

/// The sled store's key for a grant with a UUID identifier: a prefix byte
/// and the UUID's 16 bytes.
fn record_key(id: &GrantId) -> Vec<u8> {
    [&[1u8][..], &id.locator().unwrap()[..]].concat()
}

/// The data dir opened with sled itself, as another build of gnapd would.
/// sled lets go of its directory lock a moment after a store's last
/// handle (its I/O threads drop theirs later), so this waits up to a
/// second for it, as `SledStore::open` does.
fn raw_sled(dir: &std::path::Path) -> sled::Db {
    (0..100)
        .find_map(|_| {
            sled::open(dir)
                .inspect_err(|_| std::thread::sleep(std::time::Duration::from_millis(10)))
                .ok()
        })
        .expect("the data dir opens once the store let go")
}

/// Writes `raw` as grant `id`'s record straight through sled, as another
/// build of gnapd would have.
fn write_raw_record(dir: &std::path::Path, id: &GrantId, raw: &serde_json::Value) {
    let db = raw_sled(dir);
    db.open_tree("grant_records")
        .unwrap()
        .insert(record_key(id), serde_json::to_vec(raw).unwrap())
        .unwrap();
    db.flush().unwrap();
}

#[test]
fn sled_refuses_to_read_a_record_with_an_unknown_version() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new();
    let (grant, tokens) = f.grant(1, FOREVER);
    let (hash, record) = &tokens[0];
    {
        // Written by "a later gnapd": straight through sled, the grant's
        // one record (with its token) tagged v = 99.
        let mut token = serde_json::to_value(record).unwrap();
        token["a_field_from_the_future"] = json!(true);
        let raw = json!({
            "v": 99,
            "expires_at": grant.expires_at,
            "grant": grant,
            "tokens": [[hash, token]],
        });
        write_raw_record(dir.path(), &grant.id, &raw);
    }
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.grant(&grant.id), Err(StoreError::Version(99)));
    assert_eq!(store.token(hash), Err(StoreError::Version(99)));
    assert_eq!(
        store.token_by_manage(&record.manage),
        Err(StoreError::Version(99))
    );
    // Nor does a write path that must read the record go ahead.
    assert_eq!(
        store.revoke_token(&record.manage),
        Err(StoreError::Version(99))
    );
    assert_eq!(
        store.token(hash),
        Err(StoreError::Version(99)),
        "still there, untouched"
    );
    // Nor does a sweep or a check pass over it as if it were not there.
    assert_eq!(store.sweep(i64::MAX), Err(StoreError::Version(99)));
    assert_eq!(store.check().unwrap().problems.len(), 1);
    // And this build never writes a version it could not read back.
    let mut future = grant.clone();
    future.v = 99;
    assert_eq!(
        store.create_grant(&future, &[]),
        Err(StoreError::Version(99))
    );
}

/// Data dirs written before the compact form hold grant records as JSON
/// (and the five-tree migration wrote them so): they read as before, and
/// the first change writes the record compact.
#[test]
fn sled_reads_a_json_grant_record_and_rewrites_it_compact_when_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new();
    let (grant, tokens) = f.grant(2, FOREVER);
    let raw = json!({
        "v": 1,
        "expires_at": grant.expires_at,
        "tokens_expire": tokens.iter().map(|(_, t)| t.expires_at).min(),
        "grant": grant,
        "tokens": tokens,
    });
    let stored = |dir: &std::path::Path| {
        let db = raw_sled(dir);
        let value = db
            .open_tree("grant_records")
            .unwrap()
            .get(record_key(&grant.id))
            .unwrap();
        value.map(|v| v.to_vec())
    };
    write_raw_record(dir.path(), &grant.id, &raw);
    {
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.grant(&grant.id).unwrap(), Some(grant.clone()));
        assert_eq!(
            store.token(&tokens[0].0).unwrap(),
            Some(tokens[0].1.clone())
        );
        assert!(store.check().unwrap().problems.is_empty());
        // A sweep reads the JSON record's expiries and leaves it.
        store.sweep(0).unwrap();
        assert_eq!(store.grant(&grant.id).unwrap(), Some(grant.clone()));
        assert!(store.revoke_token(&tokens[0].1.manage).unwrap());
        store.close().unwrap();
    }
    let bytes = stored(dir.path()).unwrap();
    assert_eq!(bytes[0], 0xF5, "rewritten in the compact form");
    assert!(bytes.len() < serde_json::to_vec(&raw).unwrap().len() / 3);
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.token(&tokens[0].0).unwrap(), None);
    assert_eq!(
        store.token(&tokens[1].0).unwrap(),
        Some(tokens[1].1.clone())
    );
    assert!(store.check().unwrap().problems.is_empty());
    // And a sweep reads the compact record's expiries: past them, it goes.
    let swept = store.sweep(i64::MAX).unwrap();
    assert_eq!(swept.grants, 1);
    assert_eq!(store.grant(&grant.id).unwrap(), None);
}

#[test]
fn sled_replay_memory_begins_at_opening_so_older_signatures_are_refused() {
    // The replay cache lives in memory: a reopened store has forgotten every
    // nonce, and says so by refusing signatures created before it opened.
    let unix = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new();
    let before = unix();
    {
        let store = SledStore::open(dir.path()).unwrap();
        assert!(store.horizon() >= before && store.horizon() <= unix());
        assert_eq!(store.remember(f.scope(), b"n", FOREVER, 0), Ok(Seen::Fresh));
        assert_eq!(
            store.remember(f.scope(), b"n", FOREVER, 0),
            Ok(Seen::Replayed)
        );
        store.close().unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    let store = SledStore::open(dir.path()).unwrap();
    assert!(
        store.horizon() > before,
        "the horizon moved to the reopening"
    );
}

#[test]
fn sled_keeps_resource_sets_across_a_reopen_and_refuses_unknown_versions() {
    let dir = tempfile::tempdir().unwrap();
    let set = resource_set(json!([{"type": "photo-api"}]));
    {
        let store = SledStore::open(dir.path()).unwrap();
        assert!(store.register_resource_set("ref-1", &set).unwrap());
        store.close().unwrap();
    }
    {
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.resource_set("ref-1").unwrap(), Some(set.clone()));
        store.close().unwrap();
    }
    {
        let db = raw_sled(dir.path());
        let mut raw = serde_json::to_value(&set).unwrap();
        raw["v"] = json!(99);
        db.open_tree("resource_sets")
            .unwrap()
            .insert(b"ref-2", serde_json::to_vec(&raw).unwrap())
            .unwrap();
        db.flush().unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.resource_set("ref-2"), Err(StoreError::Version(99)));
    assert!(!store.register_resource_set("ref-2", &set).unwrap());
}

/// A data dir written before issue 19 (a grant, its continuation index, its
/// tokens and their management index in four trees; token values that
/// carry no locator) opens with everything found by the old hashes, and
/// the old trees gone.
#[test]
fn a_data_dir_in_the_five_tree_layout_opens_with_every_grant_and_token_found_by_its_old_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new();
    let old_token = |grant: &GrantId| {
        let (_, mut record) = f.token(grant, FOREVER);
        record.manage = fresh_hash();
        (fresh_hash(), record)
    };
    let (mut grant, _) = f.grant(0, FOREVER);
    let (a, b) = (old_token(&grant.id), old_token(&grant.id));
    // `b` was revoked: listed by the grant, its record gone.
    grant.tokens = vec![a.0, b.0];
    grant.continuation.as_mut().unwrap().token = fresh_hash();
    let continuation = cont(&grant);
    let (mut other, _) = f.grant(0, FOREVER);
    let c = old_token(&other.id);
    other.tokens = vec![c.0];
    other.continuation = None;
    {
        let db = raw_sled(dir.path());
        let tree = |name: &str| db.open_tree(name).unwrap();
        for g in [&grant, &other] {
            tree("grants")
                .insert(g.id.0.as_bytes(), serde_json::to_vec(g).unwrap())
                .unwrap();
        }
        tree("continuations")
            .insert(&continuation.0[..], grant.id.0.as_bytes())
            .unwrap();
        for (hash, record) in [&a, &c] {
            tree("tokens")
                .insert(&hash.0[..], serde_json::to_vec(record).unwrap())
                .unwrap();
            tree("manage")
                .insert(&record.manage.0[..], &hash.0[..])
                .unwrap();
        }
        db.flush().unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.grant(&grant.id).unwrap(), Some(grant.clone()));
    assert_eq!(
        store.grant_by_continuation(&continuation).unwrap(),
        Some(grant.clone())
    );
    assert_eq!(store.token(&a.0).unwrap(), Some(a.1.clone()));
    assert_eq!(store.token(&c.0).unwrap(), Some(c.1.clone()));
    assert_eq!(store.token(&b.0).unwrap(), None);
    assert_eq!(store.token_by_manage(&a.1.manage).unwrap(), Some(a.clone()));
    let checked = store.check().unwrap();
    assert_eq!(checked.problems, Vec::<String>::new());
    assert_eq!((checked.grants, checked.tokens), (2, 2));
    let tables: std::collections::BTreeMap<_, _> =
        store.table_sizes().unwrap().into_iter().collect();
    assert_eq!(tables["grants"].records, 2);
    assert_eq!(
        tables["token_index"].records, 5,
        "a, c, their managers, one continuation"
    );
    // Old hashes keep working for every operation, and a rotation mints
    // a hash that locates the record.
    assert!(store.revoke_token(&c.1.manage).unwrap());
    assert_eq!(store.token(&c.0).unwrap(), None);
    let next = f.token(&grant.id, FOREVER);
    assert!(store.token_swap(&a.1.manage, &a.0, &next).unwrap());
    assert_eq!(store.token(&a.0).unwrap(), None);
    assert_eq!(store.token(&next.0).unwrap(), Some(next.1.clone()));
    assert!(store.delete_grant(&continuation).unwrap());
    assert_eq!(store.token(&next.0).unwrap(), None);
    drop(store);
    // Reopened: nothing to migrate, the old trees are gone.
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.grant(&other.id).unwrap(), Some(other));
    store.close().unwrap();
    drop(store);
    let db = raw_sled(dir.path());
    for old in ["grants", "tokens", "manage", "continuations"] {
        assert!(
            !db.tree_names().iter().any(|n| n.as_ref() == old.as_bytes()),
            "{old} still there"
        );
    }
}

/// sled's newest recovery snapshot in `dir`: its file name carries the log
/// position it covers (`snap.<hex>`), so a later snapshot sorts after.
fn newest_snapshot(dir: &std::path::Path) -> Option<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("snap."))
        .max()
}

/// What `gnapd serve` does after a clean stop: the snapshot moves past
/// everything written since the store was opened, so the next start reads
/// none of that log again, and every grant is still there.
#[test]
fn a_checkpoint_after_a_clean_close_covers_every_write_and_loses_none() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new();
    let store = SledStore::open(dir.path()).unwrap();
    let at_open = newest_snapshot(dir.path());
    let grants: Vec<_> = (0..200).map(|_| f.grant(1, FOREVER)).collect();
    for (grant, tokens) in &grants {
        store.create_grant(grant, tokens).unwrap();
    }
    store.close().unwrap();
    drop(store);
    assert_eq!(
        newest_snapshot(dir.path()),
        at_open,
        "no snapshot while open"
    );
    gnapd::store::sled::checkpoint(dir.path()).unwrap();
    let after = newest_snapshot(dir.path());
    assert!(after > at_open, "{after:?} is not past {at_open:?}");
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(
        newest_snapshot(dir.path()),
        after,
        "the start after the checkpoint found no log to take into a snapshot"
    );
    for (grant, tokens) in &grants {
        assert_eq!(store.grant(&grant.id).unwrap().as_ref(), Some(grant));
        assert_eq!(
            store.token(&tokens[0].0).unwrap(),
            Some(tokens[0].1.clone())
        );
    }
}
