//! GNAP (RFC 9635) wire types: the JSON messages of the grant, continuation,
//! token management and discovery APIs, and the errors they carry.
//!
//! Bytes in, typed values out, and typed values back to JSON; nothing here
//! touches a socket, a store or the clock. Requests are parsed in one pass
//! into narrowed types ("full recognition before processing", "parse, don't
//! validate"): a [`GrantRequest`] can only hold what gnapd is able to act on
//! (an `httpsig` key presented by value, access rights whose shape is known,
//! flags the registry allows in a request), and every refusal names the field
//! and the §3.6 error code the AS answers with.
//!
//! Field names, types, defaults and codes come from the working group's
//! `draft-ietf-gnap-core-protocol` -18 source, the latest text of the
//! document that was at hand (the RFC followed after further editorial
//! revisions). Section numbers are RFC 9635's, which match -18's. Where a draft
//! example is not valid JSON or contradicts the normative text, the tests say
//! so beside the example.
//!
//! | module | RFC 9635 |
//! |---|---|
//! | [`request`] | §2 grant request |
//! | [`access`] | §8 resource access rights, plus gnapd's `mcp` type |
//! | [`key`] | §7.1 key formats, §7.3 proofing methods (`httpsig` only) |
//! | [`subject`] | §2.2, §2.4, §3.4 subject information and the end user |
//! | [`interact`] | §2.5 interaction request, §3.3 interaction response |
//! | [`response`] | §3 grant response, §3.1 continuation, §3.2 access tokens |
//! | [`continuation`] | §5 continuation requests, §6.1 rotation request |
//! | [`error`] | §3.6 error codes and the error object |
//! | [`discovery`] | §9 discovery document |
//! | [`token`] | token values (§3.2.1 `token68`), kept secret |
//! | [`rs`] | RFC 9767 §3: RS-facing discovery, introspection, resource sets, errors |
//! | [`limits`] | gnapd's bounds on array and string sizes |

pub mod access;
pub mod continuation;
pub mod discovery;
pub mod error;
pub mod interact;
pub mod key;
pub mod limits;
pub mod reader;
pub mod request;
pub mod response;
pub mod rs;
pub mod subject;
pub mod token;

#[cfg(test)]
mod examples;

pub use access::{AccessObject, AccessRight};
pub use continuation::{
    ContinueRequest, GrantModification, RotationRequest, parse_continue_request,
    parse_modify_request, parse_rotation_request,
};
pub use discovery::Discovery;
pub use error::{ErrorCode, GrantError};
pub use key::{CertKey, HttpSigProof, Key, PresentedKey, Proof, ProofKind};
pub use reader::{Reason, RequestError};
pub use request::{
    AccessTokenRequest, AccessTokenRequests, Client, ClientDisplay, ClientKey, GrantRequest,
    RequestFlag, parse_grant_request,
};
pub use response::{AccessToken, AccessTokens, BoundAccessToken, Continue, GrantResponse, Manage};
pub use token::TokenValue;
