//! RFC 9767 at the authorization server without sockets: token
//! introspection and resource set registration for external resource
//! servers, over the in-memory store and a pinned clock.

use gnapd::authz::{AllowRule, Policy, Reply, RsRule};
use gnapd::proto::httpsig::{HttpRequest, SignOptions, sign_gnap};
use gnapd::proto::jwk::VerifyingKey;
use serde_json::{Value, json};

use crate::support::agent::{Agent, error_code};
use crate::support::core::{Core, GRANT, T0, header};

const INTROSPECT: &str = "https://as.example.com/gnap/introspect";
const RESOURCE: &str = "https://as.example.com/gnap/resource";

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

fn thumbprint(agent: &Agent) -> String {
    agent.key.verifying_key().thumbprint().as_str().to_owned()
}

/// A policy that knows `rs` for `access`, approves `client` for anything and
/// knows nobody else.
fn known(rs: &Agent, access: &[&str], client: &Agent) -> Harness {
    harness(Policy {
        resource_servers: vec![RsRule {
            thumbprint: thumbprint(rs),
            access: access.iter().map(|a| (*a).to_owned()).collect(),
        }],
        allow: vec![AllowRule {
            thumbprint: Some(thumbprint(client)),
            class_id: None,
            access: vec!["*".into()],
        }],
        ..Policy::default()
    })
}

/// The `resource_server` member presenting `rs`'s key by value.
fn rs_member(rs: &Agent) -> Value {
    json!({"key": rs.client()["key"].clone()})
}

impl Harness {
    /// A grant for `access`; the response body.
    fn grant(&self, agent: &Agent, access: Value) -> Value {
        let (reply, body) = self.send(&agent.signed(
            "POST",
            GRANT,
            None,
            Some(&agent.grant_body(access)),
            self.now(),
        ));
        assert_eq!(reply.status, 200, "{body}");
        body
    }

    /// `rs` introspects `token`, with the extra members of `extra`.
    fn introspect(&self, rs: &Agent, token: &str, extra: Value) -> (Reply, Value) {
        let mut body = json!({"access_token": token, "resource_server": rs_member(rs)});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        self.send(&rs.signed("POST", INTROSPECT, None, Some(&body), self.now()))
    }

    /// `rs` registers `access`; the response.
    fn register(&self, rs: &Agent, access: Value, extra: Value) -> (Reply, Value) {
        let mut body = json!({"access": access, "resource_server": rs_member(rs)});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        self.send(&rs.signed("POST", RESOURCE, None, Some(&body), self.now()))
    }
}

fn value(token: &Value) -> String {
    token["value"].as_str().unwrap().to_owned()
}

fn inactive(h: &Harness, rs: &Agent, token: &str) {
    let (reply, body) = h.introspect(rs, token, json!({}));
    assert_eq!(reply.status, 200, "{body}");
    assert_eq!(body, json!({"active": false}));
}

#[test]
fn introspection_of_an_active_token_answers_its_state_without_its_value() {
    let h = dev();
    let client = Agent::new();
    let rs = Agent::new();
    let granted = h.grant(&client, json!(["mcp:github", "dolphin-metadata"]));
    let token = value(&granted["access_token"]);
    let (reply, body) = h.introspect(&rs, &token, json!({"proof": "httpsig"}));
    assert_eq!(reply.status, 200, "{body}");
    assert_eq!(header(&reply, "content-type"), Some("application/json"));
    assert_eq!(header(&reply, "cache-control"), Some("no-store"));
    assert_eq!(
        body,
        json!({
            "active": true,
            "access": ["mcp:github", "dolphin-metadata"],
            "key": {"proof": "httpsig", "jwk": client.key.verifying_key().public_jwk().unwrap()},
            "exp": T0 + 3600,
            "iat": T0,
            "iss": GRANT,
            "instance_id": granted["instance_id"],
        })
    );
    let text = String::from_utf8(reply.body).unwrap();
    assert!(!text.contains(&token), "the token value never comes back");
    assert!(body.get("value").is_none() && body.get("flags").is_none());
}

