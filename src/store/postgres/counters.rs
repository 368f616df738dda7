//! Counters every node shares, per period: one statement adds and
//! returns the sum (`INSERT … ON CONFLICT DO UPDATE SET count = count +
//! … RETURNING count`). The row lock orders concurrent additions, so two
//! nodes adding at once see two different sums, the second including the
//! first; no addition is lost and no limit is passed twice.
//!
//! Used for user-code attempts (`authz::usercode`): people typing codes,
//! rare enough for a round trip each. Names are hashes (a source address
//! is personal data), and a row goes with the sweep once its period is
//! over.

use super::sql::one;
use super::{PostgresStore, StoreError};
use crate::store::CounterName;

const ADD: &str = "
    INSERT INTO counters (name, period, count, expires_at) VALUES ($1, $2, $3, $4)
    ON CONFLICT (name, period) DO UPDATE
        SET count = least(counters.count::bigint + EXCLUDED.count, 2147483647)::integer
    RETURNING count";

const READ: &str = "SELECT count FROM counters WHERE name = $1 AND period = $2";

impl PostgresStore {
    pub(super) fn add_to_counter_row(
        &self,
        name: &CounterName,
        period: i64,
        by: u32,
        expires_at: i64,
    ) -> Result<u32, StoreError> {
        let name = name.to_vec();
        let by = i32::try_from(by).unwrap_or(i32::MAX);
        self.pool.run(move |conn| {
            let count: i32 = if by == 0 {
                one(
                    "reading a counter",
                    conn.db().query_opt(READ, &[&name, &period]),
                )?
                .map_or(0, |row| row.get(0))
            } else {
                one(
                    "adding to a counter",
                    conn.db()
                        .query_one(ADD, &[&name, &period, &by, &expires_at]),
                )?
                .get(0)
            };
            Ok(u32::try_from(count).unwrap_or(0))
        })
    }
}
