//! `{"op":"store_stats"}`: the size of every table the server keeps, on
//! disk and in memory, for `gnapd compare` (see the module documentation
//! of `crate::admin`).

use serde_json::{Map, Value, json};

use super::{Admin, AdminError};
use crate::store::TableSize;

impl Admin {
    pub(super) fn store_stats(&self) -> Result<Value, AdminError> {
        let mut tables = self
            .store
            .table_sizes()
            .map_err(|source| AdminError::Store {
                what: "reading the table sizes".into(),
                source,
            })?;
        match self.app.as_ref().and_then(|cell| cell.get()) {
            Some(app) => tables.extend(crate::http::tables::memory_tables(app)),
            // Not serving yet (or a harness without HTTP): what the admin
            // itself reaches.
            None => {
                if let Some(interaction) = &self.interaction {
                    tables.extend(interaction.auth.memory_tables());
                }
                tables.extend(self.gateway.memory_tables());
            }
        }
        Ok(json!({ "tables": as_json(tables) }))
    }
}

fn as_json(tables: Vec<(String, TableSize)>) -> Map<String, Value> {
    tables
        .into_iter()
        .map(|(name, size)| {
            let size = json!({"records": size.records, "bytes": size.bytes});
            (name, size)
        })
        .collect()
}
