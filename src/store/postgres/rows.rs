//! Records as their rows hold them: encoded on the caller's thread (a
//! store call hands owned values to a connection thread), written by the
//! few statements several operations share.

use postgres::{GenericClient, Transaction};

use super::prepared::Db;

use crate::store::codec::{decode, encode};
use crate::store::{GrantRecord, InstanceRecord, StoreError, TokenHash, TokenRecord};

/// A hash as its column holds it.
pub(super) fn hash(hash: &TokenHash) -> Vec<u8> {
    hash.0.to_vec()
}

/// A hash read back from a column.
pub(super) fn hash_from(bytes: &[u8]) -> Result<TokenHash, StoreError> {
    <[u8; 32]>::try_from(bytes)
        .map(TokenHash)
        .map_err(|_| StoreError::Backend("a stored token hash is not 32 bytes".into()))
}

/// A grant's row.
pub(super) struct GrantRow {
    pub id: String,
    pub continuation: Option<Vec<u8>>,
    pub expires_at: i64,
    pub record: Vec<u8>,
}

impl GrantRow {
    pub(super) fn of(grant: &GrantRecord) -> Result<Self, StoreError> {
        Ok(Self {
            id: grant.id.0.clone(),
            continuation: grant.continuation.as_ref().map(|c| hash(&c.token)),
            expires_at: grant.expires_at,
            record: encode(grant)?,
        })
    }

    /// Writes it, replacing a grant of the same id (as every store does).
    pub(super) fn upsert(
        &self,
        tx: &mut Db<'_, impl GenericClient>,
    ) -> Result<(), postgres::Error> {
        tx.execute(
            "INSERT INTO grants (id, continuation, expires_at, record) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET continuation = EXCLUDED.continuation,
                 expires_at = EXCLUDED.expires_at, record = EXCLUDED.record",
            &[&self.id, &self.continuation, &self.expires_at, &self.record],
        )
        .map(drop)
    }
}

/// A token's row.
pub(super) struct TokenRow {
    pub hash: Vec<u8>,
    pub manage: Vec<u8>,
    pub expires_at: i64,
    pub sweeps_alone: bool,
    pub credential_sets: Vec<String>,
    pub record: Vec<u8>,
}

impl TokenRow {
    pub(super) fn of((token, record): &(TokenHash, TokenRecord)) -> Result<Self, StoreError> {
        Ok(Self {
            hash: hash(token),
            manage: hash(&record.manage),
            expires_at: record.expires_at,
            sweeps_alone: record.oauth.is_none(),
            credential_sets: record
                .credential_sets
                .iter()
                .map(|(_, set)| set.clone())
                .collect(),
            record: encode(record)?,
        })
    }

    pub(super) fn all(tokens: &[(TokenHash, TokenRecord)]) -> Result<Vec<Self>, StoreError> {
        tokens.iter().map(Self::of).collect()
    }

    /// Writes it under the grant `grant_id`, replacing a token of the same
    /// hash (as every store does).
    pub(super) fn upsert(
        &self,
        tx: &mut Db<'_, Transaction<'_>>,
        grant_id: &str,
    ) -> Result<(), postgres::Error> {
        tx.execute(
            "INSERT INTO tokens (hash, manage, grant_id, expires_at, sweeps_alone, credential_sets, record)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (hash) DO UPDATE SET manage = EXCLUDED.manage,
                 grant_id = EXCLUDED.grant_id, expires_at = EXCLUDED.expires_at,
                 sweeps_alone = EXCLUDED.sweeps_alone,
                 credential_sets = EXCLUDED.credential_sets, record = EXCLUDED.record",
            &[
                &self.hash,
                &self.manage,
                &grant_id,
                &self.expires_at,
                &self.sweeps_alone,
                &self.credential_sets,
                &self.record,
            ],
        )
        .map(drop)
    }
}

/// Writes every token of `rows` under `grant_id`.
pub(super) fn upsert_tokens(
    tx: &mut Db<'_, Transaction<'_>>,
    grant_id: &str,
    rows: &[TokenRow],
) -> Result<(), postgres::Error> {
    rows.iter().try_for_each(|row| row.upsert(tx, grant_id))
}

/// An instance's row.
pub(super) struct InstanceRow {
    pub id: String,
    pub expires_at: i64,
    pub record: Vec<u8>,
}

impl InstanceRow {
    pub(super) fn of(id: &str, instance: &InstanceRecord) -> Result<Self, StoreError> {
        Ok(Self {
            id: id.to_owned(),
            expires_at: instance.expiry(),
            record: encode(instance)?,
        })
    }

    pub(super) fn upsert(
        &self,
        tx: &mut Db<'_, impl GenericClient>,
    ) -> Result<(), postgres::Error> {
        tx.execute(
            "INSERT INTO instances (id, expires_at, record) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at,
                 record = EXCLUDED.record",
            &[&self.id, &self.expires_at, &self.record],
        )
        .map(drop)
    }
}

/// Makes the instance a grant names outlive it
/// ([`InstanceRecord::keep_until`]): one statement on the `expires_at`
/// column, which is what the sweep reads and what [`instance_from`] gives
/// the record, so two grants extending it at once both count.
pub(super) fn keep_instance(
    tx: &mut Db<'_, Transaction<'_>>,
    instance_id: Option<&str>,
    until: i64,
) -> Result<(), postgres::Error> {
    if let Some(id) = instance_id {
        tx.execute(KEEP_INSTANCE, &[&id, &until])?;
    }
    Ok(())
}

/// [`keep_instance`]'s statement.
const KEEP_INSTANCE: &str =
    "UPDATE instances SET expires_at = greatest(expires_at, $2) WHERE id = $1";

/// An instance read back: its record, kept as long as its row's
/// `expires_at` says (grants made with it move the column, not the
/// record's bytes).
pub(super) fn instance_from(expires_at: i64, record: &[u8]) -> Result<InstanceRecord, StoreError> {
    let mut instance: InstanceRecord = decode(record)?;
    instance.keep_until(expires_at);
    Ok(instance)
}
