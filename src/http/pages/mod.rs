//! The pages a person sees (RFC 9635 §4.1): the interaction page of a
//! pending grant, the user code page that leads to it, and the done,
//! denied, expired and error pages. Server-rendered from the askama
//! templates in `templates/` (checked when the crate compiles, HTML-escaped
//! by default); no JavaScript.
//!
//! | route | what |
//! |---|---|
//! | `GET {INTERACT_PATH}{grant}/{secret}` | the interaction page (`redirect` start) |
//! | `POST {INTERACT_PATH}{grant}` | a decision: form token, `decision`, ticked `right`s and `tool`s |
//! | `GET {DEVICE_PATH}` | the user code form (`user_code`, `user_code_uri`) |
//! | `POST {DEVICE_PATH}` | a typed code: the interaction page, or the form again |
//! | `GET|POST {OPERATOR_PATH}` | the operator's one-time sign-in (`operator`) |
//! | `POST {OPERATOR_SIGN_OUT_PATH}` | the operator signs out |
//! | `GET {CONNECT_CALLBACK_PATH}`, `GET {LOGIN_CALLBACK_PATH}` | back from an upstream's or the login's sign-in |
//!
//! Every page carries [`security_headers`]: no framing, a CSP that allows
//! only the inline stylesheet (by its hash) and forms posting to this
//! server (and, on a page whose grant finishes by redirect, the client's
//! registered origin, where the decision's 303 goes), no referrer, no
//! caching. The form token is bound to the interaction (see
//! `crate::authz::consent`); who decides comes from the browser's cookies,
//! checked by `crate::authz::decider` (the cookies: `cookies`).

use std::sync::{Arc, LazyLock};

use askama::Template;
use bytes::Bytes;
use warp::http::{Method, Response};

use super::{App, to_response};
use crate::authz::decision::{KEY_FIELD, Outcome, Presentation, Submission, USE_FIELD};
use crate::authz::login::LOGIN_CALLBACK_PATH;
use crate::authz::operator::{OPERATOR_PATH, OPERATOR_SIGN_OUT_PATH};
use crate::authz::person::Who;
use crate::authz::{
    ConnectView, ConsentView, DEVICE_PATH, Decided, EarlierChoice, FinishAction, FinishDelivery,
    INTERACT_PATH, PageError, Presented, Reply,
};
use crate::http::push::PushOutcome;
use crate::upstream::credential::Credential;
use crate::upstream::earlier;
use cookies::SameSite;

mod cookies;
mod io;
mod operator;

/// The pages' stylesheet, inlined in every page.
const CSS: &str = include_str!("../../../templates/style.css");

/// Largest form body read: a decision lists at most a few hundred boxes.
pub const MAX_FORM: usize = 16 * 1024;

/// `'sha256-…'` of [`CSS`], for `style-src`.
static STYLE_HASH: LazyLock<String> = LazyLock::new(|| {
    use sha2::Digest as _;
    format!(
        "'sha256-{}'",
        crate::proto::b64::encode_std(&sha2::Sha256::digest(CSS.as_bytes()))
    )
});

/// A page route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageRoute {
    /// An interaction page by its link.
    Interaction {
        /// Grant id.
        grant: String,
        /// The link's secret.
        secret: String,
    },
    /// The decision address of a grant.
    Decide(String),
    /// The user code page.
    Device,
    /// Where an upstream's AS sends the browser back after an OAuth
    /// connect ([`CONNECT_CALLBACK_PATH`]).
    ConnectCallback,
    /// Where the login's IdP sends the browser back ([`LOGIN_CALLBACK_PATH`]).
    LoginCallback,
    /// The operator's sign-in page ([`OPERATOR_PATH`]).
    Operator,
    /// Where the operator signs out ([`OPERATOR_SIGN_OUT_PATH`]).
    OperatorSignOut,
}

/// The redirect URI gnapd registers at upstreams' authorization servers.
pub const CONNECT_CALLBACK_PATH: &str = "/gnap/connect/callback";

