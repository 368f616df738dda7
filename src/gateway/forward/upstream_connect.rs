//! What connecting an upstream needs from the gateway's client: the probe
//! of a pasted credential and the OAuth code exchange.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::header::{CONTENT_TYPE, HeaderValue};

use super::errors::TokenExchangeError;
use super::{Gateway, TOKEN_RESPONSE_LIMIT};
use crate::upstream::connect::{PROBE_BODY, Probed};
use crate::upstream::credential::Credential;
use crate::upstream::server::Upstream;

impl Gateway {
    /// The connect probe (`crate::upstream::connect`): one MCP `initialize`
    /// POST to `upstream` presenting `credential`, through the gateway's
    /// client. `None` if the upstream could not be reached in time.
    pub(crate) async fn probe(
        &self,
        upstream: &Upstream,
        credential: &Credential,
    ) -> Option<Probed> {
        let url = upstream.url()?;
        let mut builder = hyper::Request::builder()
            .method("POST")
            .uri(url)
            .header(CONTENT_TYPE, "application/json")
            .header("accept", "application/json, text/event-stream");
        if let (Some(headers), Some((name, value))) =
            (builder.headers_mut(), credential.header_to_inject())
        {
            headers.insert(name, value);
        }
        let request = builder
            .body(Full::new(Bytes::from_static(PROBE_BODY.as_bytes())))
            .ok()?;
        match tokio::time::timeout(self.response_timeout, self.client.request(request)).await {
            Ok(Ok(response)) => {
                let status = response.status().as_u16();
                // The answer's body is not needed; dropping it closes the
                // stream an SSE answer would keep open.
                drop(response);
                tracing::info!(upstream = %upstream.name, status, "connect probe answered");
                Some(Probed::of(status))
            }
            Ok(Err(e)) => {
                tracing::warn!(upstream = %upstream.name, error = %e, "connect probe failed");
                None
            }
            Err(_) => {
                tracing::warn!(upstream = %upstream.name, "connect probe timed out");
                None
            }
        }
    }

    /// Sends a token request to an upstream's authorization server (the
    /// code exchange of an OAuth connect) through the gateway's client:
    /// its status and body (at most 64 KiB).
    pub(crate) async fn token_request(
        &self,
        request: &crate::upstream::oauth2::TokenRequest,
    ) -> Result<(u16, Bytes), TokenExchangeError> {
        let mut builder = hyper::Request::builder()
            .method("POST")
            .uri(request.uri.as_str());
        for (name, value) in &request.headers {
            let mut value = HeaderValue::from_str(value)?;
            value.set_sensitive(true);
            builder = builder.header(*name, value);
        }
        let outgoing = builder.body(Full::new(Bytes::from(request.body.as_bytes().to_vec())))?;
        let response = tokio::time::timeout(self.response_timeout, self.client.request(outgoing))
            .await
            .map_err(|_| TokenExchangeError::Timeout)??;
        let status = response.status().as_u16();
        let body = tokio::time::timeout(
            self.response_timeout,
            Limited::new(response.into_body(), TOKEN_RESPONSE_LIMIT).collect(),
        )
        .await
        .map_err(|_| TokenExchangeError::Timeout)?
        .map_err(TokenExchangeError::Body)?
        .to_bytes();
        Ok((status, body))
    }
}
