//! The HTTP edge: warp reads and routes requests, the sans-I/O services
//! answer, and [`serve`] carries it all over TCP (or TLS) with a graceful
//! drain on shutdown.
//!
//! The edge owns three things only: turning a wire request into an
//! [`HttpRequest`] (with its target URI rebuilt from the configured public URL,
//! never from `Host`), bounding what it reads, and turning a [`Reply`] back
//! into a response.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use warp::Filter;
use warp::http::{HeaderMap, Method, Response, StatusCode};

use crate::authz::{AuthServer, Endpoint, Failure, GrantStep, Reply};
use crate::gateway::forward::Gateway;
use crate::proto::client_cert::ClientCert;
use crate::proto::gnap::{ErrorCode, GrantError, GrantResponse};
use crate::proto::httpsig::{Fields, HttpRequest};

pub mod admission;
mod as_direct;
pub mod client_address;
mod client_certs;
pub mod deadline;
pub mod interop;
pub mod limits;
pub mod mcp;
pub mod metrics;
pub mod oauth;
pub mod oauth_clients;
pub(crate) mod outbound;
pub mod pages;
pub mod push;
mod resource_metadata;
mod role;
pub mod serve;
pub mod tables;

pub use role::Role;

/// Largest request body read, in bytes. A grant request is a few KiB.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

/// Everything a request handler needs.
pub struct App {
    /// The authorization server (shared with the admin interface, which
    /// records people's decisions on pending grants).
    pub auth: Arc<AuthServer>,
    /// Request body limit.
    pub max_body: usize,
    /// The MCP gateway (`{public}/mcp/{upstream}`).
    pub gateway: Arc<Gateway>,
    /// Makes `push` finishes after a decision on a page.
    pub pusher: Arc<push::Pusher>,
    /// Upstream OAuth sign-ins under way from consent pages, and the sets
    /// they connected (`crate::upstream::connect`).
    pub connections: Arc<crate::upstream::connect::Connections>,
    /// The configured login of the person deciding (`[login]`), if any.
    pub login: Option<Arc<crate::authz::login::Login>>,
    /// The reverse proxy whose client address header is believed
    /// (`trusted_proxy`); without one, such headers are ignored.
    pub trusted_proxy: Option<client_address::TrustedProxy>,
    /// The client connections held, and their counters.
    pub admission: Arc<admission::Admission>,
    /// The bounds and deadlines of client connections (`[connections]`).
    pub connection_limits: limits::ConnectionLimits,
    /// Whether `GET /metrics` is served here (`metrics_listen` is the main
    /// listener) rather than on a listener of its own or nowhere.
    pub metrics_on_main: bool,
    /// OAuth clients beyond the configuration: registration, metadata
    /// documents, introspection (`oauth_clients`).
    pub oauth_clients: Arc<oauth_clients::Clients>,
    /// `--interop`: the automation endpoint and `/rs/echo` ([`interop`]).
    pub interop: Option<Arc<interop::Interop>>,
    /// What this node answers (`role`): paths outside it get 404.
    pub role: Role,
}

/// The address a connection came from, put into each request's extensions
/// by the accept loop ([`serve`]): the pages count user code attempts by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub std::net::SocketAddr);

/// The filter serving every route.
pub fn routes(
    app: Arc<App>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible>
+ Clone
+ Send
+ Sync
+ 'static {
    warp::any()
        .and(warp::method())
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<Peer>())
        .and(warp::ext::optional::<ClientCert>())
        .and(warp::body::stream())
        .then(
            move |method: Method,
                  path: warp::path::FullPath,
                  query: String,
                  headers: HeaderMap,
                  peer: Option<Peer>,
                  client_cert: Option<ClientCert>,
                  body| {
                let app = app.clone();
                let connection = Connection { peer, client_cert };
                async move {
                    handle(
                        app,
                        method,
                        path.as_str().to_owned(),
                        query,
                        headers,
                        connection,
                        body,
                    )
                    .await
                }
            },
        )
        .recover(|_| async {
            Ok::<_, std::convert::Infallible>(warp::Reply::into_response(not_found()))
        })
        .unify()
}

