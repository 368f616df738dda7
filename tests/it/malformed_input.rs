//! The malformed-input campaign (issue 14): per endpoint — grant,
//! continuation, token management, introspection, resource registration,
//! gateway, pages, admin socket — requests made hostile in each of the nine
//! classes of `hostile` (truncated and oversized bodies, wrong types, deep
//! nesting, invalid UTF-8, duplicate and case-folded members, header
//! tricks, signature garbage), sent to `gnapd serve --dev` in front of the
//! Python MCP SDK upstream. Every answer is judged:
//! - never a 5xx, bar 503 with `Retry-After`; never a hang; never a panic
//!   (the server's stderr); the server serves a valid grant afterwards;
//! - the AS answers a GNAP `error` object with a registered code (RFC 9635
//!   §3.6 for clients, RFC 9767 §3.5 for resource servers), a 401 with
//!   `WWW-Authenticate: GNAP`; a garbled signature is never accepted, and at
//!   the grant endpoint it is `invalid_client`; an oversized body is 413; a
//!   signed body cut short or nested too deep is 400 `invalid_request`;
//! - the gateway answers a JSON-RPC error (a signed body cut short: -32700),
//!   a 401 with `WWW-Authenticate: GNAP`; the pages an HTML page; the admin
//!   socket one JSON answer line.
//!
//! Only header tricks (whose bytes are not HTTP) and oversized bodies may
//! end in a connection closed without an answer.
//!
//! `GNAPD_MALFORMED_PER_ENDPOINT` (default 300, the CI run; the full
//! campaign is 10000) and `GNAPD_MALFORMED_SEED`. Figures are printed at the
//! end and kept in spec-notes/security.md §6.2.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gnapd::proto::gnap::ErrorCode;
use gnapd::proto::gnap::rs::RsErrorCode;
use gnapd::proto::httpsig::{HttpRequest, SignOptions, sign_gnap};
use serde_json::{Value, json};

use crate::gateway_http::VERSION;
use crate::support::agent::Agent;
use crate::support::hostile::{
    CLASSES, Class, Draft, form_body, header_trick, json_body, signature_garbage,
};
use crate::support::mcp_upstream::Upstream;
use crate::support::raw_http::{Conn, Response, encode};
use crate::support::rng::Rng;
use crate::support::server::start_logged;

const COUNT_ENV: &str = "GNAPD_MALFORMED_PER_ENDPOINT";
const SEED_ENV: &str = "GNAPD_MALFORMED_SEED";
const WORKERS: usize = 3;
const TIMEOUT: Duration = Duration::from_secs(15);
/// gnapd's body limit (`max_body`).
const MAX_BODY: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Endpoint {
    Grant,
    Continuation,
    Management,
    Introspection,
    Registration,
    Gateway,
    Pages,
    AdminSocket,
}

const ENDPOINTS: [Endpoint; 8] = [
    Endpoint::Grant,
    Endpoint::Continuation,
    Endpoint::Management,
    Endpoint::Introspection,
    Endpoint::Registration,
    Endpoint::Gateway,
    Endpoint::Pages,
    Endpoint::AdminSocket,
];

/// Held grants taken so far (each from its own address).
static GRANTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The loopback address `127.0.a.b` hostile traffic or a held grant comes
/// from.
fn source(a: usize, b: usize) -> std::net::IpAddr {
    let byte = |n: usize| u8::try_from(n % 256).unwrap();
    std::net::IpAddr::from([127, 0, byte(a), byte(b)])
}

fn now() -> i64 {
    gnapd::clock::Clock::now(&gnapd::clock::SystemClock)
}

/// The server under test.
struct Target {
    addr: std::net::SocketAddr,
    base: String,
    data: PathBuf,
}

/// A grant a worker holds, for the endpoints that need one.
struct Held {
    agent: Arc<Agent>,
    continue_uri: String,
    cont: String,
    manage_uri: String,
    manage: String,
    token: String,
    /// The gateway session opened with the token, if the upstream gave one.
    session: Option<String>,
}

/// A valid request before it is made hostile.
struct Template {
    method: &'static str,
    uri: String,
    token: Option<String>,
    /// The gateway session, sent with its protocol version.
    session: Option<String>,
    signer: Arc<Agent>,
    body: Option<Value>,
}

