//! Interaction over loopback (RFC 9635 §3.3, §4, §5.1): a real `gnapd serve
//! --dev --require-interaction` on sled in a temporary directory, decisions
//! made with the real `gnapd grants` command through the admin socket.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use gnapd::clock::{Clock as _, SystemClock};
use gnapd::proto::b64;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::interaction_pages::continue_;
use crate::support::agent::{Agent, error_code};
use crate::support::http_client::{Answer, send};
use crate::support::server::Server;

/// A server that requires interaction, with `extra` config lines (`wait`
/// is 0 so the tests poll without sleeping). Returns it with its data dir.
fn start(dir: &Path, extra: &str) -> (Server, PathBuf) {
    let config = dir.join("gnapd.toml");
    std::fs::write(&config, format!("poll_wait = 0\n{extra}")).unwrap();
    let data = dir.join("data");
    let server = Server::start(
        &data,
        &[
            "--dev",
            "--require-interaction",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    (server, data)
}

/// Runs `gnapd grants ARGS --data-dir DATA --json`: (success, result, stderr).
pub(crate) fn grants(data: &Path, args: &[&str]) -> (bool, Value, String) {
    let data = data.to_str().unwrap();
    let out = crate::support::run::gnapd(
        &[&["grants"], args, &["--data-dir", data, "--json"]].concat(),
        b"",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    (
        out.status.success(),
        serde_json::from_str(stdout.trim()).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn grant_request(server: &Server, agent: &Agent, interact: Value) -> Answer {
    let mut body = agent.grant_body(json!(["mcp:github"]));
    body["interact"] = interact;
    let req = agent.signed(
        "POST",
        &server.grant_endpoint,
        None,
        Some(&body),
        SystemClock.now(),
    );
    send(server.addr, &req)
}

/// The query parameter `name` of `url`.
pub(crate) fn param(url: &str, name: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .unwrap()
        .to_owned()
}

/// §4.2.3 with SHA-256, written out here independently of gnapd's code.
pub(crate) fn expected_hash(
    client_nonce: &str,
    as_nonce: &str,
    interact_ref: &str,
    grant_endpoint: &str,
) -> String {
    let base = format!("{client_nonce}\n{as_nonce}\n{interact_ref}\n{grant_endpoint}");
    b64::encode_url(&sha2::Sha256::digest(base.as_bytes()))
}

/// A one-shot HTTP listener on 127.0.0.1: hands over the body of the first
/// POST it receives and answers 204.
pub(crate) fn push_listener() -> (u16, mpsc::Receiver<(String, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let mut stream = stream;
        stream
            .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
        let _ = tx.send((head, body));
    });
    (port, rx)
}

#[test]
fn a_user_code_approved_by_the_cli_lets_polling_get_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let (server, data) = start(dir.path(), "");
    let agent = Agent::new();
    let answer = grant_request(&server, &agent, json!({"start": ["user_code"]}));
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body = answer.json();
    assert!(body["access_token"].is_null());
    let code = body["interact"]["user_code"].as_str().unwrap().to_owned();
    let mut cont = body["continue"].clone();
    assert!(continue_(&server, &agent, &mut cont, None)["access_token"].is_null());

    let (ok, pending, err) = grants(&data, &["pending"]);
    assert!(ok, "{err}");
    let listed = &pending["pending"][0];
    assert_eq!(listed["user_code"].as_str().unwrap().replace('-', ""), code);
    assert_eq!(listed["display_name"], "test agent");
    assert_eq!(
        listed["thumbprint"],
        agent.key.verifying_key().thumbprint().as_str()
    );
    assert_eq!(
        listed["access"],
        json!(["full access to MCP upstream `github`"])
    );

    // The admin types the code as people read it, in lowercase.
    let typed = format!("{}-{}", &code[..4], &code[4..]).to_lowercase();
    let (ok, decided, err) = grants(&data, &["approve", &typed]);
    assert!(ok, "{err}");
    assert_eq!(
        (decided["decision"].as_str(), decided["finish"].as_str()),
        (Some("approved"), Some("none"))
    );
    let tokens = continue_(&server, &agent, &mut cont, None);
    assert_eq!(
        tokens["access_token"]["access"],
        json!(["mcp:github"]),
        "{tokens}"
    );
    let (ok, pending, _) = grants(&data, &["pending"]);
    assert!(ok && pending["pending"].as_array().unwrap().is_empty());
    // Decided once.
    let (ok, _, err) = grants(&data, &["deny", &code]);
    assert!(!ok && err.contains("no pending grant"), "{err}");
}

#[test]
fn a_redirect_finish_hash_verifies_after_cli_approval() {
    let dir = tempfile::tempdir().unwrap();
    let (server, data) = start(dir.path(), "");
    let agent = Agent::new();
    let body = grant_request(
        &server,
        &agent,
        json!({"start": ["user_code"], "finish": {"method": "redirect", "uri": "https://client.example/return/123455", "nonce": "LKLTI25DK82FX4T4QFZC"}}),
    )
    .json();
    let as_nonce = body["interact"]["finish"].as_str().unwrap().to_owned();
    let mut cont = body["continue"].clone();
    let (ok, decided, err) = grants(
        &data,
        &["approve", body["interact"]["user_code"].as_str().unwrap()],
    );
    assert!(ok, "{err}");
    let url = decided["redirect_to"].as_str().unwrap();
    assert!(
        url.starts_with("https://client.example/return/123455?hash="),
        "{url}"
    );
    let interact_ref = param(url, "interact_ref");
    assert_eq!(
        param(url, "hash"),
        expected_hash(
            "LKLTI25DK82FX4T4QFZC",
            &as_nonce,
            &interact_ref,
            &server.grant_endpoint
        )
    );
    // Without the reference: still pending; with it: the tokens.
    assert!(continue_(&server, &agent, &mut cont, None)["access_token"].is_null());
    let tokens = continue_(&server, &agent, &mut cont, Some(&interact_ref));
    assert!(tokens["access_token"]["value"].is_string(), "{tokens}");
}

#[test]
fn a_push_finish_delivers_interact_ref_and_hash_to_a_local_listener() {
    let dir = tempfile::tempdir().unwrap();
    let (server, data) = start(dir.path(), "allow_private_push = true\n");
    let (port, received) = push_listener();
    let agent = Agent::new();
    let answer = grant_request(
        &server,
        &agent,
        json!({"start": [], "finish": {"method": "push", "uri": format!("http://127.0.0.1:{port}/push/554321"), "nonce": "VJLO6A4CATR0KRO"}}),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body = answer.json();
    assert!(body["interact"]["user_code"].is_null());
    let as_nonce = body["interact"]["finish"].as_str().unwrap().to_owned();
    let mut cont = body["continue"].clone();
    // No code: the admin approves by grant id.
    let (ok, pending, _) = grants(&data, &["pending"]);
    assert!(ok);
    let id = pending["pending"][0]["grant"].as_str().unwrap().to_owned();
    let (ok, decided, err) = grants(&data, &["approve", &id]);
    assert!(ok, "{err}");
    assert_eq!(decided["push"], "delivered (204)", "{decided}");
    let (head, pushed) = received.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(head.starts_with("POST /push/554321 HTTP/1.1"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json")
    );
    let pushed: Value = serde_json::from_slice(&pushed).unwrap();
    let interact_ref = pushed["interact_ref"].as_str().unwrap();
    assert_eq!(
        pushed["hash"].as_str().unwrap(),
        expected_hash(
            "VJLO6A4CATR0KRO",
            &as_nonce,
            interact_ref,
            &server.grant_endpoint
        )
    );
    let tokens = continue_(&server, &agent, &mut cont, Some(interact_ref));
    assert!(tokens["access_token"]["value"].is_string(), "{tokens}");
}

#[test]
fn push_ssrf_attempts_are_refused_without_the_allowance() {
    let dir = tempfile::tempdir().unwrap();
    let (server, data) = start(dir.path(), "");
    let (port, received) = push_listener();
    let agent = Agent::new();
    // A literal loopback address: refused with the request.
    let answer = grant_request(
        &server,
        &agent,
        json!({"start": [], "finish": {"method": "push", "uri": format!("http://127.0.0.1:{port}/push"), "nonce": "n"}}),
    );
    assert_eq!(
        (answer.status, error_code(&answer.json())),
        (400, "invalid_request")
    );
    // A name that resolves to loopback: refused when the push is due, after
    // every address of the name was checked; the approval stands.
    let body = grant_request(
        &server,
        &agent,
        json!({"start": ["user_code"], "finish": {"method": "push", "uri": format!("http://localhost:{port}/push"), "nonce": "n"}}),
    )
    .json();
    let (ok, decided, err) = grants(
        &data,
        &["approve", body["interact"]["user_code"].as_str().unwrap()],
    );
    assert!(ok, "{err}");
    assert!(
        decided["push"].as_str().unwrap().starts_with("refused:"),
        "{decided}"
    );
    assert!(received.recv_timeout(Duration::from_millis(500)).is_err());
    assert_eq!(decided["decision"], "approved");
}

#[test]
fn a_cli_denial_is_user_denied() {
    let dir = tempfile::tempdir().unwrap();
    let (server, data) = start(dir.path(), "");
    let agent = Agent::new();
    let body = grant_request(&server, &agent, json!({"start": ["user_code"]})).json();
    let mut cont = body["continue"].clone();
    let (ok, decided, err) = grants(
        &data,
        &["deny", body["interact"]["user_code"].as_str().unwrap()],
    );
    assert!(ok, "{err}");
    assert_eq!(decided["decision"], "denied");
    let answer = continue_(&server, &agent, &mut cont, None);
    assert_eq!(error_code(&answer), "user_denied");
    assert!(answer["access_token"].is_null());
}

#[test]
fn an_expired_interaction_is_invalid_interaction_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let (server, data) = start(dir.path(), "interaction_lifetime = 1\n");
    let agent = Agent::new();
    let body = grant_request(&server, &agent, json!({"start": ["user_code"]})).json();
    assert_eq!(body["interact"]["expires_in"], 1);
    let mut cont = body["continue"].clone();
    std::thread::sleep(Duration::from_millis(2100));
    let (ok, _, err) = grants(
        &data,
        &["approve", body["interact"]["user_code"].as_str().unwrap()],
    );
    assert!(!ok && err.contains("expired"), "{err}");
    let answer = continue_(&server, &agent, &mut cont, None);
    assert_eq!(error_code(&answer), "invalid_interaction", "{answer}");
}

#[test]
fn a_replayed_interact_ref_is_too_many_attempts_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let (server, data) = start(dir.path(), "");
    let agent = Agent::new();
    let body = grant_request(
        &server,
        &agent,
        json!({"start": ["user_code"], "finish": {"method": "redirect", "uri": "http://localhost:1/cb", "nonce": "n"}}),
    )
    .json();
    let mut cont = body["continue"].clone();
    let (_, decided, _) = grants(
        &data,
        &["approve", body["interact"]["user_code"].as_str().unwrap()],
    );
    let interact_ref = param(decided["redirect_to"].as_str().unwrap(), "interact_ref");
    assert!(continue_(&server, &agent, &mut cont, Some(&interact_ref))["access_token"].is_object());
    let replay = continue_(&server, &agent, &mut cont, Some(&interact_ref));
    assert_eq!(error_code(&replay), "too_many_attempts", "{replay}");
    // The grant is finalized: its continuation no longer works.
    assert_eq!(
        error_code(&continue_(&server, &agent, &mut cont, None)),
        "invalid_continuation"
    );
}

#[test]
fn a_wrong_hash_method_is_invalid_request_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = start(dir.path(), "");
    let agent = Agent::new();
    let answer = grant_request(
        &server,
        &agent,
        json!({"start": ["user_code"], "finish": {"method": "redirect", "uri": "https://c.example/cb", "nonce": "n", "hash_method": "md5"}}),
    );
    assert_eq!(
        (answer.status, error_code(&answer.json())),
        (400, "invalid_request")
    );
}

#[test]
fn push_finish_to_nat64_6to4_and_ipv4_compatible_literals_is_refused_at_the_grant_request() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = start(dir.path(), "");
    let agent = Agent::new();
    // Each reaches 127.0.0.1 or 10.0.0.1 through a translator or tunnel.
    for host in [
        "[64:ff9b::7f00:1]",
        "[64:ff9b:1::a00:1]",
        "[2002:7f00:1::1]",
        "[::7f00:1]",
        "[::ffff:0:7f00:1]",
        "[2001:0:4136:e378:8000:63bf:3fff:fdd2]",
    ] {
        let answer = grant_request(
            &server,
            &agent,
            json!({"start": ["user_code"], "finish": {"method": "push", "uri": format!("http://{host}:8080/push"), "nonce": "n"}}),
        );
        assert_eq!(
            (answer.status, error_code(&answer.json())),
            (400, "invalid_request"),
            "{host}: {}",
            answer.text()
        );
    }
}

#[test]
fn push_finish_to_loopback_spelled_as_a_number_is_refused_when_the_push_is_due() {
    let dir = tempfile::tempdir().unwrap();
    let (server, data) = start(dir.path(), "");
    let (port, received) = push_listener();
    let agent = Agent::new();
    // Not an address literal to the URI parser, 127.0.0.1 to the resolver.
    for host in ["2130706433", "0x7f.1"] {
        let body = grant_request(
            &server,
            &agent,
            json!({"start": ["user_code"], "finish": {"method": "push", "uri": format!("http://{host}:{port}/push"), "nonce": "n"}}),
        )
        .json();
        let (ok, decided, err) = grants(
            &data,
            &["approve", body["interact"]["user_code"].as_str().unwrap()],
        );
        assert!(ok, "{err}");
        assert!(
            decided["push"].as_str().unwrap().starts_with("refused:"),
            "{host}: {decided}"
        );
    }
    assert!(received.recv_timeout(Duration::from_millis(300)).is_err());
}

#[test]
fn redirect_finish_over_plain_http_off_loopback_is_refused_at_the_grant_request() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = start(dir.path(), "");
    let agent = Agent::new();
    let finish = |uri: &str| {
        grant_request(
            &server,
            &agent,
            json!({"start": ["user_code"], "finish": {"method": "redirect", "uri": uri, "nonce": "n"}}),
        )
    };
    // The browser would carry interact_ref and hash in the clear.
    for uri in [
        "http://client.example/cb",
        "http://10.0.0.1/cb",
        "http://localhost.attacker.example/cb",
        "http://127.0.0.1.attacker.example/cb",
        "ftp://client.example/cb",
    ] {
        let answer = finish(uri);
        assert_eq!(
            (answer.status, error_code(&answer.json())),
            (400, "invalid_request"),
            "{uri}: {}",
            answer.text()
        );
    }
    for uri in [
        "https://client.example/cb",
        "http://127.0.0.1:1/cb",
        "http://[::1]:1/cb",
        "http://localhost:1/cb",
    ] {
        let answer = finish(uri);
        assert_eq!(answer.status, 200, "{uri}: {}", answer.text());
    }
}
