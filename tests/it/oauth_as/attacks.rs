//! The attacks the OAuth endpoints must refuse; each test fails if the
//! attack works.

use super::*;

/// An error redirected to the client: (error, state, iss).
fn redirected_error(answer: &Answer) -> (String, Option<String>, Option<String>) {
    assert_eq!(answer.status, 302, "{}", answer.text());
    let location = answer.header("location").unwrap();
    assert!(location.starts_with(&format!("{REDIRECT}?")), "{location}");
    (
        query_param(location, "error").unwrap_or_default(),
        query_param(location, "state"),
        query_param(location, "iss"),
    )
}

/// Shown, never redirected (RFC 6749 §4.1.2.1).
fn shown(answer: &Answer) -> String {
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(answer.header("location").is_none());
    oauth_error(answer)
}

#[test]
fn an_unregistered_redirect_uri_or_unknown_client_is_shown_never_redirected() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--dev"]);
    for (name, value) in [
        ("redirect_uri", "https://evil.example/callback"),
        ("redirect_uri", "http://127.0.0.1:53111/other"),
        ("redirect_uri", "http://localhost:53111/callback"),
        ("redirect_uri", "http://127.0.0.1:53111/callback#frag"),
        ("redirect_uri", ""),
        ("client_id", "nobody"),
        ("client_id", ""),
    ] {
        let answer = authorize_with(
            &server,
            &request_params(&server, "github", &[(name, value.into())]),
        );
        assert_eq!(shown(&answer), "invalid_request", "{name}={value}");
    }
    // The loopback exception is the port only: another port is the client.
    let answer = authorize_with(
        &server,
        &request_params(
            &server,
            "github",
            &[("redirect_uri", "http://127.0.0.1:40001/callback".into())],
        ),
    );
    assert_eq!(answer.status, 302);
    assert!(
        answer
            .header("location")
            .unwrap()
            .starts_with("http://127.0.0.1:40001/callback?code=")
    );
}

#[test]
fn missing_or_plain_pkce_and_a_bad_resource_go_back_as_errors_with_state_and_iss() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--dev"]);
    let base = server.base();
    for (extra, expected) in [
        (vec![("code_challenge", String::new())], "invalid_request"),
        (
            vec![("code_challenge_method", String::new())],
            "invalid_request",
        ),
        (
            vec![
                ("code_challenge_method", "plain".into()),
                ("code_challenge", VERIFIER.into()),
            ],
            "invalid_request",
        ),
        (
            vec![("response_type", "token".into())],
            "unsupported_response_type",
        ),
        (
            vec![("resource", format!("{base}/mcp/nope"))],
            "invalid_target",
        ),
        (
            vec![("resource", "https://elsewhere.example/mcp/github".into())],
            "invalid_target",
        ),
        (vec![("resource", String::new())], "invalid_target"),
        (vec![("scope", "mcp:slack".into())], "invalid_scope"),
        (vec![("scope", "admin".into())], "invalid_scope"),
    ] {
        let answer = authorize_with(&server, &request_params(&server, "github", &extra));
        let (error, state, iss) = redirected_error(&answer);
        assert_eq!(error, expected, "{extra:?}");
        assert_eq!(state.as_deref(), Some("st-123"));
        assert_eq!(iss.as_deref(), Some(base.as_str()));
    }
}

#[test]
fn a_wrong_or_missing_verifier_another_redirect_uri_or_resource_redeems_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--dev"]);
    let code = code_for(&server, "github");
    let attempt = |verifier: &str, redirect_uri: &str, resource_uri: &str| {
        let mut fields = vec![
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri),
            ("resource", resource_uri),
        ];
        if !verifier.is_empty() {
            fields.push(("code_verifier", verifier));
        }
        oauth_error(&token(&server, &fields))
    };
    let github = resource(&server, "github");
    let other = "A".repeat(43);
    assert_eq!(attempt(&other, REDIRECT, &github), "invalid_grant");
    assert_eq!(attempt("", REDIRECT, &github), "invalid_request");
    assert_eq!(
        attempt(VERIFIER, "http://127.0.0.1:9/callback", &github),
        "invalid_grant"
    );
    assert_eq!(
        attempt(VERIFIER, REDIRECT, &resource(&server, "slack")),
        "invalid_target"
    );
    // Another client cannot redeem it either.
    let stolen = token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", SECRET_CLIENT),
            ("client_secret", SECRET),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_eq!(oauth_error(&stolen), "invalid_grant");
    // None of that spent it: the client still can.
    assert_eq!(redeem(&server, &code, "github").status, 200);
}

#[test]
fn a_code_used_twice_is_refused_and_the_tokens_issued_from_it_are_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--dev"]);
    let code = code_for(&server, "github");
    let first = redeem(&server, &code, "github");
    assert_eq!(first.status, 200, "{}", first.text());
    let again = redeem(&server, &code, "github");
    assert_eq!(again.status, 400);
    assert_eq!(oauth_error(&again), "invalid_grant");
    // RFC 6749 §4.1.2: the tokens from the first use are gone.
    assert_eq!(
        oauth_error(&refresh(&server, &refresh_token_of(&first))),
        "invalid_grant"
    );
    // A made-up code for the same grant revokes nothing and redeems nothing.
    let (grant, _) = code.split_once('.').unwrap();
    let forged = redeem(&server, &format!("{grant}.forged"), "github");
    assert_eq!(oauth_error(&forged), "invalid_grant");
}

