//! Short-lived entries every node sees (`store::handoff`): one row each,
//! keyed by (kind, SHA-256 of the name), each operation one statement.
//!
//! A claim is `INSERT … ON CONFLICT DO UPDATE … WHERE` the held row
//! lapsed: a concurrent claimer of the same key waits on the first's row
//! lock, then evaluates the `WHERE` on the row the first wrote (live), and
//! writes nothing. A take is `DELETE … RETURNING`: of two takers the
//! second finds the row gone. Both at READ COMMITTED, as every statement
//! here, with the commit's WAL flush (a claim lost in a crash would let an
//! assertion be used twice; these are people's sign-ins, rare enough).

use super::sql::one;
use super::{PostgresStore, StoreError};
use crate::store::{HandoffKey, HandoffKind, Handoffs};

const CLAIM: &str = "
    INSERT INTO handoffs (kind, digest, value, expires_at) VALUES ($1, $2, $3, $5)
    ON CONFLICT (kind, digest) DO UPDATE
        SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at
        WHERE handoffs.expires_at < $4";

const PUT: &str = "
    INSERT INTO handoffs (kind, digest, value, expires_at) VALUES ($1, $2, $3, $4)
    ON CONFLICT (kind, digest) DO UPDATE
        SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at";

const GET: &str = "
    SELECT value FROM handoffs WHERE kind = $1 AND digest = $2 AND expires_at >= $3";

const TAKE: &str = "
    DELETE FROM handoffs WHERE kind = $1 AND digest = $2 AND expires_at >= $3
    RETURNING value";

const REMOVE: &str = "DELETE FROM handoffs WHERE kind = $1 AND digest = $2";

const REMOVE_KIND: &str = "DELETE FROM handoffs WHERE kind = $1";

impl Handoffs for PostgresStore {
    fn claim_handoff(
        &self,
        kind: HandoffKind,
        key: &HandoffKey,
        value: &[u8],
        now: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let (key, value) = (key.to_vec(), value.to_vec());
        self.pool.run(move |conn| {
            let written = one(
                "claiming a shared entry",
                conn.db()
                    .execute(CLAIM, &[&kind.as_str(), &key, &value, &now, &expires_at]),
            )?;
            Ok(written == 1)
        })
    }

    fn put_handoff(
        &self,
        kind: HandoffKind,
        key: &HandoffKey,
        value: &[u8],
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let (key, value) = (key.to_vec(), value.to_vec());
        self.pool.run(move |conn| {
            one(
                "writing a shared entry",
                conn.db()
                    .execute(PUT, &[&kind.as_str(), &key, &value, &expires_at]),
            )
            .map(drop)
        })
    }

    fn handoff(
        &self,
        kind: HandoffKind,
        key: &HandoffKey,
        now: i64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_vec();
        self.pool.run(move |conn| {
            let row = one(
                "reading a shared entry",
                conn.db().query_opt(GET, &[&kind.as_str(), &key, &now]),
            )?;
            Ok(row.map(|row| row.get(0)))
        })
    }

    fn take_handoff(
        &self,
        kind: HandoffKind,
        key: &HandoffKey,
        now: i64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_vec();
        self.pool.run(move |conn| {
            let row = one(
                "taking a shared entry",
                conn.db().query_opt(TAKE, &[&kind.as_str(), &key, &now]),
            )?;
            Ok(row.map(|row| row.get(0)))
        })
    }

    fn remove_handoff(&self, kind: HandoffKind, key: &HandoffKey) -> Result<bool, StoreError> {
        let key = key.to_vec();
        self.pool.run(move |conn| {
            let removed = one(
                "removing a shared entry",
                conn.db().execute(REMOVE, &[&kind.as_str(), &key]),
            )?;
            Ok(removed > 0)
        })
    }

    fn remove_handoff_kind(&self, kind: HandoffKind) -> Result<usize, StoreError> {
        self.pool.run(move |conn| {
            let removed = one(
                "removing shared entries",
                conn.db().execute(REMOVE_KIND, &[&kind.as_str()]),
            )?;
            Ok(usize::try_from(removed).unwrap_or(usize::MAX))
        })
    }
}