#[test]
fn introspection_of_rotated_revoked_expired_and_unknown_tokens_is_inactive() {
    let h = dev();
    let client = Agent::new();
    let rs = Agent::new();
    inactive(&h, &rs, "never-issued");
    let granted = h.grant(&client, json!(["mcp:github"]));
    let old = value(&granted["access_token"]);
    let manage_uri = granted["access_token"]["manage"]["uri"].as_str().unwrap();
    let manage = value(&granted["access_token"]["manage"]["access_token"]);

    // Rotated away: the old value is inactive at once, the new one active.
    let (reply, rotated) = h.send(&client.signed("POST", manage_uri, Some(&manage), None, h.now()));
    assert_eq!(reply.status, 200, "{rotated}");
    let new = value(&rotated["access_token"]);
    inactive(&h, &rs, &old);
    assert_eq!(h.introspect(&rs, &new, json!({})).1["active"], true);

    // Revoked.
    let manage2 = value(&rotated["access_token"]["manage"]["access_token"]);
    let (reply, _) = h.send(&client.signed("DELETE", manage_uri, Some(&manage2), None, h.now()));
    assert_eq!(reply.status, 204);
    inactive(&h, &rs, &new);

    // Expired: active up to `exp`, inactive after it.
    let other = value(&h.grant(&client, json!(["mcp:github"]))["access_token"]);
    h.clock.set(T0 + 3600);
    assert_eq!(h.introspect(&rs, &other, json!({})).1["active"], true);
    h.clock.set(T0 + 3601);
    inactive(&h, &rs, &other);
}

#[test]
fn continuation_and_management_tokens_are_never_active_at_introspection() {
    let h = dev();
    let client = Agent::new();
    let rs = Agent::new();
    let granted = h.grant(&client, json!(["mcp:github"]));
    inactive(&h, &rs, &value(&granted["continue"]["access_token"]));
    inactive(
        &h,
        &rs,
        &value(&granted["access_token"]["manage"]["access_token"]),
    );
}

#[test]
fn an_unknown_resource_server_key_is_refused_outside_dev_mode() {
    let rs = Agent::new();
    let client = Agent::new();
    let h = known(&rs, &["*"], &client);
    let token = value(&h.grant(&client, json!(["mcp:github"]))["access_token"]);
    let stranger = Agent::new();
    let (reply, body) = h.introspect(&stranger, &token, json!({}));
    assert_eq!(
        (reply.status, error_code(&body)),
        (400, "invalid_resource_server"),
        "{body}"
    );
    assert!(body.get("active").is_none());
    let (reply, body) = h.register(&stranger, json!(["x"]), json!({}));
    assert_eq!(
        (reply.status, error_code(&body)),
        (400, "invalid_resource_server")
    );
    // The client's own key is no RS key either.
    let (reply, body) = h.introspect(&client, &token, json!({}));
    assert_eq!(
        (reply.status, error_code(&body)),
        (400, "invalid_resource_server")
    );
    // The configured RS is heard.
    assert_eq!(h.introspect(&rs, &token, json!({})).1["active"], true);
}

#[test]
fn a_broken_resource_server_signature_is_invalid_resource_server() {
    let h = dev();
    let client = Agent::new();
    let rs = Agent::new();
    let token = value(&h.grant(&client, json!(["mcp:github"]))["access_token"]);
    let body = json!({"access_token": token, "resource_server": rs_member(&rs)});

    // Content changed after signing: the digest no longer matches.
    let mut tampered = rs.signed("POST", INTROSPECT, None, Some(&body), h.now());
    tampered.body = serde_json::to_vec(
        &json!({"access_token": token, "resource_server": rs_member(&rs), "proof": "httpsig"}),
    )
    .unwrap();
    // Signed by another key than the one presented.
    let impostor = Agent::new().signed("POST", INTROSPECT, None, Some(&body), h.now());
    // Not signed at all.
    let unsigned = HttpRequest::new("POST", INTROSPECT)
        .with_field("Content-Type", "application/json")
        .with_body(serde_json::to_vec(&body).unwrap());
    // A signature older than the window.
    let stale = rs.signed("POST", INTROSPECT, None, Some(&body), h.now() - 3600);
    for (name, request) in [
        ("tampered", tampered),
        ("impostor", impostor),
        ("unsigned", unsigned),
        ("stale", stale),
    ] {
        let (reply, answer) = h.send(&request);
        assert_eq!(
            (reply.status, error_code(&answer)),
            (400, "invalid_resource_server"),
            "{name}: {answer}"
        );
        assert!(
            answer["error"]["description"]
                .as_str()
                .unwrap()
                .starts_with("signature rejected"),
            "{name}: {answer}"
        );
    }
    // And a replay of a good request.
    let good = rs.signed("POST", INTROSPECT, None, Some(&body), h.now());
    assert_eq!(h.send(&good).1["active"], true);
    let (reply, answer) = h.send(&good);
    assert_eq!(
        (reply.status, error_code(&answer)),
        (400, "invalid_resource_server")
    );
}