/// What one hostile request was, for the judge.
struct Sent {
    endpoint: Endpoint,
    class: Class,
    method: String,
    /// The body sent is the one the signature covers (signed again after
    /// the mutation, or left as it was).
    covered: bool,
    /// The body is empty after the mutation: a body-less request.
    empty_body: bool,
    /// The body is past gnapd's limit (413 whatever its class).
    past_limit: bool,
    /// The signature field the garbage went to, if any.
    garbled: Option<&'static str>,
    /// The wire bytes promise more than was sent (closed after them).
    close: bool,
    /// A header field carries bytes HTTP forbids (controls): hyper refuses
    /// the message before gnapd sees it.
    bad_field: bool,
    /// A header trick changed the request target: it went elsewhere, and
    /// only the rules every answer keeps apply.
    retargeted: bool,
}

/// How the campaign went: counts per endpoint and class, outcomes, and
/// every verdict against the rules.
#[derive(Default)]
struct Tally {
    sent: BTreeMap<(Endpoint, Class), usize>,
    outcomes: BTreeMap<Endpoint, BTreeMap<String, usize>>,
    /// Answered 2xx: hostile requests the endpoint still took.
    accepted: BTreeMap<(Endpoint, Class), usize>,
    failures: Vec<String>,
}

struct Worker<'a> {
    target: &'a Target,
    conn: Conn,
    rng: Rng,
    rs: Arc<Agent>,
    held: Option<Held>,
    /// The last request sent on the kept connection and its outcome: what
    /// a failure on that connection may owe to.
    previous: String,
}

