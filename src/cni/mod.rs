//! `ovnkube-rs cni`: the CNI plugin process. Environment and stdin in, result or CNI error JSON
//! out on stdout; the exit status is non-zero on error. Never panics on bad input.

use std::collections::BTreeMap;
use std::io::Read;

use ovnkube_hostnet::cni::{self, CniError, ERR_IO};

/// Runs one CNI invocation and returns the process exit code.
pub fn run() -> i32 {
    let env: BTreeMap<String, String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("CNI_"))
        .collect();
    let mut stdin = String::new();
    let outcome = match std::io::stdin().read_to_string(&mut stdin) {
        Ok(_) => cni::run(&env, &stdin, None),
        Err(e) => Err(CniError::new(
            ERR_IO,
            "cannot read the network config from stdin",
            e.to_string(),
        )),
    };
    match outcome {
        Ok(out) => {
            if !out.is_empty() {
                println!("{out}");
            }
            0
        }
        Err(e) => {
            // Answer in the version the runtime asked for, when the config says it.
            let version = serde_json::from_str::<serde_json::Value>(&stdin)
                .ok()
                .and_then(|v| v["cniVersion"].as_str().map(String::from))
                .unwrap_or_else(|| "1.0.0".to_string());
            println!("{}", e.to_json(&version));
            1
        }
    }
}
