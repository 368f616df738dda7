//! Talking to the AS under test: plain HTTP or HTTPS through the agent's
//! client (`client::http`), every request built here, signed by the
//! suite's [`ProofSigner`] unless a check asks otherwise.
//!
//! A transport failure is returned as text: the check decides whether an
//! AS that did not answer failed it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::header::HeaderMap;
use serde_json::Value;
use tokio_rustls::rustls::pki_types::CertificateDer;

use super::proof::ProofSigner;
use crate::client::http::Http;
use crate::clock::{Clock, SystemClock};
use crate::proto::httpsig::HttpRequest;

/// Largest answer read from the AS.
const MAX_ANSWER: usize = 1024 * 1024;

/// An answer of the AS, read whole.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status.
    pub status: u16,
    /// The header fields.
    pub headers: HeaderMap,
    /// The content.
    pub body: Vec<u8>,
}

impl Reply {
    /// The first value of `name` as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The content as JSON, if it is.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The media type, without parameters, lower-cased.
    pub fn media_type(&self) -> Option<String> {
        self.header("content-type")
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
    }

    /// True when `Cache-Control` lists `no-store` (RFC 9111 §5.2.2.5).
    pub fn no_store(&self) -> bool {
        self.headers.get_all("cache-control").iter().any(|v| {
            v.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|d| d.trim().eq_ignore_ascii_case("no-store"))
            })
        })
    }

    /// The GNAP error code (§3.6), in either form: `{"error": {"code": …}}`
    /// or `{"error": "…"}`.
    pub fn error_code(&self) -> Option<String> {
        let json = self.json()?;
        match json.get("error")? {
            Value::String(code) => Some(code.clone()),
            Value::Object(object) => object.get("code")?.as_str().map(str::to_owned),
            _ => None,
        }
    }

    /// `200`, `400 invalid_request`: the status and any error code, for a
    /// detail line.
    pub fn summary(&self) -> String {
        match self.error_code() {
            Some(code) => format!("{} {code}", self.status),
            None => self.status.to_string(),
        }
    }
}

/// A grant the suite left with a continuation: deleted when the run ends,
/// so the suite does not leave pending grants holding the AS's slots.
struct Leftover {
    signer: Arc<dyn ProofSigner>,
    uri: String,
    token: String,
    /// When `wait` will have passed.
    ready_at: tokio::time::Instant,
}

/// The AS under test, and how the suite reaches and signs for it.
pub struct Target {
    grant_endpoint: String,
    http: Http,
    /// Trusted beside the system's roots (`--ca-file`), by every client.
    roots: Vec<CertificateDer<'static>>,
    timeout: Duration,
    signer: Arc<dyn ProofSigner>,
    leftovers: Mutex<Vec<Leftover>>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("grant_endpoint", &self.grant_endpoint)
            .field("proof", &self.signer.method())
            .finish_non_exhaustive()
    }
}

impl Target {
    /// The AS whose grant endpoint is `grant_endpoint`, each exchange
    /// bounded by `timeout`, signing with `signer`; its TLS certificate
    /// verified against the system's roots and `roots`.
    pub fn new(
        grant_endpoint: &str,
        timeout: Duration,
        signer: Arc<dyn ProofSigner>,
        roots: Vec<CertificateDer<'static>>,
    ) -> Result<Self, String> {
        let http = Http::with_tls(false, &roots, None).map_err(|e| e.to_string())?;
        Ok(Self {
            grant_endpoint: grant_endpoint.to_owned(),
            http,
            roots,
            timeout,
            signer,
            leftovers: Mutex::new(Vec::new()),
        })
    }

    /// Signs from now on with `signer`: each check gets a key of its own,
    /// so no AS limit per key carries over from one check to the next.
    pub fn set_signer(&mut self, signer: Arc<dyn ProofSigner>) {
        self.signer = signer;
    }

    /// Deletes (§5.4) every grant the suite's requests left with a
    /// continuation, each once its `wait` has passed; answers are not
    /// judged (a grant already finished refuses, as it should). Returns
    /// how many were deleted.
    pub async fn clean_up(&self) -> usize {
        let leftovers = std::mem::take(&mut *self.lock_leftovers());
        let mut deleted = 0;
        for leftover in leftovers {
            tokio::time::sleep_until(leftover.ready_at).await;
            let reply = self
                .signed_by(
                    leftover.signer.as_ref(),
                    "DELETE",
                    &leftover.uri,
                    Some(&leftover.token),
                    None,
                )
                .await;
            if reply.is_ok_and(|r| r.status == 204) {
                deleted += 1;
            }
        }
        deleted
    }

