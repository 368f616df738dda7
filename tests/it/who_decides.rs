//! Who decides a grant that waits for a person (issue 13 §1), against a
//! real `gnapd serve` on loopback WITHOUT `--dev`: the agent holds its own
//! page's link and code, and must not be able to approve itself with them.
//! Only a signed-in person (the operator, with the one-time link; or the
//! configured login's subject) or the admin on the server decides.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::interaction_pages::{
    attrs, consent_form, continue_, get, get_with_cookie, grant, html, post_form,
    post_form_with_cookie,
};
use crate::support::agent::Agent;
use crate::support::run::gnapd_cli;
use crate::support::server::Server;

/// `gnapd serve` outside dev mode (no rule approves anything), with
/// `extra` config lines. Returns it with its data dir.
fn production(dir: &Path, extra: &str) -> (Server, PathBuf) {
    let config = dir.join("gnapd.toml");
    std::fs::write(&config, format!("poll_wait = 0\n{extra}")).unwrap();
    let data = dir.join("data");
    let server = Server::start(&data, &["--config", config.to_str().unwrap()]);
    (server, data)
}

/// A grant for `mcp:github` that offers the link and the user code.
pub(crate) fn pending(server: &Server, agent: &Agent) -> Value {
    grant(
        server,
        agent,
        json!(["mcp:github"]),
        json!({"start": ["redirect", "user_code_uri"]}),
    )
}

/// The `name=value` of the `Set-Cookie` of `answer` for cookie `name`,
/// with its attributes.
fn set_cookie<'a>(answer: &'a crate::support::http_client::Answer, name: &str) -> Option<&'a str> {
    answer
        .headers
        .iter()
        .find(|(n, v)| n == "set-cookie" && v.starts_with(&format!("{name}=")))
        .map(|(_, v)| v.as_str())
}

/// The operator's session cookie (`gnapd_operator=…`) an answer set.
pub(crate) fn operator_cookie(answer: &crate::support::http_client::Answer) -> String {
    let header = set_cookie(answer, "gnapd_operator").expect("a session cookie");
    header.split(';').next().unwrap().to_owned()
}

/// Signs in with the sign-in link `url` as a browser would: opens it (which
/// redeems nothing), then presses its button.
pub(crate) fn sign_in(server: &Server, url: &str) -> crate::support::http_client::Answer {
    let page = get(server, url);
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(set_cookie(&page, "gnapd_operator").is_none());
    let action = attrs(&html(&page), "method=\"post\"", "action").remove(0);
    let code = attrs(&html(&page), "name=\"code\"", "value").remove(0);
    post_form(
        server,
        &format!("{}{action}", server.base()),
        &[("code", code.as_str())],
    )
}

#[test]
fn an_agent_holding_its_own_link_and_code_cannot_approve_its_grant_outside_dev() {
    let dir = tempfile::tempdir().unwrap();
    let (server, data) = production(dir.path(), "");
    let agent = Agent::new();
    let body = pending(&server, &agent);
    let mut cont = body["continue"].clone();
    let link = body["interact"]["redirect"].as_str().unwrap();
    let grant_id = link.rsplit('/').nth(1).unwrap().to_owned();

    // By the link: the page shows the request and who can decide, and no
    // Approve button.
    let page = get(&server, link);
    assert_eq!(page.status, 200);
    let text = html(&page);
    assert!(!text.contains("value=\"approve\""), "{text}");
    assert!(!text.contains("class=\"devbanner\""));
    assert!(text.contains(&format!("gnapd grants approve {grant_id}")));
    assert!(text.contains("gnapd admin login-link"));
    // Pressing Approve anyway (the form token is on the page) decides nothing.
    let form = consent_form(&server, &text);
    let approved = form.submit(&server, "approve", |_, _| true);
    assert_eq!(approved.status, 403, "{}", approved.text());
    assert!(html(&approved).contains("Sign in first"));
    let denied = form.submit(&server, "deny", |_, _| true);
    assert_eq!(denied.status, 403);

    // By the code: the same.
    let code = body["interact"]["user_code_uri"]["code"].as_str().unwrap();
    let by_code = post_form(
        &server,
        &format!("{}/gnap/device", server.base()),
        &[("code", code)],
    );
    assert_eq!(by_code.status, 200);
    assert!(!html(&by_code).contains("value=\"approve\""));
    let form = consent_form(&server, &html(&by_code));
    assert_eq!(form.submit(&server, "approve", |_, _| true).status, 403);

    // Still pending, and no token for the agent.
    let answer = continue_(&server, &agent, &mut cont, None);
    assert!(answer["access_token"].is_null(), "{answer}");
    let (ok, listing) = gnapd_cli(&data, &["grants", "pending", "--json"]);
    assert!(ok);
    assert!(listing.contains(&grant_id), "{listing}");
}

