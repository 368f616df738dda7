//! An answer never gets ahead of the disk (issue 14): a call that finds its
//! work already done by a concurrent call — a token already revoked or
//! rotated away, a continuation already used, a grant already deleted —
//! answers only once that concurrent write is on disk. Otherwise a crash in
//! between brings back what the answer called gone: with disk writes slowed
//! by 20 ms, 5 revoked tokens came back from the dead in 10 crash cycles.
//!
//! Each test holds the store's flushes (`held_disk`), lets the first call
//! commit in memory, makes the second call and fails if it returns before
//! the flushes go on: the store promises durability at its flush, so an
//! answer before it is ahead of the disk. Where the second call only reads
//! (the 204 of a revocation that finds nothing), the crash copy taken in
//! that window shows what a `kill -9` there leaves: the token back. (A
//! second call that runs a sled transaction happens to push the first
//! one's log buffer to the file on its way, which the store does not count
//! on: a file write is not yet an fsync.)

use gnapd::store::sled::SledStore;
use gnapd::store::{Continuation, InteractionStatus, Store, TokenHash};
use serde_json::json;

use crate::support::agent::{Agent, access_token};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::support::held_disk::{HeldDisk, until};
use crate::support::held_server::HeldServer;
use crate::support::http_client::send;
use crate::support::store_fixture::{FOREVER, Fixture, fresh_hash};

/// One grant with one token, on disk.
fn setup() -> (
    HeldDisk,
    Fixture,
    gnapd::store::GrantRecord,
    gnapd::store::TokenRecord,
) {
    let disk = HeldDisk::new();
    let f = Fixture::new();
    let (grant, tokens) = f.grant(1, FOREVER);
    disk.store.create_grant(&grant, &tokens).unwrap();
    let token = tokens[0].1.clone();
    (disk, f, grant, token)
}

#[test]
fn a_revocation_that_finds_its_token_already_revoked_waits_for_that_revocation_to_be_on_disk() {
    let (disk, _, grant, token) = setup();
    let hash = grant.tokens[0];
    let store = &disk.store;
    let (_, first, second) = disk.race(
        || store.revoke_token(&token.manage).unwrap(),
        || store.revoke_token(&token.manage).unwrap(),
    );
    assert!(first && !second);
    assert!(store.token(&hash).unwrap().is_none());
}

#[test]
fn a_revocation_by_the_old_management_token_waits_for_the_rotation_that_replaced_it() {
    let (disk, f, grant, token) = setup();
    let old = grant.tokens[0];
    let (new_hash, new_record) = f.token(&grant.id, FOREVER);
    let store = &disk.store;
    let (_, rotated, revoked) = disk.race(
        || {
            store
                .token_swap(&token.manage, &old, &(new_hash, new_record))
                .unwrap()
        },
        || store.revoke_token(&token.manage).unwrap(),
    );
    assert!(rotated && !revoked);
    assert!(store.token(&old).unwrap().is_none());
}

#[test]
fn a_second_delete_of_a_grant_waits_for_the_first_to_be_on_disk() {
    let (disk, _, grant, _) = setup();
    let cont = grant.continuation.as_ref().unwrap().token;
    let store = &disk.store;
    let (_, first, second) = disk.race(
        || store.delete_grant(&cont).unwrap(),
        || store.delete_grant(&cont).unwrap(),
    );
    assert!(first && !second);
    assert!(store.grant(&grant.id).unwrap().is_none());
}

#[test]
fn a_continuation_already_used_is_reported_only_once_its_use_is_on_disk() {
    let (disk, _, grant, _) = setup();
    let cont = grant.continuation.as_ref().unwrap().token;
    let next = |mut g: gnapd::store::GrantRecord| {
        g.continuation = Some(Continuation {
            token: fresh_hash(),
            wait: 0,
            issued_at: 2_000,
        });
        g
    };
    let (one, two) = (next(grant.clone()), next(grant.clone()));
    let store = &disk.store;
    let (_, first, second) = disk.race(
        || store.continuation_swap(&cont, &one, &[]).unwrap(),
        || store.continuation_swap(&cont, &two, &[]).unwrap(),
    );
    assert!(first && !second);
    assert!(store.grant_by_continuation(&cont).unwrap().is_none());
}

