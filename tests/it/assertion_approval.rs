//! Enterprise approval without a consent screen (issue 5): a grant request
//! carrying an OpenID Connect ID token about its user, from a trusted issuer,
//! is decided by the assertion rules — approved at once and mapped to the
//! credential set the rule names, or denied (deny rules win) — and an ID
//! token that does not hold up is `unknown_user`. In process, over the
//! in-memory store and a pinned clock; one test over real HTTP.

use std::collections::BTreeMap;

use base64::Engine as _;
use gnapd::authz::assertion::{AssertionRule, Effect, TrustedIssuer};
use gnapd::authz::{Endpoint, Policy, Reply};
use gnapd::proto::httpsig::Algorithm;
use gnapd::proto::jwk::SigningKey;
use gnapd::store::{Store, TokenHash};
use serde_json::{Value, json};

use crate::support::agent::{Agent, access_token};
pub(crate) use crate::support::core::T0;
use crate::support::core::{Core, GRANT};

pub(crate) const ISS: &str = "https://idp.example.com";
pub(crate) const AUD: &str = "gnapd-test";

pub(crate) struct Idp {
    pub(crate) key: SigningKey,
    pub(crate) issuer: TrustedIssuer,
}

pub(crate) fn idp(algorithm: Algorithm) -> Idp {
    let key = SigningKey::generate(algorithm)
        .unwrap()
        .with_kid("idp-1")
        .unwrap();
    let jwks = json!({"keys": [key.verifying_key().public_jwk().unwrap()]});
    let issuer = TrustedIssuer::from_jwks(ISS, AUD, &serde_json::to_vec(&jwks).unwrap()).unwrap();
    Idp { key, issuer }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Idp {
    pub(crate) fn id_token(&self, alg: &str, claims: Value) -> String {
        let header = json!({"alg": alg, "kid": "idp-1", "typ": "JWT"});
        let input = format!(
            "{}.{}",
            b64(&serde_json::to_vec(&header).unwrap()),
            b64(&serde_json::to_vec(&claims).unwrap())
        );
        let signature = self.key.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", b64(&signature))
    }
}

pub(crate) fn claims(sub: &str) -> Value {
    json!({"iss": ISS, "aud": AUD, "sub": sub, "iat": T0, "nbf": T0 - 10, "exp": T0 + 300})
}

fn rules() -> Vec<AssertionRule> {
    vec![
        AssertionRule {
            issuer: ISS.into(),
            subjects: vec!["*@example.com".into()],
            access: vec!["mcp:github".into()],
            effect: Effect::Allow,
            credential_sets: BTreeMap::from([("github".into(), "team-example".into())]),
        },
        AssertionRule {
            issuer: ISS.into(),
            subjects: vec!["mallory@example.com".into()],
            access: vec!["*".into()],
            effect: Effect::Deny,
            credential_sets: BTreeMap::new(),
        },
    ]
}

/// The in-process AS, with this file's grant helper.
struct Harness(Core);

impl std::ops::Deref for Harness {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.0
    }
}

/// Not dev mode, no allowlist: only the assertion rules can approve.
fn harness(idp: &Idp) -> Harness {
    Harness(Core::new(Policy {
        issuers: vec![idp.issuer.clone()],
        assertion_rules: rules(),
        ..Policy::default()
    }))
}

impl Harness {
    fn grant(&self, agent: &Agent, id_token: Option<&str>, access: Value) -> (Reply, Value) {
        let mut body = agent.grant_body(access);
        if let Some(token) = id_token {
            body["user"] = json!({"assertions": [{"format": "id_token", "value": token}]});
        }
        self.send(&agent.signed("POST", GRANT, None, Some(&body), T0))
    }
}

#[test]
fn assertion_from_a_trusted_issuer_approves_at_once_and_maps_the_rule_credential_set() {
    for algorithm in [
        Algorithm::EcdsaP256Sha256,
        Algorithm::Ed25519,
        Algorithm::RsaV15Sha256,
    ] {
        let idp = idp(algorithm);
        let alg = match algorithm {
            Algorithm::EcdsaP256Sha256 => "ES256",
            Algorithm::Ed25519 => "EdDSA",
            _ => "RS256",
        };
        let h = harness(&idp);
        let agent = Agent::new();
        let token = idp.id_token(alg, claims("alice@example.com"));
        let (reply, body) = h.grant(&agent, Some(&token), json!(["mcp:github"]));
        assert_eq!(reply.status, 200, "{alg}: {body}");
        let value = access_token(&body);
        let record = h.store.token(&TokenHash::of(value)).unwrap().unwrap();
        assert_eq!(
            record.credential_set("github"),
            Some("team-example"),
            "{alg}"
        );

        // Without the assertion the same agent is not approved.
        let (reply, body) = h.grant(&agent, None, json!(["mcp:github"]));
        assert_eq!(reply.status, 403, "{alg}: {body}");
        assert_eq!(body["error"]["code"], "request_denied");
    }
}

