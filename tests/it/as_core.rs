//! The authorization server without sockets: RFC 9635 behaviour over the
//! in-memory store and a pinned clock.

use gnapd::authz::{AllowRule, Policy, Reply};
use gnapd::proto::httpsig::HttpRequest;
use gnapd::store::{Store, TokenHash};
use serde_json::{Value, json};

use crate::support::agent::{Agent, access_token, error_code, management};
use crate::support::core::{Core, GRANT, T0, header};

/// The in-process AS, with this file's helpers.
struct Harness(Core);

impl std::ops::Deref for Harness {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.0
    }
}

fn harness(policy: Policy) -> Harness {
    Harness(Core::new(policy))
}

fn dev() -> Harness {
    harness(Policy {
        dev: true,
        ..Policy::default()
    })
}

impl Harness {
    fn grant(&self, agent: &Agent, body: &Value) -> (Reply, Value) {
        self.send(&agent.signed("POST", GRANT, None, Some(body), self.now()))
    }
}

#[test]
fn dev_mode_approves_a_new_key_at_once_with_a_bound_managed_token() {
    let h = dev();
    let agent = Agent::new();
    let (reply, body) = h.grant(&agent, &agent.grant_body(json!(["mcp:github"])));
    assert_eq!(reply.status, 200, "{body}");
    assert_eq!(header(&reply, "content-type"), Some("application/json"));
    assert_eq!(header(&reply, "cache-control"), Some("no-store"));
    let token = &body["access_token"];
    assert_eq!(token["access"], json!(["mcp:github"]));
    assert_eq!(token["expires_in"], 3600);
    assert!(
        token["flags"].is_null(),
        "a bound token carries no bearer flag"
    );
    assert!(
        token["manage"]["uri"]
            .as_str()
            .unwrap()
            .starts_with("https://as.example.com/gnap/token/")
    );
    assert_ne!(token["manage"]["access_token"]["value"], token["value"]);
    assert!(
        body["continue"]["uri"]
            .as_str()
            .unwrap()
            .starts_with("https://as.example.com/gnap/continue/")
    );
    assert_eq!(body["continue"]["wait"], 5);
    assert!(body["instance_id"].is_string());
    // Stored by hash only.
    let value = token["value"].as_str().unwrap();
    let record = h.store.token(&TokenHash::of(value)).unwrap().unwrap();
    assert_eq!(
        record.key.thumbprint,
        agent.key.verifying_key().thumbprint().as_str()
    );
}

#[test]
fn without_a_rule_policy_denies_by_default() {
    let h = harness(Policy::default());
    let agent = Agent::new();
    let (reply, body) = h.grant(&agent, &agent.grant_body(json!(["mcp:github"])));
    assert_eq!((reply.status, error_code(&body)), (403, "request_denied"));
}

#[test]
fn a_request_no_rule_approves_waits_for_a_person_when_it_offers_interaction() {
    let h = harness(Policy::default());
    let agent = Agent::new();
    let mut body = agent.grant_body(json!(["mcp:github"]));
    body["interact"] = json!({"start": ["redirect"], "finish": {"method": "redirect", "uri": "https://client.example/cb", "nonce": "abc"}});
    let (reply, body) = h.grant(&agent, &body);
    assert_eq!(reply.status, 200, "{body}");
    assert!(body["access_token"].is_null());
    // The redirect start mode: the interaction page (§3.3.1).
    assert!(
        body["interact"]["redirect"]
            .as_str()
            .unwrap()
            .starts_with("https://as.example.com/gnap/interact/")
    );
    assert!(body["interact"]["finish"].is_string());
}

#[test]
fn an_allowlisted_key_gets_only_the_access_its_rule_lists() {
    let agent = Agent::new();
    let h = harness(Policy {
        dev: false,
        allow: vec![AllowRule {
            thumbprint: Some(agent.key.verifying_key().thumbprint().as_str().to_owned()),
            class_id: None,
            access: vec!["mcp:github".into()],
        }],
        ..Policy::default()
    });
    let (reply, body) = h.grant(
        &agent,
        &agent.grant_body(json!(["mcp:github", "mcp:slack"])),
    );
    assert_eq!(reply.status, 200, "{body}");
    assert_eq!(body["access_token"]["access"], json!(["mcp:github"]));
    let stranger = Agent::new();
    let (reply, _) = h.grant(&stranger, &stranger.grant_body(json!(["mcp:github"])));
    assert_eq!(reply.status, 403);
}