async fn handle<S, B>(
    app: Arc<App>,
    method: Method,
    path: String,
    query: String,
    headers: HeaderMap,
    connection: Connection,
    body: S,
) -> warp::reply::Response
where
    S: Stream<Item = Result<B, warp::Error>> + Send + Unpin,
    B: bytes::Buf,
{
    let Connection { peer, client_cert } = connection;
    let started = Instant::now();
    if let Some(page) = pages::PageRoute::of(&path) {
        // An unreadable or oversized form reads as empty: it decides nothing.
        let body: Vec<u8> = read_body(body, app.max_body.min(pages::MAX_FORM))
            .await
            .unwrap_or_default();
        let source =
            client_address::source(app.trusted_proxy.as_ref(), &headers, peer.map(|p| p.0.ip()));
        return warp::Reply::into_response(
            pages::serve(app, method, page, &query, &headers, body, source).await,
        );
    }
    if app.interop.is_some() && (path == interop::DECIDE_PATH || path == interop::ECHO_PATH) {
        return warp::Reply::into_response(
            serve_interop(app, method, &path, &query, headers, body, client_cert).await,
        );
    }
    let route = Route::of(&method, &path);
    let Some(route) = route else {
        return warp::Reply::into_response(not_found());
    };
    if let Route::Gateway = route {
        // Served by `mcp::serve` before warp; unreachable through warp.
        return warp::Reply::into_response(not_found());
    }
    if let Route::OAuth(endpoint) = route {
        let source =
            client_address::source(app.trusted_proxy.as_ref(), &headers, peer.map(|p| p.0.ip()));
        return warp::Reply::into_response(
            oauth::serve(app, method, endpoint, &query, &headers, body, &source).await,
        );
    }
    if let Route::Metrics = route
        && !app.metrics_on_main
    {
        return warp::Reply::into_response(not_found());
    }
    // The AS's per-address limits count by it; in process there is none.
    let source =
        peer.map(|p| client_address::source(app.trusted_proxy.as_ref(), &headers, Some(p.0.ip())));
    if let Route::OAuthClients(endpoint) = route {
        return warp::Reply::into_response(
            oauth_clients::serve(app, endpoint, &method, &headers, body, source).await,
        );
    }
    let max_body = app.max_body;
    let request = AsRequest {
        started,
        method,
        route,
        path: &path,
        query: &query,
        headers,
        source,
        client_cert,
    };
    warp::Reply::into_response(handle_as(app, request, read_body(body, max_body)).await)
}

/// What the connection a request came on says about it.
struct Connection {
    peer: Option<Peer>,
    client_cert: Option<ClientCert>,
}

/// A request for the AS's own endpoints, before its body is read.
struct AsRequest<'a> {
    started: Instant,
    method: Method,
    route: Route,
    path: &'a str,
    query: &'a str,
    headers: HeaderMap,
    /// The client's address, for the per-address limits.
    source: Option<String>,
    client_cert: Option<ClientCert>,
}

/// The routes of `--interop` ([`interop`]).
async fn serve_interop<S, B>(
    app: Arc<App>,
    method: Method,
    path: &str,
    query: &str,
    headers: HeaderMap,
    body: S,
    client_cert: Option<ClientCert>,
) -> Response<Bytes>
where
    S: Stream<Item = Result<B, warp::Error>> + Send + Unpin,
    B: bytes::Buf,
{
    let Ok(body) = read_body(body, app.max_body).await else {
        let error = GrantError::described(ErrorCode::InvalidRequest, "unreadable or too large");
        return to_response(Reply::json(400, &GrantResponse::error(error, None)));
    };
    if path == interop::DECIDE_PATH {
        if method != Method::POST {
            return to_response(
                Reply::json(405, &serde_json::json!({"error": "POST only"}))
                    .with_header("allow", "POST"),
            );
        }
        return to_response(interop::serve_decide(app, &headers, &body).await);
    }
    let request = to_request(&app, method, path, query, headers, body, client_cert);
    let auth = app.auth.clone();
    let reply = tokio::task::spawn_blocking(move || auth.echo(&request)).await;
    to_response(reply.unwrap_or_else(|_| {
        Failure::Store(crate::store::StoreError::Backend("handler failed".into())).into_reply(
            &app.auth.config().grant_endpoint(),
            crate::authz::reply::Audience::Client,
        )
    }))
}

