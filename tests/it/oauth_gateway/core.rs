//! The gateway's decision on OAuth tokens, sans I/O: the in-memory store,
//! requests built in memory, the clock passed in.

use gnapd::gateway::{Refusal, authorize};
use gnapd::proto::httpsig::{Algorithm, GnapProfile, HttpRequest, SignOptions, sign_gnap};
use gnapd::proto::jwk::SigningKey;
use gnapd::proto::mcp::access::Denied;
use gnapd::proto::oauth::dpop::{self, DpopError};
use gnapd::store::Store as _;
use gnapd::store::memory::MemoryStore;
use serde_json::{Value, json};

use super::{Minted, mint};
use crate::support::store_fixture::FOREVER;

const T0: i64 = 1_790_000_000;
const GW: &str = "https://gw.example.com/mcp/github";

fn stored(store: &MemoryStore, minted: &Minted) {
    store.create_grant(&minted.grant, &minted.tokens).unwrap();
}

fn tools_call(name: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": {}}})
}

/// A call to `uri` with `Authorization: {authorization}`.
fn call(uri: &str, authorization: &str, message: &Value) -> HttpRequest {
    let mut r = HttpRequest::new("POST", uri);
    r.fields.append("Content-Type", "application/json");
    r.fields.append("Authorization", authorization.to_owned());
    r.body = serde_json::to_vec(message).unwrap();
    r
}

/// A DPoP call: the token and a fresh proof for `method uri` by `key`.
fn dpop_call(key: &SigningKey, token: &str, jti: &str, method: &str, uri: &str) -> HttpRequest {
    let mut r = call(GW, &format!("DPoP {token}"), &tools_call("search_issues"));
    let proof = dpop::sign(key, method, uri, Some(token), T0, jti).unwrap();
    r.fields.append("DPoP", proof);
    r
}

fn decide(store: &MemoryStore, request: &HttpRequest, now: i64) -> Result<(), Refusal> {
    authorize(store, &GnapProfile::default(), "github", request, now).map(|_| ())
}

#[test]
fn a_bearer_oauth_token_for_this_resource_passes() {
    let store = MemoryStore::new();
    let minted = mint("mcp:github", GW, None, FOREVER);
    stored(&store, &minted);
    let request = call(GW, &format!("Bearer {}", minted.value), &tools_call("x"));
    let authorized = authorize(&store, &GnapProfile::default(), "github", &request, T0).unwrap();
    assert!(authorized.token.oauth.is_some());
}

#[test]
fn an_oauth_token_for_another_upstream_is_invalid_token() {
    let store = MemoryStore::new();
    let minted = mint(
        "mcp:github",
        "https://gw.example.com/mcp/gitlab",
        None,
        FOREVER,
    );
    stored(&store, &minted);
    let request = call(GW, &format!("Bearer {}", minted.value), &tools_call("x"));
    assert!(matches!(
        decide(&store, &request, T0),
        Err(Refusal::OAuthToken { dpop: false })
    ));
}

#[test]
fn expired_unknown_and_revoked_oauth_tokens_are_invalid_token() {
    let store = MemoryStore::new();
    let minted = mint("mcp:github", GW, None, T0 + 10);
    stored(&store, &minted);
    let request = call(GW, &format!("Bearer {}", minted.value), &tools_call("x"));
    assert!(decide(&store, &request, T0).is_ok());
    assert!(matches!(
        decide(&store, &request, T0 + 11),
        Err(Refusal::OAuthToken { dpop: false })
    ));
    let unknown = call(GW, "Bearer nope", &tools_call("x"));
    assert!(matches!(
        decide(&store, &unknown, T0),
        Err(Refusal::OAuthToken { dpop: false })
    ));
    assert!(store.revoke_token(&minted.manage).unwrap());
    assert!(matches!(
        decide(&store, &request, T0),
        Err(Refusal::OAuthToken { dpop: false })
    ));
}

#[test]
fn every_scheme_confusion_is_refused() {
    let store = MemoryStore::new();
    let key = SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
    let bearer = mint("mcp:github", GW, None, FOREVER);
    let bound = mint("mcp:github", GW, Some(&key), FOREVER);
    let gnap = crate::support::store_fixture::Fixture::new();
    let (gnap_grant, mut gnap_tokens) = gnap.grant(1, FOREVER);
    let gnap_value = "a-gnap-token";
    gnap_tokens[0].0 = gnapd::store::TokenHash::of(gnap_value);
    let mut gnap_grant = gnap_grant;
    gnap_grant.tokens = vec![gnap_tokens[0].0];
    store.create_grant(&gnap_grant, &gnap_tokens).unwrap();
    stored(&store, &bearer);
    stored(&store, &bound);
    let message = tools_call("x");
    // A GNAP token as Bearer and as DPoP.
    assert!(matches!(
        decide(
            &store,
            &call(GW, &format!("Bearer {gnap_value}"), &message),
            T0
        ),
        Err(Refusal::OAuthToken { dpop: false })
    ));
    assert!(matches!(
        decide(&store, &dpop_call(&key, gnap_value, "j0", "POST", GW), T0),
        Err(Refusal::OAuthToken { dpop: true })
    ));
    // OAuth tokens as GNAP, even signed by the key a DPoP token is bound to.
    for value in [&bearer.value, &bound.value] {
        assert!(matches!(
            decide(&store, &call(GW, &format!("GNAP {value}"), &message), T0),
            Err(Refusal::Token)
        ));
    }
    let mut signed = call(GW, &format!("GNAP {}", bound.value), &message);
    sign_gnap(&mut signed, &key, T0, &SignOptions::default()).unwrap();
    assert!(matches!(decide(&store, &signed, T0), Err(Refusal::Token)));
    // A DPoP token as Bearer (RFC 9449 §7.2), a bearer token as DPoP.
    assert!(matches!(
        decide(
            &store,
            &call(GW, &format!("Bearer {}", bound.value), &message),
            T0
        ),
        Err(Refusal::OAuthToken { dpop: false })
    ));
    assert!(matches!(
        decide(
            &store,
            &dpop_call(&key, &bearer.value, "j1", "POST", GW),
            T0
        ),
        Err(Refusal::OAuthToken { dpop: true })
    ));
}

