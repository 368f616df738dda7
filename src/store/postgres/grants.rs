//! Grants: written new with their tokens (and instance, and interaction),
//! read by id or continuation token, continued and deleted by
//! compare-and-swap of the continuation column.

use super::invalidation::notify;
use super::rows::{GrantRow, InstanceRow, TokenRow, hash, keep_instance, upsert_tokens};
use super::sql::{one, transaction};
use super::{PostgresStore, StoreError};
use crate::store::codec::encode;
use crate::store::{
    GrantId, GrantRecord, InstanceRecord, InteractionRecord, TokenHash, TokenRecord,
};

/// What a new grant brings along.
struct NewGrant {
    grant: GrantRow,
    tokens: Vec<TokenRow>,
    /// An instance minted with it, already kept until the grant's expiry.
    instance: Option<InstanceRow>,
    /// Otherwise the instance it names, to keep as long.
    names: Option<String>,
    interaction: Option<(Option<Vec<u8>>, bool, Vec<u8>)>,
}

/// A new grant without an interaction, in one statement (one round trip,
/// atomic and committed on its own): the instance it names kept until the
/// grant's expiry, or the one minted with it written; the grant; its
/// tokens, passed as arrays (a token's credential sets as a JSON array).
/// A grant's continuation changes hands only if `$2` is still current (the
/// compare-and-swap both a continuation and a finished interaction make):
/// `$1` id, `$3` the new continuation, `$4` expiry, `$5` record.
pub(super) const SWAP_CONTINUATION: &str =
    "UPDATE grants SET continuation = $3, expires_at = $4, record = $5
     WHERE id = $1 AND continuation = $2";

const CREATE: &str = "
WITH kept AS (
    UPDATE instances SET expires_at = greatest(expires_at, $3) WHERE id = $5),
minted AS (
    INSERT INTO instances (id, expires_at, record)
    SELECT $6::text, $7::bigint, $8::bytea WHERE $6::text IS NOT NULL
    ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at, record = EXCLUDED.record),
g AS (
    INSERT INTO grants (id, continuation, expires_at, record) VALUES ($1, $2, $3, $4)
    ON CONFLICT (id) DO UPDATE SET continuation = EXCLUDED.continuation,
        expires_at = EXCLUDED.expires_at, record = EXCLUDED.record
    RETURNING id)
INSERT INTO tokens (hash, manage, grant_id, expires_at, sweeps_alone, credential_sets, record)
SELECT t.hash, t.manage, g.id, t.expires_at, t.sweeps_alone,
    ARRAY(SELECT jsonb_array_elements_text(t.sets::jsonb)), t.record
FROM g, unnest($9::bytea[], $10::bytea[], $11::bigint[], $12::boolean[], $13::text[], $14::bytea[])
    AS t(hash, manage, expires_at, sweeps_alone, sets, record)
ON CONFLICT (hash) DO UPDATE SET manage = EXCLUDED.manage,
    grant_id = EXCLUDED.grant_id, expires_at = EXCLUDED.expires_at,
    sweeps_alone = EXCLUDED.sweeps_alone,
    credential_sets = EXCLUDED.credential_sets, record = EXCLUDED.record";

/// [`CREATE`]'s parameters, owned.
struct CreateParams {
    names: Option<String>,
    instance: (Option<String>, Option<i64>, Option<Vec<u8>>),
    hashes: Vec<Vec<u8>>,
    manages: Vec<Vec<u8>>,
    expiries: Vec<i64>,
    alone: Vec<bool>,
    sets: Vec<String>,
    records: Vec<Vec<u8>>,
}

impl NewGrant {
    fn create_params(&self) -> Result<CreateParamsOf<'_>, StoreError> {
        let tokens = &self.tokens;
        let sets = tokens
            .iter()
            .map(|t| serde_json::to_string(&t.credential_sets))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::Backend(format!("encoding credential sets: {e}")))?;
        Ok(CreateParamsOf {
            grant: &self.grant,
            owned: CreateParams {
                names: self.names.clone(),
                instance: match &self.instance {
                    Some(i) => (
                        Some(i.id.clone()),
                        Some(i.expires_at),
                        Some(i.record.clone()),
                    ),
                    None => (None, None, None),
                },
                hashes: tokens.iter().map(|t| t.hash.clone()).collect(),
                manages: tokens.iter().map(|t| t.manage.clone()).collect(),
                expiries: tokens.iter().map(|t| t.expires_at).collect(),
                alone: tokens.iter().map(|t| t.sweeps_alone).collect(),
                sets,
                records: tokens.iter().map(|t| t.record.clone()).collect(),
            },
        })
    }
}

/// [`CreateParams`] beside the grant row they go with.
struct CreateParamsOf<'a> {
    grant: &'a GrantRow,
    owned: CreateParams,
}

