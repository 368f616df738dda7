//! A real browser through the interaction pages: Debian's headless
//! chromium, driven by playwright-core from `tests/interop/browser/flow.mjs`,
//! against a real `gnapd serve --dev --require-interaction` on sled. The
//! agent's side (signed grant requests, continuation) is this test's.
//!
//! `scripts/test.sh` installs the browser and the npm package; a missing
//! browser, Node or package fails these tests (never a skip). Screenshots of
//! every page go to the test's temporary directory and are copied to
//! `target/screenshots/` for review; their paths are printed.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;

use gnapd::proto::b64;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::interaction_pages::grant;
use crate::support::agent::Agent;
use crate::support::server::Server;

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/browser")
}

/// Runs flow.mjs with `plan` (its `out` set to `out`); returns its result.
fn run_flow(mut plan: Value, out: &Path) -> Value {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: run scripts/test.sh (it installs Debian's chromium)"
    );
    assert!(
        browser_dir().join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run scripts/test.sh (npm ci in tests/interop/browser)"
    );
    plan["out"] = json!(out.to_str().unwrap());
    let output = Command::new("node")
        .arg(browser_dir().join("flow.mjs"))
        .arg(plan.to_string())
        .output()
        .expect("node runs (the README's test setup installs Node 20)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result: Value = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or(Value::Null);
    let review = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&review).unwrap();
    for shot in result["screenshots"].as_array().into_iter().flatten() {
        let path = Path::new(shot.as_str().unwrap());
        let copy = review.join(path.file_name().unwrap());
        std::fs::copy(path, &copy).unwrap();
        println!("screenshot: {} (copy: {})", path.display(), copy.display());
    }
    assert!(
        output.status.success() && result["ok"] == true,
        "flow.mjs failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    result
}

fn start(dir: &Path) -> Server {
    let config = dir.join("gnapd.toml");
    std::fs::write(&config, "poll_wait = 0\n").unwrap();
    Server::start(
        &dir.join("data"),
        &[
            "--dev",
            "--require-interaction",
            "--config",
            config.to_str().unwrap(),
        ],
    )
}

/// The continuation call of `cont` (it is not advanced: each test makes
/// one).
fn continue_(server: &Server, agent: &Agent, cont: &Value, interact_ref: Option<&str>) -> Value {
    crate::interaction_pages::continue_(server, agent, &mut cont.clone(), interact_ref)
}

/// The agent's callback page on 127.0.0.1, as a client would serve it:
/// answers every request with a small page and hands over the request
/// lines.
fn client_callback() -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
            }
            let page = "<!doctype html><html lang=en><meta name=viewport content=\"width=device-width\"><title>Agent</title><h1>The agent got the answer</h1>";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = tx.send(line);
        }
    });
    (port, rx)
}

fn param(url: &str, name: &str) -> String {
    url.split_once('?')
        .unwrap()
        .1
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .unwrap()
        .to_owned()
}

#[test]
fn redirect_flow_unticks_a_tool_approves_and_lands_at_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let (port, callback) = client_callback();
    let finish_uri = format!("http://127.0.0.1:{port}/return/123455");
    let agent = Agent::new();
    let body = grant(
        &server,
        &agent,
        json!([{"type": "mcp", "identifier": "github", "actions": ["tools/call"], "tools": ["search", "create_issue", "delete_repo"]}]),
        json!({"start": ["redirect"], "finish": {"method": "redirect", "uri": finish_uri, "nonce": "VJLO6A4CATR0KRO"}}),
    );
    let as_nonce = body["interact"]["finish"].as_str().unwrap().to_owned();
    let result = run_flow(
        json!({
            "flow": "redirect",
            "url": body["interact"]["redirect"],
            "untick": ["delete_repo"],
            "finish_prefix": finish_uri,
            "not_found": format!("{}/gnap/interact/00000000-0000-4000-8000-000000000000/nope", server.base()),
        }),
        dir.path(),
    );
    let landed = result["final_url"].as_str().unwrap();
    assert!(
        landed.starts_with(&format!("{finish_uri}?hash=")),
        "{landed}"
    );
    let line = callback
        .recv_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    assert!(line.starts_with("GET /return/123455?hash="), "{line}");
    let interact_ref = param(landed, "interact_ref");
    let base = format!(
        "VJLO6A4CATR0KRO\n{as_nonce}\n{interact_ref}\n{}",
        server.grant_endpoint
    );
    assert_eq!(
        param(landed, "hash"),
        b64::encode_url(&sha2::Sha256::digest(base.as_bytes()))
    );
    let tokens = continue_(&server, &agent, &body["continue"], Some(&interact_ref));
    assert_eq!(
        tokens["access_token"]["access"],
        json!([{"type": "mcp", "identifier": "github", "actions": ["tools/call"], "tools": ["search", "create_issue"]}]),
        "{tokens}"
    );
}

#[test]
fn user_code_flow_types_the_code_approves_and_polling_gets_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let agent = Agent::new();
    let body = grant(
        &server,
        &agent,
        json!(["mcp:github"]),
        json!({"start": ["user_code_uri"]}),
    );
    let code = body["interact"]["user_code_uri"]["code"].as_str().unwrap();
    run_flow(
        json!({
            "flow": "user-code",
            "url": body["interact"]["user_code_uri"]["uri"],
            "code": format!("{}-{}", &code[..4], &code[4..]),
        }),
        dir.path(),
    );
    let tokens = continue_(&server, &agent, &body["continue"], None);
    assert_eq!(
        tokens["access_token"]["access"],
        json!(["mcp:github"]),
        "{tokens}"
    );
}

#[test]
fn deny_flow_ends_in_user_denied() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let agent = Agent::new();
    let body = grant(
        &server,
        &agent,
        json!(["mcp:github"]),
        json!({"start": ["redirect"]}),
    );
    run_flow(
        json!({"flow": "deny", "url": body["interact"]["redirect"]}),
        dir.path(),
    );
    let answer = continue_(&server, &agent, &body["continue"], None);
    assert_eq!(answer["error"]["code"], "user_denied", "{answer}");
}

#[test]
fn a_key_connected_on_one_page_is_offered_and_used_on_the_next_and_forgotten_on_the_third() {
    let dir = tempfile::tempdir().unwrap();
    let server = crate::interaction_pages::start(dir.path(), crate::connect_upstream::MUST_CONNECT);
    let access = json!(["mcp:tracker"]);
    let agents = [Agent::new(), Agent::new(), Agent::new()];
    let bodies: Vec<Value> = agents
        .iter()
        .map(|agent| {
            grant(
                &server,
                agent,
                access.clone(),
                json!({"start": ["redirect"]}),
            )
        })
        .collect();
    let urls: Vec<&Value> = bodies.iter().map(|b| &b["interact"]["redirect"]).collect();
    run_flow(
        json!({"flow": "connect-again", "url": urls[0], "urls": urls, "key": "tracker-key-5e21"}),
        dir.path(),
    );
    for (agent, body) in agents.iter().zip(&bodies).take(2) {
        let tokens = continue_(&server, agent, &body["continue"], None);
        assert_eq!(tokens["access_token"]["access"], access, "{tokens}");
    }
    // The second approval picked the first one's set, and the third page
    // forgot it: no set is left.
    server.stop();
    let store = gnapd::store::sled::SledStore::open(&dir.path().join("data/store")).unwrap();
    let sets = gnapd::store::Store::credential_sets(&store).unwrap();
    assert!(
        sets.iter().all(|s| !s.id.starts_with("person:")),
        "{sets:?}"
    );
}
