//! RFC 9767 over real HTTP on loopback: the `gnapd serve` binary on sled in a
//! temporary directory, called by a resource server and a client.

use gnapd::clock::{Clock as _, SystemClock};
use gnapd::proto::httpsig::{HttpRequest, SignOptions, sign_gnap};
use serde_json::{Value, json};

use crate::support::agent::{Agent, access_token, management};
use crate::support::http_client::{Answer, send};
use crate::support::server::Server;

fn now() -> i64 {
    SystemClock.now()
}

fn rs_member(rs: &Agent) -> Value {
    json!({"key": rs.client()["key"].clone()})
}

fn post(server: &Server, agent: &Agent, path: &str, token: Option<&str>, body: &Value) -> Answer {
    let uri = if path.starts_with("http") {
        path.to_owned()
    } else {
        format!("{}{path}", server.base())
    };
    send(
        server.addr,
        &agent.signed("POST", &uri, token, Some(body), now()),
    )
}

fn introspect(server: &Server, rs: &Agent, token: &str) -> Value {
    let answer = post(
        server,
        rs,
        "/gnap/introspect",
        None,
        &json!({"access_token": token, "proof": "httpsig", "resource_server": rs_member(rs)}),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert!(
        !answer.text().contains(token),
        "the token value never comes back"
    );
    answer.json()
}

fn grant(server: &Server, client: &Agent, access: Value) -> Value {
    let answer = post(server, client, "/gnap", None, &client.grant_body(access));
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()
}

#[test]
fn http_rs_register_grant_introspect_round_trip_on_sled() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--dev"]);
    let base = server.base();

    // Discovery, at the host root and appended to the grant endpoint.
    for path in ["/.well-known/gnap-as-rs", "/gnap/.well-known/gnap-as-rs"] {
        let answer = send(
            server.addr,
            &HttpRequest::new("GET", format!("{base}{path}")),
        );
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(
            answer.json(),
            json!({
                "grant_request_endpoint": server.grant_endpoint,
                "introspection_endpoint": format!("{base}/gnap/introspect"),
                "resource_registration_endpoint": format!("{base}/gnap/resource"),
                "key_proofs_supported": ["httpsig", "jwsd", "jws"],
            }),
            "{path}"
        );
    }

    let rs = Agent::new();
    let client = Agent::new();
    let rights = json!([
        {"type": "photo-api", "actions": ["read"], "locations": ["https://rs.example/photos"]},
        "dolphin-metadata"
    ]);
    let registered = post(
        &server,
        &rs,
        "/gnap/resource",
        None,
        &json!({"access": rights, "resource_server": rs_member(&rs), "token_introspection_required": true}),
    );
    assert_eq!(registered.status, 200);
    let registered = registered.json();
    assert_eq!(
        registered["introspection_endpoint"],
        format!("{base}/gnap/introspect")
    );
    let reference = registered["resource_reference"]
        .as_str()
        .unwrap()
        .to_owned();

    // The client asks by reference and gets the registered rights.
    let granted = grant(&server, &client, json!([reference]));
    assert_eq!(granted["access_token"]["access"], rights);
    let token = access_token(&granted).to_owned();
    let answer = introspect(&server, &rs, &token);
    assert_eq!(answer["active"], true);
    assert_eq!(answer["access"], rights);
    assert_eq!(answer["iss"], server.grant_endpoint.as_str());
    assert_eq!(answer["instance_id"], granted["instance_id"]);
    assert_eq!(
        answer["key"]["jwk"],
        client.key.verifying_key().public_jwk().unwrap().clone()
    );

    // Rotation kills the old value at the introspection endpoint too.
    let (manage_uri, manage) = management(&granted);
    let rotated = post(&server, &client, manage_uri, Some(manage), &json!({}));
    assert_eq!(rotated.status, 200);
    let rotated = rotated.json();
    let new = access_token(&rotated).to_owned();
    assert_eq!(introspect(&server, &rs, &token), json!({"active": false}));
    assert_eq!(introspect(&server, &rs, &new)["active"], true);
    let manage2 = rotated["access_token"]["manage"]["access_token"]["value"]
        .as_str()
        .unwrap();
    let revoke = client.signed("DELETE", manage_uri, Some(manage2), None, now());
    assert_eq!(send(server.addr, &revoke).status, 204);
    assert_eq!(introspect(&server, &rs, &new), json!({"active": false}));

    let metrics = send(
        server.addr,
        &HttpRequest::new("GET", format!("{base}/metrics")),
    );
    let text = String::from_utf8(metrics.body).unwrap();
    assert!(
        text.contains("gnapd_request_duration_seconds_count{endpoint=\"introspect\"}"),
        "{text}"
    );
    assert_eq!(server.stop(), Some(0));

    // The registration is on disk: after a restart the reference still
    // stands for the same rights.
    let server = Server::start(dir.path(), &["--dev"]);
    let granted = grant(&server, &client, json!([reference]));
    assert_eq!(granted["access_token"]["access"], rights);
    let token = access_token(&granted);
    assert_eq!(introspect(&server, &rs, token)["access"], rights);
}