impl Worker<'_> {
    fn uri(&self, path: &str) -> String {
        format!("{}{path}", self.target.base)
    }

    /// The held grant, taken with a valid request when there is none.
    fn held(&mut self) -> &Held {
        if self.held.is_none() {
            let agent = Agent::new();
            let req = agent.signed(
                "POST",
                &self.uri("/gnap"),
                None,
                Some(&agent.grant_body(json!(["mcp:up"]))),
                now(),
            );
            // Each grant from an address of its own: the per-address
            // rates and caps are for the hostile requests to meet.
            let n = GRANTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut conn = Conn::new(self.target.addr, TIMEOUT)
                .coming_from(source(100 + n / 250, 1 + n % 250));
            let r = conn.exchange(&encode(&req)).unwrap();
            assert_eq!(r.status, 200, "a valid grant request: {}", r.text());
            let body = r.json();
            let text = |p: &str| body.pointer(p).and_then(Value::as_str).unwrap().to_owned();
            let token = text("/access_token/value");
            let session = self.open_session(&agent, &token);
            self.held = Some(Held {
                agent: Arc::new(agent),
                continue_uri: text("/continue/uri"),
                cont: text("/continue/access_token/value"),
                manage_uri: text("/access_token/manage/uri"),
                manage: text("/access_token/manage/access_token/value"),
                token,
                session,
            });
        }
        self.held.as_ref().unwrap()
    }

    /// A valid gateway request with `token`, on `session` if given.
    fn gateway_request(
        &self,
        agent: &Agent,
        token: &str,
        session: Option<&str>,
        method: &str,
        body: Option<&Value>,
    ) -> HttpRequest {
        let mut req = HttpRequest::new(method, self.uri("/mcp/up"));
        req.fields
            .append("Accept", "application/json, text/event-stream");
        if let Some(body) = body {
            req.fields.append("Content-Type", "application/json");
            req.body = serde_json::to_vec(body).unwrap();
        }
        if let Some(session) = session {
            req.fields.append("Mcp-Session-Id", session);
            req.fields.append("MCP-Protocol-Version", VERSION);
        }
        req.fields.append("Authorization", format!("GNAP {token}"));
        sign_gnap(&mut req, &agent.key, now(), &SignOptions::default()).unwrap();
        req
    }

    /// Opens a gateway session with `token` (initialize, then initialized),
    /// so hostile calls reach the session's checks and the upstream.
    fn open_session(&mut self, agent: &Agent, token: &str) -> Option<String> {
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "malformed-input", "version": "0"}}});
        let req = self.gateway_request(agent, token, None, "POST", Some(&init));
        let r = self.conn.exchange_again_if_stale(&encode(&req)).ok()?;
        let session = r.header("mcp-session-id")?.to_owned();
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let req = self.gateway_request(agent, token, Some(&session), "POST", Some(&note));
        self.conn.exchange_again_if_stale(&encode(&req)).ok()?;
        Some(session)
    }

    /// A valid request for a signed endpoint.
    fn template(&mut self, endpoint: Endpoint) -> Template {
        let rs_member = json!({"key": self.rs.client()["key"].clone()});
        let rs = self.rs.clone();
        match endpoint {
            Endpoint::Grant => {
                let agent = Arc::new(Agent::new());
                let body = json!({
                    "access_token": [
                        {"access": ["mcp:up", {"type": "photo-api", "actions": ["read"], "locations": ["https://x.example/"]}], "label": "one", "flags": []},
                        {"access": [{"type": "mcp", "identifier": "up", "actions": ["tools/call"], "tools": ["echo"]}], "label": "two"}
                    ],
                    "client": agent.client(),
                    "interact": {"start": ["redirect", "user_code"], "finish": {"method": "redirect", "uri": "https://x.example/cb", "nonce": "VJLO6A4CAYLBXHTR0KRO"}},
                    "subject": {"sub_id_formats": ["opaque", "iss_sub"]}
                });
                let uri = self.uri("/gnap");
                Template {
                    method: "POST",
                    uri,
                    token: None,
                    session: None,
                    signer: agent,
                    body: Some(body),
                }
            }
            Endpoint::Continuation => {
                let which = self.rng.below(3);
                let held = self.held();
                let (method, body) = match which {
                    0 => (
                        "POST",
                        Some(json!({"interact_ref": "4IFWWIKYBC2PQ6U56NL1"})),
                    ),
                    1 => (
                        "PATCH",
                        Some(json!({"access_token": {"access": ["mcp:up"], "label": "x"}})),
                    ),
                    _ => ("DELETE", None),
                };
                Template {
                    method,
                    uri: held.continue_uri.clone(),
                    token: Some(held.cont.clone()),
                    session: None,
                    signer: held.agent.clone(),
                    body,
                }
            }
            Endpoint::Management => {
                let method = if self.rng.chance(70) {
                    "POST"
                } else {
                    "DELETE"
                };
                let held = self.held();
                Template {
                    method,
                    uri: held.manage_uri.clone(),
                    token: Some(held.manage.clone()),
                    session: None,
                    signer: held.agent.clone(),
                    body: Some(json!({})),
                }
            }
            Endpoint::Introspection => {
                let token = self.held().token.clone();
                let body = json!({"access_token": token, "proof": "httpsig", "resource_server": rs_member, "access": ["mcp:up"]});
                Template {
                    method: "POST",
                    uri: self.uri("/gnap/introspect"),
                    token: None,
                    session: None,
                    signer: rs,
                    body: Some(body),
                }
            }
            Endpoint::Registration => {
                let body = json!({"access": ["mcp:up", {"type": "photo-api", "actions": ["read"]}], "resource_server": rs_member, "token_introspection_required": true});
                Template {
                    method: "POST",
                    uri: self.uri("/gnap/resource"),
                    token: None,
                    session: None,
                    signer: rs,
                    body: Some(body),
                }
            }
            Endpoint::Gateway => {
                let which = self.rng.below(6);
                let held = self.held();
                let session = held.session.clone();
                // Without a session only an initialize is valid.
                let (method, body) = match (which, &session) {
                    (0, _) | (_, None) => (
                        "POST",
                        Some(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                            "params": {"protocolVersion": VERSION, "capabilities": {"roots": {"listChanged": true}}, "clientInfo": {"name": "m", "version": "0"}}})),
                    ),
                    (1 | 2, _) => (
                        "POST",
                        Some(json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                            "params": {"name": "search_issues", "arguments": {"query": "hi"}, "_meta": {"progressToken": 1}}})),
                    ),
                    (3, _) => (
                        "POST",
                        Some(
                            json!({"jsonrpc": "2.0", "id": "s", "method": "tools/list", "params": {}}),
                        ),
                    ),
                    (4, _) => ("GET", None),
                    _ => ("DELETE", None),
                };
                let (token, signer) = (held.token.clone(), held.agent.clone());
                Template {
                    method,
                    uri: self.uri("/mcp/up"),
                    token: Some(token),
                    session: if which == 0 { None } else { session },
                    signer,
                    body,
                }
            }
            Endpoint::Pages | Endpoint::AdminSocket => unreachable!("not signed"),
        }
    }

    /// One hostile request for an AS or gateway endpoint.
    fn signed_hostile(&mut self, endpoint: Endpoint, class: Class) -> (Draft, Sent) {
        let t = self.template(endpoint);
        let body_class = !matches!(class, Class::HeaderTricks | Class::SignatureGarbage);
        // A body-less request gets a body to mutate all the same.
        let base = t
            .body
            .clone()
            .unwrap_or_else(|| json!({"x": [1, {"y": "z"}]}));
        let valid = t
            .body
            .as_ref()
            .map(|b| serde_json::to_vec(b).unwrap())
            .unwrap_or_default();
        let body = if body_class {
            json_body(&base, class, MAX_BODY, &mut self.rng)
        } else {
            valid.clone()
        };
        // Half the mutated bodies are signed as they are, so the reader
        // behind the signature check meets them; the others carry the
        // signature of the valid body (a digest that does not match).
        let resigned = !body_class || self.rng.chance(50);
        let mut req = HttpRequest::new(t.method, &t.uri);
        if endpoint == Endpoint::Gateway {
            req.fields
                .append("Accept", "application/json, text/event-stream");
        }
        if !body.is_empty() || !valid.is_empty() {
            req.fields.append("Content-Type", "application/json");
        }
        if let Some(session) = &t.session {
            req.fields.append("Mcp-Session-Id", session.as_str());
            req.fields.append("MCP-Protocol-Version", VERSION);
        }
        if let Some(token) = &t.token {
            req.fields.append("Authorization", format!("GNAP {token}"));
        }
        req.body = if resigned {
            body.clone()
        } else {
            serde_json::to_vec(&base).unwrap()
        };
        sign_gnap(&mut req, &t.signer.key, now(), &SignOptions::default()).unwrap();
        req.body = body.clone();
        let mut draft = Draft::of(&req);
        let mut close = false;
        let mut garbled = None;
        match class {
            Class::HeaderTricks => close = header_trick(&mut draft, &mut self.rng),
            Class::SignatureGarbage => {
                let field = signature_garbage(&mut draft, &mut self.rng);
                // A digest the signature does not cover (a body-less
                // request's) is not a signature field: nothing checks it.
                let covered = draft
                    .get("signature-input")
                    .is_some_and(|i| i.windows(16).any(|w| w == b"\"content-digest\""));
                garbled = (field != "content-digest" || covered).then_some(field);
            }
            _ => {}
        }
        let sent = Sent {
            endpoint,
            class,
            method: t.method.into(),
            covered: resigned || body == serde_json::to_vec(&base).unwrap(),
            empty_body: body.is_empty(),
            past_limit: body.len() > MAX_BODY,
            garbled,
            close,
            bad_field: forbidden_bytes(&draft),
            retargeted: draft.target != Draft::of(&req).target,
        };
        (draft, sent)
    }

    /// One hostile request for the pages.
    fn page_hostile(&mut self, class: Class) -> (Draft, Sent) {
        let grant = uuid::Uuid::new_v4();
        let (method, path, fields): (&str, String, Vec<(&str, &str)>) = match self.rng.below(7) {
            0 => ("GET", "/gnap/device".into(), vec![]),
            1 => ("POST", "/gnap/device".into(), vec![("code", "ABCD-EFGH")]),
            2 => (
                "GET",
                format!("/gnap/interact/{grant}/J2G8G8O4AZ4IFWWIKYBC"),
                vec![],
            ),
            3 => (
                "POST",
                format!("/gnap/interact/{grant}"),
                vec![
                    ("form_token", "AAAA"),
                    ("decision", "approve"),
                    ("right", "0"),
                ],
            ),
            4 => (
                "GET",
                "/gnap/connect/callback?state=AAAA&code=BBBB".into(),
                vec![],
            ),
            5 => ("POST", "/gnap/operator".into(), vec![("token", "AAAA")]),
            _ => ("POST", "/gnap/operator/sign-out".into(), vec![]),
        };
        let body = if method == "POST" {
            form_body(&fields, class, gnapd::http::pages::MAX_FORM, &mut self.rng)
        } else {
            Vec::new()
        };
        let mut draft = Draft {
            method: method.into(),
            target: path,
            headers: vec![(
                b"Host".to_vec(),
                self.target
                    .base
                    .trim_start_matches("http://")
                    .as_bytes()
                    .to_vec(),
            )],
            body,
            length: true,
        };
        if method == "POST" {
            draft.set("Content-Type", "application/x-www-form-urlencoded");
        }
        if class == Class::DeepNesting && method == "GET" {
            draft.target.push_str(&format!(
                "?q={}",
                "%5B".repeat(1_000 + self.rng.below(4_000))
            ));
        }
        if class == Class::InvalidUtf8 && method == "GET" {
            draft.target.push_str("?state=%ff%fe&code=%c0%af");
        }
        let mut close = false;
        let mut garbled = None;
        let before = draft.target.clone();
        match class {
            Class::HeaderTricks => close = header_trick(&mut draft, &mut self.rng),
            Class::SignatureGarbage => {
                // The pages' credentials are their cookies.
                let garbage = [
                    "gnapd_browser=AAAA",
                    "gnapd_operator=\u{ff}\u{fe}",
                    "gnapd_connected=!!!!; gnapd_browser=",
                    "gnapd_login=; ; ;=",
                    &format!("gnapd_operator={}", "A".repeat(5000)),
                ];
                draft.set("Cookie", self.rng.pick(&garbage).as_bytes().to_vec());
                garbled = Some("cookie");
            }
            _ => {}
        }
        let empty_body = draft.body.is_empty();
        let bad_field = forbidden_bytes(&draft);
        let retargeted = draft.target != before;
        (
            draft,
            Sent {
                endpoint: Endpoint::Pages,
                class,
                method: method.into(),
                covered: true,
                empty_body,
                past_limit: false,
                garbled,
                close,
                bad_field,
                retargeted,
            },
        )
    }

    /// Sends `draft` and judges the answer; a 2xx on an endpoint that
    /// spends the held grant's state lets it go.
    fn run(&mut self, draft: &Draft, sent: &Sent, tally: &Mutex<Tally>) {
        let alone = sent.close || matches!(sent.class, Class::HeaderTricks | Class::Oversized);
        let wire = draft.wire();
        let result = if alone {
            self.conn.exchange_alone(&wire, sent.close)
        } else {
            self.conn.exchange_again_if_stale(&wire)
        };
        let verdict = judge(sent, &result);
        if let Ok(r) = &result
            && (200..300).contains(&r.status)
            && (matches!(sent.endpoint, Endpoint::Continuation | Endpoint::Management)
                || (sent.endpoint == Endpoint::Gateway && sent.method == "DELETE"))
        {
            self.held = None;
        }
        let outcome = match &result {
            Ok(r) => r.status.to_string(),
            Err(e) => format!("closed ({:?})", e.kind()),
        };
        let mut tally = tally.lock().unwrap();
        *tally.sent.entry((sent.endpoint, sent.class)).or_default() += 1;
        *tally
            .outcomes
            .entry(sent.endpoint)
            .or_default()
            .entry(outcome.clone())
            .or_default() += 1;
        if let Ok(r) = &result
            && (200..300).contains(&r.status)
        {
            *tally
                .accepted
                .entry((sent.endpoint, sent.class))
                .or_default() += 1;
        }
        let shown = String::from_utf8_lossy(&wire[..wire.len().min(600)]).into_owned();
        if let Err(why) = verdict {
            tally.failures.push(format!(
                "{:?} {:?} {}: {why}\n  request: {shown:?}\n  after: {}",
                sent.endpoint, sent.class, sent.method, self.previous
            ));
        }
        if !alone {
            self.previous = format!("{shown:?} -> {outcome}");
        }
    }
}

