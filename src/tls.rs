//! TLS material for both ends, read from PEM files, for rustls. The server
//! serves a certificate and may require client certificates (mutual TLS),
//! offering HTTP/2 and HTTP/1.1 in ALPN; the client checks the server
//! against a CA file or the system roots, and may present a certificate of
//! its own (rustls's settings for the connections it secures itself, or
//! tonic's for a tonic channel).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// A TLS file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file cannot be read.
    #[error("cannot read {flag} {}: {err}", path.display())]
    Read {
        /// The flag that named the file.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        err: std::io::Error,
    },
    /// The file holds no PEM block of the expected kind.
    #[error("{flag} {} holds no PEM {kind}", path.display())]
    NotPem {
        /// The flag that named the file.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// What was expected in it.
        kind: &'static str,
    },
    /// The files read, but rustls cannot serve with them (a key that does
    /// not match its certificate, a malformed certificate).
    #[error("cannot use the TLS files: {0}")]
    Unusable(String),
}

fn read_pem(flag: &'static str, path: &Path, kind: &'static str) -> Result<Vec<u8>, Error> {
    let pem = std::fs::read(path).map_err(|err| Error::Read { flag, path: path.to_owned(), err })?;
    // "-----BEGIN CERTIFICATE-----", "-----BEGIN PRIVATE KEY-----", "-----BEGIN EC PRIVATE KEY-----", ...
    let marker = if kind == "private key" { "PRIVATE KEY-----" } else { "CERTIFICATE-----" };
    let text = String::from_utf8_lossy(&pem);
    if !text.lines().any(|line| line.starts_with("-----BEGIN ") && line.ends_with(marker)) {
        return Err(Error::NotPem { flag, path: path.to_owned(), kind });
    }
    Ok(pem)
}

/// The server's TLS settings: its identity and, for mutual TLS, the CA that
/// client certificates must chain to.
#[derive(Debug, Clone)]
pub struct ServerTls {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

impl ServerTls {
    /// Reads `--tls-cert`, `--tls-key` and, when given, `--client-ca`.
    ///
    /// # Errors
    /// When a file cannot be read or holds no PEM block of its kind.
    pub fn load(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<Self, Error> {
        Ok(Self {
            cert: read_pem("--tls-cert", cert, "certificate")?,
            key: read_pem("--tls-key", key, "private key")?,
            client_ca: client_ca.map(|ca| read_pem("--client-ca", ca, "certificate")).transpose()?,
        })
    }

    /// From PEM held in memory (tests make theirs at run time).
    #[must_use]
    pub fn from_pem(cert: Vec<u8>, key: Vec<u8>, client_ca: Option<Vec<u8>>) -> Self {
        Self { cert, key, client_ca }
    }

    /// The rustls server configuration: HTTP/2 and HTTP/1.1 in ALPN (gRPC
    /// takes the first; gRPC-Web and Connect either); with a client CA, a
    /// client without a valid certificate is refused in the handshake.
    ///
    /// # Errors
    /// [`Error::Unusable`] when the PEM blocks are not a certificate chain
    /// and its key, or the CA holds no usable certificate.
    pub fn config(&self) -> Result<Arc<rustls::ServerConfig>, Error> {
        let unusable = |what: &str, err: &dyn std::fmt::Display| Error::Unusable(format!("{what}: {err}"));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|err| unusable("TLS versions", &err))?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(ca) {
                    roots
                        .add(cert.map_err(|err| unusable("--client-ca", &err))?)
                        .map_err(|err| unusable("--client-ca", &err))?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|err| unusable("--client-ca", &err))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let chain = CertificateDer::pem_slice_iter(&self.cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| unusable("--tls-cert", &err))?;
        let key = PrivateKeyDer::from_pem_slice(&self.key).map_err(|err| unusable("--tls-key", &err))?;
        let mut config =
            builder.with_single_cert(chain, key).map_err(|err| unusable("--tls-cert and --tls-key", &err))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// The client's TLS settings for `https://` targets.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    ca: Option<Vec<u8>>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl ClientTls {
    /// Reads `--ca` (else the system roots are used) and, for mutual TLS,
    /// `--cert` with `--key`.
    ///
    /// # Errors
    /// When a file cannot be read or holds no PEM block of its kind.
    pub fn load(ca: Option<&Path>, cert: Option<&Path>, key: Option<&Path>) -> Result<Self, Error> {
        let identity = match (cert, key) {
            (Some(cert), Some(key)) => {
                Some((read_pem("--cert", cert, "certificate")?, read_pem("--key", key, "private key")?))
            }
            _ => None,
        };
        Ok(Self { ca: ca.map(|ca| read_pem("--ca", ca, "certificate")).transpose()?, identity })
    }

    /// From PEM held in memory.
    #[must_use]
    pub fn from_pem(ca: Option<Vec<u8>>, identity: Option<(Vec<u8>, Vec<u8>)>) -> Self {
        Self { ca, identity }
    }

    /// A rustls client configuration offering `alpn`, for a connection
    /// made without tonic (the interop client's bare HTTP/2 calls): the
    /// CA, else the system roots, and the client's certificate if any.
    ///
    /// # Errors
    /// [`Error::Unusable`] when the PEM blocks are not certificates, or
    /// the client's certificate and key do not go together.
    pub fn rustls_config(&self, alpn: Vec<Vec<u8>>) -> Result<Arc<rustls::ClientConfig>, Error> {
        let unusable = |what: &str, err: &dyn std::fmt::Display| Error::Unusable(format!("{what}: {err}"));
        let mut roots = RootCertStore::empty();
        match &self.ca {
            Some(ca) => {
                for cert in CertificateDer::pem_slice_iter(ca) {
                    roots.add(cert.map_err(|err| unusable("--ca", &err))?).map_err(|err| unusable("--ca", &err))?;
                }
            }
            None => {
                let native = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(native.certs);
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| unusable("TLS versions", &err))?
            .with_root_certificates(roots);
        let mut config = match &self.identity {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = CertificateDer::pem_slice_iter(cert)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|err| unusable("--cert", &err))?;
                let key = PrivateKeyDer::from_pem_slice(key).map_err(|err| unusable("--key", &err))?;
                builder.with_client_auth_cert(chain, key).map_err(|err| unusable("--cert and --key", &err))?
            }
        };
        config.alpn_protocols = alpn;
        Ok(Arc::new(config))
    }

    /// tonic's client configuration for a server named `domain`.
    #[must_use]
    pub fn config(&self, domain: &str) -> ClientTlsConfig {
        let mut config = ClientTlsConfig::new().domain_name(domain);
        config = match &self.ca {
            Some(ca) => config.ca_certificate(Certificate::from_pem(ca)),
            None => config.with_native_roots(),
        };
        match &self.identity {
            Some((cert, key)) => config.identity(Identity::from_pem(cert, key)),
            None => config,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_pem_is_named() {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        std::io::Write::write_all(&mut file, b"not a certificate").expect("write");
        let err = ServerTls::load(file.path(), file.path(), None).expect_err("no PEM");
        assert_eq!(err.to_string(), format!("--tls-cert {} holds no PEM certificate", file.path().display()));
        let err = ClientTls::load(Some(Path::new("/no/such/ca.pem")), None, None).expect_err("no file");
        assert!(err.to_string().starts_with("cannot read --ca /no/such/ca.pem: "), "{err}");
    }
}
