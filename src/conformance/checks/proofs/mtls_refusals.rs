//! mTLS proofs the AS must refuse (§7.3.2: "the verifier compares the TLS
//! client certificate … to the expected key"): a request presenting an
//! `mtls` key over a connection without a client certificate, or with
//! another one, gets `invalid_client` (§3.6). Tampering and replay are not
//! checked: TLS covers the whole message, and §7.3.2 asks nothing more.

use serde_json::json;

use crate::conformance::check::Verdict;
use crate::conformance::checks::{Session, access_right, expect_error};
use crate::conformance::proof::{CertForm, Mtls, ProofSigner};
use crate::conformance::target::Target;

/// Runs the refusal `kind` (`negative-no-cert`, `negative-other-cert`).
pub async fn run(session: &mut Session, kind: &str) -> Result<Verdict, Verdict> {
    let make = |cn| Mtls::generate(cn, CertForm::Cert, session.target.roots());
    let presented = make("conformance-mtls").map_err(Verdict::error)?;
    let body = json!({
        "access_token": { "access": [access_right()] },
        "client": { "key": presented.key_object() },
    });
    let request = Target::request("POST", session.target.grant_endpoint(), None, Some(&body));
    Ok(match kind {
        "negative-no-cert" => {
            let reply = session.target.send(&request).await;
            expect_error(reply, "invalid_client", "no client certificate")
        }
        "negative-other-cert" => {
            let other = make("conformance-other").map_err(Verdict::error)?;
            let reply = session.target.send_by(&other, &request).await;
            expect_error(reply, "invalid_client", "another client certificate")
        }
        _ => crate::conformance::checks::unknown(kind),
    })
}
