//! `[external_oauth_as]`: the external OAuth AS whose access tokens the
//! gateway accepts, as the file writes it and as checked.
//!
//! ```toml
//! [external_oauth_as]
//! issuer = "https://as.example.com"
//! introspection_endpoint = "https://as.example.com/token/introspection"
//! client_id = "gnapd-gateway"
//! client_secret = "..."
//! cache_seconds = 0      # optional; 0 introspects on every call
//! timeout_seconds = 5    # optional; the most a call waits for the AS
//! # optional: introspections finding no active token one address may cause
//! unknown_tokens_per_address = { burst = 30, per_minute = 120 }
//! ```

use std::time::Duration;

use serde::Deserialize;

use crate::store::rate::RateLimit;
use crate::upstream::Secret;

/// How long a call waits for the AS by default (its turn and the answer).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Introspections that find no active token one client address may cause
/// by default: an agent's own token is never charged, so a burst of 30 and
/// 2 a second are far above what a mistyped or expired token needs, while a
/// stranger inventing tokens costs the AS at most that.
pub const DEFAULT_PER_ADDRESS: RateLimit = RateLimit {
    burst: 30,
    per_minute: 120,
};

/// The table as written. `Debug` shows no secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalAsEntry {
    /// The AS's issuer identifier: an introspection response's `iss`, when
    /// present, must be exactly this.
    pub issuer: String,
    /// Its RFC 7662 introspection endpoint.
    pub introspection_endpoint: String,
    /// gnapd's client id there.
    pub client_id: String,
    /// gnapd's client secret there (`client_secret_basic`).
    pub client_secret: Secret,
    /// Seconds an active answer is reused (never past the token's `exp`).
    #[serde(default)]
    pub cache_seconds: u64,
    /// Seconds a call waits for the AS before it is answered 503.
    pub timeout_seconds: Option<u64>,
    /// Introspections one client address may cause ([`DEFAULT_PER_ADDRESS`]).
    pub unknown_tokens_per_address: Option<RateLimit>,
}

/// The checked settings. `Debug` shows no secret.
#[derive(Debug, Clone)]
pub struct ExternalAsSettings {
    /// The issuer identifier.
    pub issuer: String,
    /// The introspection endpoint.
    pub introspection_endpoint: String,
    /// gnapd's client id there.
    pub client_id: String,
    /// gnapd's client secret there.
    pub client_secret: Secret,
    /// Seconds an active answer is reused; 0 for none.
    pub cache_seconds: u64,
    /// The most a call waits for the AS.
    pub timeout: Duration,
    /// Introspections one client address may cause.
    pub per_address: RateLimit,
}

impl ExternalAsEntry {
    /// The settings, or why the table is unusable (the message names no
    /// secret).
    pub fn to_settings(&self) -> Result<ExternalAsSettings, String> {
        for (name, value) in [
            ("issuer", &self.issuer),
            ("introspection_endpoint", &self.introspection_endpoint),
        ] {
            if !is_http_url(value) {
                return Err(format!(
                    "external_oauth_as.{name} {value} is not an absolute http(s) URL"
                ));
            }
        }
        if self.client_id.trim().is_empty() {
            return Err("external_oauth_as.client_id must not be empty".into());
        }
        if self.client_secret.expose().is_empty() {
            return Err("external_oauth_as.client_secret must not be empty".into());
        }
        let timeout = match self.timeout_seconds {
            None => DEFAULT_TIMEOUT,
            Some(0) => return Err("external_oauth_as.timeout_seconds must be positive".into()),
            Some(seconds) => Duration::from_secs(seconds),
        };
        let per_address = self
            .unknown_tokens_per_address
            .unwrap_or(DEFAULT_PER_ADDRESS);
        per_address
            .check("external_oauth_as.unknown_tokens_per_address")
            .map_err(|e| e.to_string())?;
        Ok(ExternalAsSettings {
            issuer: self.issuer.clone(),
            introspection_endpoint: self.introspection_endpoint.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            cache_seconds: self.cache_seconds,
            timeout,
            per_address,
        })
    }
}

/// An absolute `http` or `https` URL with a host, as the outbound client
/// takes it.
fn is_http_url(value: &str) -> bool {
    let Ok(uri) = value.parse::<hyper::Uri>() else {
        return false;
    };
    matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some_and(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> ExternalAsEntry {
        ExternalAsEntry {
            issuer: "https://as.example".into(),
            introspection_endpoint: "https://as.example/introspect".into(),
            client_id: "gnapd".into(),
            client_secret: Secret::new("hunter2-very-secret"),
            cache_seconds: 0,
            timeout_seconds: None,
            unknown_tokens_per_address: None,
        }
    }

    #[test]
    fn a_good_table_gives_settings_that_never_show_the_secret() {
        let settings = entry().to_settings().unwrap();
        assert_eq!(settings.timeout, DEFAULT_TIMEOUT);
        assert!(!format!("{settings:?}").contains("hunter2"));
        assert!(!format!("{:?}", entry()).contains("hunter2"));
    }

    #[test]
    fn urls_must_be_absolute_http_and_credentials_present() {
        for (issuer, endpoint) in [
            ("as.example", "https://as.example/i"),
            ("https://as.example", "/introspect"),
            ("ftp://as.example", "https://as.example/i"),
            ("https://as.example", "mailto:x@y"),
        ] {
            let mut e = entry();
            e.issuer = issuer.into();
            e.introspection_endpoint = endpoint.into();
            assert!(e.to_settings().is_err(), "{issuer} {endpoint}");
        }
        let mut e = entry();
        e.client_id = " ".into();
        assert!(e.to_settings().is_err());
        let mut e = entry();
        e.client_secret = Secret::new("");
        assert!(e.to_settings().is_err());
        let mut e = entry();
        e.timeout_seconds = Some(0);
        assert!(e.to_settings().is_err());
    }
}
