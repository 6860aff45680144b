//! `ovnkube-rs cni`: the CNI plugin process. Environment and stdin in, result or CNI error JSON
//! out on stdout; the exit status is non-zero on error. Never panics on bad input.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use k8s_openapi::api::core::v1::Pod;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use ovnkube_desired::annotations::POD_NETWORKS;
use ovnkube_hostnet::cni::{self, CniArgs, CniError, PodAnnotation, ERR_HOST, ERR_IO};
use tokio::runtime::Runtime;

/// Reads pods through the API; the client is built on first use and reused while polling.
struct PodReader {
    client: OnceCell<(Runtime, Client)>,
}

impl PodReader {
    fn client(&self, kubeconfig: &Path) -> Result<&(Runtime, Client), CniError> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let fail = |e: String| {
            CniError::new(
                ERR_HOST,
                format!("cannot reach the API with {}", kubeconfig.display()),
                e,
            )
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let kc = Kubeconfig::read_from(kubeconfig).map_err(|e| fail(e.to_string()))?;
        let client = rt
            .block_on(async {
                let cfg =
                    kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
                anyhow::Ok(Client::try_from(cfg)?)
            })
            .map_err(|e| fail(e.to_string()))?;
        Ok(self.client.get_or_init(|| (rt, client)))
    }

    fn read(&self, kubeconfig: &Path, pod: &CniArgs) -> Result<PodAnnotation, CniError> {
        let (rt, client) = self.client(kubeconfig)?;
        let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
        let found = rt.block_on(api.get(&pod.name)).map_err(|e| {
            CniError::new(
                ERR_HOST,
                format!("cannot get pod {}/{}", pod.namespace, pod.name),
                e.to_string(),
            )
        })?;
        Ok(PodAnnotation {
            uid: found.metadata.uid.unwrap_or_default(),
            value: found
                .metadata
                .annotations
                .and_then(|mut a| a.remove(POD_NETWORKS)),
        })
    }
}

/// Runs one CNI invocation and returns the process exit code.
pub fn run() -> i32 {
    let env: BTreeMap<String, String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("CNI_"))
        .collect();
    let mut stdin = String::new();
    let reader = PodReader {
        client: OnceCell::new(),
    };
    let outcome = match std::io::stdin().read_to_string(&mut stdin) {
        Ok(_) => cni::run(&env, &stdin, None, &|k: &Path, p: &CniArgs| {
            reader.read(k, p)
        }),
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
