//! Certificates made at test time (rcgen): a CA, a server certificate for
//! `localhost` and `127.0.0.1`, and a client certificate. No key is committed.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// A CA and what it signed, as PEM, and the CA to sign more.
pub struct Pki {
    pub issuer: CertifiedIssuer<'static, KeyPair>,
    pub ca: String,
    pub server: (String, String),
    pub client: (String, String),
}

/// A self-signed CA named `name`.
pub fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA")
}

fn leaf(issuer: &CertifiedIssuer<'static, KeyPair>, names: &[&str]) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let params = CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).expect("params");
    let cert = params.signed_by(&key, issuer).expect("signed");
    (cert.pem(), key.serialize_pem())
}

/// A fresh CA with a server and a client certificate.
pub fn pki() -> Pki {
    let ca = ca("test CA");
    let (server, client) = (leaf(&ca, &["localhost", "127.0.0.1"]), leaf(&ca, &["client"]));
    Pki { ca: ca.pem(), server, client, issuer: ca }
}
