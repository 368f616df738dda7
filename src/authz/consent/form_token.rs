//! The form token of a grant's page: HMAC-SHA-256 over the grant id under
//! the page key, checked in constant time before anything is looked up
//! (the CSRF token, not who decides). The key is derived from the master
//! key when there is one (`AuthServer::with_page_key`), so a page one node
//! rendered is posted to any other; without one, this server draws it at
//! first use, and a restart invalidates forms already shown.

use subtle::ConstantTimeEq as _;

use super::PageError;
use crate::authz::{AuthServer, is_grant_id};
use crate::proto::hmac::hmac_sha256;
use crate::store::GrantId;

impl AuthServer {
    fn page_key(&self) -> Result<&[u8; 32], PageError> {
        if let Some(key) = self.page_key.get() {
            return Ok(key);
        }
        let mut key = [0u8; 32];
        self.random()
            .fill(&mut key)
            .map_err(|_| PageError::Internal)?;
        // Of two first callers, one key wins and both use it.
        let _ = self.page_key.set(key);
        self.page_key.get().ok_or(PageError::Internal)
    }

    /// The form token of `grant`'s page.
    pub(super) fn form_token(&self, grant: &GrantId) -> Result<String, PageError> {
        let mac = hmac_sha256(
            self.page_key()?,
            format!("gnapd interaction form\n{}", grant.0).as_bytes(),
        );
        Ok(crate::proto::b64::encode_url(&mac))
    }

    /// Checks `form_token` against `grant`'s page; a missing or wrong one
    /// is [`PageError::Forbidden`], logged without the token.
    pub(crate) fn check_form_token(
        &self,
        grant: &str,
        form_token: Option<&str>,
        source: &str,
    ) -> Result<GrantId, PageError> {
        if !is_grant_id(grant) {
            return Err(PageError::NotFound);
        }
        let id = GrantId(grant.to_owned());
        let expected = self.form_token(&id)?;
        let valid: bool = match form_token {
            Some(presented) => presented.as_bytes().ct_eq(expected.as_bytes()).into(),
            None => false,
        };
        if !valid {
            tracing::warn!(
                grant,
                source,
                "interaction form refused: missing or wrong form token"
            );
            return Err(PageError::Forbidden);
        }
        Ok(id)
    }
}
