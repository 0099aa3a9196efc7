//! What the connection's TLS session says of the peer: whether it is TLS,
//! and the names in its client certificate (read once per connection), for
//! the authorization policy's principals (`security/`).

use std::sync::Arc;

use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// The names a client certificate gives its holder, in A43's order of
/// matching: URI SANs, then DNS SANs, then the subject.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerNames {
    /// The URI SANs (a SPIFFE ID: `spiffe://domain/ns/x/sa/y`).
    pub uris: Vec<String>,
    /// The DNS SANs.
    pub dns: Vec<String>,
    /// The subject, RFC 4514 style as grpc-go prints it (`CN=alice,O=acme`).
    pub subject: String,
}

impl PeerNames {
    /// The names in a DER certificate; `None` when it does not parse.
    #[must_use]
    pub fn of(der: &[u8]) -> Option<Self> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let mut names = Self::default();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::URI(uri) => names.uris.push((*uri).to_owned()),
                    GeneralName::DNSName(dns) => names.dns.push((*dns).to_owned()),
                    _ => {}
                }
            }
        }
        // RFC 4514: the last RDN first, attributes joined by commas.
        let rdns: Vec<String> = cert
            .subject()
            .iter()
            .map(|rdn| {
                rdn.iter()
                    .filter_map(|attr| {
                        let key =
                            x509_parser::objects::oid2abbrev(attr.attr_type(), x509_parser::objects::oid_registry())
                                .map_or_else(|_| attr.attr_type().to_id_string(), ToOwned::to_owned);
                        Some(format!("{key}={}", attr.as_str().ok()?))
                    })
                    .collect::<Vec<_>>()
                    .join("+")
            })
            .collect();
        names.subject = rdns.into_iter().rev().collect::<Vec<_>>().join(",");
        Some(names)
    }
}

/// How the connection's peer is known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Peer {
    /// Plaintext: no principal can be matched (A43).
    #[default]
    Plaintext,
    /// TLS without a client certificate: only the empty principal matches.
    Anonymous,
    /// TLS with a client certificate.
    Certified(Arc<PeerNames>),
}
