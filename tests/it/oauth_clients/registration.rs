//! `POST /oauth/register` (RFC 7591 §3) on a real server: open in `--dev`,
//! closed otherwise; what it keeps; what it refuses.

use serde_json::{Value, json};

use super::{assert_oauth_error, post};
use crate::support::server::Serve;

fn register(
    server: &crate::support::server::Server,
    body: &Value,
) -> crate::support::http_client::Answer {
    post(
        server.addr,
        "/oauth/register",
        "application/json",
        body.to_string().as_bytes(),
        &[],
        None,
    )
}

#[test]
fn a_dcr_client_registers_in_dev_and_its_secret_is_shown_once_and_kept_only_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Serve::new(&data).dev().start();
    // A public client as mcp-remote registers itself.
    let public = register(
        &server,
        &json!({
            "client_name": "mcp-remote",
            "redirect_uris": ["http://localhost:3334/oauth/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "application_type": "native",
            "software_statement_unknown_member": {"ignored": true},
        }),
    );
    assert_eq!(public.status, 201, "{}", public.text());
    assert_eq!(public.header("cache-control"), Some("no-store"));
    let body = public.json();
    assert!(body["client_id"].as_str().unwrap().len() >= 32);
    assert!(body["client_id_issued_at"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(body["token_endpoint_auth_method"], "none");
    assert_eq!(
        body["redirect_uris"],
        json!(["http://localhost:3334/oauth/callback"])
    );
    assert_eq!(
        body["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert!(body.get("client_secret").is_none());
    assert!(body.get("software_statement_unknown_member").is_none());

    // A confidential client (RFC 7591's default method) gets a secret.
    let confidential = register(
        &server,
        &json!({"redirect_uris": ["https://app.example/cb"]}),
    );
    assert_eq!(confidential.status, 201, "{}", confidential.text());
    let body = confidential.json();
    assert_eq!(body["token_endpoint_auth_method"], "client_secret_basic");
    let secret = body["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 43);
    assert_eq!(body["client_secret_expires_at"], 0);
    let second = register(
        &server,
        &json!({"redirect_uris": ["https://app.example/cb"]}),
    );
    assert_ne!(
        second.json()["client_id"],
        body["client_id"],
        "identifiers are fresh"
    );

    // Stopped (flushed), the data dir holds the client but not its secret.
    assert_eq!(server.stop(), Some(0));
    let mut stored = Vec::new();
    for entry in walk(&data) {
        stored.extend(std::fs::read(entry).unwrap());
    }
    assert!(
        stored.windows(secret.len()).all(|w| w != secret.as_bytes()),
        "the client secret is on disk in clear"
    );
    let id = body["client_id"].as_str().unwrap();
    assert!(
        stored.windows(id.len()).any(|w| w == id.as_bytes()),
        "the client is kept"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn bad_redirect_uris_and_bad_metadata_are_refused_with_the_rfc_7591_codes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::new(dir.path()).dev().start();
    // Attack: a redirect to a plain-http host, or with a fragment, would
    // let a code travel in clear or to another page.
    for uri in [
        "http://evil.example/cb",
        "https://app.example/cb#x",
        "javascript:alert(1)",
    ] {
        let answer = register(
            &server,
            &json!({"redirect_uris": [uri], "token_endpoint_auth_method": "none"}),
        );
        assert_oauth_error(&answer, 400, "invalid_redirect_uri");
    }
    for body in [
        json!({"redirect_uris": ["https://app.example/cb"], "grant_types": ["implicit"]}),
        json!({"redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "http://169.254.169.254/keys"}),
        json!(["not", "an", "object"]),
    ] {
        assert_oauth_error(&register(&server, &body), 400, "invalid_client_metadata");
    }
    let form = post(
        server.addr,
        "/oauth/register",
        "application/x-www-form-urlencoded",
        b"redirect_uris=https://app.example/cb",
        &[],
        None,
    );
    assert_oauth_error(&form, 400, "invalid_client_metadata");
    // Only POST.
    let get = crate::support::http_client::send(
        server.addr,
        &gnapd::proto::httpsig::HttpRequest::new(
            "GET",
            format!("http://{}/oauth/register", server.addr),
        ),
    );
    assert_oauth_error(&get, 405, "invalid_request");
}

#[test]
fn one_address_cannot_register_without_bound() {
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::new(dir.path()).dev().start();
    let body =
        json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"});
    let from = |ip: &str| {
        post(
            server.addr,
            "/oauth/register",
            "application/json",
            body.to_string().as_bytes(),
            &[],
            Some(ip.parse().unwrap()),
        )
    };
    // Attack: a flood of registrations from one address, each a record.
    for _ in 0..10 {
        assert_eq!(from("127.0.0.7").status, 201);
    }
    let refused = from("127.0.0.7");
    assert_oauth_error(&refused, 429, "temporarily_unavailable");
    assert!(refused.header("retry-after").is_some());
    // Another address still registers.
    assert_eq!(from("127.0.0.8").status, 201);
}

#[test]
fn registration_is_closed_outside_dev_unless_configured_open() {
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::new(&dir.path().join("a")).start();
    let body =
        json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"});
    let closed = register(&server, &body);
    assert_oauth_error(&closed, 401, "invalid_token");
    assert!(
        closed
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer realm=\"gnapd\"")
    );
    drop(server);
    // The operator may open it, and close it in dev.
    let config = dir.path().join("open.toml");
    std::fs::write(&config, "oauth_registration = true\n").unwrap();
    let open = Serve::new(&dir.path().join("b")).config(&config).start();
    assert_eq!(register(&open, &body).status, 201);
    drop(open);
    std::fs::write(&config, "oauth_registration = false\n").unwrap();
    let dev_closed = Serve::new(&dir.path().join("c"))
        .dev()
        .config(&config)
        .start();
    assert_oauth_error(&register(&dev_closed, &body), 401, "invalid_token");
}

/// The registry's bounds in all and in time, on the in-memory store with a
/// pinned clock: past the cap a registration waits for lapsed ones, never
/// evicts a live client; an unused one lapses, a used one stays.
#[test]
fn registrations_are_bounded_in_all_and_lapse_unless_used() {
    use gnapd::authz::oauth_clients::{OAuthClients, Settings};
    let core = crate::support::core::Core::new(gnapd::authz::Policy::default());
    let mut settings = Settings::new(true);
    settings.max_registered = 2;
    settings.unused_lifetime = 100;
    settings.used_lifetime = 1_000;
    let clients = OAuthClients::new(&core.server, settings);
    let body =
        json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"})
            .to_string();
    let register = |source: &str| {
        let reply = clients.register(Some("application/json"), body.as_bytes(), Some(source));
        let json: Value = serde_json::from_slice(&reply.body).unwrap();
        (reply.status, json)
    };
    let (status, first) = register("192.0.2.1");
    assert_eq!(status, 201);
    let first = first["client_id"].as_str().unwrap().to_owned();
    assert_eq!(register("192.0.2.2").0, 201);
    // Attack: filling the store from many addresses.
    let (status, refused) = register("192.0.2.3");
    assert_eq!(
        (status, refused["error"].as_str()),
        (503, Some("temporarily_unavailable"))
    );
    // The first client is used: its registration moves ahead.
    core.clock.advance(60);
    clients.note_used(&first).unwrap();
    core.clock.advance(60);
    assert!(
        clients.registered(&first).unwrap().is_some(),
        "a used client stays"
    );
    // The unused second one lapsed: it is gone, and its place is free.
    assert_eq!(register("192.0.2.3").0, 201);
    assert_eq!(register("192.0.2.4").0, 503);
    core.clock.advance(1_000);
    assert!(
        clients.registered(&first).unwrap().is_none(),
        "unused since, it lapsed"
    );
}

#[test]
fn the_registration_and_endpoint_rates_are_configured_apart_and_still_refuse_a_flood() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gnapd.toml");
    std::fs::write(
        &config,
        "oauth_registration_rate_per_address = { burst = 3, per_minute = 1 }\n\
         oauth_rate_per_address = { burst = 6, per_minute = 1 }\n",
    )
    .unwrap();
    let server = Serve::new(&dir.path().join("data"))
        .dev()
        .config(&config)
        .start();
    let body =
        json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"});
    let from = |ip: &str| {
        post(
            server.addr,
            "/oauth/register",
            "application/json",
            body.to_string().as_bytes(),
            &[],
            Some(ip.parse().unwrap()),
        )
    };
    // Attack: a flood of registrations past the configured bound.
    for _ in 0..3 {
        assert_eq!(from("127.0.0.7").status, 201);
    }
    assert_oauth_error(&from("127.0.0.7"), 429, "temporarily_unavailable");
    // The endpoints' own bucket (registration is not in it) ends a flood
    // of token requests at its configured 6.
    let token = |ip: &str| {
        post(
            server.addr,
            "/oauth/token",
            "application/x-www-form-urlencoded",
            b"grant_type=x",
            &[],
            Some(ip.parse().unwrap()),
        )
    };
    for _ in 0..6 {
        assert_oauth_error(&token("127.0.0.7"), 401, "invalid_client");
    }
    let limited = token("127.0.0.7");
    assert_oauth_error(&limited, 429, "temporarily_unavailable");
    assert!(limited.header("retry-after").is_some());
    assert_eq!(from("127.0.0.8").status, 201);
}
