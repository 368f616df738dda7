//! The minimal forwarding proxy, the "proxy floor": hyper server in, one
//! pooled hyper-util client out (as the gateway has), no checks at all.
//! Every request goes to the upstream URL with its path and headers (less
//! `Host` and hop-by-hop fields); request and response bodies are streamed
//! through untouched.
//!
//! Runs as a child process (`<bench> --proxy UPSTREAM_BASE THREADS`) on a
//! tokio runtime with the same number of worker threads as gnapd's.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{Either, Empty};
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

type Pooled = Client<HttpConnector, Incoming>;
type Body = Either<Incoming, Empty<Bytes>>;

async fn forward(
    client: Arc<Pooled>,
    base: Arc<str>,
    req: Request<Incoming>,
) -> Result<Response<Body>, hyper::http::Error> {
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

/// Serves on an ephemeral port and prints `listening on PORT`.
pub fn run(base: &str, threads: usize) -> Res<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    let base: Arc<str> = Arc::from(base.trim_end_matches('/'));
    rt.block_on(async {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client: Arc<Pooled> = Arc::new(
            Client::builder(TokioExecutor::new())
                .pool_timer(TokioTimer::new())
                .pool_idle_timeout(Duration::from_secs(60))
                .build(connector),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        println!("listening on {}", listener.local_addr()?.port());
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let client = client.clone();
            let base = base.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| forward(client.clone(), base.clone(), req));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
