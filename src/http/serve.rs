//! The accept loop: one hyper connection per socket, warp's service inside,
//! and a drain of in-flight requests when the shutdown signal fires.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use std::convert::Infallible;

use http_body_util::BodyExt as _;
use hyper::body::Incoming;

use super::{App, routes};
use crate::gateway::forward::BoxError;

/// How long a client gets to send its header section.
const HEADER_READ: Duration = Duration::from_secs(10);

/// How long a client gets to finish the TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// Loads a PEM certificate chain and private key into a TLS acceptor that
/// offers HTTP/2 and HTTP/1.1 (TLS 1.2 and 1.3, rustls' safe defaults).
pub fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> Result<TlsAcceptor, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read the certificate chain {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{} holds no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the private key {}: {e}", key.display()))?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("the certificate and key do not form a usable pair: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// How long in-flight requests get to finish after shutdown is signalled.
pub const DRAIN: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` (over TLS when `tls` is given) until
/// `shutdown` completes, then stops accepting and lets in-flight requests
/// finish (up to [`DRAIN`]).
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
) {
    let warp_service = TowerToHyperService::new(warp::service(routes(app.clone())));
    // `/mcp/…` straight on hyper (the gateway's hot path); the rest on warp,
    // with the connection's [`super::Peer`] in the request's extensions
    // (the gateway does not read it, so its requests skip the insert and
    // the extension map it allocates).
    let service = move |peer: std::net::SocketAddr| {
        let app = app.clone();
        let warp_service = warp_service.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            let app = app.clone();
            let warp_service = warp_service.clone();
            async move {
                if request.uri().path().starts_with(super::mcp::PREFIX) {
                    return Ok::<_, Infallible>(super::mcp::serve(app, request).await);
                }
                request.extensions_mut().insert(super::Peer(peer));
                let response = match hyper::service::Service::call(&warp_service, request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                Ok(response.map(|body| body.map_err(BoxError::from).boxed_unsync()))
            }
        })
    };
    let mut builder = Builder::new(TokioExecutor::new());
    // A client that dribbles its header section must not hold a connection
    // (and a task) forever.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ);
    let graceful = GracefulShutdown::new();
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
                let _ = stream.set_nodelay(true);
                let service = service(peer);
                match &tls {
                    None => {
                        let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                        let connection = graceful.watch(connection);
                        tokio::spawn(async move {
                            if let Err(e) = connection.await {
                                tracing::debug!(error = %e, "connection ended with an error");
                            }
                        });
                    }
                    Some(acceptor) => {
                        // The handshake runs in the connection's task, so a
                        // slow client cannot stall the accept loop; it is
                        // bounded so a silent one cannot hold a socket.
                        let acceptor = acceptor.clone();
                        let builder = builder.clone();
                        let watcher = graceful.watcher();
                        tokio::spawn(async move {
                            let stream = match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                                Ok(Ok(stream)) => stream,
                                Ok(Err(e)) => {
                                    tracing::debug!(error = %e, "TLS handshake failed");
                                    return;
                                }
                                Err(_) => return,
                            };
                            let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                            if let Err(e) = watcher.watch(connection).await {
                                tracing::debug!(error = %e, "connection ended with an error");
                            }
                        });
                    }
                }
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections drained"),
        () = tokio::time::sleep(DRAIN) => tracing::warn!("drain timed out; closing remaining connections"),
    }
}
