//! JWS key proofing (RFC 9635 §7.3.3 `jwsd`, §7.3.4 `jws`) against the
//! `gnapd serve` binary over real HTTP on loopback, with real sled: grant,
//! continue, rotate the token and its key, revoke, for each method; and the
//! refusals a client meets (tampered content, replay, another key, a stale
//! proof, no `ath`, another method than the key's).

use std::path::Path;

use gnapd::clock::{Clock as _, SystemClock};
use gnapd::proto::httpsig::{Algorithm, HttpRequest};
use gnapd::proto::jwk::SigningKey;
use gnapd::proto::jws_proof::{
    JwsMethod, ProofTarget, Typ, sign_attached, sign_detached, sign_rotation,
};
use serde_json::{Value, json};

use crate::support::agent::{Agent, access_token, error_code, management};
use crate::support::http_client::{Answer, send};
use crate::support::server::Server;

fn now() -> i64 {
    SystemClock.now()
}

/// A `--dev` gnapd whose continuations may be called at once.
fn server(dir: &Path) -> Server {
    let config = dir.join("gnapd.toml");
    std::fs::write(&config, "poll_wait = 0\n").unwrap();
    Server::start(
        &dir.join("data"),
        &["--dev", "--config", config.to_str().unwrap()],
    )
}

/// A client instance proving its key with a JWS method.
pub struct JwsAgent {
    pub key: SigningKey,
    pub method: JwsMethod,
}

impl JwsAgent {
    /// A fresh key whose JWK names its `alg` and `kid`, as §7.1 asks.
    pub fn new(method: JwsMethod, alg: Algorithm, kid: &str) -> Self {
        let mut jwk = SigningKey::generate(alg).unwrap().private_jwk().clone();
        jwk["alg"] = alg.jws_name().into();
        jwk["kid"] = kid.into();
        Self {
            key: SigningKey::from_private_jwk(&jwk, None).unwrap(),
            method,
        }
    }

    fn proof_name(&self) -> &'static str {
        match self.method {
            JwsMethod::Detached => "jwsd",
            JwsMethod::Attached => "jws",
        }
    }

    /// The presented key (§7.1) with this agent's method.
    pub fn key_value(&self) -> Value {
        json!({"proof": self.proof_name(), "jwk": self.key.verifying_key().public_jwk().unwrap()})
    }

    pub fn grant_body(&self, access: Value) -> Value {
        json!({"access_token": {"access": access}, "client": {"key": self.key_value()}})
    }

    /// A request proved with this agent's method, created at `created`.
    pub fn request(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<&Value>,
        created: i64,
    ) -> HttpRequest {
        let content = body
            .map(|b| serde_json::to_vec(b).unwrap())
            .unwrap_or_default();
        let target = ProofTarget {
            method,
            uri,
            created,
            access_token: token,
        };
        let mut req = HttpRequest::new(method, uri);
        if let Some(token) = token {
            req.fields.append("Authorization", format!("GNAP {token}"));
        }
        match (self.method, content.is_empty()) {
            (JwsMethod::Attached, false) => {
                req.fields.append("Content-Type", "application/jose");
                req.body = sign_attached(&self.key, &target, &content)
                    .unwrap()
                    .into_bytes();
            }
            (method, _) => {
                let proof =
                    sign_detached(&self.key, method.typ(), &target, &content, true).unwrap();
                req.fields.append("Detached-JWS", proof);
                if !content.is_empty() {
                    req.fields.append("Content-Type", "application/json");
                    req.body = content;
                }
            }
        }
        req
    }

    /// A token rotation to `new`'s key (§6.1.1), proved by both keys.
    pub fn rotation(&self, new: &JwsAgent, uri: &str, token: &str, created: i64) -> HttpRequest {
        let content = serde_json::to_vec(&json!({"key": new.key_value()})).unwrap();
        let target = ProofTarget {
            method: "POST",
            uri,
            created,
            access_token: Some(token),
        };
        let proof = sign_rotation(self.method, &self.key, &new.key, &target, &content).unwrap();
        let req =
            HttpRequest::new("POST", uri).with_field("Authorization", format!("GNAP {token}"));
        match self.method {
            JwsMethod::Detached => req
                .with_field("Content-Type", "application/json")
                .with_field("Detached-JWS", proof)
                .with_body(content),
            JwsMethod::Attached => req
                .with_field("Content-Type", "application/jose")
                .with_body(proof.into_bytes()),
        }
    }
}

