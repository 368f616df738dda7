//! The minimal forwarding proxy, the "proxy floor": hyper server in, one
//! pooled hyper-util client out (as the gateway has), no checks at all.
//! Every request goes to the upstream URL with its path and headers (less
//! `Host` and hop-by-hop fields); request and response bodies are streamed
//! through untouched.
//!
//! Runs as a child process (`<bench> --proxy UPSTREAM_BASE THREADS`) on a
//! tokio runtime with the same number of worker threads as gnapd's.
//!
//! With `--verify PUBLIC_KEY_HEX` it is the "verifying proxy", the best
//! gateway the ceiling allows for: the same proxy that also reads the body
//! and runs one `verify_strict` of it (signature in [`SIGNATURE_HEADER`],
//! hex) before forwarding it, refusing with 401 when it fails. Nothing else
//! (no token, no signature base, no replay cache, no access rules). Its
//! throughput against the ceiling shows what the harness itself costs a
//! gateway that must verify; gnapd's against it, what gnapd's own checks do.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ed25519_dalek::{Signature, VerifyingKey};
use http_body_util::{BodyExt as _, Either, Empty, Full};
use hyper::body::Incoming;
use hyper::header::HeaderName;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::Res;

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

/// The header the verifying proxy reads the body's signature from.
pub const SIGNATURE_HEADER: &str = "x-bench-body-signature";

type Body = Either<Incoming, Empty<Bytes>>;

async fn forward<B>(
    client: Arc<Client<HttpConnector, B>>,
    base: Arc<str>,
    req: Request<B>,
) -> Result<Response<Body>, hyper::http::Error>
where
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut builder = Request::builder()
        .method(parts.method)
        .uri(format!("{base}{path}"));
    if let Some(headers) = builder.headers_mut() {
        for (name, value) in &parts.headers {
            if !HOP_BY_HOP.contains(&name.as_str()) {
                headers.append(HeaderName::clone(name), value.clone());
            }
        }
    }
    let outgoing = builder.body(body)?;
    match client.request(outgoing).await {
        Ok(response) => Ok(response.map(Either::Left)),
        Err(_) => Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(Either::Right(Empty::new())),
    }
}

/// The verifying proxy's request: the body read whole and its signature
/// checked, then forwarded as [`forward`] does.
async fn verify_then_forward(
    client: Arc<Client<HttpConnector, Full<Bytes>>>,
    base: Arc<str>,
    key: Arc<VerifyingKey>,
    req: Request<Incoming>,
) -> Result<Response<Body>, hyper::http::Error> {
    let (parts, body) = req.into_parts();
    let refused = || {
        Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .body(Either::Right(Empty::new()))
    };
    let Ok(collected) = body.collect().await else {
        return refused();
    };
    let body = collected.to_bytes();
    let signature = parts
        .headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| hex_64(v.as_bytes()))
        .map(|bytes| Signature::from_bytes(&bytes));
    match signature {
        Some(signature) if key.verify_strict(&body, &signature).is_ok() => {}
        _ => return refused(),
    }
    forward(client, base, Request::from_parts(parts, Full::new(body))).await
}

/// 128 hex digits as 64 bytes.
fn hex_64(text: &[u8]) -> Option<[u8; 64]> {
    let mut out = [0u8; 64];
    if text.len() != 128 {
        return None;
    }
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let digit = |c: u8| (c as char).to_digit(16);
        *byte = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}

fn client<B>() -> Arc<Client<HttpConnector, B>>
where
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Arc::new(
        Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector),
    )
}

/// Serves on an ephemeral port and prints `listening on PORT`; with `key`,
/// as the verifying proxy.
pub fn run(base: &str, threads: usize, key: Option<VerifyingKey>) -> Res<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    let base: Arc<str> = Arc::from(base.trim_end_matches('/'));
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        println!("listening on {}", listener.local_addr()?.port());
        match key {
            None => {
                let client = client::<Incoming>();
                loop {
                    let (stream, _) = listener.accept().await?;
                    stream.set_nodelay(true)?;
                    let client = client.clone();
                    let base = base.clone();
                    tokio::spawn(async move {
                        let service =
                            service_fn(move |req| forward(client.clone(), base.clone(), req));
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            }
            Some(key) => {
                let client = client::<Full<Bytes>>();
                let key = Arc::new(key);
                loop {
                    let (stream, _) = listener.accept().await?;
                    stream.set_nodelay(true)?;
                    let (client, base, key) = (client.clone(), base.clone(), key.clone());
                    tokio::spawn(async move {
                        let service = service_fn(move |req| {
                            verify_then_forward(client.clone(), base.clone(), key.clone(), req)
                        });
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            }
        }
    })
}
