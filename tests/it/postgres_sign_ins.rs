//! A person's sign-ins cross nodes sharing one PostgreSQL schema (issue
//! 20: a load balancer without affinity), on real `gnapd serve`
//! processes: an OIDC login started on one node comes back from the IdP
//! to another and decides on a third; an upstream's OAuth connection
//! started on one node comes back to another. The IdP is
//! node-oidc-provider on loopback; every node has the one public URL the
//! IdP sends the browser back to, so each request may go to any node.

use std::path::{Path, PathBuf};

use gnapd::proto::httpsig::HttpRequest;
use serde_json::json;

use crate::connect_upstream::{Provider, query_param, sign_in_as};
use crate::interaction_pages::{
    consent_form, continue_, get_with_cookie, grant, html, post_form_with_cookie,
};
use crate::support::agent::{Agent, access_token};
use crate::support::pg_nodes::{Nodes, PUBLIC_URL};
use crate::support::server::Server;

/// The test's browser, sent with every step of a sign-in.
const BROWSER: &str = "gnapd_browser=bBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBb";

/// The shared entries of `kind` in the nodes' schema, and whether any
/// value holds `needle` in the clear.
fn handoffs(nodes: &Nodes, kind: &str, needle: &str) -> (i64, bool) {
    let mut client = nodes.schema.client();
    let rows = client
        .query("SELECT value FROM handoffs WHERE kind = $1", &[&kind])
        .unwrap();
    let clear = !needle.is_empty()
        && rows.iter().any(|row| {
            let value: Vec<u8> = row.get(0);
            value.windows(needle.len()).any(|w| w == needle.as_bytes())
        });
    (i64::try_from(rows.len()).unwrap(), clear)
}

/// The nodes' config file: an OIDC `[login]` at `provider` (its JWKS
/// written beside), after `tables` (more of the file).
fn login_config(dir: &Path, provider: &Provider, tables: &str) -> String {
    let jwks = jwks_file(dir, provider);
    format!(
        r#"poll_wait = 0

{tables}[login]
kind = "oidc"
issuer = "{issuer}"
authorization_endpoint = "{issuer}/auth"
token_endpoint = "{issuer}/token"
client_id = "gnapd"
client_secret = "gnapd-upstream-secret"
jwks_file = "{}"
subjects = ["*@example.com"]
"#,
        jwks.display(),
        issuer = provider.issuer
    )
}

/// The IdP's JWKS, written where the config's `jwks_file` names it.
fn jwks_file(dir: &Path, provider: &Provider) -> PathBuf {
    let jwks = crate::support::http_client::send(
        provider.addr(),
        &HttpRequest::new("GET", format!("{}/jwks", provider.issuer).as_str()),
    );
    assert_eq!(jwks.status, 200);
    let path = dir.join("idp-jwks.json");
    std::fs::write(&path, &jwks.body).unwrap();
    path
}

/// The grant's page (under the public URL) opened on `node` by the test's
/// browser: its text.
fn page(node: &Server, link: &str) -> String {
    let page = get_with_cookie(node, link, Some(BROWSER));
    assert_eq!(page.status, 200, "{}", page.text());
    html(&page)
}

/// Presses the page's button `decision` (`signin`, `connect:…`) on
/// `node`: where the 303 sends the browser.
fn press(node: &Server, text: &str, decision: &str) -> String {
    let form = consent_form(node, text);
    let go = post_form_with_cookie(
        node,
        &form.action,
        &[("csrf", &form.csrf), ("decision", decision)],
        Some(BROWSER),
    );
    assert_eq!(go.status, 303, "{}", html(&go));
    go.header("location").unwrap().to_owned()
}

/// A grant for `mcp:github` that starts a redirect interaction at `node`.
fn redirect_grant(node: &Server, agent: &Agent) -> serde_json::Value {
    grant(
        node,
        agent,
        json!(["mcp:github"]),
        json!({"start": ["redirect"]}),
    )
}