#[test]
fn a_decision_already_taken_is_reported_only_once_it_is_on_disk() {
    let disk = HeldDisk::new();
    let f = Fixture::new();
    let (mut grant, _) = f.grant(0, FOREVER);
    grant.state = gnapd::store::GrantState::Pending;
    let interaction = gnapd::store::InteractionRecord {
        v: gnapd::store::RECORD_VERSION,
        grant: grant.id.clone(),
        user_code: Some(fresh_hash()),
        finish: None,
        page: None,
        created_at: 1_000,
        expires_at: FOREVER,
        status: InteractionStatus::Pending,
    };
    let store = &disk.store;
    store
        .create_interaction_grant(&grant, &interaction, None)
        .unwrap();
    let denied = InteractionStatus::Denied {
        interact_ref: None,
        decided_at: 2_000,
        by: None,
    };
    let (_, first, second) = disk.race(
        || store.decide_interaction(&grant.id, &denied).unwrap(),
        || store.decide_interaction(&grant.id, &denied).unwrap(),
    );
    assert!(first && !second);
}

#[test]
fn settling_after_a_read_waits_for_the_write_the_read_saw() {
    let (disk, _, grant, token) = setup();
    let store = &disk.store;
    let (copy, revoked, seen) = disk.race(
        || store.revoke_token(&token.manage).unwrap(),
        || {
            // What a revocation of an already revoked token does: read,
            // find nothing, settle before answering.
            let seen = store.token_by_manage(&token.manage).unwrap().is_some();
            store.settle().unwrap();
            seen
        },
    );
    assert!(revoked && !seen);
    let crashed = SledStore::open(copy.path()).unwrap();
    assert!(crashed.token(&grant.tokens[0]).unwrap().is_some());
}

// --- Through the HTTP edge: the AS's "already done" answers --------------

/// A grant over HTTP: (agent, answer).
fn granted(server: &HeldServer) -> (Agent, serde_json::Value) {
    let agent = Agent::new();
    let answer = send(server.addr, &grant_request(server, &agent));
    assert_eq!(answer.status, 200, "{}", answer.text());
    (agent, answer.json())
}

/// `agent`'s signed request for a grant, made now.
fn grant_request(server: &HeldServer, agent: &Agent) -> gnapd::proto::httpsig::HttpRequest {
    agent.signed(
        "POST",
        &server.grant_endpoint,
        None,
        Some(&agent.grant_body(json!(["mcp:github"]))),
        now(),
    )
}

fn now() -> i64 {
    gnapd::clock::Clock::now(&gnapd::clock::SystemClock)
}

fn text<'a>(body: &'a serde_json::Value, pointer: &str) -> &'a str {
    body.pointer(pointer)
        .and_then(|v| v.as_str())
        .unwrap_or_else(|| panic!("no {pointer} in {body}"))
}

/// What a `kill -9` in the window left: is the access token there?
fn token_in(copy: &tempfile::TempDir, value: &str) -> bool {
    let crashed = SledStore::open(copy.path()).unwrap();
    crashed.token(&TokenHash::of(value)).unwrap().is_some()
}

#[test]
fn a_204_for_a_token_a_concurrent_revocation_removed_waits_until_a_crash_cannot_bring_it_back() {
    let server = HeldServer::start();
    let (agent, body) = granted(&server);
    let uri = text(&body, "/access_token/manage/uri");
    let manage = text(&body, "/access_token/manage/access_token/value");
    let revoke = || {
        send(
            server.addr,
            &agent.signed("DELETE", uri, Some(manage), None, now()),
        )
    };
    let (copy, first, second) = server.disk.race(revoke, revoke);
    assert_eq!((first.status, second.status), (204, 204));
    // A crash while both waited brings the token back: neither 204 may
    // have left by then.
    assert!(token_in(&copy, access_token(&body)));
}

