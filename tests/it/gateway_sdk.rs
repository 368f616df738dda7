//! The MCP gateway driven end to end by an official MCP SDK client: the
//! Python `mcp` package's `ClientSession` over its Streamable HTTP client
//! (tests/interop/mcp_client.py), whose every HTTP request an `httpx2.Auth`
//! signs with `http-message-signatures` under the GNAP profile. The client
//! gets its own token from the AS with a fresh key, then talks to
//! `gnapd serve --dev --upstream github=…` in front of a real MCP server on
//! the same SDK (tests/interop/mcp_upstream.py), which logs the headers it
//! receives.
//!
//! Also: the gateway's RFC 9728 protected resource metadata.
//!
//! Both Python programs run from the virtualenv `scripts/test.sh` creates; a
//! missing Python or `mcp` package is a failure, never a skip.

use std::process::Command;
use std::time::Duration;

use gnapd::proto::httpsig::HttpRequest;
use serde_json::{Value, json};

use crate::support::http_client::send;
use crate::support::mcp_upstream::Upstream;
use crate::support::paths::{python, root};
use crate::support::run::run_json_lines;
use crate::support::server::Server;

pub const SECRET: &str = "UPSTREAM-SECRET";
/// Longest one SDK client run may take.
const CLIENT_DEADLINE: Duration = Duration::from_secs(90);
/// Every tool the upstream offers.
const ALL_TOOLS: [&str; 3] = ["search_issues", "delete_repo", "countdown"];

/// The upstream, and gnapd in front of it with an enterprise-held bearer
/// credential, in one temporary directory.
struct Fixture {
    upstream: Upstream,
    server: Server,
    dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(dir.path(), false);
    let github = format!("github={}", upstream.url());
    let credential = format!("github=bearer:{SECRET}");
    let server = Server::start(
        &dir.path().join("data"),
        &[
            "--dev",
            "--upstream",
            &github,
            "--upstream-credential",
            &credential,
        ],
    );
    Fixture {
        upstream,
        server,
        dir,
    }
}

/// One mcp_client.py run: exit code, its JSON lines, the token it was
/// issued, and all its output (for assertion messages).
struct Run {
    code: Option<i32>,
    lines: Vec<Value>,
    token: String,
    output: String,
}

impl Run {
    fn step(&self, name: &str) -> &Value {
        self.lines
            .iter()
            .find(|l| l["step"] == name)
            .unwrap_or_else(|| panic!("no {name:?} step in the client's output:\n{}", self.output))
    }

    fn assert_ok(&self) {
        assert_eq!(self.code, Some(0), "mcp_client.py failed:\n{}", self.output);
        for line in &self.lines {
            assert_eq!(line["ok"], true, "{line}\n{}", self.output);
        }
    }
}

/// Runs the SDK client against `fixture`'s gateway for upstream `github`,
/// asking for `access`; `extra` adds arguments. Killed after
/// [`CLIENT_DEADLINE`] so a hang fails the test instead of hanging it.
fn run_client(fixture: &Fixture, access: &Value, extra: &[&str]) -> Run {
    let token_file = fixture.dir.path().join(format!("token-{}", rand_suffix()));
    let gateway = format!("{}/mcp/github", fixture.server.base());
    let mut command = Command::new(python());
    command
        .arg(root().join("tests/interop/mcp_client.py"))
        .args(["--as-uri", &fixture.server.grant_endpoint])
        .args(["--gateway", &gateway])
        .args(["--access", &access.to_string()])
        .args([
            "--tool",
            "search_issues",
            "--tool-args",
            r#"{"query": "bug"}"#,
        ])
        .arg("--token-file")
        .arg(&token_file)
        .args(extra);
    let finished = run_json_lines(command, CLIENT_DEADLINE, "mcp_client.py");
    Run {
        code: finished.code,
        lines: finished.lines,
        token: std::fs::read_to_string(&token_file).unwrap_or_default(),
        output: finished.output,
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed).to_string()
}

