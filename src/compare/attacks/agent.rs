//! One victim agent of either protocol, through the drivers' own
//! sessions: the attacks capture, alter and replay what it sends.

use super::super::driver::{self, DriverError};
use super::super::harness::Instance;
use super::super::meter::{Request, Response, Tap};
use super::super::variant::Variant;
use super::super::{gnap, oauth};

/// A GNAP or an OAuth agent.
pub enum Agent {
    /// GNAP.
    Gnap(Box<gnap::Session>),
    /// OAuth (any of its variants).
    OAuth(Box<oauth::Session>),
}

impl Agent {
    /// A brand-new agent of `variant` with a token for `upstream` at
    /// `instance` (every tool, or `tools`), as the driver gets it.
    pub async fn headless(
        instance: &Instance,
        variant: Variant,
        upstream: &str,
        tools: Option<&[&str]>,
        tap: &Tap,
    ) -> Result<Self, DriverError> {
        Ok(if variant.is_gnap() {
            Self::Gnap(Box::new(
                gnap::Session::headless(instance, variant, upstream, tools, tap).await?,
            ))
        } else {
            Self::OAuth(Box::new(
                oauth::Session::headless(instance, variant, upstream, tools, tap).await?,
            ))
        })
    }

    /// A complete `tools/call` of `tool` at `instance`'s gateway for
    /// `upstream`, not sent.
    pub fn call(
        &mut self,
        instance: &Instance,
        upstream: &str,
        tool: &str,
    ) -> Result<Request, DriverError> {
        match self {
            Self::Gnap(s) => s.call(instance, upstream, tool),
            Self::OAuth(s) => s.call(instance, upstream, tool),
        }
    }

    /// [`Self::call`] presenting `token` (signed or proved with the
    /// agent's own key, as the agent would).
    pub fn call_with(
        &mut self,
        instance: &Instance,
        upstream: &str,
        tool: &str,
        token: &str,
    ) -> Result<Request, DriverError> {
        match self {
            Self::Gnap(s) => s.call_with(instance, upstream, tool, token),
            Self::OAuth(s) => {
                let request = driver::tool_call(&instance.gateway(upstream), 90, tool, None);
                present(request, token, s.dpop_key())
            }
        }
    }

    /// Sends through the agent's own meter.
    pub async fn send(&mut self, request: Request) -> Result<Response, DriverError> {
        match self {
            Self::Gnap(s) => s.send(request).await,
            Self::OAuth(s) => s.send(request).await,
        }
    }

    /// The current access token.
    pub fn access_token(&self) -> &str {
        match self {
            Self::Gnap(s) => s.access_token(),
            Self::OAuth(s) => s.access_token(),
        }
    }

    /// The token before the last renewal.
    pub fn previous_access_token(&self) -> Option<&str> {
        match self {
            Self::Gnap(s) => s.previous_access_token(),
            Self::OAuth(s) => s.previous_access_token(),
        }
    }

    /// GNAP rotation, OAuth refresh (rotating).
    pub async fn renew(&mut self) -> Result<(), DriverError> {
        match self {
            Self::Gnap(s) => s.renew().await,
            Self::OAuth(s) => s.renew().await,
        }
    }
}

/// `request` with an OAuth `token`: as Bearer, or as DPoP with a fresh
/// proof by `dpop_key`.
pub fn present(
    request: Request,
    token: &str,
    dpop_key: Option<&crate::proto::jwk::SigningKey>,
) -> Result<Request, DriverError> {
    match dpop_key {
        Some(key) => {
            let proof = oauth::dpop::proof(key, &request.method, &request.url, Some(token))?;
            Ok(request
                .header("Authorization", format!("DPoP {token}"))
                .header("DPoP", proof))
        }
        None => Ok(request.header("Authorization", format!("Bearer {token}"))),
    }
}
