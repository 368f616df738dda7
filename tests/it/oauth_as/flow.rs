//! What an OAuth client does, end to end: discovery, authorization
//! (`--dev` answers at once; otherwise a person on the consent page),
//! token, refresh, revocation.

use super::*;
use crate::interaction_pages::{consent_form, cookie_set, get, get_with_cookie, html};

#[test]
fn discovery_authorize_token_refresh_and_revoke_with_dev_approval() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--dev"]);
    let base = server.base();

    // RFC 8414 at both paths MCP clients try, issuer = the public URL.
    let metadata = get(
        &server,
        &format!("{base}/.well-known/oauth-authorization-server"),
    );
    assert_eq!(metadata.status, 200);
    assert!(
        metadata
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let doc = metadata.json();
    assert_eq!(doc["issuer"], base.as_str());
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{base}/oauth/authorize")
    );
    assert_eq!(doc["token_endpoint"], format!("{base}/oauth/token"));
    assert_eq!(doc["revocation_endpoint"], format!("{base}/oauth/revoke"));
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    assert_eq!(doc["client_id_metadata_document_supported"], true);
    assert_eq!(
        doc["grant_types_supported"],
        serde_json::json!([
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:jwt-bearer"
        ])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        serde_json::json!([
            "none",
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt"
        ])
    );
    // RFC 7009 §2.1: revocation authenticates clients as the token
    // endpoint does, private_key_jwt included.
    assert_eq!(
        doc["revocation_endpoint_auth_methods_supported"],
        serde_json::json!([
            "none",
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt"
        ])
    );
    // One algorithm list for the assertions (at the token and revocation
    // endpoints) and the token endpoint's and the gateway's DPoP proofs.
    let algs = serde_json::json!(["ES256", "ES384", "EdDSA", "PS512", "RS256"]);
    assert_eq!(
        doc["token_endpoint_auth_signing_alg_values_supported"],
        algs
    );
    assert_eq!(
        doc["revocation_endpoint_auth_signing_alg_values_supported"],
        algs
    );
    assert_eq!(doc["dpop_signing_alg_values_supported"], algs);
    assert_eq!(
        doc["scopes_supported"],
        serde_json::json!(["mcp:github", "mcp:slack"])
    );
    let openid = get(&server, &format!("{base}/.well-known/openid-configuration"));
    assert_eq!(openid.status, 200);
    assert_eq!(openid.json(), doc);

    // --dev: straight back to the client, with code, state and iss
    // (RFC 9207), on the port the client listens on (RFC 8252 §7.3).
    let answer = authorize_with(&server, &request_params(&server, "github", &[]));
    assert_eq!(answer.status, 302, "{}", answer.text());
    let location = answer.header("location").unwrap().to_owned();
    assert!(location.starts_with(&format!("{REDIRECT}?")), "{location}");
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-123"));
    assert_eq!(
        query_param(&location, "iss").as_deref(),
        Some(base.as_str())
    );
    let code = query_param(&location, "code").unwrap();

    let tokens = redeem(&server, &code, "github");
    assert_eq!(tokens.status, 200, "{}", tokens.text());
    assert_eq!(tokens.header("cache-control"), Some("no-store"));
    assert_eq!(tokens.header("pragma"), Some("no-cache"));
    let body = tokens.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "mcp:github");
    assert_eq!(body["expires_in"], 900);
    let access = body["access_token"].as_str().unwrap().to_owned();
    let first_refresh = refresh_token_of(&tokens);

    // Refresh rotates both values.
    let refreshed = refresh(&server, &first_refresh);
    assert_eq!(refreshed.status, 200, "{}", refreshed.text());
    assert_eq!(refreshed.header("cache-control"), Some("no-store"));
    let second_refresh = refresh_token_of(&refreshed);
    assert_ne!(second_refresh, first_refresh);
    assert_ne!(refreshed.json()["access_token"].as_str().unwrap(), access);
    assert_eq!(refreshed.json()["scope"], "mcp:github");

    // RFC 7009: an unknown token is 200 too; the refresh token revoked
    // goes with its grant.
    assert_eq!(revoke(&server, "never-issued").status, 200);
    let revoked = revoke(&server, &second_refresh);
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    assert_eq!(
        oauth_error(&refresh(&server, &second_refresh)),
        "invalid_grant"
    );
}

