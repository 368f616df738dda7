//! Table sizes (`Store::table_sizes`) under the names the sled store uses
//! (`store::TABLES`), counted as the memory store counts them: each record
//! as its key plus its encoded bytes, a grant with its tokens; the lookup
//! columns PostgreSQL indexes (continuation and management hashes, user
//! codes) as `token_index` and `user_codes`. Then the tables only the
//! nodes' coordination needs ([`SHARED`]: the shared replay claims, the
//! leases, the attempt counters, the shared entries), and the in-memory
//! replay budgets and record caches. One statement: a consistent snapshot.

use super::sql::one;
use super::{PostgresStore, StoreError};
use crate::store::TableSize;
use crate::store::codec::encode;
use crate::store::sizes::replay_sizes;

/// Records and bytes of each of `store::TABLES`, in that order.
const SIZES: &str = r#"
SELECT
  (SELECT count(*) FROM grants),
  (SELECT coalesce(sum(octet_length(id) + octet_length(record)), 0) FROM grants)
    + (SELECT coalesce(sum(octet_length(hash) + octet_length(record)), 0) FROM tokens),
  (SELECT count(continuation) FROM grants) + (SELECT count(*) FROM tokens),
  (SELECT coalesce(sum(octet_length(continuation) + octet_length(id)), 0) FROM grants
     WHERE continuation IS NOT NULL)
    + (SELECT coalesce(sum(octet_length(manage) + octet_length(hash)), 0) FROM tokens),
  (SELECT count(*) FROM instances),
  (SELECT coalesce(sum(octet_length(id) + octet_length(record)), 0) FROM instances),
  (SELECT count(*) FROM credential_sets),
  (SELECT coalesce(sum(octet_length(id) + octet_length(record)), 0) FROM credential_sets),
  (SELECT count(*) FROM upstreams),
  (SELECT coalesce(sum(octet_length(name) + octet_length(record)), 0) FROM upstreams),
  (SELECT count(*) FROM resource_sets),
  (SELECT coalesce(sum(octet_length(reference) + octet_length(record)), 0) FROM resource_sets),
  (SELECT count(*) FROM oauth_clients),
  (SELECT coalesce(sum(octet_length(client_id) + octet_length(record)), 0) FROM oauth_clients),
  (SELECT count(*) FROM interactions),
  (SELECT coalesce(sum(octet_length(grant_id) + octet_length(record)), 0) FROM interactions),
  (SELECT count(user_code) FROM interactions),
  (SELECT coalesce(sum(octet_length(user_code) + octet_length(grant_id)), 0) FROM interactions
     WHERE user_code IS NOT NULL),
  (SELECT count(*) FROM spent_refresh),
  (SELECT coalesce(sum(octet_length(hash) + octet_length(record)), 0) FROM spent_refresh),
  (SELECT count(*) FROM replay),
  (SELECT coalesce(sum(octet_length(digest) + 8), 0) FROM replay),
  (SELECT count(*) FROM leases),
  (SELECT coalesce(sum(octet_length(name) + octet_length(holder) + 8), 0) FROM leases),
  (SELECT count(*) FROM counters),
  (SELECT coalesce(sum(octet_length(name) + 20), 0) FROM counters),
  (SELECT count(*) FROM handoffs),
  (SELECT coalesce(sum(octet_length(kind) + octet_length(digest) + octet_length(value) + 8), 0)
     FROM handoffs)
"#;

/// The tables beside `store::TABLES` that only nodes sharing the database
/// need, in the order [`SIZES`] counts them (a row's fixed-width columns
/// count as their bytes).
const SHARED: [&str; 4] = ["replay", "leases", "counters", "handoffs"];

impl PostgresStore {
    pub(super) fn sizes(&self) -> Result<Vec<(String, TableSize)>, StoreError> {
        let counts: Vec<u64> = self.pool.run(|conn| {
            let row = one("reading table sizes", conn.db().query_one(SIZES, &[]))?;
            (0..(crate::store::TABLES.len() + SHARED.len()) * 2)
                .map(|i| {
                    // count() is bigint, and so is sum() of octet_length's int.
                    let n: i64 = row
                        .try_get(i)
                        .map_err(|e| super::sql::failed("reading table sizes", &e))?;
                    Ok(u64::try_from(n).unwrap_or(0))
                })
                .collect()
        })?;
        let mut sizes: Vec<(String, TableSize)> = crate::store::TABLES
            .iter()
            .chain(SHARED.iter())
            .zip(counts.chunks(2))
            .map(|(name, pair)| {
                let size = TableSize {
                    records: pair.first().copied().unwrap_or(0),
                    bytes: pair.get(1).copied().unwrap_or(0),
                };
                ((*name).to_owned(), size)
            })
            .collect();
        sizes.extend(replay_sizes(&self.replay));
        // Cached records count as their encoding, as the table holds them.
        let tokens = self
            .token_cache
            .size(|hash, record| hash.0.len() + encode(&**record).map_or(0, |b| b.len()));
        let sets = self
            .set_cache
            .size(|id, set| id.len() + encode(&**set).map_or(0, |b| b.len()));
        sizes.push(("memory:token_cache".to_owned(), tokens));
        sizes.push(("memory:credential_set_cache".to_owned(), sets));
        Ok(sizes)
    }
}
