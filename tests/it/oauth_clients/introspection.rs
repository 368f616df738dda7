//! `POST /oauth/introspect` (RFC 7662) on a real server whose sled store
//! already holds OAuth tokens (written before it starts, as the token
//! endpoint would have).

use base64::Engine as _;
use gnapd::store::sled::SledStore;
use gnapd::store::{OAuthToken, Store as _, TokenHash};
use sha2::Digest as _;

use super::{assert_oauth_error, post};
use crate::support::server::Serve;
use crate::support::store_fixture::{FOREVER, Fixture};

const SECRET: &str = "rs-secret-0123456789";

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

#[test]
fn a_configured_resource_server_introspects_active_and_inactive_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let f = Fixture::new();
    let now = gnapd::clock::Clock::now(&gnapd::clock::SystemClock);
    {
        let store = SledStore::open(&data.join("store")).unwrap();
        let (mut grant, tokens) = f.grant(4, FOREVER);
        let names = ["bearer", "dpop", "expired", "gnap"];
        let mut rewritten = Vec::new();
        for ((_, mut record), name) in tokens.into_iter().zip(names) {
            record.issued_at = now - 10;
            if name != "gnap" {
                record.oauth = Some(OAuthToken {
                    client_id: "https://app.example/client.json".into(),
                    audience: "https://gw.example/mcp/github".into(),
                    dpop: name == "dpop",
                });
            }
            if name == "expired" {
                record.expires_at = now - 1;
            }
            rewritten.push((TokenHash::of(name), record));
        }
        grant.tokens = rewritten.iter().map(|(h, _)| *h).collect();
        store.create_grant(&grant, &rewritten).unwrap();
        store.close().unwrap();
    }
    let config = dir.path().join("gnapd.toml");
    let hash = hex(&sha2::Sha256::digest(SECRET.as_bytes()));
    std::fs::write(
        &config,
        format!(
            "[[oauth_introspector]]\nclient_id = \"rs1\"\nclient_secret_sha256 = \"{hash}\"\n\
             [[oauth_introspector]]\nclient_id = \"slack-rs\"\nclient_secret_sha256 = \"{hash}\"\n\
             audiences = [\"https://gw.example/mcp/slack\"]\n"
        ),
    )
    .unwrap();
    let server = Serve::new(&data).config(&config).start();
    let auth = basic("rs1", SECRET);
    let ask = |token: &str, authorization: Option<&str>| {
        let headers: Vec<(&str, &str)> = authorization
            .map(|a| ("authorization", a))
            .into_iter()
            .collect();
        post(
            server.addr,
            "/oauth/introspect",
            "application/x-www-form-urlencoded",
            format!("token={token}&token_type_hint=access_token").as_bytes(),
            &headers,
            None,
        )
    };

    let active = ask("bearer", Some(&auth));
    assert_eq!(active.status, 200, "{}", active.text());
    assert_eq!(active.header("cache-control"), Some("no-store"));
    let body = active.json();
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], "https://app.example/client.json");
    assert_eq!(body["aud"], "https://gw.example/mcp/github");
    assert_eq!(body["scope"], "mcp:github");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["exp"], FOREVER);
    assert_eq!(body["iat"], now - 10);
    assert!(body.get("cnf").is_none());

    let dpop = ask("dpop", Some(&auth)).json();
    assert_eq!(dpop["token_type"], "DPoP");
    assert_eq!(dpop["cnf"]["jkt"], f.key.thumbprint);

    // Expired, a GNAP token, and unknown (or revoked): inactive, and
    // nothing else said.
    for token in ["expired", "gnap", "never-issued"] {
        let answer = ask(token, Some(&auth));
        assert_eq!(answer.status, 200);
        assert_eq!(
            answer.json(),
            serde_json::json!({"active": false}),
            "{token}"
        );
    }

    // A resource server limited to other resources learns nothing of it
    // (RFC 7662 §2.2, §4).
    let elsewhere = ask("bearer", Some(&basic("slack-rs", SECRET)));
    assert_eq!(elsewhere.status, 200);
    assert_eq!(elsewhere.json(), serde_json::json!({"active": false}));

    // Attack: token scanning without credentials, or with wrong ones.
    for authorization in [
        None,
        Some(basic("rs1", "wrong")),
        Some(basic("rs2", SECRET)),
        Some("Bearer bearer".to_owned()),
    ] {
        let refused = ask("bearer", authorization.as_deref());
        assert_oauth_error(&refused, 401, "invalid_client");
        assert_eq!(
            refused.header("www-authenticate"),
            Some("Basic realm=\"gnapd\"")
        );
        assert!(!refused.text().contains("github"));
    }
    let missing = post(
        server.addr,
        "/oauth/introspect",
        "application/x-www-form-urlencoded",
        b"token_type_hint=access_token",
        &[("authorization", &auth)],
        None,
    );
    assert_oauth_error(&missing, 400, "invalid_request");
    let twice = post(
        server.addr,
        "/oauth/introspect",
        "application/x-www-form-urlencoded",
        b"token=gnap&token=bearer",
        &[("authorization", &auth)],
        None,
    );
    assert_oauth_error(&twice, 400, "invalid_request");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