impl PageRoute {
    /// The page route `path` names, if any.
    pub fn of(path: &str) -> Option<Self> {
        if path == DEVICE_PATH {
            return Some(Self::Device);
        }
        if path == CONNECT_CALLBACK_PATH {
            return Some(Self::ConnectCallback);
        }
        if path == LOGIN_CALLBACK_PATH {
            return Some(Self::LoginCallback);
        }
        if path == OPERATOR_PATH {
            return Some(Self::Operator);
        }
        if path == OPERATOR_SIGN_OUT_PATH {
            return Some(Self::OperatorSignOut);
        }
        let rest = path.strip_prefix(INTERACT_PATH)?;
        match rest.split_once('/') {
            Some((grant, secret)) if !secret.is_empty() && !secret.contains('/') => {
                Some(Self::Interaction {
                    grant: grant.to_owned(),
                    secret: secret.to_owned(),
                })
            }
            Some(_) => None,
            None if !rest.is_empty() => Some(Self::Decide(rest.to_owned())),
            None => None,
        }
    }
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    css: &'a str,
    view: &'a ConsentView,
    action: String,
    sign_out: &'a str,
}

#[derive(Template)]
#[template(path = "device.html")]
struct DevicePage<'a> {
    css: &'a str,
    error: Option<String>,
    action: &'a str,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    css: &'a str,
    heading: &'a str,
    message: &'a str,
    next: Option<&'a str>,
    class: &'a str,
}

/// The headers every page carries. `form_target` is an extra CSP source
/// forms may be sent to (the client's origin, for a redirect finish).
pub fn security_headers(form_target: Option<&str>) -> Vec<(&'static str, String)> {
    let form_action = match form_target {
        Some(source) => format!("'self' {source}"),
        None => "'self'".to_owned(),
    };
    vec![
        ("content-type", "text/html; charset=utf-8".into()),
        ("cache-control", "no-store".into()),
        ("x-frame-options", "DENY".into()),
        (
            "content-security-policy",
            format!(
                "default-src 'none'; style-src {}; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'",
                *STYLE_HASH
            ),
        ),
        ("referrer-policy", "no-referrer".into()),
        ("x-content-type-options", "nosniff".into()),
    ]
}

fn html(status: u16, body: Result<String, askama::Error>, form_target: Option<&str>) -> Reply {
    match body {
        Ok(body) => Reply {
            status,
            headers: security_headers(form_target),
            body: body.into_bytes(),
        },
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            Reply {
                status: 500,
                headers: security_headers(None),
                body: b"<!doctype html><title>Error</title><p>The page could not be shown.</p>"
                    .to_vec(),
            }
        }
    }
}

fn message(status: u16, heading: &str, text: &str, next: Option<&str>, class: &str) -> Reply {
    let page = MessagePage {
        css: CSS,
        heading,
        message: text,
        next,
        class,
    };
    html(status, page.render(), None)
}

/// Renders a grant's page for a browser that opened its link or entered
/// its code: with a redirect finish, the first such browser is the one the
/// finish goes to (`crate::authz::started_by`), named if it has no name
/// yet.
async fn started(app: &App, view: ConsentView, headers: &warp::http::HeaderMap) -> Reply {
    let mut named = None;
    if view.finishes_by_redirect {
        match cookies::browser_or_new(app, headers) {
            Ok((browser, header)) => {
                app.auth.bind_start(&view.grant, &browser);
                named = header;
            }
            Err(_) => return refused(&PageError::Internal),
        }
    }
    let token = cookies::login(headers, &view.grant);
    let mut reply = consent(app, view, 200, headers, token.as_deref()).await;
    reply.headers.extend(named);
    reply
}

/// Renders a grant's consent page. `login_token` is the browser's sign-in
/// for the grant (its cookie, or the one the answer is about to set).
async fn consent(
    app: &App,
    mut view: ConsentView,
    status: u16,
    headers: &warp::http::HeaderMap,
    login_token: Option<&str>,
) -> Reply {
    let connected = app.connections.sets(&view.grant);
    let who = who(app, headers, &view.grant, login_token);
    let decisions = io::decisions(app);
    // Forms may go to this server, to the client (a redirect finish) and,
    // through the 303 a "Connect" button gets, to upstreams' sign-in pages.
    let mut form_targets: Vec<String> = view.finish_origin.iter().cloned().collect();
    let mut connect = Vec::new();
    for u in decisions.connectable(&view.requested) {
        let oauth = u.connect.as_ref().is_some_and(|c| c.is_oauth());
        if let Some(crate::upstream::connect::Connect::OAuth {
            authorization_endpoint,
            ..
        }) = &u.connect
            && let Some(source) = crate::authz::consent::csp_source(authorization_endpoint)
            && !form_targets.contains(&source)
        {
            form_targets.push(source);
        }
        let connected = connected.iter().any(|(up, _)| *up == u.name);
        let earlier = decisions.earlier_sets(&who, &u.name).await;
        // The newest earlier set is preselected, unless a sign-in was just
        // made on this page (then that one).
        let none_chosen = connected || earlier.is_empty();
        connect.push(ConnectView {
            field: format!("connect.{}", u.name),
            required: u.credential_set.is_none(),
            oauth,
            connected,
            choice_field: format!("{USE_FIELD}{}", u.name),
            earlier: earlier
                .into_iter()
                .enumerate()
                .map(|(i, e)| EarlierChoice {
                    id: e.id,
                    text: e.text,
                    checked: i == 0 && !none_chosen,
                })
                .collect(),
            none_chosen,
            upstream: u.name.clone(),
        });
    }
    view.connect = connect;
    let operator = cookies::operator(headers);
    let presented = Presented {
        login: login_token,
        operator: operator.as_deref(),
    };
    view.authority = app.auth.authority(&view.grant, presented, now());
    if let Some(login) = &app.login
        && view.offers_login()
    {
        // The "Sign in" button's 303 goes to the IdP.
        if let Some(source) = crate::authz::consent::csp_source(login.authorization_endpoint())
            && !form_targets.contains(&source)
        {
            form_targets.push(source);
        }
    }
    let page = ConsentPage {
        css: CSS,
        view: &view,
        action: format!("{INTERACT_PATH}{}", view.grant),
        sign_out: OPERATOR_SIGN_OUT_PATH,
    };
    let targets = form_targets.join(" ");
    html(
        status,
        page.render(),
        (!targets.is_empty()).then_some(targets.as_str()),
    )
}

