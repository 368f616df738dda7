//! RFC 7009 revocation by a `private_key_jwt` client (RFC 7523 §2.2): the
//! revocation endpoint authenticates it as the token endpoint does (§2.1),
//! by a fresh client assertion whose `jti` is spent once across both, and
//! a revoked token is refused by the gateway and inactive to introspection.

use base64::Engine as _;
use gnapd::proto::httpsig::Algorithm;
use gnapd::proto::jwk::SigningKey;
use serde_json::{Value, json};

use super::headless::{ASSERTION_TYPE, client_assertion, gateway_call, jwt, now, post_json};
use super::*;

/// The resource server allowed to introspect, and its secret.
const INTROSPECTOR: &str = "rs1";
const INTROSPECTOR_SECRET: &str = "rs-secret-0123456789";

/// gnapd in `--dev` (open registration, every grant approved) with one
/// introspecting resource server.
fn start_with_introspector(dir: &Path) -> Server {
    let hash: String = sha2::Sha256::digest(INTROSPECTOR_SECRET.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    start_with(
        dir,
        &["--dev"],
        &format!(
            "[[oauth_introspector]]\nclient_id = \"{INTROSPECTOR}\"\nclient_secret_sha256 = \"{hash}\"\n"
        ),
    )
}

/// Registers a headless `client_credentials` client with `key`'s public
/// JWK; its client_id.
fn register(server: &Server, key: &SigningKey) -> String {
    let registered = post_json(
        server,
        "/oauth/register",
        &json!({
            "client_name": "revoking agent",
            "redirect_uris": [],
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [key.verifying_key().public_jwk().unwrap()]},
        }),
    );
    assert_eq!(registered.status, 201, "{}", registered.text());
    registered.json()["client_id"].as_str().unwrap().to_owned()
}

/// A `client_credentials` token for `mcp:github` by `assertion`.
fn token_by(server: &Server, assertion: &str) -> String {
    let github = resource(server, "github");
    let answer = token(
        server,
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
            ("scope", "mcp:github"),
            ("resource", github.as_str()),
        ],
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()["access_token"].as_str().unwrap().to_owned()
}

/// A client assertion of `client_id` signed by `key` for `audience`.
fn assertion_for(key: &SigningKey, client_id: &str, audience: &str) -> String {
    jwt(
        key,
        "JWT",
        None,
        &json!({
            "iss": client_id, "sub": client_id, "aud": audience,
            "iat": now(), "exp": now() + 60,
            "jti": uuid::Uuid::new_v4().to_string(),
        }),
    )
}

/// A revocation of `token` authenticated by `assertion`, naming
/// `client_id` when given.
fn revoke_asserted(
    server: &Server,
    client_id: Option<&str>,
    assertion: &str,
    token: &str,
) -> Answer {
    let mut fields = vec![
        ("token", token),
        ("token_type_hint", "access_token"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion),
    ];
    if let Some(id) = client_id {
        fields.push(("client_id", id));
    }
    post_form(server, &format!("{}/oauth/revoke", server.base()), &fields)
}

/// What introspection says of `token`.
fn introspect(server: &Server, token: &str) -> Value {
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{INTROSPECTOR}:{INTROSPECTOR_SECRET}"));
    let mut request = HttpRequest::new("POST", format!("{}/oauth/introspect", server.base()));
    request
        .fields
        .append("authorization", format!("Basic {basic}").into_bytes());
    request.fields.append(
        "content-type",
        b"application/x-www-form-urlencoded".to_vec(),
    );
    request.body = format!("token={}", encode(token)).into_bytes();
    let answer = send(server.addr, &request);
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()
}

/// Asserts a 401 `invalid_client` with no HTTP Basic challenge (none was
/// tried, RFC 6749 §5.2).
#[track_caller]
fn assert_invalid_client(answer: &Answer) {
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert_eq!(oauth_error(answer), "invalid_client");
    assert_eq!(answer.header("www-authenticate"), None);
}

#[test]
fn a_private_key_jwt_client_revokes_its_access_token_and_the_gateway_and_introspection_then_refuse_it()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_introspector(dir.path());
    let key = SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
    let client_id = register(&server, &key);
    let access = token_by(&server, &client_assertion(&server, &key, &client_id));
    assert_ne!(gateway_call(&server, "github", &access).status, 401);
    assert_eq!(introspect(&server, &access)["active"], true);

    // A fresh assertion for the token endpoint (RFC 7523 §3: it names the
    // AS), naming the client only in the assertion.
    let assertion = client_assertion(&server, &key, &client_id);
    let revoked = revoke_asserted(&server, None, &assertion, &access);
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    assert_eq!(revoked.header("cache-control"), Some("no-store"));
    assert!(revoked.body.is_empty());

    assert_eq!(gateway_call(&server, "github", &access).status, 401);
    assert_eq!(introspect(&server, &access), json!({"active": false}));

    // The issuer identifier names the AS too; revoking again is 200.
    let by_issuer = assertion_for(&key, &client_id, &server.base());
    let again = revoke_asserted(&server, Some(&client_id), &by_issuer, &access);
    assert_eq!(again.status, 200, "{}", again.text());
}

