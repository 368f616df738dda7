//! What a client's address counts as where gnapd bounds what one address
//! may hold (connections, sign-ins under way, stdio children): an IPv4
//! address (IPv4-mapped IPv6 too), or an IPv6 address's /64, which one
//! subscriber usually holds whole and can take a new address in for every
//! connection.

use std::net::IpAddr;

/// The key an address counts under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AddressKey {
    /// An IPv4 address.
    V4(u32),
    /// The first 64 bits of an IPv6 address.
    V6(u64),
    /// A source that is not an address (all such share one count).
    Unknown,
}

impl AddressKey {
    /// The key `ip` counts under.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(u32::from(v4)),
                // The upper half of 128 bits always fits in 64.
                None => Self::V6(u64::try_from(u128::from(v6) >> 64).unwrap_or(u64::MAX)),
            },
        }
    }

    /// The key of a source as `crate::http::client_address::source` names
    /// it (an address, or `unknown`).
    pub fn of_source(source: &str) -> Self {
        source.parse().map_or(Self::Unknown, Self::of)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> AddressKey {
        AddressKey::of_source(text)
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
        assert_ne!(key("192.0.2.7"), key("192.0.2.8"));
        assert_eq!(key("unknown"), AddressKey::Unknown);
    }
}
