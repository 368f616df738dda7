//! The interaction pages over loopback (RFC 9635 §4.1, §4.2.1): a real
//! `gnapd serve --dev --require-interaction` on sled, and a plain HTTP
//! client behaving as a browser: it GETs a page, reads the form (action,
//! form token, checkboxes) out of the HTML, POSTs it, and follows the 303.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use gnapd::clock::{Clock as _, SystemClock};
use gnapd::proto::b64;
use gnapd::proto::httpsig::HttpRequest;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::support::agent::{Agent, access_token};
use crate::support::http_client::{Answer, send};
use crate::support::server::Server;

pub(crate) fn start(dir: &Path, extra: &str) -> Server {
    let config = dir.join("gnapd.toml");
    std::fs::write(&config, format!("poll_wait = 0\n{extra}")).unwrap();
    Server::start(
        &dir.join("data"),
        &[
            "--dev",
            "--require-interaction",
            "--config",
            config.to_str().unwrap(),
        ],
    )
}

pub(crate) fn grant(server: &Server, agent: &Agent, access: Value, interact: Value) -> Value {
    let mut body = agent.grant_body(access);
    body["interact"] = interact;
    let answer = server.grant(agent, &body);
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()
}

pub(crate) fn continue_(
    server: &Server,
    agent: &Agent,
    cont: &mut Value,
    interact_ref: Option<&str>,
) -> Value {
    let uri = cont["uri"].as_str().unwrap().to_owned();
    let token = access_token(cont).to_owned();
    let body = interact_ref.map(|r| json!({"interact_ref": r}));
    let answer = send(
        server.addr,
        &agent.signed("POST", &uri, Some(&token), body.as_ref(), SystemClock.now()),
    )
    .json();
    if answer["continue"].is_object() {
        *cont = answer["continue"].clone();
    }
    answer
}

// --- A browser, as far as these pages need one (tests/it/connect.rs too) --

pub(crate) fn get(server: &Server, url: &str) -> Answer {
    get_with_cookie(server, url, None)
}

/// A GET from a browser that holds `cookie` (`name=value; …`), if any.
pub(crate) fn get_with_cookie(server: &Server, url: &str, cookie: Option<&str>) -> Answer {
    let mut request = HttpRequest::new("GET", url);
    if let Some(cookie) = cookie {
        request.fields.append("cookie", cookie.as_bytes().to_vec());
    }
    send(server.addr, &request)
}

pub(crate) fn post_form(server: &Server, url: &str, fields: &[(&str, &str)]) -> Answer {
    post_form_with_cookie(server, url, fields, None)
}