fn grant(server: &Server, agent: &JwsAgent) -> Answer {
    let body = agent.grant_body(json!(["mcp:github"]));
    send(
        server.addr,
        &agent.request("POST", &server.grant_endpoint, None, Some(&body), now()),
    )
}

fn refusal(answer: &Answer) -> (u16, String) {
    (answer.status, error_code(&answer.json()).to_owned())
}

fn round_trip(method: JwsMethod, alg: Algorithm) {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let agent = JwsAgent::new(method, alg, "first");
    let answer = grant(&server, &agent);
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body = answer.json();
    access_token(&body);
    let cont_uri = body["continue"]["uri"].as_str().unwrap().to_owned();
    let cont = body["continue"]["access_token"]["value"]
        .as_str()
        .unwrap()
        .to_owned();

    // §5.2: continue without content.
    let next = send(
        server.addr,
        &agent.request("POST", &cont_uri, Some(&cont), None, now()),
    );
    assert_eq!(next.status, 200, "continue: {}", next.text());
    let cont = next.json()["continue"]["access_token"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    // §5.3: modify with content.
    let patch = json!({"access_token": {"access": ["mcp:github"]}});
    let modified = send(
        server.addr,
        &agent.request("PATCH", &cont_uri, Some(&cont), Some(&patch), now()),
    );
    assert_eq!(modified.status, 200, "modify: {}", modified.text());
    let cont = modified.json()["continue"]["access_token"]["value"]
        .as_str()
        .unwrap()
        .to_owned();

    // §6.1: rotate the token with the same key.
    let (manage_uri, manage) = management(&body);
    let rotated = send(
        server.addr,
        &agent.request("POST", manage_uri, Some(manage), None, now()),
    );
    assert_eq!(rotated.status, 200, "rotate: {}", rotated.text());
    let rotated = rotated.json();
    let manage = rotated["access_token"]["manage"]["access_token"]["value"]
        .as_str()
        .unwrap()
        .to_owned();

    // §6.1.1: rotate to a new key, proved by both.
    let new = JwsAgent::new(method, Algorithm::EcdsaP256Sha256, "second");
    let moved = send(
        server.addr,
        &agent.rotation(&new, manage_uri, &manage, now()),
    );
    assert_eq!(moved.status, 200, "key rotation: {}", moved.text());
    let moved = moved.json();
    let manage = moved["access_token"]["manage"]["access_token"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    // The old key no longer manages the token; the new one does.
    let by_old = send(
        server.addr,
        &agent.request("DELETE", manage_uri, Some(&manage), None, now()),
    );
    assert_eq!(refusal(&by_old), (401, "invalid_client".into()));
    let revoked = send(
        server.addr,
        &new.request("DELETE", manage_uri, Some(&manage), None, now()),
    );
    assert_eq!(revoked.status, 204, "revoke: {}", revoked.text());

    // §5.4: the grant's key deletes the grant.
    let deleted = send(
        server.addr,
        &agent.request("DELETE", &cont_uri, Some(&cont), None, now()),
    );
    assert_eq!(deleted.status, 204, "delete: {}", deleted.text());
}

#[test]
fn a_jwsd_client_is_granted_continues_rotates_its_key_and_revokes_over_http() {
    round_trip(JwsMethod::Detached, Algorithm::Ed25519);
}

#[test]
fn a_jws_client_is_granted_continues_rotates_its_key_and_revokes_over_http() {
    round_trip(JwsMethod::Attached, Algorithm::RsaV15Sha256);
}

#[test]
fn a_jwsd_grant_request_with_a_tampered_body_is_invalid_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let agent = JwsAgent::new(JwsMethod::Detached, Algorithm::Ed25519, "k");
    let body = agent.grant_body(json!(["mcp:github"]));
    let mut req = agent.request("POST", &server.grant_endpoint, None, Some(&body), now());
    req.body = serde_json::to_vec(&agent.grant_body(json!(["mcp:admin"]))).unwrap();
    let answer = send(server.addr, &req);
    assert_eq!(
        refusal(&answer),
        (401, "invalid_client".into()),
        "{}",
        answer.text()
    );
}

#[test]
fn a_jws_grant_request_with_a_tampered_payload_is_invalid_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let agent = JwsAgent::new(JwsMethod::Attached, Algorithm::Ed25519, "k");
    let body = agent.grant_body(json!(["mcp:github"]));
    let mut req = agent.request("POST", &server.grant_endpoint, None, Some(&body), now());
    let text = String::from_utf8(req.body.clone()).unwrap();
    let parts: Vec<&str> = text.split('.').collect();
    let forged = gnapd::proto::b64::encode_url(
        &serde_json::to_vec(&agent.grant_body(json!(["mcp:admin"]))).unwrap(),
    );
    req.body = format!("{}.{forged}.{}", parts[0], parts[2]).into_bytes();
    let answer = send(server.addr, &req);
    assert_eq!(
        refusal(&answer),
        (401, "invalid_client".into()),
        "{}",
        answer.text()
    );
}