fn device(status: u16, error: Option<String>) -> Reply {
    let page = DevicePage {
        css: CSS,
        error,
        action: DEVICE_PATH,
    };
    html(status, page.render(), None)
}

/// The page for a refusal.
fn refused(error: &PageError) -> Reply {
    let text = error.to_string();
    match error {
        PageError::NotFound => message(
            404,
            "Nothing to approve here",
            &text,
            Some("Check the link, or ask the agent to start again."),
            "error",
        ),
        PageError::Expired => message(
            410,
            "This request expired",
            &text,
            Some("Ask the agent to start again: it will show a new link or code."),
            "error",
        ),
        PageError::AlreadyDecided => message(409, "Already decided", &text, None, "error"),
        // A 429 says when to come back (at the latest, when the attempt
        // window has passed).
        PageError::TooManyAttempts => message(429, "Too many attempts", &text, None, "error")
            .with_header("retry-after", crate::authz::usercode::WINDOW.to_string()),
        PageError::Forbidden => message(403, "Refused", &text, None, "error"),
        PageError::SignInRequired => message(
            403,
            "Sign in first",
            &text,
            Some(
                "Go back to the request's page: it says how to sign in, or ask the administrator to decide on the server (`gnapd grants approve`).",
            ),
            "error",
        ),
        PageError::AdminOnly => message(
            403,
            "An administrator decides",
            &text,
            Some(
                "Ask the administrator to run `gnapd grants approve` (or `deny`) with this request's code or id.",
            ),
            "error",
        ),
        PageError::NothingSelected => message(
            400,
            "Nothing was approved",
            &text,
            Some("Go back to the previous page to choose again."),
            "error",
        ),
        PageError::BadCode => device(400, Some(text)),
        PageError::Internal => message(500, "Something went wrong", &text, None, "error"),
    }
}

