//! Resuming streams (`Last-Event-ID`, issue 13 §2): an agent resumes only
//! streams it received. The event ids the gateway hands out are sealed to
//! the receiving key, credential set, upstream and session; anything else
//! presented back is refused before the upstream — whose event store here
//! (tests/interop/mcp_upstream.py `--event-store`) replays any stream of
//! any session from any id it knows, as the SDK's event store hook lets it
//! — is asked.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::gateway_http::{Session, dev_gateway_for_github, send_streaming, stream, token};
use crate::support::agent::Agent;
use crate::support::mcp_upstream::Upstream;
use crate::support::server::Server;

struct Fixture {
    upstream: Upstream,
    server: Server,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start_resumable(dir.path());
    let server = dev_gateway_for_github(dir.path(), &upstream.url());
    Fixture {
        upstream,
        server,
        _dir: dir,
    }
}

fn full_access(f: &Fixture, agent: &Agent) -> String {
    token(&f.server, agent, json!(["mcp:github"]))
}

/// Calls `search_issues` for `query` in session `s` and gives the event
/// stream's text and its first event id.
fn search(s: &Session<'_>, query: &str) -> (String, String) {
    let call = json!({"jsonrpc": "2.0", "id": 20, "method": "tools/call",
        "params": {"name": "search_issues", "arguments": {"query": query}}});
    let (status, chunks) = send_streaming(s.server.addr, &s.request("POST", Some(&call), &[]));
    assert_eq!(status, 200);
    let text: String = chunks.iter().map(|(_, c)| c.as_str()).collect();
    assert!(text.contains(query), "{text}");
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("id:"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no event id in {text}"))
        .to_owned();
    (text, id)
}

/// Opens `s`'s GET stream resuming from `last`, and gives what came within
/// a few seconds (the status first, as `status N`).
fn resume(s: &Session<'_>, last: &str) -> String {
    let events = stream(
        s.server.addr,
        s.request("GET", None, &[("Last-Event-ID", last)]),
    );
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(4);
    while Instant::now() < deadline && !seen.contains("found 1 issue") {
        match events.recv_timeout(Duration::from_millis(200)) {
            Ok(chunk) => seen.push_str(&chunk),
            // The answer is over (a refusal).
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
    }
    seen
}

/// GET requests the upstream has received.
fn gets(upstream: &Upstream) -> usize {
    upstream
        .requests()
        .iter()
        .filter(|(m, _)| m == "GET")
        .count()
}

/// `seen` is a 400 refusal, and nothing of the stream came with it.
fn assert_refused(seen: &str, secret: &str) {
    assert!(seen.starts_with("status 400"), "{seen}");
    assert!(seen.contains("-32600"), "{seen}");
    assert!(!seen.contains(secret), "the stream was replayed: {seen}");
}

#[test]
fn a_sealed_event_id_resumes_its_own_stream() {
    let f = fixture();
    let alice = Agent::new();
    let mut s = Session::new(&f.server, &alice, Some(full_access(&f, &alice)), "github");
    s.initialize();
    let (text, first) = search(&s, "alice-query");
    // What the agent got is sealed, not the upstream's own id.
    assert!(first.contains('.') && !first.starts_with("e-"), "{text}");
    let seen = resume(&s, &first);
    assert!(seen.starts_with("status 200"), "{seen}");
    assert!(seen.contains("found 1 issue for alice-query"), "{seen}");
    // The replayed events are sealed too.
    for id in seen.lines().filter_map(|l| l.strip_prefix("id:")) {
        assert!(!id.trim().starts_with("e-"), "{seen}");
    }
}

#[test]
fn another_keys_event_id_does_not_resume_its_stream() {
    let f = fixture();
    let alice = Agent::new();
    let mut a = Session::new(&f.server, &alice, Some(full_access(&f, &alice)), "github");
    a.initialize();
    let (_, alices) = search(&a, "alice-secret");

    // Mallory, with a token and a session of her own, presents the id
    // Alice received.
    let mallory = Agent::new();
    let mut m = Session::new(
        &f.server,
        &mallory,
        Some(full_access(&f, &mallory)),
        "github",
    );
    m.initialize();
    let before = gets(&f.upstream);
    assert_refused(&resume(&m, &alices), "alice-secret");
    assert_eq!(gets(&f.upstream), before, "the upstream was asked");
}

#[test]
fn an_event_id_from_another_session_does_not_resume_it() {
    let f = fixture();
    let alice = Agent::new();
    let token = full_access(&f, &alice);
    let mut first = Session::new(&f.server, &alice, Some(token.clone()), "github");
    first.initialize();
    let (_, id) = search(&first, "first-session-secret");
    // The same key, another session.
    let mut second = Session::new(&f.server, &alice, Some(token), "github");
    second.initialize();
    assert_ne!(first.session_id, second.session_id);
    let before = gets(&f.upstream);
    assert_refused(&resume(&second, &id), "first-session-secret");
    assert_eq!(gets(&f.upstream), before, "the upstream was asked");
}

#[test]
fn a_forged_or_unsealed_event_id_is_refused() {
    let f = fixture();
    let alice = Agent::new();
    let mut a = Session::new(&f.server, &alice, Some(full_access(&f, &alice)), "github");
    a.initialize();
    let (text, sealed) = search(&a, "alice-secret");
    let mallory = Agent::new();
    let mut m = Session::new(
        &f.server,
        &mallory,
        Some(full_access(&f, &mallory)),
        "github",
    );
    m.initialize();
    let (id, tag) = sealed.split_once('.').unwrap_or((&sealed, ""));
    let before = gets(&f.upstream);
    // The upstream's ids are small counters (`e-1`, `e-2`, ...): guessed,
    // and with the sealed one's parts rearranged or cut.
    for forged in [
        "e-1".to_owned(),
        "e-2".to_owned(),
        "e-3".to_owned(),
        format!("{}.{tag}", gnapd::proto::b64::encode_url(b"e-1")),
        format!("{id}.{}", tag.get(1..).unwrap_or_default()),
        format!("{id}.AAAAAAAAAAAAAAAAAAAAAA"),
        "not an id".to_owned(),
    ] {
        assert_refused(&resume(&m, &forged), "alice-secret");
    }
    assert_eq!(gets(&f.upstream), before, "the upstream was asked");
    // Given twice, even the genuine one is refused.
    let events = stream(
        f.server.addr,
        a.request(
            "GET",
            None,
            &[("Last-Event-ID", &sealed), ("Last-Event-ID", &sealed)],
        ),
    );
    let status = events.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(status, "status 400", "{text}");
}
