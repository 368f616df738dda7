//! OAuth access tokens through the gateway over real HTTP: `gnapd serve`
//! on a real sled data dir seeded with OAuth token records before it
//! starts, in front of the Python SDK upstream (tests/interop/mcp_upstream.py),
//! which logs the headers of every request it receives.

use std::path::{Path, PathBuf};

use gnapd::clock::{Clock as _, SystemClock};
use gnapd::proto::httpsig::{Algorithm, HttpRequest};
use gnapd::proto::jwk::SigningKey;
use gnapd::proto::oauth::dpop;
use gnapd::store::Store as _;
use gnapd::store::sled::SledStore;
use serde_json::{Value, json};

use super::{Minted, mint};
use crate::gateway_http::{VERSION, rpc};
use crate::support::http_client::{Answer, send};
use crate::support::mcp_upstream::Upstream;
use crate::support::server::{Serve, Server};
use crate::support::store_fixture::FOREVER;

pub(super) const SECRET: &str = "UPSTREAM-SECRET";
/// The configured public URL: the resource identifiers and DPoP `htu`s
/// are built on it, whatever address the server is bound to.
pub(super) const PUBLIC: &str = "https://gw.example";

pub(super) fn gw(upstream: &str) -> String {
    format!("{PUBLIC}/mcp/{upstream}")
}

pub(super) fn now() -> i64 {
    SystemClock.now()
}

/// A private data dir holding `minted`'s records, each token mapped to
/// github's enterprise-held credential set as the AS maps it at approval.
fn seed(dir: &Path, minted: &[&Minted]) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    let mut perms = std::fs::metadata(&data).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o700);
    std::fs::set_permissions(&data, perms).unwrap();
    let store = SledStore::open(&data.join("store")).unwrap();
    for m in minted {
        let mut tokens = m.tokens.clone();
        for (_, record) in &mut tokens {
            record.credential_sets = vec![("github".into(), "enterprise:github".into())];
        }
        store.create_grant(&m.grant, &tokens).unwrap();
    }
    data
}

/// gnapd in front of the upstream as `github` (with its own credential)
/// and `gitlab` (the same server, another resource).
fn serve(data: &Path, upstream: &Upstream) -> Server {
    let github = format!("github={}", upstream.url());
    let gitlab = format!("gitlab={}", upstream.url());
    let credential = format!("github=bearer:{SECRET}");
    Serve::new(data)
        .args(&[
            "--dev",
            "--public-url",
            PUBLIC,
            "--upstream",
            &github,
            "--upstream",
            &gitlab,
            "--upstream-credential",
            &credential,
        ])
        .start()
}

/// How a call proves its token.
pub(super) enum Proof<'a> {
    None,
    Bearer(&'a str),
    Dpop(&'a SigningKey, &'a str),
}

/// An MCP client on an OAuth token: one Streamable HTTP session.
pub(super) struct Client<'a> {
    server: &'a Server,
    upstream: &'a str,
    proof: Proof<'a>,
    pub(super) session: Option<String>,
    next_id: i64,
}

impl<'a> Client<'a> {
    pub(super) fn new(server: &'a Server, upstream: &'a str, proof: Proof<'a>) -> Self {
        Self {
            server,
            upstream,
            proof,
            session: None,
            next_id: 1,
        }
    }

    /// A request for `body`, with the token (and a fresh proof).
    pub(super) fn request(&self, body: &Value) -> HttpRequest {
        let uri = gw(self.upstream);
        let mut req = HttpRequest::new("POST", uri.clone());
        req.fields
            .append("Accept", "application/json, text/event-stream");
        req.fields.append("Content-Type", "application/json");
        req.body = serde_json::to_vec(body).unwrap();
        if let Some(session) = &self.session {
            req.fields.append("Mcp-Session-Id", session.as_str());
            req.fields.append("MCP-Protocol-Version", VERSION);
        }
        match &self.proof {
            Proof::None => {}
            Proof::Bearer(token) => req
                .fields
                .append("Authorization", format!("Bearer {token}")),
            Proof::Dpop(key, token) => {
                req.fields.append("Authorization", format!("DPoP {token}"));
                let jti = uuid::Uuid::new_v4().to_string();
                let proof = dpop::sign(key, "POST", &uri, Some(token), now(), &jti).unwrap();
                req.fields.append("DPoP", proof);
            }
        }
        req
    }

