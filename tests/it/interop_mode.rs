//! `gnapd serve --interop` (issue 18): what a conformance suite drives
//! without a person. A real server on loopback and sled; every decision
//! through `POST /interop/decide` with the secret the server wrote at
//! start; tokens used at `/rs/echo`.

use std::path::Path;

use gnapd::clock::{Clock as _, SystemClock};
use gnapd::proto::httpsig::HttpRequest;
use serde_json::{Value, json};

use crate::interaction_http::{expected_hash, param, push_listener};
use crate::interaction_pages::continue_;
use crate::support::agent::{Agent, access_token, error_code};
use crate::support::http_client::{Answer, send};
use crate::support::server::{Serve, Server};

fn start(dir: &Path) -> Server {
    let config = dir.join("gnapd.toml");
    std::fs::write(&config, "poll_wait = 0\n").unwrap();
    Server::start(
        &dir.join("data"),
        &["--interop", "--config", config.to_str().unwrap()],
    )
}

/// The automation secret, from the file the server wrote for its user only.
fn secret(dir: &Path) -> String {
    let path = dir.join("data").join("interop.secret");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the secret file is readable by others: {mode:o}"
        );
    }
    let secret = std::fs::read_to_string(path).unwrap();
    assert!(secret.len() >= 43, "32 random bytes, base64url");
    secret
}

fn decide(server: &Server, secret: Option<&str>, body: &Value) -> Answer {
    let mut req = HttpRequest::new("POST", format!("{}/interop/decide", server.base()))
        .with_field("Content-Type", "application/json")
        .with_body(serde_json::to_vec(body).unwrap());
    if let Some(secret) = secret {
        req.fields
            .append("Authorization", format!("Bearer {secret}"));
    }
    send(server.addr, &req)
}

fn grant(server: &Server, agent: &Agent, interact: Option<Value>) -> Value {
    let mut body = agent.grant_body(json!(["mcp:github"]));
    if let Some(interact) = interact {
        body["interact"] = interact;
    }
    let req = agent.signed(
        "POST",
        &server.grant_endpoint,
        None,
        Some(&body),
        SystemClock.now(),
    );
    let answer = send(server.addr, &req);
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()
}

fn echo(server: &Server, agent: &Agent, token: Option<&str>) -> Answer {
    let uri = format!("{}/rs/echo?x=1", server.base());
    send(
        server.addr,
        &agent.signed("GET", &uri, token, None, SystemClock.now()),
    )
}

#[test]
fn interop_mode_approves_a_request_without_interaction_at_once_and_echo_sees_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let agent = Agent::new();
    let answer = grant(&server, &agent, None);
    let token = access_token(&answer).to_owned();
    let seen = echo(&server, &agent, Some(&token));
    assert_eq!(seen.status, 200, "{}", seen.text());
    let seen = seen.json();
    assert_eq!(seen["method"], "GET");
    assert_eq!(seen["target_uri"], format!("{}/rs/echo?x=1", server.base()));
    assert_eq!(seen["token"]["access"], json!(["mcp:github"]));
    assert_eq!(
        seen["proof"]["key_thumbprint"],
        agent.key.verifying_key().thumbprint().as_str()
    );
    let covered = seen["proof"]["covered_components"].as_array().unwrap();
    assert!(covered.contains(&json!("\"authorization\"")), "{covered:?}");
}

#[test]
fn the_echo_resource_refuses_a_missing_unknown_replayed_or_foreign_keyed_token_with_a_gnap_challenge()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let agent = Agent::new();
    let token = access_token(&grant(&server, &agent, None)).to_owned();
    let challenge = format!("GNAP as_uri=\"{}\"", server.grant_endpoint);
    let refused = |answer: Answer, why: &str| {
        assert_eq!(answer.status, 401, "{why}: {}", answer.text());
        assert_eq!(
            answer.header("www-authenticate"),
            Some(challenge.as_str()),
            "{why}"
        );
        assert_eq!(error_code(&answer.json()), "invalid_client", "{why}");
    };
    refused(echo(&server, &agent, None), "no token");
    refused(
        echo(&server, &agent, Some("made-up-token")),
        "unknown token",
    );
    refused(
        echo(&server, &Agent::new(), Some(&token)),
        "another key's signature",
    );
    let signed = agent.signed(
        "GET",
        &format!("{}/rs/echo", server.base()),
        Some(&token),
        None,
        SystemClock.now(),
    );
    assert_eq!(send(server.addr, &signed).status, 200);
    refused(send(server.addr, &signed), "the same request again");
}

