//! Headless OAuth clients over loopback: `client_credentials` with a
//! `private_key_jwt` assertion (SEP-1046) and the `jwt-bearer` grant of an
//! identity assertion (SEP-990), each ending in one access token and no
//! refresh token, and each refusing the attacks on its assertion.

use base64::Engine as _;
use gnapd::proto::httpsig::Algorithm;
use gnapd::proto::jwk::SigningKey;
use serde_json::{Value, json};

use super::*;

pub(super) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A compact JWS of `claims` by `key`, with `typ`.
pub(super) fn jwt(key: &SigningKey, typ: &str, kid: Option<&str>, claims: &Value) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut header = json!({"alg": key.algorithm().jws_name(), "typ": typ});
    if let Some(kid) = kid {
        header["kid"] = json!(kid);
    }
    let input = format!(
        "{}.{}",
        engine.encode(header.to_string()),
        engine.encode(claims.to_string())
    );
    let signature = key.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", engine.encode(signature))
}

/// A `private_key_jwt` assertion of `client_id` for `server`'s token endpoint.
pub(super) fn client_assertion(server: &Server, key: &SigningKey, client_id: &str) -> String {
    jwt(
        key,
        "JWT",
        None,
        &json!({
            "iss": client_id, "sub": client_id,
            "aud": format!("{}/oauth/token", server.base()),
            "iat": now(), "exp": now() + 60,
            "jti": uuid::Uuid::new_v4().to_string(),
        }),
    )
}

pub(super) const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[test]
fn a_headless_client_gets_a_client_credentials_token_once_per_assertion_and_no_refresh_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--dev"]);
    let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let registered = post_json(
        &server,
        "/oauth/register",
        &json!({
            "client_name": "nightly job",
            "redirect_uris": [],
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [key.verifying_key().public_jwk().unwrap()]},
        }),
    );
    assert_eq!(registered.status, 201, "{}", registered.text());
    let client_id = registered.json()["client_id"].as_str().unwrap().to_owned();
    let github = resource(&server, "github");

    let assertion = client_assertion(&server, &key, &client_id);
    let fields = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion.as_str()),
        ("scope", "mcp:github"),
        ("resource", github.as_str()),
    ];
    let answer = token(&server, &fields);
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "mcp:github");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let access = body["access_token"].as_str().unwrap().to_owned();

    // The same assertion again: its jti is spent.
    let replayed = token(&server, &fields);
    assert_eq!(replayed.status, 401, "{}", replayed.text());
    assert_eq!(oauth_error(&replayed), "invalid_client");
    // An assertion beside a secret: one method per request (RFC 6749 §2.3).
    let fresh = client_assertion(&server, &key, &client_id);
    let both = token(
        &server,
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", fresh.as_str()),
            ("client_secret", "guess"),
        ],
    );
    assert_eq!(oauth_error(&both), "invalid_request", "{}", both.text());
    // Another key's assertion for this client: refused.
    let other = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let forged = client_assertion(&server, &other, &client_id);
    let answer = token(
        &server,
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", forged.as_str()),
        ],
    );
    assert_eq!(oauth_error(&answer), "invalid_client");

    // The token reaches its upstream only (audience), as a Bearer token.
    assert_ne!(gateway_call(&server, "github", &access).status, 401);
    assert_eq!(gateway_call(&server, "slack", &access).status, 401);
}

/// An ID-JAG naming neither a resource nor a scope: with exactly one
/// upstream it is for that one, whole, if a rule allows it.
#[test]
fn with_one_upstream_an_identity_assertion_naming_no_resource_is_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let idp = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let jwks = dir.path().join("idp-jwks.json");
    let mut public = idp.verifying_key().public_jwk().unwrap().clone();
    public["kid"] = json!("idp-1");
    std::fs::write(&jwks, json!({"keys": [public]}).to_string()).unwrap();
    let secret = b64::encode_url(&sha2::Sha256::digest(SECRET.as_bytes()));
    let config = dir.path().join("gnapd.toml");
    std::fs::write(
        &config,
        format!(
            r#"[[upstream]]
name = "github"
url = "http://127.0.0.1:9/mcp"
[[issuer]]
issuer = "https://idp.example.com"
audience = "gnapd"
jwks_file = "{}"
[[assertion_rule]]
issuer = "https://idp.example.com"
subjects = ["*@example.com"]
access = ["mcp:github"]
[[oauth_client]]
client_id = "{AGENT}"
redirect_uris = ["https://agent.example/cb"]
secret_sha256 = "{secret}"
grant_types = ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
"#,
            jwks.display()
        ),
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let assertion = jwt(
        &idp,
        "oauth-id-jag+jwt",
        Some("idp-1"),
        &json!({
            "iss": "https://idp.example.com", "sub": "alice@example.com",
            "aud": server.base(), "client_id": AGENT,
            "iat": now(), "exp": now() + 300,
            "jti": uuid::Uuid::new_v4().to_string(),
        }),
    );
    let answer = exchange(&server, &assertion);
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["scope"], "mcp:github");
}

