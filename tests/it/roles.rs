//! `--role`: two gnapd nodes on one PostgreSQL schema, one the AS and one
//! the gateway. A token the AS node answered opens the upstream through the
//! gateway node; each node answers the other's paths with the 404 of a
//! path nobody serves; a split role on sled is refused at start.

use serde_json::json;

use crate::gateway_http::Session;
use crate::interaction_pages::get;
use crate::support::agent::Agent;
use crate::support::mcp_upstream::Upstream;
use crate::support::postgres::Schema;
use crate::support::server::Serve;

#[test]
fn an_as_node_and_a_gateway_node_on_one_database_split_the_paths_and_serve_one_token() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(dir.path(), true);
    let schema = Schema::new();
    // Both nodes seal and open credential sets under one master key.
    let key_file = dir.path().join("master.key");
    std::fs::write(&key_file, gnapd::proto::b64::encode_url(&[7u8; 32])).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let github = format!("github={}", upstream.url());
    let node = |name: &str, role: &str| {
        Serve::new(&dir.path().join(name))
            .args(&[
                "--dev",
                "--role",
                role,
                "--store",
                schema.conninfo.as_str(),
                "--master-key-file",
                key_file.to_str().unwrap(),
                "--upstream",
                &github,
                "--upstream-credential",
                "github=bearer:ROLE-SPLIT-SECRET",
            ])
            .log(&dir.path().join(format!("{name}.log")))
            .start()
    };
    let authz = node("as", "as");
    let gateway = node("gateway", "gateway");

    let agent = Agent::new();
    let answer = authz.grant(&agent, &agent.grant_body(json!(["mcp:github"])));
    assert_eq!(answer.status, 200, "{}", answer.text());
    let token = answer.json()["access_token"]["value"]
        .as_str()
        .unwrap()
        .to_owned();

    // The gateway node serves the call with the AS node's token.
    let mut session = Session::new(&gateway, &agent, Some(token.clone()), "github");
    session.initialize();
    let call = session.call(
        "tools/call",
        json!({"name": "search_issues", "arguments": {"query": "gnap"}}),
    );
    assert_eq!(call.status, 200, "{}", call.text());

    // Each node answers the other's paths as unknown ones.
    let on_as = Session::new(&authz, &agent, Some(token), "github").call("tools/list", json!({}));
    assert_eq!(on_as.status, 404, "{}", on_as.text());
    assert_eq!(on_as.json()["error"]["code"], "invalid_request");
    let grant_on_gateway = gateway.grant(&agent, &agent.grant_body(json!(["mcp:github"])));
    assert_eq!(grant_on_gateway.status, 404, "{}", grant_on_gateway.text());
    for (server, path, status) in [
        (&authz, "/.well-known/gnap-as-rs", 200),
        (&gateway, "/.well-known/gnap-as-rs", 404),
        (
            &gateway,
            "/.well-known/oauth-protected-resource/mcp/github",
            200,
        ),
        (
            &authz,
            "/.well-known/oauth-protected-resource/mcp/github",
            404,
        ),
    ] {
        let answer = get(server, &format!("{}{path}", server.base()));
        assert_eq!(answer.status, status, "{path} on {}", server.base());
    }
    // The role is read from the path exactly as the router reads it: no
    // dot segment or percent-encoding reaches the other part.
    for (server, path) in [
        (&gateway, "/mcp/../.well-known/gnap-as-rs"),
        (&gateway, "/%2Ewell-known/gnap-as-rs"),
        (&gateway, "/mcp/%2E%2E/.well-known/gnap-as-rs"),
        (&authz, "/%6Dcp/github"),
        (&authz, "/mcp%2Fgithub"),
    ] {
        let answer = get(server, &format!("{}{path}", server.base()));
        assert_eq!(
            answer.status,
            404,
            "{path} on {}: {}",
            server.base(),
            answer.text()
        );
    }
    assert_eq!(gateway.stop(), Some(0));
    assert_eq!(authz.stop(), Some(0));
}

#[test]
fn a_split_role_on_sled_or_an_unknown_role_is_refused_at_start() {
    for (role, says) in [
        ("gateway", "needs a store the other nodes share"),
        ("as", "needs a store the other nodes share"),
        ("everything", "role must be all, as or gateway"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (status, stderr) = Serve::new(&dir.path().join("data"))
            .args(&["--dev", "--role", role])
            .refused(std::time::Duration::from_secs(20));
        assert!(!status.success(), "{role}");
        assert!(stderr.contains(says), "{role}: {stderr}");
    }
}