#[test]
fn multiple_labelled_tokens_come_back_as_an_array_with_their_labels() {
    let h = dev();
    let agent = Agent::new();
    let body = json!({
        "access_token": [
            {"label": "read", "access": ["mcp:github"]},
            {"label": "write", "access": [{"type": "mcp", "identifier": "github", "actions": ["tools/call"], "tools": ["create_issue"]}]}
        ],
        "client": agent.client()
    });
    let (reply, body) = h.grant(&agent, &body);
    assert_eq!(reply.status, 200, "{body}");
    let tokens = body["access_token"].as_array().unwrap();
    assert_eq!(tokens.len(), 2);
    assert_eq!(tokens[0]["label"], "read");
    assert_eq!(tokens[1]["label"], "write");
    assert_eq!(tokens[1]["access"][0]["tools"], json!(["create_issue"]));
    assert_ne!(tokens[0]["value"], tokens[1]["value"]);
}

#[test]
fn a_bearer_flag_is_refused_as_invalid_flag() {
    let h = dev();
    let agent = Agent::new();
    let body = json!({"access_token": {"access": ["mcp:github"], "flags": ["bearer"]}, "client": agent.client()});
    let (reply, body) = h.grant(&agent, &body);
    assert_eq!((reply.status, error_code(&body)), (400, "invalid_flag"));
}

#[test]
fn a_bearer_token_is_issued_only_where_policy_allows_it() {
    let h = harness(Policy {
        dev: true,
        allow_bearer: true,
        ..Policy::default()
    });
    let agent = Agent::new();
    let body = json!({"access_token": {"access": ["mcp:github"], "flags": ["bearer"]}, "client": agent.client()});
    let (reply, body) = h.grant(&agent, &body);
    assert_eq!(reply.status, 200, "{body}");
    assert_eq!(body["access_token"]["flags"], json!(["bearer"]));
    let value = access_token(&body);
    assert!(
        h.store
            .token(&TokenHash::of(value))
            .unwrap()
            .unwrap()
            .bearer
    );
    // Without the flag the token stays bound.
    let (_, bound) = h.grant(&agent, &agent.grant_body(json!(["mcp:github"])));
    assert!(bound["access_token"]["flags"].is_null());
}

#[test]
fn a_signature_by_another_key_than_the_presented_one_is_invalid_client() {
    let h = dev();
    let agent = Agent::new();
    let thief = Agent::new();
    let (reply, body) = h.send(&thief.signed(
        "POST",
        GRANT,
        None,
        Some(&agent.grant_body(json!(["mcp:x"]))),
        T0,
    ));
    assert_eq!((reply.status, error_code(&body)), (401, "invalid_client"));
    assert_eq!(
        header(&reply, "www-authenticate"),
        Some("GNAP as_uri=\"https://as.example.com/gnap\"")
    );
}

#[test]
fn a_stale_signature_is_invalid_client() {
    let h = dev();
    let agent = Agent::new();
    let req = agent.signed(
        "POST",
        GRANT,
        None,
        Some(&agent.grant_body(json!(["mcp:x"]))),
        T0 - 301,
    );
    let (reply, body) = h.send(&req);
    assert_eq!((reply.status, error_code(&body)), (401, "invalid_client"));
    assert!(
        body["error"]["description"]
            .as_str()
            .unwrap()
            .contains("old")
    );
}

#[test]
fn a_replayed_grant_request_is_invalid_client() {
    let h = dev();
    let agent = Agent::new();
    let req = agent.signed(
        "POST",
        GRANT,
        None,
        Some(&agent.grant_body(json!(["mcp:x"]))),
        T0,
    );
    assert_eq!(h.send(&req).0.status, 200);
    let (reply, body) = h.send(&req);
    assert_eq!((reply.status, error_code(&body)), (401, "invalid_client"));
}

#[test]
fn bad_bodies_get_invalid_request_and_wrong_media_types_415() {
    let h = dev();
    let agent = Agent::new();
    let mut req = HttpRequest::new("POST", GRANT)
        .with_field("Content-Type", "application/json")
        .with_body(b"{not json".to_vec());
    gnapd::proto::httpsig::sign_gnap(&mut req, &agent.key, T0, &Default::default()).unwrap();
    let (reply, body) = h.send(&req);
    assert_eq!((reply.status, error_code(&body)), (400, "invalid_request"));

    let mut req = HttpRequest::new("POST", GRANT)
        .with_field("Content-Type", "text/plain")
        .with_body(serde_json::to_vec(&agent.grant_body(json!(["mcp:x"]))).unwrap());
    gnapd::proto::httpsig::sign_gnap(&mut req, &agent.key, T0, &Default::default()).unwrap();
    let (reply, body) = h.send(&req);
    assert_eq!((reply.status, error_code(&body)), (415, "invalid_request"));
}

