//! Leases across nodes: one row per lease, taken by one statement.
//!
//! `INSERT … ON CONFLICT (name) DO UPDATE … WHERE` the row lapsed or is
//! the taker's own: a concurrent taker of the same name waits on the row
//! lock of the first and then evaluates the `WHERE` again on the row the
//! first wrote, which names another live holder, so it updates nothing.
//! Exactly one of them counts a row. A holder that died leaves its row;
//! the next taker after its `until` takes it over, and the sweep removes
//! rows that lapsed and were never taken again.

use super::sql::one;
use super::{PostgresStore, StoreError};

const TAKE: &str = "
    INSERT INTO leases (name, holder, until) VALUES ($1, $2, $4)
    ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, until = EXCLUDED.until
        WHERE leases.until < $3 OR leases.holder = EXCLUDED.holder";

const RELEASE: &str = "DELETE FROM leases WHERE name = $1 AND holder = $2";

impl PostgresStore {
    pub(super) fn take_lease_row(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.pool.run(move |conn| {
            let taken = one(
                "taking a lease",
                conn.db().execute(TAKE, &[&name, &holder, &now, &until]),
            )?;
            Ok(taken == 1)
        })
    }

    pub(super) fn release_lease_row(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.pool.run(move |conn| {
            one(
                "releasing a lease",
                conn.db().execute(RELEASE, &[&name, &holder]),
            )
            .map(drop)
        })
    }
}
