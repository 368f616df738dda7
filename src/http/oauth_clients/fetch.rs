//! Fetching a client's metadata document (CIMD): one GET to the https URL
//! that is its `client_id`, with the SSRF rules of the `push` finish
//! (`crate::http::push`), since the URL is the client's choice and
//! anyone may present one:
//!
//! - `https` only, the host resolved here and every address checked: any
//!   private, loopback, link-local, unspecified or translated address
//!   (`authz::interaction::is_internal_address`) refuses the fetch, unless
//!   `allow_private_metadata_documents` is set (tests, local development);
//! - the connection goes to an address that was checked (no second lookup
//!   an attacker's DNS could answer differently);
//! - TLS verified against the system roots plus the configured CAs
//!   (`upstream_ca_files`);
//! - at most [`MAX_IN_FLIGHT`] fetches at once (past it the request is
//!   refused at once, never queued: a flood of slow documents cannot
//!   hold the server's tasks);
//! - [`TOTAL_TIMEOUT`] for everything; redirects are not followed (the
//!   document must be at its own URL); at most
//!   [`crate::proto::oauth::cimd::MAX_DOCUMENT`] bytes are read, a longer
//!   body fails the fetch.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, LengthLimitError, Limited};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

use crate::http::outbound::{self, NotConnected};
use crate::proto::oauth::cimd::MAX_DOCUMENT;

pub use crate::http::outbound::CONNECT_TIMEOUT;
/// How long the whole fetch (lookup, connect, TLS, request, answer) may
/// take.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(5);

/// Most fetches under way at once.
pub const MAX_IN_FLIGHT: usize = 64;

/// A document as fetched: its bytes and the headers caching reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The body.
    pub body: Vec<u8>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Expires`.
    pub expires: Option<String>,
}

/// Makes the fetches.
pub struct DocumentFetcher {
    allow_internal: bool,
    tls: TlsConnector,
    in_flight: tokio::sync::Semaphore,
}

impl std::fmt::Debug for DocumentFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentFetcher")
            .field("allow_internal", &self.allow_internal)
            .finish_non_exhaustive()
    }
}

impl DocumentFetcher {
    /// A fetcher trusting the system roots and `extra`; `allow_internal`
    /// lets it reach internal addresses.
    pub fn new(
        allow_internal: bool,
        extra: &[CertificateDer<'static>],
    ) -> Result<Self, crate::http_client::TlsError> {
        Ok(Self {
            allow_internal,
            tls: outbound::tls_connector(extra)?,
            in_flight: tokio::sync::Semaphore::new(MAX_IN_FLIGHT),
        })
    }

    /// GETs the document at `url`; the error says why in our words.
    pub async fn fetch(&self, url: &str) -> Result<Fetched, String> {
        let Ok(_slot) = self.in_flight.try_acquire() else {
            return Err("too many documents are being fetched; retry later".into());
        };
        match tokio::time::timeout(TOTAL_TIMEOUT, self.fetch_inner(url)).await {
            Ok(outcome) => outcome,
            Err(_) => Err("it took longer than 5 seconds".into()),
        }
    }

    async fn fetch_inner(&self, url: &str) -> Result<Fetched, String> {
        let parsed = url
            .parse::<hyper::Uri>()
            .map_err(|_| "not a usable URL".to_owned())?;
        if parsed.scheme_str() != Some("https") {
            return Err("only https".into());
        }
        let host = outbound::bare_host(&parsed).ok_or("no host")?;
        let port = parsed.port_u16().unwrap_or(443);
        let stream = outbound::connect(&host, port, self.allow_internal)
            .await
            .map_err(|e| match e {
                NotConnected::Refused(why) | NotConnected::Failed(why) => why,
            })?;
        let (path, authority) = outbound::target_and_authority(&parsed);
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, authority)
            .header(hyper::header::ACCEPT, "application/json")
            .body(Empty::<Bytes>::new())
            .map_err(|_| "cannot build the request".to_owned())?;
        let name = ServerName::try_from(host.clone()).map_err(|_| "not a TLS server name")?;
        let tls = self
            .tls
            .connect(name, stream)
            .await
            .map_err(|_| "the TLS handshake failed".to_owned())?;
        get(TokioIo::new(tls), request).await
    }
}

async fn get<T>(io: T, request: hyper::Request<Empty<Bytes>>) -> Result<Fetched, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = http1::handshake(io)
        .await
        .map_err(|_| "the HTTP exchange failed".to_owned())?;
    let driver = tokio::spawn(connection);
    let outcome = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|_| "the HTTP exchange failed".to_owned())?;
        let status = response.status();
        if status.is_redirection() {
            return Err(format!(
                "the server answered {} (redirects are not followed)",
                status.as_u16()
            ));
        }
        if status != hyper::StatusCode::OK {
            return Err(format!("the server answered {}", status.as_u16()));
        }
        let header = |name: hyper::header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let cache_control = header(hyper::header::CACHE_CONTROL);
        let expires = header(hyper::header::EXPIRES);
        let body = Limited::new(response.into_body(), MAX_DOCUMENT)
            .collect()
            .await
            .map_err(|e| {
                if e.downcast_ref::<LengthLimitError>().is_some() {
                    "the document is larger than 5 KB".to_owned()
                } else {
                    "the document could not be read".to_owned()
                }
            })?
            .to_bytes()
            .to_vec();
        Ok(Fetched {
            body,
            cache_control,
            expires,
        })
    }
    .await;
    driver.abort();
    outcome
}
