//! Audit logging (gRFC A59): one JSON line per authorization decision the
//! audit condition asks for, on the server's log stream (stderr), in the
//! shape of grpc-go's standard-output audit logger.

use std::io::Write as _;

use serde::Serialize;

use super::identity::Caller;
use super::policy::Decision;
use crate::server::config::AuditCondition;

#[derive(Serialize)]
struct Line<'a> {
    grpc_audit_log: Entry<'a>,
    timestamp: String,
}

#[derive(Serialize)]
struct Entry<'a> {
    rpc_method: &'a str,
    principals: Vec<String>,
    policy_name: &'a str,
    matched_rule: &'a str,
    authorized: bool,
}

/// Writes the audit line of `decision` on `method` for `caller`, if
/// `condition` wants it.
pub(super) fn audit(condition: AuditCondition, method: &str, caller: &Caller, policy: &str, decision: &Decision) {
    if !condition.wants(decision.allowed) {
        return;
    }
    let line = Line {
        grpc_audit_log: Entry {
            rpc_method: method,
            principals: caller.principals(),
            policy_name: policy,
            matched_rule: decision.rule.as_deref().unwrap_or(""),
            authorized: decision.allowed,
        },
        timestamp: humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string(),
    };
    if let Ok(mut json) = serde_json::to_vec(&line) {
        json.push(b'\n');
        let _ = std::io::stderr().lock().write_all(&json);
    }
}
