//! A read-only consistency check of a sled store: what "no grant is
//! half-written" means, tested after a crash (the kill -9 campaign) and
//! usable on any copy of a data dir.
//!
//! Every record must decode and sit under its grant's key; every token in
//! a grant's record must name that grant; every hash a record can be found
//! by must lead to it (by its locator, or by a token index entry); an
//! interaction's grant must exist and its user code lead to it. A grant
//! and its tokens are one record, so no crash can split them; a token
//! index entry is written before the record it leads to, so a crash
//! between leaves an entry leading nowhere. Those, and entries left by
//! tokens gone since, are counted as [`Checked::unfinished`], not as
//! damage: they lead no lookup anywhere, and the sweep removes them.

use std::collections::HashSet;

use ::sled::Tree;

use super::entry::{GrantEntry, grant_key, locates};
use super::{SledStore, backend};
use crate::store::codec::decode;
use crate::store::{
    CredentialSetRecord, InstanceRecord, InteractionRecord, ResourceSetRecord, StoreError,
    TokenHash, UpstreamRecord,
};

/// What [`SledStore::check`] read, and what it found wrong.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Grants read.
    pub grants: usize,
    /// Access tokens read.
    pub tokens: usize,
    /// Interactions read.
    pub interactions: usize,
    /// Tokens and index entries of a grant whose record was never written
    /// (a creation a crash cut short).
    pub unfinished: usize,
    /// Every inconsistency, in words (empty: the store is whole).
    pub problems: Vec<String>,
}

fn entries(tree: &Tree) -> impl Iterator<Item = Result<(::sled::IVec, ::sled::IVec), StoreError>> {
    tree.iter().map(|e| e.map_err(|e| backend("sled scan", e)))
}

impl SledStore {
    /// Reads every record and index and reports what does not agree. An
    /// `Err` only for a failing disk; damage is reported in
    /// [`Checked::problems`]. A scan, for tests and offline checks: it
    /// takes no lock, so concurrent writers may make it see a moment that
    /// never existed as a whole.
    pub fn check(&self) -> Result<Checked, StoreError> {
        let mut out = Checked::default();
        let mut grant_ids = HashSet::new();
        for item in entries(&self.records) {
            let (key, bytes) = item?;
            out.grants += 1;
            let entry = match GrantEntry::decode(&bytes) {
                Ok(entry) => entry,
                Err(e) => {
                    out.problems.push(format!("grant record {key:?}: {e}"));
                    continue;
                }
            };
            out.tokens += entry.tokens.len();
            let id = &entry.grant.id;
            if grant_key(id)[..] != key[..] {
                out.problems
                    .push(format!("grant {id:?} stored under another key"));
            }
            if entry.expires_at != entry.grant.expires_at
                || entry.tokens_expire
                    != GrantEntry::new(entry.grant.clone(), entry.tokens.clone()).tokens_expire
            {
                out.problems
                    .push(format!("grant {id:?}: its record's expiries are stale"));
            }
            for (hash, token) in &entry.tokens {
                if token.grant != *id {
                    out.problems.push(format!(
                        "token {hash:?} in the record of {id:?} names {:?}",
                        token.grant
                    ));
                }
            }
            let mut seen = HashSet::new();
            if entry.hashes().any(|h| !seen.insert(*h)) {
                out.problems
                    .push(format!("grant {id:?}: one hash stands for two tokens"));
            }
            for hash in entry.hashes().filter(|h| !locates(&key, h)) {
                if self
                    .token_index
                    .get(hash.0)
                    .map_err(|e| backend("sled read", e))?
                    .as_deref()
                    != Some(&key[..])
                {
                    out.problems.push(format!(
                        "grant {id:?}: {hash:?} neither locates it nor is indexed to it"
                    ));
                }
            }
            grant_ids.insert(id.0.clone());
        }
        for item in entries(&self.token_index) {
            let (hash, key) = item?;
            let holds = match <[u8; 32]>::try_from(hash.as_ref()) {
                Ok(hash) => self
                    .records
                    .get(&key)
                    .map_err(|e| backend("sled read", e))?
                    .and_then(|b| GrantEntry::decode(&b).ok())
                    .is_some_and(|e| e.found_by(&TokenHash(hash))),
                Err(_) => {
                    out.problems
                        .push(format!("a token index key of {} bytes", hash.len()));
                    continue;
                }
            };
            // Left by a creation cut short, or by a token revoked or
            // rotated since (the sweep removes those).
            if !holds {
                out.unfinished += 1;
            }
        }
        for entry in entries(&self.interactions) {
            let (id, bytes) = entry?;
            out.interactions += 1;
            let interaction: InteractionRecord = match decode(&bytes) {
                Ok(i) => i,
                Err(e) => {
                    out.problems.push(format!("interaction {id:?}: {e}"));
                    continue;
                }
            };
            if !grant_ids.contains(&interaction.grant.0) {
                out.problems.push(format!(
                    "interaction of {:?} without its grant",
                    interaction.grant
                ));
            }
        }
        for entry in entries(&self.user_codes) {
            let (code, id) = entry?;
            let leads_back = self
                .interactions
                .get(&id[..])
                .map_err(|e| backend("sled read", e))?
                .and_then(|b| decode::<InteractionRecord>(&b).ok())
                .and_then(|i| i.user_code)
                .is_some_and(|c| c.0[..] == code[..]);
            if !leads_back {
                out.problems
                    .push("a user code index entry leads to no interaction with that code".into());
            }
        }
        self.decodes::<InstanceRecord>(&self.instances, &mut out.problems)?;
        self.decodes::<CredentialSetRecord>(&self.credential_sets, &mut out.problems)?;
        self.decodes::<UpstreamRecord>(&self.upstreams, &mut out.problems)?;
        self.decodes::<ResourceSetRecord>(&self.resource_sets, &mut out.problems)?;
        self.decodes::<crate::store::OAuthClientRecord>(&self.oauth_clients, &mut out.problems)?;
        self.decodes::<crate::store::SpentRefresh>(&self.spent_refresh, &mut out.problems)?;
        Ok(out)
    }