#[test]
fn a_resource_server_by_reference_is_invalid_resource_server() {
    let h = dev();
    let rs = Agent::new();
    let body = json!({"access_token": "t", "resource_server": "7C7C4AZ9KHRS6X63AJAO"});
    let (reply, answer) = h.send(&rs.signed("POST", INTROSPECT, None, Some(&body), h.now()));
    assert_eq!(
        (reply.status, error_code(&answer)),
        (400, "invalid_resource_server")
    );
}

#[test]
fn introspection_reports_the_bound_key_so_a_request_signed_by_another_key_fails_at_the_rs() {
    let h = dev();
    let key_a = Agent::new();
    let rs = Agent::new();
    let token = value(&h.grant(&key_a, json!(["mcp:github"]))["access_token"]);
    // The RS proves its own key B; the answer names the token's key A.
    let (_, body) = h.introspect(&rs, &token, json!({"proof": "httpsig"}));
    assert_eq!(body["active"], true);
    let bound = VerifyingKey::from_presented_jwk(&body["key"]["jwk"]).unwrap();
    assert_eq!(bound.thumbprint(), key_a.key.verifying_key().thumbprint());
    assert_ne!(bound.thumbprint(), rs.key.verifying_key().thumbprint());
    // What the RS then checks: the client's request to it, signed with the
    // key the AS reported. Key A passes; a thief's key B with A's token fails.
    let at_rs = |agent: &Agent| {
        let mut req = HttpRequest::new("GET", "https://rs.example/photos")
            .with_field("Authorization", format!("GNAP {token}"));
        sign_gnap(&mut req, &agent.key, h.now(), &SignOptions::default()).unwrap();
        req
    };
    let profile = gnapd::proto::httpsig::GnapProfile::default();
    let replay = gnapd::proto::httpsig::MemoryNonceStore::default();
    assert!(
        profile
            .verify(&at_rs(&key_a), &bound, h.now(), &replay)
            .is_ok()
    );
    assert!(
        profile
            .verify(&at_rs(&Agent::new()), &bound, h.now(), &replay)
            .is_err()
    );
}

#[test]
fn introspection_with_another_proof_method_or_a_bearer_token_is_inactive() {
    let h = harness(Policy {
        dev: true,
        allow_bearer: true,
        ..Policy::default()
    });
    let client = Agent::new();
    let rs = Agent::new();
    let bound = value(&h.grant(&client, json!(["mcp:github"]))["access_token"]);
    for proof in ["mtls", "jwsd", "jws"] {
        let (reply, body) = h.introspect(&rs, &bound, json!({"proof": proof}));
        assert_eq!(
            (reply.status, body),
            (200, json!({"active": false})),
            "{proof}"
        );
    }
    let (reply, body) = h.introspect(&rs, &bound, json!({"proof": "pigeon"}));
    assert_eq!((reply.status, error_code(&body)), (400, "invalid_request"));

    let (reply, granted) = h.send(&client.signed(
        "POST",
        GRANT,
        None,
        Some(&json!({"access_token": {"access": ["mcp:github"], "flags": ["bearer"]}, "client": client.client()})),
        h.now(),
    ));
    assert_eq!(reply.status, 200, "{granted}");
    let bearer = value(&granted["access_token"]);
    let (_, body) = h.introspect(&rs, &bearer, json!({"proof": "httpsig"}));
    assert_eq!(body, json!({"active": false}));
    let (_, body) = h.introspect(&rs, &bearer, json!({}));
    assert_eq!(body["active"], true);
    assert_eq!(body["flags"], json!(["bearer"]));
    assert!(
        body.get("key").is_none(),
        "a bearer token has no key: {body}"
    );
}

