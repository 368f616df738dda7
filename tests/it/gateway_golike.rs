//! Smuggling past the gateway's reading of a message (issue 13 §2): the
//! gateway decides on the method, tool, resource and prompt it reads, and
//! an upstream whose decoder reads member names otherwise — Go's
//! `encoding/json`: case-blind, Unicode-folding, last duplicate wins — must
//! never execute anything else. The upstream here
//! (tests/interop/mcp_golike_upstream.py) decodes exactly that way and
//! records what it runs; each test first shows that a variant, sent to it
//! straight, does run what the token forbids, then that through the signed
//! gateway it runs nothing.

use gnapd::proto::httpsig::{HttpRequest, SignOptions, sign_gnap};
use serde_json::{Value, json};

use crate::gateway_http::{Session, now, token};
use crate::support::agent::Agent;
use crate::support::http_client::{Answer, send};
use crate::support::mcp_upstream::GoLikeUpstream;
use crate::support::server::{Server, start_logged};

struct Fixture {
    upstream: GoLikeUpstream,
    server: Server,
    agent: Agent,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    fixture_with(&[])
}

fn fixture_with(upstream_args: &[&str]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let upstream = GoLikeUpstream::start(dir.path(), upstream_args);
    let github = format!("github={}", upstream.url());
    let server = start_logged(
        &dir.path().join("data"),
        &dir.path().join("gnapd.log"),
        &["--dev", "--upstream", &github],
    );
    Fixture {
        upstream,
        server,
        agent: Agent::new(),
        _dir: dir,
    }
}

/// `body` as it is (duplicates, escapes and all), signed for `s`.
fn signed(s: &Session<'_>, body: &str) -> HttpRequest {
    signed_with(s, body, &[])
}

/// [`signed`] with `extra` headers.
fn signed_with(s: &Session<'_>, body: &str, extra: &[(&str, &str)]) -> HttpRequest {
    let mut req = HttpRequest::new("POST", s.uri());
    req.fields
        .append("Accept", "application/json, text/event-stream");
    req.fields.append("Content-Type", "application/json");
    for (name, value) in extra {
        req.fields.append(*name, *value);
    }
    req.body = body.as_bytes().to_vec();
    req.fields.append(
        "Authorization",
        format!("GNAP {}", s.token.as_deref().unwrap()),
    );
    sign_gnap(&mut req, &s.agent.key, now(), &SignOptions::default()).unwrap();
    req
}

/// `body` straight to the upstream, around the gateway.
fn direct(upstream: &GoLikeUpstream, body: &str) -> Answer {
    let mut req = HttpRequest::new("POST", upstream.url());
    req.fields.append("Content-Type", "application/json");
    req.body = body.as_bytes().to_vec();
    send(([127, 0, 0, 1], upstream.port).into(), &req)
}

/// For each body: through the gateway it is refused (400) and the upstream
/// executes nothing; sent straight, the upstream executes `forbidden` —
/// so the refusal is what stops the attack, not the upstream.
fn assert_refused_and_never_executed(
    f: &Fixture,
    s: &Session<'_>,
    bodies: &[&str],
    forbidden: &Value,
) {
    for body in bodies {
        let before = f.upstream.executed().len();
        let answer = s.send(&signed(s, body));
        assert_eq!(answer.status, 400, "{body}: {}", answer.text());
        assert_eq!(answer.json()["error"]["code"], -32600, "{body}");
        assert_eq!(
            f.upstream.executed()[before..],
            [] as [Value; 0],
            "the upstream executed something for {body}"
        );
        let straight = direct(&f.upstream, body);
        assert_eq!(straight.status, 200, "{body}: {}", straight.text());
        assert_eq!(
            f.upstream.executed().last(),
            Some(forbidden),
            "{body} is no attack on this upstream"
        );
    }
}