#[test]
fn interop_decide_needs_the_secret_and_finishes_a_redirect_with_the_right_hash() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let agent = Agent::new();
    let answer = grant(
        &server,
        &agent,
        Some(
            json!({"start": ["redirect"], "finish": {"method": "redirect",
            "uri": "http://127.0.0.1:9/callback", "nonce": "VJLO6A4CAYLBXHTR0KRO"}}),
        ),
    );
    assert!(
        answer["access_token"].is_null(),
        "offered interaction waits: {answer}"
    );
    let url = answer["interact"]["redirect"].as_str().unwrap().to_owned();
    let as_nonce = answer["interact"]["finish"].as_str().unwrap().to_owned();
    let mut cont = answer["continue"].clone();
    let body = json!({"interaction_url": url, "decision": "approve"});
    // Holding the link is not identity: without the secret, or with
    // another, nothing is decided.
    for wrong in [None, Some("not-the-secret")] {
        let refused = decide(&server, wrong, &body);
        assert_eq!(refused.status, 401, "{}", refused.text());
    }
    let secret = secret(dir.path());
    let decided = decide(&server, Some(&secret), &body);
    assert_eq!(decided.status, 200, "{}", decided.text());
    let decided = decided.json();
    assert_eq!(decided["finish"], "redirect");
    let to = decided["redirect_to"].as_str().unwrap();
    assert!(to.starts_with("http://127.0.0.1:9/callback?"), "{to}");
    let interact_ref = param(to, "interact_ref");
    assert_eq!(
        param(to, "hash"),
        expected_hash(
            "VJLO6A4CAYLBXHTR0KRO",
            &as_nonce,
            &interact_ref,
            &server.grant_endpoint
        )
    );
    // Decided once only.
    assert_eq!(decide(&server, Some(&secret), &body).status, 409);
    let tokens = continue_(&server, &agent, &mut cont, Some(&interact_ref));
    assert!(tokens["access_token"]["value"].is_string(), "{tokens}");
}

#[test]
fn interop_decide_by_user_code_denies_or_pushes_the_finish_to_a_loopback_listener() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let secret = secret(dir.path());
    // Denied by user code: polling then says so.
    let agent = Agent::new();
    let answer = grant(&server, &agent, Some(json!({"start": ["user_code"]})));
    let code = answer["interact"]["user_code"].as_str().unwrap().to_owned();
    let mut cont = answer["continue"].clone();
    let decided = decide(
        &server,
        Some(&secret),
        &json!({"user_code": code, "decision": "deny"}),
    );
    assert_eq!(decided.status, 200, "{}", decided.text());
    assert_eq!(decided.json()["decision"], "denied");
    assert_eq!(
        error_code(&continue_(&server, &agent, &mut cont, None)),
        "user_denied"
    );
    // Approved, with a push finish to the suite's own loopback listener.
    let (port, pushed) = push_listener();
    let agent = Agent::new();
    let answer = grant(
        &server,
        &agent,
        Some(json!({"start": ["user_code"], "finish": {"method": "push",
            "uri": format!("http://127.0.0.1:{port}/push"), "nonce": "N0NCE-FOR-PUSH"}})),
    );
    let code = answer["interact"]["user_code"].as_str().unwrap().to_owned();
    let decided = decide(
        &server,
        Some(&secret),
        &json!({"user_code": code, "decision": "approve"}),
    );
    assert_eq!(
        decided.json()["push"],
        "delivered (204)",
        "{}",
        decided.text()
    );
    let (_, body) = pushed
        .recv_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        body["hash"].is_string() && body["interact_ref"].is_string(),
        "{body}"
    );
}