impl CreateParamsOf<'_> {
    fn as_slice(&self) -> Vec<&(dyn postgres::types::ToSql + Sync)> {
        let o = &self.owned;
        vec![
            &self.grant.id,
            &self.grant.continuation,
            &self.grant.expires_at,
            &self.grant.record,
            &o.names,
            &o.instance.0,
            &o.instance.1,
            &o.instance.2,
            &o.hashes,
            &o.manages,
            &o.expiries,
            &o.alone,
            &o.sets,
            &o.records,
        ]
    }
}

impl PostgresStore {
    /// A new grant, its tokens, an instance minted with it (else the one it
    /// names kept until its expiry) and its interaction: one statement
    /// ([`CREATE`]) without an interaction, else one transaction. READ
    /// COMMITTED suffices: the grant's key is fresh, and extending an
    /// instance is one `UPDATE` of its expiry column.
    pub(super) fn write_new_grant(
        &self,
        grant: &GrantRecord,
        tokens: &[(TokenHash, TokenRecord)],
        instance: Option<(&str, &InstanceRecord)>,
        interaction: Option<&InteractionRecord>,
    ) -> Result<(), StoreError> {
        let instance = instance
            .map(|(id, record)| {
                let mut kept = record.clone();
                kept.keep_until(grant.expires_at);
                InstanceRow::of(id, &kept)
            })
            .transpose()?;
        let interaction = interaction
            .map(|i| {
                Ok::<_, StoreError>((
                    i.user_code.as_ref().map(hash),
                    i.status == crate::store::InteractionStatus::Pending,
                    encode(i)?,
                ))
            })
            .transpose()?;
        let new = NewGrant {
            names: match instance {
                Some(_) => None,
                None => grant.instance_id.clone(),
            },
            grant: GrantRow::of(grant)?,
            tokens: TokenRow::all(tokens)?,
            instance,
            interaction,
        };
        if new.interaction.is_none() {
            return self.pool.run(move |conn| {
                one(
                    "writing a new grant",
                    conn.db().execute(CREATE, &new.create_params()?.as_slice()),
                )
                .map(drop)
            });
        }
        self.pool.run(move |conn| {
            transaction(conn, "writing a new grant", |tx| {
                match &new.instance {
                    Some(instance) => instance.upsert(tx)?,
                    None => keep_instance(tx, new.names.as_deref(), new.grant.expires_at)?,
                }
                new.grant.upsert(tx)?;
                upsert_tokens(tx, &new.grant.id, &new.tokens)?;
                if let Some((code, pending, record)) = &new.interaction {
                    if code.is_some() {
                        // A code names one interaction: a newer one takes it.
                        tx.execute(
                            "UPDATE interactions SET user_code = NULL WHERE user_code = $1",
                            &[code],
                        )?;
                    }
                    tx.execute(
                        "INSERT INTO interactions (grant_id, user_code, pending, record)
                         VALUES ($1, $2, $3, $4)
                         ON CONFLICT (grant_id) DO UPDATE SET user_code = EXCLUDED.user_code,
                             pending = EXCLUDED.pending, record = EXCLUDED.record",
                        &[&new.grant.id, code, pending, record],
                    )?;
                }
                Ok(())
            })
        })
    }

    pub(super) fn grant_by_id(&self, id: &GrantId) -> Result<Option<GrantRecord>, StoreError> {
        self.read_one(
            "reading a grant",
            "SELECT record FROM grants WHERE id = $1",
            id.0.clone(),
        )
    }

    pub(super) fn grant_continued_by(
        &self,
        token: &TokenHash,
    ) -> Result<Option<GrantRecord>, StoreError> {
        self.read_one(
            "reading a grant by continuation",
            "SELECT record FROM grants WHERE continuation = $1",
            hash(token),
        )
    }

    /// The compare-and-swap is the `UPDATE`: its `WHERE` names the expected
    /// continuation, and a concurrent swap of the same row waits on the
    /// row lock, then finds the continuation changed and updates nothing.
    pub(super) fn swap_continuation(
        &self,
        expected: &TokenHash,
        grant: &GrantRecord,
        tokens: &[(TokenHash, TokenRecord)],
    ) -> Result<bool, StoreError> {
        let expected = hash(expected);
        let row = GrantRow::of(grant)?;
        let tokens = TokenRow::all(tokens)?;
        self.pool.run(move |conn| {
            transaction(conn, "continuing a grant", |tx| {
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
                if swapped {
                    upsert_tokens(tx, &row.id, &tokens)?;
                }
                Ok(swapped)
            })
        })
    }

    /// One statement: the grant continued by `expected` goes, and with it
    /// (`ON DELETE CASCADE`) its tokens and its interaction.
    pub(super) fn remove_grant(&self, expected: &TokenHash) -> Result<bool, StoreError> {
        let expected = hash(expected);
        self.pool.run(move |conn| {
            transaction(conn, "deleting a grant", |tx| {
                let deleted =
                    tx.execute("DELETE FROM grants WHERE continuation = $1", &[&expected])? > 0;
                if deleted {
                    notify(tx)?;
                }
                Ok(deleted)
            })
        })
    }
}
