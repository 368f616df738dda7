//! The tables, created or brought up to date when the store opens.
//!
//! One table per kind of record. A record is kept as the bytes the sled
//! store's codec writes for it (`store::codec`, JSON with its version
//! tag) in a `record` column; beside it only the columns a lookup, a
//! compare-and-swap or the sweep needs: token hashes as `bytea` keys,
//! expiries as `bigint`. A grant's tokens are rows of their own that go
//! with it (`ON DELETE CASCADE`), and so is its interaction.
//!
//! The version row says which schema the database holds. Opening runs the
//! missing steps in one transaction, under an advisory lock so that two
//! nodes starting at once do not both run them; a database whose schema is
//! newer than this build knows is refused, never written to.

use postgres::Client;

use super::sql::failed;
use crate::store::StoreError;

/// The schema this build reads and writes.
pub const SCHEMA_VERSION: i32 = 4;

/// Serializes migrations across processes (`pg_advisory_xact_lock`): an
/// arbitrary constant, "gnapd" in ASCII.
const MIGRATION_LOCK: i64 = 0x67_6e61_7064;

/// Each step takes the schema from the version before it to its own.
const STEPS: [&str; 4] = [V1, V2, V3, V4];
const _: () = assert!(STEPS.len() as i32 == SCHEMA_VERSION);

const V1: &str = r#"
CREATE TABLE grants (
    id text COLLATE "C" PRIMARY KEY,
    continuation bytea UNIQUE,
    expires_at bigint NOT NULL,
    record bytea NOT NULL
);
CREATE INDEX grants_expiry ON grants (expires_at);

CREATE TABLE tokens (
    hash bytea PRIMARY KEY,
    manage bytea NOT NULL,
    grant_id text COLLATE "C" NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    expires_at bigint NOT NULL,
    -- false for an OAuth token: it holds its refresh token and goes with
    -- its grant, not at its own expiry
    sweeps_alone boolean NOT NULL,
    credential_sets text[] NOT NULL,
    record bytea NOT NULL
);
CREATE INDEX tokens_manage ON tokens (manage);
CREATE INDEX tokens_grant ON tokens (grant_id);
CREATE INDEX tokens_expiry ON tokens (expires_at) WHERE sweeps_alone;
CREATE INDEX tokens_credential_sets ON tokens USING gin (credential_sets);

CREATE TABLE interactions (
    grant_id text COLLATE "C" PRIMARY KEY REFERENCES grants (id) ON DELETE CASCADE,
    -- cleared by the decision: a code decides once
    user_code bytea UNIQUE,
    pending boolean NOT NULL,
    record bytea NOT NULL
);

CREATE TABLE instances (
    id text COLLATE "C" PRIMARY KEY,
    expires_at bigint NOT NULL,
    record bytea NOT NULL
);
CREATE INDEX instances_expiry ON instances (expires_at);

CREATE TABLE credential_sets (
    id text COLLATE "C" PRIMARY KEY,
    record bytea NOT NULL
);

CREATE TABLE upstreams (
    name text COLLATE "C" PRIMARY KEY,
    record bytea NOT NULL
);

CREATE TABLE resource_sets (
    reference text COLLATE "C" PRIMARY KEY,
    record bytea NOT NULL
);

CREATE TABLE oauth_clients (
    client_id text COLLATE "C" PRIMARY KEY,
    expires_at bigint NOT NULL,
    record bytea NOT NULL
);
CREATE INDEX oauth_clients_expiry ON oauth_clients (expires_at);

CREATE TABLE spent_refresh (
    hash bytea PRIMARY KEY,
    expires_at bigint NOT NULL,
    record bytea NOT NULL
);
CREATE INDEX spent_refresh_expiry ON spent_refresh (expires_at);
"#;