#[test]
fn a_replayed_client_assertion_jti_at_the_revocation_endpoint_is_invalid_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--dev"]);
    let key = SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
    let client_id = register(&server, &key);
    let spent = client_assertion(&server, &key, &client_id);
    let access = token_by(&server, &spent);

    // The token request's assertion: its jti is spent at the AS, whichever
    // endpoint it is shown to next.
    assert_invalid_client(&revoke_asserted(&server, Some(&client_id), &spent, &access));
    // A revocation's assertion, shown twice: refused the second time.
    let other = token_by(&server, &client_assertion(&server, &key, &client_id));
    let once = client_assertion(&server, &key, &client_id);
    let first = revoke_asserted(&server, Some(&client_id), &once, &other);
    assert_eq!(first.status, 200, "{}", first.text());
    assert_invalid_client(&revoke_asserted(&server, Some(&client_id), &once, &access));
    // No assertion at all: a private_key_jwt client is not a public one.
    let bare = post_form(
        &server,
        &format!("{}/oauth/revoke", server.base()),
        &[
            ("client_id", client_id.as_str()),
            ("token", access.as_str()),
        ],
    );
    assert_invalid_client(&bare);
    // An assertion without its type, or of another type.
    let fresh = client_assertion(&server, &key, &client_id);
    let untyped = post_form(
        &server,
        &format!("{}/oauth/revoke", server.base()),
        &[
            ("client_id", client_id.as_str()),
            ("client_assertion", fresh.as_str()),
            ("token", access.as_str()),
        ],
    );
    assert_invalid_client(&untyped);
    // An assertion beside a secret: one method per request (RFC 6749 §2.3).
    let fresh = client_assertion(&server, &key, &client_id);
    let both = post_form(
        &server,
        &format!("{}/oauth/revoke", server.base()),
        &[
            ("client_id", client_id.as_str()),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", fresh.as_str()),
            ("client_secret", "guess"),
            ("token", access.as_str()),
        ],
    );
    assert_eq!(oauth_error(&both), "invalid_request", "{}", both.text());

    // None of the refused requests revoked anything.
    assert_ne!(gateway_call(&server, "github", &access).status, 401);
}

#[test]
fn an_assertion_by_another_key_for_another_client_or_audience_cannot_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--dev"]);
    let key = SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
    let client_id = register(&server, &key);
    let other_key = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let other_id = register(&server, &other_key);
    let access = token_by(&server, &client_assertion(&server, &key, &client_id));
    let token_endpoint = format!("{}/oauth/token", server.base());

    for (what, named, assertion) in [
        (
            "signed by a key the client did not register",
            Some(client_id.as_str()),
            assertion_for(&other_key, &client_id, &token_endpoint),
        ),
        (
            "the other client's own assertion, naming this client",
            Some(client_id.as_str()),
            assertion_for(&other_key, &other_id, &token_endpoint),
        ),
        (
            "this client's key, claiming the other client",
            None,
            assertion_for(&key, &other_id, &token_endpoint),
        ),
        (
            "for another authorization server",
            Some(client_id.as_str()),
            assertion_for(&key, &client_id, "https://other-as.example/oauth/token"),
        ),
        (
            // The audiences are the token endpoint's: the AS's issuer or
            // token endpoint URL, not each endpoint's own URL.
            "for the revocation endpoint's URL",
            Some(client_id.as_str()),
            assertion_for(&key, &client_id, &format!("{}/oauth/revoke", server.base())),
        ),
    ] {
        let answer = revoke_asserted(&server, named, &assertion, &access);
        assert_eq!(answer.status, 401, "{what}: {}", answer.text());
        assert_eq!(oauth_error(&answer), "invalid_client", "{what}");
    }
    // The other client, well authenticated, may not revoke this one's
    // token (RFC 7009 §2.1).
    let foreign = revoke_asserted(
        &server,
        Some(&other_id),
        &assertion_for(&other_key, &other_id, &token_endpoint),
        &access,
    );
    assert_eq!(
        oauth_error(&foreign),
        "unauthorized_client",
        "{}",
        foreign.text()
    );

    assert_ne!(gateway_call(&server, "github", &access).status, 401);
}