    pub(super) fn send(&self, req: &HttpRequest) -> Answer {
        send(self.server.addr, req)
    }

    pub(super) fn call(&mut self, method: &str, params: Value) -> Answer {
        let body =
            json!({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params});
        self.next_id += 1;
        self.send(&self.request(&body))
    }

    pub(super) fn initialize(&mut self) {
        let answer = self.call(
            "initialize",
            json!({"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "oauth-test", "version": "0"}}),
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
        self.session = answer.header("mcp-session-id").map(str::to_owned);
        assert!(self.session.is_some());
        let body = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let initialized = self.send(&self.request(&body));
        assert_eq!(initialized.status, 202, "{}", initialized.text());
    }
}

pub(super) fn tool(name: &str) -> Value {
    json!({"name": name, "arguments": {"query": "x", "name": "x"}})
}

/// The `WWW-Authenticate` lines of an answer.
pub(super) fn challenges(answer: &Answer) -> Vec<&str> {
    answer.header_lines("www-authenticate").collect()
}

/// The upstream saw its own credential on every request, and never the
/// agent's token, proof or scheme.
pub(super) fn assert_upstream_saw_only_its_credential(upstream: &Upstream, tokens: &[&str]) {
    let requests = upstream.requests();
    assert!(!requests.is_empty());
    for (_, headers) in &requests {
        let auth: Vec<_> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(auth, [format!("Bearer {SECRET}").as_str()], "{headers:?}");
        assert!(
            !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("dpop")),
            "{headers:?}"
        );
        for token in tokens {
            assert!(
                !headers.iter().any(|(_, v)| v.contains(token)),
                "the token went upstream: {headers:?}"
            );
        }
    }
}

#[test]
fn oauth_bearer_token_reaches_the_upstream_with_only_its_credential_its_tools_and_its_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(dir.path(), true);
    let whole = mint("mcp:github", &gw("github"), None, FOREVER);
    let one_tool = mint(
        "mcp:github:tool:search_issues",
        &gw("github"),
        None,
        FOREVER,
    );
    let data = seed(dir.path(), &[&whole, &one_tool]);
    let server = serve(&data, &upstream);

    let mut client = Client::new(&server, "github", Proof::Bearer(&whole.value));
    client.initialize();
    let listed = client.call("tools/list", json!({}));
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert!(rpc(&listed)["result"]["tools"].as_array().unwrap().len() >= 2);
    let called = client.call("tools/call", tool("search_issues"));
    assert_eq!(called.status, 200, "{}", called.text());
    assert!(rpc(&called)["result"].is_object(), "{}", called.text());

    // A token for one tool: tools/list shows it alone; another tool is 403
    // insufficient_scope naming every scope the call needs.
    let mut narrow = Client::new(&server, "github", Proof::Bearer(&one_tool.value));
    narrow.initialize();
    let listed = narrow.call("tools/list", json!({}));
    assert_eq!(listed.status, 200, "{}", listed.text());
    let names: Vec<_> = rpc(&listed)["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["search_issues"]);
    let before = upstream.requests().len();
    let refused = narrow.call("tools/call", tool("delete_repo"));
    assert_eq!(refused.status, 403, "{}", refused.text());
    let metadata = format!("{PUBLIC}/.well-known/oauth-protected-resource/mcp/github");
    assert_eq!(
        challenges(&refused),
        [format!(
            "Bearer error=\"insufficient_scope\", scope=\"mcp:github:tool:search_issues mcp:github:tool:delete_repo\", resource_metadata=\"{metadata}\", error_description=\"the access token does not grant this operation\""
        )]
    );
    assert_eq!(
        upstream.requests().len(),
        before,
        "a refused call went upstream"
    );
    // Another client's token cannot use this session (sessions belong to
    // the grant of a bearer token): 404, a new session is needed.
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": {}});
    let mut hijack = narrow.request(&body);
    hijack
        .fields
        .set("Mcp-Session-Id", client.session.clone().unwrap());
    assert_eq!(narrow.send(&hijack).status, 404);
    assert_eq!(upstream.requests().len(), before);

    assert_upstream_saw_only_its_credential(&upstream, &[&whole.value, &one_tool.value]);
}

#[test]
fn oauth_dpop_token_passes_with_fresh_proofs_and_refuses_others() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(dir.path(), true);
    let key = SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
    let bound = mint("mcp:github", &gw("github"), Some(&key), FOREVER);
    let data = seed(dir.path(), &[&bound]);
    let server = serve(&data, &upstream);

    let mut client = Client::new(&server, "github", Proof::Dpop(&key, &bound.value));
    client.initialize();
    let called = client.call("tools/call", tool("search_issues"));
    assert_eq!(called.status, 200, "{}", called.text());

    let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": {}});
    let before = upstream.requests().len();
    // The same request again, proof and all: replayed.
    let once = client.request(&body);
    assert_eq!(client.send(&once).status, 200);
    let replayed = client.send(&once);
    assert_eq!(replayed.status, 401, "{}", replayed.text());
    assert!(
        challenges(&replayed)
            .contains(&"DPoP algs=\"ES256 ES384 EdDSA PS512 RS256\", error=\"invalid_dpop_proof\""),
        "{:?}",
        replayed.headers
    );
    // A proof for another URL, or another method.
    for (method, uri) in [("POST", gw("gitlab")), ("GET", gw("github"))] {
        let mut req = client.request(&body);
        req.fields.remove("dpop");
        let proof = dpop::sign(&key, method, &uri, Some(&bound.value), now(), "x").unwrap();
        req.fields.append("DPoP", proof);
        let answer = client.send(&req);
        assert_eq!(answer.status, 401, "{method} {uri}: {}", answer.text());
    }
    // Presented as Bearer, the DPoP token is refused (RFC 9449 §7.2).
    let as_bearer = Client::new(&server, "github", Proof::Bearer(&bound.value));
    let mut req = as_bearer.request(&body);
    req.fields
        .append("Mcp-Session-Id", client.session.clone().unwrap());
    let answer = as_bearer.send(&req);
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert!(
        challenges(&answer)[0].ends_with(", error=\"invalid_token\""),
        "{:?}",
        answer.headers
    );
    assert_eq!(upstream.requests().len(), before + 1);

    assert_upstream_saw_only_its_credential(&upstream, &[&bound.value]);
}

#[test]
fn oauth_tokens_for_another_resource_expired_revoked_or_in_the_wrong_scheme_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(dir.path(), true);
    let good = mint("mcp:github", &gw("github"), None, FOREVER);
    let elsewhere = mint("mcp:github", &gw("gitlab"), None, FOREVER);
    let expired = mint("mcp:github", &gw("github"), None, now() - 1);
    // A GNAP token record (key-bound, no `oauth`).
    let fixture = crate::support::store_fixture::Fixture::new();
    let (mut gnap_grant, mut gnap_tokens) = fixture.grant(1, FOREVER);
    let gnap_value = format!("gnap-{}", uuid::Uuid::new_v4().simple());
    gnap_tokens[0].0 = gnapd::store::TokenHash::of(&gnap_value);
    gnap_grant.tokens = vec![gnap_tokens[0].0];
    let data = seed(dir.path(), &[&good, &elsewhere, &expired]);
    {
        let store = SledStore::open(&data.join("store")).unwrap();
        store.create_grant(&gnap_grant, &gnap_tokens).unwrap();
    }
    let server = serve(&data, &upstream);
    let metadata = format!("{PUBLIC}/.well-known/oauth-protected-resource/mcp/github");
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}});

    // No token: the three challenges, Bearer first, no error (RFC 6750 §3.1).
    let anonymous = Client::new(&server, "github", Proof::None);
    let answer = anonymous.send(&anonymous.request(&init));
    assert_eq!(answer.status, 401);
    assert_eq!(
        challenges(&answer),
        [
            format!("Bearer resource_metadata=\"{metadata}\", scope=\"mcp:github\""),
            "DPoP algs=\"ES256 ES384 EdDSA PS512 RS256\"".to_owned(),
            format!(
                "GNAP as_uri=\"{}\", access=\"mcp:github\"",
                server.grant_endpoint
            ),
        ]
    );

    let refused = |client: Client<'_>, why: &str| {
        let answer = client.send(&client.request(&init));
        assert_eq!(answer.status, 401, "{why}: {}", answer.text());
        let lines = challenges(&answer);
        assert_eq!(lines.len(), 3, "{why}: {lines:?}");
        assert!(lines[2].starts_with("GNAP "), "{why}: {lines:?}");
        lines[0].ends_with("error=\"invalid_token\"") || lines[1].contains("invalid_token")
    };
    // RFC 8707: a token for gitlab's URL, at github.
    assert!(refused(
        Client::new(&server, "github", Proof::Bearer(&elsewhere.value)),
        "audience"
    ));
    // And the github token at gitlab.
    assert!(refused(
        Client::new(&server, "gitlab", Proof::Bearer(&good.value)),
        "audience at gitlab"
    ));
    assert!(refused(
        Client::new(&server, "github", Proof::Bearer(&expired.value)),
        "expired"
    ));
    assert!(refused(
        Client::new(&server, "github", Proof::Bearer(&gnap_value)),
        "a GNAP token as Bearer"
    ));
    // An OAuth token as GNAP: the GNAP refusal, no OAuth error.
    let mut as_gnap = anonymous.request(&init);
    as_gnap
        .fields
        .append("Authorization", format!("GNAP {}", good.value));
    let answer = anonymous.send(&as_gnap);
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert!(!challenges(&answer)[0].contains("error="));
    assert!(
        upstream.requests().is_empty(),
        "a refused call went upstream"
    );

    // The good token works, until it is revoked.
    let mut client = Client::new(&server, "github", Proof::Bearer(&good.value));
    client.initialize();
    assert_eq!(server.stop(), Some(0));
    {
        let store = SledStore::open(&data.join("store")).unwrap();
        assert!(store.revoke_token(&good.manage).unwrap());
    }
    let server = serve(&data, &upstream);
    assert!(refused(
        Client::new(&server, "github", Proof::Bearer(&good.value)),
        "revoked"
    ));
}