#[test]
fn a_replayed_jws_grant_request_is_invalid_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    for method in [JwsMethod::Detached, JwsMethod::Attached] {
        let agent = JwsAgent::new(method, Algorithm::Ed25519, "k");
        let body = agent.grant_body(json!(["mcp:github"]));
        let req = agent.request("POST", &server.grant_endpoint, None, Some(&body), now());
        assert_eq!(send(server.addr, &req).status, 200);
        let again = send(server.addr, &req);
        assert_eq!(
            refusal(&again),
            (401, "invalid_client".into()),
            "{}",
            again.text()
        );
        assert!(again.text().contains("already used"), "{}", again.text());
    }
}

#[test]
fn a_jws_proof_by_another_key_than_the_presented_one_is_invalid_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    for method in [JwsMethod::Detached, JwsMethod::Attached] {
        let agent = JwsAgent::new(method, Algorithm::Ed25519, "k");
        let thief = JwsAgent::new(method, Algorithm::Ed25519, "k");
        let body = agent.grant_body(json!(["mcp:github"]));
        let req = thief.request("POST", &server.grant_endpoint, None, Some(&body), now());
        let answer = send(server.addr, &req);
        assert_eq!(
            refusal(&answer),
            (401, "invalid_client".into()),
            "{}",
            answer.text()
        );
    }
}

#[test]
fn a_stale_jwsd_proof_is_invalid_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let agent = JwsAgent::new(JwsMethod::Detached, Algorithm::Ed25519, "k");
    let body = agent.grant_body(json!(["mcp:github"]));
    let req = agent.request(
        "POST",
        &server.grant_endpoint,
        None,
        Some(&body),
        now() - 600,
    );
    let answer = send(server.addr, &req);
    assert_eq!(refusal(&answer), (401, "invalid_client".into()));
    assert!(answer.text().contains("old"), "{}", answer.text());
}

#[test]
fn a_jwsd_token_management_call_without_ath_is_invalid_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let agent = JwsAgent::new(JwsMethod::Detached, Algorithm::Ed25519, "k");
    let body = grant(&server, &agent).json();
    let (manage_uri, manage) = management(&body);
    let target = ProofTarget {
        method: "DELETE",
        uri: manage_uri,
        created: now(),
        access_token: None,
    };
    let proof = sign_detached(&agent.key, Typ::Jwsd, &target, b"", true).unwrap();
    let req = HttpRequest::new("DELETE", manage_uri)
        .with_field("Authorization", format!("GNAP {manage}"))
        .with_field("Detached-JWS", proof);
    let answer = send(server.addr, &req);
    assert_eq!(refusal(&answer), (401, "invalid_client".into()));
    assert!(answer.text().contains("ath"), "{}", answer.text());
    // The token still works for a proper call.
    let revoked = send(
        server.addr,
        &agent.request("DELETE", manage_uri, Some(manage), None, now()),
    );
    assert_eq!(revoked.status, 204);
}

#[test]
fn a_request_proved_with_another_method_than_the_keys_is_invalid_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    // A key bound with httpsig cannot continue with a detached JWS.
    let httpsig = Agent::new();
    let body = server
        .grant(&httpsig, &httpsig.grant_body(json!(["mcp:github"])))
        .json();
    let (manage_uri, manage) = management(&body);
    let as_jwsd = JwsAgent {
        key: SigningKey::from_private_jwk(httpsig.key.private_jwk(), None).unwrap(),
        method: JwsMethod::Detached,
    };
    let answer = send(
        server.addr,
        &as_jwsd.request("POST", manage_uri, Some(manage), None, now()),
    );
    assert_eq!(refusal(&answer), (401, "invalid_client".into()));

    // A jwsd key with an application/jose body, a jws key with JSON.
    let jwsd = JwsAgent::new(JwsMethod::Detached, Algorithm::Ed25519, "k");
    let jws_shaped = JwsAgent {
        key: SigningKey::from_private_jwk(jwsd.key.private_jwk(), None).unwrap(),
        method: JwsMethod::Attached,
    };
    let body = jwsd.grant_body(json!(["mcp:github"]));
    let answer = send(
        server.addr,
        &jws_shaped.request("POST", &server.grant_endpoint, None, Some(&body), now()),
    );
    assert_eq!(
        refusal(&answer),
        (401, "invalid_client".into()),
        "{}",
        answer.text()
    );
    let jws = JwsAgent::new(JwsMethod::Attached, Algorithm::Ed25519, "k");
    let jwsd_shaped = JwsAgent {
        key: SigningKey::from_private_jwk(jws.key.private_jwk(), None).unwrap(),
        method: JwsMethod::Detached,
    };
    let body = jws.grant_body(json!(["mcp:github"]));
    let answer = send(
        server.addr,
        &jwsd_shaped.request("POST", &server.grant_endpoint, None, Some(&body), now()),
    );
    assert_eq!(
        refusal(&answer),
        (401, "invalid_client".into()),
        "{}",
        answer.text()
    );
}

