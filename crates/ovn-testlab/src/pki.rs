//! Test certificates made with the `openssl` CLI: one CA, a server and a client certificate.

use std::io;
use std::path::PathBuf;

use crate::{Lab, SslFiles};

/// A CA and the server/client key pairs it signed, as PEM files under the lab directory.
#[derive(Debug, Clone)]
pub struct Pki {
    /// Files for `ovsdb-server --private-key/--certificate/--ca-cert`.
    pub server: SslFiles,
    /// Files for a client (`-p/-c/-C`).
    pub client: SslFiles,
}

impl Pki {
    pub(crate) fn generate(lab: &Lab) -> io::Result<Pki> {
        let dir = lab.path().join("pki");
        std::fs::create_dir_all(&dir)?;
        let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
        lab.run(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "3650",
                "-subj",
                "/CN=ovn-testlab CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout",
                &p("ca.key"),
                "-out",
                &p("ca.pem"),
            ],
        )?;
        // webpki insists on v3 leaf certificates with a subjectAltName.
        std::fs::write(
            dir.join("leaf.ext"),
            "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n\
             extendedKeyUsage=serverAuth,clientAuth\n",
        )?;
        let leaf = |name: &str| -> io::Result<SslFiles> {
            lab.run(
                "openssl",
                &[
                    "req",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-subj",
                    &format!("/CN={name}"),
                    "-keyout",
                    &p(&format!("{name}.key")),
                    "-out",
                    &p(&format!("{name}.csr")),
                ],
            )?;
            lab.run(
                "openssl",
                &[
                    "x509",
                    "-req",
                    "-days",
                    "3650",
                    "-in",
                    &p(&format!("{name}.csr")),
                    "-CA",
                    &p("ca.pem"),
                    "-CAkey",
                    &p("ca.key"),
                    "-CAcreateserial",
                    "-extfile",
                    &p("leaf.ext"),
                    "-out",
                    &p(&format!("{name}.pem")),
                ],
            )?;
            Ok(SslFiles {
                private_key: PathBuf::from(p(&format!("{name}.key"))),
                certificate: PathBuf::from(p(&format!("{name}.pem"))),
                ca_cert: PathBuf::from(p("ca.pem")),
            })
        };
        Ok(Pki {
            server: leaf("server")?,
            client: leaf("client")?,
        })
    }
}