/// The signatures every node has accepted, for replay protection across
/// nodes (`postgres/replay.rs`): a digest of (key, signature), kept until
/// the signature could no longer be accepted anyway.
const V2: &str = r#"
CREATE TABLE replay (
    digest bytea PRIMARY KEY,
    expires_at bigint NOT NULL
);
CREATE INDEX replay_expiry ON replay (expires_at);
"#;

/// The schema version the database holds, 0 for none, read without
/// creating anything (`gnapd store status`).
pub(super) fn found(client: &mut Client) -> Result<i32, postgres::Error> {
    let mut tx = client.build_transaction().read_only(true).start()?;
    let exists: bool = tx
        .query_one("SELECT to_regclass('gnapd_schema') IS NOT NULL", &[])?
        .get(0);
    let found = match exists {
        true => tx
            .query_opt("SELECT version FROM gnapd_schema", &[])?
            .map_or(0, |row| row.get(0)),
        false => 0,
    };
    tx.commit()?;
    Ok(found)
}

/// What nodes coordinate through (`postgres/lease.rs`,
/// `postgres/counters.rs`): leases, one holder at a time until `until`
/// (an upstream credential refreshed by one node), and counters per
/// period (user-code attempts counted across nodes), under the SHA-256 of
/// what they count. Both only added: a node of version 2 still running
/// beside one of version 3 never reads them.
const V3: &str = r#"
CREATE TABLE leases (
    name text COLLATE "C" PRIMARY KEY,
    holder text NOT NULL,
    until bigint NOT NULL
);

CREATE TABLE counters (
    name bytea NOT NULL,
    period bigint NOT NULL,
    count integer NOT NULL,
    expires_at bigint NOT NULL,
    PRIMARY KEY (name, period)
);
CREATE INDEX counters_expiry ON counters (expires_at);
"#;

/// Short-lived entries every node must see (`postgres/handoffs.rs`): used
/// assertions, sign-in states, operator links and sessions, by kind and
/// the SHA-256 of what names them; a value that would be a secret is
/// sealed under the master key. Only added: a node of version 3 beside
/// one of version 4 never reads it (and keeps those in its own memory).
const V4: &str = r#"
CREATE TABLE handoffs (
    kind text COLLATE "C" NOT NULL,
    digest bytea NOT NULL,
    value bytea NOT NULL,
    expires_at bigint NOT NULL,
    PRIMARY KEY (kind, digest)
);
CREATE INDEX handoffs_expiry ON handoffs (expires_at);
"#;

/// Brings the database's schema to [`SCHEMA_VERSION`]; refuses one newer.
/// Returns the version it found (0: none).
pub(super) fn migrate(client: &mut Client) -> Result<i32, StoreError> {
    let mut tx = client
        .transaction()
        .map_err(|e| failed("migrating the schema", &e))?;
    let outcome = (|| {
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS gnapd_schema (
                 one boolean PRIMARY KEY DEFAULT true CHECK (one),
                 version integer NOT NULL
             )",
        )?;
        let found: i32 = tx
            .query_opt("SELECT version FROM gnapd_schema", &[])?
            .map_or(0, |row| row.get(0));
        let known = SCHEMA_VERSION;
        if found > known {
            return Ok(Err(StoreError::Backend(format!(
                "the database holds gnapd schema version {found}, newer than this build's {known}: \
                 run the newer gnapd, or restore a database of this version"
            ))));
        }
        for step in STEPS.iter().skip(found.max(0) as usize) {
            tx.batch_execute(step)?;
        }
        tx.execute(
            "INSERT INTO gnapd_schema (version) VALUES ($1)
             ON CONFLICT (one) DO UPDATE SET version = EXCLUDED.version",
            &[&known],
        )?;
        Ok(Ok(found))
    })();
    match outcome {
        Ok(Ok(found)) => tx
            .commit()
            .map(|()| found)
            .map_err(|e| failed("migrating the schema", &e)),
        // Dropping the transaction rolls it back.
        Ok(Err(refused)) => Err(refused),
        Err(e) => Err(failed("migrating the schema", &e)),
    }
}
