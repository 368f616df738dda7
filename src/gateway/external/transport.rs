//! The one network step of trusting an external AS: POST the token to its
//! introspection endpoint (RFC 7662 §2.1) as the configured client
//! (`client_secret_basic`) and read at most [`RESPONSE_LIMIT`] bytes back.
//! Behind [`Introspect`] so the rest is tested without sockets; the time
//! bound is the caller's (it covers the wait for a turn too).

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::header::HeaderValue;

use super::settings::ExternalAsSettings;
use crate::http_client::UpstreamClient;
use crate::upstream::oauth2::client_token_request;

/// Largest introspection response read: a token's claims, not a document.
pub(crate) const RESPONSE_LIMIT: usize = 64 * 1024;

/// Why no answer came back (for the log: the agent hears 503).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unreachable {
    /// The request could not be made or sent, or the answer not read.
    #[error("introspection request failed: {0}")]
    Failed(String),
    /// The AS answered with another status than 200 (a 401: gnapd's
    /// credentials there are wrong).
    #[error("the introspection endpoint answered {0}")]
    Status(u16),
}

/// A call's answer body, when it comes.
pub(crate) type Pending<'a> = Pin<Box<dyn Future<Output = Result<Bytes, Unreachable>> + Send + 'a>>;

/// Asks the external AS about one token.
pub(crate) trait Introspect: Send + Sync + std::fmt::Debug {
    /// The introspection response's body for `token`.
    fn introspect<'a>(&'a self, token: &'a str) -> Pending<'a>;
}

/// [`Introspect`] over the gateway's outbound HTTP client.
#[derive(Debug)]
pub(crate) struct HttpIntrospect {
    client: UpstreamClient,
    settings: ExternalAsSettings,
}

impl HttpIntrospect {
    /// Introspects at `settings`' endpoint through `client`.
    pub(crate) fn new(client: UpstreamClient, settings: ExternalAsSettings) -> Self {
        Self { client, settings }
    }

    async fn call(&self, token: &str) -> Result<Bytes, Unreachable> {
        let failed = |e: &dyn std::fmt::Display| Unreachable::Failed(e.to_string());
        let s = &self.settings;
        let request = client_token_request(
            &s.introspection_endpoint,
            &s.client_id,
            Some(&s.client_secret),
            &[("token", token), ("token_type_hint", "access_token")],
        );
        let mut builder = hyper::Request::builder()
            .method("POST")
            .uri(request.uri.as_str());
        for (name, value) in &request.headers {
            let mut value = HeaderValue::from_str(value).map_err(|e| failed(&e))?;
            value.set_sensitive(true);
            builder = builder.header(*name, value);
        }
        let outgoing = builder
            .body(Full::new(Bytes::from(request.body.as_bytes().to_vec())))
            .map_err(|e| failed(&e))?;
        let response = self
            .client
            .request(outgoing)
            .await
            .map_err(|e| failed(&e))?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(Unreachable::Status(status));
        }
        Ok(Limited::new(response.into_body(), RESPONSE_LIMIT)
            .collect()
            .await
            .map_err(|e| failed(&*e))?
            .to_bytes())
    }
}

impl Introspect for HttpIntrospect {
    fn introspect<'a>(&'a self, token: &'a str) -> Pending<'a> {
        Box::pin(self.call(token))
    }
}
