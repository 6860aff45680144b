//! The seed fixture for the desired-state tests.

use ovnkube_desired::{Config, Snapshot};

/// The seed cluster as parsed objects.
pub fn seed_snapshot() -> Snapshot {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/seed/cluster.yaml"
    );
    let text = std::fs::read_to_string(path).expect("fixture readable");
    let (snapshot, _, errors) = Snapshot::from_yaml(&text).expect("valid YAML");
    assert!(errors.is_empty(), "{errors:?}");
    snapshot
}

/// MicroShift's configuration.
pub fn microshift_config() -> Config {
    Config::microshift()
}