#[test]
fn unusable_keys_are_invalid_client() {
    let h = dev();
    let agent = Agent::new();
    for jwk in [
        json!({"kty": "OKP", "crv": "X25519", "x": "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"}),
        json!({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}),
        json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
    ] {
        let body = json!({"access_token": {"access": ["mcp:x"]}, "client": {"key": {"proof": "httpsig", "jwk": jwk}}});
        let (reply, body) = h.grant(&agent, &body);
        assert_eq!(
            (reply.status, error_code(&body)),
            (401, "invalid_client"),
            "{body}"
        );
    }
}

/// Grants `mcp:github` to `agent` and returns the response body.
fn granted(h: &Harness, agent: &Agent) -> Value {
    let (reply, body) = h.grant(agent, &agent.grant_body(json!(["mcp:github"])));
    assert_eq!(reply.status, 200, "{body}");
    body
}

#[test]
fn polling_before_wait_is_too_fast_and_each_continuation_token_is_single_use() {
    let h = dev();
    let agent = Agent::new();
    let body = granted(&h, &agent);
    let uri = body["continue"]["uri"].as_str().unwrap();
    let token = body["continue"]["access_token"]["value"].as_str().unwrap();

    let (reply, early) = h.send(&agent.signed("POST", uri, Some(token), None, h.now()));
    assert_eq!((reply.status, error_code(&early)), (429, "too_fast"));
    assert_eq!(header(&reply, "retry-after"), Some("5"));

    h.clock.advance(5);
    let (reply, next) = h.send(&agent.signed("POST", uri, Some(token), None, h.now()));
    assert_eq!(reply.status, 200, "{next}");
    let new_token = next["continue"]["access_token"]["value"].as_str().unwrap();
    assert_ne!(new_token, token);

    h.clock.advance(5);
    let (reply, old) = h.send(&agent.signed("POST", uri, Some(token), None, h.now()));
    assert_eq!(
        (reply.status, error_code(&old)),
        (401, "invalid_continuation")
    );
}

#[test]
fn continuation_needs_the_grants_key() {
    let h = dev();
    let agent = Agent::new();
    let body = granted(&h, &agent);
    let uri = body["continue"]["uri"].as_str().unwrap();
    let token = body["continue"]["access_token"]["value"].as_str().unwrap();
    h.clock.advance(5);
    let (reply, err) = h.send(&Agent::new().signed("POST", uri, Some(token), None, h.now()));
    assert_eq!((reply.status, error_code(&err)), (401, "invalid_client"));
}

#[test]
fn patch_issues_tokens_for_the_modified_request() {
    let h = dev();
    let agent = Agent::new();
    let body = granted(&h, &agent);
    let uri = body["continue"]["uri"].as_str().unwrap();
    let token = body["continue"]["access_token"]["value"].as_str().unwrap();
    h.clock.advance(5);
    let patch = json!({"access_token": {"access": ["mcp:slack"]}});
    let (reply, modified) = h.send(&agent.signed("PATCH", uri, Some(token), Some(&patch), h.now()));
    assert_eq!(reply.status, 200, "{modified}");
    assert_eq!(modified["access_token"]["access"], json!(["mcp:slack"]));
    assert!(modified["continue"]["access_token"]["value"].is_string());
    let client_patch = json!({"client": agent.client()});
    let next = modified["continue"]["access_token"]["value"]
        .as_str()
        .unwrap();
    h.clock.advance(5);
    let (reply, err) =
        h.send(&agent.signed("PATCH", uri, Some(next), Some(&client_patch), h.now()));
    assert_eq!((reply.status, error_code(&err)), (400, "invalid_request"));
}

#[test]
fn deleting_a_grant_revokes_its_tokens_and_its_continuation() {
    let h = dev();
    let agent = Agent::new();
    let body = granted(&h, &agent);
    let uri = body["continue"]["uri"].as_str().unwrap();
    let token = body["continue"]["access_token"]["value"].as_str().unwrap();
    let access = access_token(&body);
    h.clock.advance(5);
    let (reply, _) = h.send(&agent.signed("DELETE", uri, Some(token), None, h.now()));
    assert_eq!(reply.status, 204);
    assert_eq!(h.store.token(&TokenHash::of(access)).unwrap(), None);
    let (reply, err) = h.send(&agent.signed("DELETE", uri, Some(token), None, h.now()));
    assert_eq!(
        (reply.status, error_code(&err)),
        (401, "invalid_continuation")
    );
}