#[test]
fn introspection_for_access_the_token_lacks_is_inactive_and_for_access_the_rs_may_not_see_is_invalid_access()
 {
    let rs = Agent::new();
    let client = Agent::new();
    let h = known(&rs, &["mcp:github"], &client);
    let both = value(&h.grant(&client, json!(["mcp:github", "mcp:slack"]))["access_token"]);
    // Filtered to what this RS may see.
    let (_, body) = h.introspect(&rs, &both, json!({}));
    assert_eq!(body["access"], json!(["mcp:github"]));
    // A right the token covers, asked about as an object.
    let (_, body) = h.introspect(
        &rs,
        &both,
        json!({"access": [{"type": "mcp", "identifier": "github", "actions": ["tools/call"]}]}),
    );
    assert_eq!(body["active"], true);
    // A right outside the RS's rule: an error, whatever the token.
    for token in [both.as_str(), "unknown"] {
        let (reply, body) = h.introspect(&rs, token, json!({"access": ["mcp:slack"]}));
        assert_eq!((reply.status, error_code(&body)), (400, "invalid_access"));
    }
    // A token with nothing for this RS is not appropriate for it.
    let slack = value(&h.grant(&client, json!(["mcp:slack"]))["access_token"]);
    inactive(&h, &rs, &slack);
    // A right the RS may ask about but the token does not carry.
    let narrow = value(
        &h.grant(
            &client,
            json!([{"type": "mcp", "identifier": "github", "actions": ["tools/list"]}]),
        )["access_token"],
    );
    let (_, body) = h.introspect(&rs, &narrow, json!({"access": ["mcp:github"]}));
    assert_eq!(body, json!({"active": false}));
}

#[test]
fn a_registered_resource_set_is_usable_by_reference_and_introspection_shows_its_rights() {
    let h = dev();
    let rs = Agent::new();
    let client = Agent::new();
    let rights = json!([
        {"type": "photo-api", "actions": ["read", "write"], "locations": ["https://rs.example/photos"], "datatypes": ["images"]},
        "dolphin-metadata"
    ]);
    let (reply, registered) = h.register(
        &rs,
        rights.clone(),
        json!({"token_introspection_required": true}),
    );
    assert_eq!(reply.status, 200, "{registered}");
    assert_eq!(header(&reply, "cache-control"), Some("no-store"));
    assert_eq!(registered["introspection_endpoint"], INTROSPECT);
    let reference = registered["resource_reference"].as_str().unwrap();
    assert!(reference.len() >= 43, "256 random bits: {reference}");
    // Registering again gives another reference; both stand for the set.
    let (_, again) = h.register(&rs, rights.clone(), json!({}));
    assert_ne!(
        again["resource_reference"],
        registered["resource_reference"]
    );

    // The client asks by reference; the token carries the registered rights.
    let granted = h.grant(&client, json!([reference]));
    assert_eq!(granted["access_token"]["access"], rights);
    let token = value(&granted["access_token"]);
    let (_, body) = h.introspect(&rs, &token, json!({"proof": "httpsig"}));
    assert_eq!(body["active"], true);
    assert_eq!(body["access"], rights);
    // The RS may ask about its reference, or a part of the set.
    let (_, body) = h.introspect(&rs, &token, json!({"access": [reference]}));
    assert_eq!(body["active"], true);
    let (_, body) = h.introspect(
        &rs,
        &token,
        json!({"access": [{"type": "photo-api", "actions": ["read"]}]}),
    );
    assert_eq!(body["active"], true);
    let (_, body) = h.introspect(
        &rs,
        &token,
        json!({"access": [{"type": "photo-api", "actions": ["delete"]}]}),
    );
    assert_eq!(body, json!({"active": false}));

    // Combined with other rights, in order; unknown references stay as sent.
    let granted = h.grant(&client, json!(["mcp:github", reference, "not-registered"]));
    let mut expected = vec![json!("mcp:github")];
    expected.extend(rights.as_array().unwrap().iter().cloned());
    expected.push(json!("not-registered"));
    assert_eq!(granted["access_token"]["access"], json!(expected));
}

