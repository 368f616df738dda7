//! Access tokens: found by hash or by management hash, rotated and revoked
//! by statements whose `WHERE` names the old value, and revoked in bulk
//! with the credential set they are mapped to.
//!
//! A lookup by hash is an index search on the whole 32-byte hash. Its
//! timing may say how much of a guessed hash matched a stored one; that
//! tells nothing of a token's value, which would still need a preimage of
//! the hash (the reason tokens are kept hashed).

use super::invalidation::{notify, notify_upstreams};
use super::rows::{TokenRow, hash, hash_from};
use super::sql::{one, transaction};
use super::{PostgresStore, StoreError};
use crate::store::codec::{decode, encode};
use crate::store::{GrantRecord, TokenHash, TokenRecord};

impl PostgresStore {
    pub(super) fn token_by_hash(
        &self,
        token: &TokenHash,
    ) -> Result<Option<TokenRecord>, StoreError> {
        self.read_one(
            "reading a token",
            "SELECT record FROM tokens WHERE hash = $1",
            hash(token),
        )
    }

    pub(super) fn token_managed_by(
        &self,
        manage: &TokenHash,
    ) -> Result<Option<(TokenHash, TokenRecord)>, StoreError> {
        let manage = hash(manage);
        self.pool.run(move |conn| {
            one(
                "reading a token by its management token",
                conn.db().query_opt(
                    "SELECT hash, record FROM tokens WHERE manage = $1 LIMIT 1",
                    &[&manage],
                ),
            )?
            .map(|row| {
                Ok((
                    hash_from(row.get::<_, &[u8]>(0))?,
                    decode(row.get::<_, &[u8]>(1))?,
                ))
            })
            .transpose()
        })
    }

    /// The take is the `DELETE` of the old token by both its hashes: of two
    /// rotations of one token, the second waits on the row lock, then finds
    /// the row gone and deletes nothing. The grant's row is locked first
    /// (`FOR UPDATE`), in the order a grant's deletion locks (grant, then
    /// its tokens), and its token list updated.
    pub(super) fn swap_token(
        &self,
        manage: &TokenHash,
        old: &TokenHash,
        new: &(TokenHash, TokenRecord),
    ) -> Result<bool, StoreError> {
        let manage = hash(manage);
        let (old_hash, new_hash) = (*old, new.0);
        let old = hash(old);
        let new = TokenRow::of(new)?;
        self.pool.run(move |conn| {
            transaction(conn, "rotating a token", |tx| {
                let Some(owner) = tx.query_opt(
                    "SELECT grant_id FROM tokens WHERE hash = $1 AND manage = $2",
                    &[&old, &manage],
                )?
                else {
                    return Ok(false);
                };
                let grant_id: String = owner.get(0);
                let Some(locked) = tx.query_opt(
                    "SELECT record FROM grants WHERE id = $1 FOR UPDATE",
                    &[&grant_id],
                )?
                else {
                    return Ok(false);
                };
                let taken = tx.execute(
                    "DELETE FROM tokens WHERE hash = $1 AND manage = $2 AND grant_id = $3",
                    &[&old, &manage, &grant_id],
                )? == 1;
                if !taken {
                    return Ok(false);
                }
                new.upsert(tx, &grant_id)?;
                let mut grant: GrantRecord = decode(locked.get::<_, &[u8]>(0))?;
                grant.tokens.retain(|t| *t != old_hash);
                grant.tokens.push(new_hash);
                tx.execute(
                    "UPDATE grants SET record = $2 WHERE id = $1",
                    &[&grant_id, &encode(&grant)?],
                )?;
                notify(tx)?;
                Ok(true)
            })
        })
    }

    /// One statement: every token `manage` manages goes.
    pub(super) fn remove_managed(&self, manage: &TokenHash) -> Result<bool, StoreError> {
        let manage = hash(manage);
        self.pool.run(move |conn| {
            transaction(conn, "revoking a token", |tx| {
                let removed = tx.execute("DELETE FROM tokens WHERE manage = $1", &[&manage])? > 0;
                if removed {
                    notify(tx)?;
                }
                Ok(removed)
            })
        })
    }

    /// The set and every token mapped to it, in one transaction; then once
    /// more for a token minted meanwhile (a transaction that wrote one
    /// before the set was gone but committed after this one looked).
    pub(super) fn remove_set_and_its_tokens(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.pool.run(move |conn| {
            let removed = transaction(conn, "removing a credential set", |tx| {
                let removed = tx.execute("DELETE FROM credential_sets WHERE id = $1", &[&id])? > 0;
                if removed {
                    tx.execute(
                        "DELETE FROM tokens WHERE credential_sets @> ARRAY[$1::text]",
                        &[&id],
                    )?;
                    notify(tx)?;
                    notify_upstreams(tx)?;
                }
                Ok(removed)
            })?;
            if removed {
                transaction(conn, "revoking tokens of a removed credential set", |tx| {
                    let late = tx.execute(
                        "DELETE FROM tokens WHERE credential_sets @> ARRAY[$1::text]",
                        &[&id],
                    )?;
                    if late > 0 {
                        notify(tx)?;
                    }
                    Ok(())
                })?;
            }
            Ok(removed)
        })
    }
}