    /// Reports every record of `tree` that does not decode as `T`.
    fn decodes<T: crate::store::codec::Versioned>(
        &self,
        tree: &Tree,
        problems: &mut Vec<String>,
    ) -> Result<(), StoreError> {
        for entry in entries(tree) {
            let (key, bytes) = entry?;
            if let Err(e) = decode::<T>(&bytes) {
                problems.push(format!("{} {key:?}: {e}", T::KIND));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{
        Continuation, GrantId, GrantRecord, GrantState, KeyBinding, RECORD_VERSION, Store as _,
        TokenRecord,
    };

    fn hash(n: u8) -> TokenHash {
        TokenHash([n; 32])
    }

    fn grant(id: &str, tokens: &[TokenHash], cont: TokenHash) -> GrantRecord {
        let request = crate::proto::gnap::parse_grant_request(
            br#"{"access_token":{"access":["x"]},"client":"inst"}"#,
        )
        .unwrap();
        GrantRecord {
            v: RECORD_VERSION,
            id: GrantId(id.into()),
            state: GrantState::Approved,
            client: key(),
            instance_id: None,
            request,
            tokens: tokens.to_vec(),
            continuation: Some(Continuation {
                token: cont,
                wait: 5,
                issued_at: 1,
            }),
            created_at: 1,
            expires_at: 4_000_000_000,
            oauth: None,
        }
    }

    fn key() -> KeyBinding {
        KeyBinding {
            thumbprint: "tp".into(),
            jwk: serde_json::json!({"kty": "OKP"}),
            method: crate::proto::gnap::ProofKind::HttpSig,
        }
    }

    fn token(grant: &str, manage: TokenHash) -> TokenRecord {
        TokenRecord {
            v: RECORD_VERSION,
            grant: GrantId(grant.into()),
            label: None,
            access: Vec::new(),
            key: key(),
            manage,
            bearer: false,
            issued_at: 1,
            expires_at: 4_000_000_000,
            credential_sets: Vec::new(),
            oauth: None,
        }
    }

    #[test]
    fn a_store_written_through_its_methods_checks_whole_an_index_entry_leading_nowhere_is_unfinished_and_damage_is_reported()
     {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        // Hashes that locate nothing: each gets a token index entry.
        store
            .create_grant(
                &grant("g1", &[hash(1), hash(2)], hash(9)),
                &[
                    (hash(1), token("g1", hash(11))),
                    (hash(2), token("g1", hash(12))),
                ],
            )
            .unwrap();
        // A revoked token stays listed by its grant: that is whole; its
        // index entries are left for the sweep.
        assert!(store.revoke_token(&hash(12)).unwrap());
        let whole = store.check().unwrap();
        assert_eq!((whole.grants, whole.tokens), (1, 1));
        assert_eq!(whole.problems, Vec::<String>::new());
        assert_eq!(whole.unfinished, 2, "the revoked token and its manager");
        store.sweep(0).unwrap();
        assert_eq!(store.check().unwrap().unfinished, 0);

        // What a creation cut short by a crash leaves (index entries
        // written, the record not): unfinished, not damage.
        let cut_key = grant_key(&GrantId("g2".into()));
        for n in [3, 13, 8] {
            store
                .token_index
                .insert(&hash(n).0[..], &cut_key[..])
                .unwrap();
        }
        let cut = store.check().unwrap();
        assert_eq!(cut.problems, Vec::<String>::new());
        assert_eq!(cut.unfinished, 3, "token, management and continuation");

        // What damage looks like: a record whose continuation neither
        // locates it nor is indexed, a record under another grant's key,
        // undecodable records.
        store.token_index.remove(&hash(9).0[..]).unwrap();
        let g3 = grant("g3", &[], hash(31));
        store
            .token_index
            .insert(&hash(31).0[..], &b"\x02elsewhere"[..])
            .unwrap();
        store
            .records
            .insert(
                &b"\x02elsewhere"[..],
                crate::store::codec::encode(&GrantEntry::new(g3, Vec::new())).unwrap(),
            )
            .unwrap();
        store.upstreams.insert(b"u", &b"{not json"[..]).unwrap();
        store
            .spent_refresh
            .insert(&hash(21).0[..], &b"{not json"[..])
            .unwrap();
        let torn = store.check().unwrap();
        assert_eq!(torn.problems.len(), 4, "{:?}", torn.problems);
        assert!(
            torn.problems
                .iter()
                .any(|p| p.starts_with("spent refresh token")),
            "{:?}",
            torn.problems
        );
    }
}
