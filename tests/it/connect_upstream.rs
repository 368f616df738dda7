//! "Connect the upstream" on the consent page, over loopback: a person
//! pastes an API key (probed at the real Python MCP upstream), approves,
//! and the grant's token reaches the upstream with that key, not the
//! enterprise-held credential.

use std::path::Path;

use serde_json::{Value, json};

use crate::agent::Agent;
use crate::gateway_http::{Session, contains, data_files, start_logged};
use crate::interaction_pages::{
    assert_secure, consent_form, continue_, get, grant, html, post_form,
};
use crate::mcp_upstream::Upstream;
use crate::server::Server;

const PERSON_KEY: &str = "person-key-7f3a9c";
const WRONG_KEY: &str = "wrong-key-51d0e2";
const ENTERPRISE: &str = "enterprise-secret-c4b8";

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

/// A pending grant for `tracker` and its page.
fn pending(server: &Server, agent: &Agent) -> (String, Value) {
    let body = grant(server, agent, tracker(), json!({"start": ["redirect"]}));
    let link = body["interact"]["redirect"].as_str().unwrap().to_owned();
    (link, body["continue"].clone())
}

#[test]
fn connect_upstream_api_key_is_probed_sealed_and_used_instead_of_the_enterprise_credential() {
    let dir = tempfile::tempdir().unwrap();
    let upstream =
        Upstream::start_requiring(dir.path(), "authorization", &format!("Bearer {PERSON_KEY}"));
    let (server, log) = start(
        dir.path(),
        &upstream,
        r#"{ kind = "api_key", header = "Authorization", scheme = "Bearer", probe = true }"#,
    );
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
    let token = tokens["access_token"]["value"]
        .as_str()
        .unwrap_or_else(|| panic!("{tokens}"))
        .to_owned();

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
fn connect_upstream_without_a_key_falls_back_to_the_enterprise_credential() {
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
    let token = tokens["access_token"]["value"].as_str().unwrap().to_owned();
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
