//! The file's bounds over the defaults of `authz::limits`.

use super::*;

/// The file's bounds over the defaults of `authz::limits`; every number
/// positive (a zero would refuse everything).
pub(super) fn limits(file: &FileConfig) -> Result<crate::authz::limits::Limits, ConfigError> {
    let mut limits = crate::authz::limits::Limits::default();
    let replay = &mut limits.replay;
    let pending = &mut limits.pending;
    for (name, value, slot) in [
        (
            "replay_capacity",
            file.replay_capacity,
            &mut replay.bound.capacity,
        ),
        (
            "replay_key_quota",
            file.replay_key_quota,
            &mut replay.bound.key_quota,
        ),
        (
            "replay_capacity_unapproved",
            file.replay_capacity_unapproved,
            &mut replay.unapproved.capacity,
        ),
        (
            "replay_key_quota_unapproved",
            file.replay_key_quota_unapproved,
            &mut replay.unapproved.key_quota,
        ),
        (
            "pending_per_key",
            file.pending_per_key,
            &mut pending.per_key,
        ),
        (
            "pending_per_address",
            file.pending_per_address,
            &mut pending.per_address,
        ),
        ("pending_total", file.pending_total, &mut pending.total),
        (
            "pending_request_max_bytes",
            file.pending_request_max_bytes,
            &mut pending.request_bytes,
        ),
    ] {
        match value {
            Some(0) => return Err(ConfigError::Invalid(format!("{name} must be positive"))),
            Some(v) => *slot = v,
            None => {}
        }
    }
    for (name, value, slot) in [
        (
            "grant_rate_per_address",
            file.grant_rate_per_address,
            &mut limits.grant_per_address,
        ),
        (
            "grant_rate_per_key",
            file.grant_rate_per_key,
            &mut limits.grant_per_key,
        ),
        (
            "continue_rate_per_address",
            file.continue_rate_per_address,
            &mut limits.continue_per_address,
        ),
        (
            "page_rate_per_address",
            file.page_rate_per_address,
            &mut limits.pages_per_address,
        ),
        (
            "oauth_rate_per_address",
            file.oauth_rate_per_address,
            &mut limits.oauth_per_address,
        ),
    ] {
        if let Some(rate) = value {
            rate.check(name).map_err(invalid)?;
            *slot = rate;
        }
    }
    // Unless set apart, the OAuth endpoints keep the grant endpoint's
    // rate, configured or not.
    if file.oauth_rate_per_address.is_none() {
        limits.oauth_per_address = limits.grant_per_address;
    }
    Ok(limits)
}
