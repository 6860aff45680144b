//! ovnkube's command-line flags and `ovnkube.conf`, as MicroShift passes them, into a
//! [`Config`] plus the database addresses.
//!
//! Flags use Go's syntax (`-flag`, `--flag`, `--flag=value`, `--flag value`); a flag of the
//! config file is overridden by the same flag on the command line. Valid ovnkube flags that
//! change nothing here are accepted with a warning; anything else is an error.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use ovnkube_desired::{ClusterSubnet, Config, GatewayMode};
use ovsdb::TlsFiles;

/// The configuration and NB/SB addresses from ovnkube flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OvnkubeConfig {
    /// What changes the rows.
    pub config: Config,
    /// NB remotes (`--nb-address`, comma-separated; empty means the MicroShift unix socket).
    pub nb_address: Vec<String>,
    /// SB remotes (`--sb-address`).
    pub sb_address: Vec<String>,
    /// Client key, certificate and CA for `ssl:` NB remotes (`--nb-client-privkey` ...).
    pub nb_tls: Option<TlsFiles>,
    /// Client key, certificate and CA for `ssl:` SB remotes (`--sb-client-privkey` ...).
    pub sb_tls: Option<TlsFiles>,
}

/// The three TLS file flags of one database, as given.
#[derive(Debug, Default)]
struct TlsFlags {
    private_key: Option<PathBuf>,
    certificate: Option<PathBuf>,
    ca_cert: Option<PathBuf>,
}

impl TlsFlags {
    /// All three files, none, or an error naming the missing ones.
    fn build(self, db: &str) -> anyhow::Result<Option<TlsFiles>> {
        match (self.private_key, self.certificate, self.ca_cert) {
            (None, None, None) => Ok(None),
            (Some(private_key), Some(certificate), Some(ca_cert)) => Ok(Some(TlsFiles {
                private_key,
                certificate,
                ca_cert,
            })),
            _ => bail!(
                "--{db}-client-privkey, --{db}-client-cert and --{db}-client-cacert go together"
            ),
        }
    }
}

/// The unix sockets ovnkube uses when the addresses are empty (MicroShift passes `""`).
const DEFAULT_NB: &str = "unix:/var/run/ovn/ovnnb_db.sock";
const DEFAULT_SB: &str = "unix:/var/run/ovn/ovnsb_db.sock";

/// Valid ovnkube flags without effect on the NB rows: (name, takes a value).
const IGNORED: &[(&str, bool)] = &[
    ("init-master", true),
    ("init-node", true),
    ("init-cluster-manager", true),
    ("init-ovnkube-controller", true),
    ("loglevel", true),
    ("logfile", true),
    ("logfile-maxsize", true),
    ("logfile-maxbackups", true),
    ("logfile-maxage", true),
    ("inactivity-probe", true),
    ("single-node", false),
    ("allow-no-uplink", false),
    ("encap-type", true),
    ("encap-ip", true),
    ("encap-port", true),
    ("nodeport", false),
    ("gateway-nexthop", true),
    ("exgw-interface", true),
    ("k8s-kubeconfig", true),
    ("k8s-apiserver", true),
    ("k8s-token", true),
    ("k8s-cacert", true),
    ("ovn-config-namespace", true),
    ("host-network-namespace", true),
    ("platform-type", true),
    ("metrics-bind-address", true),
    ("ovn-metrics-bind-address", true),
    ("metrics-enable-pprof", false),
    ("enable-egress-ip", false),
    ("enable-egress-firewall", false),
    ("enable-egress-qos", false),
    ("enable-lflow-cache", false),
    ("lflow-cache-limit-kb", true),
];

