//! The PostgreSQL store over TLS, against the test cluster's TCP listener
//! (`scripts/postgres.sh tls`: its own CA, a certificate for `localhost`
//! and 127.0.0.1, `hostssl` only). The certificate is checked in every
//! mode that uses TLS; a plain connection is refused by the server.

use gnapd::store::Store as _;
use gnapd::store::postgres::{CONNECTIONS, Conninfo, PostgresStore};

use crate::support::postgres::{Schema, TlsServer, tls_server};
use crate::support::server::Serve;

/// A key=value conninfo to the TLS listener as `host`, with `extra` pairs.
fn pairs(server: &TlsServer, host: &str, extra: &str) -> String {
    format!(
        "host={host} hostaddr=127.0.0.1 port={} user=postgres password=hunter2-never-shown \
         dbname=postgres {extra}",
        server.port
    )
}

/// Opening the store at `conninfo` (on a fresh schema) fails; the reason,
/// which never shows the password.
fn refused(conninfo: &str) -> String {
    let schema = Schema::new();
    let conninfo = format!("{conninfo} options='-c search_path={}'", schema.name);
    let error = PostgresStore::open(&Conninfo::parse(&conninfo).unwrap())
        .map(|_| ())
        .expect_err("the open should be refused")
        .to_string();
    assert!(!error.contains("hunter2"), "{error}");
    error
}

/// How many of the connections named `name` (the pool's) or `name
/// listener` there are, and whether every one is encrypted, as the server
/// sees them.
fn encrypted_connections(schema: &Schema) -> (i64, bool) {
    let row = schema
        .client()
        .query_one(
            "SELECT count(*), coalesce(bool_and(s.ssl), false)
             FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
             WHERE a.application_name IN ($1, $1 || ' listener')",
            &[&schema.name],
        )
        .unwrap();
    (row.get(0), row.get(1))
}

#[test]
fn a_store_opened_with_verify_full_and_the_servers_ca_works_and_every_connection_is_encrypted() {
    let server = tls_server();
    let url = format!(
        "postgresql://postgres@localhost:{}/postgres?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={}",
        server.port,
        server.ca.display()
    );
    for conninfo in [server.conninfo.clone(), url] {
        let schema = Schema::new();
        let with_schema = if conninfo.starts_with("postgresql://") {
            format!(
                "{conninfo}&application_name={0}&options=-c%20search_path%3D{0}",
                schema.name
            )
        } else {
            format!(
                "{conninfo} application_name={0} options='-c search_path={0}'",
                schema.name
            )
        };
        let store = PostgresStore::open(&Conninfo::parse(&with_schema).unwrap()).unwrap();
        assert_eq!(store.upstreams().unwrap().len(), 0, "a call answers");
        // The pool's connections and the listener's, all over TLS.
        assert_eq!(
            encrypted_connections(&schema),
            (CONNECTIONS as i64 + 1, true),
            "{conninfo}"
        );
        store.close().unwrap();
    }
}

#[test]
fn a_server_certificate_from_another_ca_is_refused_in_every_mode_that_uses_tls() {
    let server = tls_server();
    // `require` and `prefer` verify too: stricter than libpq, by design.
    for mode in ["verify-full", "verify-ca", "require", "prefer"] {
        let error = refused(&pairs(
            &server,
            "localhost",
            &format!("sslmode={mode} sslrootcert={}", server.other_ca.display()),
        ));
        assert!(error.contains("TLS"), "{mode}: {error}");
        assert!(error.contains("UnknownIssuer"), "{mode}: {error}");
    }
}

#[test]
fn a_server_certificate_from_another_ca_refuses_gnapd_serve_with_a_clear_message() {
    let server = tls_server();
    let dir = tempfile::tempdir().unwrap();
    let conninfo = pairs(
        &server,
        "localhost",
        &format!(
            "sslmode=verify-full sslrootcert={}",
            server.other_ca.display()
        ),
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
        stderr.contains("cannot open the PostgreSQL store at host=localhost"),
        "{stderr}"
    );
    assert!(stderr.contains("sslmode=verify-full"), "{stderr}");
    assert!(stderr.contains("invalid peer certificate"), "{stderr}");
}

#[test]
fn a_wrong_host_name_is_refused_under_verify_full_and_require_and_passes_verify_ca() {
    let server = tls_server();
    let ca = format!("sslrootcert={}", server.ca.display());
    for mode in ["verify-full", "require"] {
        let error = refused(&pairs(
            &server,
            "db.wrong.example",
            &format!("sslmode={mode} {ca}"),
        ));
        assert!(
            error.contains("not valid for name \"db.wrong.example\""),
            "{mode}: {error}"
        );
    }
    // verify-ca checks the chain only: the same name is accepted.
    let schema = Schema::new();
    let conninfo = format!(
        "{} application_name={name} options='-c search_path={name}'",
        pairs(
            &server,
            "db.wrong.example",
            &format!("sslmode=verify-ca {ca}")
        ),
        name = schema.name
    );
    let store = PostgresStore::open(&Conninfo::parse(&conninfo).unwrap()).unwrap();
    assert_eq!(
        encrypted_connections(&schema),
        (CONNECTIONS as i64 + 1, true)
    );
    store.close().unwrap();
}

#[test]
fn sslmode_disable_against_a_server_that_requires_tls_is_refused() {
    let server = tls_server();
    let error = refused(&pairs(&server, "localhost", "sslmode=disable"));
    assert!(error.contains("no encryption"), "{error}");
}

#[test]
fn a_missing_sslrootcert_file_refuses_the_open_and_names_the_file() {
    let server = tls_server();
    let missing = server.ca.with_file_name("no-such-ca.crt");
    let error = refused(&pairs(
        &server,
        "localhost",
        &format!("sslmode=verify-full sslrootcert={}", missing.display()),
    ));
    assert!(error.contains("sslrootcert"), "{error}");
    assert!(error.contains("no-such-ca.crt"), "{error}");
}
