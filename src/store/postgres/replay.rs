//! Replay protection across nodes: a signature this node has not seen is
//! also claimed in the `replay` table every node shares, with one
//! `INSERT … ON CONFLICT` whose row count says whether it was new there.
//!
//! The node's own `ReplayMemory` answers first: it keeps the budgets, the
//! key quotas and the horizon of `NonceStore` as on sled, and a replay
//! sent to the node that saw it is refused without a round trip. Only what
//! it finds fresh is claimed in the table; a database that cannot answer
//! fails the request closed ([`NonceStoreError::Unavailable`]).
//!
//! The claim commits without waiting for its WAL flush
//! (`synchronous_commit` off for that one statement): a flush per signed
//! request would cost more than the request. What a crash of the database
//! server can lose is the claims of its last few hundred milliseconds
//! (three `wal_writer_delay`s at most, 600 ms by default); a signature
//! among them could then be accepted once more, by a node that had not
//! seen it. spec-notes/store.md ("Several nodes") has the measured cost.

use std::sync::Arc;

use super::pool::Pool;
use super::sql::one;
use crate::proto::hash::sha256_parts;
use crate::proto::httpsig::nonce::{NonceStore, NonceStoreError, Seen};
use crate::proto::jwk::Thumbprint;
use crate::store::replay::{ReplayBudget, ReplayMemory};

/// The claim: new, or a row whose signature has lapsed (not yet swept),
/// counts one row; a live row counts none.
const CLAIM: &str = "
    INSERT INTO replay (digest, expires_at)
    SELECT $1, $2 FROM (SELECT set_config('synchronous_commit', 'off', true)) AS relaxed
    ON CONFLICT (digest) DO UPDATE SET expires_at = EXCLUDED.expires_at
        WHERE replay.expires_at < $3";

/// One budget of the node's memory, in front of the shared table.
pub(super) struct SharedReplay {
    memory: Arc<ReplayMemory>,
    budget: ReplayBudget,
    pool: Arc<Pool>,
}

impl SharedReplay {
    pub(super) fn new(memory: Arc<ReplayMemory>, budget: ReplayBudget, pool: Arc<Pool>) -> Self {
        Self {
            memory,
            budget,
            pool,
        }
    }
}

impl NonceStore for SharedReplay {
    fn remember(
        &self,
        scope: &Thumbprint,
        value: &[u8],
        until: i64,
        now: i64,
    ) -> Result<Seen, NonceStoreError> {
        let local = self
            .memory
            .budget(self.budget)
            .remember(scope, value, until, now)?;
        if local == Seen::Replayed {
            return Ok(Seen::Replayed);
        }
        // A thumbprint is base64url, never a NUL: the digest's input
        // splits one way only.
        let digest = sha256_parts(&[scope.as_str().as_bytes(), b"\0", value]).to_vec();
        let claimed = self.pool.run(move |conn| {
            one(
                "claiming a signature",
                conn.db().execute(CLAIM, &[&digest, &until, &now]),
            )
        });
        match claimed {
            Ok(1) => Ok(Seen::Fresh),
            Ok(_) => Ok(Seen::Replayed),
            Err(e) => {
                tracing::warn!(error = %e, "the shared replay table did not answer");
                Err(NonceStoreError::Unavailable)
            }
        }
    }

    fn horizon(&self) -> i64 {
        self.memory.budget(self.budget).horizon()
    }
}