/// A form POST from a browser that holds `cookie`, if any.
pub(crate) fn post_form_with_cookie(
    server: &Server,
    url: &str,
    fields: &[(&str, &str)],
    cookie: Option<&str>,
) -> Answer {
    let mut request = HttpRequest::new("POST", url);
    if let Some(cookie) = cookie {
        request.fields.append("cookie", cookie.as_bytes().to_vec());
    }
    request.fields.append(
        "content-type",
        b"application/x-www-form-urlencoded".to_vec(),
    );
    request.body = fields
        .iter()
        .map(|(n, v)| format!("{}={}", encode(n), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes();
    send(server.addr, &request)
}

pub(crate) fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            b' ' => "+".to_owned(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The `name=value` of cookie `name` that `answer` sets, if it sets it.
pub(crate) fn cookie_set(answer: &Answer, name: &str) -> Option<String> {
    answer
        .headers
        .iter()
        .filter(|(n, _)| n == "set-cookie")
        .filter_map(|(_, v)| v.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

pub(crate) fn html(answer: &Answer) -> String {
    String::from_utf8(answer.body.clone()).unwrap()
}

/// The value of attribute `attr` in each tag of `html` that contains
/// `marker`.
pub(crate) fn attrs(html: &str, marker: &str, attr: &str) -> Vec<String> {
    html.split('<')
        .filter(|tag| tag.contains(marker))
        .filter_map(|tag| {
            let start = tag.find(&format!("{attr}=\""))? + attr.len() + 2;
            let end = tag[start..].find('"')? + start;
            Some(tag[start..end].replace("&#x2f;", "/").replace("&#47;", "/"))
        })
        .collect()
}

/// What a browser would submit from the consent page: the form's action
/// (absolute), its form token and every checkbox (name, value).
pub(crate) struct ConsentForm {
    pub(crate) action: String,
    pub(crate) csrf: String,
    pub(crate) boxes: Vec<(String, String)>,
}

pub(crate) fn consent_form(server: &Server, page: &str) -> ConsentForm {
    let action = attrs(page, "method=\"post\"", "action").remove(0);
    let csrf = attrs(page, "name=\"csrf\"", "value").remove(0);
    let mut boxes = Vec::new();
    for name in ["right", "tool"] {
        for value in attrs(page, &format!("name=\"{name}\""), "value") {
            boxes.push((name.to_owned(), value));
        }
    }
    ConsentForm {
        action: format!("{}{action}", server.base()),
        csrf,
        boxes,
    }
}

impl ConsentForm {
    /// Submits with `decision`, leaving ticked the boxes `keep` accepts.
    pub(crate) fn submit(
        &self,
        server: &Server,
        decision: &str,
        keep: impl Fn(&str, &str) -> bool,
    ) -> Answer {
        self.submit_with_cookie(server, decision, keep, None)
    }

    /// [`Self::submit`] from a browser holding `cookie`, if any.
    pub(crate) fn submit_with_cookie(
        &self,
        server: &Server,
        decision: &str,
        keep: impl Fn(&str, &str) -> bool,
        cookie: Option<&str>,
    ) -> Answer {
        let mut fields = vec![("csrf", self.csrf.as_str()), ("decision", decision)];
        for (name, value) in &self.boxes {
            if keep(name, value) {
                fields.push((name.as_str(), value.as_str()));
            }
        }
        post_form_with_cookie(server, &self.action, &fields, cookie)
    }
}

/// Every page: no framing, a strict CSP, no referrer, no caching, HTML.
pub(crate) fn assert_secure(answer: &Answer) {
    assert_eq!(answer.header("x-frame-options"), Some("DENY"));
    assert_eq!(answer.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
    let csp = answer.header("content-security-policy").unwrap();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'sha256-"),
        "{csp}"
    );
    for part in [
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    // Cookies, where a page sets one, are the server's own: HttpOnly,
    // scoped to its pages, never sent cross-site with a form post.
    for (_, cookie) in answer.headers.iter().filter(|(n, _)| n == "set-cookie") {
        assert!(
            cookie.contains("; Path=/gnap/;") && cookie.contains("; HttpOnly; SameSite="),
            "{cookie}"
        );
    }
    if answer.status != 303 {
        assert_eq!(
            answer.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        let page = html(answer);
        assert!(page.starts_with("<!doctype html>\n<html lang=\"en\">"));
        assert!(page.contains("<meta name=\"viewport\""));
        assert!(!page.contains("<script"));
    }
}

/// §4.2.3 with SHA-256, written out independently of gnapd's code.
fn expected_hash(client_nonce: &str, as_nonce: &str, interact_ref: &str, grant: &str) -> String {
    let base = format!("{client_nonce}\n{as_nonce}\n{interact_ref}\n{grant}");
    b64::encode_url(&sha2::Sha256::digest(base.as_bytes()))
}

fn param(url: &str, name: &str) -> String {
    url.split_once('?')
        .unwrap()
        .1
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .unwrap()
        .to_owned()
}

/// A one-shot client callback on 127.0.0.1: hands over the request line of
/// the first request and answers 200.
fn callback_listener() -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                break;
            }
        }
        let mut stream = stream;
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            .unwrap();
        let _ = tx.send(line);
    });
    (port, rx)
}

fn github_tools() -> Value {
    json!([{"type": "mcp", "identifier": "github", "actions": ["tools/call"], "tools": ["search", "create_issue", "delete_repo"]}])
}

#[test]
fn redirect_start_and_finish_pages_approve_narrowed_tools_follow_303_and_continue() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "");
    let (port, callback) = callback_listener();
    let finish_uri = format!("http://127.0.0.1:{port}/return/123455?state=abc");
    let agent = Agent::new();
    let body = grant(
        &server,
        &agent,
        github_tools(),
        json!({"start": ["redirect"], "finish": {"method": "redirect", "uri": finish_uri, "nonce": "LKLTI25DK82FX4T4QFZC"}}),
    );
    let link = body["interact"]["redirect"].as_str().unwrap().to_owned();
    assert!(link.starts_with(&format!("{}/gnap/interact/", server.base())));
    assert!(body["interact"]["user_code"].is_null() && body["interact"]["user_code_uri"].is_null());
    let as_nonce = body["interact"]["finish"].as_str().unwrap().to_owned();
    let mut cont = body["continue"].clone();

    let page = get(&server, &link);
    assert_eq!(page.status, 200);
    assert_secure(&page);
    // This browser opened the link first: the finish is for it.
    let browser = cookie_set(&page, "gnapd_browser").expect("the browser is named");
    // The redirect's target must be allowed as a form destination.
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains(&format!("form-action 'self' http://127.0.0.1:{port};"))
    );
    let text = html(&page);
    assert!(text.contains("test agent <span class=\"unverified\">(unverified)</span>"));
    assert!(text.contains(agent.key.verifying_key().thumbprint().as_str()));
    assert!(
        text.contains("MCP upstream “github”: methods tools"),
        "{text}"
    );
    for tool in ["search", "create_issue", "delete_repo"] {
        assert!(text.contains(&format!("<code>{tool}</code>")), "{tool}");
    }
    let form = consent_form(&server, &text);
    assert_eq!(form.boxes.len(), 3);

    // Untick `delete_repo` (the third tool) and approve.
    let answer = form.submit_with_cookie(
        &server,
        "approve",
        |_, value| value != "0.0.2",
        Some(&browser),
    );
    assert_eq!(answer.status, 303);
    assert_secure(&answer);
    let location = answer.header("location").unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{finish_uri}&hash=")),
        "{location}"
    );
    // Follow it, as the browser does: the client's callback gets it.
    let path = location
        .strip_prefix(&format!("http://127.0.0.1:{port}"))
        .unwrap();
    let followed = send(
        format!("127.0.0.1:{port}").parse().unwrap(),
        &HttpRequest::new("GET", location.as_str()),
    );
    assert_eq!(followed.status, 200);
    let line = callback.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(line, format!("GET {path} HTTP/1.1\r\n"));
    let interact_ref = param(&location, "interact_ref");
    assert_eq!(
        param(&location, "hash"),
        expected_hash(
            "LKLTI25DK82FX4T4QFZC",
            &as_nonce,
            &interact_ref,
            &server.grant_endpoint
        )
    );

    let tokens = continue_(&server, &agent, &mut cont, Some(&interact_ref));
    assert_eq!(
        tokens["access_token"]["access"],
        json!([{"type": "mcp", "identifier": "github", "actions": ["tools/call"], "tools": ["search", "create_issue"]}]),
        "{tokens}"
    );
    // The page is decided now; it never sends the browser anywhere again.
    let again = get(&server, &link);
    assert_eq!(again.status, 409);
    assert_secure(&again);
    assert!(again.header("location").is_none());
}

