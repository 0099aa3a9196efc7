//! The server's settings: the flags with their environment variables,
//! checked into the settings the library serves with, and their defaults.
//!
//! Files:
//! - `flags.rs`: the flags ([`ServerArgs`]) and their check
//!   ([`ServerArgs::into_config`], [`ConfigError`]).
//! - `error.rs`: why the flags do not make a configuration ([`ConfigError`]).
//! - `settings.rs`: the checked settings ([`ServerConfig`], [`CorsOrigins`]).
//! - `defaults.rs`: every default, a constant each.
//! - `byte_size.rs`: a size flag's value ([`ByteSize`]).
//! - `security.rs`: who may call what: the policy, the key set, the audit
//!   ([`SecurityArgs`], [`SecurityConfig`]).
//! - `orca.rs`: the load report flags ([`OrcaArgs`]).
//! - `admission.rs`: the adaptive concurrency flags and bounds ([`AdmissionArgs`],
//!   [`AdmissionSettings`]).

mod admission;
mod byte_size;
mod defaults;
mod error;
mod flags;
mod orca;
mod security;
mod settings;

pub use self::admission::{AdmissionArgs, AdmissionSettings};
pub use self::byte_size::ByteSize;
pub use self::flags::{ConfigError, ServerArgs};
pub use self::orca::OrcaArgs;
pub use self::security::{AuditCondition, SecurityArgs, SecurityConfig};
pub use self::settings::{CorsOrigins, ServerConfig};
