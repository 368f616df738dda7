//! The PostgreSQL server the store tests share, and an empty schema of
//! its own for each test.
//!
//! The server is the one `GNAPD_TEST_POSTGRES` names (`scripts/test.sh`
//! starts it and sets the variable); without it, `scripts/postgres.sh
//! start` starts the throwaway cluster under target/ (the script locks, so
//! the test processes nextest runs at once start it once). No PostgreSQL
//! is a failure that says how to install it, never a skipped test.

use std::process::Command;
use std::sync::OnceLock;

use gnapd::store::postgres::{Conninfo, PostgresStore};

use crate::support::paths::root;

/// The variable that names the shared server (a key=value conninfo).
pub const SERVER_ENV: &str = "GNAPD_TEST_POSTGRES";

/// The variable that names the same server over TLS (`scripts/postgres.sh
/// tls`: a key=value conninfo with `sslmode=verify-full` and the CA file).
pub const TLS_SERVER_ENV: &str = "GNAPD_TEST_POSTGRES_TLS";

/// The shared server's conninfo.
pub fn server() -> String {
    static SERVER: OnceLock<String> = OnceLock::new();
    SERVER
        .get_or_init(|| from_env_or_script(SERVER_ENV, "start"))
        .clone()
}

/// The shared server's TLS conninfo, and its parts the TLS tests vary.
pub struct TlsServer {
    /// `host=localhost hostaddr=127.0.0.1 port=… sslmode=verify-full sslrootcert=CA …`
    pub conninfo: String,
    pub port: u16,
    /// The CA the server's certificate chains to.
    pub ca: std::path::PathBuf,
    /// A CA that signed nothing the server has (beside `ca`).
    pub other_ca: std::path::PathBuf,
}

/// The shared server over TLS.
pub fn tls_server() -> TlsServer {
    static TLS: OnceLock<String> = OnceLock::new();
    let conninfo = TLS
        .get_or_init(|| from_env_or_script(TLS_SERVER_ENV, "tls"))
        .clone();
    let value = |key: &str| {
        conninfo
            .split_whitespace()
            .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("{TLS_SERVER_ENV} has no {key}: {conninfo}"))
            .to_owned()
    };
    let ca = std::path::PathBuf::from(value("sslrootcert"));
    let other_ca = ca.with_file_name("other-ca.crt");
    TlsServer {
        port: value("port").parse().expect("a port"),
        ca,
        other_ca,
        conninfo,
    }
}

/// `variable`'s conninfo, else what `scripts/postgres.sh COMMAND` prints.
fn from_env_or_script(variable: &str, command: &str) -> String {
    if let Ok(conninfo) = std::env::var(variable)
        && !conninfo.trim().is_empty()
    {
        return conninfo;
    }
    let script = root().join("scripts/postgres.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg(command)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "no PostgreSQL for the store tests ({} {command} failed; install it with \
         `apt-get install -y postgresql openssl`):\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// An empty schema on the shared server, dropped with everything in it
/// when this goes. Its conninfo puts it first on the `search_path`, so the
/// store's tables land there.
pub struct Schema {
    /// The schema's name, also the connections' `application_name` (to
    /// find them in `pg_stat_activity`).
    pub name: String,
    pub conninfo: String,
}

impl Schema {
    pub fn new() -> Self {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut admin = postgres::Client::connect(&server(), postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL: {e}"));
        admin
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .unwrap();
        let conninfo = format!(
            "{} application_name={name} options='-c search_path={name}'",
            server()
        );
        Self { name, conninfo }
    }

    /// The conninfo, parsed.
    pub fn parsed(&self) -> Conninfo {
        Conninfo::parse(&self.conninfo).unwrap()
    }

    /// A connection of the test's own to the schema (not the store's).
    pub fn client(&self) -> postgres::Client {
        let conninfo = format!("{} options='-c search_path={}'", server(), self.name);
        postgres::Client::connect(&conninfo, postgres::NoTls).unwrap()
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&server(), postgres::NoTls) {
            let _ = admin.batch_execute(&format!("DROP SCHEMA {} CASCADE", self.name));
        }
    }
}

/// A `PostgresStore` on a schema of its own.
pub struct TempPostgres {
    pub store: PostgresStore,
    /// Dropped after the store (field order).
    _schema: Schema,
}

impl TempPostgres {
    pub fn new() -> Self {
        let schema = Schema::new();
        let store = PostgresStore::open(&schema.parsed()).unwrap();
        Self {
            store,
            _schema: schema,
        }
    }
}

impl std::ops::Deref for TempPostgres {
    type Target = PostgresStore;

    fn deref(&self) -> &PostgresStore {
        &self.store
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        // The connections go before the schema is dropped under them.
        let _ = self.store.close();
    }
}