fn parse_bool(name: &str, v: &str) -> anyhow::Result<bool> {
    match v {
        "true" | "1" | "t" | "T" | "TRUE" | "True" => Ok(true),
        "false" | "0" | "f" | "F" | "FALSE" | "False" => Ok(false),
        _ => bail!("--{name}: {v:?} is not a boolean"),
    }
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// What the flags and the config file set, before validation of the TLS triples.
struct Settings {
    c: OvnkubeConfig,
    nb_tls: TlsFlags,
    sb_tls: TlsFlags,
}

/// Applies one recognised setting; returns false when `name` is not a setting of ours.
fn apply(settings: &mut Settings, name: &str, value: &str) -> anyhow::Result<bool> {
    let c = &mut settings.c;
    let path = || Some(PathBuf::from(value));
    match name {
        "nb-client-privkey" => settings.nb_tls.private_key = path(),
        "nb-client-cert" => settings.nb_tls.certificate = path(),
        "nb-client-cacert" => settings.nb_tls.ca_cert = path(),
        "sb-client-privkey" => settings.sb_tls.private_key = path(),
        "sb-client-cert" => settings.sb_tls.certificate = path(),
        "sb-client-cacert" => settings.sb_tls.ca_cert = path(),
        "cluster-subnets" => {
            c.config.cluster_subnets = split_list(value)
                .iter()
                .map(|s| {
                    ClusterSubnet::parse(s).with_context(|| {
                        format!("--cluster-subnets: {s:?} is not an IPv4 CIDR[/hostprefix]")
                    })
                })
                .collect::<anyhow::Result<_>>()?;
            if c.config.cluster_subnets.is_empty() {
                bail!("--cluster-subnets is empty");
            }
        }
        "k8s-service-cidr" | "k8s-service-cidrs" | "service-cidrs" | "service-cidr" => {
            c.config.service_cidrs = split_list(value)
                .iter()
                .map(|s| {
                    s.parse()
                        .with_context(|| format!("--{name}: {s:?} is not an IPv4 CIDR"))
                })
                .collect::<anyhow::Result<_>>()?;
        }
        "gateway-mode" | "mode" => {
            c.config.gateway_mode = GatewayMode::parse(value).with_context(|| {
                format!("--gateway-mode: {value:?} is neither local nor shared")
            })?;
        }
        "gateway-interface" | "interface" => c.config.gateway_interface = value.to_owned(),
        "gateway-v4-join-subnet" | "v4-join-subnet" => {
            c.config.join_subnet = value
                .parse()
                .with_context(|| format!("--{name}: {value:?} is not an IPv4 CIDR"))?;
        }
        "gateway-v4-masquerade-subnet" | "v4-masquerade-subnet" => {
            c.config.masquerade_subnet = value
                .parse()
                .with_context(|| format!("--{name}: {value:?} is not an IPv4 CIDR"))?;
        }
        "mtu" => {
            c.config.mtu = value
                .parse()
                .with_context(|| format!("--mtu: {value:?} is not a number"))?
        }
        "acl-logging-rate-limit" => {
            c.config.acl_logging_rate_limit = value
                .parse()
                .with_context(|| format!("--{name}: {value:?} is not a number"))?
        }
        "disable-snat-multiple-gws" => {
            c.config.disable_snat_multiple_gws = parse_bool(name, value)?
        }
        "enable-multicast" => c.config.enable_multicast = parse_bool(name, value)?,
        "nb-address" => c.nb_address = split_list(value),
        "sb-address" => c.sb_address = split_list(value),
        _ => return Ok(false),
    }
    Ok(true)
}

/// Flags that are booleans (given alone they mean true).
fn is_bool(name: &str) -> bool {
    matches!(name, "disable-snat-multiple-gws" | "enable-multicast")
        || IGNORED.iter().any(|(n, v)| *n == name && !v)
}

/// The result of [`parse`].
#[derive(Debug)]
pub struct Parsed {
    /// The ovnkube configuration.
    pub ovnkube: OvnkubeConfig,
    /// The caller's own options, as (name, value).
    pub own: Vec<(String, String)>,
    /// One line per accepted-but-ignored flag or config key.
    pub warnings: Vec<String>,
}

/// Parses ovnkube flags. `own` lists the caller's own value-taking options (e.g. `f`, `format`),
/// returned as (name, value) pairs. Warnings name every accepted-but-ignored flag.
pub fn parse(args: &[String], own: &[&str]) -> anyhow::Result<Parsed> {
    let mut settings = Settings {
        c: OvnkubeConfig {
            config: Config::default(),
            nb_address: Vec::new(),
            sb_address: Vec::new(),
            nb_tls: None,
            sb_tls: None,
        },
        nb_tls: TlsFlags::default(),
        sb_tls: TlsFlags::default(),
    };
    let mut flags = Vec::new();
    let mut own_values = Vec::new();
    let mut warnings = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let Some(body) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            bail!("unexpected argument {arg:?}");
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (body.to_owned(), None),
        };
        let value = match inline {
            Some(v) => v,
            None if is_bool(&name) => "true".into(),
            None => it
                .next()
                .cloned()
                .with_context(|| format!("--{name} needs a value"))?,
        };
        if own.contains(&name.as_str()) {
            own_values.push((name, value));
        } else {
            flags.push((name, value));
        }
    }
    // The config file first, so that flags override it (own options: the last value wins).
    if let Some((_, path)) = flags.iter().find(|(n, _)| n == "config-file") {
        let file = apply_config_file(&mut settings, Path::new(path), own)?;
        warnings.extend(file.warnings);
        own_values.splice(0..0, file.own);
    }
    for (name, value) in flags.iter().filter(|(n, _)| n != "config-file") {
        if apply(&mut settings, name, value)? {
            continue;
        }
        if IGNORED.iter().any(|(n, _)| n == name) {
            warnings.push(format!("flag --{name} is accepted but has no effect here"));
        } else {
            bail!("unknown flag --{name}");
        }
    }
    let mut c = settings.c;
    c.nb_tls = settings.nb_tls.build("nb")?;
    c.sb_tls = settings.sb_tls.build("sb")?;
    if c.nb_address.is_empty() {
        c.nb_address = vec![DEFAULT_NB.into()];
    }
    if c.sb_address.is_empty() {
        c.sb_address = vec![DEFAULT_SB.into()];
    }
    Ok(Parsed {
        ovnkube: c,
        own: own_values,
        warnings,
    })
}

