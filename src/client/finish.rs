//! Finishing an interaction by redirect (RFC 9635 §2.5.2, §4.2.1) to a
//! one-shot listener on the loopback interface, and checking the
//! interaction hash (§4.2.3) before the `interact_ref` is used.
//!
//! The agent offers `finish: {"method": "redirect", "uri":
//! "http://127.0.0.1:PORT/gnap-finish/RANDOM", "nonce": NONCE}`. When the
//! person is done, the AS sends their browser to that URI with `hash` and
//! `interact_ref`; the hash is SHA-256 (the default `hash_method`, which is
//! all the agent asks for) over the client's nonce, the AS's `finish` nonce,
//! the `interact_ref` and the grant endpoint URI, joined by single newlines,
//! base64url without padding. A hash that does not match means the redirect
//! was not made for this grant: "the client instance MUST NOT continue"
//! with it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use subtle::ConstantTimeEq as _;
use tokio::sync::oneshot;

use crate::proto::b64;

/// The interaction hash (§4.2.3) with `sha-256`, the method the client
/// asks for: the AS's own computation, so both sides agree by construction.
pub fn interaction_hash(
    client_nonce: &str,
    as_nonce: &str,
    interact_ref: &str,
    grant_endpoint: &str,
) -> String {
    crate::proto::gnap::interact::interaction_hash(
        crate::proto::gnap::interact::HashMethod::Sha256,
        client_nonce,
        as_nonce,
        interact_ref,
        grant_endpoint,
    )
}

/// Why a finish redirect was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FinishError {
    /// `hash` or `interact_ref` is missing.
    #[error("the finish redirect lacks hash or interact_ref")]
    Incomplete,
    /// The hash does not match this grant.
    #[error("the finish redirect's hash does not match this grant; not continuing")]
    BadHash,
}

