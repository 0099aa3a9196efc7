//! Who may call what: the flags of the security layer (`security/`),
//! checked into its settings.

use std::path::PathBuf;

use clap::Args;

/// The security flags, flattened into the server's.
#[derive(Debug, Clone, Args)]
pub struct SecurityArgs {
    /// Authorize every call with this gRPC authorization policy (gRFC A43's
    /// JSON, as grpc-go and grpc C++ read it; read again when it changes).
    /// Off by default: every call allowed.
    #[arg(long, env = "SEARCH_AUTHZ_POLICY", value_name = "FILE")]
    pub authz_policy: Option<PathBuf>,

    /// Validate bearer tokens (JWTs) against the keys of this JWKS file
    /// (read again when it changes); needs --jwt-issuer and --jwt-audience.
    #[arg(long, env = "SEARCH_JWKS", value_name = "FILE", requires_all = ["jwt_issuer", "jwt_audience"])]
    pub jwks: Option<PathBuf>,

    /// The issuer (`iss`) tokens must name.
    #[arg(long, env = "SEARCH_JWT_ISSUER", value_name = "ISSUER", requires = "jwks")]
    pub jwt_issuer: Option<String>,

    /// The audience (`aud`) tokens must name.
    #[arg(long, env = "SEARCH_JWT_AUDIENCE", value_name = "AUDIENCE", requires = "jwks")]
    pub jwt_audience: Option<String>,

    /// A shared secret (the file's bytes) for HS256/HS384/HS512 tokens:
    /// refused unless given here, so that no public key is ever taken as one.
    #[arg(long, env = "SEARCH_JWT_HMAC_SECRET_FILE", value_name = "FILE", requires = "jwks")]
    pub jwt_hmac_secret_file: Option<PathBuf>,

    /// Which authorization decisions are logged, one JSON line each (gRFC A59).
    #[arg(long, env = "SEARCH_AUDIT_LOG", value_enum, value_name = "WHEN", default_value_t = AuditCondition::None)]
    pub audit_log: AuditCondition,
}

impl SecurityArgs {
    /// The settings the flags make.
    #[must_use]
    pub fn config(self) -> SecurityConfig {
        SecurityConfig {
            authz_policy: self.authz_policy,
            jwks: self.jwks,
            jwt_hmac_secret: self.jwt_hmac_secret_file,
            jwt_issuer: self.jwt_issuer,
            jwt_audience: self.jwt_audience,
            audit: self.audit_log,
        }
    }
}

/// What the security layer is told.
#[derive(Debug, Clone, Default)]
pub struct SecurityConfig {
    /// The gRFC A43 policy file; `None`: every call allowed.
    pub authz_policy: Option<PathBuf>,
    /// The JWKS file; `None`: bearer tokens are not read.
    pub jwks: Option<PathBuf>,
    /// A shared HMAC secret's file, for HS256/384/512 tokens.
    pub jwt_hmac_secret: Option<PathBuf>,
    /// The issuer tokens must name (`iss`).
    pub jwt_issuer: Option<String>,
    /// The audience tokens must name (`aud`).
    pub jwt_audience: Option<String>,
    /// Which decisions are audited.
    pub audit: AuditCondition,
}

/// Which authorization decisions are logged (gRFC A59's `audit_condition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum AuditCondition {
    /// None.
    #[default]
    #[value(name = "none")]
    None,
    /// Denied calls.
    #[value(name = "on-deny")]
    OnDeny,
    /// Allowed calls.
    #[value(name = "on-allow")]
    OnAllow,
    /// Every call.
    #[value(name = "on-deny-and-allow")]
    OnDenyAndAllow,
}

impl AuditCondition {
    /// Whether a decision that `allowed` or not is logged.
    #[must_use]
    pub fn wants(self, allowed: bool) -> bool {
        match self {
            Self::None => false,
            Self::OnDeny => !allowed,
            Self::OnAllow => allowed,
            Self::OnDenyAndAllow => true,
        }
    }
}