#[test]
fn rotation_replaces_the_value_and_the_old_one_dies_at_once() {
    let h = dev();
    let agent = Agent::new();
    let body = granted(&h, &agent);
    let old = access_token(&body);
    let (manage_uri, manage) = management(&body);
    let (reply, rotated) = h.send(&agent.signed("POST", manage_uri, Some(manage), None, h.now()));
    assert_eq!(reply.status, 200, "{rotated}");
    let new = access_token(&rotated);
    assert_ne!(new, old);
    assert_eq!(rotated["access_token"]["access"], json!(["mcp:github"]));
    assert_eq!(h.store.token(&TokenHash::of(old)).unwrap(), None);
    assert!(h.store.token(&TokenHash::of(new)).unwrap().is_some());
    // The old management token died with the old value.
    let (reply, err) = h.send(&agent.signed("POST", manage_uri, Some(manage), None, h.now()));
    assert_eq!((reply.status, error_code(&err)), (400, "invalid_rotation"));
}

#[test]
fn key_rotation_binds_the_token_to_the_new_key_with_both_signatures() {
    let h = dev();
    let agent = Agent::new();
    let body = granted(&h, &agent);
    let (manage_uri, manage) = management(&body);
    let successor = Agent::with(
        gnapd::proto::jwk::SigningKey::generate(gnapd::proto::httpsig::Algorithm::EcdsaP256Sha256)
            .unwrap(),
    );
    let (reply, rotated) = h.send(&agent.rotation(&successor, manage_uri, manage, h.now()));
    assert_eq!(reply.status, 200, "{rotated}");
    let new = access_token(&rotated);
    let record = h.store.token(&TokenHash::of(new)).unwrap().unwrap();
    assert_eq!(
        record.key.thumbprint,
        successor.key.verifying_key().thumbprint().as_str()
    );
    // From now on only the new key manages the token.
    let next_manage = rotated["access_token"]["manage"]["access_token"]["value"]
        .as_str()
        .unwrap();
    let (reply, _) = h.send(&agent.signed("POST", manage_uri, Some(next_manage), None, h.now()));
    assert_eq!(reply.status, 401);
    let (reply, _) =
        h.send(&successor.signed("POST", manage_uri, Some(next_manage), None, h.now()));
    assert_eq!(reply.status, 200);
}

/// Token rotations the AS refuses (§6.1.1): each row a fresh grant, a
/// rotation gone wrong, and the error it gets.
#[test]
fn refused_rotations_get_the_specs_errors() {
    let successor = Agent::new();
    let new_key = json!({"key": {"proof": "httpsig", "jwk": successor.key.verifying_key().public_jwk().unwrap()}});
    let cases = [
        (
            "signed only by the old key",
            0,
            Some(new_key),
            (400, "invalid_rotation"),
        ),
        (
            "to a key reference",
            0,
            Some(json!({"key": "some-key-reference"})),
            (403, "key_rotation_not_supported"),
        ),
        ("of an expired token", 3601, None, (400, "invalid_rotation")),
    ];
    for (case, advance, rotate, expected) in cases {
        let h = dev();
        let agent = Agent::new();
        let body = granted(&h, &agent);
        let (manage_uri, manage) = management(&body);
        h.clock.advance(advance);
        let (reply, err) =
            h.send(&agent.signed("POST", manage_uri, Some(manage), rotate.as_ref(), h.now()));
        assert_eq!((reply.status, error_code(&err)), expected, "{case}: {err}");
    }
}

#[test]
fn revocation_is_204_and_idempotent() {
    let h = dev();
    let agent = Agent::new();
    let body = granted(&h, &agent);
    let value = access_token(&body);
    let (manage_uri, manage) = management(&body);
    let (reply, _) = h.send(&agent.signed("DELETE", manage_uri, Some(manage), None, h.now()));
    assert_eq!(reply.status, 204);
    assert_eq!(h.store.token(&TokenHash::of(value)).unwrap(), None);
    let (reply, _) = h.send(&agent.signed("DELETE", manage_uri, Some(manage), None, h.now()));
    assert_eq!(reply.status, 204);
}

#[test]
fn revocation_by_another_key_is_refused_and_the_token_survives() {
    let h = dev();
    let agent = Agent::new();
    let body = granted(&h, &agent);
    let value = access_token(&body);
    let (manage_uri, manage) = management(&body);
    let (reply, _) =
        h.send(&Agent::new().signed("DELETE", manage_uri, Some(manage), None, h.now()));
    assert_eq!(reply.status, 401);
    assert!(h.store.token(&TokenHash::of(value)).unwrap().is_some());
}

