//! Bounds on the size of what a client may ask for.
//!
//! RFC 9635 sets no limits; an AS that stores and evaluates every request
//! needs some. The caller bounds the body size before parsing; these bound
//! the work and storage one accepted body can cause. Each is generous for a
//! real agent (an MCP client asks for a handful of upstreams) and small
//! enough that policy evaluation stays cheap. Exceeding one is an
//! `invalid_request` naming the field.

/// Access tokens in one multiple-token request (§2.1.2).
pub const MAX_ACCESS_TOKENS: usize = 32;

/// Items in one `access` array (§8).
pub const MAX_ACCESS_ITEMS: usize = 64;

/// Entries in any other array of the request: `actions`, `locations`,
/// `datatypes`, `privileges`, `tools`, `flags`, `start`, `ui_locales`,
/// `sub_id_formats`, `assertion_formats`, `sub_ids`, `assertions`.
pub const MAX_LIST_ITEMS: usize = 64;

/// Bytes in any string of the request (URIs, labels, reference strings,
/// names). Assertions are the exception: see [`MAX_ASSERTION_LEN`].
pub const MAX_STRING_LEN: usize = 2048;

/// Bytes in one assertion value (an ID token or SAML assertion is a few KiB;
/// a SAML assertion with an embedded certificate can reach tens).
pub const MAX_ASSERTION_LEN: usize = 64 * 1024;

/// Bytes in a client's `display.logo_uri`, which §2.3.2 allows to carry the
/// image itself as a `data:` URI.
pub const MAX_LOGO_URI_LEN: usize = 32 * 1024;

/// Members of one object whose extra members gnapd keeps without knowing
/// them: an access right object of a type other than `mcp` (§8), a subject
/// identifier (RFC 9493), a JWK.
pub const MAX_EXTRA_MEMBERS: usize = 32;

/// Levels of nesting in a request body (the top-level object is level 1).
/// serde_json alone stops at 128, but a request is not only read: the AS
/// stores it inside a record (two levels deeper) and reads that back, and
/// hands access rights to resource servers inside introspection answers
/// (three deeper), whose JSON readers may stop sooner. The deepest member
/// GNAP defines is level 5 (`access_token[].access[].actions[]`); 32
/// leaves an RS-defined access type (§8) room for structure of its own,
/// and every store and RS reader room to spare.
pub const MAX_DEPTH: usize = 32;