/// `GET {base}{path}`.
fn get(server: &Server, path: &str) -> Answer {
    send(
        server.addr,
        &HttpRequest::new("GET", format!("{}{path}", server.base())),
    )
}

#[test]
fn oauth_protected_resource_metadata_at_the_path_suffixed_and_root_urls() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing needs to listen upstream: the documents are the gateway's.
    let one = Serve::new(&dir.path().join("one"))
        .args(&[
            "--dev",
            "--public-url",
            PUBLIC,
            "--upstream",
            "github=http://127.0.0.1:1/mcp",
        ])
        .start();
    for path in [
        "/.well-known/oauth-protected-resource/mcp/github",
        "/.well-known/oauth-protected-resource",
    ] {
        let answer = get(&one, path);
        assert_eq!(answer.status, 200, "{path}: {}", answer.text());
        assert!(
            answer
                .header("content-type")
                .is_some_and(|c| c.starts_with("application/json"))
        );
        assert!(answer.header("cache-control").is_some(), "{path}");
        let doc = answer.json();
        // Exactly the MCP URL an agent configures (RFC 9728 §3.3).
        assert_eq!(doc["resource"], gw("github"), "{path}");
        assert_eq!(doc["authorization_servers"], json!([PUBLIC]), "{path}");
        assert_eq!(doc["scopes_supported"], json!(["mcp:github"]), "{path}");
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
        assert_eq!(
            doc["dpop_signing_alg_values_supported"],
            json!(dpop::ALGS),
            "{path}"
        );
    }
    assert_eq!(
        get(&one, "/.well-known/oauth-protected-resource/mcp/gitlab").status,
        404
    );
    // Several upstreams: the root names none of them.
    let two = Serve::new(&dir.path().join("two"))
        .args(&[
            "--dev",
            "--public-url",
            PUBLIC,
            "--upstream",
            "github=http://127.0.0.1:1/mcp",
            "--upstream",
            "gitlab=http://127.0.0.1:1/mcp",
        ])
        .start();
    assert_eq!(
        get(&two, "/.well-known/oauth-protected-resource").status,
        404
    );
    let gitlab = get(&two, "/.well-known/oauth-protected-resource/mcp/gitlab");
    assert_eq!(gitlab.json()["resource"], gw("gitlab"));
}
