//! `gnapd serve --store CONNINFO` on loopback: the AS and the gateway on
//! PostgreSQL. A token answered before a SIGKILL still opens the upstream
//! after the restart, and what the database holds reveals neither the
//! token nor the upstream's secret; an interaction is decided and finished
//! once.

use serde_json::json;

use crate::gateway_http::Session;
use crate::interaction_http::grants;
use crate::interaction_pages::continue_;
use crate::support::agent::Agent;
use crate::support::mcp_upstream::Upstream;
use crate::support::postgres::Schema;
use crate::support::server::{Serve, Server};

const SECRET: &str = "UPSTREAM-SECRET-ON-POSTGRES";

fn call_once(server: &Server, agent: &Agent, token: &str) -> u16 {
    let mut session = Session::new(server, agent, Some(token.to_owned()), "github");
    session.initialize();
    let call = session.call(
        "tools/call",
        json!({"name": "search_issues", "arguments": {"query": "gnap"}}),
    );
    call.status
}

#[test]
fn a_token_gnapd_answered_on_postgres_still_works_at_the_gateway_after_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(dir.path(), true);
    let schema = Schema::new();
    // The data dir keeps the dev master key and the admin socket; the
    // records go to PostgreSQL.
    let data = dir.path().join("data");
    let github = format!("github={}", upstream.url());
    let credential = format!("github=bearer:{SECRET}");
    let args = [
        "--dev",
        "--store",
        schema.conninfo.as_str(),
        "--upstream",
        &github,
        "--upstream-credential",
        &credential,
    ];
    let serve = || {
        Serve::new(&data)
            .args(&args)
            .log(&dir.path().join("gnapd.log"))
            .start()
    };
    let server = serve();
    let agent = Agent::new();
    let answer = server.grant(&agent, &agent.grant_body(json!(["mcp:github"])));
    assert_eq!(answer.status, 200, "{}", answer.text());
    let granted = answer.json();
    let token = granted["access_token"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let manage = granted["access_token"]["manage"]["access_token"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(call_once(&server, &agent, &token), 200);
    server.kill();

    assert!(
        !data.join("store").exists(),
        "no sled store beside PostgreSQL"
    );
    let mut db = schema.client();
    let tokens: i64 = db
        .query_one("SELECT count(*) FROM tokens", &[])
        .unwrap()
        .get(0);
    assert_eq!(tokens, 1);
    // A dump of every record: hashes and sealed bytes only.
    for table in [
        "grants",
        "tokens",
        "instances",
        "credential_sets",
        "upstreams",
    ] {
        for row in db
            .query(&format!("SELECT record FROM {table}"), &[])
            .unwrap()
        {
            let record: Vec<u8> = row.get(0);
            for (what, value) in [
                ("the upstream secret", SECRET),
                ("the access token", token.as_str()),
                ("the management token", manage.as_str()),
            ] {
                assert!(
                    !record.windows(value.len()).any(|w| w == value.as_bytes()),
                    "{what} is in {table}"
                );
            }
        }
    }

    let server = serve();
    assert_eq!(call_once(&server, &agent, &token), 200, "after SIGKILL");
    // A value one character off finds nothing.
    let last = if token.ends_with('A') { "B" } else { "A" };
    let forged = format!("{}{last}", &token[..token.len() - 1]);
    let refused =
        Session::new(&server, &agent, Some(forged), "github").call("tools/list", json!({}));
    assert_eq!(refused.status, 401, "{}", refused.text());
    assert_eq!(server.stop(), Some(0));
}

/// Interaction on PostgreSQL: the person's decision through the admin
/// socket (`decide_interaction`), the client's polling that takes the
/// result (`finish_interaction`), and a second decision refused.
#[test]
fn a_user_code_approved_on_postgres_gives_tokens_once_and_decides_once() {
    let dir = tempfile::tempdir().unwrap();
    let schema = Schema::new();
    let config = dir.path().join("gnapd.toml");
    std::fs::write(&config, "poll_wait = 0\n").unwrap();
    let data = dir.path().join("data");
    let server = Serve::new(&data)
        .args(&[
            "--dev",
            "--require-interaction",
            "--config",
            config.to_str().unwrap(),
            "--store",
            schema.conninfo.as_str(),
        ])
        .start();
    let agent = Agent::new();
    let mut body = agent.grant_body(json!(["mcp:github"]));
    body["interact"] = json!({"start": ["user_code"]});
    let answer = server.grant(&agent, &body);
    assert_eq!(answer.status, 200, "{}", answer.text());
    let answer = answer.json();
    let code = answer["interact"]["user_code"].as_str().unwrap().to_owned();
    let mut cont = answer["continue"].clone();
    assert!(continue_(&server, &agent, &mut cont, None)["access_token"].is_null());

    let (ok, decided, err) = grants(&data, &["approve", &code]);
    assert!(ok, "{err}");
    assert_eq!(decided["decision"], "approved");
    let tokens = continue_(&server, &agent, &mut cont, None);
    assert_eq!(
        tokens["access_token"]["access"],
        json!(["mcp:github"]),
        "{tokens}"
    );
    let (ok, _, err) = grants(&data, &["deny", &code]);
    assert!(!ok && err.contains("no pending grant"), "{err}");
    let row = schema
        .client()
        .query_one("SELECT pending, user_code IS NULL FROM interactions", &[])
        .unwrap();
    assert_eq!(
        (row.get::<_, bool>(0), row.get::<_, bool>(1)),
        (false, true)
    );
    assert_eq!(server.stop(), Some(0));
}

/// A database that cannot be reached stops the start with an error that
/// says where, never with which password.
#[test]
fn an_unreachable_database_refuses_the_start_without_showing_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("no-server-here");
    let conninfo = format!(
        "host={} user=gnapd password=hunter2-never-shown dbname=gnapd",
        nowhere.display()
    );
    let (status, stderr) = Serve::new(&dir.path().join("data"))
        .args(&["--dev", "--store", conninfo.as_str()])
        .log(&dir.path().join("gnapd.log"))
        .refused(std::time::Duration::from_secs(30));
    assert!(!status.success());
    let log = std::fs::read_to_string(dir.path().join("gnapd.log")).unwrap();
    for text in [&stderr, &log] {
        assert!(!text.contains("hunter2"), "{text}");
    }
    assert!(
        stderr.contains("cannot open the PostgreSQL store"),
        "{stderr}"
    );
    assert!(stderr.contains(nowhere.to_str().unwrap()), "{stderr}");
}
