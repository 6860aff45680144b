//! Small address types: an IPv4 prefix and a MAC address, parsed and printed the way `ip` does.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::Error;

/// An IPv4 address with a prefix length, e.g. `10.42.0.2/24` (host bits are kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Cidr {
    /// The address as written (not masked).
    pub addr: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub prefix: u8,
}

impl Ipv4Cidr {
    /// Builds a prefix; panics on a prefix above 32 only in debug builds (callers pass constants).
    pub const fn new(addr: Ipv4Addr, prefix: u8) -> Self {
        Ipv4Cidr { addr, prefix }
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// This prefix with host bits cleared, e.g. `10.42.0.2/24` -> `10.42.0.0/24`.
    pub fn trunc(&self) -> Ipv4Cidr {
        Ipv4Cidr::new(self.network(), self.prefix)
    }

    /// The n-th address of the network (`nth(1)` is the gateway `.1` of a node subnet).
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()).wrapping_add(n))
    }

    /// Whether `ip` lies inside this prefix.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::Parse {
            what: "IPv4 prefix",
            input: s.to_string(),
        };
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, p.parse::<u8>().map_err(|_| bad())?),
            None => (s, 32),
        };
        if prefix > 32 {
            return Err(bad());
        }
        Ok(Ipv4Cidr::new(addr.parse().map_err(|_| bad())?, prefix))
    }
}

/// A 48-bit Ethernet address printed as lower-case `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The address OVN derives from an IPv4 address: `0a:58:` followed by the four address bytes.
    pub fn ovn_for_ipv4(ip: Ipv4Addr) -> MacAddr {
        let o = ip.octets();
        MacAddr([0x0a, 0x58, o[0], o[1], o[2], o[3]])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl FromStr for MacAddr {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::Parse {
            what: "MAC address",
            input: s.to_string(),
        };
        let mut out = [0u8; 6];
        let mut parts = s.trim().split(':');
        for byte in out.iter_mut() {
            let p = parts.next().ok_or_else(bad)?;
            if p.len() != 2 {
                return Err(bad());
            }
            *byte = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(MacAddr(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parses_and_derives_addresses() {
        let c: Ipv4Cidr = "10.42.0.0/24".parse().unwrap();
        assert_eq!(c.nth(1), Ipv4Addr::new(10, 42, 0, 1));
        assert_eq!(c.nth(2).to_string(), "10.42.0.2");
        assert!(c.contains(Ipv4Addr::new(10, 42, 0, 200)));
        assert!(!c.contains(Ipv4Addr::new(10, 42, 1, 1)));
        assert_eq!(
            "10.44.0.0".parse::<Ipv4Cidr>().unwrap().to_string(),
            "10.44.0.0/32"
        );
        assert_eq!(
            "10.42.0.2/24"
                .parse::<Ipv4Cidr>()
                .unwrap()
                .trunc()
                .to_string(),
            "10.42.0.0/24"
        );
        assert!("10.0.0.0/33".parse::<Ipv4Cidr>().is_err());
        assert!("10.0.0/8".parse::<Ipv4Cidr>().is_err());
    }

    #[test]
    fn mac_round_trips_and_derives_from_ip() {
        let m: MacAddr = "0A:58:0a:2a:00:0c".parse().unwrap();
        assert_eq!(m.to_string(), "0a:58:0a:2a:00:0c");
        assert_eq!(
            MacAddr::ovn_for_ipv4(Ipv4Addr::new(169, 254, 169, 4)).to_string(),
            "0a:58:a9:fe:a9:04"
        );
        assert!("0a:58:0a:2a:00".parse::<MacAddr>().is_err());
        assert!("0a:58:0a:2a:00:0c:01".parse::<MacAddr>().is_err());
    }
}