/// Answers a request for the AS's own endpoints; `body` reads its body,
/// and is awaited only once the per-address limits let the request in.
async fn handle_as(
    app: Arc<App>,
    request: AsRequest<'_>,
    body: impl Future<Output = Result<Vec<u8>, BodyError>>,
) -> Response<Bytes> {
    let AsRequest {
        started,
        method,
        route,
        path,
        query,
        headers,
        source,
        client_cert,
    } = request;
    // The AS's per-address rate limits refuse before the body is read.
    if let (Route::As(endpoint, _), Some(source)) = (&route, &source)
        && let Err(reply) = app.auth.admit(endpoint, method.as_str(), source)
    {
        return to_response(reply);
    }
    let body = match body.await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            let error =
                GrantError::described(ErrorCode::InvalidRequest, "the request body is too large");
            return to_response(Reply::json(413, &GrantResponse::error(error, None)));
        }
        Err(BodyError::Read) => {
            let error = GrantError::described(
                ErrorCode::InvalidRequest,
                "the request body could not be read",
            );
            return to_response(Reply::json(400, &GrantResponse::error(error, None)));
        }
    };
    let reply = match route {
        Route::Metrics => Reply {
            status: 200,
            headers: vec![
                ("content-type", "text/plain; version=0.0.4".into()),
                ("cache-control", "no-store".into()),
            ],
            body: metrics::render(&app).into_bytes(),
        },
        Route::WellKnown => Reply::json(200, &app.auth.rs_discovery()),
        Route::ResourceMetadata(upstream) => {
            match resource_metadata::reply(&app, upstream.as_deref()) {
                Some(reply) => reply,
                None => return not_found(),
            }
        }
        Route::As(endpoint, label) => {
            let method_name = method.as_str().to_owned();
            let endpoint_audience = endpoint.audience();
            let request = to_request(&app, method, path, query, headers, body, client_cert);
            // The handler is pure computation over the store; only its
            // waits for the disk would block, and those are deferred to
            // here, awaited without holding a thread (`store::deferring`).
            let handled = if matches!(endpoint, Endpoint::Grant) && method_name == "POST" {
                grant_in_two_steps(&app, &request, source.as_deref()).await
            } else {
                contained(|| app.auth.handle_from(&endpoint, &request, source.as_deref()))
            };
            let durable = match handled {
                Ok((reply, Some(pending))) => pending.wait().await.map(|()| reply),
                Ok((reply, None)) => Ok(reply),
                Err(e) => Err(e),
            };
            let reply = match durable {
                Ok(reply) => reply,
                Err(e) => {
                    tracing::error!(error = %e, "storage failure");
                    Failure::Store(e)
                        .into_reply(&app.auth.config().grant_endpoint(), endpoint_audience)
                }
            };
            let elapsed = started.elapsed().as_secs_f64();
            app.auth.metrics().latency(label, elapsed);
            // One line per AS request: never headers or bodies, which carry
            // tokens and keys. At `debug`, as the gateway's is: on the
            // first-token path it cost ~6% of the server's CPU per flow
            // (as_flows, RUST_LOG=info against warn, interleaved: 2.80 /
            // 2.79 against 2.61 / 2.66 server µs per generator µs); the
            // counts and latencies are in `/metrics` whatever the level.
            tracing::debug!(endpoint = label, method = %method_name, status = reply.status, seconds = elapsed, "request");
            reply
        }
        // Served above.
        Route::Gateway | Route::OAuth(_) | Route::OAuthClients(_) => return not_found(),
    };
    to_response(reply)
}

/// A grant request with its signature checked in a batch with others
/// arriving at the same moment (`authz::batched_grant`); the answer and
/// what it waits for on disk.
async fn grant_in_two_steps(app: &App, request: &HttpRequest, source: Option<&str>) -> Handled {
    let (step, first) = contained(|| app.auth.begin_grant(request, source))?;
    let (opened, pending) = match step {
        GrantStep::Answered(reply) => return Ok((reply, first)),
        GrantStep::Check(waiting) => *waiting,
    };
    let checked = app.gateway.check_signature(pending).await;
    let (reply, second) = contained(|| app.auth.finish_grant(request, source, opened, checked))?;
    // Opening only reads; were it ever to write, the later ticket covers it.
    Ok((reply, second.or(first)))
}

/// What an AS handler answered and the disk wait it left.
type Handled = Result<(Reply, Option<crate::store::Pending>), crate::store::StoreError>;

/// Runs an AS handler on this worker with its waits for the disk deferred
/// (`store::deferring`). A handler that panics (a bug: input paths do not
/// unwrap) is answered as a failure of the server, as it was when handlers
/// ran on the blocking pool, instead of taking the connection down.
fn contained<T>(
    handler: impl FnOnce() -> T,
) -> Result<(T, Option<crate::store::Pending>), crate::store::StoreError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        crate::store::deferring(handler)
    }))
    .map_err(|_| crate::store::StoreError::Backend("an AS handler panicked".into()))
}