/// A header field value with a control character HTTP does not allow.
fn forbidden_bytes(draft: &Draft) -> bool {
    draft
        .headers
        .iter()
        .any(|(_, v)| v.iter().any(|b| (*b < 0x20 && *b != b'\t') || *b == 0x7f))
}

/// The rules every answer must keep (see the module documentation).
fn judge(sent: &Sent, result: &std::io::Result<Response>) -> Result<(), String> {
    let r = match result {
        Ok(r) => r,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            return Err(format!("no answer within {TIMEOUT:?}"));
        }
        // Bytes that are not HTTP, or a body past the limit, may be
        // refused by closing.
        Err(_) if matches!(sent.class, Class::HeaderTricks | Class::Oversized) || sent.close => {
            return Ok(());
        }
        Err(e) => return Err(format!("the connection ended without an answer: {e}")),
    };
    let detail = || {
        format!(
            "{} {:?} {}",
            r.status,
            r.headers,
            r.text().chars().take(300).collect::<String>()
        )
    };
    if r.status >= 500 && !(r.status == 503 && r.header("retry-after").is_some()) {
        return Err(format!("a 5xx: {}", detail()));
    }
    if r.status == 429 && r.header("retry-after").is_none() {
        return Err(format!("429 without Retry-After: {}", detail()));
    }
    // hyper's own refusals of what is not HTTP carry no body.
    let from_hyper = r.status >= 400 && r.body.is_empty() && r.header("content-type").is_none();
    if from_hyper {
        return if sent.class == Class::HeaderTricks || sent.close || sent.bad_field {
            Ok(())
        } else {
            Err(format!("a bare refusal for well-framed HTTP: {}", detail()))
        };
    }
    // The pages read an oversized form as empty: it decides nothing.
    if sent.class == Class::Oversized && sent.endpoint != Endpoint::Pages && r.status != 413 {
        return Err(format!(
            "an oversized body not refused with 413: {}",
            detail()
        ));
    }
    if sent.retargeted {
        return Ok(());
    }
    let accepted = (200..300).contains(&r.status);
    if let Some(field) = sent.garbled
        && accepted
        && !(field == "authorization" && r.status == 204)
        && sent.endpoint != Endpoint::Pages
    {
        return Err(format!("a garbled {field} was accepted: {}", detail()));
    }
    // A DELETE's content is not read at the AS (§5.4, §6.2 define none);
    // it must still be the content the signature covers.
    let body_read = !(sent.method == "DELETE" && sent.endpoint != Endpoint::Gateway);
    let body_refused_always = matches!(
        sent.class,
        Class::Truncated | Class::DeepNesting | Class::Oversized
    );
    if accepted
        && body_refused_always
        && body_read
        && !sent.empty_body
        && sent.endpoint != Endpoint::Pages
    {
        return Err(format!(
            "a {:?} body was accepted: {}",
            sent.class,
            detail()
        ));
    }
    if accepted && !sent.covered && !sent.empty_body && sent.endpoint != Endpoint::Pages {
        return Err(format!(
            "a body its signature does not cover was accepted: {}",
            detail()
        ));
    }
    // A body that is not JSON (cut short) or nests past every reader's
    // depth, under a valid signature, is the client's malformed request:
    // 400 `invalid_request` where the AS always reads the body (§3.6,
    // RFC 9767 §3.5).
    let reads_body = matches!(
        sent.endpoint,
        Endpoint::Grant | Endpoint::Introspection | Endpoint::Registration
    );
    if reads_body
        && sent.covered
        && !sent.empty_body
        && matches!(sent.class, Class::Truncated | Class::DeepNesting)
        && !matches!(r.status, 429 | 503)
        && !(sent.past_limit && r.status == 413)
        && (r.status != 400 || r.json()["error"]["code"] != "invalid_request")
    {
        return Err(format!(
            "a {:?} body is not invalid_request: {}",
            sent.class,
            detail()
        ));
    }
    // At the gateway a body cut short is a JSON-RPC parse error (-32700).
    // (One nested deep may be valid JSON whose depth sits where a member
    // is read, a tool name say: refused by what reads it.)
    if sent.endpoint == Endpoint::Gateway
        && sent.method == "POST"
        && sent.covered
        && !sent.empty_body
        && sent.class == Class::Truncated
        && !matches!(r.status, 429 | 503)
        && (r.status != 400 || r.json()["error"]["code"] != -32700)
    {
        return Err(format!(
            "a {:?} body is not a parse error: {}",
            sent.class,
            detail()
        ));
    }
    match sent.endpoint {
        Endpoint::Grant | Endpoint::Continuation | Endpoint::Management => {
            if r.status >= 400 {
                gnap_error(r, |code| ErrorCode::from_name(code).is_some())?;
            }
            if sent.endpoint == Endpoint::Grant
                && sent.garbled.is_some_and(|f| f != "authorization")
                && r.status != 503
                && r.json()["error"]["code"] != "invalid_client"
            {
                return Err(format!(
                    "a garbled signature at the grant endpoint is not invalid_client: {}",
                    detail()
                ));
            }
        }
        Endpoint::Introspection | Endpoint::Registration => {
            if r.status >= 400 {
                gnap_error(r, |code| {
                    RsErrorCode::ALL.iter().any(|c| c.as_str() == code)
                })?;
            }
        }
        Endpoint::Gateway => {
            if r.status == 401
                && !r
                    .header_lines("www-authenticate")
                    .any(|v| v.starts_with("GNAP"))
            {
                return Err(format!("a 401 without a GNAP challenge: {}", detail()));
            }
            if r.status >= 400 && !r.json()["error"]["code"].is_i64() {
                return Err(format!("not a JSON-RPC error: {}", detail()));
            }
        }
        Endpoint::Pages => {
            if r.status >= 400
                && !r
                    .header("content-type")
                    .is_some_and(|c| c.starts_with("text/html"))
            {
                return Err(format!("a refused page that is not HTML: {}", detail()));
            }
        }
        Endpoint::AdminSocket => unreachable!("judged by admin_line"),
    }
    Ok(())
}

