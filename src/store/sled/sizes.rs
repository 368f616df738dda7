//! The sled store's table sizes (`Store::table_sizes`): every tree read
//! through, then the in-memory replay budgets and record caches.

use ::sled::Tree;

use super::tx::backend;
use super::{SledStore, StoreError};
use crate::store::TableSize;
use crate::store::codec::encode;
use crate::store::sizes::replay_sizes;

impl SledStore {
    /// The trees, in [`crate::store::TABLES`] order.
    fn trees(&self) -> [&Tree; 10] {
        [
            &self.records,
            &self.token_index,
            &self.instances,
            &self.credential_sets,
            &self.upstreams,
            &self.resource_sets,
            &self.oauth_clients,
            &self.interactions,
            &self.user_codes,
            &self.spent_refresh,
        ]
    }

    pub(super) fn sizes(&self) -> Result<Vec<(String, TableSize)>, StoreError> {
        let mut sizes = Vec::new();
        for (name, tree) in crate::store::TABLES.iter().zip(self.trees()) {
            sizes.push(((*name).to_owned(), tree_size(tree)?));
        }
        sizes.extend(replay_sizes(&self.replay));
        // Cached records count as their encoding, as sled holds them.
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

fn tree_size(tree: &Tree) -> Result<TableSize, StoreError> {
    let mut size = TableSize::default();
    for entry in tree.iter() {
        let (key, value) = entry.map_err(|e| backend("reading a tree's size", e))?;
        size.add(key.len(), value.len());
    }
    Ok(size)
}