#[test]
fn assertion_rules_deny_wins_and_uncovered_access_is_not_approved() {
    let idp = idp(Algorithm::EcdsaP256Sha256);
    let h = harness(&idp);
    let agent = Agent::new();
    // mallory matches both the allow rule (*@example.com) and a deny rule.
    let token = idp.id_token("ES256", claims("mallory@example.com"));
    let (reply, body) = h.grant(&agent, Some(&token), json!(["mcp:github"]));
    assert_eq!(reply.status, 403, "{body}");
    assert_eq!(body["error"]["code"], "request_denied");
    // alice asks for something no rule covers: not approved by assertion,
    // and nothing else approves it.
    let token = idp.id_token("ES256", claims("alice@example.com"));
    let (reply, body) = h.grant(&agent, Some(&token), json!(["mcp:slack"]));
    assert_eq!(reply.status, 403, "{body}");
    // A subject no rule names falls through to the other policy.
    let token = idp.id_token("ES256", claims("bob@elsewhere.org"));
    let (_, body) = h.grant(&agent, Some(&token), json!(["mcp:github"]));
    assert_eq!(body["error"]["code"], "request_denied");
}

#[test]
fn assertions_that_do_not_hold_up_are_unknown_user() {
    let idp = idp(Algorithm::EcdsaP256Sha256);
    let other = idp_other();
    let h = harness(&idp);
    let agent = Agent::new();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims("alice@example.com");
        f(&mut c);
        c
    };
    let valid = idp.id_token("ES256", claims("alice@example.com"));
    let (header, rest) = valid.split_once('.').unwrap();
    let (payload, _) = rest.split_once('.').unwrap();
    let cases: Vec<(&str, String)> = vec![
        (
            "expired",
            idp.id_token("ES256", with(&|c| c["exp"] = json!(T0 - 120))),
        ),
        (
            "no exp",
            idp.id_token(
                "ES256",
                with(&|c| {
                    c.as_object_mut().unwrap().remove("exp");
                }),
            ),
        ),
        (
            "not yet valid",
            idp.id_token("ES256", with(&|c| c["nbf"] = json!(T0 + 600))),
        ),
        (
            "wrong audience",
            idp.id_token("ES256", with(&|c| c["aud"] = json!(["someone-else"]))),
        ),
        (
            "wrong issuer",
            idp.id_token("ES256", with(&|c| c["iss"] = json!("https://evil.example"))),
        ),
        (
            "no subject",
            idp.id_token("ES256", with(&|c| c["sub"] = json!(""))),
        ),
        (
            "signed by another key",
            other.id_token("ES256", claims("alice@example.com")),
        ),
        (
            "alg none",
            format!("{}.{payload}.", b64(br#"{"alg":"none"}"#)),
        ),
        (
            "alg HS256",
            format!(
                "{}.{payload}.{}",
                b64(br#"{"alg":"HS256","kid":"idp-1"}"#),
                b64(b"mac")
            ),
        ),
        (
            "alg swapped",
            format!(
                "{}.{payload}.{}",
                b64(br#"{"alg":"RS256","kid":"idp-1"}"#),
                valid.rsplit('.').next().unwrap()
            ),
        ),
        (
            "payload swapped",
            format!(
                "{header}.{}.{}",
                b64(&serde_json::to_vec(&claims("root@example.com")).unwrap()),
                valid.rsplit('.').next().unwrap()
            ),
        ),
        ("not a JWS", "not-a-token".into()),
    ];
    for (what, token) in cases {
        let (reply, body) = h.grant(&agent, Some(&token), json!(["mcp:github"]));
        assert_eq!(body["error"]["code"], "unknown_user", "{what}: {body}");
        assert!(reply.status >= 400 && reply.status < 500, "{what}");
    }
    // Another format is not accepted either.
    let mut body = agent.grant_body(json!(["mcp:github"]));
    body["user"] = json!({"assertions": [{"format": "saml2", "value": "PHNhbWw+"}]});
    let reply = h.server.handle(
        &Endpoint::Grant,
        &agent.signed("POST", GRANT, None, Some(&body), T0),
    );
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(body["error"]["code"], "unknown_user", "{body}");
}

/// An IdP with another key under the same `kid`.
fn idp_other() -> Idp {
    idp(Algorithm::EcdsaP256Sha256)
}

#[test]
fn an_id_token_assertion_approves_a_grant_over_http_without_dev_mode() {
    let dir = tempfile::tempdir().unwrap();
    let idp = idp(Algorithm::EcdsaP256Sha256);
    let jwks = dir.path().join("idp-jwks.json");
    std::fs::write(
        &jwks,
        serde_json::to_vec(&json!({"keys": [idp.key.verifying_key().public_jwk().unwrap()]}))
            .unwrap(),
    )
    .unwrap();
    let config = dir.path().join("gnapd.toml");
    std::fs::write(
        &config,
        format!(
            "[[issuer]]\nissuer = \"{ISS}\"\naudience = \"{AUD}\"\njwks_file = \"{}\"\n\n[[assertion_rule]]\nissuer = \"{ISS}\"\nsubjects = [\"alice@example.com\"]\naccess = [\"mcp:github\"]\n",
            jwks.display()
        ),
    )
    .unwrap();
    let server = crate::support::server::Server::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let now = gnapd::clock::Clock::now(&gnapd::clock::SystemClock);
    let discovery = crate::support::http_client::send(
        server.addr,
        &gnapd::proto::httpsig::HttpRequest::new("OPTIONS", &server.grant_endpoint),
    );
    assert_eq!(
        discovery.json()["assertion_formats_supported"],
        json!(["id_token"])
    );
    let agent = Agent::new();
    let mut claims = claims("alice@example.com");
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 300);
    claims["nbf"] = json!(now - 10);
    let mut body = agent.grant_body(json!(["mcp:github"]));
    body["user"] = json!({"assertions": [{"format": "id_token", "value": idp.id_token("ES256", claims.clone())}]});
    let answer = crate::support::http_client::send(
        server.addr,
        &agent.signed("POST", &server.grant_endpoint, None, Some(&body), now),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(answer.json()["access_token"]["value"].is_string());

    // Expired: unknown_user.
    claims["exp"] = json!(now - 600);
    body["user"] =
        json!({"assertions": [{"format": "id_token", "value": idp.id_token("ES256", claims)}]});
    let answer = crate::support::http_client::send(
        server.addr,
        &agent.signed("POST", &server.grant_endpoint, None, Some(&body), now),
    );
    assert_eq!(answer.json()["error"]["code"], "unknown_user");
}

/// `gnapd serve` (not dev) trusting `idp`, with a rule approving
/// `mcp:github` for alice@example.com.
fn serve_trusting(dir: &std::path::Path, idp: &Idp) -> crate::support::server::Server {
    let jwks = dir.join("idp-jwks.json");
    std::fs::write(
        &jwks,
        serde_json::to_vec(&json!({"keys": [idp.key.verifying_key().public_jwk().unwrap()]}))
            .unwrap(),
    )
    .unwrap();
    let config = dir.join("gnapd.toml");
    std::fs::write(
        &config,
        format!(
            "[[issuer]]\nissuer = \"{ISS}\"\naudience = \"{AUD}\"\njwks_file = \"{}\"\n\n[[assertion_rule]]\nissuer = \"{ISS}\"\nsubjects = [\"alice@example.com\"]\naccess = [\"mcp:github\"]\n",
            jwks.display()
        ),
    )
    .unwrap();
    crate::support::server::Server::start(
        &dir.join("data"),
        &["--config", config.to_str().unwrap()],
    )
}

/// Claims about alice, valid now on the wall clock.
pub(crate) fn fresh_claims() -> Value {
    let now = gnapd::clock::Clock::now(&gnapd::clock::SystemClock);
    let mut c = claims("alice@example.com");
    c["iat"] = json!(now);
    c["nbf"] = json!(now - 10);
    c["exp"] = json!(now + 300);
    c
}

/// A grant request by `agent` carrying `id_token`, over HTTP.
pub(crate) fn grant_with(
    server: &crate::support::server::Server,
    agent: &Agent,
    id_token: &str,
) -> crate::support::http_client::Answer {
    let mut body = agent.grant_body(json!(["mcp:github"]));
    body["user"] = json!({"assertions": [{"format": "id_token", "value": id_token}]});
    let now = gnapd::clock::Clock::now(&gnapd::clock::SystemClock);
    crate::support::http_client::send(
        server.addr,
        &agent.signed("POST", &server.grant_endpoint, None, Some(&body), now),
    )
}

#[test]
fn a_replayed_assertion_is_refused_at_the_grant_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let idp = idp(Algorithm::EcdsaP256Sha256);
    let server = serve_trusting(dir.path(), &idp);
    let agent = Agent::new();
    let eavesdropper = Agent::new();
    // Without `jti` (remembered by its hash) and with one.
    let mut with_jti = fresh_claims();
    with_jti["jti"] = json!("id-token-0001");
    for claims in [fresh_claims(), with_jti.clone()] {
        let token = idp.id_token("ES256", claims);
        let first = grant_with(&server, &agent, &token);
        assert_eq!(first.status, 200, "{}", first.text());
        for who in [&agent, &eavesdropper] {
            let again = grant_with(&server, who, &token);
            assert_eq!(
                (again.status, again.json()["error"]["code"].as_str()),
                (400, Some("unknown_user")),
                "{}",
                again.text()
            );
        }
    }
    // Another token the IdP signed under the same `jti` is the same assertion.
    with_jti["iat"] = json!(with_jti["iat"].as_i64().unwrap() + 1);
    let again = grant_with(&server, &agent, &idp.id_token("ES256", with_jti));
    assert_eq!(
        again.json()["error"]["code"],
        "unknown_user",
        "{}",
        again.text()
    );
}

#[test]
fn an_assertion_issued_to_another_party_is_refused_at_the_grant_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let idp = idp(Algorithm::EcdsaP256Sha256);
    let server = serve_trusting(dir.path(), &idp);
    let agent = Agent::new();
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut c = fresh_claims();
        edit(&mut c);
        idp.id_token("ES256", c)
    };
    for (what, token) in [
        (
            "azp names another client",
            with(&|c| c["azp"] = json!("some-other-client")),
        ),
        (
            "several audiences, azp another",
            with(&|c| {
                c["aud"] = json!([AUD, "some-other-client"]);
                c["azp"] = json!("some-other-client");
            }),
        ),
        (
            "several audiences, no azp",
            with(&|c| c["aud"] = json!(["some-other-client", AUD])),
        ),
    ] {
        let answer = grant_with(&server, &agent, &token);
        assert_eq!(
            (answer.status, answer.json()["error"]["code"].as_str()),
            (400, Some("unknown_user")),
            "{what}: {}",
            answer.text()
        );
    }
    let ours = with(&|c| {
        c["aud"] = json!([AUD, "some-other-client"]);
        c["azp"] = json!(AUD);
    });
    let answer = grant_with(&server, &agent, &ours);
    assert_eq!(answer.status, 200, "{}", answer.text());
}

