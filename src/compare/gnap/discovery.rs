//! Discovery (RFC 9635 §9.1): the agent knows only the gateway URL. Its
//! first MCP request, sent without a token, is refused with `401` and
//! `WWW-Authenticate: GNAP as_uri="…", access="…"`: the grant endpoint and
//! the access reference to ask for, in one round trip. The optional
//! `OPTIONS` discovery document (§9) is not fetched: the grant request
//! itself says what the agent can do, and the AS answers with what it
//! accepts.

use super::super::driver::{DriverError, initialize, unexpected};
use super::super::meter::Meter;
use crate::client::Challenge;
use crate::client::challenge::gnap_challenge;

/// Sends the MCP `initialize` an agent opens a session with, without a
/// token, to `resource` and reads the GNAP challenge of its `401`.
pub async fn probe(meter: &mut Meter, resource: &str) -> Result<Challenge, DriverError> {
    let response = meter.send(initialize(resource, None)).await?;
    if response.status != 401 {
        return Err(unexpected("the unauthenticated MCP request", &response));
    }
    gnap_challenge(response.headers_named("www-authenticate"))
        .map_err(|e| DriverError::Protocol(format!("the gateway's challenge: {e}")))
}