#[test]
fn without_interop_there_is_no_automation_endpoint_and_no_echo_resource() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--dev"]);
    let agent = Agent::new();
    let token = access_token(&grant(&server, &agent, None)).to_owned();
    assert_eq!(echo(&server, &agent, Some(&token)).status, 404);
    let decided = decide(
        &server,
        Some("anything"),
        &json!({"user_code": "X", "decision": "approve"}),
    );
    assert_eq!(decided.status, 404);
    assert!(!dir.path().join("data").join("interop.secret").exists());
}

#[test]
fn interop_mode_refuses_to_serve_beyond_this_machine_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        (
            vec!["--interop", "--public-url", "https://gnap.example.com"],
            "not on loopback",
        ),
        (
            vec!["--interop", "--tls-cert", "c.pem", "--tls-key", "k.pem"],
            "TLS is configured",
        ),
    ] {
        let (status, stderr) = Serve::new(&dir.path().join("data"))
            .args(&args)
            .refused(std::time::Duration::from_secs(20));
        assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(says) && stderr.contains("--interop-force"),
            "{stderr}"
        );
    }
}

#[test]
fn the_interop_hook_approves_by_interaction_url_and_opens_the_finish_redirect_as_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let (port, opened) = push_listener();
    let agent = Agent::new();
    let answer = grant(
        &server,
        &agent,
        Some(
            json!({"start": ["redirect"], "finish": {"method": "redirect",
            "uri": format!("http://127.0.0.1:{port}/finish"), "nonce": "HOOK-NONCE"}}),
        ),
    );
    let url = answer["interact"]["redirect"].as_str().unwrap();
    let secret_file = dir.path().join("data").join("interop.secret");
    let out = std::process::Command::new(crate::support::process::GNAPD)
        .args([
            "interop-hook",
            "--secret-file",
            secret_file.to_str().unwrap(),
        ])
        .env("GNAP_GRANT_ENDPOINT", &server.grant_endpoint)
        .env("GNAP_INTERACT_URL", url)
        .env("GNAP_DECISION", "approve")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decided: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(decided["decision"], "approved");
    assert_eq!(decided["browser"]["status"], 204, "{decided}");
    // The browser's request reached the client's finish URI with the hash.
    let (head, _) = opened
        .recv_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    assert!(head.starts_with("GET /finish?hash="), "{head}");
    assert!(head.contains("interact_ref="), "{head}");
    // Without the secret the hook fails and decides nothing.
    let out = std::process::Command::new(crate::support::process::GNAPD)
        .args(["interop-hook"])
        .env_remove("GNAPD_INTEROP_SECRET")
        .env("GNAP_GRANT_ENDPOINT", &server.grant_endpoint)
        .env("GNAP_USER_CODE", "ABCD-EFGH")
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn the_echo_resource_checks_jwsd_and_jws_bound_tokens_by_their_own_method() {
    use crate::jws_proof::JwsAgent;
    use gnapd::proto::httpsig::Algorithm;
    use gnapd::proto::jwk::SigningKey;
    use gnapd::proto::jws_proof::JwsMethod;
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    for (method, name) in [(JwsMethod::Detached, "jwsd"), (JwsMethod::Attached, "jws")] {
        let agent = JwsAgent::new(method, Algorithm::Ed25519, "echo-key");
        let body = agent.grant_body(json!(["mcp:github"]));
        let answer = send(
            server.addr,
            &agent.request(
                "POST",
                &server.grant_endpoint,
                None,
                Some(&body),
                SystemClock.now(),
            ),
        );
        assert_eq!(answer.status, 200, "{name}: {}", answer.text());
        let token = access_token(&answer.json()).to_owned();
        let uri = format!("{}/rs/echo", server.base());
        let seen = send(
            server.addr,
            &agent.request("GET", &uri, Some(&token), None, SystemClock.now()),
        );
        assert_eq!(seen.status, 200, "{name}: {}", seen.text());
        assert_eq!(seen.json()["proof"]["method"], name);
        // An httpsig signature by the same key is not this token's proof.
        let same_key =
            Agent::with(SigningKey::from_private_jwk(agent.key.private_jwk(), None).unwrap());
        let signed = same_key.signed("GET", &uri, Some(&token), None, SystemClock.now());
        assert_eq!(send(server.addr, &signed).status, 401, "{name}");
    }
}