fn search_only() -> Value {
    json!([{"type": "mcp", "identifier": "github", "tools": ["search_issues"]}])
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

/// The upstream saw the gateway's credential on every request, and never
/// the agent's token, signature or digest.
pub fn assert_upstream_clean(upstream: &Upstream, tokens: &[&str]) {
    let requests = upstream.requests();
    assert!(!requests.is_empty(), "nothing reached the upstream");
    for (method, headers) in &requests {
        let get = |name: &str| {
            headers
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            get("authorization"),
            [format!("Bearer {SECRET}").as_str()],
            "{method}: {headers:?}"
        );
        for name in ["signature", "signature-input", "content-digest"] {
            assert!(
                get(name).is_empty(),
                "{method}: {name} reached the upstream"
            );
        }
        for token in tokens {
            assert!(!token.is_empty());
            assert!(
                headers.iter().all(|(_, v)| !v.contains(token)),
                "{method}: the agent's GNAP token reached the upstream: {headers:?}"
            );
        }
        assert!(
            headers.iter().all(|(_, v)| !v.starts_with("GNAP ")),
            "{method}: a GNAP authorization reached the upstream"
        );
    }
}

#[test]
fn an_sdk_client_session_is_signed_filtered_and_swapped() {
    let fixture = fixture();
    let run = run_client(
        &fixture,
        &search_only(),
        &[
            "--mode",
            "handshake",
            "--key",
            "ed25519",
            "--denied-tool",
            "delete_repo",
            "--denied-args",
            r#"{"name": "x"}"#,
            "--expect-tools",
            r#"["search_issues"]"#,
        ],
    );
    run.assert_ok();
    assert_eq!(run.step("grant")["access"], search_only());
    let connect = run.step("connect");
    assert_eq!(connect["protocol_version"], "2025-11-25", "{connect}");
    assert_eq!(connect["server"], "gnapd-test-upstream");
    // tools/list as the SDK saw it: filtered down to the granted tool.
    assert_eq!(strings(&run.step("list_tools")["tools"]), ["search_issues"]);
    assert_eq!(
        strings(&run.step("call_tool")["text"]),
        ["found 1 issue for bug"]
    );
    let denied = run.step("denied_tool");
    assert_eq!(denied["code"], -32003, "{denied}");
    let done = run.step("done");
    // initialize, initialized, tools/list, two tools/call, the GET stream and
    // the closing DELETE: every one signed.
    assert!(done["signed"].as_u64().unwrap() >= 6, "{done}");
    assert_eq!(strings(&done["signed_methods"]), ["DELETE", "GET", "POST"]);
    assert_eq!(
        strings(&done["covered_mcp_headers"]),
        ["mcp-protocol-version", "mcp-session-id"]
    );

    // The same client with full access sees every tool: the filter above
    // is the gateway's, not the upstream's.
    let full = run_client(
        &fixture,
        &json!(["mcp:github"]),
        &["--expect-tools", &json!(ALL_TOOLS).to_string()],
    );
    full.assert_ok();
    assert_eq!(strings(&full.step("list_tools")["tools"]), ALL_TOOLS);

    assert_upstream_clean(&fixture.upstream, &[&run.token, &full.token]);
    // The sessions reached the upstream: the handshake, the GET stream, the
    // DELETE that ends the session.
    let methods: Vec<String> = fixture
        .upstream
        .requests()
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    for method in ["POST", "GET", "DELETE"] {
        assert!(
            methods.iter().any(|m| m == method),
            "no {method} reached the upstream: {methods:?}"
        );
    }
}

#[test]
fn an_sdk_client_on_the_modern_protocol_signs_routing_headers() {
    let fixture = fixture();
    let run = run_client(
        &fixture,
        &search_only(),
        &[
            "--mode",
            "auto",
            "--key",
            "p256",
            "--denied-tool",
            "delete_repo",
            "--denied-args",
            r#"{"name": "x"}"#,
            "--expect-tools",
            r#"["search_issues"]"#,
        ],
    );
    run.assert_ok();
    // The SDK probed server/discover and the upstream speaks 2026-07-28:
    // stateless, with Mcp-Method and Mcp-Name on the wire, both signed.
    let connect = run.step("connect");
    assert_eq!(connect["protocol_version"], "2026-07-28", "{connect}");
    assert_eq!(strings(&run.step("list_tools")["tools"]), ["search_issues"]);
    assert_eq!(run.step("denied_tool")["code"], -32003);
    let done = run.step("done");
    assert_eq!(
        strings(&done["covered_mcp_headers"]),
        ["mcp-method", "mcp-name", "mcp-protocol-version"],
        "{done}"
    );
    assert_upstream_clean(&fixture.upstream, &[&run.token]);
    // The routing headers reached the upstream unchanged.
    let requests = fixture.upstream.requests();
    assert!(
        requests.iter().any(|(_, h)| h
            .iter()
            .any(|(n, v)| n == "mcp-name" && v == "search_issues")),
        "{requests:?}"
    );
    // The ungranted tool never did.
    assert!(
        requests.iter().all(|(_, h)| h
            .iter()
            .all(|(n, v)| !(n == "mcp-name" && v == "delete_repo"))),
        "the ungranted call reached the upstream: {requests:?}"
    );
}

#[test]
fn an_sdk_client_fails_without_access_to_the_upstream() {
    let fixture = fixture();
    // A token for another upstream: the SDK's first call is refused (401/403),
    // and the client reports the failed step instead of exiting 0.
    let run = run_client(
        &fixture,
        &json!([{"type": "mcp", "identifier": "gitlab"}]),
        &["--mode", "handshake"],
    );
    assert_eq!(run.code, Some(1), "{}", run.output);
    let last = run.lines.last().unwrap();
    assert_eq!(last["ok"], false, "{}", run.output);
    assert_eq!(last["step"], "connect", "{}", run.output);
    assert!(
        last["error"]
            .as_str()
            .unwrap()
            .contains("grants no access to upstream `github`"),
        "{}",
        run.output
    );
    // Refused at the gateway: nothing reached the upstream.
    assert!(fixture.upstream.requests().is_empty());
}

#[test]
fn an_sdk_client_signing_with_another_key_is_refused() {
    let fixture = fixture();
    // The token is bound to the key of the grant request; the SDK's requests
    // are signed with another fresh key under the same kid: the gateway
    // answers 401 (the SDK surfaces the JSON-RPC error).
    let run = run_client(
        &fixture,
        &search_only(),
        &["--mode", "handshake", "--wrong-key"],
    );
    assert_eq!(run.code, Some(1), "{}", run.output);
    let last = run.lines.last().unwrap();
    assert_eq!(last["ok"], false, "{}", run.output);
    assert_eq!(last["step"], "connect", "{}", run.output);
    assert!(
        last["error"]
            .as_str()
            .unwrap()
            .contains("signature does not verify"),
        "{}",
        run.output
    );
    assert!(fixture.upstream.requests().is_empty());
}

/// `GET {public}/.well-known/oauth-protected-resource/mcp/{upstream}`.
fn metadata(server: &Server, method: &str, upstream: &str) -> crate::support::http_client::Answer {
    let uri = format!(
        "{}/.well-known/oauth-protected-resource/mcp/{upstream}",
        server.base()
    );
    send(server.addr, &HttpRequest::new(method, uri))
}

#[test]
fn gateway_protected_resource_metadata() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing needs to listen upstream: the document is the gateway's own.
    let server = Server::start(
        &dir.path().join("data"),
        &["--dev", "--upstream", "github=http://127.0.0.1:1/mcp"],
    );
    let answer = metadata(&server, "GET", "github");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(
        answer
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{:?}",
        answer.headers
    );
    let doc = answer.json();
    let resource = format!("{}/mcp/github", server.base());
    // RFC 9728 §2 members; §3.3: `resource` is the URL the client calls;
    // gnapd is its authorization server (issue 16's OAuth face).
    assert_eq!(doc["resource"], resource.as_str(), "{doc}");
    assert_eq!(
        doc["authorization_servers"],
        json!([server.base()]),
        "{doc}"
    );
    assert_eq!(doc["bearer_methods_supported"], json!(["header"]), "{doc}");
    assert!(doc["resource_name"].is_string(), "{doc}");
    // The GNAP extension members: what the 401 challenge names.
    assert_eq!(doc["gnap_as_uri"], server.grant_endpoint.as_str(), "{doc}");
    assert_eq!(doc["access"], "mcp:github", "{doc}");

    // The same AS and access as the gateway's own 401 (RFC 9635 §9.1).
    let challenge = send(server.addr, &HttpRequest::new("POST", resource));
    assert_eq!(challenge.status, 401);
    let header = challenge
        .header_lines("www-authenticate")
        .find(|c| c.starts_with("GNAP "))
        .unwrap();
    assert!(
        header.contains(&format!("as_uri=\"{}\"", server.grant_endpoint)),
        "{header}"
    );
    assert!(header.contains("access=\"mcp:github\""), "{header}");

    // An unknown upstream has no document; nor has a path below a known one.
    assert_eq!(metadata(&server, "GET", "gitlab").status, 404);
    assert_eq!(metadata(&server, "GET", "github/extra").status, 404);
    assert_eq!(metadata(&server, "GET", "").status, 404);
    // Only GET.
    assert_eq!(metadata(&server, "POST", "github").status, 404);
}
