//! Interaction by redirect with a redirect finish (RFC 9635 §2.5, §3.3.1,
//! §4.2.1): the grant request offers `start: ["redirect"]` and `finish:
//! {method: "redirect", uri, nonce}`; the AS answers with the URL to send
//! the person's browser to and its own finish nonce. When the person has
//! decided, the AS sends the browser to the finish URI with `hash` and
//! `interact_ref`; the agent checks the hash (§4.2.3, gnapd's own
//! `crate::client::finish`) before it continues with the reference.

use super::super::driver::DriverError;
use super::super::meter::Meter;
use super::grant::{body, pending, send};
use super::wire;
use crate::client::finish::verify_redirect;
use crate::client::grant::AccessSpec;
use crate::proto::gnap::Continue;
use crate::proto::jwk::SigningKey;

/// Where the driver's finish URIs point: a loopback address of the agent's
/// (the browser is stopped before it fetches it, as the contract says).
pub const FINISH_PREFIX: &str = "http://127.0.0.1:9/gnap-finish/";

/// A grant waiting for the person.
#[derive(Debug, Clone)]
pub struct Started {
    /// The URL the person's browser opens (§3.3.1).
    pub redirect: String,
    /// The finish URI the agent gave.
    pub finish_uri: String,
    /// The agent's finish nonce.
    pub client_nonce: String,
    /// The AS's finish nonce (§3.3.5).
    pub as_nonce: String,
    /// The continuation to call once the browser is back.
    pub continue_: Continue,
}

/// Sends the grant request with interaction and reads what the person must
/// do.
pub async fn start(
    meter: &mut Meter,
    key: &SigningKey,
    as_uri: &str,
    access: &AccessSpec,
    resource: &str,
) -> Result<Started, DriverError> {
    let client_nonce = wire::nonce()?;
    let finish_uri = format!("{FINISH_PREFIX}{}", wire::nonce()?);
    let request = body(
        key,
        access,
        None,
        &["redirect"],
        Some((&finish_uri, &client_nonce)),
    );
    let response = send(meter, key, as_uri, &request, resource).await?;
    let pending = pending("the grant request with interaction", &response)?;
    let interaction = pending.interaction.unwrap_or_default();
    let (Some(redirect), Some(as_nonce)) = (interaction.redirect, interaction.finish) else {
        return Err(DriverError::Protocol(
            "the AS accepted no redirect interaction with a redirect finish".into(),
        ));
    };
    Ok(Started {
        redirect,
        finish_uri,
        client_nonce,
        as_nonce,
        continue_: pending.continue_,
    })
}

/// The `interact_ref` of the browser's return to `callback` (the finish URI
/// with its query), once its hash proves it was made for this grant at
/// `as_uri`.
pub fn finish(started: &Started, callback: &str, as_uri: &str) -> Result<String, DriverError> {
    let query = callback
        .strip_prefix(started.finish_uri.as_str())
        .and_then(|rest| rest.strip_prefix('?'))
        .ok_or_else(|| {
            DriverError::Protocol(format!("the browser came back to another URL: {callback}"))
        })?;
    verify_redirect(query, &started.client_nonce, &started.as_nonce, as_uri)
        .map_err(|e| DriverError::Protocol(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::finish::interaction_hash;
    use crate::proto::gnap::BoundAccessToken;

    fn started() -> Started {
        Started {
            redirect: "http://as/interact".into(),
            finish_uri: format!("{FINISH_PREFIX}abc"),
            client_nonce: "CN".into(),
            as_nonce: "AN".into(),
            continue_: Continue {
                uri: "http://as/continue".into(),
                wait: None,
                access_token: BoundAccessToken::new(
                    crate::proto::gnap::TokenValue::new("t").unwrap(),
                ),
            },
        }
    }

    #[test]
    fn the_finish_hash_is_checked_before_the_reference_is_used() {
        let s = started();
        let hash = interaction_hash("CN", "AN", "REF1", "http://as/gnap");
        let good = format!("{}?hash={hash}&interact_ref=REF1", s.finish_uri);
        assert_eq!(finish(&s, &good, "http://as/gnap").unwrap(), "REF1");
        // Another grant endpoint, another reference, another URL: refused.
        assert!(finish(&s, &good, "http://other/gnap").is_err());
        let swapped = format!("{}?hash={hash}&interact_ref=REF2", s.finish_uri);
        assert!(finish(&s, &swapped, "http://as/gnap").is_err());
        let elsewhere = format!("http://127.0.0.1:9/x?hash={hash}&interact_ref=REF1");
        assert!(finish(&s, &elsewhere, "http://as/gnap").is_err());
    }
}
