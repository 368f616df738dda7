//! The gateway's decision without sockets: tokens issued by the real AS,
//! calls signed by the real agent code, the in-memory store.

use std::sync::Arc;

use gnapd::authz::{AsConfig, AuthServer, Endpoint, Policy};
use gnapd::clock::ManualClock;
use gnapd::gateway::{KeyCache, Refusal, authorize, conclude, open};
use gnapd::proto::digest::DigestError;
use gnapd::proto::httpsig::batch;
use gnapd::proto::httpsig::{GnapProfile, HttpRequest, Rejection, SignOptions, sign_gnap};
use gnapd::proto::mcp::access::Denied;
use gnapd::store::memory::MemoryStore;
use serde_json::{Value, json};

use crate::support::agent::{Agent, access_token, management};

const T0: i64 = 1_790_000_000;
const GW: &str = "https://gw.example.com/mcp/github";

struct Setup {
    store: Arc<MemoryStore>,
    server: AuthServer,
    agent: Agent,
}

/// An agent holding a token for `access`, issued by a dev-mode AS.
fn setup(access: Value) -> (Setup, Value) {
    let store = Arc::new(MemoryStore::new());
    let server = AuthServer::new(
        store.clone(),
        Arc::new(ManualClock::at(T0)),
        Policy {
            dev: true,
            ..Policy::default()
        },
        AsConfig::new("https://as.example.com"),
    );
    let agent = Agent::new();
    let req = agent.signed(
        "POST",
        "https://as.example.com/gnap",
        None,
        Some(&agent.grant_body(access)),
        T0,
    );
    let reply = server.handle(&Endpoint::Grant, &req);
    assert_eq!(reply.status, 200);
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    (
        Setup {
            store,
            server,
            agent,
        },
        body,
    )
}

fn call(agent: &Agent, token: &str, message: &Value, now: i64) -> HttpRequest {
    agent.signed("POST", GW, Some(token), Some(message), now)
}

fn tools_call(name: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": {}}})
}

fn check(
    s: &Setup,
    upstream: &str,
    request: &HttpRequest,
    now: i64,
) -> Result<gnapd::gateway::Authorized, Refusal> {
    authorize(
        s.store.as_ref(),
        &GnapProfile::default(),
        upstream,
        request,
        now,
    )
}

fn token(body: &Value) -> &str {
    access_token(body)
}

#[test]
fn a_signed_call_within_the_grant_passes() {
    let (s, body) =
        setup(json!([{"type": "mcp", "identifier": "github", "tools": ["search_issues"]}]));
    let ok = check(
        &s,
        "github",
        &call(&s.agent, token(&body), &tools_call("search_issues"), T0),
        T0,
    )
    .unwrap();
    assert!(ok.message.is_some());
}

#[test]
fn a_call_for_another_upstream_is_denied() {
    let (s, body) = setup(json!(["mcp:github"]));
    let refusal = check(
        &s,
        "slack",
        &call(&s.agent, token(&body), &tools_call("x"), T0),
        T0,
    )
    .unwrap_err();
    assert!(matches!(refusal, Refusal::Denied(Denied::Upstream(u)) if u == "slack"));
}

#[test]
fn an_ungranted_tool_is_denied() {
    let (s, body) =
        setup(json!([{"type": "mcp", "identifier": "github", "tools": ["search_issues"]}]));
    let refusal = check(
        &s,
        "github",
        &call(&s.agent, token(&body), &tools_call("delete_repo"), T0),
        T0,
    )
    .unwrap_err();
    assert!(matches!(refusal, Refusal::Denied(Denied::Tool(t)) if t == "delete_repo"));
}

#[test]
fn no_token_an_unknown_token_and_an_expired_token_get_the_token_challenge() {
    let (s, body) = setup(json!(["mcp:github"]));
    let mut unsigned =
        HttpRequest::new("POST", GW).with_body(tools_call("x").to_string().into_bytes());
    sign_gnap(&mut unsigned, &s.agent.key, T0, &SignOptions::default()).unwrap();
    assert!(matches!(
        check(&s, "github", &unsigned, T0),
        Err(Refusal::Token)
    ));
    let unknown = call(&s.agent, "not-a-real-token", &tools_call("x"), T0);
    assert!(matches!(
        check(&s, "github", &unknown, T0),
        Err(Refusal::Token)
    ));
    let late = T0 + 3601;
    let expired = call(&s.agent, token(&body), &tools_call("x"), late);
    assert!(matches!(
        check(&s, "github", &expired, late),
        Err(Refusal::Token)
    ));
}