#[test]
fn registration_refuses_access_outside_the_rs_rule_and_token_formats_it_cannot_issue() {
    let rs = Agent::new();
    let client = Agent::new();
    let h = known(&rs, &["type:photo-api"], &client);
    let (reply, body) = h.register(&rs, json!([{"type": "photo-api"}, "mcp:github"]), json!({}));
    assert_eq!((reply.status, error_code(&body)), (400, "invalid_access"));
    assert!(
        body["error"]["description"]
            .as_str()
            .unwrap()
            .contains("access[1]")
    );
    let (reply, body) = h.register(
        &rs,
        json!([{"type": "photo-api"}]),
        json!({"token_formats_supported": ["jwt-signed"]}),
    );
    assert_eq!((reply.status, error_code(&body)), (400, "invalid_request"));
    let (reply, body) = h.register(&rs, json!([{"type": "photo-api"}]), json!({}));
    assert_eq!(reply.status, 200, "{body}");
}

#[test]
fn policy_outside_dev_mode_judges_the_registered_rights_not_the_reference() {
    let rs = Agent::new();
    let photos_client = Agent::new();
    let github_client = Agent::new();
    let h = harness(Policy {
        resource_servers: vec![RsRule {
            thumbprint: thumbprint(&rs),
            access: vec!["type:photo-api".into()],
        }],
        allow: vec![
            AllowRule {
                thumbprint: Some(thumbprint(&photos_client)),
                class_id: None,
                access: vec!["type:photo-api".into()],
            },
            AllowRule {
                thumbprint: Some(thumbprint(&github_client)),
                class_id: None,
                access: vec!["mcp:github".into()],
            },
        ],
        ..Policy::default()
    });
    let rights = json!([{"type": "photo-api", "actions": ["read"]}]);
    let (_, registered) = h.register(&rs, rights.clone(), json!({}));
    let reference = registered["resource_reference"].as_str().unwrap();
    let granted = h.grant(&photos_client, json!([reference]));
    assert_eq!(granted["access_token"]["access"], rights);
    let (reply, body) = h.send(&github_client.signed(
        "POST",
        GRANT,
        None,
        Some(&github_client.grant_body(json!([reference]))),
        h.now(),
    ));
    assert_eq!((reply.status, error_code(&body)), (403, "request_denied"));
}

#[test]
fn malformed_rs_requests_get_rfc9767_errors_never_5xx() {
    let h = dev();
    let rs = Agent::new();
    let raw = |uri: &str, method: &str, content_type: Option<&str>, body: &[u8]| {
        let mut req = HttpRequest::new(method, uri).with_body(body.to_vec());
        if let Some(ct) = content_type {
            req.fields.append("Content-Type", ct);
        }
        sign_gnap(&mut req, &rs.key, h.now(), &SignOptions::default()).unwrap();
        h.send(&req)
    };
    let json_body = |v: Value| serde_json::to_vec(&v).unwrap();
    let rs_key = rs_member(&rs);
    for uri in [INTROSPECT, RESOURCE] {
        let cases: Vec<(&str, (Reply, Value), u16, &str)> = vec![
            (
                "not JSON",
                raw(uri, "POST", Some("application/json"), b"{\"access"),
                400,
                "invalid_request",
            ),
            (
                "JSON array",
                raw(uri, "POST", Some("application/json"), b"[]"),
                400,
                "invalid_request",
            ),
            (
                "wrong content type",
                raw(uri, "POST", Some("text/plain"), b"{}"),
                415,
                "invalid_request",
            ),
            (
                "wrong method",
                raw(uri, "GET", None, b""),
                405,
                "invalid_request",
            ),
            (
                "empty object",
                raw(uri, "POST", Some("application/json"), b"{}"),
                400,
                "invalid_request",
            ),
            (
                "resource_server of the wrong type",
                raw(
                    uri,
                    "POST",
                    Some("application/json"),
                    &json_body(json!({"access_token": "t", "access": ["x"], "resource_server": 7})),
                ),
                400,
                "invalid_request",
            ),
            (
                "unusable key",
                raw(
                    uri,
                    "POST",
                    Some("application/json"),
                    &json_body(
                        json!({"access_token": "t", "access": ["x"], "resource_server": {"key": {"proof": "httpsig", "jwk": {"kty": "OKP"}}}}),
                    ),
                ),
                400,
                "invalid_resource_server",
            ),
            (
                "access not an array",
                raw(
                    uri,
                    "POST",
                    Some("application/json"),
                    &json_body(
                        json!({"access_token": "t", "access": "x", "resource_server": rs_key}),
                    ),
                ),
                400,
                "invalid_request",
            ),
        ];
        for (name, (reply, body), status, code) in cases {
            assert_eq!(
                (reply.status, error_code(&body)),
                (status, code),
                "{uri} {name}: {body}"
            );
            assert!(body["error"]["description"].is_string(), "{uri} {name}");
            assert_eq!(body.as_object().unwrap().len(), 1, "only `error`: {body}");
        }
    }
    let (reply, _) = raw(
        INTROSPECT,
        "POST",
        Some("application/json"),
        &json_body(json!({"access_token": 5, "resource_server": rs_key})),
    );
    assert_eq!(reply.status, 400);
}

