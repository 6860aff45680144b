//! Remotes (`unix:PATH`, `tcp:IP:PORT`, `ssl:IP:PORT`) and opening byte streams to them.
//!
//! SSL follows OVS: the server certificate must chain to the configured CA, but its name is not
//! checked (OVS certificates usually carry no subjectAltName), and the client presents its own
//! certificate, as `ovn-nbctl -p KEY -c CERT -C CACERT` does.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

use crate::error::Error;

/// One server address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    Unix(PathBuf),
    Tcp(String),
    Ssl(String),
}

impl Remote {
    /// Parses `unix:PATH`, `tcp:IP:PORT` or `ssl:IP:PORT` (IPv6 as `[addr]:port`).
    pub fn parse(s: &str) -> Result<Remote, Error> {
        let bad = |reason: &str| Error::InvalidRemote {
            remote: s.to_owned(),
            reason: reason.to_owned(),
        };
        let (kind, rest) = s.split_once(':').ok_or_else(|| bad("no type prefix"))?;
        if rest.is_empty() {
            return Err(bad("empty address"));
        }
        match kind {
            "unix" => Ok(Remote::Unix(PathBuf::from(rest))),
            "tcp" | "ssl" => {
                let (host, port) = rest.rsplit_once(':').ok_or_else(|| bad("no port"))?;
                port.parse::<u16>().map_err(|_| bad("bad port"))?;
                let host = host.trim_start_matches('[').trim_end_matches(']');
                host.parse::<IpAddr>()
                    .map_err(|_| bad("host must be an IP address"))?;
                let addr = format!("{}:{port}", bracket(host));
                Ok(if kind == "tcp" {
                    Remote::Tcp(addr)
                } else {
                    Remote::Ssl(addr)
                })
            }
            _ => Err(bad("type must be unix, tcp or ssl")),
        }
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Remote::Unix(p) => write!(f, "unix:{}", p.display()),
            Remote::Tcp(a) => write!(f, "tcp:{a}"),
            Remote::Ssl(a) => write!(f, "ssl:{a}"),
        }
    }
}

/// The client's private key, certificate and the CA certificate (`-p`, `-c`, `-C`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub private_key: PathBuf,
    pub certificate: PathBuf,
    pub ca_cert: PathBuf,
}

/// A readable half of a connection.
pub type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
/// A writable half of a connection.
pub type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

fn tls_err(file: &Path, what: &str, e: impl fmt::Display) -> Error {
    Error::Tls(format!("{what} {}: {e}", file.display()))
}

/// Builds the rustls configuration from the PEM files.
pub fn tls_config(files: &TlsFiles) -> Result<Arc<rustls::ClientConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&files.ca_cert)
        .map_err(|e| tls_err(&files.ca_cert, "reading CA certificate", e))?
    {
        let cert = cert.map_err(|e| tls_err(&files.ca_cert, "parsing CA certificate", e))?;
        roots
            .add(cert)
            .map_err(|e| tls_err(&files.ca_cert, "adding CA certificate", e))?;
    }
    let chain = CertificateDer::pem_file_iter(&files.certificate)
        .map_err(|e| tls_err(&files.certificate, "reading certificate", e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err(&files.certificate, "parsing certificate", e))?;
    let key = PrivateKeyDer::from_pem_file(&files.private_key)
        .map_err(|e| tls_err(&files.private_key, "reading private key", e))?;
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| tls_err(&files.ca_cert, "using CA certificate", e))?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ChainOnlyVerifier(webpki)))
        .with_client_auth_cert(chain, key)
        .map_err(|e| tls_err(&files.certificate, "using certificate and key", e))?;
    Ok(Arc::new(config))
}

/// Verifies the server's chain against the CA and ignores the name, as OVS does.
#[derive(Debug)]
struct ChainOnlyVerifier(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Opens a stream to `remote`; `tls` is required for `ssl:` remotes.
pub async fn open(
    remote: &Remote,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<(BoxRead, BoxWrite), Error> {
    let fail = |reason: String| Error::Connect {
        remote: remote.to_string(),
        reason,
    };
    match remote {
        Remote::Unix(path) => {
            let s = UnixStream::connect(path)
                .await
                .map_err(|e| fail(e.to_string()))?;
            let (r, w) = s.into_split();
            Ok((Box::new(r), Box::new(w)))
        }
        Remote::Tcp(addr) => {
            let s = TcpStream::connect(addr)
                .await
                .map_err(|e| fail(e.to_string()))?;
            s.set_nodelay(true).map_err(|e| fail(e.to_string()))?;
            let (r, w) = s.into_split();
            Ok((Box::new(r), Box::new(w)))
        }
        Remote::Ssl(addr) => {
            let config = tls.ok_or_else(|| fail("ssl remote without TLS files".into()))?;
            let s = TcpStream::connect(addr)
                .await
                .map_err(|e| fail(e.to_string()))?;
            s.set_nodelay(true).map_err(|e| fail(e.to_string()))?;
            let host = addr
                .rsplit_once(':')
                .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
                .unwrap_or(addr);
            let ip: IpAddr = host.parse().map_err(|_| fail("bad IP".into()))?;
            let tls = tokio_rustls::TlsConnector::from(config.clone())
                .connect(ServerName::IpAddress(ip.into()), s)
                .await
                .map_err(|e| fail(format!("TLS handshake: {e}")))?;
            let (r, w) = tokio::io::split(tls);
            Ok((Box::new(r), Box::new(w)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_remotes() {
        assert_eq!(
            Remote::parse("unix:/run/ovn/ovnnb_db.sock").unwrap(),
            Remote::Unix("/run/ovn/ovnnb_db.sock".into())
        );
        assert_eq!(
            Remote::parse("tcp:127.0.0.1:6641").unwrap(),
            Remote::Tcp("127.0.0.1:6641".into())
        );
        assert_eq!(
            Remote::parse("ssl:[::1]:6641").unwrap().to_string(),
            "ssl:[::1]:6641"
        );
        for bad in [
            "",
            "unix:",
            "tcp:1.2.3.4",
            "tcp:host:1",
            "ptcp:6641",
            "ssl:1.2.3.4:x",
        ] {
            assert!(Remote::parse(bad).is_err(), "{bad}");
        }
    }
}
