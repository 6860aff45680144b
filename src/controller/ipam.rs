//! Address allocation compatible with upstream: node subnets from the cluster subnets, node ids
//! (and the join address `join base + id` derived from them), pod IPs from the node subnet.
//!
//! The allocators are pure state; the controller rebuilds them from annotations at start-up
//! (`reserve`) before it allocates anything, and persists every allocation in an annotation
//! before anything depends on it, so no address is ever handed out twice, across crashes too.
//! Allocation is next-fit (a cursor that moves past the last allocation) rather than lowest-free,
//! so an address just released is not reused at once while stale conntrack entries may remain.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ovnkube_desired::net::Ipv4Cidr;
use ovnkube_desired::ClusterSubnet;

/// Why an allocation or reservation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    #[error("{what} is exhausted")]
    Exhausted { what: String },
    #[error("{what} is already held by {holder}")]
    Conflict { what: String, holder: String },
    #[error("{what} is outside every pool")]
    OutOfRange { what: String },
}

/// Indices `lo..=hi`, each held by at most one owner and each owner holding at most one index.
#[derive(Debug, Clone)]
pub struct IndexPool<O> {
    lo: u32,
    hi: u32,
    by_index: BTreeMap<u32, O>,
    by_owner: BTreeMap<O, u32>,
    cursor: u32,
}

impl<O: Ord + Clone + std::fmt::Display> IndexPool<O> {
    /// A pool of `lo..=hi` (empty when `lo > hi`).
    pub fn new(lo: u32, hi: u32) -> Self {
        IndexPool {
            lo,
            hi,
            by_index: BTreeMap::new(),
            by_owner: BTreeMap::new(),
            cursor: lo,
        }
    }

    /// True when `i` belongs to the pool.
    pub fn contains(&self, i: u32) -> bool {
        (self.lo..=self.hi).contains(&i)
    }

    /// The index `owner` holds.
    pub fn get(&self, owner: &O) -> Option<u32> {
        self.by_owner.get(owner).copied()
    }

    /// Records that `owner` holds `i` (from persisted state). Idempotent for the same owner.
    pub fn reserve(&mut self, owner: &O, i: u32) -> Result<(), IpamError> {
        if !self.contains(i) {
            return Err(IpamError::OutOfRange {
                what: i.to_string(),
            });
        }
        match self.by_index.get(&i) {
            Some(h) if h == owner => return Ok(()),
            Some(h) => {
                return Err(IpamError::Conflict {
                    what: i.to_string(),
                    holder: h.to_string(),
                })
            }
            None => {}
        }
        if let Some(old) = self.by_owner.insert(owner.clone(), i) {
            self.by_index.remove(&old);
        }
        self.by_index.insert(i, owner.clone());
        Ok(())
    }

    /// The index `owner` holds, allocating the next free one if it holds none.
    pub fn allocate(&mut self, owner: &O) -> Option<u32> {
        if let Some(i) = self.get(owner) {
            return Some(i);
        }
        if self.lo > self.hi {
            return None;
        }
        let span = u64::from(self.hi - self.lo) + 1;
        let start = if self.contains(self.cursor) {
            self.cursor
        } else {
            self.lo
        };
        let found = (0..span)
            .map(|k| self.lo + ((u64::from(start - self.lo) + k) % span) as u32)
            .find(|i| !self.by_index.contains_key(i))?;
        self.by_index.insert(found, owner.clone());
        self.by_owner.insert(owner.clone(), found);
        self.cursor = if found == self.hi { self.lo } else { found + 1 };
        Some(found)
    }

    /// Frees what `owner` holds.
    pub fn release(&mut self, owner: &O) -> Option<u32> {
        let i = self.by_owner.remove(owner)?;
        self.by_index.remove(&i);
        Some(i)
    }

    /// Frees what every owner that `keep` rejects holds.
    pub fn retain(&mut self, keep: impl Fn(&O) -> bool) {
        let gone: Vec<O> = self.by_owner.keys().filter(|o| !keep(o)).cloned().collect();
        for owner in gone {
            self.release(&owner);
        }
    }
}

/// Node subnets carved out of the cluster subnets (`k8s.ovn.org/node-subnets`).
#[derive(Debug, Clone)]
pub struct NodeSubnets {
    pools: Vec<(ClusterSubnet, IndexPool<String>)>,
}