#[test]
fn a_rotated_away_token_is_dead_at_the_gateway() {
    let (s, body) = setup(json!(["mcp:github"]));
    let (manage_uri, manage) = management(&body);
    let id = manage_uri.rsplit('/').next().unwrap().to_owned();
    let rotate = s.agent.signed("POST", manage_uri, Some(manage), None, T0);
    assert_eq!(s.server.handle(&Endpoint::Manage(id), &rotate).status, 200);
    let old = call(&s.agent, token(&body), &tools_call("x"), T0);
    assert!(matches!(check(&s, "github", &old, T0), Err(Refusal::Token)));
}

#[test]
fn a_call_signed_by_another_key_is_refused() {
    let (s, body) = setup(json!(["mcp:github"]));
    let thief = Agent::new();
    let stolen = call(&thief, token(&body), &tools_call("x"), T0);
    assert!(matches!(
        check(&s, "github", &stolen, T0),
        Err(Refusal::Signature(Rejection::BadSignature))
    ));
}

#[test]
fn a_tampered_body_or_header_is_refused() {
    let (s, body) = setup(json!(["mcp:github"]));
    let mut tampered = call(&s.agent, token(&body), &tools_call("search"), T0);
    tampered.body = tools_call("delete_repo").to_string().into_bytes();
    assert!(matches!(
        check(&s, "github", &tampered, T0),
        Err(Refusal::Signature(Rejection::Digest(
            DigestError::Mismatch(_)
        )))
    ));
    let mut req = HttpRequest::new("POST", GW)
        .with_field("Authorization", format!("GNAP {}", token(&body)))
        .with_field("Mcp-Method", "tools/call")
        .with_field("Content-Type", "application/json")
        .with_body(tools_call("search").to_string().into_bytes());
    sign_gnap(&mut req, &s.agent.key, T0, &SignOptions::default()).unwrap();
    req.fields.set("Mcp-Method", "tools/list");
    assert!(matches!(
        check(&s, "github", &req, T0),
        Err(Refusal::Signature(Rejection::BadSignature))
    ));
}

#[test]
fn a_replayed_call_is_refused() {
    let (s, body) = setup(json!(["mcp:github"]));
    let req = call(&s.agent, token(&body), &tools_call("x"), T0);
    assert!(check(&s, "github", &req, T0).is_ok());
    assert!(matches!(
        check(&s, "github", &req, T0 + 1),
        Err(Refusal::Signature(Rejection::ReplayedNonce))
    ));
}

#[test]
fn routing_headers_must_match_the_body_and_be_signed() {
    let (s, body) = setup(json!(["mcp:github"]));
    let signed = |method: &str| {
        let mut req = HttpRequest::new("POST", GW)
            .with_field("Authorization", format!("GNAP {}", token(&body)))
            .with_field("Mcp-Method", method)
            .with_field("Mcp-Name", "search")
            .with_body(tools_call("search").to_string().into_bytes());
        sign_gnap(&mut req, &s.agent.key, T0, &SignOptions::default()).unwrap();
        req
    };
    assert!(check(&s, "github", &signed("tools/call"), T0).is_ok());
    assert!(matches!(
        check(&s, "github", &signed("tools/list"), T0),
        Err(Refusal::HeaderMismatch("Mcp-Method"))
    ));
    // A routing header added after signing is not covered.
    let mut req = call(&s.agent, token(&body), &tools_call("search"), T0);
    req.fields.append("Mcp-Session-Id", "abc");
    assert!(matches!(
        check(&s, "github", &req, T0),
        Err(Refusal::Uncovered("mcp-session-id"))
    ));
}

