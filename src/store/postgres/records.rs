//! The kinds kept one row per key with nothing to swap: instances,
//! credential sets, upstreams, resource sets, registered OAuth clients and
//! spent refresh tokens. Each write is one statement (an upsert, or an
//! insert that does nothing when the key is taken).

use super::invalidation::{notify, notify_upstreams};
use super::rows::{InstanceRow, hash, instance_from};
use super::sql::{one, transaction};
use super::{PostgresStore, StoreError};
use crate::store::codec::{Versioned, decode, encode};
use crate::store::{
    CredentialSetRecord, InstanceRecord, OAuthClientRecord, ResourceSetRecord, SpentRefresh,
    TokenHash, UpstreamRecord,
};

impl PostgresStore {
    /// The record `sql` (one parameter, `key`; one `record` column) finds.
    pub(super) fn read_one<T, K>(
        &self,
        what: &'static str,
        sql: &'static str,
        key: K,
    ) -> Result<Option<T>, StoreError>
    where
        T: Versioned + Send + 'static,
        K: postgres::types::ToSql + Sync + Send + 'static,
    {
        self.pool.run(move |conn| {
            one(what, conn.db().query_opt(sql, &[&key]))?
                .map(|row| decode(row.get::<_, &[u8]>(0)))
                .transpose()
        })
    }