/// A GNAP (or RFC 9767) error object with a registered code; a 401 names
/// the AS in a `WWW-Authenticate: GNAP` challenge.
fn gnap_error(r: &Response, registered: impl Fn(&str) -> bool) -> Result<(), String> {
    let detail = || {
        format!(
            "{} {}",
            r.status,
            r.text().chars().take(300).collect::<String>()
        )
    };
    if !r
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json"))
    {
        return Err(format!("an error that is not JSON: {}", detail()));
    }
    let code = r.json()["error"]["code"].as_str().map(str::to_owned);
    if !code.as_deref().is_some_and(&registered) {
        return Err(format!("no registered error code: {}", detail()));
    }
    if r.status == 401
        && !r
            .header_lines("www-authenticate")
            .any(|v| v.starts_with("GNAP"))
    {
        return Err(format!("a 401 without a GNAP challenge: {}", detail()));
    }
    Ok(())
}

/// One hostile admin socket line, sent and judged: exactly one JSON answer
/// line, `ok` a boolean and an `error` string when it is false.
fn admin_line(data: &Path, class: Class, rng: &mut Rng) -> (String, Result<(), String>) {
    let commands = [
        json!({"op": "upstream_list"}),
        json!({"op": "grants_pending"}),
        json!({"op": "grants_approve", "code": "ABCD-EFGH"}),
        json!({"op": "grants_deny", "code": "00000000-0000-0000-0000-000000000000"}),
        json!({"op": "credentials_list"}),
        json!({"op": "upstream_remove", "name": "nope"}),
        json!({"op": "credentials_remove", "upstream": "nope"}),
    ];
    let command = rng.pick(&commands).clone();
    let mut line = match class {
        Class::HeaderTricks => {
            // Line tricks: no newline, CRLF, two commands, NUL, empty.
            let one = serde_json::to_vec(&command).unwrap();
            match rng.below(5) {
                0 => one,
                1 => [one, b"\r\n".to_vec()].concat(),
                2 => [one.clone(), b"\n".to_vec(), one].concat(),
                3 => [b"\0".to_vec(), one].concat(),
                _ => Vec::new(),
            }
        }
        Class::SignatureGarbage => {
            // The socket's one secret-bearing field.
            let credential = *rng.pick(&["", "bearer:", "header::x", "basic:", "\u{0}", "nope:x"]);
            serde_json::to_vec(
                &json!({"op": "credentials_add", "upstream": "nope", "credential": credential}),
            )
            .unwrap()
        }
        other => json_body(&command, other, gnapd::admin::socket::MAX_LINE, rng),
    };
    if class != Class::HeaderTricks {
        line.push(b'\n');
    }
    let shown = String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned();
    let verdict = (|| {
        let mut stream =
            std::os::unix::net::UnixStream::connect(gnapd::admin::socket::path_in(data))
                .map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(TIMEOUT))
            .map_err(|e| e.to_string())?;
        // The server may answer (too long) before reading it all.
        let _ = stream.write_all(&line);
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let mut answer = String::new();
        match stream.read_to_string(&mut answer) {
            Ok(_) => {}
            // A line past the limit is answered before it is all read, and
            // closing with unread bytes resets the connection, which may
            // take the answer with it.
            Err(e)
                if e.kind() == std::io::ErrorKind::ConnectionReset
                    && line.len() > gnapd::admin::socket::MAX_LINE =>
            {
                return Ok(());
            }
            Err(e) => return Err(format!("no answer: {e}")),
        }
        let lines: Vec<&str> = answer.lines().collect();
        if lines.len() != 1 {
            return Err(format!("{} answer lines: {answer:?}", lines.len()));
        }
        let value: Value =
            serde_json::from_str(lines[0]).map_err(|_| format!("not JSON: {answer:?}"))?;
        match value["ok"].as_bool() {
            Some(true) => Ok(()),
            Some(false) if value["error"].is_string() => Ok(()),
            _ => Err(format!("not an admin answer: {answer:?}")),
        }
    })();
    (shown, verdict)
}

