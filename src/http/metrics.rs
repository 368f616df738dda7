//! Where `GET /metrics` (Prometheus text) is served: on the main listener
//! (the default), on a listener of its own, or nowhere (`metrics_listen`).
//!
//! The counters say what the server does and, as series are added, which
//! upstreams it fronts: an operator who would rather not publish that binds
//! them to a loopback or internal address, where a scraper reaches them and
//! the agents' side does not. The own listener speaks plain HTTP and serves
//! nothing else.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::App;

/// Where the metrics are served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MetricsListen {
    /// On the main listener, beside the AS and the gateway.
    #[default]
    Main,
    /// On a listener of their own at this address only.
    At(SocketAddr),
    /// Nowhere.
    Off,
}

/// A `metrics_listen` that is none of the three.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("metrics_listen `{0}` is not `off`, `main` or an address like 127.0.0.1:9100")]
pub struct MetricsListenError(String);

impl std::str::FromStr for MetricsListen {
    type Err = MetricsListenError;

    /// `off`, `main`, or a socket address (`127.0.0.1:9100`).
    fn from_str(text: &str) -> Result<Self, MetricsListenError> {
        match text {
            "off" => Ok(Self::Off),
            "main" => Ok(Self::Main),
            addr => addr
                .parse()
                .map(Self::At)
                .map_err(|_| MetricsListenError(addr.to_owned())),
        }
    }
}

impl<'de> serde::Deserialize<'de> for MetricsListen {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The Prometheus text of the AS's and the gateway's counters.
pub fn render(app: &App) -> String {
    let mut text = app.auth.metrics().render();
    app.gateway.render_metrics(&mut text);
    app.admission.render(&mut text);
    text.push_str(crate::upstream::oauth_client::METRICS_HEADER);
    app.connections.render_metrics(&mut text);
    if let Some(login) = &app.login {
        login.render_metrics(&mut text);
    }
    crate::proto::crypto_ops::render(&mut text);
    text
}

/// How long a scraper gets to send its header section.
const HEADER_READ: Duration = Duration::from_secs(10);

/// Serves `GET /metrics` on `listener`, and 404 for every other path, until
/// the task is dropped.
pub async fn serve(listener: TcpListener, app: Arc<App>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(answer(&app, &request)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer(app: &App, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => (StatusCode::OK, render(app)),
        (_, "/metrics") => (StatusCode::METHOD_NOT_ALLOWED, String::new()),
        _ => (StatusCode::NOT_FOUND, String::new()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    headers.insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_listen_reads_off_main_or_an_address() {
        assert_eq!("off".parse(), Ok(MetricsListen::Off));
        assert_eq!("main".parse(), Ok(MetricsListen::Main));
        assert_eq!(
            "127.0.0.1:9100".parse(),
            Ok(MetricsListen::At("127.0.0.1:9100".parse().unwrap()))
        );
        assert!("localhost:9100".parse::<MetricsListen>().is_err());
        assert!("".parse::<MetricsListen>().is_err());
    }
}
