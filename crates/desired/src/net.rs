//! IPv4 prefixes and the address arithmetic ovn-kubernetes derives names and MACs from.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 prefix `a.b.c.d/len` (the address may have host bits set, as in `192.168.122.14/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Cidr {
    /// The address as written.
    pub addr: Ipv4Addr,
    /// The prefix length, 0..=32.
    pub len: u8,
}

/// A malformed IPv4 address or prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid IPv4 {what} {value:?}")]
pub struct NetError {
    /// "address" or "prefix".
    pub what: &'static str,
    /// The text that did not parse.
    pub value: String,
}

impl Ipv4Cidr {
    /// Builds a prefix; `len` must be at most 32.
    pub fn new(addr: Ipv4Addr, len: u8) -> Ipv4Cidr {
        assert!(len <= 32, "prefix length {len} > 32");
        Ipv4Cidr { addr, len }
    }

    fn mask(&self) -> u32 {
        if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - self.len)
        }
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// The same prefix with host bits cleared.
    pub fn trunc(&self) -> Ipv4Cidr {
        Ipv4Cidr::new(self.network(), self.len)
    }

    /// The n-th address of the network (`nth(1)` is the `.1` gateway of a node subnet).
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()).wrapping_add(n))
    }

    /// True when `ip` lies inside the prefix.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }

    /// `nth(n)` written with this prefix length, e.g. `10.42.0.1/24`.
    pub fn nth_with_len(&self, n: u32) -> Ipv4Cidr {
        Ipv4Cidr::new(self.nth(n), self.len)
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || NetError {
            what: "prefix",
            value: s.to_owned(),
        };
        let (a, l) = s.split_once('/').ok_or_else(err)?;
        let addr = Ipv4Addr::from_str(a).map_err(|_| err())?;
        // Go's ParseCIDR rejects "+24" and "024"-style lengths too; keep to plain digits.
        if l.is_empty() || l.len() > 2 || !l.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let len: u8 = l.parse().map_err(|_| err())?;
        if len > 32 {
            return Err(err());
        }
        Ok(Ipv4Cidr { addr, len })
    }
}

/// Parses a bare IPv4 address, naming it in the error.
pub fn parse_ipv4(s: &str) -> Result<Ipv4Addr, NetError> {
    Ipv4Addr::from_str(s).map_err(|_| NetError {
        what: "address",
        value: s.to_owned(),
    })
}

/// True when the text is an IPv6 address or prefix (used to report "IPv6 in an IPv4 cluster").
pub fn looks_ipv6(s: &str) -> bool {
    let a = s.split('/').next().unwrap_or(s);
    a.parse::<std::net::Ipv6Addr>().is_ok()
}

/// The OVN router MAC of an IPv4 address: `0a:58:` followed by the four address bytes.
pub fn mac_from_ipv4(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("0a:58:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

/// True for a MAC written as six colon-separated hex byte pairs.
pub fn is_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_arithmetic() {
        let s: Ipv4Cidr = "10.42.0.0/24".parse().unwrap();
        assert_eq!(s.nth(1).to_string(), "10.42.0.1");
        assert_eq!(s.nth_with_len(2).to_string(), "10.42.0.2/24");
        assert!(s.contains("10.42.0.255".parse().unwrap()));
        assert!(!s.contains("10.42.1.0".parse().unwrap()));
        let host: Ipv4Cidr = "192.168.122.14/24".parse().unwrap();
        assert_eq!(host.trunc().to_string(), "192.168.122.0/24");
        let all: Ipv4Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn malformed_prefixes_are_rejected() {
        for bad in [
            "10.42.0.0",
            "10.42.0.0/33",
            "10.42.0/24",
            "x/24",
            "10.42.0.0/+4",
            "fd00::/64",
        ] {
            assert!(bad.parse::<Ipv4Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn router_macs_follow_the_ip() {
        assert_eq!(
            mac_from_ipv4("10.42.0.1".parse().unwrap()),
            "0a:58:0a:2a:00:01"
        );
        assert_eq!(
            mac_from_ipv4("100.64.0.2".parse().unwrap()),
            "0a:58:64:40:00:02"
        );
        assert!(is_mac("76:3a:81:5a:05:d7"));
        assert!(!is_mac("76:3a:81:5a:05"));
        assert!(looks_ipv6("fd00::1") && looks_ipv6("fd00::/64") && !looks_ipv6("10.0.0.1"));
    }
}