#[test]
fn rotating_to_a_key_with_another_proof_method_is_invalid_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let agent = JwsAgent::new(JwsMethod::Detached, Algorithm::Ed25519, "k");
    let body = grant(&server, &agent).json();
    let (manage_uri, manage) = management(&body);
    let new = JwsAgent::new(JwsMethod::Attached, Algorithm::Ed25519, "k2");
    let content = json!({"key": new.key_value()});
    let answer = send(
        server.addr,
        &agent.request("POST", manage_uri, Some(manage), Some(&content), now()),
    );
    assert_eq!(
        refusal(&answer),
        (400, "invalid_rotation".into()),
        "{}",
        answer.text()
    );
}

/// A `--dev` gnapd in front of the Python MCP upstream as `github`.
fn gateway(dir: &Path) -> (crate::support::mcp_upstream::Upstream, Server) {
    let upstream = crate::support::mcp_upstream::Upstream::start(dir, true);
    let github = format!("github={}", upstream.url());
    let server = Server::start(
        &dir.join("data"),
        &[
            "--dev",
            "--upstream",
            &github,
            "--upstream-credential",
            "github=bearer:UPSTREAM-SECRET",
        ],
    );
    (upstream, server)
}

/// A JSON-RPC call through the gateway proved with `agent`'s method.
fn mcp_call(
    server: &Server,
    agent: &JwsAgent,
    token: &str,
    session: Option<&str>,
    body: &Value,
) -> HttpRequest {
    let uri = format!("{}/mcp/github", server.base());
    let mut req = agent.request("POST", &uri, Some(token), Some(body), now());
    req.fields
        .append("Accept", "application/json, text/event-stream");
    if let Some(session) = session {
        req.fields.append("Mcp-Session-Id", session);
        req.fields
            .append("MCP-Protocol-Version", crate::gateway_http::VERSION);
    }
    req
}

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": crate::gateway_http::VERSION, "capabilities": {},
        "clientInfo": {"name": "jws-test", "version": "0"}}})
}

/// Initializes a session and lists tools with a token bound with `method`.
fn gateway_session(method: JwsMethod) {
    let dir = tempfile::tempdir().unwrap();
    let (upstream, server) = gateway(dir.path());
    let agent = JwsAgent::new(method, Algorithm::Ed25519, "agent");
    let granted = grant(&server, &agent);
    assert_eq!(granted.status, 200, "{}", granted.text());
    let token = access_token(&granted.json()).to_owned();

    let answer = send(
        server.addr,
        &mcp_call(&server, &agent, &token, None, &initialize()),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    let session = answer.header("mcp-session-id").unwrap().to_owned();
    let notified = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let answer = send(
        server.addr,
        &mcp_call(&server, &agent, &token, Some(&session), &notified),
    );
    assert_eq!(answer.status, 202, "{}", answer.text());
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let answer = send(
        server.addr,
        &mcp_call(&server, &agent, &token, Some(&session), &list),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(
        crate::gateway_http::rpc(&answer)["result"]["tools"].is_array(),
        "{}",
        answer.text()
    );
    // The upstream got JSON and the gateway's credential, never the proof.
    for (_, headers) in upstream.requests() {
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("authorization"), Some("Bearer UPSTREAM-SECRET"));
        assert_eq!(get("detached-jws"), None);
        if let Some(content_type) = get("content-type") {
            assert!(
                content_type.starts_with("application/json"),
                "{content_type}"
            );
        }
    }

    // Refusals: a tampered body, a replay, a call without `ath`.
    let list = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"});
    let mut tampered = mcp_call(&server, &agent, &token, Some(&session), &list);
    match method {
        JwsMethod::Detached => {
            tampered.body = serde_json::to_vec(
                &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "search"}}),
            )
            .unwrap();
        }
        JwsMethod::Attached => tampered.body.insert(0, b'x'),
    }
    assert_eq!(send(server.addr, &tampered).status, 401);
    let call = mcp_call(&server, &agent, &token, Some(&session), &list);
    assert_eq!(send(server.addr, &call).status, 200);
    let replayed = send(server.addr, &call);
    assert_eq!(replayed.status, 401, "{}", replayed.text());
    assert!(
        replayed.text().contains("already used"),
        "{}",
        replayed.text()
    );
    let uri = format!("{}/mcp/github", server.base());
    let target = ProofTarget {
        method: "POST",
        uri: &uri,
        created: now(),
        access_token: None,
    };
    let content = serde_json::to_vec(&list).unwrap();
    let proof = sign_detached(&agent.key, Typ::Jwsd, &target, &content, true).unwrap();
    let no_ath = HttpRequest::new("POST", &uri)
        .with_field("Authorization", format!("GNAP {token}"))
        .with_field("Content-Type", "application/json")
        .with_field("Accept", "application/json, text/event-stream")
        .with_field("Detached-JWS", proof)
        .with_body(content);
    assert_eq!(send(server.addr, &no_ath).status, 401);
}