#[test]
fn a_dpop_call_with_a_fresh_proof_by_the_tokens_key_passes_once() {
    let store = MemoryStore::new();
    let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let minted = mint("mcp:github", GW, Some(&key), FOREVER);
    stored(&store, &minted);
    let request = dpop_call(&key, &minted.value, "j1", "POST", GW);
    assert!(decide(&store, &request, T0).is_ok());
    // The same proof again: a replay.
    assert!(matches!(
        decide(&store, &request, T0 + 1),
        Err(Refusal::DpopProof(DpopError::Replayed))
    ));
    // A new proof passes.
    assert!(
        decide(
            &store,
            &dpop_call(&key, &minted.value, "j2", "POST", GW),
            T0
        )
        .is_ok()
    );
}

#[test]
fn a_dpop_proof_for_another_url_method_key_or_token_or_none_is_refused() {
    let store = MemoryStore::new();
    let key = SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
    let minted = mint("mcp:github", GW, Some(&key), FOREVER);
    stored(&store, &minted);
    let other_url = dpop_call(
        &key,
        &minted.value,
        "a",
        "POST",
        "https://gw.example.com/mcp/gitlab",
    );
    assert!(matches!(
        decide(&store, &other_url, T0),
        Err(Refusal::DpopProof(DpopError::Htu))
    ));
    let other_method = dpop_call(&key, &minted.value, "b", "GET", GW);
    assert!(matches!(
        decide(&store, &other_method, T0),
        Err(Refusal::DpopProof(DpopError::Htm))
    ));
    // Signed by another key than the token's: the token is not bound to it.
    let thief = SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
    let stolen = dpop_call(&thief, &minted.value, "c", "POST", GW);
    assert!(matches!(
        decide(&store, &stolen, T0),
        Err(Refusal::OAuthToken { dpop: true })
    ));
    // A stale proof.
    let stale = dpop_call(&key, &minted.value, "d", "POST", GW);
    assert!(matches!(
        decide(&store, &stale, T0 + 3600),
        Err(Refusal::DpopProof(DpopError::Iat))
    ));
    // No proof, or two.
    let mut none = call(GW, &format!("DPoP {}", minted.value), &tools_call("x"));
    assert!(matches!(
        decide(&store, &none, T0),
        Err(Refusal::DpopProof(DpopError::Malformed))
    ));
    let proof = dpop::sign(&key, "POST", GW, Some(&minted.value), T0, "e").unwrap();
    none.fields.append("DPoP", proof.clone());
    none.fields.append("DPoP", proof);
    assert!(matches!(
        decide(&store, &none, T0),
        Err(Refusal::DpopProof(DpopError::Malformed))
    ));
    // A proof over another token (`ath`).
    let mut other_token = call(GW, &format!("DPoP {}", minted.value), &tools_call("x"));
    let proof = dpop::sign(&key, "POST", GW, Some("other"), T0, "f").unwrap();
    other_token.fields.append("DPoP", proof);
    assert!(matches!(
        decide(&store, &other_token, T0),
        Err(Refusal::DpopProof(DpopError::Ath))
    ));
}

#[test]
fn a_missing_tool_is_insufficient_scope_naming_every_scope_needed() {
    let store = MemoryStore::new();
    let minted = mint("mcp:github:tool:search_issues", GW, None, FOREVER);
    stored(&store, &minted);
    let bearer = format!("Bearer {}", minted.value);
    assert!(decide(&store, &call(GW, &bearer, &tools_call("search_issues")), T0).is_ok());
    match decide(&store, &call(GW, &bearer, &tools_call("delete_repo")), T0) {
        Err(Refusal::InsufficientScope { scope, dpop }) => {
            assert_eq!(
                scope,
                "mcp:github:tool:search_issues mcp:github:tool:delete_repo"
            );
            assert!(!dpop);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_gnap_token_lacking_a_tool_keeps_the_gnap_answer() {
    let store = MemoryStore::new();
    let fixture = crate::support::store_fixture::Fixture::new();
    let (mut grant, mut tokens) = fixture.grant(1, FOREVER);
    tokens[0].1.access = gnapd::proto::oauth::scope::to_access("mcp:github:tool:a").unwrap();
    // A GNAP bearer token (§2.1.1): the rights are decided without a
    // signature, as for a key-bound one.
    tokens[0].1.bearer = true;
    tokens[0].0 = gnapd::store::TokenHash::of("gnap-t");
    grant.tokens = vec![tokens[0].0];
    store.create_grant(&grant, &tokens).unwrap();
    let request = call(GW, "GNAP gnap-t", &tools_call("b"));
    assert!(matches!(
        decide(&store, &request, T0),
        Err(Refusal::Denied(Denied::Tool(_)))
    ));
}
