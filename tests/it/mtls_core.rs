//! `mtls` at the AS without sockets: the TLS client certificate is the
//! `client_cert` the HTTP edge puts on each request, so every rule of
//! §7.3.2 can be stepped through in process.

use std::sync::Arc;

use gnapd::authz::{AsConfig, AuthServer, Endpoint, Policy};
use gnapd::clock::ManualClock;
use gnapd::proto::b64;
use gnapd::proto::client_cert::ClientCert;
use gnapd::proto::httpsig::HttpRequest;
use gnapd::store::memory::MemoryStore;
use serde_json::{Value, json};

const GRANT: &str = "https://as.example.com/gnap";

fn server(mtls: bool) -> AuthServer {
    let mut config = AsConfig::new("https://as.example.com");
    config.mtls = mtls;
    let policy = Policy {
        dev: true,
        ..Policy::default()
    };
    AuthServer::new(
        Arc::new(MemoryStore::new()),
        Arc::new(ManualClock::at(1_790_000_000)),
        policy,
        config,
    )
}

/// A stand-in certificate: the AS compares DER bytes by thumbprint and
/// never parses them (the TLS stack did, and proved possession).
fn cert(n: u8) -> ClientCert {
    ClientCert::from_der(vec![0x30, 0x03, 0x02, 0x01, n])
}

fn post(uri: &str, body: &Value, over: Option<&ClientCert>, token: Option<&str>) -> HttpRequest {
    let mut request = HttpRequest::new("POST", uri)
        .with_field("Content-Type", "application/json")
        .with_body(serde_json::to_vec(body).unwrap());
    if let Some(token) = token {
        request
            .fields
            .append("Authorization", format!("GNAP {token}"));
    }
    request.client_cert = over.cloned();
    request
}

fn send(server: &AuthServer, endpoint: &Endpoint, request: &HttpRequest) -> (u16, Value) {
    let reply = server.handle(endpoint, request);
    let body = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    (reply.status, body)
}

fn grant_body(key: Value) -> Value {
    json!({"access_token": {"access": ["mcp:github"]}, "client": {"key": key}})
}

#[test]
fn an_mtls_instance_identifier_is_proved_by_the_same_certificate_and_no_other() {
    let server = server(true);
    let mine = cert(1);
    let key = json!({"proof": "mtls", "cert": b64::encode_std(mine.der())});
    let (status, first) = send(
        &server,
        &Endpoint::Grant,
        &post(GRANT, &grant_body(key), Some(&mine), None),
    );
    assert_eq!(status, 200, "{first}");
    let instance = first["instance_id"].as_str().unwrap();
    let by_reference = json!({"access_token": {"access": ["mcp:github"]}, "client": instance});
    let (status, again) = send(
        &server,
        &Endpoint::Grant,
        &post(GRANT, &by_reference, Some(&mine), None),
    );
    assert_eq!(status, 200, "{again}");
    let (status, refused) = send(
        &server,
        &Endpoint::Grant,
        &post(GRANT, &by_reference, Some(&cert(2)), None),
    );
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (401, Some("invalid_client"))
    );
}

#[test]
fn an_mtls_key_is_refused_when_the_listener_asks_for_no_certificates_or_with_jose_content() {
    let mine = cert(1);
    let key = json!({"proof": "mtls", "cert#S256": mine.thumbprint()});
    // A server whose listener does not ask: even a request carrying a
    // certificate (it cannot, but the rule must not rest on that) is refused.
    let (status, body) = send(
        &server(false),
        &Endpoint::Grant,
        &post(GRANT, &grant_body(key.clone()), Some(&mine), None),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_client"))
    );
    let mut jose = post(GRANT, &grant_body(key), Some(&mine), None);
    jose.fields.set("content-type", "application/jose");
    let (status, body) = send(&server(true), &Endpoint::Grant, &jose);
    assert!((400..500).contains(&status), "{status} {body}");
}