#[test]
fn an_assertion_issued_before_the_server_started_is_refused() {
    // It may have been used before the restart, which forgot it.
    let idp = idp(Algorithm::EcdsaP256Sha256);
    let h = harness(&idp);
    let agent = Agent::new();
    for edit in [
        &(|c: &mut Value| c["iat"] = json!(T0 - 1)) as &dyn Fn(&mut Value),
        &|c: &mut Value| {
            c.as_object_mut().unwrap().remove("iat");
        },
    ] {
        let mut c = claims("alice@example.com");
        edit(&mut c);
        let (_, body) = h.grant(
            &agent,
            Some(&idp.id_token("ES256", c)),
            json!(["mcp:github"]),
        );
        assert_eq!(body["error"]["code"], "unknown_user", "{body}");
    }
}

#[test]
fn an_assertion_rule_for_an_unconfigured_issuer_stops_the_server_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gnapd.toml");
    std::fs::write(
        &config,
        "[[assertion_rule]]\nissuer = \"https://nobody\"\nsubjects = [\"*\"]\naccess = [\"*\"]\n",
    )
    .unwrap();
    let (status, stderr) = crate::support::server::Serve::new(&dir.path().join("data"))
        .config(&config)
        .refused(std::time::Duration::from_secs(20));
    assert!(!status.success());
    assert!(stderr.contains("no [[issuer]]"), "{stderr}");
}