    /// Every record `sql` lists, in its order.
    fn read_all<T: Versioned + Send + 'static>(
        &self,
        what: &'static str,
        sql: &'static str,
    ) -> Result<Vec<T>, StoreError> {
        self.pool.run(move |conn| {
            one(what, conn.db().query(sql, &[]))?
                .iter()
                .map(|row| decode(row.get::<_, &[u8]>(0)))
                .collect()
        })
    }

    /// Runs `sql` with a text key and a record; how many rows it touched.
    fn write_text_keyed(
        &self,
        what: &'static str,
        sql: &'static str,
        key: &str,
        record: Vec<u8>,
    ) -> Result<u64, StoreError> {
        let key = key.to_owned();
        self.pool
            .run(move |conn| one(what, conn.db().execute(sql, &[&key, &record])))
    }

    pub(super) fn put_instance(
        &self,
        id: &str,
        instance: &InstanceRecord,
    ) -> Result<(), StoreError> {
        let row = InstanceRow::of(id, instance)?;
        self.pool
            .run(move |conn| one("writing an instance", row.upsert(&mut conn.db())))
    }

    pub(super) fn get_instance(&self, id: &str) -> Result<Option<InstanceRecord>, StoreError> {
        let id = id.to_owned();
        self.pool.run(move |conn| {
            one(
                "reading an instance",
                conn.db().query_opt(
                    "SELECT expires_at, record FROM instances WHERE id = $1",
                    &[&id],
                ),
            )?
            .map(|row| instance_from(row.get(0), row.get::<_, &[u8]>(1)))
            .transpose()
        })
    }

    pub(super) fn write_credential_set(&self, set: &CredentialSetRecord) -> Result<(), StoreError> {
        // With the notification in its transaction: other nodes' caches
        // may hold the set's previous record.
        let id = set.id.clone();
        let record = encode(set)?;
        self.pool.run(move |conn| {
            transaction(conn, "writing a credential set", |tx| {
                tx.execute(
                    "INSERT INTO credential_sets (id, record) VALUES ($1, $2)
                     ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record",
                    &[&id, &record],
                )?;
                notify(tx)?;
                notify_upstreams(tx)
            })
        })
    }

    pub(super) fn read_credential_set(
        &self,
        id: &str,
    ) -> Result<Option<CredentialSetRecord>, StoreError> {
        self.read_one(
            "reading a credential set",
            "SELECT record FROM credential_sets WHERE id = $1",
            id.to_owned(),
        )
    }

    pub(super) fn all_credential_sets(&self) -> Result<Vec<CredentialSetRecord>, StoreError> {
        self.read_all(
            "listing credential sets",
            "SELECT record FROM credential_sets ORDER BY id",
        )
    }

    pub(super) fn write_upstream(&self, upstream: &UpstreamRecord) -> Result<(), StoreError> {
        // Every node's gateway hears of it (`Store::upstream_changes`).
        let name = upstream.name.clone();
        let record = encode(upstream)?;
        self.pool.run(move |conn| {
            transaction(conn, "writing an upstream", |tx| {
                tx.execute(
                    "INSERT INTO upstreams (name, record) VALUES ($1, $2)
                     ON CONFLICT (name) DO UPDATE SET record = EXCLUDED.record",
                    &[&name, &record],
                )?;
                notify_upstreams(tx)
            })
        })
    }

    pub(super) fn all_upstreams(&self) -> Result<Vec<UpstreamRecord>, StoreError> {
        self.read_all(
            "listing upstreams",
            "SELECT record FROM upstreams ORDER BY name",
        )
    }

    pub(super) fn delete_upstream(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.pool.run(move |conn| {
            transaction(conn, "removing an upstream", |tx| {
                let removed = tx.execute("DELETE FROM upstreams WHERE name = $1", &[&name])? > 0;
                if removed {
                    notify_upstreams(tx)?;
                }
                Ok(removed)
            })
        })
    }

    /// An insert that does nothing if the reference is taken: a reference
    /// once given out never comes to mean another set.
    pub(super) fn insert_resource_set(
        &self,
        reference: &str,
        set: &ResourceSetRecord,
    ) -> Result<bool, StoreError> {
        let inserted = self.write_text_keyed(
            "registering a resource set",
            "INSERT INTO resource_sets (reference, record) VALUES ($1, $2)
             ON CONFLICT (reference) DO NOTHING",
            reference,
            encode(set)?,
        )?;
        Ok(inserted == 1)
    }

    pub(super) fn read_resource_set(
        &self,
        reference: &str,
    ) -> Result<Option<ResourceSetRecord>, StoreError> {
        self.read_one(
            "reading a resource set",
            "SELECT record FROM resource_sets WHERE reference = $1",
            reference.to_owned(),
        )
    }

    pub(super) fn write_oauth_client(&self, record: &OAuthClientRecord) -> Result<(), StoreError> {
        let id = record.client.client_id.clone();
        let expires_at = record.expires_at;
        let bytes = encode(record)?;
        self.pool.run(move |conn| {
            one(
                "writing an OAuth client",
                conn.db().execute(
                    "INSERT INTO oauth_clients (client_id, expires_at, record) VALUES ($1, $2, $3)
                     ON CONFLICT (client_id) DO UPDATE SET expires_at = EXCLUDED.expires_at,
                         record = EXCLUDED.record",
                    &[&id, &expires_at, &bytes],
                ),
            )
            .map(drop)
        })
    }

    pub(super) fn read_oauth_client(
        &self,
        client_id: &str,
    ) -> Result<Option<OAuthClientRecord>, StoreError> {
        self.read_one(
            "reading an OAuth client",
            "SELECT record FROM oauth_clients WHERE client_id = $1",
            client_id.to_owned(),
        )
    }

    pub(super) fn count_oauth_clients(&self) -> Result<usize, StoreError> {
        self.pool.run(|conn| {
            let row = one(
                "counting OAuth clients",
                conn.db()
                    .query_one("SELECT count(*) FROM oauth_clients", &[]),
            )?;
            Ok(usize::try_from(row.get::<_, i64>(0)).unwrap_or(0))
        })
    }

    /// One statement: under READ COMMITTED a client whose expiry a
    /// concurrent use just moved is checked again on its new row and kept.
    pub(super) fn remove_lapsed_oauth_clients(&self, now: i64) -> Result<usize, StoreError> {
        self.pool.run(move |conn| {
            let removed = one(
                "sweeping OAuth clients",
                conn.db()
                    .execute("DELETE FROM oauth_clients WHERE expires_at < $1", &[&now]),
            )?;
            Ok(usize::try_from(removed).unwrap_or(usize::MAX))
        })
    }

    pub(super) fn write_spent_refresh(
        &self,
        refresh: &TokenHash,
        spent: &SpentRefresh,
    ) -> Result<(), StoreError> {
        let key = hash(refresh);
        let expires_at = spent.expires_at;
        let bytes = encode(spent)?;
        self.pool.run(move |conn| {
            one(
                "remembering a spent refresh token",
                conn.db().execute(
                    "INSERT INTO spent_refresh (hash, expires_at, record) VALUES ($1, $2, $3)
                     ON CONFLICT (hash) DO UPDATE SET expires_at = EXCLUDED.expires_at,
                         record = EXCLUDED.record",
                    &[&key, &expires_at, &bytes],
                ),
            )
            .map(drop)
        })
    }

    pub(super) fn read_spent_refresh(
        &self,
        refresh: &TokenHash,
    ) -> Result<Option<SpentRefresh>, StoreError> {
        self.read_one(
            "reading a spent refresh token",
            "SELECT record FROM spent_refresh WHERE hash = $1",
            hash(refresh),
        )
    }
}
