//! A client that names itself, or its access, with terminal escape
//! sequences or bidi overrides, to hide or rewrite a line of what the admin
//! reads before approving (`gnapd grants pending`): the AS refuses the
//! request (400 `invalid_request` naming the field), over real HTTP, and
//! the listing the real command prints holds only the honest grant.

use gnapd::clock::{Clock as _, SystemClock};
use gnapd::proto::text::is_hidden;
use serde_json::{Value, json};

use crate::support::agent::Agent;
use crate::support::http_client::send;
use crate::support::server::Server;

/// Escape sequences and overrides, each aimed at the listing: erase the
/// line and return to its start, move up and erase, the one-byte C1 CSI,
/// a right-to-left override that reverses what follows.
const ATTACKS: [&str; 4] = [
    "\x1b[2K\rgrant-0  code AAAA-BBBB  \"Company laptop\"",
    "\x1b[1A\x1b[2K",
    "\u{9b}1A\u{9b}2K",
    "\u{202e}buhtig retsam ot ssecca lluf",
];

fn grant(server: &Server, agent: &Agent, body: &Value) -> crate::support::http_client::Answer {
    let req = agent.signed(
        "POST",
        &server.grant_endpoint,
        None,
        Some(body),
        SystemClock.now(),
    );
    send(server.addr, &req)
}

#[test]
fn escape_sequences_in_a_client_name_or_access_cannot_reach_the_pending_listing() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gnapd.toml");
    std::fs::write(&config, "poll_wait = 0\n").unwrap();
    let data = dir.path().join("data");
    let server = Server::start(
        &data,
        &[
            "--dev",
            "--require-interaction",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    let agent = Agent::new();
    let interact = json!({"start": ["user_code"]});
    for attack in ATTACKS {
        let evil_name = {
            let mut body = agent.grant_body(json!(["mcp:github"]));
            body["client"]["display"]["name"] = format!("test agent{attack}").into();
            body
        };
        let evil_reference = agent.grant_body(json!([format!("mcp:github{attack}")]));
        let evil_tool = agent.grant_body(
            json!([{"type": "mcp", "identifier": "github", "tools": [format!("search{attack}")]}]),
        );
        for (mut body, field) in [
            (evil_name, "client.display.name"),
            (evil_reference, "access_token.access[0]"),
            (evil_tool, "access_token.access[0].tools[0]"),
        ] {
            body["interact"] = interact.clone();
            let answer = grant(&server, &agent, &body);
            let error = &answer.json()["error"];
            assert_eq!(
                (answer.status, error["code"].as_str()),
                (400, Some("invalid_request")),
                "{attack:?} in {field}: {}",
                answer.text()
            );
            let description = error["description"].as_str().unwrap();
            assert!(description.contains(&format!("`{field}`")), "{description}");
            assert!(!description.chars().any(is_hidden), "{description:?}");
        }
    }

    let mut honest = agent.grant_body(json!(["mcp:github"]));
    honest["interact"] = interact;
    assert_eq!(grant(&server, &agent, &honest).status, 200);
    let (ok, listing) = crate::support::run::gnapd_cli(&data, &["grants", "pending"]);
    assert!(ok);
    assert!(
        !listing.chars().filter(|c| *c != '\n').any(is_hidden),
        "{listing:?}"
    );
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 2, "one grant, one access line: {listing:?}");
    assert!(
        lines[0].contains("\"test agent\" (unverified name)"),
        "{listing:?}"
    );
    assert_eq!(lines[1], "    - full access to MCP upstream `github`");
}