impl NodeSubnets {
    /// Allocators for each `--cluster-subnets` entry.
    pub fn new(cluster_subnets: &[ClusterSubnet]) -> Self {
        let pools = cluster_subnets
            .iter()
            .map(|c| {
                let bits = u32::from(c.host_prefix - c.cidr.len);
                let count = 1u64 << bits;
                (*c, IndexPool::new(0, (count - 1) as u32))
            })
            .collect();
        NodeSubnets { pools }
    }

    fn subnet(c: &ClusterSubnet, i: u32) -> Ipv4Cidr {
        let step = 1u32 << (32 - u32::from(c.host_prefix));
        Ipv4Cidr::new(c.cidr.nth(i * step), c.host_prefix)
    }

    /// Records a node's subnet read from its annotation.
    pub fn reserve(&mut self, node: &str, subnet: Ipv4Cidr) -> Result<(), IpamError> {
        let owner = node.to_owned();
        for (c, pool) in &mut self.pools {
            if subnet.len == c.host_prefix && c.cidr.contains(subnet.network()) {
                let offset = u32::from(subnet.network()) - u32::from(c.cidr.network());
                let i = offset >> (32 - u32::from(c.host_prefix));
                return pool.reserve(&owner, i).map_err(|e| match e {
                    IpamError::Conflict { holder, .. } => IpamError::Conflict {
                        what: format!("node subnet {subnet}"),
                        holder: format!("node {holder}"),
                    },
                    other => other,
                });
            }
        }
        Err(IpamError::OutOfRange {
            what: format!("node subnet {subnet}"),
        })
    }

    /// The node's subnet, allocating one from the first pool with room.
    pub fn allocate(&mut self, node: &str) -> Result<Ipv4Cidr, IpamError> {
        let owner = node.to_owned();
        for (c, pool) in &mut self.pools {
            if let Some(i) = pool.get(&owner) {
                return Ok(Self::subnet(c, i));
            }
        }
        for (c, pool) in &mut self.pools {
            if let Some(i) = pool.allocate(&owner) {
                return Ok(Self::subnet(c, i));
            }
        }
        Err(IpamError::Exhausted {
            what: "the cluster subnets".into(),
        })
    }

    /// Frees a deleted node's subnet.
    pub fn release(&mut self, node: &str) {
        for (_, pool) in &mut self.pools {
            pool.release(&node.to_owned());
        }
    }

    /// Frees the subnets of every node `keep` rejects.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        for (_, pool) in &mut self.pools {
            pool.retain(|n| keep(n));
        }
    }
}

/// Pod addresses of one node subnet: the network address, `.1` (gateway), `.2` (management
/// port) and the broadcast address are never handed out.
#[derive(Debug, Clone)]
pub struct PodAddresses {
    subnet: Ipv4Cidr,
    pool: IndexPool<String>,
}

impl PodAddresses {
    /// The allocator of a node subnet.
    pub fn new(subnet: Ipv4Cidr) -> Self {
        let size = 1u64 << (32 - u32::from(subnet.len));
        let hi = size.saturating_sub(2) as u32;
        PodAddresses {
            subnet: subnet.trunc(),
            pool: IndexPool::new(3, hi),
        }
    }

    /// The subnet addresses come from.
    pub fn subnet(&self) -> Ipv4Cidr {
        self.subnet
    }

    /// Records a pod's address from its `pod-networks` annotation. `pod` is `namespace/name`.
    pub fn reserve(&mut self, pod: &str, ip: Ipv4Addr) -> Result<(), IpamError> {
        if !self.subnet.contains(ip) {
            return Err(IpamError::OutOfRange {
                what: format!("{ip} (node subnet {})", self.subnet),
            });
        }
        let i = u32::from(ip) - u32::from(self.subnet.network());
        self.pool.reserve(&pod.to_owned(), i).map_err(|e| match e {
            IpamError::Conflict { holder, .. } => IpamError::Conflict {
                what: ip.to_string(),
                holder: format!("pod {holder}"),
            },
            IpamError::OutOfRange { .. } => IpamError::OutOfRange {
                what: format!("{ip} (reserved address of {})", self.subnet),
            },
            other => other,
        })
    }

    /// The pod's address, allocating one if it holds none.
    pub fn allocate(&mut self, pod: &str) -> Result<Ipv4Addr, IpamError> {
        self.pool
            .allocate(&pod.to_owned())
            .map(|i| self.subnet.nth(i))
            .ok_or_else(|| IpamError::Exhausted {
                what: format!("node subnet {}", self.subnet),
            })
    }

