//! Forwarding one authorized call to an HTTP upstream and shaping its
//! answer: event ids sealed, tool lists filtered, sessions tracked.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue};

use super::Gateway;
use super::headers::{copy_forwardable, keep_returnable_headers, session_id};
use super::tool_filter::{collect, filter_json};
use crate::gateway::Authorized;
use crate::gateway::answer::{Forwarded, ForwardedBody, UpstreamFailure};
use crate::gateway::sse::{IdSealer, SseRewriter};
use crate::proto::httpsig::HttpRequest;
use crate::proto::mcp::jsonrpc::Message;
use crate::upstream::credential::Credential;
use crate::upstream::server::{Transport, Upstream};

impl Gateway {
    /// Sends `request` (method, allowed headers) with `body` to `uri`,
    /// presenting `credential`.
    async fn send(
        &self,
        upstream: &Upstream,
        request: &HttpRequest,
        uri: &str,
        body: Bytes,
        credential: &Credential,
        resume_from: Option<&str>,
    ) -> Result<hyper::Response<Incoming>, UpstreamFailure> {
        let mut builder = hyper::Request::builder()
            .method(request.method.as_str())
            .uri(uri);
        if let Some(headers) = builder.headers_mut() {
            copy_forwardable(&request.fields, headers);
            // The agent's sealed event id, opened: the upstream's own.
            headers.remove("last-event-id");
            if let Some(id) = resume_from.and_then(|id| HeaderValue::from_str(id).ok()) {
                headers.insert("last-event-id", id);
            }
            // A body is one JSON-RPC message the gateway has read as UTF-8
            // JSON; the upstream is told exactly that, so no charset the
            // agent names can make it read other names than the gateway did.
            if !body.is_empty() {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            if let Some((name, value)) = credential.header_to_inject() {
                headers.insert(name, value);
            }
        }
        let outgoing = builder
            .body(Full::new(body))
            .map_err(|_| UpstreamFailure::Unreachable)?;
        match tokio::time::timeout(self.response_timeout, self.client.request(outgoing)).await {
            Err(_) => Err(UpstreamFailure::Timeout),
            Ok(Err(e)) => {
                tracing::warn!(upstream = %upstream.name, error = %e, "upstream request failed");
                Err(UpstreamFailure::Unreachable)
            }
            Ok(Ok(response)) => Ok(response),
        }
    }

    /// Forwards an authorized `request` (its method, allowed headers and
    /// body) to `upstream`; a stdio upstream's goes to its session's child
    /// instead ([`crate::gateway::stdio`]), a new child counting against the
    /// address the call came `from`.
    pub(crate) async fn forward(
        &self,
        upstream: &Upstream,
        mut request: HttpRequest,
        authorized: &Authorized,
        from: crate::proto::address::AddressKey,
    ) -> Result<Forwarded, UpstreamFailure> {
        let url = match &upstream.transport {
            Transport::Http { url } => url,
            Transport::Stdio(command) => {
                let answer = self
                    .stdio
                    .handle(
                        upstream,
                        command,
                        &request,
                        authorized,
                        self.response_timeout,
                        from,
                    )
                    .await;
                // Removed while this call started a child: the removal's
                // stop missed it, so it is stopped here.
                if self.upstream(&upstream.name).is_none() {
                    self.stdio.stop_upstream(&upstream.name);
                }
                return answer;
            }
        };
        let request_session = session_id(request.fields.lines("mcp-session-id").next());
        let ending = request.method == "DELETE";
        // A new session the table could not record would be unusable: a
        // full table refuses the `initialize` instead.
        if request_session.is_none()
            && matches!(&authorized.message, Some(Message::Request { method, .. }) if method == "initialize")
            && !self.sessions.has_room(
                &authorized.session_owner(&upstream.name),
                std::time::Instant::now(),
            )
        {
            tracing::warn!(upstream = %upstream.name, "the session table is full of other agents' live sessions; initialize refused");
            return Err(UpstreamFailure::SessionsFull);
        }
        // When the token's tools are limited, every answer is filtered,
        // whatever the request looked like: a `tools/list` answer may come
        // back with another spelling of its id (`1.0` sent, `1` answered),
        // a GET stream replays what earlier POSTs' streams carried
        // (`Last-Event-ID`), and an upstream that read another method than
        // the gateway did would answer with a list the request's method
        // does not announce.
        let lists_tools = authorized.grant.limits_tools();
        let body = Bytes::from(std::mem::take(&mut request.body));
        let set = authorized.token.credential_set(&upstream.name);
        let mut credential = std::borrow::Cow::Borrowed(&authorized.credential);
        if let (Credential::OAuth2(grant), Some(id)) = (credential.as_ref(), set)
            && grant.needs_refresh(self.clock.now())
        {
            let fresh = self
                .refresh(&upstream.name, id, grant.access_token.expose())
                .await?;
            credential = std::borrow::Cow::Owned(fresh);
        }
        let resume_from = authorized.resume_from.as_deref();
        let mut response = self
            .send(
                upstream,
                &request,
                url,
                body.clone(),
                &credential,
                resume_from,
            )
            .await?;
        // An upstream OAuth token refused before its known expiry (revoked,
        // or its lifetime unknown): refresh once and try again.
        if response.status() == hyper::StatusCode::UNAUTHORIZED
            && let (Credential::OAuth2(grant), Some(id)) = (credential.as_ref(), set)
            && grant.refresh_token.is_some()
        {
            let fresh = self
                .refresh(&upstream.name, id, grant.access_token.expose())
                .await?;
            response = self
                .send(upstream, &request, url, body, &fresh, resume_from)
                .await?;
        }
        if response.status() == hyper::StatusCode::UNAUTHORIZED {
            tracing::warn!(upstream = %upstream.name, "the upstream refused the gateway's credential");
            return Err(UpstreamFailure::CredentialRefused);
        }
        // A redirect is not passed on either: its `Location` names the
        // upstream, and a client following it would take the call (with the
        // agent's signature) around the gateway.
        if response.status().is_redirection() {
            tracing::warn!(upstream = %upstream.name, status = response.status().as_u16(), "the upstream redirected; its configured URL may be wrong");
            return Err(UpstreamFailure::Failed(response.status().as_u16()));
        }
        if response.status().is_server_error() {
            tracing::warn!(upstream = %upstream.name, status = response.status().as_u16(), "the upstream failed");
            return Err(UpstreamFailure::Failed(response.status().as_u16()));
        }
        let (parts, body) = response.into_parts();
        // The session the answer's events belong to: the call's, or the one
        // an initialize answer opens.
        let stream_session = request_session
            .clone()
            .or_else(|| session_id(parts.headers.get("mcp-session-id").map(|v| v.as_bytes())));
        self.track_session(
            &upstream.name,
            request_session.as_deref(),
            ending,
            &parts,
            authorized,
        );
        let mut headers = parts.headers;
        keep_returnable_headers(&mut headers);
        let status = parts.status.as_u16();
        let media = Media::of(&headers);
        // Every event stream is rewritten (its ids sealed), and with tools
        // limited every answer is read; an encoded body cannot be, and is
        // refused rather than passed on as it is (the gateway never asks
        // for an encoding).
        let rewritten = lists_tools || media == Media::EventStream;
        if rewritten
            && headers
                .get(hyper::header::CONTENT_ENCODING)
                .is_some_and(|v| v.as_bytes() != b"identity")
        {
            return Err(UpstreamFailure::Unfilterable);
        }
        if media == Media::EventStream {
            headers.remove(CONTENT_LENGTH);
            let ids = IdSealer {
                ids: self.event_ids.clone(),
                binding: self.binding(upstream, authorized, stream_session),
            };
            let grant = lists_tools.then(|| authorized.grant.clone());
            return Ok(Forwarded {
                status,
                headers,
                body: ForwardedBody::Stream(Box::pin(SseRewriter::new(body, grant, ids))),
            });
        }
        if !lists_tools {
            return Ok(Forwarded {
                status,
                headers,
                body: ForwardedBody::Upstream(body),
            });
        }
        match media {
            Media::Json => {
                let filtered = filter_json(body, &authorized.grant, self.response_timeout).await?;
                headers.insert(CONTENT_LENGTH, HeaderValue::from(filtered.len()));
                Ok(Forwarded {
                    status,
                    headers,
                    body: ForwardedBody::Full(filtered),
                })
            }
            // Another shape: an empty body (a 202 for a notification) or an
            // error status carries no tool list; a success with content
            // cannot be filtered and is refused.
            Media::EventStream | Media::Other => {
                let body = collect(body, self.response_timeout).await?;
                if !body.is_empty() && parts.status.is_success() {
                    return Err(UpstreamFailure::Unfilterable);
                }
                Ok(Forwarded {
                    status,
                    headers,
                    body: ForwardedBody::Full(body),
                })
            }
        }
    }

    /// Keeps the session table in step with the upstream: a success that
    /// hands out an `Mcp-Session-Id` the call did not carry opens a session
    /// for the call's key and set; a successful DELETE of a session ends it.
    fn track_session(
        &self,
        upstream: &str,
        sent: Option<&str>,
        ending: bool,
        parts: &hyper::http::response::Parts,
        authorized: &Authorized,
    ) {
        if !parts.status.is_success() {
            return;
        }
        match sent {
            Some(session) if ending => self.sessions.end(upstream, session),
            Some(_) => {}
            None => {
                if let Some(session) =
                    session_id(parts.headers.get("mcp-session-id").map(|v| v.as_bytes()))
                    && !self.sessions.open(
                        upstream,
                        &session,
                        authorized.session_owner(upstream),
                        std::time::Instant::now(),
                    )
                {
                    tracing::warn!(
                        upstream,
                        "a new session was not recorded: the table is full of other agents' live sessions, or its id is another agent's"
                    );
                }
            }
        }
    }
}

/// What an answer's `Content-Type` says it is (parameters aside, any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Media {
    Json,
    EventStream,
    Other,
}

impl Media {
    fn of(headers: &HeaderMap) -> Self {
        let essence = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::trim)
            .unwrap_or_default();
        if essence.eq_ignore_ascii_case("application/json") {
            Self::Json
        } else if essence.eq_ignore_ascii_case("text/event-stream") {
            Self::EventStream
        } else {
            Self::Other
        }
    }
}
