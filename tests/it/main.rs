//! The integration tests: one binary, one module per area, the helpers
//! (`common`) compiled once. Cargo.toml declares it the only test target
//! (`autotests = false`), so a new file here is a new module, never a binary.

mod common;

mod abuse;
mod admission;
mod advisories;
mod attacks;
mod balancing;
mod cli;
mod client;
mod client_env;
mod compression;
mod connect;
mod drain;
mod gray;
mod interop;
mod limits;
mod load;
mod metadata;
mod metrics;
mod orca;
mod rotation;
mod rpc;
mod security;
mod server;
mod throttle;
mod tls;
mod tokens;
mod web;
mod wrr;
mod xds;
mod xds_channel;
mod xds_policies;
mod xds_protos;
mod xds_scenarios;