#[test]
fn token_chaining_with_existing_access_token_is_refused_not_ignored() {
    let h = dev();
    let client = Agent::new();
    let rs = Agent::new();
    let token = value(&h.grant(&client, json!(["mcp:github"]))["access_token"]);
    let mut body = rs.grant_body(json!(["mcp:slack"]));
    body["existing_access_token"] = json!(token);
    let (reply, answer) = h.send(&rs.signed("POST", GRANT, None, Some(&body), h.now()));
    assert_eq!(
        (reply.status, error_code(&answer)),
        (400, "invalid_request")
    );
    assert!(
        answer["error"]["description"]
            .as_str()
            .unwrap()
            .contains("existing_access_token")
    );
}

#[test]
fn a_registered_reference_is_resolved_when_a_grant_is_modified_too() {
    let h = dev();
    let rs = Agent::new();
    let client = Agent::new();
    let rights = json!([{"type": "photo-api", "actions": ["read"]}]);
    let (_, registered) = h.register(&rs, rights.clone(), json!({}));
    let reference = registered["resource_reference"].as_str().unwrap();
    let granted = h.grant(&client, json!(["mcp:github"]));
    let uri = granted["continue"]["uri"].as_str().unwrap();
    let continuation = value(&granted["continue"]["access_token"]);
    h.clock.advance(5);
    let patch = json!({"access_token": {"access": [reference]}});
    let (reply, modified) =
        h.send(&client.signed("PATCH", uri, Some(&continuation), Some(&patch), h.now()));
    assert_eq!(reply.status, 200, "{modified}");
    assert_eq!(modified["access_token"]["access"], rights);
    let token = value(&modified["access_token"]);
    assert_eq!(h.introspect(&rs, &token, json!({})).1["access"], rights);
}

#[test]
fn a_jwsd_resource_server_introspects_a_jws_bound_token_and_learns_its_proof_method() {
    use crate::jws_proof::JwsAgent;
    use gnapd::proto::jws_proof::JwsMethod;
    let h = dev();
    let client = JwsAgent::new(
        JwsMethod::Attached,
        gnapd::proto::httpsig::Algorithm::Ed25519,
        "c",
    );
    let rs = JwsAgent::new(
        JwsMethod::Detached,
        gnapd::proto::httpsig::Algorithm::Ed25519,
        "rs",
    );
    let (reply, granted) = h.send(&client.request(
        "POST",
        GRANT,
        None,
        Some(&client.grant_body(json!(["mcp:github"]))),
        h.now(),
    ));
    assert_eq!(reply.status, 200, "{granted}");
    let token = value(&granted["access_token"]);
    let ask = |proof: &str| {
        let body = json!({"access_token": token, "proof": proof, "resource_server": {"key": rs.key_value()}});
        h.send(&rs.request("POST", INTROSPECT, None, Some(&body), h.now()))
    };
    let (reply, body) = ask("jws");
    assert_eq!(reply.status, 200, "{body}");
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["key"]["proof"], "jws");
    // The token is bound with jws: a call proved another way is not it.
    let (_, body) = ask("httpsig");
    assert_eq!(body, json!({"active": false}));
    // A resource server's broken JWS proof is its own error.
    let body = json!({"access_token": token, "resource_server": {"key": rs.key_value()}});
    let mut request = rs.request("POST", INTROSPECT, None, Some(&body), h.now());
    request.body.extend_from_slice(b" ");
    let (reply, body) = h.send(&request);
    assert_eq!(
        (reply.status, error_code(&body)),
        (400, "invalid_resource_server"),
        "{body}"
    );
}
