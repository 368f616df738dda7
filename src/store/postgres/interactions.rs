//! A grant's interaction: found by grant or user code, decided once,
//! finished once.

use super::grants::SWAP_CONTINUATION;
use super::rows::{GrantRow, TokenRow, hash, keep_instance, upsert_tokens};
use super::sql::{Failure, one, refusable};
use super::{PostgresStore, StoreError};
use crate::store::codec::{decode, encode};
use crate::store::{
    GrantId, GrantRecord, InteractionRecord, InteractionStatus, TokenHash, TokenRecord,
};

/// How often a decision reads again after its compare-and-swap lost to a
/// write that left the interaction pending (none does today).
const DECIDE_TRIES: usize = 8;

impl PostgresStore {
    pub(super) fn interaction_of(
        &self,
        grant: &GrantId,
    ) -> Result<Option<InteractionRecord>, StoreError> {
        self.read_one(
            "reading an interaction",
            "SELECT record FROM interactions WHERE grant_id = $1",
            grant.0.clone(),
        )
    }

    /// Only a pending interaction still holds its code (the decision
    /// clears the column).
    pub(super) fn interaction_with_code(
        &self,
        code: &TokenHash,
    ) -> Result<Option<InteractionRecord>, StoreError> {
        self.read_one(
            "reading an interaction by user code",
            "SELECT record FROM interactions WHERE user_code = $1",
            hash(code),
        )
    }

    pub(super) fn all_pending_interactions(&self) -> Result<Vec<InteractionRecord>, StoreError> {
        let mut all: Vec<InteractionRecord> = self.pool.run(|conn| {
            one(
                "listing pending interactions",
                conn.db()
                    .query("SELECT record FROM interactions WHERE pending", &[]),
            )?
            .iter()
            .map(|row| decode(row.get::<_, &[u8]>(0)))
            .collect()
        })?;
        all.sort_by(|a, b| (a.created_at, &a.grant).cmp(&(b.created_at, &b.grant)));
        Ok(all)
    }

    /// A compare-and-swap of the whole record: the `UPDATE` names the
    /// pending record it read, so of two decisions the second waits on the
    /// row lock, then finds the record changed and updates nothing; it
    /// reads again and sees the interaction decided.
    pub(super) fn decide(
        &self,
        grant: &GrantId,
        decision: &InteractionStatus,
    ) -> Result<bool, StoreError> {
        let id = grant.0.clone();
        let decision = decision.clone();
        self.pool.run(move |conn| {
            for _ in 0..DECIDE_TRIES {
                let Some(row) = one(
                    "reading an interaction to decide",
                    conn.db().query_opt(
                        "SELECT record FROM interactions WHERE grant_id = $1 AND pending",
                        &[&id],
                    ),
                )?
                else {
                    return Ok(false);
                };
                let old: Vec<u8> = row.get(0);
                let mut record: InteractionRecord = decode(&old)?;
                if record.status != InteractionStatus::Pending {
                    return Ok(false);
                }
                record.status = decision.clone();
                let new = encode(&record)?;
                let decided = one(
                    "deciding an interaction",
                    conn.db().execute(
                        "UPDATE interactions SET pending = false, user_code = NULL, record = $3
                         WHERE grant_id = $1 AND pending AND record = $2",
                        &[&id, &old, &new],
                    ),
                )?;
                if decided == 1 {
                    return Ok(true);
                }
            }
            Err(StoreError::Backend(
                "an interaction kept changing while it was decided".into(),
            ))
        })
    }

    /// One transaction. The grant's row is locked first, by the `UPDATE`
    /// that is the compare-and-swap of its continuation (the order a
    /// grant's deletion locks in: grant, then interaction); then the
    /// interaction's row, and only an approved one is finished. Refused
    /// either way, the transaction rolls back.
    pub(super) fn finish(
        &self,
        expected: &TokenHash,
        grant: &GrantRecord,
        tokens: &[(TokenHash, TokenRecord)],
        at: i64,
    ) -> Result<bool, StoreError> {
        let expected = hash(expected);
        let row = GrantRow::of(grant)?;
        let tokens = TokenRow::all(tokens)?;
        let instance = grant.instance_id.clone();
        self.pool.run(move |conn| {
            let finished = refusable(conn, "finishing an interaction", |tx| {
                let swapped = tx.execute(
                    SWAP_CONTINUATION,
                    &[
                        &row.id,
                        &expected,
                        &row.continuation,
                        &row.expires_at,
                        &row.record,
                    ],
                )? == 1;
                if !swapped {
                    return Err(Failure::Refused);
                }
                let Some(found) = tx.query_opt(
                    "SELECT record FROM interactions WHERE grant_id = $1 FOR UPDATE",
                    &[&row.id],
                )?
                else {
                    return Err(Failure::Refused);
                };
                let mut interaction: InteractionRecord = decode(found.get::<_, &[u8]>(0))?;
                if !matches!(interaction.status, InteractionStatus::Approved { .. }) {
                    return Err(Failure::Refused);
                }
                interaction.status = interaction.status.finished(at);
                tx.execute(
                    "UPDATE interactions SET pending = false, record = $2 WHERE grant_id = $1",
                    &[&row.id, &encode(&interaction)?],
                )?;
                upsert_tokens(tx, &row.id, &tokens)?;
                keep_instance(tx, instance.as_deref(), row.expires_at)?;
                Ok(())
            })?;
            Ok(finished.is_some())
        })
    }
}