/// What `ovnkube.conf` gave besides the settings it applied.
#[derive(Default)]
struct FileValues {
    /// Values of the caller's own options (e.g. `[kubernetes] kubeconfig` → `k8s-kubeconfig`).
    own: Vec<(String, String)>,
    /// One line per key without effect here.
    warnings: Vec<String>,
}

/// The caller option a process-level `ovnkube.conf` key stands for.
fn own_option_of(section: &str, key: &str) -> Option<&'static str> {
    Some(match (section, key) {
        ("kubernetes", "kubeconfig") => "k8s-kubeconfig",
        ("kubernetes", "apiserver") => "k8s-apiserver",
        ("kubernetes", "ovn-config-namespace") => "ovn-config-namespace",
        ("cni", "conf-dir") => "cni-conf-dir",
        ("masterha", "election-lease-duration") => "lease-duration-seconds",
        ("masterha", "election-retry-period") => "lease-retry-seconds",
        _ => return None,
    })
}

/// Reads `ovnkube.conf` (ini: `[section]`, `key=value`, optional quotes, `;`/`#` comments).
fn apply_config_file(c: &mut Settings, path: &Path, own: &[&str]) -> anyhow::Result<FileValues> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    apply_ini(c, &text, own).with_context(|| format!("config file {}", path.display()))
}