#[test]
fn malformed_and_hostile_requests_get_the_specs_errors_and_never_a_5xx_a_hang_or_a_panic() {
    let per_endpoint: usize = crate::support::rng::knob(COUNT_ENV, 300);
    let seed: u64 = crate::support::rng::knob(SEED_ENV, 14);
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(dir.path(), true);
    let config = dir.path().join("gnapd.toml");
    std::fs::write(&config, "poll_wait = 0\n").unwrap();
    let log = dir.path().join("gnapd.log");
    let mut server = start_logged(
        &dir.path().join("data"),
        &log,
        &[
            "--dev",
            "--config",
            config.to_str().unwrap(),
            "--upstream",
            &format!("up={}", upstream.url()),
        ],
    );
    let target = Target {
        addr: server.addr,
        base: server.base(),
        data: dir.path().join("data"),
    };
    let tally = Mutex::new(Tally::default());
    let started = Instant::now();
    for (e, endpoint) in ENDPOINTS.into_iter().enumerate() {
        std::thread::scope(|s| {
            for w in 0..WORKERS {
                let (target, tally) = (&target, &tally);
                let mut rng = Rng::new(seed ^ ((e as u64 + 1) << 40) ^ ((w as u64 + 1) << 20));
                s.spawn(move || {
                    let mut worker = Worker {
                        target,
                        conn: Conn::new(target.addr, TIMEOUT)
                            .cutting_streams()
                            .coming_from(source(1 + e, 1 + w)),
                        rs: Arc::new(Agent::new()),
                        rng: Rng::new(rng.next()),
                        held: None,
                        previous: String::new(),
                    };
                    for i in (w..per_endpoint).step_by(WORKERS) {
                        let class = CLASSES[i % CLASSES.len()];
                        match endpoint {
                            Endpoint::AdminSocket => {
                                let (shown, verdict) =
                                    admin_line(&target.data, class, &mut worker.rng);
                                let mut tally = tally.lock().unwrap();
                                *tally.sent.entry((endpoint, class)).or_default() += 1;
                                let outcome = if verdict.is_ok() { "answered" } else { "wrong" };
                                *tally
                                    .outcomes
                                    .entry(endpoint)
                                    .or_default()
                                    .entry(outcome.into())
                                    .or_default() += 1;
                                if let Err(why) = verdict {
                                    tally.failures.push(format!(
                                        "AdminSocket {class:?}: {why}\n  line: {shown:?}"
                                    ));
                                }
                            }
                            Endpoint::Pages => {
                                let (draft, sent) = worker.page_hostile(class);
                                worker.run(&draft, &sent, tally);
                            }
                            _ => {
                                let (draft, sent) = worker.signed_hostile(endpoint, class);
                                worker.run(&draft, &sent, tally);
                            }
                        }
                    }
                });
            }
        });
    }
    let elapsed = started.elapsed();
    // Still up, still serving, and nothing panicked on the way.
    assert!(
        server.process.child.try_wait().unwrap().is_none(),
        "gnapd exited during the campaign"
    );
    let agent = Agent::new();
    let req = agent.signed(
        "POST",
        &format!("{}/gnap", target.base),
        None,
        Some(&agent.grant_body(json!(["mcp:up"]))),
        now(),
    );
    let after = Conn::new(target.addr, TIMEOUT)
        .exchange(&crate::support::raw_http::encode(&req))
        .unwrap();
    assert_eq!(
        after.status,
        200,
        "a valid grant after the campaign: {}",
        after.text()
    );
    server.kill();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    let tally = tally.into_inner().unwrap();
    let total: usize = tally.sent.values().sum();
    println!(
        "malformed-input campaign: {total} requests ({per_endpoint} per endpoint, seed {seed}) in {elapsed:?}"
    );
    for endpoint in ENDPOINTS {
        let by_class: Vec<String> = CLASSES
            .iter()
            .map(|c| {
                format!(
                    "{c:?} {} ({} 2xx)",
                    tally.sent.get(&(endpoint, *c)).copied().unwrap_or(0),
                    tally.accepted.get(&(endpoint, *c)).copied().unwrap_or(0)
                )
            })
            .collect();
        println!(
            "  {endpoint:?}: outcomes {:?}; by class: {}",
            tally.outcomes.get(&endpoint).cloned().unwrap_or_default(),
            by_class.join(", ")
        );
    }
    assert!(
        !log.contains("panicked"),
        "gnapd panicked: {}",
        log.lines()
            .filter(|l| l.contains("panicked"))
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        tally.failures.is_empty(),
        "{} of {total} answers broke the rules; one of each kind:\n{}",
        tally.failures.len(),
        one_of_each(&tally.failures).join("\n")
    );
}

