//! A counting relay in front of the external AS's introspection endpoint:
//! the gateway is configured with the relay's URL, and each request it
//! relays is one server-made request (`introspection` in the world's
//! [`Outbound`]), counted where it lands like the upstream's calls. The
//! script could log instead, but the relay counts what the gateway sent
//! whatever the script says, with the same counters as every other
//! server-made request.
//!
//! It runs on a thread and runtime of its own (its CPU is neither the
//! client's nor a server's: it stands for the network), keeps one
//! connection to the AS per connection from the gateway, and passes
//! requests and answers through unchanged but for `Host`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use crate::compare::probe::Outbound;

/// The kind the relay counts.
pub const KIND: &str = "introspection";

/// Starts a relay to `target`, counting each request into `outbound`;
/// where it listens.
pub fn start(target: SocketAddr, outbound: Outbound) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("compare-introspection-relay".into())
        .spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(relay_connection(stream, target, outbound.clone()));
                }
            });
        })?;
    Ok(addr)
}

type Upstream = Arc<Mutex<Option<SendRequest<Full<Bytes>>>>>;

async fn relay_connection(stream: TcpStream, target: SocketAddr, outbound: Outbound) {
    let upstream: Upstream = Arc::new(Mutex::new(None));
    let service = hyper::service::service_fn(move |request| {
        let (upstream, outbound) = (upstream.clone(), outbound.clone());
        async move {
            outbound.count(KIND);
            let answer = forward(request, target, &upstream)
                .await
                .unwrap_or_else(|message| {
                    let mut answer = Response::new(Full::new(Bytes::from(message)));
                    *answer.status_mut() = StatusCode::BAD_GATEWAY;
                    answer
                });
            Ok::<_, Infallible>(answer)
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn forward(
    request: Request<Incoming>,
    target: SocketAddr,
    upstream: &Upstream,
) -> Result<Response<Full<Bytes>>, String> {
    let (mut parts, body) = request.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    let host =
        hyper::header::HeaderValue::from_str(&target.to_string()).map_err(|e| e.to_string())?;
    parts.headers.insert(hyper::header::HOST, host);
    let mut sender = upstream.lock().await;
    if sender.as_ref().is_none_or(SendRequest::is_closed) {
        let stream = TcpStream::connect(target)
            .await
            .map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        *sender = Some(send);
    }
    let send = sender
        .as_mut()
        .ok_or_else(|| "no connection to the AS".to_owned())?;
    send.ready().await.map_err(|e| e.to_string())?;
    let answer = send
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await
        .map_err(|e| e.to_string())?;
    let (parts, body) = answer.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Response::from_parts(parts, Full::new(body)))
}