#[test]
fn an_oidc_login_started_on_one_postgres_node_comes_back_to_another_and_decides_on_a_third() {
    let dir = tempfile::tempdir().unwrap();
    let callback = format!("{PUBLIC_URL}/gnap/login/callback");
    let provider = Provider::start(&callback);
    let nodes = Nodes::new(dir.path(), &login_config(dir.path(), &provider, ""), &[]);
    let (a, b, c) = (nodes.node("a"), nodes.node("b"), nodes.node("c"));
    let agent = Agent::new();
    let body = redirect_grant(&a, &agent);
    let mut cont = body["continue"].clone();
    let link = body["interact"]["redirect"].as_str().unwrap();

    // Started on A: A's page, A's "Sign in" button.
    let location = press(&a, &page(&a, link), "signin");
    let state = query_param(&location, "state").unwrap();
    let nonce = query_param(&location, "nonce").unwrap();
    // Shared, and sealed: the table holds neither the state nor the nonce.
    let (held, clear) = handoffs(&nodes, "login-state", &nonce);
    assert_eq!((held, clear), (1, false));
    let back = sign_in_as(&provider, &location, &callback, "alice@example.com");

    // The IdP sends the browser back to B.
    let signed_in = get_with_cookie(&b, &back, Some(BROWSER));
    assert_eq!(signed_in.status, 200, "{}", html(&signed_in));
    let text = html(&signed_in);
    assert!(
        text.contains("Signed in as <code>alice@example.com</code>"),
        "{text}"
    );
    let login = signed_in
        .headers
        .iter()
        .filter(|(n, _)| n == "set-cookie")
        .filter_map(|(_, v)| v.split(';').next())
        .find(|pair| pair.starts_with("gnapd_login_"))
        .unwrap()
        .to_owned();
    // The state was taken once, whichever node sees it again.
    for node in [&a, &b, &c] {
        assert_eq!(get_with_cookie(node, &back, Some(BROWSER)).status, 400);
    }
    assert_eq!(handoffs(&nodes, "login-state", &state).0, 0);
    let (held, clear) = handoffs(&nodes, "login-signed-in", "alice@example.com");
    assert_eq!((held, clear), (1, false));
    // Every node's admin sees who is signed in on the page.
    let (ok, out, err) =
        crate::gateway_http::gnapd_admin(&nodes.data("c"), &["grants", "pending"], "");
    assert!(ok, "{err}");
    assert!(
        out.contains("signed in on its page: alice@example.com"),
        "{out}"
    );

    // Decided on C, with the login cookie B set.
    let text = page(&c, link);
    let form = consent_form(&c, &text);
    let cookie = format!("{BROWSER}; {login}");
    let approved = form.submit_with_cookie(&c, "approve", |_, _| true, Some(&cookie));
    assert_eq!(approved.status, 200, "{}", html(&approved));
    assert!(html(&approved).contains("Access approved"));
    let tokens = continue_(&a, &agent, &mut cont, None);
    access_token(&tokens);
    // The decision removed the shared sign-in.
    assert_eq!(handoffs(&nodes, "login-signed-in", "").0, 0);
}

#[test]
fn an_upstream_connection_started_on_one_postgres_node_comes_back_to_another_and_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let callback = format!("{PUBLIC_URL}/gnap/connect/callback");
    let provider = Provider::start(&callback);
    let upstream = crate::support::mcp_upstream::Upstream::start_userinfo(
        dir.path(),
        &format!("{}/me", provider.issuer),
    );
    let nodes = Nodes::new(
        dir.path(),
        &format!(
            r#"poll_wait = 0

[[upstream]]
name = "tracker"
url = "{}"
connect = {{ kind = "oauth", authorization_endpoint = "{issuer}/auth", token_endpoint = "{issuer}/token", client_id = "gnapd", client_secret = "gnapd-upstream-secret", scopes = ["openid"] }}
"#,
            upstream.url(),
            issuer = provider.issuer
        ),
        &["--dev", "--require-interaction"],
    );
    let (a, b, c) = (nodes.node("a"), nodes.node("b"), nodes.node("c"));
    let agent = Agent::new();
    let tracker = json!([{"type": "mcp", "identifier": "tracker", "actions": ["initialize", "notifications/initialized", "tools/list", "tools/call"]}]);
    let body = grant(&a, &agent, tracker, json!({"start": ["redirect"]}));
    let mut cont = body["continue"].clone();
    let link = body["interact"]["redirect"].as_str().unwrap();

    // Started on A.
    let location = press(&a, &page(&a, link), "connect:tracker");
    let state = query_param(&location, "state").unwrap();
    let (held, _) = handoffs(&nodes, "connect-state", &state);
    assert_eq!(held, 1);
    let back = sign_in_as(&provider, &location, &callback, "alice");

    // Back on B: connected, and the state is used up on every node.
    let connected = get_with_cookie(&b, &back, Some(BROWSER));
    assert_eq!(connected.status, 200, "{}", html(&connected));
    assert!(html(&connected).contains("Connected to tracker."));
    for node in [&a, &b, &c] {
        assert_eq!(get_with_cookie(node, &back, Some(BROWSER)).status, 400);
    }
    // What was connected is listed for the grant on every node, sealed.
    let (held, clear) = handoffs(&nodes, "connect-connected", "tracker");
    assert_eq!((held, clear), (1, false));
    let text = page(&c, link);
    assert!(
        text.contains("Connected: the agent will use this connection"),
        "{text}"
    );

    // Approved on C: the token uses the set connected through B.
    let approved =
        consent_form(&c, &text).submit_with_cookie(&c, "approve", |_, _| true, Some(BROWSER));
    assert_eq!(approved.status, 200, "{}", html(&approved));
    let tokens = continue_(&a, &agent, &mut cont, None);
    let token = access_token(&tokens).to_owned();
    let mut session = crate::gateway_http::Session::new(&b, &agent, Some(token), "tracker");
    session.initialize();
    assert!(!upstream.requests().is_empty());
    assert_eq!(handoffs(&nodes, "connect-connected", "").0, 0);
}

