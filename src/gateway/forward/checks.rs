//! What a call passes at the gateway before it is forwarded: the token
//! decision (with batched signature checks), its session and its
//! resumption point.

use std::sync::Arc;

use super::Gateway;
use super::headers::session_id;
use crate::gateway::{Authorized, Refusal};
use crate::proto::httpsig::HttpRequest;
use crate::proto::mcp::event_id::Binding;
use crate::upstream::server::{Transport, Upstream};

impl Gateway {
    /// Runs [`authorize`](crate::gateway::authorize) in place, with the signature's
    /// cryptographic check batched with other calls' when several wait at
    /// once ([`crate::gateway::batching`]). It is CPU work of tens of microseconds
    /// (one signature check, a store lookup, a replay-cache insert that does
    /// not wait for the disk); handing it to the blocking pool cost a quarter
    /// of the gateway's CPU in thread hand-offs (benches/gateway).
    pub(crate) async fn check(
        self: &Arc<Self>,
        target: &Upstream,
        mut request: HttpRequest,
        from: crate::proto::address::AddressKey,
    ) -> (HttpRequest, Result<Authorized, Refusal>) {
        let now = self.clock.now();
        let store = self.store.as_ref();
        let mut opened = crate::gateway::open(store, &self.keys, &self.profile, &request, now);
        // A Bearer or DPoP token gnapd did not issue may be the external
        // AS's: asked there, it joins the same path.
        if let (Err(Refusal::OAuthToken { .. }), Some(external)) = (&opened, &self.external) {
            opened = external
                .open(store, &self.keys, &request, target, from, now)
                .await
                .map(|o| (o, None));
        }
        let decision = match opened {
            Err(refusal) => Err(refusal),
            Ok((mut opened, pending)) => {
                // A `jws` call's body is its proof; from here on it is the
                // JSON-RPC message the proof carried.
                opened.unwrap_content(&mut request);
                let checked = match pending {
                    Some(pending) => self.batcher.check(pending).await,
                    None => None,
                };
                crate::gateway::conclude(
                    store,
                    &self.profile,
                    &target.name,
                    &request,
                    now,
                    opened,
                    checked,
                )
            }
        }
        .and_then(|mut authorized| {
            authorized.credential = self.credential_for(target, &authorized)?;
            Ok(authorized)
        });
        (request, decision)
    }

    /// Refuses a call that names an `Mcp-Session-Id` which this call's key
    /// and credential set did not open at `upstream` (see
    /// [`crate::gateway::sessions`]).
    pub(crate) fn check_session(
        &self,
        target: &Upstream,
        request: &HttpRequest,
        authorized: &Authorized,
    ) -> Result<(), Refusal> {
        let upstream = target.name.as_str();
        let Some(sent) = request.fields.lines("mcp-session-id").next() else {
            return Ok(());
        };
        // An id outside the transport's alphabet is refused, not taken for
        // "no session": the upstream might still make one of it.
        let session = session_id(Some(sent)).ok_or(Refusal::MalformedSessionId)?;
        // A stdio upstream's sessions are the gateway's own, bound in the
        // bridge when it mints them.
        if matches!(target.transport, Transport::Stdio(_)) {
            return Ok(());
        }
        self.sessions.check(
            upstream,
            &session,
            &authorized.session_owner(upstream),
            std::time::Instant::now(),
        )?;
        Ok(())
    }

    /// Takes a `Last-Event-ID` back: it must be one the gateway sealed for
    /// this call's key, credential set, upstream and session (see
    /// [`crate::proto::mcp::event_id`]); the upstream then gets its own id
    /// again ([`Authorized::resume_from`]). Any other value is refused
    /// (400): the transport lets a server ignore the header, but a stream
    /// the agent did not ask for is no answer to a resumption.
    pub(crate) fn check_resumption(
        &self,
        target: &Upstream,
        request: &HttpRequest,
        authorized: &mut Authorized,
    ) -> Result<(), Refusal> {
        let mut sent = request.fields.lines("last-event-id");
        let Some(value) = sent.next() else {
            return Ok(());
        };
        if sent.next().is_some() {
            return Err(Refusal::RepeatedHeader("Last-Event-ID"));
        }
        let binding = self.binding(
            target,
            authorized,
            session_id(request.fields.lines("mcp-session-id").next()),
        );
        let value = std::str::from_utf8(value).map_err(|_| Refusal::UnknownEventId)?;
        let original = self
            .event_ids
            .open(&binding, value.trim())
            .ok_or(Refusal::UnknownEventId)?;
        authorized.resume_from = Some(original);
        Ok(())
    }

    /// Who receives a stream of `target`'s events in `session`.
    pub(super) fn binding(
        &self,
        target: &Upstream,
        authorized: &Authorized,
        session: Option<String>,
    ) -> Binding {
        Binding {
            thumbprint: authorized.owner(),
            credential_set: authorized
                .token
                .credential_set(&target.name)
                .map(str::to_owned),
            upstream: target.name.clone(),
            session,
        }
    }
}
