//! `gnapd store status|migrate` as real processes, on the test
//! PostgreSQL and on sled, and `GNAPD_STORE`: below `--store`, above the
//! config file's `store`, for `gnapd store` and for `gnapd serve`.

use serde_json::json;

use gnapd::store::postgres::SCHEMA_VERSION;

use crate::support::agent::Agent;
use crate::support::postgres::Schema;
use crate::support::process::GNAPD;
use crate::support::server::Serve;

/// `gnapd store ARGS` with `env` (and no inherited `GNAPD_STORE`): exit
/// code, stdout, stderr.
fn store(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = std::process::Command::new(GNAPD)
        .arg("store")
        .args(args)
        .env_remove("GNAPD_STORE")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Whether the schema holds a table `name`.
fn has_table(schema: &Schema, name: &str) -> bool {
    schema
        .client()
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
        .unwrap()
        .get(0)
}

#[test]
fn gnapd_store_status_on_an_empty_database_says_behind_and_creates_nothing() {
    let schema = Schema::new();
    let (code, out, err) = store(&["status", "--store", &schema.conninfo], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("store: PostgreSQL at host="), "{out}");
    assert!(
        out.contains(&format!(
            "no gnapd schema, this build's {SCHEMA_VERSION}: behind"
        )),
        "{out}"
    );
    assert!(
        !has_table(&schema, "gnapd_schema"),
        "status created the schema"
    );
    assert!(!has_table(&schema, "grants"));
}

#[test]
fn gnapd_store_migrate_brings_the_schema_to_this_builds_version_then_status_says_current() {
    let schema = Schema::new();
    let (code, out, err) = store(&["migrate", "--store", &schema.conninfo], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("migrated from version 0 to {SCHEMA_VERSION}")),
        "{out}"
    );
    assert!(has_table(&schema, "grants") && has_table(&schema, "replay"));
    let (code, out, _) = store(&["status", "--store", &schema.conninfo], &[]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!(
            "schema version {SCHEMA_VERSION}, this build's {SCHEMA_VERSION}: current"
        )),
        "{out}"
    );
    let (code, out, _) = store(&["migrate", "--store", &schema.conninfo], &[]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!("already at version {SCHEMA_VERSION}")),
        "{out}"
    );
}

#[test]
fn gnapd_store_status_and_migrate_refuse_a_schema_newer_than_this_build_and_leave_it() {
    let schema = Schema::new();
    let (code, _, err) = store(&["migrate", "--store", &schema.conninfo], &[]);
    assert_eq!(code, 0, "{err}");
    let newer = SCHEMA_VERSION + 1;
    schema
        .client()
        .execute("UPDATE gnapd_schema SET version = $1", &[&newer])
        .unwrap();
    for command in ["status", "migrate"] {
        let (code, out, err) = store(&[command, "--store", &schema.conninfo], &[]);
        assert_eq!(code, 1, "{command}: {out}{err}");
        assert!(err.contains(&format!("{newer}")), "{command}: {err}");
        assert!(err.contains("newer than this build"), "{command}: {err}");
    }
    let kept: i32 = schema
        .client()
        .query_one("SELECT version FROM gnapd_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(kept, newer);
}

#[test]
fn gnapd_store_status_on_an_unreachable_database_exits_non_zero_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let conninfo = format!(
        "host={} user=gnapd password=hunter2-never-shown dbname=gnapd",
        dir.path().join("nowhere").display()
    );
    let (code, out, err) = store(&["status", "--store", &conninfo], &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("nowhere"), "{err}");
    assert!(!format!("{out}{err}").contains("hunter2"), "{out}{err}");
}

#[test]
fn gnapd_store_takes_the_flag_over_gnapd_store_over_the_config_file() {
    let schema = Schema::new();
    let dir = tempfile::tempdir().unwrap();
    let nowhere = format!("host={} dbname=x", dir.path().join("nowhere").display());
    let config = dir.path().join("gnapd.toml");
    std::fs::write(&config, format!("store = {:?}\n", nowhere)).unwrap();
    let config = config.to_str().unwrap();
    // The file alone: its store (unreachable).
    let (code, _, err) = store(&["status", "--config", config], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("nowhere"), "{err}");
    // GNAPD_STORE over the file.
    let (code, out, err) = store(
        &["status", "--config", config],
        &[("GNAPD_STORE", &schema.conninfo)],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("behind"), "{out}");
    // The flag over GNAPD_STORE.
    let (code, _, err) = store(
        &["status", "--config", config, "--store", &nowhere],
        &[("GNAPD_STORE", &schema.conninfo)],
    );
    assert_eq!(code, 1);
    assert!(err.contains("nowhere"), "{err}");
}

