//! Client metadata documents as the registry sees them: a cached client,
//! or fetched bytes checked (`proto::oauth::cimd`) and cached per their
//! headers. The fetch itself is the HTTP edge's.

use super::OAuthClients;
use super::document_cache::lifetime;
use crate::proto::oauth::cimd::{CimdError, read_document};
use crate::proto::oauth::client::ClientInfo;

impl OAuthClients {
    /// The client of the document at `url`, if a fresh copy is cached.
    pub fn cached_document(&self, url: &str) -> Option<ClientInfo> {
        let now = self.now();
        self.documents.lock().ok()?.get(url, now)
    }

    /// Checks the document fetched from `url` and caches it (failures are
    /// not cached: the next request fetches again).
    pub fn document_fetched(
        &self,
        url: &str,
        body: &[u8],
        cache_control: Option<&str>,
        expires: Option<&str>,
    ) -> Result<ClientInfo, CimdError> {
        let client = read_document(url, body)?;
        let now = self.now();
        if let Ok(mut documents) = self.documents.lock() {
            documents.put(
                url,
                client.clone(),
                lifetime(cache_control, expires, now),
                now,
            );
        }
        Ok(client)
    }
}
