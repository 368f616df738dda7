//! Interop of the whole AS with an agent written in another language: a GNAP
//! client instance in Python (tests/interop/agent.py) whose requests are
//! signed by the independent RFC 9421 library `http-message-signatures`, run
//! against the real `gnapd serve` binary on loopback. It discovers the AS,
//! gets a token with a fresh key, rotates it, revokes it and deletes the grant.
//!
//! The agent runs from the virtualenv `scripts/test.sh` (and so `.ci/run`)
//! creates; a missing Python is a failure, never a skip.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::paths::{python, root};
use crate::support::run::run_json_lines;
use crate::support::server::Server;

/// The agent's steps, in order, as it reports them (one JSON line each).
const STEPS: [&str; 10] = [
    "key",
    "discovery",
    "grant",
    "rotate",
    "revoke",
    "revoke-again",
    "rotate-revoked",
    "wait",
    "delete-grant",
    "done",
];

/// Longest an agent run may take: the continuation `wait` (5 s) plus slack.
const AGENT_DEADLINE: Duration = Duration::from_secs(90);

/// One agent run: exit code, the JSON lines it printed, and all its output
/// (for assertion messages).
struct Run {
    code: Option<i32>,
    lines: Vec<Value>,
    output: String,
}

impl Run {
    fn step(&self, name: &str) -> &Value {
        self.lines
            .iter()
            .find(|l| l["step"] == name)
            .unwrap_or_else(|| panic!("no {name:?} step in the agent's output:\n{}", self.output))
    }
}

/// Runs agent.py against `as_uri` with a fresh `key`; kills it after
/// [`AGENT_DEADLINE`] so a hung agent fails the test instead of hanging it.
fn run_agent(as_uri: &str, key: &str) -> Run {
    let mut command = Command::new(python());
    command
        .arg(root().join("tests/interop/agent.py"))
        .args(["--as-uri", as_uri, "--key", key]);
    let finished = run_json_lines(command, AGENT_DEADLINE, "agent.py");
    Run {
        code: finished.code,
        lines: finished.lines,
        output: finished.output,
    }
}

/// The request the step sent was signed by the Python library under the
/// GNAP profile, for exactly the URI called, covering `covered`.
fn assert_signed(
    run: &Run,
    step: &str,
    method: &str,
    target_uri: &str,
    covered: &[&str],
    kid: &str,
) {
    let signed = &run.step(step)["signed"];
    assert_eq!(signed["method"], method, "{step}:\n{}", run.output);
    assert_eq!(signed["target_uri"], target_uri, "{step}:\n{}", run.output);
    assert_eq!(signed["covered"], json!(covered), "{step}:\n{}", run.output);
    assert_eq!(
        signed["params"],
        json!(["created", "keyid", "nonce", "tag"]),
        "{step}: no alg, keyid, created, nonce, tag:\n{}",
        run.output
    );
    assert_eq!(signed["tag"], "gnap", "{step}:\n{}", run.output);
    assert_eq!(
        signed["keyid"], kid,
        "{step}: keyid is the JWK kid:\n{}",
        run.output
    );
}

