//! Scale figures of the pure layers on a generated cluster: desired-state computation, the
//! first diff against an empty NB, the diff of a converged NB (must be empty), and a per-key
//! diff of one pod (which pays for the ownership inventory of the whole replica).
//!
//! `cargo bench -p ovnkube-reconcile --bench diff_scale [-- NODES PODS_PER_NODE SERVICES]`

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeSet;
use std::time::Instant;

use ovnkube_desired::{desired_cluster, Desired, OwnerKey};
use ovnkube_reconcile::{diff, Scope};

/// The fastest of five runs, in milliseconds (the machine is shared: the minimum is the figure).
fn best<T>(mut f: impl FnMut() -> T) -> (T, f64) {
    let mut out = None;
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
        out = Some(v);
    }
    (out.expect("ran"), best)
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (nodes, pods, services) = match args.as_slice() {
        [n, p, s] => (*n, *p, *s),
        _ => (1, 250, 1000),
    };
    let snapshot = common::generated_snapshot(nodes, pods, services);
    let config = common::microshift_config();

    let ((desired, errors), t_desired) = best(|| desired_cluster(&config, &snapshot));
    assert!(errors.is_empty(), "{errors:?}");

    let mut replica = common::nb_replica();
    let (first, t_first) = best(|| diff(&desired, &replica, &Scope::Full));
    common::apply(&mut replica, &first.ops);

    let (converged, t_converged) = best(|| diff(&desired, &replica, &Scope::Full));
    assert_eq!(converged.write_count(), 0);

    let key = OwnerKey::Pod("bench".into(), "pod-0-0".into());
    let one = Desired {
        rows: desired
            .rows
            .iter()
            .filter(|(_, r)| r.owner == key)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        links: desired
            .links
            .iter()
            .filter(|l| l.owner == key)
            .cloned()
            .collect(),
    };
    let scope = Scope::Keys(BTreeSet::from([key]));
    let (per_key, t_key) = best(|| diff(&one, &replica, &scope));
    assert_eq!(per_key.write_count(), 0);

    println!(
        "nodes={nodes} pods/node={pods} services={services}: rows={} links={} | desired {t_desired:.1} ms | \
         first diff {t_first:.1} ms ({} ops, {} writes) | converged diff {t_converged:.1} ms (0 ops) | \
         one-pod diff {t_key:.2} ms",
        desired.rows.len(),
        desired.links.len(),
        first.ops.len(),
        first.write_count(),
    );
}