#[test]
fn user_code_uri_entry_then_approval_and_polling_gets_the_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "");
    let agent = Agent::new();
    let body = grant(
        &server,
        &agent,
        json!(["mcp:github"]),
        json!({"start": ["user_code_uri"]}),
    );
    assert!(body["interact"]["user_code"].is_null() && body["interact"]["redirect"].is_null());
    let code = body["interact"]["user_code_uri"]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let uri = body["interact"]["user_code_uri"]["uri"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(uri, format!("{}/gnap/device", server.base()));
    let mut cont = body["continue"].clone();
    assert!(continue_(&server, &agent, &mut cont, None)["access_token"].is_null());

    let form_page = get(&server, &uri);
    assert_eq!(form_page.status, 200);
    assert_secure(&form_page);
    let text = html(&form_page);
    assert!(text.contains("<label for=\"code\">"));
    assert_eq!(attrs(&text, "method=\"post\"", "action"), ["/gnap/device"]);

    // A wrong code: the form again, with the error; nothing else.
    let wrong = post_form(&server, &uri, &[("code", "2222-2222")]);
    assert_eq!(wrong.status, 400);
    assert_secure(&wrong);
    assert!(html(&wrong).contains("role=\"alert\""));

    // Typed as a person might: lowercase, with a dash and spaces.
    let typed = format!(" {}-{} ", &code[..4], &code[4..]).to_lowercase();
    let consent = post_form(&server, &uri, &[("code", &typed)]);
    assert_eq!(consent.status, 200, "{}", html(&consent));
    assert_secure(&consent);
    let form = consent_form(&server, &html(&consent));
    assert_eq!(form.boxes, [("right".to_owned(), "0.0".to_owned())]);
    let done = form.submit(&server, "approve", |_, _| true);
    assert_eq!(done.status, 200);
    assert_secure(&done);
    assert!(html(&done).contains("Access approved"));

    let tokens = continue_(&server, &agent, &mut cont, None);
    assert_eq!(
        tokens["access_token"]["access"],
        json!(["mcp:github"]),
        "{tokens}"
    );
    // The code decided once.
    let reused = post_form(&server, &uri, &[("code", &code)]);
    assert_eq!(reused.status, 400);
}