/// Starts a dev-mode server, runs the agent with a fresh `key` and checks
/// every step it reports, then stops the server cleanly.
fn agent_round_trip(key: &str, kty: &str, crv: &str, alg: &str) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--dev"]);
    let endpoint = server.grant_endpoint.clone();
    let run = run_agent(&endpoint, key);
    assert_eq!(run.code, Some(0), "agent.py failed:\n{}", run.output);
    let steps: Vec<&str> = run
        .lines
        .iter()
        .map(|l| l["step"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(steps, STEPS, "steps:\n{}", run.output);
    assert!(
        run.lines.iter().all(|l| l["ok"] == true),
        "a step did not match:\n{}",
        run.output
    );

    let generated = run.step("key");
    assert_eq!(
        (&generated["kty"], &generated["crv"], &generated["alg"]),
        (&json!(kty), &json!(crv), &json!(alg)),
        "{}",
        run.output
    );
    let kid = generated["kid"].as_str().unwrap();

    let discovery = run.step("discovery");
    assert_eq!(discovery["grant_request_endpoint"], endpoint.as_str());
    assert_eq!(
        discovery["key_proofs_supported"],
        json!(["httpsig", "jwsd", "jws"])
    );

    let grant = run.step("grant");
    assert_eq!(grant["status"], 200);
    assert_eq!(grant["access"], json!(["mcp:github"]));
    let manage_uri = grant["manage_uri"].as_str().unwrap();
    let continue_uri = grant["continue_uri"].as_str().unwrap();
    assert!(
        manage_uri.starts_with(&format!("{}/gnap/token/", server.base())),
        "{manage_uri}"
    );
    assert!(
        continue_uri.starts_with(&format!("{}/gnap/continue/", server.base())),
        "{continue_uri}"
    );
    assert_signed(
        &run,
        "grant",
        "POST",
        &endpoint,
        &["@method", "@target-uri", "content-digest"],
        kid,
    );

    let rotate = run.step("rotate");
    assert_eq!(
        (&rotate["status"], &rotate["new_value"]),
        (&json!(200), &json!(true)),
        "{}",
        run.output
    );
    assert_eq!(rotate["access"], json!(["mcp:github"]));
    let with_token = ["@method", "@target-uri", "authorization"];
    assert_signed(&run, "rotate", "POST", manage_uri, &with_token, kid);

    assert_eq!(run.step("revoke")["status"], 204);
    assert_signed(&run, "revoke", "DELETE", manage_uri, &with_token, kid);
    assert_eq!(run.step("revoke-again")["status"], 204);
    assert_signed(&run, "revoke-again", "DELETE", manage_uri, &with_token, kid);

    let refused = run.step("rotate-revoked");
    assert_eq!(
        (&refused["status"], &refused["error_code"]),
        (&json!(400), &json!("invalid_rotation")),
        "{}",
        run.output
    );
    assert_signed(&run, "rotate-revoked", "POST", manage_uri, &with_token, kid);

    assert_eq!(run.step("wait")["wait"], 5);
    assert_eq!(run.step("delete-grant")["status"], 204);
    assert_signed(
        &run,
        "delete-grant",
        "DELETE",
        continue_uri,
        &with_token,
        kid,
    );

    assert_eq!(
        server.stop(),
        Some(0),
        "SIGTERM must end the server cleanly"
    );
}

#[test]
fn the_python_agent_with_ed25519_gets_rotates_revokes_token_and_deletes_grant() {
    agent_round_trip("ed25519", "OKP", "Ed25519", "EdDSA");
}

#[test]
fn the_python_agent_with_p256_gets_rotates_revokes_token_and_deletes_grant() {
    agent_round_trip("p256", "EC", "P-256", "ES256");
}

/// The agent's exit code means something: when the AS refuses the grant
/// (no `--dev`, no allowlist: default deny), it exits 1 and names the step.
#[test]
fn the_python_agent_exits_1_naming_the_failed_step_when_the_grant_is_denied() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let run = run_agent(&server.grant_endpoint, "ed25519");
    assert_eq!(run.code, Some(1), "{}", run.output);
    let last = run
        .lines
        .last()
        .unwrap_or_else(|| panic!("no output:\n{}", run.output));
    assert_eq!(
        (&last["step"], &last["ok"]),
        (&json!("grant"), &json!(false)),
        "{}",
        run.output
    );
    let error = last["error"].as_str().unwrap();
    assert!(
        error.contains("HTTP 403") && error.contains("request_denied"),
        "{error}"
    );
    assert!(run.output.contains("step 'grant' failed"), "{}", run.output);
    assert!(
        !run.lines.iter().any(|l| l["step"] == "done"),
        "{}",
        run.output
    );
    assert_eq!(server.stop(), Some(0));
}