/// Reads the query of a finish redirect and checks its hash; returns the
/// `interact_ref` to continue with.
pub fn verify_redirect(
    query: &str,
    client_nonce: &str,
    as_nonce: &str,
    grant_endpoint: &str,
) -> Result<String, FinishError> {
    let mut hash = None;
    let mut interact_ref = None;
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value);
        match name {
            "hash" => hash = Some(value),
            "interact_ref" => interact_ref = Some(value),
            _ => {}
        }
    }
    let (Some(hash), Some(interact_ref)) = (hash, interact_ref) else {
        return Err(FinishError::Incomplete);
    };
    let expected = interaction_hash(client_nonce, as_nonce, &interact_ref, grant_endpoint);
    if bool::from(expected.as_bytes().ct_eq(hash.as_bytes())) {
        Ok(interact_ref)
    } else {
        Err(FinishError::BadHash)
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A one-shot listener for the finish redirect.
pub struct Listener {
    /// The URI to send as `finish.uri`.
    pub uri: String,
    /// The client nonce to send as `finish.nonce`.
    pub nonce: String,
    /// The query of the first request to the URI.
    pub query: oneshot::Receiver<String>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const PAGE: &str = "<!doctype html><meta charset=utf-8><title>gnapd</title>\
<p>Done: you can close this window and go back to your application.</p>";

fn random() -> Option<String> {
    let mut bytes = [0u8; 16];
    crate::random::fill(&mut bytes).ok()?;
    Some(b64::encode_url(&bytes))
}

impl Listener {
    /// Binds 127.0.0.1 on a free port, under a random path.
    pub async fn bind() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let (path, nonce) = match (random(), random()) {
            (Some(p), Some(n)) => (format!("/gnap-finish/{p}"), n),
            _ => return Err(std::io::Error::other("no randomness")),
        };
        let uri = format!("http://{addr}{path}");
        let (tx, query) = oneshot::channel();
        let tx = Arc::new(Mutex::new(Some(tx)));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let tx = tx.clone();
                let path = path.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |request: hyper::Request<hyper::body::Incoming>| {
                            let tx = tx.clone();
                            let path = path.clone();
                            async move {
                                let matched = request.method() == hyper::Method::GET
                                    && request.uri().path() == path;
                                let sender = if matched {
                                    tx.lock().ok().and_then(|mut t| t.take())
                                } else {
                                    None
                                };
                                let status = match sender {
                                    Some(sender) => {
                                        let _ = sender
                                            .send(request.uri().query().unwrap_or("").to_owned());
                                        200
                                    }
                                    None => 404,
                                };
                                let body = if status == 200 { PAGE } else { "not found" };
                                let mut response = hyper::Response::new(Full::new(
                                    Bytes::from_static(body.as_bytes()),
                                ));
                                *response.status_mut() = hyper::StatusCode::from_u16(status)
                                    .unwrap_or(hyper::StatusCode::NOT_FOUND);
                                response.headers_mut().insert(
                                    hyper::header::CONTENT_TYPE,
                                    hyper::header::HeaderValue::from_static(
                                        "text/html; charset=utf-8",
                                    ),
                                );
                                Ok::<_, Infallible>(response)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            uri,
            nonce,
            query,
            task,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_hash_rfc9635_section_4_2_3_example() {
        assert_eq!(
            interaction_hash(
                "VJLO6A4CATR0KRO",
                "MBDOFXG4Y5CVJCX821LH",
                "4IFWWIKYB2PQ6U56NL1",
                "https://server.example.com/tx"
            ),
            "x-gguKWTj8rQf7d7i3w3UhzvuJ5bpOlKyAlVpLxBffY"
        );
    }

    #[test]
    fn finish_redirect_query_is_verified() {
        let query =
            "hash=x-gguKWTj8rQf7d7i3w3UhzvuJ5bpOlKyAlVpLxBffY&interact_ref=4IFWWIKYB2PQ6U56NL1";
        let check = |q: &str, endpoint: &str| {
            verify_redirect(q, "VJLO6A4CATR0KRO", "MBDOFXG4Y5CVJCX821LH", endpoint)
        };
        assert_eq!(
            check(query, "https://server.example.com/tx"),
            Ok("4IFWWIKYB2PQ6U56NL1".into())
        );
        // Another grant endpoint (a mix-up), another reference, a missing
        // member: refused.
        assert_eq!(
            check(query, "https://evil.example/tx"),
            Err(FinishError::BadHash)
        );
        assert_eq!(
            check(
                "hash=x-gguKWTj8rQf7d7i3w3UhzvuJ5bpOlKyAlVpLxBffY&interact_ref=OTHER",
                "https://server.example.com/tx"
            ),
            Err(FinishError::BadHash)
        );
        assert_eq!(
            check("interact_ref=4IFWWIKYB2PQ6U56NL1", "x"),
            Err(FinishError::Incomplete)
        );
        assert_eq!(percent_decode("a%2Fb+c%zz"), "a/b c%zz");
    }

    #[test]
    fn finish_listener_takes_one_redirect_on_its_path() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let listener = Listener::bind().await.unwrap();
            assert!(listener.uri.starts_with("http://127.0.0.1:"));
            let get = |uri: String| async move {
                let (host, path) = uri.trim_start_matches("http://").split_once('/').unwrap();
                let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
                use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
                stream
                    .write_all(
                        format!(
                            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await
                    .unwrap();
                let mut text = String::new();
                stream.read_to_string(&mut text).await.unwrap();
                text
            };
            let base = listener.uri.rsplit_once('/').unwrap().0.to_owned();
            assert!(
                get(format!("{base}/wrong?hash=a&interact_ref=b"))
                    .await
                    .starts_with("HTTP/1.1 404")
            );
            let answer = get(format!("{}?hash=a&interact_ref=b", listener.uri)).await;
            assert!(answer.starts_with("HTTP/1.1 200") && answer.contains("close this window"));
            let mut listener = listener;
            assert_eq!(
                (&mut listener.query).await.unwrap(),
                "hash=a&interact_ref=b"
            );
        });
    }
}
