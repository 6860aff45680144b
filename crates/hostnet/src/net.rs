//! Address types: IPv4 prefixes (shared with the desired-state crate) and MAC addresses.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::Error;

/// IPv4 prefixes are the desired-state crate's, so both sides parse and print them alike.
pub use ovnkube_desired::net::Ipv4Cidr;

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