#[test]
fn an_instance_id_stands_for_its_key_and_only_its_key() {
    let h = dev();
    let agent = Agent::new();
    let body = granted(&h, &agent);
    let instance = body["instance_id"].as_str().unwrap();
    let by_reference = json!({"access_token": {"access": ["mcp:github"]}, "client": instance});
    let (reply, again) = h.grant(&agent, &by_reference);
    assert_eq!(reply.status, 200, "{again}");
    assert!(
        again["instance_id"].is_null(),
        "a client using its instance_id is not given another"
    );
    let (reply, err) = h.grant(&Agent::new(), &by_reference);
    assert_eq!((reply.status, error_code(&err)), (401, "invalid_client"));
    let unknown = json!({"access_token": {"access": ["mcp:github"]}, "client": "no-such-instance"});
    let (reply, err) = h.grant(&agent, &unknown);
    assert_eq!((reply.status, error_code(&err)), (401, "invalid_client"));
}

#[test]
fn options_on_the_grant_endpoint_is_the_discovery_document() {
    let h = dev();
    let (reply, body) = h.send(&HttpRequest::new("OPTIONS", GRANT));
    assert_eq!(reply.status, 200);
    assert_eq!(body["grant_request_endpoint"], GRANT);
    assert!(
        body["key_proofs_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("httpsig"))
    );
}

#[test]
fn other_methods_are_405_with_allow() {
    let h = dev();
    let (reply, body) = h.send(&HttpRequest::new("GET", GRANT));
    assert_eq!((reply.status, error_code(&body)), (405, "invalid_request"));
    assert_eq!(header(&reply, "allow"), Some("POST, OPTIONS"));
}

#[test]
fn an_interact_ref_on_a_grant_that_is_not_pending_is_too_many_attempts() {
    let h = dev();
    let agent = Agent::new();
    let body = granted(&h, &agent);
    let uri = body["continue"]["uri"].as_str().unwrap();
    let token = body["continue"]["access_token"]["value"].as_str().unwrap();
    h.clock.advance(5);
    let after = json!({"interact_ref": "4IFWWIKYB2PQ6U56NL1"});
    let (reply, err) = h.send(&agent.signed("POST", uri, Some(token), Some(&after), h.now()));
    assert_eq!((reply.status, error_code(&err)), (403, "too_many_attempts"));
}

#[test]
fn an_expired_grant_cannot_be_continued() {
    let h = dev();
    let agent = Agent::new();
    let body = granted(&h, &agent);
    let uri = body["continue"]["uri"].as_str().unwrap();
    let token = body["continue"]["access_token"]["value"].as_str().unwrap();
    h.clock.advance(30 * 24 * 3600 + 1);
    let (reply, err) = h.send(&agent.signed("POST", uri, Some(token), None, h.now()));
    assert_eq!(
        (reply.status, error_code(&err)),
        (401, "invalid_continuation")
    );
}

/// Counts up from zero: the same bytes for every AS given one.
struct Counting(std::sync::atomic::AtomicU8);

impl gnapd::random::Randomness for Counting {
    fn fill(&self, bytes: &mut [u8]) -> Result<(), gnapd::random::NoRandomness> {
        for b in bytes {
            *b = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }
}

#[test]
fn the_as_mints_every_value_from_the_randomness_it_is_given() {
    let agent = Agent::new();
    let body = agent.grant_body(json!(["mcp:github"]));
    let answers: Vec<Value> = (0..2)
        .map(|_| {
            let core = Core::new(Policy {
                dev: true,
                ..Policy::default()
            });
            let core = Core {
                server: core
                    .server
                    .with_randomness(std::sync::Arc::new(Counting(0.into()))),
                ..core
            };
            let (reply, answer) =
                core.send(&agent.signed("POST", GRANT, None, Some(&body), core.now()));
            assert_eq!(reply.status, 200, "{answer}");
            answer
        })
        .collect();
    // Two servers given the same source mint the same values; from the
    // operating system's source they would never agree.
    for pointer in [
        "/access_token/value",
        "/access_token/manage/access_token/value",
        "/instance_id",
    ] {
        let value = answers[0].pointer(pointer);
        assert!(
            value.is_some_and(Value::is_string),
            "{pointer} in {}",
            answers[0]
        );
        assert_eq!(value, answers[1].pointer(pointer), "{pointer}");
    }
}