#[test]
fn a_denial_through_the_page_is_user_denied() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "");
    let agent = Agent::new();
    let body = grant(
        &server,
        &agent,
        json!(["mcp:github"]),
        json!({"start": ["redirect", "user_code"]}),
    );
    let mut cont = body["continue"].clone();
    let page = get(&server, body["interact"]["redirect"].as_str().unwrap());
    let form = consent_form(&server, &html(&page));
    let denied = form.submit(&server, "deny", |_, _| true);
    assert_eq!(denied.status, 200);
    assert_secure(&denied);
    assert!(html(&denied).contains("Access denied"));
    let answer = continue_(&server, &agent, &mut cont, None);
    assert_eq!(answer["error"]["code"], "user_denied", "{answer}");
    assert!(answer["access_token"].is_null());
}

#[test]
fn a_missing_or_wrong_form_token_is_403_and_the_grant_stays_pending() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "");
    let agent = Agent::new();
    let body = grant(
        &server,
        &agent,
        json!(["mcp:github"]),
        json!({"start": ["redirect"]}),
    );
    let mut cont = body["continue"].clone();
    let form = consent_form(
        &server,
        &html(&get(
            &server,
            body["interact"]["redirect"].as_str().unwrap(),
        )),
    );
    let other = grant(
        &server,
        &Agent::new(),
        json!(["mcp:github"]),
        json!({"start": ["redirect"]}),
    );
    let other_form = consent_form(
        &server,
        &html(&get(
            &server,
            other["interact"]["redirect"].as_str().unwrap(),
        )),
    );
    let mut forged = form.csrf.clone();
    forged.replace_range(0..1, if forged.starts_with('A') { "B" } else { "A" });
    for token in [
        None,
        Some(""),
        Some(forged.as_str()),
        Some(other_form.csrf.as_str()),
    ] {
        let mut fields = vec![("decision", "approve"), ("right", "0.0")];
        if let Some(token) = token {
            fields.push(("csrf", token));
        }
        let refused = post_form(&server, &form.action, &fields);
        assert_eq!(refused.status, 403, "{token:?}");
        assert_secure(&refused);
    }
    // Nothing was decided: still pending, and the real form still works.
    assert!(continue_(&server, &agent, &mut cont, None)["access_token"].is_null());
    assert_eq!(form.submit(&server, "approve", |_, _| true).status, 200);
    let tokens = continue_(&server, &agent, &mut cont, None);
    assert!(tokens["access_token"]["value"].is_string(), "{tokens}");
}

#[test]
fn an_expired_interaction_page_says_expired() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "interaction_lifetime = 1\n");
    let agent = Agent::new();
    let body = grant(
        &server,
        &agent,
        json!(["mcp:github"]),
        json!({"start": ["redirect"], "finish": {"method": "redirect", "uri": "https://client.example/cb", "nonce": "n"}}),
    );
    let link = body["interact"]["redirect"].as_str().unwrap();
    let form = consent_form(&server, &html(&get(&server, link)));
    std::thread::sleep(Duration::from_millis(2100));
    let page = get(&server, link);
    assert_eq!(page.status, 410);
    assert_secure(&page);
    assert!(html(&page).contains("This request expired"));
    // Too late to decide, and no redirect to the client.
    let late = form.submit(&server, "approve", |_, _| true);
    assert_eq!(late.status, 410);
    assert!(late.header("location").is_none());
}

#[test]
fn unknown_links_and_wrong_methods_get_error_pages_with_the_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "");
    let base = server.base();
    let unknown = get(
        &server,
        &format!("{base}/gnap/interact/00000000-0000-4000-8000-000000000000/guess"),
    );
    assert_eq!(unknown.status, 404);
    assert_secure(&unknown);
    assert!(unknown.header("location").is_none());
    let put = send(
        server.addr,
        &HttpRequest::new("PUT", format!("{base}/gnap/device")),
    );
    assert_eq!(put.status, 405);
    assert_secure(&put);
    let json_post = {
        let mut request = HttpRequest::new("POST", format!("{base}/gnap/device"));
        request
            .fields
            .append("content-type", b"application/json".to_vec());
        request.body = b"{}".to_vec();
        send(server.addr, &request)
    };
    assert_eq!(json_post.status, 415);
    assert_secure(&json_post);
}