#[test]
fn calls_checked_in_one_batch_get_the_decisions_they_would_get_alone() {
    let (s, body) = setup(json!(["mcp:github"]));
    let good = |n: u64| {
        let message = json!({"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": "search", "arguments": {}}});
        call(&s.agent, token(&body), &message, T0)
    };
    let thief = Agent::new();
    let stolen = call(&thief, token(&body), &tools_call("x"), T0);
    let mut retargeted = HttpRequest::new("POST", GW)
        .with_field("Authorization", format!("GNAP {}", token(&body)))
        .with_field("Mcp-Method", "tools/call")
        .with_body(tools_call("search").to_string().into_bytes());
    sign_gnap(&mut retargeted, &s.agent.key, T0, &SignOptions::default()).unwrap();
    retargeted.fields.set("Mcp-Method", "tools/list");
    let first = good(1);
    let requests = [
        first.clone(),
        stolen,
        retargeted,
        good(2),
        first, // the same signed call again: a replay
        good(3),
    ];

    let keys = KeyCache::default();
    let profile = GnapProfile::default();
    let store = s.store.as_ref();
    let mut opened = Vec::new();
    let mut pending = Vec::new();
    for request in &requests {
        let (call, screened) = open(store, &keys, &profile, request, T0).unwrap();
        opened.push(call);
        pending.push(screened.expect("every signature here passes the screen"));
    }
    // One equation for all six; the two forgeries make it fail, so each is
    // then checked alone.
    let (checked, tally) = batch::check(pending);
    assert_eq!(
        (tally.equations, tally.in_equations, tally.failed),
        (1, 6, 1)
    );
    let decisions: Vec<_> = requests
        .iter()
        .zip(opened)
        .zip(checked)
        .map(|((request, call), checked)| {
            conclude(store, &profile, "github", request, T0, call, checked)
        })
        .collect();
    assert!(decisions[0].is_ok());
    assert!(matches!(
        decisions[1],
        Err(Refusal::Signature(Rejection::BadSignature))
    ));
    assert!(matches!(
        decisions[2],
        Err(Refusal::Signature(Rejection::BadSignature))
    ));
    assert!(decisions[3].is_ok());
    assert!(matches!(
        decisions[4],
        Err(Refusal::Signature(Rejection::ReplayedNonce))
    ));
    assert!(decisions[5].is_ok());

    // Good signatures only: the equation holds and every call passes.
    let (s, body) = setup(json!(["mcp:github"]));
    let store = s.store.as_ref();
    let requests: Vec<_> = (0..4)
        .map(|n| {
            let message = json!({"jsonrpc": "2.0", "id": n, "method": "ping"});
            call(&s.agent, token(&body), &message, T0)
        })
        .collect();
    let (opened, pending): (Vec<_>, Vec<_>) = requests
        .iter()
        .map(|r| open(store, &keys, &profile, r, T0).unwrap())
        .map(|(call, screened)| (call, screened.unwrap()))
        .unzip();
    let (checked, tally) = batch::check(pending);
    assert_eq!((tally.equations, tally.failed), (1, 0));
    for ((request, call), checked) in requests.iter().zip(opened).zip(checked) {
        assert!(checked.is_some());
        conclude(store, &profile, "github", request, T0, call, checked).unwrap();
    }
}

#[test]
fn an_answer_for_another_key_is_not_taken_for_this_call() {
    let (s, body) = setup(json!(["mcp:github"]));
    let (other, other_body) = setup(json!(["mcp:github"]));
    let keys = KeyCache::default();
    let profile = GnapProfile::default();
    // A stolen token, signed by the thief, and the thief's own good call.
    let thief = &other.agent;
    let stolen = call(thief, token(&body), &tools_call("x"), T0);
    let own = call(thief, token(&other_body), &tools_call("x"), T0);
    let (call_stolen, _) = open(s.store.as_ref(), &keys, &profile, &stolen, T0).unwrap();
    let (_, own_pending) = open(other.store.as_ref(), &keys, &profile, &own, T0).unwrap();
    let (mut checked, _) = batch::check(vec![own_pending.unwrap()]);
    // Handing the thief's verified answer to the stolen-token call must not
    // pass it: the full check runs and refuses.
    assert!(matches!(
        conclude(
            s.store.as_ref(),
            &profile,
            "github",
            &stolen,
            T0,
            call_stolen,
            checked.pop().flatten()
        ),
        Err(Refusal::Signature(Rejection::BadSignature))
    ));
}
