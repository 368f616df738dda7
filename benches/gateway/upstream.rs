//! The minimal upstream: answers any request with one fixed, small JSON-RPC
//! result (`application/json`) after reading the request body. It is NOT an
//! MCP server (no session, no initialize, the `id` is not echoed): it exists
//! so that the upstream is never the bottleneck.
//!
//! Runs as a child process (`<bench> --upstream`), so that its CPU time can
//! be read apart from the load generator's and the server's. The scale
//! bench (`benches/scale`) includes this file and serves it in-process.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// This file stands alone (the scale bench includes it), so it names its
/// own result type; it is the gateway bench's `Res`.
pub type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The fixed answer.
pub const RESULT: &[u8] =
    br#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}],"isError":false}}"#;

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // Read the whole body, as a server must before answering on a kept-alive
    // connection.
    let _ = req.into_body().collect().await;
    let mut response = Response::new(Full::new(Bytes::from_static(RESULT)));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// Serves on an ephemeral port of 127.0.0.1 and prints `listening on PORT`.
pub fn run(threads: usize) -> Res<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        println!("listening on {}", listener.local_addr()?.port());
        serve(listener).await
    })
}

/// Answers every connection `listener` accepts, until accepting fails.
pub async fn serve(listener: TcpListener) -> Res<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(answer))
                .await;
        });
    }
}
