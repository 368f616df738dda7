//! The grants waiting for a person, in plain words: what `gnapd grants
//! pending` lists and what a consent page describes.

use serde::Serialize;

use crate::authz::AuthServer;
use crate::authz::usercode::UserCode;
use crate::proto::gnap::{AccessRight, Client, GrantRequest};
use crate::store::{FinishKind, StoreError};

/// A pending grant, for a person (or an admin) to decide on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingGrant {
    /// The grant id.
    pub(crate) grant: String,
    /// Its user code as people read it (`XXXX-XXXX`), if this server
    /// issued it since it started.
    pub user_code: Option<String>,
    /// The client's self-declared name: unverified (§2.3.2).
    pub display_name: Option<String>,
    /// RFC 7638 thumbprint of the client's key: the client's real identity.
    pub(crate) thumbprint: String,
    /// The access requested, in plain words, one line per right.
    pub access: Vec<String>,
    /// Seconds since the request.
    pub(crate) age: i64,
    /// Seconds until the interaction expires.
    pub(crate) expires_in: i64,
    /// `redirect`, `push` or none.
    pub(crate) finish: Option<FinishKind>,
}

/// Describes access rights in plain words, one line per right.
pub(crate) fn describe_access(rights: &[AccessRight]) -> Vec<String> {
    rights
        .iter()
        .map(|right| match right {
            AccessRight::Reference(r) => match r.strip_prefix("mcp:") {
                Some(upstream) => format!("full access to MCP upstream `{upstream}`"),
                None => format!("access named `{r}`"),
            },
            AccessRight::Object(o) if o.is_mcp() => {
                let upstream = o.identifier.as_deref().unwrap_or("(any)");
                let methods = match &o.actions {
                    Some(a) => format!("methods {}", a.join(", ")),
                    None => "all methods".to_owned(),
                };
                let tools = match &o.tools {
                    Some(t) => format!("; tools {}", t.join(", ")),
                    None => "; all tools".to_owned(),
                };
                format!("MCP upstream `{upstream}`: {methods}{tools}")
            }
            AccessRight::Object(o) => {
                let mut text = format!("`{}`", o.kind);
                if let Some(a) = &o.actions {
                    text.push_str(&format!(": {}", a.join(", ")));
                }
                if let Some(l) = &o.locations {
                    text.push_str(&format!(" at {}", l.join(", ")));
                }
                if let Some(id) = &o.identifier {
                    text.push_str(&format!(" ({id})"));
                }
                text
            }
        })
        .collect()
}

fn requested_access(request: &GrantRequest) -> Vec<AccessRight> {
    request
        .access_token
        .as_ref()
        .map(|t| {
            t.as_slice()
                .iter()
                .flat_map(|t| t.access.iter().cloned())
                .collect()
        })
        .unwrap_or_default()
}

impl AuthServer {
    /// The grants waiting for a person, oldest first.
    pub fn pending_grants(&self) -> Result<Vec<PendingGrant>, StoreError> {
        let now = self.now();
        let codes = self
            .live
            .lock()
            .map(|live| live.codes.clone())
            .unwrap_or_default();
        let mut pending = Vec::new();
        for interaction in self.store.pending_interactions()? {
            if interaction.expires_at < now {
                continue;
            }
            // One record this build cannot read (say, one stored before a
            // stricter reader) must not hide every other pending grant.
            let grant = match self.store.grant(&interaction.grant) {
                Ok(Some(grant)) => grant,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(grant = %interaction.grant.0, error = %e, "a pending grant could not be read; not listed");
                    continue;
                }
            };
            let display_name = match &grant.request.client {
                Client::Key(c) => c.display.as_ref().and_then(|d| d.name.clone()),
                Client::Instance(_) => None,
            };
            pending.push(PendingGrant {
                grant: grant.id.0.clone(),
                user_code: codes.get(&grant.id).map(UserCode::display),
                display_name,
                thumbprint: grant.client.thumbprint.clone(),
                access: describe_access(&requested_access(&grant.request)),
                age: now.saturating_sub(grant.created_at),
                expires_in: interaction.expires_at.saturating_sub(now),
                finish: interaction.finish.as_ref().map(|f| f.method),
            });
        }
        Ok(pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_is_described_in_plain_words() {
        let rights: Vec<AccessRight> = serde_json::from_value(serde_json::json!([
            "mcp:github",
            {"type": "mcp", "identifier": "slack", "actions": ["tools/call"], "tools": ["post"]},
            {"type": "photo-api", "actions": ["read"], "locations": ["https://p.example"]},
            "other"
        ]))
        .unwrap();
        assert_eq!(
            describe_access(&rights),
            [
                "full access to MCP upstream `github`",
                "MCP upstream `slack`: methods tools/call; tools post",
                "`photo-api`: read at https://p.example",
                "access named `other`",
            ]
        );
    }
}
