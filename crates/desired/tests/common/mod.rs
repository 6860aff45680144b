//! Loading the seed fixture for the desired-state tests.

use ovnkube_desired::{Config, GatewayMode, Snapshot};
use serde::Deserialize;

/// The seed cluster as parsed objects.
pub fn seed_snapshot() -> Snapshot {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/seed/cluster.yaml"
    );
    let text = std::fs::read_to_string(path).expect("fixture readable");
    let docs: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde_json::Value::deserialize(d).expect("valid YAML"))
        .collect();
    let (snapshot, _, errors) = Snapshot::from_objects(docs);
    assert!(errors.is_empty(), "{errors:?}");
    snapshot
}

/// MicroShift's configuration (local gateway, per-pod SNAT, multicast as its flags say).
pub fn microshift_config() -> Config {
    Config {
        gateway_mode: GatewayMode::Local,
        disable_snat_multiple_gws: true,
        enable_multicast: true,
        ..Config::default()
    }
}
