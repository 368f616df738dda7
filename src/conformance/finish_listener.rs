//! The suite's own finish URI (RFC 9635 §4.2): a loopback HTTP listener
//! that records what arrives. A `redirect` finish is the browser's GET
//! with `hash` and `interact_ref` in the query (§4.2.1); a `push` finish is
//! the AS's POST of a JSON object with the same two members (§4.2.2).
//!
//! Each interaction gets its own path (`/finish/{id}`), so a late or
//! repeated callback can never be taken for another check's.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// Largest callback body read.
const MAX_CALLBACK: usize = 64 * 1024;

/// One callback as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    /// `GET` for a redirect, `POST` for a push.
    pub method: String,
    /// The `hash` it carried.
    pub hash: Option<String>,
    /// The `interact_ref` it carried.
    pub interact_ref: Option<String>,
}

type Arrivals = Arc<Mutex<HashMap<String, Vec<Arrival>>>>;

/// The running listener; stops when dropped.
#[derive(Debug)]
pub struct FinishListener {
    base: String,
    arrivals: Arrivals,
    arrived: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FinishListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FinishListener {
    /// Listens on `127.0.0.1` on a free port.
    pub async fn start() -> Result<Self, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot listen for the finish URI: {e}"))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        let arrivals: Arrivals = Arc::default();
        let arrived = Arc::new(Notify::new());
        let (kept, notify) = (arrivals.clone(), arrived.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (kept, notify) = (kept.clone(), notify.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let (kept, notify) = (kept.clone(), notify.clone());
                        async move { Ok::<_, Infallible>(receive(request, &kept, &notify).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            base: format!("http://{address}"),
            arrivals,
            arrived,
            task,
        })
    }

    /// The finish URI for interaction `id`.
    pub fn uri(&self, id: &str) -> String {
        format!("{}/finish/{id}", self.base)
    }

    /// Every callback to `id` so far.
    pub fn arrivals(&self, id: &str) -> Vec<Arrival> {
        lock(&self.arrivals).get(id).cloned().unwrap_or_default()
    }

    /// The first callback to `id`, waiting at most `timeout` for it.
    pub async fn wait(&self, id: &str, timeout: Duration) -> Option<Arrival> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.arrived.notified();
            if let Some(first) = self.arrivals(id).into_iter().next() {
                return Some(first);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }
}

fn lock(arrivals: &Arrivals) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Arrival>>> {
    // A poisoned lock only means a recording task panicked; what it holds
    // is still what arrived.
    match arrivals.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

async fn receive(
    request: hyper::Request<Incoming>,
    arrivals: &Arrivals,
    arrived: &Notify,
) -> hyper::Response<Full<Bytes>> {
    let method = request.method().as_str().to_owned();
    let Some(id) = request
        .uri()
        .path()
        .strip_prefix("/finish/")
        .map(str::to_owned)
    else {
        return answer(404, "not a finish URI");
    };
    let query = request.uri().query().unwrap_or("").to_owned();
    let body = Limited::new(request.into_body(), MAX_CALLBACK)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let arrival = if method == "POST" {
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let member = |name: &str| json.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        Arrival {
            method,
            hash: member("hash"),
            interact_ref: member("interact_ref"),
        }
    } else {
        let mut arrival = Arrival {
            method,
            hash: None,
            interact_ref: None,
        };
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            match name.as_ref() {
                "hash" => arrival.hash = Some(value.into_owned()),
                "interact_ref" => arrival.interact_ref = Some(value.into_owned()),
                _ => {}
            }
        }
        arrival
    };
    lock(arrivals).entry(id).or_default().push(arrival);
    arrived.notify_waiters();
    answer(200, "The conformance suite received the finish call.")
}

fn answer(status: u16, text: &'static str) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response
}