/// The first failure of each kind (endpoint, class, method and the rule's
/// first words), so a run's report stays readable.
fn one_of_each(failures: &[String]) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    failures
        .iter()
        .filter(|f| seen.insert(f.chars().take(70).collect::<String>()))
        .take(40)
        .cloned()
        .collect()
}

/// Found by the campaign: the device page's 429 for too many wrong codes
/// said nothing of when to come back (RFC 9110 §15.5.20 and issue 14 want
/// `Retry-After` on every 429).
#[test]
fn a_page_refusing_too_many_wrong_codes_says_when_to_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = crate::support::server::Server::start(&dir.path().join("data"), &["--dev"]);
    let mut conn = Conn::new(server.addr, TIMEOUT);
    let body = "code=2222-3333";
    let wire = format!(
        "POST /gnap/device HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        server.addr,
        body.len()
    );
    for _ in 0..50 {
        let r = conn.exchange_again_if_stale(wire.as_bytes()).unwrap();
        if r.status == 429 {
            let after: Option<u64> = r.header("retry-after").and_then(|v| v.parse().ok());
            assert!(
                after.is_some_and(|s| s > 0),
                "a 429 without a Retry-After in seconds: {:?}",
                r.headers
            );
            return;
        }
        assert_eq!(r.status, 400, "a wrong code: {}", r.text());
    }
    panic!("50 wrong codes from one address were never refused with 429");
}
