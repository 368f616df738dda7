//! `gnapd compare`: GNAP against OAuth on the same server, the same
//! policy, the same upstream and credential set, measured step by step,
//! plus an attack suite whose outcomes are observed, never assumed.
//!
//! - [`world`] starts what the runs need on loopback ([`harness`]: gnapd
//!   instances on fresh data dirs; [`upstream`]: the MCP server shipped here).
//! - [`meter`] is the HTTP client every party sends through, counting
//!   bytes on the wire; [`recorder`] cuts a run into steps and reads the
//!   [`probe`]s (CPU, crypto counts, server state, server-made requests)
//!   at each boundary.
//! - [`variant`] lists the variants, scenarios and attacks; [`gnap`] and
//!   [`oauth`] drive the scenarios; [`attacks`] tries each attack.
//! - [`external`] (`--with-oidc-provider`): node-oidc-provider as an
//!   external AS in front of the same gateway, the third column.
//! - [`stats`] turns samples into the [`report`]; [`markdown`] and [`plots`]
//!   render it.

pub mod attacks;
pub mod consent;
pub mod documents;
pub mod driver;
pub mod env;
pub mod external;
pub mod gnap;
pub mod harness;
pub mod markdown;
pub mod meter;
pub mod oauth;
pub mod plots;
pub mod probe;
pub mod recorder;
pub mod report;
pub mod run;
#[cfg(test)]
mod sample;
pub mod settings;
pub mod stats;
pub mod upstream;
pub mod variant;
pub mod world;