#[test]
fn a_204_for_a_token_a_concurrent_rotation_replaced_waits_for_the_rotation_to_be_on_disk() {
    let server = HeldServer::start();
    let (agent, body) = granted(&server);
    let uri = text(&body, "/access_token/manage/uri");
    let manage = text(&body, "/access_token/manage/access_token/value");
    let (copy, rotated, revoked) = server.disk.race(
        || {
            send(
                server.addr,
                &agent.signed("POST", uri, Some(manage), None, now()),
            )
        },
        || {
            send(
                server.addr,
                &agent.signed("DELETE", uri, Some(manage), None, now()),
            )
        },
    );
    assert_eq!((rotated.status, revoked.status), (200, 204));
    assert!(token_in(&copy, access_token(&body)));
}

#[test]
fn a_rotation_refused_because_a_concurrent_revocation_removed_the_token_waits_for_it() {
    let server = HeldServer::start();
    let (agent, body) = granted(&server);
    let uri = text(&body, "/access_token/manage/uri");
    let manage = text(&body, "/access_token/manage/access_token/value");
    let (copy, revoked, rotated) = server.disk.race(
        || {
            send(
                server.addr,
                &agent.signed("DELETE", uri, Some(manage), None, now()),
            )
        },
        || {
            send(
                server.addr,
                &agent.signed("POST", uri, Some(manage), None, now()),
            )
        },
    );
    assert_eq!(revoked.status, 204);
    assert_eq!(rotated.json()["error"]["code"], "invalid_rotation");
    assert!(token_in(&copy, access_token(&body)));
}

#[test]
fn a_continuation_reported_used_by_a_concurrent_call_waits_for_that_call_to_be_on_disk() {
    let server = HeldServer::start();
    let (agent, body) = granted(&server);
    let uri = text(&body, "/continue/uri");
    let cont = text(&body, "/continue/access_token/value");
    let poll = || {
        send(
            server.addr,
            &agent.signed("POST", uri, Some(cont), None, now()),
        )
    };
    let (copy, first, second) = server.disk.race(poll, poll);
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(second.json()["error"]["code"], "invalid_continuation");
    let crashed = SledStore::open(copy.path()).unwrap();
    assert!(
        crashed
            .grant_by_continuation(&TokenHash::of(cont))
            .unwrap()
            .is_some()
    );
}

#[test]
fn a_grant_reported_deleted_by_a_concurrent_delete_waits_for_the_delete_to_be_on_disk() {
    let server = HeldServer::start();
    let (agent, body) = granted(&server);
    let uri = text(&body, "/continue/uri");
    let cont = text(&body, "/continue/access_token/value");
    let delete = || {
        send(
            server.addr,
            &agent.signed("DELETE", uri, Some(cont), None, now()),
        )
    };
    let (copy, first, second) = server.disk.race(delete, delete);
    assert_eq!(first.status, 204, "{}", first.text());
    assert_eq!(second.json()["error"]["code"], "invalid_continuation");
    assert!(token_in(&copy, access_token(&body)));
}

#[test]
fn a_first_grant_answer_leaves_only_after_its_token_is_on_disk() {
    // The AS's handlers take a ticket instead of parking a thread
    // (`store::deferring`); the answer must still wait for the flush.
    let server = HeldServer::start();
    server.disk.hold.hold();
    let answered = AtomicBool::new(false);
    let (copy, answer) = std::thread::scope(|s| {
        let call = s.spawn(|| {
            let answer = send(server.addr, &grant_request(&server, &Agent::new()));
            answered.store(true, Ordering::SeqCst);
            answer
        });
        until("the grant waits for the disk", || {
            server.disk.store.awaiting_flush() == 1
        });
        // Long enough for an answer that did not wait to arrive.
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(
            !answered.load(Ordering::SeqCst),
            "the grant was answered while its token was not on disk"
        );
        let copy = server.disk.crash_copy();
        server.disk.hold.release();
        (copy, call.join().unwrap())
    });
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body = answer.json();
    assert!(
        !token_in(&copy, access_token(&body)),
        "the crash copy was taken before the flush"
    );
    assert!(
        server
            .disk
            .store
            .token(&TokenHash::of(access_token(&body)))
            .unwrap()
            .is_some()
    );
}
