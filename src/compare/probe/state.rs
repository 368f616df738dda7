//! Server-side state: records and bytes per store tree and in-memory
//! table, from the server's admin socket (`{"op":"store_stats"}`).

use std::collections::BTreeMap;
use std::path::Path;

/// Records and bytes (keys and values) of one tree or table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Size {
    /// Entries.
    pub records: u64,
    /// Bytes of keys and values.
    pub bytes: u64,
}

/// The sizes of every tree and table of the server on `data_dir`.
pub fn server(data_dir: &Path) -> Result<BTreeMap<String, Size>, String> {
    let answer = crate::admin::socket::call(data_dir, &serde_json::json!({"op": "store_stats"}))
        .map_err(|e| e.to_string())?;
    let mut sizes = BTreeMap::new();
    let tables = answer["tables"]
        .as_object()
        .ok_or("store_stats answered without `tables`")?;
    for (name, size) in tables {
        sizes.insert(
            name.clone(),
            Size {
                records: size["records"].as_u64().unwrap_or(0),
                bytes: size["bytes"].as_u64().unwrap_or(0),
            },
        );
    }
    Ok(sizes)
}