#[test]
fn gnapd_serve_keeps_its_store_where_gnapd_store_names_it() {
    let schema = Schema::new();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Serve::new(&data)
        .args(&["--dev"])
        .env("GNAPD_STORE", &schema.conninfo)
        .start();
    let agent = Agent::new();
    let answer = server.grant(&agent, &agent.grant_body(json!(["mcp:github"])));
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(server.stop(), Some(0));
    assert!(!data.join("store").exists(), "no sled store");
    let grants: i64 = schema
        .client()
        .query_one("SELECT count(*) FROM grants", &[])
        .unwrap()
        .get(0);
    assert_eq!(grants, 1);
}

/// `--store sled:PATH` keeps the sled database at PATH, not in the data
/// dir, across a restart; `gnapd store status` names that path.
#[test]
fn gnapd_serve_with_store_sled_path_keeps_its_records_there_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let elsewhere = dir.path().join("elsewhere");
    let location = format!("sled:{}", elsewhere.display());
    let start = || {
        Serve::new(&data)
            // One public URL across the restart, whose port changes.
            .args(&[
                "--dev",
                "--store",
                &location,
                "--public-url",
                "http://gnapd.test",
            ])
            .env_remove("GNAPD_STORE")
            .start()
    };
    let server = start();
    let agent = Agent::new();
    let answer = server.grant(&agent, &agent.grant_body(json!(["mcp:github"])));
    assert_eq!(answer.status, 200, "{}", answer.text());
    let mut continuation = answer.json()["continue"].clone();
    assert_eq!(server.stop(), Some(0));
    assert!(
        elsewhere.join("conf").exists(),
        "the sled database is at PATH"
    );
    assert!(!data.join("store").exists(), "and not in the data dir");
    // The grant is still there: its continuation is known (answered, or
    // told to wait), where an unknown one is `invalid_continuation`.
    let server = start();
    let mut unknown = continuation.clone();
    unknown["access_token"]["value"] = json!("not-a-continuation-token");
    let refused = crate::interaction_pages::continue_(&server, &agent, &mut unknown, None);
    assert_eq!(
        refused["error"]["code"], "invalid_continuation",
        "{refused}"
    );
    let again = crate::interaction_pages::continue_(&server, &agent, &mut continuation, None);
    assert_ne!(again["error"]["code"], "invalid_continuation", "{again}");
    drop(server);
    let (code, out, err) = store(&["status", "--store", &location], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("store: sled at {}", elsewhere.display())),
        "{out}"
    );
}

#[test]
fn gnapd_store_on_a_running_sled_servers_data_dir_opens_nothing_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Serve::new(&data)
        .args(&["--dev"])
        .env_remove("GNAPD_STORE")
        .start();
    let agent = Agent::new();
    let first = server.grant(&agent, &agent.grant_body(json!(["mcp:github"])));
    assert_eq!(first.status, 200, "{}", first.text());
    let data_dir = data.to_str().unwrap();
    for command in ["status", "migrate"] {
        let (code, out, err) = store(&[command, "--data-dir", data_dir], &[]);
        assert_eq!(code, 0, "{command}: {out}{err}");
        assert!(out.contains("store: sled at"), "{out}");
        assert!(out.contains("(exists)"), "{out}");
        assert!(out.contains("none versioned"), "{out}");
    }
    let second = server.grant(&agent, &agent.grant_body(json!(["mcp:github"])));
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(server.stop(), Some(0));
    let (_, out, _) = store(
        &[
            "status",
            "--data-dir",
            dir.path().join("fresh").to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.contains("(not created yet)"), "{out}");
    assert!(!dir.path().join("fresh").exists(), "status created nothing");
}