mod properties {
    use super::*;
    use gnapd::authz::assertion::verify_id_token;
    use proptest::prelude::*;

    fn fixture() -> &'static (Idp, String) {
        static FIXTURE: std::sync::OnceLock<(Idp, String)> = std::sync::OnceLock::new();
        FIXTURE.get_or_init(|| {
            let idp = idp(Algorithm::EcdsaP256Sha256);
            let token = idp.id_token("ES256", claims("alice@example.com"));
            (idp, token)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any change of one byte of a valid ID token is refused (or, for a
        /// change inside base64 padding bits that decodes the same, accepted
        /// for the same user) — never accepted for someone else, never a panic.
        #[test]
        fn a_changed_id_token_never_vouches_for_another_user(at in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let (idp, token) = fixture();
            let mut bytes = token.clone().into_bytes();
            let i = at.index(bytes.len());
            prop_assume!(bytes[i] != byte);
            bytes[i] = byte;
            let changed = String::from_utf8_lossy(&bytes).into_owned();
            match verify_id_token(&changed, std::slice::from_ref(&idp.issuer), T0) {
                Err(_) => {}
                Ok(user) => prop_assert_eq!(user.subject, "alice@example.com"),
            }
        }

        /// Arbitrary text is refused without a panic.
        #[test]
        fn arbitrary_text_is_never_an_id_token(text in "[A-Za-z0-9._-]{0,300}") {
            let (idp, _) = fixture();
            prop_assert!(verify_id_token(&text, std::slice::from_ref(&idp.issuer), T0).is_err());
        }
    }
}