#[test]
fn a_finish_decided_on_another_postgres_node_goes_only_to_the_browser_that_started_the_interaction()
{
    use crate::interaction_pages::cookie_set;
    let dir = tempfile::tempdir().unwrap();
    let nodes = Nodes::new(
        dir.path(),
        "poll_wait = 0\n",
        &["--dev", "--require-interaction"],
    );
    let (a, b, c) = (nodes.node("a"), nodes.node("b"), nodes.node("c"));
    let agent = Agent::new();
    let interact = json!({"start": ["redirect"], "finish": {"method": "redirect", "uri": "https://client.example/cb", "nonce": "n0nce"}});
    let body = grant(&a, &agent, json!(["mcp:github"]), interact);
    let link = body["interact"]["redirect"].as_str().unwrap().to_owned();
    let mut cont = body["continue"].clone();
    // The starting browser opens the link on A.
    let starter = cookie_set(&get_with_cookie(&a, &link, None), "gnapd_browser").unwrap();
    // Another browser decides on B: the finish is not sent to it.
    let other_page = get_with_cookie(&b, &link, None);
    let other = cookie_set(&other_page, "gnapd_browser").unwrap();
    let form = consent_form(&b, &html(&other_page));
    let decided = form.submit_with_cookie(&b, "approve", |_, _| true, Some(&other));
    assert_eq!(decided.status, 200, "{}", html(&decided));
    assert!(
        decided.header("location").is_none(),
        "not sent to the client"
    );
    assert!(html(&decided).contains("started in another browser"));
    let (held, clear) = handoffs(&nodes, "started-by", "interact_ref");
    assert_eq!((held, clear), (1, false));
    for node in [&a, &c] {
        assert!(
            get_with_cookie(node, &link, Some(&other))
                .header("location")
                .is_none()
        );
    }
    // The starting browser comes back through C: the finish is its, once.
    let collected = get_with_cookie(&c, &link, Some(&starter));
    assert_eq!(collected.status, 303, "{}", html(&collected));
    let location = collected.header("location").unwrap().to_owned();
    assert!(
        location.starts_with("https://client.example/cb?hash="),
        "{location}"
    );
    assert_eq!(get_with_cookie(&a, &link, Some(&starter)).status, 409);
    let interact_ref = query_param(&location, "interact_ref").unwrap();
    let answer = continue_(&b, &agent, &mut cont, Some(&interact_ref));
    access_token(&answer);
}

/// Sign-ins started on a node whose store the nodes share are held to
/// that node's `[sign_ins]` bounds as in memory: past one, the oldest is
/// pushed out and its shared entry goes with it, so the shared table
/// cannot be filled by pressing "Sign in" in bulk on one's own grant.
#[test]
fn shared_sign_ins_past_a_bound_push_out_the_oldest_and_its_shared_entry() {
    let dir = tempfile::tempdir().unwrap();
    let callback = format!("{PUBLIC_URL}/gnap/login/callback");
    let provider = Provider::start(&callback);
    let nodes = Nodes::new(
        dir.path(),
        &login_config(dir.path(), &provider, "[sign_ins]\nper_grant = 2\n\n"),
        &[],
    );
    let a = nodes.node("a");
    let agent = Agent::new();
    let body = redirect_grant(&a, &agent);
    let link = body["interact"]["redirect"].as_str().unwrap();
    let states: Vec<String> = (0..3)
        .map(|_| {
            let location = press(&a, &page(&a, link), "signin");
            query_param(&location, "state").unwrap()
        })
        .collect();
    assert_eq!(
        handoffs(&nodes, "login-state", "").0,
        2,
        "the bound per grant holds in the shared table"
    );
    // The oldest is gone from it; the newest is still there.
    let mut client = nodes.schema.client();
    let mut held = |state: &str| -> i64 {
        let digest = gnapd::proto::hash::sha256(state.as_bytes()).to_vec();
        client
            .query_one(
                "SELECT count(*) FROM handoffs WHERE kind = 'login-state' AND digest = $1",
                &[&digest],
            )
            .unwrap()
            .get(0)
    };
    assert_eq!(held(&states[0]), 0, "the oldest was pushed out");
    assert_eq!(held(&states[2]), 1);
}