#[test]
fn the_operator_signs_in_with_the_one_time_link_and_approves_in_the_browser() {
    let dir = tempfile::tempdir().unwrap();
    let (server, data) = production(dir.path(), "");
    let file = data.join("operator-login");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the link file is the owner's only");
    }
    let url = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert!(url.starts_with(&format!("{}/gnap/operator?code=", server.base())));

    let signed_in = sign_in(&server, &url);
    assert_eq!(signed_in.status, 200, "{}", signed_in.text());
    let header = set_cookie(&signed_in, "gnapd_operator").unwrap();
    assert!(
        header.contains("; Path=/gnap/;")
            && header.contains("; HttpOnly; SameSite=Strict")
            && header.contains("Max-Age=43200"),
        "{header}"
    );
    let cookie = operator_cookie(&signed_in);
    // The link works once.
    assert_eq!(sign_in(&server, &url).status, 403);

    let agent = Agent::new();
    let body = pending(&server, &agent);
    let mut cont = body["continue"].clone();
    let link = body["interact"]["redirect"].as_str().unwrap();
    let page = get_with_cookie(&server, link, Some(&cookie));
    let text = html(&page);
    assert!(text.contains("value=\"approve\""), "{text}");
    assert!(text.contains("Signed in as this server"), "{text}");
    let form = consent_form(&server, &text);
    let mut fields = vec![("csrf", form.csrf.as_str()), ("decision", "approve")];
    for (name, value) in &form.boxes {
        fields.push((name.as_str(), value.as_str()));
    }
    let approved = post_form_with_cookie(&server, &form.action, &fields, Some(&cookie));
    assert_eq!(approved.status, 200, "{}", approved.text());
    let answer = continue_(&server, &agent, &mut cont, None);
    assert!(answer["access_token"]["value"].is_string(), "{answer}");

    // `gnapd admin logout` signs every operator out.
    let (ok, out) = gnapd_cli(&data, &["admin", "logout"]);
    assert!(ok && out.contains("signed out 1"), "{out}");
    let body = pending(&server, &agent);
    let link = body["interact"]["redirect"].as_str().unwrap();
    let text = html(&get_with_cookie(&server, link, Some(&cookie)));
    assert!(!text.contains("value=\"approve\""), "{text}");
    let form = consent_form(&server, &text);
    let fields = [("csrf", form.csrf.as_str()), ("decision", "approve")];
    assert_eq!(
        post_form_with_cookie(&server, &form.action, &fields, Some(&cookie)).status,
        403
    );

    // `gnapd admin login-link` makes a fresh link, which works (once).
    let (ok, fresh) = gnapd_cli(&data, &["admin", "login-link"]);
    assert!(ok, "{fresh}");
    let fresh = fresh.trim();
    assert_ne!(fresh, url);
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), fresh);
    assert_eq!(sign_in(&server, fresh).status, 200);
}

#[test]
fn with_neither_a_login_nor_the_operator_sign_in_only_the_admin_on_the_server_decides() {
    let dir = tempfile::tempdir().unwrap();
    let (server, data) = production(dir.path(), "operator_login = false\n");
    assert!(!data.join("operator-login").exists());
    let agent = Agent::new();
    let body = pending(&server, &agent);
    let mut cont = body["continue"].clone();
    let link = body["interact"]["redirect"].as_str().unwrap();
    let grant_id = link.rsplit('/').nth(1).unwrap().to_owned();
    let text = html(&get(&server, link));
    assert!(!text.contains("value=\"approve\""));
    assert!(!text.contains("login-link"), "no operator sign-in offered");
    assert!(text.contains(&format!("gnapd grants approve {grant_id}")));
    let form = consent_form(&server, &text);
    let refused = form.submit(&server, "approve", |_, _| true);
    assert_eq!(refused.status, 403);
    assert!(html(&refused).contains("An administrator decides"));
    // The operator's sign-in page redeems nothing here.
    let signed = post_form(
        &server,
        &format!("{}/gnap/operator", server.base()),
        &[("code", "anything")],
    );
    assert_eq!(signed.status, 404);

    let (ok, out) = gnapd_cli(&data, &["grants", "approve", &grant_id]);
    assert!(ok, "{out}");
    let answer = continue_(&server, &agent, &mut cont, None);
    assert!(answer["access_token"]["value"].is_string(), "{answer}");
}

#[test]
fn dev_interaction_pages_say_in_red_that_whoever_holds_the_link_decides() {
    let dir = tempfile::tempdir().unwrap();
    let server = crate::interaction_pages::start(dir.path(), "");
    let body = pending(&server, &Agent::new());
    let link = body["interact"]["redirect"].as_str().unwrap();
    let text = html(&get(&server, link));
    assert!(text.contains("class=\"devbanner\""), "{text}");
    assert!(text.contains("value=\"approve\""));
}

#[test]
fn a_link_holder_outside_dev_cannot_paste_upstream_keys_connect_or_forget_sets_on_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let (server, data) = production(dir.path(), crate::connect_upstream::MUST_CONNECT);
    let body = grant(
        &server,
        &Agent::new(),
        json!(["mcp:tracker"]),
        json!({"start": ["redirect"]}),
    );
    let link = body["interact"]["redirect"].as_str().unwrap();
    let text = html(&get(&server, link));
    // Nothing to paste or press: the connect part is for a decider.
    assert!(!text.contains("name=\"connect.tracker\""), "{text}");
    let form = consent_form(&server, &text);
    for decision in ["approve", "connect:tracker", "forget:person:x"] {
        let answer = post_form(
            &server,
            &form.action,
            &[
                ("csrf", form.csrf.as_str()),
                ("decision", decision),
                ("right", "0.0"),
                ("connect.tracker", "the-agents-own-key"),
            ],
        );
        assert_eq!(answer.status, 403, "{decision}: {}", html(&answer));
        assert!(answer.header("location").is_none(), "{decision}");
    }
    // No set was stored for the agent's key.
    let (ok, sets) = gnapd_cli(&data, &["credentials", "list", "--json"]);
    assert!(ok, "{sets}");
    assert!(!sets.contains("person:"), "{sets}");
}
