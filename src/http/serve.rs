//! The accept loop: one hyper connection per socket, warp's service inside,
//! under the bounds of `[connections]` ([`super::limits`]), and a drain of
//! in-flight requests when the shutdown signal fires.
//!
//! Every connection is taken through [`super::admission`] (which may push
//! out one that waits on its client to make room), and watched: it must
//! bring its first request head within `header_timeout` of its accept, and
//! is closed after `idle_timeout` without a request in flight. Request
//! bodies are under [`super::deadline`]; a request whose body came too
//! slowly is answered 408 and its connection closed. A request in flight —
//! a response streamed for hours included — keeps its connection open.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use warp::http::{HeaderValue, Request, Response, StatusCode, Version};

use super::admission::{Conn, Missed, Ticket};
use super::deadline::{RequestBody, TimedBody, Tracked};
use super::limits::ConnectionLimits;
use super::mcp::GatewayBody;
use super::{App, routes};
use crate::gateway::answer::BoxError;
use crate::http_client::TlsError;
use crate::proto::client_cert::ClientCert;

/// Loads a PEM certificate chain and private key into a TLS acceptor that
/// offers HTTP/2 and HTTP/1.1 (TLS 1.2 and 1.3, rustls' safe defaults).
/// With `client_certs`, it asks clients for a certificate and accepts any
/// (`super::client_certs`), for the `mtls` proofing method.
pub fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
    client_certs: bool,
) -> Result<TlsAcceptor, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::Read {
            what: format!("the certificate chain {}", cert.display()),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert.to_owned()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Read {
        what: format!("the private key {}", key.display()),
        source,
    })?;
    let provider = Arc::new(ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match client_certs {
        true => builder.with_client_cert_verifier(Arc::new(
            super::client_certs::AnyClientCert::new(&provider),
        )),
        false => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(TlsError::Pair)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// How long in-flight requests get to finish after shutdown is signalled.
pub const DRAIN: Duration = Duration::from_secs(10);

/// How long a connection closed for idling gets to say goodbye (an HTTP/2
/// GOAWAY) before it is dropped.
const GOODBYE: Duration = Duration::from_secs(1);

/// A client's byte stream, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Warp's service, as the connection tasks call it.
trait Warp:
    hyper::service::Service<
        Request<RequestBody>,
        Response = warp::reply::Response,
        Error = Infallible,
        Future: Send,
    > + Send
    + Sync
    + 'static
{
}
impl<T> Warp for T where
    T: hyper::service::Service<
            Request<RequestBody>,
            Response = warp::reply::Response,
            Error = Infallible,
            Future: Send,
        > + Send
        + Sync
        + 'static
{
}

/// What every connection task shares; `W` is warp's service, for
/// everything but the gateway.
struct Shared<W> {
    app: Arc<App>,
    warp: W,
    builder: Builder<TokioExecutor>,
    tls: Option<TlsAcceptor>,
    limits: ConnectionLimits,
}

/// Serves `app` on `listener` (over TLS when `tls` is given) until
/// `shutdown` completes, then stops accepting and lets in-flight requests
/// finish (up to [`DRAIN`]).
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
) {
    let limits = app.connection_limits;
    let warp = TowerToHyperService::new(warp::service(routes(app.clone())));
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut http2 = builder.http2();
    http2
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.h2_max_streams);
    if let Some((interval, timeout)) = limits.h2_keepalive {
        http2
            .keep_alive_interval(interval)
            .keep_alive_timeout(timeout);
    }
    let shared = Arc::new(Shared {
        app: app.clone(),
        warp,
        builder,
        tls,
        limits,
    });
    let (stop, stopped) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of descriptors or a reset during accept: back
                        // off briefly instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Closed at once (dropped) when every place it could take
                // is busy serving.
                let ticket = match app.admission.admit(peer.ip()) {
                    Ok(ticket) => ticket,
                    Err(refused) => {
                        tracing::debug!(%peer, ?refused, "connection refused");
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection(shared.clone(), stream, peer, ticket, stopped.clone()));
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = stop.send(true);
    let drained = async {
        while app.admission.open() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        () = drained => tracing::info!("all connections drained"),
        () = tokio::time::sleep(DRAIN) => tracing::warn!("drain timed out; closing remaining connections"),
    }
}

/// One connection, from its TLS handshake (if any) to its close; its place
/// in the table goes with `ticket` at the end.
async fn connection<W: Warp>(
    shared: Arc<Shared<W>>,
    stream: TcpStream,
    peer: SocketAddr,
    ticket: Ticket,
    stopped: watch::Receiver<bool>,
) {
    let conn = ticket.conn().clone();
    let mut client_cert = None;
    let io: Box<dyn Io> = match &shared.tls {
        None => Box::new(stream),
        Some(acceptor) => {
            // In the connection's task, so a slow client cannot stall the
            // accept loop; within the header deadline, like a silent one.
            let deadline = Instant::now() + shared.limits.header_timeout;
            tokio::select! {
                handshake = tokio::time::timeout_at(deadline, acceptor.accept(stream)) => match handshake {
                    Ok(Ok(stream)) => {
                        // The end-entity certificate the client proved (the
                        // handshake checked its signature), for `mtls`.
                        client_cert = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|chain| chain.first())
                            .map(|cert| ClientCert::from_der(cert.as_ref()));
                        Box::new(stream)
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        shared.app.admission.missed(Missed::Handshake);
                        return;
                    }
                },
                () = conn.evicted() => return,
            }
        }
    };
    drive(&shared, io, peer, client_cert, &conn, stopped).await;
    drop(ticket);
}

