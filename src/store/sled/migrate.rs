//! Upgrading a data dir written in the five-tree layout (before issue 19:
//! `grants`, `continuations`, `tokens`, `manage` keyed by id or hash) to
//! one record per grant, at open, before anything is served.
//!
//! Every grant becomes one record holding its live tokens; the hashes of
//! its tokens, management tokens and continuation token were made from
//! values that carry no locator, so each gets a token index entry. Crash
//! safe by order: the new records and index entries are written and
//! flushed first, then the old `grants` tree is dropped, then the rest. A
//! crash before the first drop redoes the whole migration from the old
//! trees (writing the same records again); a crash after it finds no old
//! grants, and the tokens left over are either in their grant's record
//! already or were never reachable (a creation cut short).

use ::sled::Db;

use super::entry::{GrantEntry, grant_key};
use super::*;

/// The old layout's trees, dropped once migrated (`grants` first).
const OLD_TREES: [&str; 4] = ["grants", "tokens", "manage", "continuations"];

/// Migrates the five-tree layout into `records` and `index`, if `db` has
/// one; returns how many grants moved.
pub(super) fn from_five_trees(db: &Db, records: &Tree, index: &Tree) -> Result<usize, StoreError> {
    let names = db.tree_names();
    let present = |name: &str| names.iter().any(|n| n.as_ref() == name.as_bytes());
    if !OLD_TREES.iter().any(|name| present(name)) {
        return Ok(0);
    }
    let open = |name: &str| {
        db.open_tree(name)
            .map_err(|e| backend(&format!("opening tree {name}"), e))
    };
    let (grants, tokens) = (open("grants")?, open("tokens")?);
    let mut moved = 0;
    for item in grants.iter() {
        let (_, bytes) = item.map_err(|e| backend("sled scan", e))?;
        let grant: GrantRecord = decode(&bytes)?;
        let mut live = Vec::new();
        for hash in &grant.tokens {
            if let Some(bytes) = tokens.get(hash.0).map_err(|e| backend("sled read", e))? {
                live.push((*hash, decode::<TokenRecord>(&bytes)?));
            }
        }
        write(records, index, &GrantEntry::new(grant, live))?;
        moved += 1;
    }
    // A token its grant does not list (none that gnapd writes; a record
    // damaged by hand) joins its grant's record if that exists.
    for item in tokens.iter() {
        let (hash, bytes) = item.map_err(|e| backend("sled scan", e))?;
        let Ok(hash) = <[u8; 32]>::try_from(hash.as_ref()).map(TokenHash) else {
            continue;
        };
        let token: TokenRecord = decode(&bytes)?;
        let key = grant_key(&token.grant);
        let Some(bytes) = records.get(&key).map_err(|e| backend("sled read", e))? else {
            continue;
        };
        let mut entry = GrantEntry::decode(&bytes)?;
        if entry.token(&hash).is_none() {
            entry.add_tokens(&[(hash, token)]);
            write(records, index, &entry)?;
        }
    }
    db.flush()
        .map_err(|e| backend("flushing the migrated records", e))?;
    for name in OLD_TREES {
        db.drop_tree(name)
            .map_err(|e| backend(&format!("dropping the old tree {name}"), e))?;
        db.flush()
            .map_err(|e| backend("flushing a dropped tree", e))?;
    }
    tracing::info!(grants = moved, "store upgraded to one record per grant");
    Ok(moved)
}

fn write(records: &Tree, index: &Tree, entry: &GrantEntry) -> Result<(), StoreError> {
    let key = grant_key(&entry.grant.id);
    for hash in entry.hashes().filter(|h| !super::entry::locates(&key, h)) {
        index
            .insert(&hash.0[..], &key[..])
            .map_err(|e| backend("sled insert", e))?;
    }
    records
        .insert(&key[..], entry.encode()?)
        .map_err(|e| backend("sled insert", e))?;
    Ok(())
}
