//! The sweep: what lapsed goes, one statement per kind, each atomic on
//! its own (a sweep half done is a sweep that stopped early; the next
//! finishes it). READ COMMITTED: a row a concurrent write just moved past
//! its expiry is checked again on its new version and kept.

use super::sql::one;
use super::{PostgresStore, StoreError, Swept};

impl PostgresStore {
    pub(super) fn sweep_expired(&self, now: i64) -> Result<Swept, StoreError> {
        self.pool.run(move |conn| {
            // A grant's tokens and interaction would go with it anyway
            // (`ON DELETE CASCADE`); deleted here by name so they count.
            let grants = one(
                "sweeping grants",
                conn.db().query_one(
                    "WITH g AS (DELETE FROM grants WHERE expires_at < $1 RETURNING id),
                          t AS (DELETE FROM tokens WHERE grant_id IN (SELECT id FROM g) RETURNING 1)
                     SELECT (SELECT count(*) FROM g), (SELECT count(*) FROM t)",
                    &[&now],
                ),
            )?;
            // An OAuth token holds its refresh token: it goes with its grant.
            let tokens = one(
                "sweeping tokens",
                conn.db().execute(
                    "DELETE FROM tokens WHERE sweeps_alone AND expires_at < $1",
                    &[&now],
                ),
            )?;
            let instances = one(
                "sweeping instances",
                conn.db()
                    .execute("DELETE FROM instances WHERE expires_at < $1", &[&now]),
            )?;
            one(
                "sweeping spent refresh tokens",
                conn.db()
                    .execute("DELETE FROM spent_refresh WHERE expires_at < $1", &[&now]),
            )?;
            let count = |n: i64| usize::try_from(n).unwrap_or(0);
            let counted = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
            Ok(Swept {
                grants: count(grants.get(0)),
                tokens: count(grants.get(1)) + counted(tokens),
                nonces: 0,
                instances: counted(instances),
            })
        })
    }
}