/// Reads `application/x-www-form-urlencoded` text.
fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    fn decode(text: &[u8]) -> String {
        let mut out = Vec::with_capacity(text.len());
        let mut i = 0;
        while i < text.len() {
            match text[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < text.len() => {
                    let hex = std::str::from_utf8(&text[i + 1..i + 3])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok());
                    match hex {
                        Some(byte) => {
                            out.push(byte);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                other => out.push(other),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    body.split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut parts = pair.splitn(2, |b| *b == b'=');
            let name = decode(parts.next().unwrap_or_default());
            let value = decode(parts.next().unwrap_or_default());
            (name, value)
        })
        .collect()
}

fn is_form(headers: &warp::http::HeaderMap) -> bool {
    headers
        .get(warp::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| {
            media
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Serves a page route. `source` names the browser's address (attempt
/// counting).
pub async fn serve(
    app: Arc<App>,
    method: Method,
    route: PageRoute,
    query: &str,
    headers: &warp::http::HeaderMap,
    body: Vec<u8>,
    source: String,
) -> Response<Bytes> {
    if let Err(retry_after) = app.auth.admit_page(&source) {
        let mut reply = message(
            429,
            "Too many requests",
            "Too many requests came from your address.",
            Some("Wait a minute and reload the page."),
            "error",
        );
        reply.headers.push(("retry-after", retry_after.to_string()));
        return to_response(reply);
    }
    let reply = match (route, &method) {
        (PageRoute::ConnectCallback, &Method::GET) => {
            connect_callback(&app, &parse_form(query.as_bytes()), headers).await
        }
        (PageRoute::LoginCallback, &Method::GET) => {
            login_callback(&app, &parse_form(query.as_bytes()), headers).await
        }
        (PageRoute::Device, &Method::GET | &Method::HEAD) => device(200, None),
        (PageRoute::Operator, &Method::GET | &Method::HEAD) => {
            operator::page(&parse_form(query.as_bytes()))
        }
        (PageRoute::Operator, &Method::POST) if is_form(headers) => {
            operator::sign_in(&app, &parse_form(&body), &source)
        }
        (PageRoute::OperatorSignOut, &Method::POST) if is_form(headers) => {
            operator::sign_out(&app, headers)
        }
        (PageRoute::Interaction { grant, secret }, &Method::GET | &Method::HEAD) => {
            let auth = app.auth.clone();
            let reload = format!("{INTERACT_PATH}{grant}/{secret}");
            let link = (grant.clone(), secret.clone());
            match blocking(move || auth.consent_by_link(&grant, &secret)).await {
                Ok(mut view) => {
                    view.reload = Some(reload);
                    started(&app, view, headers).await
                }
                Err(PageError::AlreadyDecided) => {
                    // Decided elsewhere: the browser that started it
                    // collects the finish redirect here.
                    let browser = cookies::browser(headers);
                    let auth = app.auth.clone();
                    let waiting = blocking(move || {
                        Ok(auth.collect_finish(&link.0, &link.1, browser.as_deref()))
                    })
                    .await;
                    match waiting {
                        Ok(Some(url)) => see_other(url),
                        _ => refused(&PageError::AlreadyDecided),
                    }
                }
                Err(e) => refused(&e),
            }
        }
        (PageRoute::Device, &Method::POST) if is_form(headers) => {
            let form = parse_form(&body);
            let code = field(&form, "code").unwrap_or_default().to_owned();
            let auth = app.auth.clone();
            match blocking(move || auth.consent_by_code(&code, &source)).await {
                Ok(view) => started(&app, view, headers).await,
                Err(e) => refused(&e),
            }
        }
        (PageRoute::Decide(grant), &Method::POST) if is_form(headers) => {
            decide(&app, grant, &parse_form(&body), source, headers).await
        }
        (_, &Method::POST) => message(
            415,
            "Not a form",
            "This address takes the page's own form only.",
            None,
            "error",
        ),
        _ => {
            let mut reply = message(
                405,
                "Not here",
                "This address does not take that kind of request.",
                None,
                "error",
            );
            reply.headers.push(("allow", "GET, POST".into()));
            reply
        }
    };
    to_response(reply)
}

/// The time, for the pages' in-memory state (sign-ins, sessions).
fn now() -> i64 {
    crate::clock::Clock::now(&crate::clock::SystemClock)
}

/// Whether the browser that sent `headers` may decide `grant` (and so
/// connect upstreams for it or forget sets on its page): the same check
/// as a decision's.
fn may_decide(app: &App, grant: &str, headers: &warp::http::HeaderMap) -> Result<(), PageError> {
    let presentation = presentation(headers, grant);
    app.auth
        .decider(grant, presentation.presented(), now())
        .map(|_| ())
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Runs a store-touching call off the async workers.
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, PageError> + Send + 'static,
) -> Result<T, PageError> {
    tokio::task::spawn_blocking(call)
        .await
        .unwrap_or(Err(PageError::Internal))
}

async fn decide(
    app: &Arc<App>,
    grant: String,
    form: &[(String, String)],
    source: String,
    headers: &warp::http::HeaderMap,
) -> Reply {
    let approve = match field(form, "decision") {
        Some("approve") => true,
        Some("deny") => false,
        Some("signin") => return login_start(app, grant, form, source, headers).await,
        Some(other) if other.starts_with("connect:") => {
            let upstream = other.trim_start_matches("connect:").to_owned();
            return connect_start(app, grant, &upstream, form, source, headers).await;
        }
        Some(other) if other.starts_with(FORGET) => {
            let id = other.trim_start_matches(FORGET).to_owned();
            return forget_earlier(app, grant, &id, form, source, headers).await;
        }
        _ => {
            return message(
                400,
                "No decision",
                "Choose Approve or Deny on the page.",
                None,
                "error",
            );
        }
    };
    let presentation = presentation(headers, &grant);
    let who = who(app, headers, &grant, presentation.login.as_deref());
    let submission = submission(grant, approve, form);
    let grant = submission.grant.clone();
    let outcome = io::decisions(app)
        .decide(submission, presentation.clone(), &who, &source)
        .await;
    match outcome {
        Outcome::Decided {
            decided,
            remembered,
        } => {
            let mut reply = finish(app, decided, headers).await;
            if let Some(value) = remembered.and_then(|ids| app.gateway.seal_earlier_cookie(&ids)) {
                // This browser connected (or picked) these sets: its next
                // consent pages offer them again (`crate::upstream::earlier`).
                reply.headers.push(cookies::set(
                    app,
                    earlier::COOKIE,
                    &value,
                    earlier::COOKIE_LIFETIME,
                    SameSite::Lax,
                ));
            }
            reply
        }
        Outcome::NotConnected(why) => match form_view(app, &grant, form, &source).await {
            Ok(mut view) => {
                view.notice = Some(why.to_string());
                consent(
                    app,
                    view,
                    why.status(),
                    headers,
                    presentation.login.as_deref(),
                )
                .await
            }
            Err(e) => refused(&e),
        },
        Outcome::Refused(e) => refused(&e),
    }
}

/// An Approve or Deny form, as the consent service takes it.
fn submission(grant: String, approve: bool, form: &[(String, String)]) -> Submission {
    let mut submission = Submission {
        grant,
        form_token: field(form, "csrf").map(str::to_owned),
        approve,
        ..Submission::default()
    };
    for (name, value) in form {
        match name.as_str() {
            "right" => {
                submission.selection.rights.insert(value.clone());
            }
            "tool" => {
                submission.selection.tools.insert(value.clone());
            }
            _ => {}
        }
        // The first value of a field counts, as for every other field.
        if let Some(upstream) = name.strip_prefix(KEY_FIELD) {
            submission
                .keys
                .entry(upstream.to_owned())
                .or_insert_with(|| value.clone());
        } else if let Some(upstream) = name.strip_prefix(USE_FIELD) {
            submission
                .chosen
                .entry(upstream.to_owned())
                .or_insert_with(|| value.clone());
        }
    }
    submission
}

/// What the browser that sent `headers` presented for deciding `grant`.
fn presentation(headers: &warp::http::HeaderMap, grant: &str) -> Presentation {
    Presentation {
        login: cookies::login(headers, grant),
        operator: cookies::operator(headers),
    }
}

/// The person on `grant`'s page: the login's subject, or without a login
/// the sets this browser's cookie lists.
fn who(app: &App, headers: &warp::http::HeaderMap, grant: &str, login_token: Option<&str>) -> Who {
    Who::of(app.login.as_deref(), grant, login_token, || {
        cookies::get(headers, earlier::COOKIE)
            .map(|value| app.gateway.open_earlier_cookie(&value))
            .unwrap_or_default()
    })
}

/// The page of `grant` a form was posted from: its form token checked and
/// the grant still pending.
async fn form_view(
    app: &App,
    grant: &str,
    form: &[(String, String)],
    source: &str,
) -> Result<ConsentView, PageError> {
    let auth = app.auth.clone();
    let token = field(form, "csrf").map(str::to_owned);
    let (grant, source) = (grant.to_owned(), source.to_owned());
    blocking(move || auth.consent_by_form(&grant, token.as_deref(), &source)).await
}

/// The decision value of a "Forget" button, before the set's id.
const FORGET: &str = "forget:";

/// A "Forget" button beside a set this person connected before: with the
/// page's form token and the grant still pending, and only for a set this
/// page offers this person (the same check as picking it), the set is
/// removed — every token mapped to it stops working — and the page is shown
/// again without it.
async fn forget_earlier(
    app: &Arc<App>,
    grant: String,
    id: &str,
    form: &[(String, String)],
    source: String,
    headers: &warp::http::HeaderMap,
) -> Reply {
    let mut view = match form_view(app, &grant, form, &source).await {
        Ok(view) => view,
        Err(e) => return refused(&e),
    };
    if let Err(e) = may_decide(app, &grant, headers) {
        return refused(&e);
    }
    let login_token = cookies::login(headers, &grant);
    let who = who(app, headers, &grant, login_token.as_deref());
    let forgotten = io::decisions(app)
        .forget(&grant, &view.requested, id, &who)
        .await;
    let (status, notice) = match forgotten {
        Ok(upstream) => (
            200,
            format!("Forgotten: agents given that connection no longer reach {upstream} with it."),
        ),
        Err(why) => (why.status(), why.to_string()),
    };
    view.notice = Some(notice);
    consent(app, view, status, headers, login_token.as_deref()).await
}

/// A "Connect NAME" button: with the page's form token and the grant still
/// pending, a 303 to the upstream's authorization endpoint with a fresh
/// single-use `state` and a PKCE S256 challenge.
async fn connect_start(
    app: &Arc<App>,
    grant: String,
    upstream: &str,
    form: &[(String, String)],
    source: String,
    headers: &warp::http::HeaderMap,
) -> Reply {
    let view = match form_view(app, &grant, form, &source).await {
        Ok(view) => view,
        Err(e) => return refused(&e),
    };
    if let Err(e) = may_decide(app, &grant, headers) {
        return refused(&e);
    }
    let target = io::decisions(app)
        .connectable(&view.requested)
        .into_iter()
        .find(|u| u.name == upstream && u.connect.as_ref().is_some_and(|c| c.is_oauth()));
    let Some(connect) = target.as_ref().and_then(|u| u.connect.as_ref()) else {
        return message(
            400,
            "Nothing to connect",
            "This request does not reach an upstream connected that way.",
            None,
            "error",
        );
    };
    let now = now();
    let Ok((browser, named)) = cookies::browser_or_new(app, headers) else {
        return refused(&PageError::Internal);
    };
    let from = crate::proto::address::AddressKey::of_source(&source);
    let Ok((state, challenge)) = app.connections.start(&grant, upstream, from, &browser, now)
    else {
        return refused(&PageError::Internal);
    };
    let Some(url) = connect.authorization_url(&callback_uri(app), &state, &challenge) else {
        return refused(&PageError::Internal);
    };
    tracing::info!(
        grant,
        upstream,
        "connect: sending the person to the upstream's sign-in"
    );
    let mut reply = see_other(url);
    reply.headers.extend(named);
    reply
}

/// A 303 to `url` (an IdP, an upstream's sign-in, the client's registered
/// finish URI), with the pages' security headers.
fn see_other(url: String) -> Reply {
    let mut headers = security_headers(None);
    headers.push(("location", url));
    Reply {
        status: 303,
        headers,
        body: Vec::new(),
    }
}

/// The page for a callback whose `state` is unknown, used or expired; the
/// person goes back to the request's page to `retry` ("connect", "sign in").
fn invalid_sign_in(retry: &str) -> Reply {
    message(
        400,
        "This sign-in is not valid here",
        &format!(
            "It may have been used already, or it expired. Go back to the request's page and {retry} again."
        ),
        None,
        "error",
    )
}

/// The `error` an authorization server sent back instead of a code
/// (RFC 6749 §4.1.2.1), when it is a plain code word fit to show; else
/// "no code".
fn provider_error(query: &[(String, String)]) -> &str {
    field(query, "error")
        .filter(|e| e.len() <= 64 && e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .unwrap_or("no code")
}

fn callback_uri(app: &App) -> String {
    format!("{}{CONNECT_CALLBACK_PATH}", app.auth.config().public_url)
}

/// The browser back from an upstream's sign-in: the `state` (taken once,
/// bound to the grant and upstream it was made for), then the code
/// exchanged with the PKCE verifier and gnapd's client authentication; the
/// tokens become an `oauth2` person-connected set, and the grant's page is
/// shown again, connected.
async fn connect_callback(
    app: &Arc<App>,
    query: &[(String, String)],
    headers: &warp::http::HeaderMap,
) -> Reply {
    let invalid = || invalid_sign_in("connect");
    let now = now();
    let browser = cookies::browser(headers);
    let taken =
        field(query, "state").and_then(|s| app.connections.take(s, browser.as_deref(), now));
    let Some(pending) = taken else {
        tracing::warn!(
            "connect callback refused: unknown, used or expired state, or another browser's"
        );
        return invalid();
    };
    let auth = app.auth.clone();
    let grant = pending.grant.clone();
    let view = match blocking(move || auth.consent_by_grant(&grant)).await {
        Ok(view) => view,
        Err(e) => return refused(&e),
    };
    let Some(connect) = app
        .gateway
        .upstream(&pending.upstream)
        .and_then(|u| u.connect.clone())
    else {
        return invalid();
    };
    let upstream = pending.upstream.as_str();
    let shown = |mut view: ConsentView, status: u16, notice: String| async move {
        view.notice = Some(notice);
        let token = cookies::login(headers, &view.grant);
        consent(app, view, status, headers, token.as_deref()).await
    };
    let Some(code) = field(query, "code").filter(|c| !c.is_empty()) else {
        let said = provider_error(query);
        return shown(
            view,
            400,
            format!("{upstream} did not connect ({said}). Try again, or deny."),
        )
        .await;
    };
    let Some(request) = connect.code_request(code, &pending.verifier, &callback_uri(app)) else {
        return invalid();
    };
    let failed = |e: &dyn std::fmt::Display| {
        tracing::warn!(upstream, error = %e, "connect: the code exchange failed");
        format!("{upstream} did not hand over access. Try connecting again.")
    };
    let credential = match app.gateway.token_request(&request).await {
        Ok((status, body)) => connect
            .exchanged(status, &body, now)
            .map_err(|e| failed(&e)),
        Err(e) => Err(failed(&e)),
    };
    let credential = match credential {
        Ok(credential) => credential,
        Err(notice) => return shown(view, 502, notice).await,
    };
    let kept = io::decisions(app)
        .keep_signed_in(
            &pending.grant,
            upstream,
            &Credential::OAuth2(Box::new(credential)),
        )
        .await;
    match kept {
        Ok(()) => shown(view, 200, format!("Connected to {upstream}.")).await,
        Err(e) => {
            tracing::error!(upstream, error = %e, "storing a connected credential failed");
            shown(
                view,
                500,
                "The server could not keep the connection. Try again.".into(),
            )
            .await
        }
    }
}

/// The "Sign in" button: with the page's form token and the grant still
/// pending, a 303 to the login's IdP with a fresh single-use `state` bound
/// to the grant, a PKCE S256 challenge and a `nonce`.
async fn login_start(
    app: &Arc<App>,
    grant: String,
    form: &[(String, String)],
    source: String,
    headers: &warp::http::HeaderMap,
) -> Reply {
    let Some(login) = &app.login else {
        return message(
            400,
            "No sign-in here",
            "This server has no sign-in configured.",
            None,
            "error",
        );
    };
    if let Err(e) = form_view(app, &grant, form, &source).await {
        return refused(&e);
    }
    let now = now();
    let Ok((browser, named)) = cookies::browser_or_new(app, headers) else {
        return refused(&PageError::Internal);
    };
    let from = crate::proto::address::AddressKey::of_source(&source);
    let Ok(url) = login.start(&grant, from, &browser, &login_callback_uri(app), now) else {
        return refused(&PageError::Internal);
    };
    tracing::info!(grant, "login: sending the person to the IdP");
    let mut reply = see_other(url);
    reply.headers.extend(named);
    reply
}

fn login_callback_uri(app: &App) -> String {
    format!("{}{LOGIN_CALLBACK_PATH}", app.auth.config().public_url)
}

/// The browser back from the IdP: the `state` (taken once, bound to the
/// grant it was made for, which must still be pending), the code exchanged
/// with the PKCE verifier, the ID token verified (with the `nonce` sent),
/// the subject checked against the allowed ones; then the grant's page
/// again, signed in.
async fn login_callback(
    app: &Arc<App>,
    query: &[(String, String)],
    headers: &warp::http::HeaderMap,
) -> Reply {
    let invalid = || invalid_sign_in("sign in");
    let Some(login) = &app.login else {
        return invalid();
    };
    let now = now();
    let browser = cookies::browser(headers);
    let taken = field(query, "state").and_then(|s| login.take(s, browser.as_deref(), now));
    let Some(started) = taken else {
        tracing::warn!(
            "login callback refused: unknown, used or expired state, or another browser's"
        );
        return invalid();
    };
    let auth = app.auth.clone();
    let grant = started.grant.clone();
    let view = match blocking(move || auth.consent_by_grant(&grant)).await {
        Ok(view) => view,
        Err(e) => return refused(&e),
    };
    let Some(code) = field(query, "code").filter(|c| !c.is_empty()) else {
        let said = provider_error(query);
        let mut view = view;
        view.notice = Some(format!("The sign-in did not complete ({said}). Try again."));
        return consent(app, view, 400, headers, None).await;
    };
    let request = login.code_request(code, &started.verifier, &login_callback_uri(app));
    let subject = match app.gateway.token_request(&request).await {
        Ok((status, body)) => login
            .subject_of(status, &body, &started.nonce, now)
            .map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    let subject = match subject {
        Ok(subject) => subject,
        Err(e) => {
            tracing::warn!(grant = %started.grant, error = %e, "login refused");
            let mut view = view;
            view.notice = Some("The sign-in could not be verified. Try again.".into());
            return consent(app, view, 502, headers, None).await;
        }
    };
    if !login.allows(&subject) {
        tracing::warn!(grant = %started.grant, subject, "login refused: the subject may not decide");
        return message(
            403,
            "You may not decide this",
            &format!("You signed in as {subject}, who may not approve or deny requests here."),
            None,
            "error",
        );
    }
    let Ok(token) = login.signed_in(&started.grant, &subject) else {
        return refused(&PageError::Internal);
    };
    tracing::info!(grant = %started.grant, subject, "login: signed in");
    let mut reply = consent(app, view, 200, headers, Some(&token)).await;
    // The sign-in is bound to this browser: only it holds the cookie that
    // lets a decision count as the subject's (anyone else holding the
    // grant's link, the agent included, does not).
    reply.headers.push(cookies::set(
        app,
        &cookies::login_name(&started.grant),
        &token,
        crate::upstream::oauth_client::STATE_LIFETIME * 6,
        SameSite::Lax,
    ));
    reply
}

/// Carries out the finish method (§4.2) and answers the browser: a 303 to
/// the client's registered URI for a redirect finish (approved or denied:
/// §4.2 "these steps still take place ... when the RO has denied access"),
/// otherwise the done or denied page (after the push, for a push finish).
async fn finish(app: &Arc<App>, decided: Decided, headers: &warp::http::HeaderMap) -> Reply {
    let back = "You can close this page and return to the agent.";
    match decided.finish {
        FinishAction::Redirect { url } => {
            let browser = cookies::browser(headers);
            match app
                .auth
                .deliver_finish(&decided.grant, browser.as_deref(), url)
            {
                FinishDelivery::Here(url) => return see_other(url),
                FinishDelivery::Elsewhere => {
                    let done = if decided.approved {
                        "approved"
                    } else {
                        "denied"
                    };
                    return message(
                        200,
                        &format!("Access {done}"),
                        &format!(
                            "You {done} the request. It was started in another browser, which takes the answer back to the agent."
                        ),
                        Some(
                            "Whoever started it opens the request's link again in that browser (the agent may show it again).",
                        ),
                        if decided.approved { "done" } else { "error" },
                    );
                }
            }
        }
        FinishAction::Push { uri, body } => match app.pusher.push(&uri, body).await {
            PushOutcome::Delivered(_) => {
                tracing::info!(grant = %decided.grant.0, "interaction finish pushed");
            }
            other => {
                tracing::warn!(grant = %decided.grant.0, outcome = %other, "interaction finish push not delivered");
            }
        },
        FinishAction::None => {}
    }
    if decided.approved {
        message(
            200,
            "Access approved",
            "You approved the access shown. The agent picks it up on its own.",
            Some(back),
            "done",
        )
    } else {
        message(
            200,
            "Access denied",
            "You denied the request. The agent gets no access from it.",
            Some(back),
            "error",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_routes_are_recognized() {
        assert_eq!(PageRoute::of("/gnap/device"), Some(PageRoute::Device));
        assert_eq!(
            PageRoute::of("/gnap/interact/g-1/s3cret"),
            Some(PageRoute::Interaction {
                grant: "g-1".into(),
                secret: "s3cret".into()
            })
        );
        assert_eq!(
            PageRoute::of("/gnap/interact/g-1"),
            Some(PageRoute::Decide("g-1".into()))
        );
        for other in [
            "/gnap/interact/",
            "/gnap/interact/g/",
            "/gnap/interact/g/s/x",
            "/gnap/devices",
        ] {
            assert_eq!(PageRoute::of(other), None, "{other}");
        }
    }

    #[test]
    fn forms_are_decoded() {
        assert_eq!(
            parse_form(b"code=ab+cd-%45F&tool=0.1.2&tool=0.1.3&x&bad=%zz%4"),
            [
                ("code".to_owned(), "ab cd-EF".to_owned()),
                ("tool".into(), "0.1.2".into()),
                ("tool".into(), "0.1.3".into()),
                ("x".into(), String::new()),
                ("bad".into(), "%zz%4".into()),
            ]
        );
    }

    #[test]
    fn every_page_denies_framing_scripts_and_referrers() {
        let headers = security_headers(Some("https://client.example"));
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(get("x-frame-options"), "DENY");
        assert_eq!(get("referrer-policy"), "no-referrer");
        assert_eq!(get("cache-control"), "no-store");
        let csp = get("content-security-policy");
        assert!(
            csp.starts_with("default-src 'none'; style-src 'sha256-"),
            "{csp}"
        );
        assert!(csp.contains("form-action 'self' https://client.example;"));
        assert!(csp.contains("frame-ancestors 'none'; base-uri 'none'"));
    }
}