#[test]
fn a_tool_name_spelled_for_a_case_blind_or_folding_decoder_never_reaches_the_upstream() {
    let f = fixture();
    let search_only = json!([{"type": "mcp", "identifier": "github",
        "actions": ["tools/list", "tools/call"], "tools": ["search_issues"]}]);
    let s = Session::new(
        &f.server,
        &f.agent,
        Some(token(&f.server, &f.agent, search_only)),
        "github",
    );

    // The granted tool runs; the ungranted one is refused by name.
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_issues","arguments":{}}}"#;
    assert_eq!(s.send(&signed(&s, call)).status, 200);
    assert_eq!(
        f.upstream.executed(),
        [json!({"method": "tools/call", "name": "search_issues"})]
    );

    let p = |members: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{{members},"arguments":{{}}}}}}"#
        )
    };
    let bodies = [
        p(r#""name":"search_issues","Name":"delete_repo""#),
        p(r#""name":"search_issues","NAME":"delete_repo""#),
        p(r#""name":"search_issues","nAmE":"delete_repo""#),
        // Escaped spellings: decoded before any matching.
        p(r#""name":"search_issues","\u004eame":"delete_repo""#),
        p(r#""name":"search_issues","n\u0061me":"delete_repo""#),
        // A plain duplicate: last wins here, first wins elsewhere.
        p(r#""name":"search_issues","name":"delete_repo""#),
    ];
    let bodies: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let deleted = json!({"method": "tools/call", "name": "delete_repo"});
    assert_refused_and_never_executed(&f, &s, &bodies, &deleted);

    // Spellings that fool other decoders than this one (first wins; a
    // C-string decoder stopping at the NUL) are refused all the same.
    for members in [
        r#""Name":"delete_repo","name":"search_issues""#,
        r#""name":"search_issues","name\u0000":"delete_repo""#,
    ] {
        let before = f.upstream.executed().len();
        assert_eq!(s.send(&signed(&s, &p(members))).status, 400, "{members}");
        assert_eq!(f.upstream.executed().len(), before);
    }
}

#[test]
fn a_smuggled_top_level_method_id_or_params_never_reaches_the_upstream() {
    let f = fixture();
    // tools/list and tools/call are granted, but only one tool.
    let search_only = json!([{"type": "mcp", "identifier": "github",
        "actions": ["tools/list", "tools/call"], "tools": ["search_issues"]}]);
    let s = Session::new(
        &f.server,
        &f.agent,
        Some(token(&f.server, &f.agent, search_only)),
        "github",
    );
    let bodies = [
        // The gateway reads tools/list (granted); Go reads the last
        // `method` it folds to: tools/call.
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call","params":{"name":"delete_repo"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","METHOD":"tools/call","params":{"name":"delete_repo"}}"#,
        // Other params than the ones decided on: `Params`, and `paramſ`
        // (long s, which Go folds to S).
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_issues"},"Params":{"name":"delete_repo"}}"#,
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"search_issues\"},\"param\u{17f}\":{\"name\":\"delete_repo\"}}",
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_issues"},"param\u017f":{"name":"delete_repo"}}"#,
        // A notification to the gateway (no id, a notifications/ method:
        // lifecycle, always let through) is a tools/call request to Go.
        r#"{"jsonrpc":"2.0","method":"notifications/initialized","ID":7,"METHOD":"tools/call","params":{"name":"delete_repo"}}"#,
        // Dotless i: Go folds `ıd` to ID.
        r#"{"jsonrpc":"2.0","method":"notifications/initialized","\u0131d":7,"Method":"tools/call","params":{"name":"delete_repo"}}"#,
    ];
    let deleted = json!({"method": "tools/call", "name": "delete_repo"});
    assert_refused_and_never_executed(&f, &s, &bodies, &deleted);
}

#[test]
fn a_resource_uri_or_prompt_name_spelled_for_a_folding_decoder_never_reaches_the_upstream() {
    let f = fixture();
    let access = json!([{"type": "mcp", "identifier": "github",
        "actions": ["resources/read", "prompts/get"]}]);
    let s = Session::new(
        &f.server,
        &f.agent,
        Some(token(&f.server, &f.agent, access)),
        "github",
    );

    // The gateway reads `uri` for a resource, and the routing header it
    // checks names it: a `name` beside it changes nothing.
    let read = r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"name":"file:///secret","uri":"file:///public"}}"#;
    let mismatch = s.send(&signed_with(&s, read, &[("Mcp-Name", "file:///secret")]));
    assert_eq!(mismatch.status, 400, "{}", mismatch.text());
    assert_eq!(mismatch.json()["error"]["code"], -32020);
    assert!(f.upstream.executed().is_empty());

    let bodies = [
        // Dotless and dotted capital i: Go reads both as URI.
        r#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///public","ur\u0131":"file:///secret"}}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///public","ur\u0130":"file:///secret"}}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///public","URI":"file:///secret"}}"#,
    ];
    let secret = json!({"method": "resources/read", "uri": "file:///secret"});
    assert_refused_and_never_executed(&f, &s, &bodies, &secret);

    let bodies = [
        r#"{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"greeting","Name":"secret"}}"#,
    ];
    let prompt = json!({"method": "prompts/get", "name": "secret"});
    assert_refused_and_never_executed(&f, &s, &bodies, &prompt);
}

#[test]
fn a_tool_list_answering_a_request_of_another_method_is_filtered() {
    // An upstream that dispatches methods whatever their case: to it,
    // `Tools/List` is tools/list, to the gateway another method, which a
    // token without `actions` allows.
    let f = fixture_with(&["--methods-any-case"]);
    let search_only = json!([{"type": "mcp", "identifier": "github", "tools": ["search_issues"]}]);
    let s = Session::new(
        &f.server,
        &f.agent,
        Some(token(&f.server, &f.agent, search_only)),
        "github",
    );
    for method in ["Tools/List", "TOOLS/LIST"] {
        let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}"}}"#);
        let answer = s.send(&signed(&s, &body));
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(
            crate::gateway_http::tool_names(&answer.json()),
            ["search_issues"],
            "{method}"
        );
        // The same request straight to the upstream lists everything.
        let straight = direct(&f.upstream, &body).json();
        assert_eq!(crate::gateway_http::tool_names(&straight).len(), 2);
    }
}
