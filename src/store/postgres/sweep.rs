//! The sweep: what lapsed goes, kind by kind, in batches of
//! [`SWEEP_BATCH`] rows, each batch one statement and atomic on its own (a
//! sweep half done is a sweep that stopped early; the next finishes it).
//! Batches keep each statement short, under the statement timeout and
//! holding few row locks, however much lapsed while gnapd was down.
//! READ COMMITTED: a row a concurrent write just moved past its expiry is
//! checked again on its new version and kept.

use super::invalidation::NOTIFY;
use super::prepared::Conn;
use super::sql::one;
use super::{PostgresStore, StoreError, Swept};

/// Rows one sweep statement removes at most.
pub const SWEEP_BATCH: i64 = 1000;

/// Expired grants, with their tokens (counted) and interaction.
const GRANTS: &str = "
    WITH g AS (
        DELETE FROM grants WHERE id IN
            (SELECT id FROM grants WHERE expires_at < $1 LIMIT $2)
        RETURNING id),
    t AS (DELETE FROM tokens WHERE grant_id IN (SELECT id FROM g) RETURNING 1)
    SELECT (SELECT count(*) FROM g), (SELECT count(*) FROM t)";

/// Expired tokens but OAuth ones: an OAuth token holds its refresh token
/// and goes with its grant.
const TOKENS: &str = "
    DELETE FROM tokens WHERE hash IN
        (SELECT hash FROM tokens WHERE sweeps_alone AND expires_at < $1 LIMIT $2)";

const INSTANCES: &str = "
    DELETE FROM instances WHERE id IN
        (SELECT id FROM instances WHERE expires_at < $1 LIMIT $2)";

const SPENT_REFRESH: &str = "
    DELETE FROM spent_refresh WHERE hash IN
        (SELECT hash FROM spent_refresh WHERE expires_at < $1 LIMIT $2)";

/// Signatures past the time they could be accepted.
const REPLAY: &str = "
    DELETE FROM replay WHERE digest IN
        (SELECT digest FROM replay WHERE expires_at < $1 LIMIT $2)";

/// Leases whose holder never released them (it died) and nobody took
/// since.
const LEASES: &str = "
    DELETE FROM leases WHERE name IN
        (SELECT name FROM leases WHERE until < $1 LIMIT $2)";

/// Counters of periods that are over.
const COUNTERS: &str = "
    DELETE FROM counters WHERE (name, period) IN
        (SELECT name, period FROM counters WHERE expires_at < $1 LIMIT $2)";

/// Shared entries (`handoffs`) that lapsed unused.
const HANDOFFS: &str = "
    DELETE FROM handoffs WHERE (kind, digest) IN
        (SELECT kind, digest FROM handoffs WHERE expires_at < $1 LIMIT $2)";

impl PostgresStore {
    pub(super) fn sweep_expired(&self, now: i64) -> Result<Swept, StoreError> {
        self.pool.run(move |conn| {
            let mut swept = Swept::default();
            loop {
                let row = one(
                    "sweeping grants",
                    conn.db().query_one(GRANTS, &[&now, &SWEEP_BATCH]),
                )?;
                let (grants, tokens): (i64, i64) = (row.get(0), row.get(1));
                swept.grants += count(grants);
                swept.tokens += count(tokens);
                if grants < SWEEP_BATCH {
                    break;
                }
            }
            swept.tokens += batches(conn, "sweeping tokens", TOKENS, now)?;
            swept.instances = batches(conn, "sweeping instances", INSTANCES, now)?;
            batches(conn, "sweeping spent refresh tokens", SPENT_REFRESH, now)?;
            batches(conn, "sweeping lapsed signatures", REPLAY, now)?;
            batches(conn, "sweeping lapsed leases", LEASES, now)?;
            batches(conn, "sweeping past counters", COUNTERS, now)?;
            batches(conn, "sweeping lapsed shared entries", HANDOFFS, now)?;
            if swept.grants + swept.tokens > 0 {
                // After the batches committed (each its own transaction):
                // other nodes retire once the rows are gone.
                one("telling other nodes", conn.db().execute(NOTIFY, &[]))?;
            }
            Ok(swept)
        })
    }
}

/// Runs `sql` until a batch removes fewer than [`SWEEP_BATCH`] rows; how
/// many it removed in all.
fn batches(conn: &mut Conn, what: &str, sql: &'static str, now: i64) -> Result<usize, StoreError> {
    let mut removed = 0;
    loop {
        let batch = one(what, conn.db().execute(sql, &[&now, &SWEEP_BATCH]))?;
        removed += usize::try_from(batch).unwrap_or(usize::MAX);
        if batch < SWEEP_BATCH.unsigned_abs() {
            return Ok(removed);
        }
    }
}

fn count(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}