#[test]
fn a_refresh_token_used_twice_revokes_its_whole_family() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--dev"]);
    let first = redeem(&server, &code_for(&server, "github"), "github");
    let old = refresh_token_of(&first);
    let rotated = refresh(&server, &old);
    assert_eq!(rotated.status, 200);
    let newer = refresh_token_of(&rotated);
    // The old one again (a thief, or the client after the thief): refused,
    // and the family, the newest refresh token included, is revoked.
    assert_eq!(oauth_error(&refresh(&server, &old)), "invalid_grant");
    assert_eq!(oauth_error(&refresh(&server, &newer)), "invalid_grant");
    // A refresh token of another client is not this client's.
    let other = redeem(&server, &code_for(&server, "slack"), "slack");
    let stolen = token(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", SECRET_CLIENT),
            ("client_secret", SECRET),
            ("refresh_token", &refresh_token_of(&other)),
        ],
    );
    assert_eq!(oauth_error(&stolen), "invalid_grant");
    assert_eq!(refresh(&server, &refresh_token_of(&other)).status, 200);
}

#[test]
fn a_revoked_access_token_takes_its_refresh_token_with_it_and_others_cannot_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--dev"]);
    let tokens = redeem(&server, &code_for(&server, "github"), "github");
    let access = tokens.json()["access_token"].as_str().unwrap().to_owned();
    // Another client may not revoke it (RFC 7009 §2.1).
    let foreign = post_form(
        &server,
        &format!("{}/oauth/revoke", server.base()),
        &[
            ("client_id", SECRET_CLIENT),
            ("client_secret", SECRET),
            ("token", &access),
        ],
    );
    assert_eq!(oauth_error(&foreign), "unauthorized_client");
    assert_eq!(revoke(&server, &access).status, 200);
    assert_eq!(
        oauth_error(&refresh(&server, &refresh_token_of(&tokens))),
        "invalid_grant"
    );
    // Revoking again is still 200.
    assert_eq!(revoke(&server, &access).status, 200);
}

#[test]
fn repeated_parameters_wrong_methods_and_media_types_are_invalid_request_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--dev"]);
    // Repeated at the authorization endpoint: shown, not redirected (which
    // copy would a proxy in front have read?).
    let mut params = request_params(&server, "github", &[]);
    params.push(("state", "other".into()));
    assert_eq!(shown(&authorize_with(&server, &params)), "invalid_request");
    let mut params = request_params(&server, "github", &[]);
    params.push(("redirect_uri", "https://evil.example/cb".into()));
    assert_eq!(shown(&authorize_with(&server, &params)), "invalid_request");
    // Repeated at the token endpoint.
    let code = code_for(&server, "github");
    let twice = token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT),
            ("code", &code),
            ("code", "x.y"),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_eq!(twice.status, 400);
    assert_eq!(oauth_error(&twice), "invalid_request");
    // JSON instead of a form, GET instead of POST, an unknown grant type.
    let mut json = HttpRequest::new("POST", format!("{}/oauth/token", server.base()));
    json.fields
        .append("content-type", b"application/json".to_vec());
    json.body = br#"{"grant_type":"authorization_code"}"#.to_vec();
    assert_eq!(oauth_error(&send(server.addr, &json)), "invalid_request");
    let get = send(
        server.addr,
        &HttpRequest::new("GET", format!("{}/oauth/token", server.base())),
    );
    assert_eq!(get.status, 405);
    assert_eq!(oauth_error(&get), "invalid_request");
    let password = token(
        &server,
        &[("grant_type", "password"), ("client_id", CLIENT)],
    );
    assert_eq!(oauth_error(&password), "unsupported_grant_type");
    let nobody = token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "nobody"),
        ],
    );
    assert_eq!(nobody.status, 401);
    assert_eq!(oauth_error(&nobody), "invalid_client");
    // A body past the bound is refused, not read.
    let long = "x".repeat(64 * 1024);
    let huge = token(
        &server,
        &[("grant_type", "authorization_code"), ("pad", &long)],
    );
    assert_eq!(oauth_error(&huge), "invalid_request");
}

#[test]
fn one_address_flooding_the_oauth_endpoints_gets_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(
        dir.path(),
        &["--dev"],
        "grant_rate_per_address = { burst = 3, per_minute = 1 }",
    );
    for _ in 0..3 {
        assert_eq!(
            oauth_error(&token(&server, &[("grant_type", "x")])),
            "invalid_client"
        );
    }
    let limited = token(&server, &[("grant_type", "x")]);
    assert_eq!(limited.status, 429);
    assert_eq!(oauth_error(&limited), "temporarily_unavailable");
    assert!(limited.header("retry-after").is_some());
    let limited = authorize_with(&server, &request_params(&server, "github", &[]));
    assert_eq!(limited.status, 429);
    // Introspection too: its secrets cannot be guessed faster.
    let limited = post_form(
        &server,
        &format!("{}/oauth/introspect", server.base()),
        &[("token", "x")],
    );
    assert_eq!(limited.status, 429, "{}", limited.text());
    assert!(limited.header("retry-after").is_some());
    // The metadata stays served.
    let metadata = crate::interaction_pages::get(
        &server,
        &format!("{}/.well-known/oauth-authorization-server", server.base()),
    );
    assert_eq!(metadata.status, 200);
}