#[test]
fn a_redirect_start_with_push_finish_delivers_interact_ref_and_hash_to_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "allow_private_push = true\n");
    let (port, pushed) = crate::interaction_http::push_listener();
    let agent = Agent::new();
    let body = grant(
        &server,
        &agent,
        github_tools(),
        json!({"start": ["redirect"], "finish": {"method": "push", "uri": format!("http://127.0.0.1:{port}/push"), "nonce": "PUSH-NONCE-0001"}}),
    );
    let link = body["interact"]["redirect"].as_str().unwrap().to_owned();
    let as_nonce = body["interact"]["finish"].as_str().unwrap().to_owned();
    let mut cont = body["continue"].clone();

    let page = get(&server, &link);
    assert_eq!(page.status, 200);
    let form = consent_form(&server, &html(&page));
    let answer = form.submit(&server, "approve", |_, _| true);
    // A push finish sends the browser nowhere: the page says it is done.
    assert!(answer.status < 300, "{}", answer.status);
    assert!(answer.header("location").is_none());
    assert_secure(&answer);

    let (head, pushed_body) = pushed.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(head.starts_with("POST /push HTTP/1.1\r\n"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let message: Value = serde_json::from_slice(&pushed_body).unwrap();
    let interact_ref = message["interact_ref"].as_str().unwrap().to_owned();
    assert_eq!(
        message["hash"],
        expected_hash(
            "PUSH-NONCE-0001",
            &as_nonce,
            &interact_ref,
            &server.grant_endpoint
        )
    );
    let tokens = continue_(&server, &agent, &mut cont, Some(&interact_ref));
    assert!(tokens["access_token"]["value"].is_string(), "{tokens}");
}

#[test]
fn a_finish_redirect_goes_only_to_the_browser_that_started_the_interaction() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "");
    let agent = Agent::new();
    let interact = json!({"start": ["redirect"], "finish": {"method": "redirect", "uri": "https://client.example/cb", "nonce": "n0nce"}});
    // Decided on the page by another browser, then by the admin.
    for by_admin in [false, true] {
        let body = grant(&server, &agent, json!(["mcp:github"]), interact.clone());
        let link = body["interact"]["redirect"].as_str().unwrap().to_owned();
        let grant_id = link.rsplit('/').nth(1).unwrap().to_owned();
        let mut cont = body["continue"].clone();
        let starter = cookie_set(&get(&server, &link), "gnapd_browser").unwrap();
        if by_admin {
            let data = dir.path().join("data");
            let (ok, out) =
                crate::support::run::gnapd_cli(&data, &["grants", "approve", &grant_id]);
            assert!(ok, "{out}");
        } else {
            let other_page = get(&server, &link);
            let other = cookie_set(&other_page, "gnapd_browser").unwrap();
            assert_ne!(other, starter);
            let form = consent_form(&server, &html(&other_page));
            let decided = form.submit_with_cookie(&server, "approve", |_, _| true, Some(&other));
            assert_eq!(decided.status, 200, "{}", html(&decided));
            assert!(
                decided.header("location").is_none(),
                "not sent to the client"
            );
            assert!(html(&decided).contains("started in another browser"));
            // Nor when it opens the link again.
            let again = get_with_cookie(&server, &link, Some(&other));
            assert_eq!(again.status, 409);
            assert!(again.header("location").is_none());
        }
        // A browser without a name gets nothing either.
        assert!(get(&server, &link).header("location").is_none());
        // The starting browser opens the link again: the finish is its.
        let collected = get_with_cookie(&server, &link, Some(&starter));
        assert_eq!(collected.status, 303, "{}", html(&collected));
        let location = collected.header("location").unwrap().to_owned();
        assert!(
            location.starts_with("https://client.example/cb?hash="),
            "{location}"
        );
        let answer = continue_(
            &server,
            &agent,
            &mut cont,
            Some(&param(&location, "interact_ref")),
        );
        assert!(answer["access_token"]["value"].is_string(), "{answer}");
        // Once.
        let twice = get_with_cookie(&server, &link, Some(&starter));
        assert_eq!(twice.status, 409);
    }
}
