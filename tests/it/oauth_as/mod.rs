//! The OAuth face's authorization server over loopback (issue 16): a real
//! `gnapd serve` on sled, and a scripted OAuth client speaking plain HTTP
//! (discovery, authorization, token, refresh, revocation), then the attacks
//! each endpoint must refuse.

use std::path::Path;

use gnapd::proto::b64;
use gnapd::proto::httpsig::HttpRequest;
use serde_json::Value;
use sha2::Digest as _;

use crate::interaction_pages::{encode, post_form};
use crate::support::http_client::{Answer, send};
use crate::support::server::Server;

mod attacks;
mod dpop;
mod flow;
mod headless;
mod revocation;

/// The public client of the tests: any loopback port, one path.
pub(crate) const CLIENT: &str = "test-cli";
/// Its redirect URI as registered (no port: RFC 8252 §7.3).
pub(crate) const REGISTERED: &str = "http://127.0.0.1/callback";
/// The redirect URI it sends (its listener's port).
pub(crate) const REDIRECT: &str = "http://127.0.0.1:53111/callback";
/// A confidential client and its secret.
pub(crate) const SECRET_CLIENT: &str = "test-secret";
pub(crate) const SECRET: &str = "correct horse battery staple";
/// The PKCE verifier of the tests.
pub(crate) const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// `S256` of `verifier`.
pub(crate) fn challenge(verifier: &str) -> String {
    b64::encode_url(&sha2::Sha256::digest(verifier.as_bytes()))
}

/// gnapd with two upstreams and the two clients; `flags` beside
/// `--config` (`--dev`, `--require-interaction`).
pub(crate) fn start(dir: &Path, flags: &[&str]) -> Server {
    start_with(dir, flags, "")
}

/// [`start`] with more configuration lines.
pub(crate) fn start_with(dir: &Path, flags: &[&str], extra: &str) -> Server {
    let config = dir.join("gnapd.toml");
    let secret = b64::encode_url(&sha2::Sha256::digest(SECRET.as_bytes()));
    std::fs::write(
        &config,
        format!(
            r#"poll_wait = 0
{extra}
[[upstream]]
name = "github"
url = "http://127.0.0.1:9/mcp"
[[upstream]]
name = "slack"
url = "http://127.0.0.1:9/mcp"
[[oauth_client]]
client_id = "{CLIENT}"
client_name = "Scripted <b>client</b>"
redirect_uris = ["{REGISTERED}"]
[[oauth_client]]
client_id = "{SECRET_CLIENT}"
redirect_uris = ["https://app.example/cb"]
secret_sha256 = "{secret}"
"#
        ),
    )
    .unwrap();
    let mut args: Vec<&str> = flags.to_vec();
    let path = config.to_str().unwrap().to_owned();
    args.extend(["--config", &path]);
    Server::start(&dir.join("data"), &args)
}

/// The resource (MCP URL) of `upstream`.
pub(crate) fn resource(server: &Server, upstream: &str) -> String {
    format!("{}/mcp/{upstream}", server.base())
}

/// An authorization request with these parameters (a browser's GET).
pub(crate) fn authorize(server: &Server, params: &[(&str, &str)]) -> Answer {
    let query: Vec<String> = params
        .iter()
        .map(|(n, v)| format!("{}={}", encode(n), encode(v)))
        .collect();
    send(
        server.addr,
        &HttpRequest::new(
            "GET",
            format!("{}/oauth/authorize?{}", server.base(), query.join("&")),
        ),
    )
}

/// The usual authorization request of the public client for `upstream`,
/// with `extra` parameters replacing or adding to it.
pub(crate) fn request_params(
    server: &Server,
    upstream: &str,
    extra: &[(&'static str, String)],
) -> Vec<(&'static str, String)> {
    let mut params: Vec<(&'static str, String)> = vec![
        ("response_type", "code".into()),
        ("client_id", CLIENT.into()),
        ("redirect_uri", REDIRECT.into()),
        ("code_challenge", challenge(VERIFIER)),
        ("code_challenge_method", "S256".into()),
        ("state", "st-123".into()),
        ("resource", resource(server, upstream)),
    ];
    for (name, value) in extra {
        params.retain(|(n, _)| n != name);
        if !value.is_empty() {
            params.push((name, value.clone()));
        }
    }
    params
}

/// Sends `params` as an authorization request.
pub(crate) fn authorize_with(server: &Server, params: &[(&'static str, String)]) -> Answer {
    let borrowed: Vec<(&str, &str)> = params.iter().map(|(n, v)| (*n, v.as_str())).collect();
    authorize(server, &borrowed)
}

/// The value of query parameter `name` in `url`, decoded.
pub(crate) fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

/// `--dev`: the authorization request redirects straight back; the code.
pub(crate) fn code_for(server: &Server, upstream: &str) -> String {
    let answer = authorize_with(server, &request_params(server, upstream, &[]));
    assert_eq!(answer.status, 302, "{}", answer.text());
    let location = answer.header("location").unwrap();
    query_param(location, "code").expect("a code")
}

/// A token request.
pub(crate) fn token(server: &Server, fields: &[(&str, &str)]) -> Answer {
    post_form(server, &format!("{}/oauth/token", server.base()), fields)
}

/// Redeems `code` as the public client would.
pub(crate) fn redeem(server: &Server, code: &str, upstream: &str) -> Answer {
    token(
        server,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("resource", &resource(server, upstream)),
        ],
    )
}

/// Refreshes with `refresh_token` as the public client.
pub(crate) fn refresh(server: &Server, refresh_token: &str) -> Answer {
    token(
        server,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT),
            ("refresh_token", refresh_token),
        ],
    )
}

/// A revocation request of the public client.
pub(crate) fn revoke(server: &Server, token: &str) -> Answer {
    post_form(
        server,
        &format!("{}/oauth/revoke", server.base()),
        &[("client_id", CLIENT), ("token", token)],
    )
}

/// The OAuth error of `answer`, asserting it is a §5.2 JSON object.
pub(crate) fn oauth_error(answer: &Answer) -> String {
    assert!(
        answer
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{}: {}",
        answer.status,
        answer.text()
    );
    let body: Value = answer.json();
    body["error"].as_str().unwrap_or_default().to_owned()
}

/// The `refresh_token` of a token response.
pub(crate) fn refresh_token_of(answer: &Answer) -> String {
    answer.json()["refresh_token"].as_str().unwrap().to_owned()
}
