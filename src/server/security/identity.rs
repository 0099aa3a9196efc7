//! Who calls: the peer of the connection (its client certificate's names,
//! as gRFC A43 matches principals) and the caller a validated JWT names
//! (`ISSUER/SUBJECT`, as Istio spells request principals). Established
//! once per call by the security layer; the policy and the audit line read
//! it, and so may a handler.

use crate::server::transport::Peer;

/// Who makes one call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// The connection's peer.
    pub peer: Peer,
    /// `ISSUER/SUBJECT` of the validated JWT the call carried, if any.
    pub request_principal: Option<String>,
}

impl Caller {
    /// Whether `matches` accepts one of the peer's principal names, as A43
    /// evaluates a principal: never over plaintext; the empty name for a TLS
    /// peer without a certificate; else its URI SANs, then its DNS SANs,
    /// then its subject.
    pub(super) fn peer_matches(&self, matches: impl Fn(&str) -> bool) -> bool {
        match &self.peer {
            Peer::Plaintext => false,
            Peer::Anonymous => matches(""),
            Peer::Certified(names) => {
                names.uris.iter().any(|uri| matches(uri))
                    || names.dns.iter().any(|dns| matches(dns))
                    || matches(&names.subject)
            }
        }
    }

    /// The JWT's caller, `ISSUER/SUBJECT`.
    pub(super) fn request_principal(&self) -> Option<&str> {
        self.request_principal.as_deref()
    }

    /// The principals, as the audit line names them.
    pub(super) fn principals(&self) -> Vec<String> {
        let mut all = Vec::new();
        if let Peer::Certified(names) = &self.peer {
            all.extend(names.uris.iter().chain(&names.dns).cloned());
            if !names.subject.is_empty() {
                all.push(names.subject.clone());
            }
        }
        all.extend(self.request_principal.clone());
        all
    }
}