#[test]
fn a_request_without_scope_or_resource_gets_its_upstream_and_one_with_every_scope_its_resource() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--dev"]);
    // No scope (the conformance suite sends none): the whole upstream.
    let tokens = redeem(&server, &code_for(&server, "slack"), "slack");
    assert_eq!(tokens.json()["scope"], "mcp:slack", "{}", tokens.text());
    // No resource: the one upstream the scope names.
    let params = request_params(
        &server,
        "github",
        &[
            ("resource", String::new()),
            ("scope", "mcp:github:tool:search".into()),
        ],
    );
    let answer = authorize_with(&server, &params);
    let code = query_param(answer.header("location").unwrap(), "code").unwrap();
    let tokens = token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_eq!(
        tokens.json()["scope"],
        "mcp:github:tool:search",
        "{}",
        tokens.text()
    );
    // Every scope the metadata lists, with one resource (what clients do
    // when the challenge names none), trailing slash and all: that one.
    let params = request_params(
        &server,
        "github",
        &[
            ("scope", "mcp:slack mcp:github offline_access".into()),
            ("resource", format!("{}/", resource(&server, "github"))),
        ],
    );
    let answer = authorize_with(&server, &params);
    let code = query_param(answer.header("location").unwrap(), "code").unwrap();
    let tokens = redeem(&server, &code, "github");
    assert_eq!(tokens.json()["scope"], "mcp:github", "{}", tokens.text());
}

#[test]
fn without_dev_approval_the_consent_page_decides_and_sends_the_starting_browser_back_with_the_code()
{
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--dev", "--require-interaction"]);
    let answer = authorize_with(&server, &request_params(&server, "github", &[]));
    assert_eq!(answer.status, 302, "{}", answer.text());
    let link = answer.header("location").unwrap().to_owned();
    assert!(
        link.starts_with(&format!("{}/gnap/interact/", server.base())),
        "{link}"
    );

    // The page says who the client is, as its claim and as facts.
    let page = get(&server, &link);
    assert_eq!(page.status, 200);
    let browser = cookie_set(&page, "gnapd_browser").expect("the browser is named");
    let text = html(&page);
    assert!(
        text.contains(
            "Scripted &#60;b&#62;client&#60;/b&#62; <span class=\"unverified\">(unverified)</span>"
        ) || text.contains(
            "Scripted &lt;b&gt;client&lt;/b&gt; <span class=\"unverified\">(unverified)</span>"
        ),
        "{text}"
    );
    assert!(text.contains(&format!("<code>{CLIENT}</code>")), "{text}");
    assert!(text.contains("<code>127.0.0.1</code>"), "{text}");
    assert!(text.contains("pre-registered by this server"), "{text}");
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("form-action 'self' http://127.0.0.1:53111;")
    );

    // Another browser deciding is not sent to the client: the finish waits
    // for the one that started (as a GNAP redirect finish does).
    let form = consent_form(&server, &text);
    let elsewhere = form.submit_with_cookie(
        &server,
        "approve",
        |_, _| true,
        Some("gnapd_browser=someone-else"),
    );
    let elsewhere_location = elsewhere.header("location").unwrap_or_default().to_owned();
    assert!(
        !elsewhere_location.starts_with(REDIRECT),
        "{elsewhere_location}"
    );
    let collected = get_with_cookie(&server, &link, Some(&browser));
    assert_eq!(collected.status, 303, "{}", collected.text());
    let location = collected.header("location").unwrap().to_owned();
    assert!(location.starts_with(&format!("{REDIRECT}?")), "{location}");
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-123"));
    assert_eq!(
        query_param(&location, "iss").as_deref(),
        Some(server.base().as_str())
    );
    let code = query_param(&location, "code").unwrap();
    let tokens = redeem(&server, &code, "github");
    assert_eq!(tokens.status, 200, "{}", tokens.text());
    assert_eq!(tokens.json()["scope"], "mcp:github");
}

#[test]
fn a_denial_on_the_consent_page_is_access_denied_at_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--dev", "--require-interaction"]);
    let answer = authorize_with(&server, &request_params(&server, "github", &[]));
    let link = answer.header("location").unwrap().to_owned();
    let page = get(&server, &link);
    let browser = cookie_set(&page, "gnapd_browser").unwrap();
    let form = consent_form(&server, &html(&page));
    let denied = form.submit_with_cookie(&server, "deny", |_, _| true, Some(&browser));
    assert_eq!(denied.status, 303, "{}", denied.text());
    let location = denied.header("location").unwrap();
    assert!(location.starts_with(&format!("{REDIRECT}?")), "{location}");
    assert_eq!(
        query_param(location, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(query_param(location, "state").as_deref(), Some("st-123"));
    assert_eq!(
        query_param(location, "iss").as_deref(),
        Some(server.base().as_str())
    );
}

#[test]
fn a_confidential_client_authenticates_and_a_wrong_secret_is_401_with_a_basic_challenge() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--dev"]);
    let basic = |secret: &str| {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{SECRET_CLIENT}:{}", encode(secret)))
        )
    };
    let code_request = request_params(
        &server,
        "github",
        &[
            ("client_id", SECRET_CLIENT.into()),
            ("redirect_uri", "https://app.example/cb".into()),
        ],
    );
    let answer = authorize_with(&server, &code_request);
    let code = query_param(answer.header("location").unwrap(), "code").unwrap();
    let send_token = |authorization: &str| {
        let mut request = HttpRequest::new("POST", format!("{}/oauth/token", server.base()));
        request.fields.append(
            "content-type",
            b"application/x-www-form-urlencoded".to_vec(),
        );
        request
            .fields
            .append("authorization", authorization.as_bytes().to_vec());
        request.body = format!(
            "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={VERIFIER}",
            encode(&code),
            encode("https://app.example/cb")
        )
        .into_bytes();
        send(server.addr, &request)
    };
    let wrong = send_token(&basic("wrong"));
    assert_eq!(wrong.status, 401);
    assert_eq!(oauth_error(&wrong), "invalid_client");
    assert_eq!(
        wrong.header("www-authenticate"),
        Some("Basic realm=\"gnapd\"")
    );
    let right = send_token(&basic(SECRET));
    assert_eq!(right.status, 200, "{}", right.text());
}

