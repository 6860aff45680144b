//! deploy/microshift: the flags of the container's exec line and the ovnkube.conf of the
//! ConfigMap are exactly what the binary's ovnkube parser accepts, and they give the seed's rows.
//! (`render` shares the controller's parser; running the controller itself with `--init-node`
//! would configure the host it runs on, which a test must not do.)

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ovnkube-rs");
const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/microshift");
const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/seed/cluster.yaml");
const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/seed/render-nbctl.txt"
);

/// The arguments after `ovnkube-rs controller` in the container script, with the shell's
/// variables expanded as the pod would (node name, log level) and quotes removed.
fn manifest_args() -> Vec<String> {
    let text = std::fs::read_to_string(format!("{DIR}/ovnkube-master-container.yaml")).unwrap();
    let start = text
        .find("exec /usr/bin/ovnkube-rs controller")
        .expect("exec line");
    let mut line = String::new();
    for l in text[start..].lines() {
        let l = l.trim();
        line.push_str(l.trim_end_matches('\\'));
        line.push(' ');
        if !l.ends_with('\\') {
            break;
        }
    }
    line.trim_start_matches("exec /usr/bin/ovnkube-rs controller")
        .replace("\"${K8S_NODE}\"", "microshift-dev")
        .replace("\"${OVN_KUBE_LOG_LEVEL:-4}\"", "4")
        .replace("\"\"", "''")
        .split_whitespace()
        .map(|w| {
            if w == "''" {
                String::new()
            } else {
                w.to_owned()
            }
        })
        .collect()
}

/// The ovnkube.conf of the ConfigMap.
fn config_file() -> String {
    let text = std::fs::read_to_string(format!("{DIR}/configmap.yaml")).unwrap();
    let v: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    v["data"]["ovnkube.conf"].as_str().unwrap().to_owned()
}

#[test]
fn the_manifest_flags_and_config_render_the_seed() {
    let dir = std::env::temp_dir().join(format!("ovnkube-rs-deploy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("ovnkube.conf");
    std::fs::write(&conf, config_file()).unwrap();
    let args: Vec<String> = manifest_args()
        .into_iter()
        .map(|a| a.replace("/run/ovnkube-config/ovnkube.conf", conf.to_str().unwrap()))
        .collect();
    assert!(args.contains(&"--init-node".to_owned()), "{args:?}");
    assert!(
        args.iter().any(|a| a.starts_with("--config-file=")),
        "{args:?}"
    );
    let out = Command::new(BIN)
        .args(["render", "-f", SEED])
        .args(&args)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("unknown flag"), "{stderr}");
    let golden = std::fs::read_to_string(GOLDEN).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), golden);
}