    /// Frees a pod's address.
    pub fn release(&mut self, pod: &str) -> Option<Ipv4Addr> {
        self.pool
            .release(&pod.to_owned())
            .map(|i| self.subnet.nth(i))
    }

    /// Frees the addresses of every pod `keep` rejects.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.pool.retain(|p| keep(p));
    }
}

/// Node ids (`k8s.ovn.org/node-id`): 0 and 1 are reserved upstream, the maximum is 5000; the
/// node's join address is the join subnet's base plus its id.
pub fn node_id_pool() -> IndexPool<String> {
    IndexPool::new(2, 5000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Ipv4Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn node_subnets_are_sequential_and_stable() {
        let mut a = NodeSubnets::new(&[ClusterSubnet::parse("10.42.0.0/16").unwrap()]);
        assert_eq!(a.allocate("n1").unwrap(), cidr("10.42.0.0/24"));
        assert_eq!(a.allocate("n2").unwrap(), cidr("10.42.1.0/24"));
        assert_eq!(a.allocate("n1").unwrap(), cidr("10.42.0.0/24"));
        a.release("n1");
        // Next-fit: the freed subnet is not handed out again at once.
        assert_eq!(a.allocate("n3").unwrap(), cidr("10.42.2.0/24"));
    }

    #[test]
    fn reserved_subnets_are_never_handed_out_twice() {
        let mut a = NodeSubnets::new(&[ClusterSubnet::parse("10.42.0.0/16").unwrap()]);
        a.reserve("old", cidr("10.42.0.0/24")).unwrap();
        assert_eq!(a.allocate("new").unwrap(), cidr("10.42.1.0/24"));
        let e = a.reserve("other", cidr("10.42.1.0/24")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "node subnet 10.42.1.0/24 is already held by node new"
        );
        assert!(matches!(
            a.reserve("x", cidr("10.99.0.0/24")),
            Err(IpamError::OutOfRange { .. })
        ));
    }

    #[test]
    fn small_cluster_subnet_exhausts_cleanly() {
        let mut a = NodeSubnets::new(&[ClusterSubnet::parse("10.42.0.0/23/24").unwrap()]);
        a.allocate("a").unwrap();
        a.allocate("b").unwrap();
        assert!(matches!(a.allocate("c"), Err(IpamError::Exhausted { .. })));
    }

    #[test]
    fn pod_addresses_skip_gateway_management_and_broadcast() {
        let mut p = PodAddresses::new(cidr("10.42.0.0/29"));
        let got: Vec<_> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| p.allocate(n).unwrap().to_string())
            .collect();
        assert_eq!(got, ["10.42.0.3", "10.42.0.4", "10.42.0.5", "10.42.0.6"]);
        assert!(matches!(p.allocate("e"), Err(IpamError::Exhausted { .. })));
        assert_eq!(p.release("b"), Some("10.42.0.4".parse().unwrap()));
        assert_eq!(p.allocate("e").unwrap().to_string(), "10.42.0.4");
        assert!(p.reserve("x", "10.42.0.2".parse().unwrap()).is_err());
        assert!(p.reserve("x", "10.42.1.9".parse().unwrap()).is_err());
    }

    #[test]
    fn pod_reservations_from_annotations_win() {
        let mut p = PodAddresses::new(cidr("10.42.0.0/24"));
        p.reserve("default/pod-1", "10.42.0.12".parse().unwrap())
            .unwrap();
        p.reserve("default/pod-1", "10.42.0.12".parse().unwrap())
            .unwrap();
        let e = p
            .reserve("default/pod-2", "10.42.0.12".parse().unwrap())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "10.42.0.12 is already held by pod default/pod-1"
        );
        assert_eq!(
            p.allocate("default/pod-1").unwrap().to_string(),
            "10.42.0.12"
        );
        // Reserved addresses are skipped; free ones below them are used.
        assert_eq!(
            p.allocate("default/pod-2").unwrap().to_string(),
            "10.42.0.3"
        );
    }

    #[test]
    fn node_ids_start_at_two() {
        let mut ids = node_id_pool();
        assert_eq!(ids.allocate(&"n1".to_string()), Some(2));
        assert_eq!(ids.allocate(&"n2".to_string()), Some(3));
        assert_eq!(ids.get(&"n1".to_string()), Some(2));
    }
}
