//! The answers of the client endpoints: JSON, `Cache-Control: no-store`,
//! errors as RFC 6749 §5.2 objects (`error`, `error_description`), never
//! an HTML page and never a 500 with a cause in it.

use serde_json::json;

use crate::authz::Reply;
use crate::store::StoreError;

/// An OAuth error object with `status`.
pub fn error(status: u16, code: &str, description: &str) -> Reply {
    Reply::json(
        status,
        &json!({ "error": code, "error_description": description }),
    )
    .with_header("pragma", "no-cache")
}

/// RFC 6749 §5.2 `invalid_client` for a caller that must authenticate
/// with HTTP Basic: 401 with the challenge.
pub fn invalid_client_basic(description: &str) -> Reply {
    error(401, "invalid_client", description)
        .with_header("www-authenticate", "Basic realm=\"gnapd\"")
}

/// The store failed: the cause goes to the log, the client is told to
/// retry (503 `temporarily_unavailable`).
pub fn unavailable(e: &StoreError) -> Reply {
    tracing::error!(error = %e, "storage failure");
    error(
        503,
        "temporarily_unavailable",
        "the server cannot answer now; retry later",
    )
    .with_header("retry-after", "1")
}