/// Serves HTTP on `io` until the client closes, a deadline passes, the
/// connection is pushed out, or shutdown is signalled.
async fn drive<W: Warp>(
    shared: &Arc<Shared<W>>,
    io: Box<dyn Io>,
    peer: SocketAddr,
    client_cert: Option<ClientCert>,
    conn: &Arc<Conn>,
    mut stopped: watch::Receiver<bool>,
) {
    let service = requests(shared.clone(), conn.clone(), peer, client_cert);
    let connection = shared.builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let watchdog = watchdog(conn, &shared.limits);
    tokio::pin!(watchdog);
    let mut goodbye: Option<Instant> = None;
    let mut stopping = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    // hyper's own head timer (HTTP/1.1), unless the
                    // watchdog already counted this connection.
                    if goodbye.is_none()
                        && e.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_timeout)
                    {
                        let what = if conn.served_any() { Missed::Idle } else { Missed::Header };
                        shared.app.admission.missed(what);
                    }
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            what = &mut watchdog, if goodbye.is_none() => {
                shared.app.admission.missed(what);
                connection.as_mut().graceful_shutdown();
                goodbye = Some(Instant::now() + GOODBYE);
            }
            () = conn.evicted() => return,
            _ = stopped.changed(), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep_until(goodbye.unwrap_or_else(Instant::now)), if goodbye.is_some() => return,
        }
    }
}

/// Completes when `conn` has waited on its client longer than it may:
/// `header_timeout` from its accept for a first request, then
/// `idle_timeout` with no request in flight.
async fn watchdog(conn: &Conn, limits: &ConnectionLimits) -> Missed {
    loop {
        conn.became_idle().await;
        let (limit, what) = if conn.served_any() {
            (limits.idle_timeout, Missed::Idle)
        } else {
            (limits.header_timeout, Missed::Header)
        };
        let deadline = Instant::from_std(conn.waiting_since()) + limit;
        if Instant::now() >= deadline {
            if conn.idle() {
                return what;
            }
            continue;
        }
        tokio::time::sleep_until(deadline).await;
    }
}

/// The service of one connection: each request in flight until its
/// response body is gone, its body under the deadlines.
fn requests<W: Warp>(
    shared: Arc<Shared<W>>,
    conn: Arc<Conn>,
    peer: SocketAddr,
    client_cert: Option<ClientCert>,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<Tracked<GatewayBody>>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Tracked<GatewayBody>>, Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(move |request: Request<Incoming>| {
        let in_flight = conn.begin();
        let (parts, body) = request.into_parts();
        let limits = &shared.limits;
        let (body, expiry) =
            TimedBody::new(body, &conn, limits.body_timeout, limits.request_timeout);
        let mut request = Request::from_parts(parts, body);
        if let Some(cert) = &client_cert {
            request.extensions_mut().insert(cert.clone());
        }
        let shared = shared.clone();
        async move {
            let gateway = request.uri().path().starts_with(super::mcp::PREFIX);
            let version = request.version();
            let response = answer(&shared, request, peer, gateway).await;
            let response = match expiry.and_then(|e| e.missed()) {
                Some(what) => {
                    shared.app.admission.missed(what);
                    too_slow(gateway, version)
                }
                None => response,
            };
            Ok(response.map(|body| Tracked::new(body, in_flight)))
        }
    })
}

/// `/mcp/…` and the AS's GNAP endpoints straight on hyper (the hot paths:
/// the gateway's calls, new agents' grants); the rest on warp,
/// with the connection's [`super::Peer`] in the request's extensions (the
/// gateway takes the address as an argument instead, so its requests skip
/// the insert and the extension map it allocates).
async fn answer<W: Warp>(
    shared: &Shared<W>,
    mut request: Request<RequestBody>,
    peer: SocketAddr,
    gateway: bool,
) -> Response<GatewayBody> {
    if !shared.app.role.serves(request.uri().path()) {
        return super::not_found().map(|body| {
            Full::new(body)
                .map_err(|never| match never {})
                .boxed_unsync()
        });
    }
    if gateway {
        return super::mcp::serve(shared.app.clone(), request, peer).await;
    }
    if super::as_direct::serves(request.method(), request.uri().path()) {
        return super::as_direct::serve(shared.app.clone(), request, peer).await;
    }
    request.extensions_mut().insert(super::Peer(peer));
    let response = match hyper::service::Service::call(&shared.warp, request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    response.map(|body| body.map_err(BoxError::from).boxed_unsync())
}

/// 408 (RFC 9110 §15.5.9) for a request whose body came too slowly: a GNAP
/// error object, or at the gateway a JSON-RPC error; an HTTP/1.1
/// connection then closes, its unread rest being of no use.
fn too_slow(gateway: bool, version: Version) -> Response<GatewayBody> {
    const WHY: &str = "the request was not received in time";
    let body = if gateway {
        serde_json::json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": WHY}})
    } else {
        serde_json::json!({"error": {"code": "invalid_request", "description": WHY}})
    };
    let bytes = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
    let mut response = Response::new(
        Full::new(bytes)
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
    let headers = response.headers_mut();
    headers.insert(
        warp::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        warp::http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    if version < Version::HTTP_2 {
        headers.insert(
            warp::http::header::CONNECTION,
            HeaderValue::from_static("close"),
        );
    }
    response
}