/// Where a path leads.
enum Route {
    As(Endpoint, &'static str),
    /// `/mcp/…`: served by [`mcp::serve`] before warp.
    Gateway,
    WellKnown,
    /// RFC 9728 protected resource metadata for `{public}/mcp/{upstream}`
    /// (`None`: the root document, [`resource_metadata`]).
    ResourceMetadata(Option<String>),
    Metrics,
    /// The OAuth face (`oauth`).
    OAuth(oauth::OAuthEndpoint),
    /// OAuth client registration and introspection ([`oauth_clients`]).
    OAuthClients(oauth_clients::Endpoint),
}

impl Route {
    fn of(method: &Method, path: &str) -> Option<Self> {
        use crate::authz::{CONTINUE_PATH, GRANT_PATH, INTROSPECT_PATH, RESOURCE_PATH, TOKEN_PATH};
        if path == GRANT_PATH {
            return Some(Self::As(Endpoint::Grant, "grant"));
        }
        if path == INTROSPECT_PATH {
            return Some(Self::As(Endpoint::Introspect, "introspect"));
        }
        if path == RESOURCE_PATH {
            return Some(Self::As(Endpoint::RegisterResource, "resource"));
        }
        if let Some(id) = path.strip_prefix(CONTINUE_PATH).filter(|id| is_id(id)) {
            return Some(Self::As(Endpoint::Continue(id.to_owned()), "continue"));
        }
        if let Some(id) = path.strip_prefix(TOKEN_PATH).filter(|id| is_id(id)) {
            return Some(Self::As(Endpoint::Manage(id.to_owned()), "token"));
        }
        if let Some(endpoint) = oauth::OAuthEndpoint::of(path) {
            return Some(Self::OAuth(endpoint));
        }
        if let Some(endpoint) = oauth_clients::Endpoint::of(path) {
            return Some(Self::OAuthClients(endpoint));
        }
        if path.starts_with(mcp::PREFIX) {
            // Any method: the gateway answers 405 itself, as JSON-RPC.
            return Some(Self::Gateway);
        }
        if let Some(name) = resource_metadata::route(path)
            && method == Method::GET
        {
            return Some(Self::ResourceMetadata(name));
        }
        match (method, path) {
            // RFC 9767 §3.1: `.well-known/gnap-as-rs` "appended to the grant
            // request endpoint URL"; also served at the host root, where
            // well-known URIs usually live (RFC 8615).
            (&Method::GET, "/.well-known/gnap-as-rs" | "/gnap/.well-known/gnap-as-rs") => {
                Some(Self::WellKnown)
            }
            (&Method::GET, "/metrics") => Some(Self::Metrics),
            _ => None,
        }
    }
}

/// Grant ids are UUIDs; anything else cannot name a grant.
fn is_id(text: &str) -> bool {
    crate::authz::is_grant_id(text)
}

pub(crate) enum BodyError {
    TooLarge,
    Read,
}

pub(crate) async fn read_body<S, B>(mut stream: S, limit: usize) -> Result<Vec<u8>, BodyError>
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: bytes::Buf,
{
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|_| BodyError::Read)?;
        if body.len() + chunk.remaining() > limit {
            return Err(BodyError::TooLarge);
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            body.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(body)
}

/// The request as the services see it. The target URI is the public URL
/// plus the path and query received.
fn to_request(
    app: &App,
    method: Method,
    path: &str,
    query: &str,
    headers: HeaderMap,
    body: Vec<u8>,
    client_cert: Option<ClientCert>,
) -> HttpRequest {
    let public_url = &app.auth.config().public_url;
    let mut target_uri = String::with_capacity(public_url.len() + path.len() + query.len() + 1);
    target_uri.push_str(public_url);
    target_uri.push_str(path);
    if !query.is_empty() {
        target_uri.push('?');
        target_uri.push_str(query);
    }
    HttpRequest {
        method: method.as_str().to_owned(),
        target_uri,
        // The parsed map itself, not a copy of every line.
        fields: Fields::from(headers),
        body,
        client_cert,
    }
}

pub(crate) fn to_response(reply: Reply) -> Response<Bytes> {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    for (name, value) in &reply.headers {
        builder = builder.header(*name, value.as_str());
    }
    builder.body(Bytes::from(reply.body)).unwrap_or_else(|_| {
        let mut fallback = Response::new(Bytes::new());
        *fallback.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}

pub(crate) fn not_found() -> Response<Bytes> {
    let error = GrantError::described(ErrorCode::InvalidRequest, "no such endpoint");
    to_response(Reply::json(404, &GrantResponse::error(error, None)))
}
