//! `gnapd serve --interop`: what a conformance suite needs to drive gnapd
//! without a person, on a server that only this machine reaches
//! (`config::check_interop_is_local`).
//!
//! - `POST /interop/decide` ([`decide`]): approves or denies a pending
//!   interaction, named by its user code or its interaction URL, as the
//!   person would, and carries out the finish method. It takes
//!   `Authorization: Bearer SECRET`, the secret printed at start (and
//!   written to `<data-dir>/interop.secret`): holding an interaction link
//!   is not enough to decide it, here as on the pages.
//! - `/rs/echo` ([`crate::authz::AuthServer::echo`]): a resource server
//!   that checks a token and its proof and says what it saw.
//!
//! Both are 404 unless the server runs with `--interop`.

mod decide;

use zeroize::Zeroizing;

pub use decide::DECIDE_PATH;

/// The path of the echo resource server.
pub const ECHO_PATH: &str = "/rs/echo";

/// Interop mode's state: the automation secret.
pub struct Interop {
    secret: Zeroizing<String>,
}

impl std::fmt::Debug for Interop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interop").finish_non_exhaustive()
    }
}

impl Interop {
    /// Interop mode with the automation `secret`.
    pub fn new(secret: Zeroizing<String>) -> Self {
        Self { secret }
    }

    /// The secret, for the line `gnapd serve` prints at start.
    pub(crate) fn secret(&self) -> &str {
        &self.secret
    }

    /// True if `headers` carry `Authorization: Bearer` with the secret
    /// (compared in constant time; exactly one such field).
    fn authorized(&self, headers: &hyper::HeaderMap) -> bool {
        let mut values = headers.get_all(hyper::header::AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return false;
        };
        let Some((scheme, presented)) = value.to_str().ok().and_then(|v| v.split_once(' ')) else {
            return false;
        };
        scheme.eq_ignore_ascii_case("bearer")
            && bool::from(subtle::ConstantTimeEq::ct_eq(
                presented.trim().as_bytes(),
                self.secret.as_bytes(),
            ))
    }
}

pub(crate) use decide::serve_decide;