fn apply_ini(c: &mut Settings, text: &str, own: &[&str]) -> anyhow::Result<FileValues> {
    let mut file = FileValues::default();
    let warnings = &mut file.warnings;
    let mut section = String::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.trim().to_lowercase();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .with_context(|| format!("line {}: {line:?} is not key=value", i + 1))?;
        let (key, value) = (key.trim(), value.trim().trim_matches('"'));
        if let Some(option) = own_option_of(&section, key).filter(|o| own.contains(o)) {
            file.own.push((option.to_owned(), value.to_owned()));
            continue;
        }
        // Keys are namespaced by section in ovnkube; map the ones that change rows.
        let name = match (section.as_str(), key) {
            ("default", "mtu") | ("default", "cluster-subnets") => key.to_owned(),
            ("kubernetes", "service-cidrs") | ("kubernetes", "service-cidr") => key.to_owned(),
            ("gateway", "mode") | ("gateway", "interface") => key.to_owned(),
            ("gateway", "v4-join-subnet") | ("gateway", "v4-masquerade-subnet") => key.to_owned(),
            ("gateway", "disable-snat-multiple-gws") => key.to_owned(),
            ("logging", "acl-logging-rate-limit") => key.to_owned(),
            (
                "ovnnorth" | "ovnsouth",
                "address" | "client-privkey" | "client-cert" | "client-cacert",
            ) => {
                format!("{}-{key}", if section == "ovnnorth" { "nb" } else { "sb" })
            }
            _ => {
                warnings.push(format!(
                    "config [{section}] {key} is accepted but has no effect here"
                ));
                continue;
            }
        };
        apply(c, &name, value)?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn microshift_command_line() {
        let a = args(
            "--init-master microshift-dev --init-node microshift-dev --loglevel 4 --gateway-mode local \
             --gateway-interface br-ex --inactivity-probe=180000 --nb-address= --sb-address= \
             --enable-multicast --disable-snat-multiple-gws --single-node --acl-logging-rate-limit 20 -f x.yaml",
        );
        let Parsed {
            ovnkube: c,
            own,
            warnings,
        } = parse(&a, &["f"]).unwrap();
        assert_eq!(own, [("f".to_owned(), "x.yaml".to_owned())]);
        assert!(c.config.enable_multicast && c.config.disable_snat_multiple_gws);
        assert_eq!(c.config.gateway_mode, GatewayMode::Local);
        assert_eq!(c.nb_address, [DEFAULT_NB]);
        assert_eq!(warnings.len(), 5, "{warnings:?}");
        assert_eq!(c.config.acl_logging_rate_limit, 20);
        assert!(warnings[0].contains("--init-master"));
    }

    #[test]
    fn unknown_and_malformed_flags_are_errors() {
        assert!(parse(&args("--no-such-flag 1"), &[])
            .unwrap_err()
            .to_string()
            .contains("unknown flag --no-such-flag"));
        assert!(parse(&args("--gateway-mode weird"), &[]).is_err());
        assert!(parse(&args("--cluster-subnets 10.42.0.0"), &[]).is_err());
        assert!(parse(&args("--mtu"), &[]).is_err());
        assert!(parse(&args("stray"), &[]).is_err());
    }

    #[test]
    fn tls_files_come_in_threes() {
        let c = parse(
            &args("--nb-client-privkey k.pem --nb-client-cert c.pem --nb-client-cacert ca.pem"),
            &[],
        )
        .unwrap()
        .ovnkube;
        let tls = c.nb_tls.unwrap();
        assert_eq!(tls.ca_cert, PathBuf::from("ca.pem"));
        assert!(c.sb_tls.is_none());
        let e = parse(&args("--sb-client-privkey k.pem"), &[]).unwrap_err();
        assert!(
            e.to_string().contains("--sb-client-cacert go together"),
            "{e}"
        );
    }

    #[test]
    fn config_file_then_flags() {
        let mut settings = Settings {
            c: parse(&[], &[]).unwrap().ovnkube,
            nb_tls: TlsFlags::default(),
            sb_tls: TlsFlags::default(),
        };
        let w = apply_ini(
            &mut settings,
            "[default]\nmtu=\"1400\"\ncluster-subnets=10.128.0.0/14/23\nencap-port=\"6081\"\n\
             [kubernetes]\nservice-cidrs=172.30.0.0/16\n[gateway]\nmode=shared\nnodeport=true\n\
             [ovnnorth]\naddress=ssl:127.0.0.1:6641\n",
            &[],
        )
        .unwrap();
        let c = settings.c;
        assert_eq!(c.nb_address, ["ssl:127.0.0.1:6641"]);
        assert_eq!(c.config.cluster_subnets[0].host_prefix, 23);
        assert_eq!(c.config.service_cidrs[0].to_string(), "172.30.0.0/16");
        assert_eq!(c.config.gateway_mode, GatewayMode::Shared);
        assert_eq!(w.warnings.len(), 2);
        let dir = std::env::temp_dir().join(format!("ovnkube-flags-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ovnkube.conf");
        std::fs::write(
            &path,
            "[gateway]\nmode=shared\n[kubernetes]\nkubeconfig=/var/lib/k/kubeconfig\n\
             [masterha]\nelection-lease-duration=137\nelection-retry-period=26\n",
        )
        .unwrap();
        let a = vec![
            "--config-file".into(),
            path.display().to_string(),
            "--gateway-mode=local".into(),
        ];
        let c = parse(&a, &[]).unwrap().ovnkube;
        assert_eq!(
            c.config.gateway_mode,
            GatewayMode::Local,
            "flags override the file"
        );
        // Process options come from the file for callers that take them; a flag still wins.
        let own = [
            "k8s-kubeconfig",
            "lease-duration-seconds",
            "lease-retry-seconds",
        ];
        let mut with_flag = a.clone();
        with_flag.push("--k8s-kubeconfig=/flag/kubeconfig".into());
        let p = parse(&with_flag, &own).unwrap();
        let last = |name: &str| {
            p.own
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(last("k8s-kubeconfig"), Some("/flag/kubeconfig"));
        assert_eq!(last("lease-duration-seconds"), Some("137"));
        assert_eq!(last("lease-retry-seconds"), Some("26"));
        let p = parse(&a, &own).unwrap();
        assert_eq!(
            p.own[0],
            (
                "k8s-kubeconfig".to_owned(),
                "/var/lib/k/kubeconfig".to_owned()
            )
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