    fn lock_leftovers(&self) -> std::sync::MutexGuard<'_, Vec<Leftover>> {
        // A poisoned lock only means a check panicked; the list is whole.
        match self.leftovers.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The grant endpoint, as given.
    pub fn grant_endpoint(&self) -> &str {
        &self.grant_endpoint
    }

    /// The CA certificates trusted beside the system's: a signer with an
    /// HTTP client of its own (`mtls`) trusts them too.
    pub fn roots(&self) -> &[CertificateDer<'static>] {
        &self.roots
    }

    /// The exchange timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The suite's signer.
    pub fn signer(&self) -> &dyn ProofSigner {
        self.signer.as_ref()
    }

    /// The current time, for signatures.
    pub fn now(&self) -> i64 {
        SystemClock.now()
    }

    /// The `client` object presenting the suite's key by value (§2.3).
    pub fn client_by_value(&self) -> Value {
        serde_json::json!({ "key": self.signer.key_object() })
    }

    /// An unsigned request: JSON content if `body`, `Authorization: GNAP`
    /// if `token` (§7.2).
    pub fn request(
        method: &str,
        url: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> HttpRequest {
        let mut request = HttpRequest::new(method, url);
        if let Some(body) = body {
            request.body = body.to_string().into_bytes();
            request.fields.append("Content-Type", "application/json");
        }
        if let Some(token) = token {
            request
                .fields
                .append("Authorization", format!("GNAP {token}"));
        }
        request.fields.append("Accept", "application/json");
        request
    }

    /// Sends `request` as it is, presenting no client certificate.
    pub async fn send(&self, request: &HttpRequest) -> Result<Reply, String> {
        self.send_through(&self.http, request).await
    }

    /// Sends `request` as it is, through `signer`'s client if it has one
    /// (an `mtls` signer presents its certificate there).
    pub async fn send_by(
        &self,
        signer: &dyn ProofSigner,
        request: &HttpRequest,
    ) -> Result<Reply, String> {
        self.send_through(signer.transport().unwrap_or(&self.http), request)
            .await
    }

    async fn send_through(&self, http: &Http, request: &HttpRequest) -> Result<Reply, String> {
        let answer = http
            .exchange(request, self.timeout, MAX_ANSWER)
            .await
            .map_err(|e| format!("no answer: {e}"))?;
        Ok(Reply {
            status: answer.status,
            headers: answer.headers,
            body: answer.body,
        })
    }

    /// Builds, signs with the suite's key and sends.
    pub async fn signed(
        &self,
        method: &str,
        url: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        self.signed_by(self.signer.as_ref(), method, url, token, body)
            .await
    }

    /// Builds, signs with `signer` and sends.
    pub async fn signed_by(
        &self,
        signer: &dyn ProofSigner,
        method: &str,
        url: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        let mut request = Self::request(method, url, token, body);
        signer.sign(&mut request, self.now())?;
        self.send_by(signer, &request).await
    }

    /// A signed grant request (§2); a continuation in the answer is kept
    /// for [`Self::clean_up`].
    pub async fn grant(&self, body: &Value) -> Result<Reply, String> {
        let reply = self
            .signed("POST", &self.grant_endpoint, None, Some(body))
            .await?;
        if let Some(json) = reply.json()
            && let Some(uri) = json.pointer("/continue/uri").and_then(Value::as_str)
            && let Some(token) = json
                .pointer("/continue/access_token/value")
                .and_then(Value::as_str)
        {
            let wait = json
                .pointer("/continue/wait")
                .and_then(Value::as_u64)
                .unwrap_or(5)
                .min(self.timeout.as_secs());
            self.lock_leftovers().push(Leftover {
                signer: self.signer.clone(),
                uri: uri.to_owned(),
                token: token.to_owned(),
                ready_at: tokio::time::Instant::now() + Duration::from_secs(wait + 1),
            });
        }
        Ok(reply)
    }
}