#[test]
fn an_authorization_request_may_come_as_a_posted_form_and_is_answered_with_303() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--dev"]);
    let params = request_params(&server, "github", &[]);
    let fields: Vec<(&str, &str)> = params.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let answer = post_form(
        &server,
        &format!("{}/oauth/authorize", server.base()),
        &fields,
    );
    // 303: the browser does not post the form on to the client.
    assert_eq!(answer.status, 303, "{}", answer.text());
    let location = answer.header("location").unwrap();
    let code = query_param(location, "code").unwrap();
    assert_eq!(redeem(&server, &code, "github").status, 200);
}

#[test]
fn with_one_upstream_a_request_naming_neither_resource_nor_scope_is_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gnapd.toml");
    std::fs::write(
        &config,
        format!(
            "[[upstream]]\nname = \"only\"\nurl = \"http://127.0.0.1:9/mcp\"\n[[oauth_client]]\nclient_id = \"{CLIENT}\"\nredirect_uris = [\"{REGISTERED}\"]\n"
        ),
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--dev", "--config", config.to_str().unwrap()],
    );
    // What the conformance suite sends without --resource.
    let params = request_params(&server, "only", &[("resource", String::new())]);
    let answer = authorize_with(&server, &params);
    assert_eq!(answer.status, 302, "{}", answer.text());
    let location = answer.header("location").unwrap();
    let code = query_param(location, "code").unwrap_or_else(|| panic!("{location}"));
    let tokens = token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_eq!(tokens.status, 200, "{}", tokens.text());
    assert_eq!(tokens.json()["scope"], "mcp:only");
}

#[test]
fn browser_based_clients_may_read_the_metadata_and_call_the_token_endpoint_cross_origin() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--dev"]);
    let base = server.base();
    let metadata = get(
        &server,
        &format!("{base}/.well-known/oauth-authorization-server"),
    );
    assert_eq!(metadata.header("access-control-allow-origin"), Some("*"));
    let mut preflight = HttpRequest::new("OPTIONS", format!("{base}/oauth/token"));
    preflight
        .fields
        .append("origin", b"http://localhost:6274".to_vec());
    preflight
        .fields
        .append("access-control-request-method", b"POST".to_vec());
    let answer = send(server.addr, &preflight);
    assert_eq!(answer.status, 204);
    assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
    assert!(
        answer
            .header("access-control-allow-headers")
            .unwrap()
            .contains("Content-Type")
    );
    let tokens = redeem(&server, &code_for(&server, "github"), "github");
    assert_eq!(tokens.header("access-control-allow-origin"), Some("*"));
    // Never on the authorization endpoint: a browser navigates there.
    let answer = authorize_with(&server, &request_params(&server, "github", &[]));
    assert_eq!(answer.header("access-control-allow-origin"), None);
}

#[test]
fn a_person_narrows_an_oauth_request_to_fewer_tools_on_the_consent_page_and_the_token_carries_that()
{
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--dev", "--require-interaction"]);
    let scope = "mcp:github:tool:search mcp:github:tool:create_issue mcp:github:tool:delete_repo";
    let answer = authorize_with(
        &server,
        &request_params(&server, "github", &[("scope", scope.into())]),
    );
    assert_eq!(answer.status, 302, "{}", answer.text());
    let link = answer.header("location").unwrap().to_owned();
    let page = get(&server, &link);
    let browser = cookie_set(&page, "gnapd_browser").unwrap();
    let text = html(&page);
    for tool in ["search", "create_issue", "delete_repo"] {
        assert!(text.contains(&format!("<code>{tool}</code>")), "{tool}");
    }
    // The same per-tool boxes as a GNAP request's: untick `delete_repo`.
    let form = consent_form(&server, &text);
    assert_eq!(form.boxes.len(), 3);
    let approved = form.submit_with_cookie(
        &server,
        "approve",
        |_, value| value != "0.0.2",
        Some(&browser),
    );
    assert_eq!(approved.status, 303, "{}", approved.text());
    let location = approved.header("location").unwrap().to_owned();
    assert!(location.starts_with(&format!("{REDIRECT}?")), "{location}");
    let code = query_param(&location, "code").unwrap();
    let tokens = redeem(&server, &code, "github");
    assert_eq!(tokens.status, 200, "{}", tokens.text());
    assert_eq!(
        tokens.json()["scope"],
        "mcp:github:tool:search mcp:github:tool:create_issue"
    );
}