/// [`AGENT`] trading `assertion` for a token (the jwt-bearer grant, HTTP
/// Basic with its secret).
fn exchange(server: &Server, assertion: &str) -> Answer {
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{AGENT}:{}", encode(SECRET)));
    let mut request = HttpRequest::new("POST", format!("{}/oauth/token", server.base()));
    request
        .fields
        .append("authorization", format!("Basic {basic}").into_bytes());
    request.fields.append(
        "content-type",
        b"application/x-www-form-urlencoded".to_vec(),
    );
    request.body = format!(
        "grant_type={}&assertion={}",
        encode("urn:ietf:params:oauth:grant-type:jwt-bearer"),
        encode(assertion)
    )
    .into_bytes();
    send(server.addr, &request)
}

/// The confidential client an IdP's assertions are issued to.
const AGENT: &str = "enterprise-agent";

/// gnapd trusting one IdP, with rules for its users, and [`AGENT`].
fn start_with_idp(dir: &Path, idp: &SigningKey) -> Server {
    let secret = b64::encode_url(&sha2::Sha256::digest(SECRET.as_bytes()));
    let jwks = dir.join("idp-jwks.json");
    let mut public = idp.verifying_key().public_jwk().unwrap().clone();
    public["kid"] = json!("idp-1");
    std::fs::write(&jwks, json!({"keys": [public]}).to_string()).unwrap();
    start_with(
        dir,
        &[],
        &format!(
            r#"[[issuer]]
issuer = "https://idp.example.com"
audience = "gnapd"
jwks_file = "{}"
[[assertion_rule]]
issuer = "https://idp.example.com"
subjects = ["*@example.com"]
access = ["mcp:github"]
[[assertion_rule]]
issuer = "https://idp.example.com"
subjects = ["mallory@example.com"]
access = ["*"]
effect = "deny"
[[oauth_client]]
client_id = "{AGENT}"
redirect_uris = ["https://agent.example/cb"]
secret_sha256 = "{secret}"
grant_types = ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
"#,
            jwks.display()
        ),
    )
}

#[test]
fn an_identity_assertion_grant_is_decided_by_the_assertion_rules_once_for_its_client_only() {
    let dir = tempfile::tempdir().unwrap();
    let idp = SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
    let server = start_with_idp(dir.path(), &idp);
    let github = resource(&server, "github");
    let id_jag = |sub: &str, typ: &str, aud: &str, client: &str| {
        jwt(
            &idp,
            typ,
            Some("idp-1"),
            &json!({
                "iss": "https://idp.example.com", "sub": sub, "aud": aud,
                "client_id": client, "resource": github, "scope": "mcp:github",
                "iat": now(), "exp": now() + 300,
                "jti": uuid::Uuid::new_v4().to_string(),
            }),
        )
    };
    let exchange = |assertion: &str| exchange(&server, assertion);
    let issuer = server.base();

    let good = id_jag("alice@example.com", "oauth-id-jag+jwt", &issuer, AGENT);
    let answer = exchange(&good);
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["scope"], "mcp:github");
    assert!(body.get("refresh_token").is_none(), "{body}");
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert_ne!(gateway_call(&server, "github", &access).status, 401);

    // Each attack is invalid_grant: used twice; an ID token (another typ);
    // for another AS; issued to another client; a user a rule denies; a
    // user no rule names.
    for (what, assertion) in [
        ("replayed", good.clone()),
        (
            "an ID token",
            id_jag("alice@example.com", "JWT", &issuer, AGENT),
        ),
        (
            "another audience",
            id_jag(
                "alice@example.com",
                "oauth-id-jag+jwt",
                "https://other-as.example",
                AGENT,
            ),
        ),
        (
            "another client",
            id_jag(
                "alice@example.com",
                "oauth-id-jag+jwt",
                &issuer,
                SECRET_CLIENT,
            ),
        ),
        (
            "denied user",
            id_jag("mallory@example.com", "oauth-id-jag+jwt", &issuer, AGENT),
        ),
        (
            "unknown user",
            id_jag("eve@elsewhere.example", "oauth-id-jag+jwt", &issuer, AGENT),
        ),
    ] {
        let answer = exchange(&assertion);
        assert_eq!(answer.status, 400, "{what}: {}", answer.text());
        assert_eq!(oauth_error(&answer), "invalid_grant", "{what}");
    }
}

/// A JSON POST to `path`.
pub(super) fn post_json(server: &Server, path: &str, body: &Value) -> Answer {
    let mut request = HttpRequest::new("POST", format!("{}{path}", server.base()));
    request
        .fields
        .append("content-type", b"application/json".to_vec());
    request.body = body.to_string().into_bytes();
    send(server.addr, &request)
}

/// An MCP `ping` to `upstream` with `token` as a Bearer token. The test's
/// upstreams are unreachable: past the token check is a 502, not a 401.
pub(super) fn gateway_call(server: &Server, upstream: &str, token: &str) -> Answer {
    let mut request = HttpRequest::new("POST", resource(server, upstream));
    request
        .fields
        .append("authorization", format!("Bearer {token}").into_bytes());
    request
        .fields
        .append("content-type", b"application/json".to_vec());
    request
        .fields
        .append("accept", b"application/json, text/event-stream".to_vec());
    request.body = br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#.to_vec();
    send(server.addr, &request)
}
