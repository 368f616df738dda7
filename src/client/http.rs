//! The agent's HTTP edge: sends an already signed [`HttpRequest`] over the
//! gateway's pooled hyper client (plain HTTP or HTTPS against the system's
//! trust roots), and optionally traces every exchange on stderr.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::HeaderMap;

use super::ClientError;
use crate::http_client::UpstreamClient;
use crate::proto::httpsig::HttpRequest;
use crate::proto::text::escape;

/// Largest AS response read, in bytes.
pub const MAX_AS_RESPONSE: usize = 1024 * 1024;
/// How long the AS gets to answer.
pub const AS_TIMEOUT: Duration = Duration::from_secs(30);

/// A response read whole.
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// Every value of header `name` that is text.
    pub fn header_values<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .get_all(name)
            .into_iter()
            .filter_map(|v| v.to_str().ok())
    }
}

/// The HTTP client of one agent.
#[derive(Clone)]
pub struct Http {
    client: UpstreamClient,
    trace: bool,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http").field("trace", &self.trace).finish()
    }
}

impl Http {
    /// A client; `trace` prints each exchange on stderr.
    pub fn new(trace: bool) -> Result<Self, ClientError> {
        let client =
            crate::http_client::build(&[]).map_err(|e| ClientError::Setup(e.to_string()))?;
        Ok(Self { client, trace })
    }

    /// A client that trusts `extra_roots` beside the system's and
    /// presents `identity` when a server asks for a client certificate.
    pub(crate) fn with_tls(
        trace: bool,
        extra_roots: &[tokio_rustls::rustls::pki_types::CertificateDer<'static>],
        identity: Option<crate::http_client::ClientIdentity>,
    ) -> Result<Self, ClientError> {
        let client = crate::http_client::build_presenting(extra_roots, identity)
            .map_err(|e| ClientError::Setup(e.to_string()))?;
        Ok(Self { client, trace })
    }

    /// True when tracing.
    pub fn tracing(&self) -> bool {
        self.trace
    }

    /// Sends `request` and returns the response head with its body still
    /// streaming; `timeout` bounds the wait for the head.
    pub async fn send(
        &self,
        request: &HttpRequest,
        timeout: Duration,
    ) -> Result<hyper::Response<Incoming>, ClientError> {
        if self.trace {
            trace_request(request);
        }
        let mut builder = hyper::Request::builder()
            .method(request.method.as_str())
            .uri(request.target_uri.as_str());
        for (name, value) in request.fields.iter() {
            builder = builder.header(name, value);
        }
        let wire = builder
            .body(Full::new(Bytes::from(request.body.clone())))
            .map_err(|e| ClientError::Http(format!("cannot build the request: {e}")))?;
        let response = tokio::time::timeout(timeout, self.client.request(wire))
            .await
            .map_err(|_| {
                ClientError::Http(format!("{} did not answer in time", request.target_uri))
            })?
            .map_err(|e| ClientError::Http(format!("{}: {e}", request.target_uri)))?;
        if self.trace {
            let mut text = format!("< HTTP {}\n", response.status().as_u16());
            for (name, value) in response.headers() {
                text.push_str(&format!(
                    "< {name}: {}\n",
                    escape(&String::from_utf8_lossy(value.as_bytes()))
                ));
            }
            eprint!("{text}");
        }
        Ok(response)
    }

    /// Sends `request` and reads the whole response (at most `limit` bytes).
    pub async fn exchange(
        &self,
        request: &HttpRequest,
        timeout: Duration,
        limit: usize,
    ) -> Result<Answer, ClientError> {
        let response = self.send(request, timeout).await?;
        let status = response.status().as_u16();
        let (parts, body) = response.into_parts();
        let body = tokio::time::timeout(timeout, Limited::new(body, limit).collect())
            .await
            .map_err(|_| {
                ClientError::Http(format!(
                    "{} did not finish its answer in time",
                    request.target_uri
                ))
            })?
            .map_err(|e| ClientError::Http(format!("{}: {e}", request.target_uri)))?
            .to_bytes()
            .to_vec();
        if self.trace {
            trace_body("<", &body);
        }
        Ok(Answer {
            status,
            headers: parts.headers,
            body,
        })
    }
}

fn trace_request(request: &HttpRequest) {
    let mut text = format!("> {} {}\n", request.method, request.target_uri);
    for (name, value) in request.fields.iter() {
        text.push_str(&format!(
            "> {name}: {}\n",
            escape(&String::from_utf8_lossy(value))
        ));
    }
    eprint!("{text}");
    trace_body(">", &request.body);
}

/// Prints a body on stderr under the exchange it belongs to.
pub fn trace_body(prefix: &str, body: &[u8]) {
    if body.is_empty() {
        eprintln!("{prefix}");
        return;
    }
    // The peer wrote it: shown with its terminal and bidi controls escaped.
    let text = String::from_utf8_lossy(body);
    let mut out = format!("{prefix}\n");
    for line in text.lines() {
        out.push_str(&format!("{prefix} {}\n", escape(line)));
    }
    eprint!("{out}");
}
