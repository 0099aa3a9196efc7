//! Who may call what, decided once per call before routing, for every
//! protocol (the calls of gRPC-Web and Connect are gRPC calls by then): who
//! calls (the connection's client certificate, a JWT the call carries:
//! `identity.rs`, `jwt.rs`), whether the authorization policy lets them
//! call the method (gRFC A43: `policy.rs`, on the canonical method name
//! the routes serve, the article's `/Search/search` as the method it is),
//! and the decision audited (gRFC A59: `audit.rs`). The policy file and the
//! key set are read again whenever they change (`reload.rs`). Handlers read
//! the [`Caller`] from the request's extensions.
//!
//! Off unless configured (`--authz-policy`, `--jwks`): then a call does one
//! `Option` check here and nothing else.
//!
//! It sits between the protocols and the calls: it imports the transport's
//! peer and the method table; `calls/` imports it.

mod audit;
mod identity;
mod jwt;
mod policy;
mod reload;

use std::sync::Arc;

use tonic::Status;

pub use self::identity::Caller;
use self::jwt::{Keys, Verifier};
pub use self::jwt::{SKEW, TokenError};
pub(in crate::server) use self::policy::Policy;
pub use self::policy::PolicyError;
use self::reload::Reloaded;
use crate::server::config::{AuditCondition, SecurityConfig};
use crate::server::transport::Peer;

/// Checks that the files `config` names can be used (the policy parses,
/// the key set loads), so that a program can refuse to start before it
/// listens.
///
/// # Errors
/// The file and the reason (a policy's line and column).
pub fn check(config: &SecurityConfig) -> Result<(), String> {
    if let Some(path) = &config.authz_policy {
        let text =
            std::fs::read_to_string(path).map_err(|err| format!("authorization policy {}: {err}", path.display()))?;
        Policy::parse(&text).map_err(|err| format!("authorization policy {}: {err}", path.display()))?;
    }
    if let Some(path) = &config.jwks {
        let text = std::fs::read_to_string(path).map_err(|err| format!("key set (JWKS) {}: {err}", path.display()))?;
        let secret = match &config.jwt_hmac_secret {
            Some(file) => Some(std::fs::read(file).map_err(|err| format!("HMAC secret {}: {err}", file.display()))?),
            None => None,
        };
        Keys::parse(&text, secret.as_deref()).map_err(|err| format!("key set (JWKS) {}: {err}", path.display()))?;
    }
    Ok(())
}

/// The security layer's state: see the module documentation.
pub(in crate::server) struct Security {
    policy: Option<Arc<Reloaded<Policy>>>,
    jwt: Option<(Verifier, Arc<Reloaded<Keys>>)>,
    audit: AuditCondition,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security").field("policy", &self.policy.is_some()).field("jwt", &self.jwt.is_some()).finish()
    }
}

impl Security {
    /// The layer `config` asks for; `None` when it asks for nothing.
    ///
    /// # Errors
    /// A policy, key set or secret that cannot be read or used: the file
    /// and the reason (line and column for a policy).
    pub(in crate::server) fn new(config: &SecurityConfig) -> Result<Option<Arc<Self>>, String> {
        let policy = match &config.authz_policy {
            Some(path) => Some(Reloaded::load(path, "authorization policy", |text| {
                Policy::parse(text).map_err(|err| err.to_string())
            })?),
            None => None,
        };
        let jwt = match &config.jwks {
            Some(path) => {
                let (Some(issuer), Some(audience)) = (config.jwt_issuer.clone(), config.jwt_audience.clone()) else {
                    return Err("--jwks needs --jwt-issuer and --jwt-audience".into());
                };
                let secret = match &config.jwt_hmac_secret {
                    Some(file) => {
                        Some(std::fs::read(file).map_err(|err| format!("HMAC secret {}: {err}", file.display()))?)
                    }
                    None => None,
                };
                let keys = Reloaded::load(path, "key set (JWKS)", move |text| Keys::parse(text, secret.as_deref()))?;
                Some((Verifier::new(issuer, audience), keys))
            }
            None if config.jwt_hmac_secret.is_some() => return Err("--jwt-hmac-secret-file needs --jwks".into()),
            None => None,
        };
        if policy.is_none() && jwt.is_none() {
            return Ok(None);
        }
        Ok(Some(Arc::new(Self { policy, jwt, audit: config.audit })))
    }

    /// Who calls `method` (its canonical name) from `peer` with `headers`,
    /// if they may.
    ///
    /// # Errors
    /// UNAUTHENTICATED for a bearer token that fails a check (which one is
    /// said; the token never is); PERMISSION_DENIED when the policy denies
    /// the call.
    pub(in crate::server) fn check(
        &self,
        peer: &Peer,
        method: &str,
        headers: &http::HeaderMap,
    ) -> Result<Caller, Status> {
        let mut caller = Caller { peer: peer.clone(), request_principal: None };
        if let Some((verifier, keys)) = &self.jwt
            && let Some(value) = headers.get(http::header::AUTHORIZATION)
        {
            let token =
                value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
            let Some(token) = token else {
                return Err(Status::unauthenticated("the authorization header is not `Bearer <token>`"));
            };
            let (keys, generation) = keys.get();
            let principal = verifier
                .verify(token.trim(), &keys, generation)
                .map_err(|err| Status::unauthenticated(err.to_string()))?;
            caller.request_principal = Some(principal.to_string());
        }
        if let Some(policy) = &self.policy {
            let (policy, _) = policy.get();
            let decision = policy.decide(&caller, method, headers);
            audit::audit(self.audit, method, &caller, policy.name(), &decision);
            if !decision.allowed {
                let rule = decision
                    .rule
                    .map_or_else(|| "no allow rule matched".to_owned(), |rule| format!("deny rule {rule:?}"));
                return Err(Status::permission_denied(format!(
                    "{method} is not allowed for this caller (policy {:?}: {rule})",
                    policy.name()
                )));
            }
        }
        Ok(caller)
    }
}