#[test]
fn http_rs_unknown_key_broken_signature_and_bad_bodies_get_rfc9767_errors_never_5xx() {
    let dir = tempfile::tempdir().unwrap();
    let rs = Agent::new();
    let client = Agent::new();
    let config = dir.path().join("gnapd.toml");
    std::fs::write(
        &config,
        format!(
            "[[allow]]\nthumbprint = \"{}\"\naccess = [\"*\"]\n\n[[resource_server]]\nthumbprint = \"{}\"\naccess = [\"mcp:github\"]\n",
            client.key.verifying_key().thumbprint().as_str(),
            rs.key.verifying_key().thumbprint().as_str(),
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--config", config.to_str().unwrap()]);
    let introspect_uri = format!("{}/gnap/introspect", server.base());
    let token = access_token(&grant(&server, &client, json!(["mcp:github"]))).to_owned();
    assert_eq!(introspect(&server, &rs, &token)["active"], true);

    let body = |who: &Agent| json!({"access_token": token, "resource_server": rs_member(who)});
    let raw = |method: &str, content_type: Option<&str>, bytes: Vec<u8>| {
        let mut req = HttpRequest::new(method, &introspect_uri).with_body(bytes);
        if let Some(ct) = content_type {
            req.fields.append("Content-Type", ct);
        }
        sign_gnap(&mut req, &rs.key, now(), &SignOptions::default()).unwrap();
        send(server.addr, &req)
    };
    let stranger = Agent::new();
    let mut tampered = rs.signed("POST", &introspect_uri, None, Some(&body(&rs)), now());
    tampered.body =
        serde_json::to_vec(&json!({"access_token": "other", "resource_server": rs_member(&rs)}))
            .unwrap();
    let cases: Vec<(&str, Answer, u16, &str)> = vec![
        (
            "unknown RS key",
            post(
                &server,
                &stranger,
                "/gnap/introspect",
                None,
                &body(&stranger),
            ),
            400,
            "invalid_resource_server",
        ),
        (
            "unknown RS key registering",
            post(
                &server,
                &stranger,
                "/gnap/resource",
                None,
                &json!({"access": ["mcp:github"], "resource_server": rs_member(&stranger)}),
            ),
            400,
            "invalid_resource_server",
        ),
        (
            "signed by another key than presented",
            post(&server, &stranger, "/gnap/introspect", None, &body(&rs)),
            400,
            "invalid_resource_server",
        ),
        (
            "content changed after signing",
            send(server.addr, &tampered),
            400,
            "invalid_resource_server",
        ),
        (
            "access outside the RS's rule",
            post(
                &server,
                &rs,
                "/gnap/resource",
                None,
                &json!({"access": ["mcp:slack"], "resource_server": rs_member(&rs)}),
            ),
            400,
            "invalid_access",
        ),
        (
            "oversized body",
            raw("POST", Some("application/json"), vec![b' '; 70 * 1024]),
            413,
            "invalid_request",
        ),
        (
            "not JSON",
            raw(
                "POST",
                Some("application/json"),
                b"{\"access_token\":".to_vec(),
            ),
            400,
            "invalid_request",
        ),
        (
            "wrong content type",
            raw("POST", Some("text/plain"), b"{}".to_vec()),
            415,
            "invalid_request",
        ),
        (
            "wrong method",
            raw("PUT", None, Vec::new()),
            405,
            "invalid_request",
        ),
        (
            "no access_token",
            raw(
                "POST",
                Some("application/json"),
                serde_json::to_vec(&json!({"resource_server": rs_member(&rs)})).unwrap(),
            ),
            400,
            "invalid_request",
        ),
    ];
    for (name, answer, status, code) in cases {
        let json = answer.json();
        assert_eq!(
            (answer.status, json["error"]["code"].as_str().unwrap_or("")),
            (status, code),
            "{name}: {json}"
        );
        assert_eq!(
            answer.header("content-type"),
            Some("application/json"),
            "{name}"
        );
    }
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn a_grant_a_person_approves_carries_the_registered_rights_not_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gnapd.toml");
    std::fs::write(&config, "poll_wait = 0\n").unwrap();
    let data = dir.path().join("data");
    let server = Server::start(
        &data,
        &[
            "--dev",
            "--require-interaction",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    let rs = Agent::new();
    let client = Agent::new();
    let rights = json!([
        {"type": "photo-api", "actions": ["read"], "locations": ["https://rs.example/photos"]}
    ]);
    let registered = post(
        &server,
        &rs,
        "/gnap/resource",
        None,
        &json!({"access": rights, "resource_server": rs_member(&rs)}),
    );
    assert_eq!(registered.status, 200, "{}", registered.text());
    let reference = registered.json()["resource_reference"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut body = client.grant_body(json!([reference]));
    body["interact"] = json!({"start": ["user_code"]});
    let pending = post(&server, &client, "/gnap", None, &body);
    assert_eq!(pending.status, 200, "{}", pending.text());
    let pending = pending.json();
    let code = pending["interact"]["user_code"].as_str().unwrap();
    let mut cont = pending["continue"].clone();

    // The person sees what they approve, not an opaque reference.
    let (ok, listed, err) = crate::interaction_http::grants(&data, &["pending"]);
    assert!(ok, "{err}");
    assert_eq!(
        listed["pending"][0]["access"],
        json!(["`photo-api`: read at https://rs.example/photos"]),
        "{listed}"
    );
    let (ok, _, err) = crate::interaction_http::grants(&data, &["approve", code]);
    assert!(ok, "{err}");

    let granted = crate::interaction_pages::continue_(&server, &client, &mut cont, None);
    assert_eq!(granted["access_token"]["access"], rights, "{granted}");
    let answer = introspect(&server, &rs, access_token(&granted));
    assert_eq!(answer["active"], true);
    assert_eq!(answer["access"], rights);
}