#[test]
fn a_token_bound_with_jwsd_passes_the_gateway_with_a_detached_jws_carrying_ath() {
    gateway_session(JwsMethod::Detached);
}

#[test]
fn a_token_bound_with_jws_passes_the_gateway_and_the_upstream_gets_the_json_payload() {
    gateway_session(JwsMethod::Attached);
}

#[test]
fn a_jws_bound_token_with_an_http_message_signature_is_refused_at_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let (_upstream, server) = gateway(dir.path());
    let agent = JwsAgent::new(JwsMethod::Detached, Algorithm::Ed25519, "agent");
    let token = access_token(&grant(&server, &agent).json()).to_owned();
    let signer = Agent::with(SigningKey::from_private_jwk(agent.key.private_jwk(), None).unwrap());
    let uri = format!("{}/mcp/github", server.base());
    let mut req = signer.signed("POST", &uri, Some(&token), Some(&initialize()), now());
    req.fields
        .append("Accept", "application/json, text/event-stream");
    let answer = send(server.addr, &req);
    assert_eq!(answer.status, 401, "{}", answer.text());
}

#[test]
fn hostile_jws_proofs_and_bodies_get_gnap_errors_never_a_5xx() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let agent = JwsAgent::new(JwsMethod::Attached, Algorithm::Ed25519, "k");
    let body = grant(&server, &agent).json();
    let (manage_uri, manage) = management(&body);
    let endpoint = server.grant_endpoint.clone();
    let big = "A".repeat(20_000);
    let nested = format!(
        "{}.{}.AAAA",
        gnapd::proto::b64::encode_url(b"{\"alg\":\"EdDSA\"}"),
        gnapd::proto::b64::encode_url("x.y.z".repeat(1000).as_bytes())
    );
    let hostile_bodies: Vec<&[u8]> = vec![
        b"",
        b"...",
        b"a.b.c.d.e",
        b"\xff\xfe.\x00.x",
        b"eyJ9.e30.AAAA",
        big.as_bytes(),
        nested.as_bytes(),
    ];
    for uri in [endpoint.as_str(), manage_uri] {
        for body in &hostile_bodies {
            let mut req = HttpRequest::new("POST", uri)
                .with_field("Content-Type", "application/jose")
                .with_body(body.to_vec());
            if uri == manage_uri {
                req.fields.append("Authorization", format!("GNAP {manage}"));
            }
            let answer = send(server.addr, &req);
            assert!(
                (400..500).contains(&answer.status),
                "{uri} {:?}: {} {}",
                String::from_utf8_lossy(body),
                answer.status,
                answer.text()
            );
        }
        for field in ["", "..", "a.b", big.as_str(), "x.y.z.w", nested.as_str()] {
            let req = HttpRequest::new("DELETE", uri)
                .with_field("Authorization", format!("GNAP {manage}"))
                .with_field("Detached-JWS", field);
            let answer = send(server.addr, &req);
            assert!(
                (400..500).contains(&answer.status) || answer.status == 405,
                "{uri} {field:.40}: {} {}",
                answer.status,
                answer.text()
            );
        }
    }
    // The token survived every hostile call.
    let revoked = send(
        server.addr,
        &agent.request("DELETE", manage_uri, Some(manage), None, now()),
    );
    assert_eq!(revoked.status, 204, "{}", revoked.text());
}
