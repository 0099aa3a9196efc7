//! The fuzz target of bearer tokens (see `mod.rs`): an `authorization`
//! header through the server's own security layer, with a key set of
//! ES256, RS256 and EdDSA keys (`keys.rs`). The header is either the
//! fuzzer's bytes as they are, or a token the target signs itself over a
//! header and claims the fuzzer chose (or wrote), with a key of the set or
//! one of an attacker's (a stranger's key, HS256 with the set's public
//! key), so that the fuzzer reaches past the signature.
//!
//! `jsonwebtoken` reads the system's clock for `exp` and `nbf`, so the
//! clock is the real one: the fuzzer's times are offsets from it, and an
//! input means the same whenever it runs.

use std::sync::{Arc, LazyLock};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::{HeaderMap, HeaderValue};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde_json::{Value, json};

use super::{Input, keys};
use crate::server::SecurityConfig;
use crate::server::security::{SKEW, Security};
use crate::server::transport::Peer;

/// The issuer and audience the server takes.
pub(super) const ISSUER: &str = "https://issuer.example";
pub(super) const AUDIENCE: &str = "search";
/// The method every token is checked for.
const METHOD: &str = "/search.v1.SearchService/Search";
/// The longest refusal a caller may be sent.
const MAX_MESSAGE: usize = 240;
/// Longer than any attacker-chosen text the server may echo in a refusal
/// (a `kid`, an `alg`): a token or signature this long is never in one.
const MAX_ECHO: usize = 64;
/// `exp` of the fixed tokens: 2100-01-01.
pub(super) const LATER: u64 = 4_102_444_800;

/// A key tokens are signed with, and its public half if it is one of the
/// server's set.
struct Signer {
    kid: &'static str,
    key: EncodingKey,
    algorithms: &'static [Algorithm],
    trusted: Option<DecodingKey>,
}

const RSA: &[Algorithm] =
    &[Algorithm::RS256, Algorithm::RS384, Algorithm::RS512, Algorithm::PS256, Algorithm::PS384, Algorithm::PS512];
const HMAC: &[Algorithm] = &[Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];

/// The security layer with the key set, and the keys tokens are signed with.
struct Fixture {
    security: Arc<Security>,
    signers: Vec<Signer>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let der = |b64: &str| STANDARD.decode(b64).expect("a committed key");
    let secret = |bytes: &str| EncodingKey::from_secret(bytes.as_bytes()).expect("any bytes");
    let set: JwkSet = serde_json::from_str(keys::JWKS).expect("the committed JWKS");
    let signer = |kid, key, algorithms, trusted: bool| {
        let jwk = set.find(kid).filter(|_| trusted);
        let trusted = jwk.map(|jwk| DecodingKey::from_jwk(jwk).expect("a key of the committed JWKS"));
        Signer { kid, key, algorithms, trusted }
    };
    let signers = vec![
        signer("ec1", EncodingKey::from_ec_der(&der(keys::EC)), &[Algorithm::ES256], true),
        signer("rsa1", EncodingKey::from_rsa_der(&der(keys::RSA)), RSA, true),
        signer("ed1", EncodingKey::from_ed_der(&der(keys::ED)), &[Algorithm::EdDSA], true),
        signer("ec1", EncodingKey::from_ec_der(&der(keys::STRANGER)), &[Algorithm::ES256], false),
        signer("ec1", secret(keys::EC_X), HMAC, false),
        signer("rsa1", secret(keys::JWKS), HMAC, false),
    ];
    Fixture { security: security(None, Some(keys::JWKS)), signers }
});

/// The security layer of a server given `policy` and `jwks` (through
/// files, as the server reads them), for [`ISSUER`] and [`AUDIENCE`].
pub(super) fn security(policy: Option<&str>, jwks: Option<&str>) -> Arc<Security> {
    let dir = std::env::temp_dir();
    let write = |name: &str, text: Option<&str>| {
        text.map(|text| {
            let path = dir.join(format!("search-fuzz-{}-{name}", std::process::id()));
            std::fs::write(&path, text).expect("a file in the temporary directory");
            path
        })
    };
    let config = SecurityConfig {
        authz_policy: write("policy.json", policy),
        jwks: write("jwks.json", jwks),
        jwt_issuer: Some(ISSUER.into()),
        jwt_audience: Some(AUDIENCE.into()),
        ..SecurityConfig::default()
    };
    let security = Security::new(&config).expect("the fuzz targets' security files").expect("something to check");
    for path in [config.authz_policy, config.jwks].into_iter().flatten() {
        let _ = std::fs::remove_file(path);
    }
    security
}

/// Seconds since the epoch.
fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `header.claims` of `token`.
fn signed_part(token: &str) -> &str {
    token.rsplit_once('.').map_or(token, |(signed, _)| signed)
}

/// A token of `header` and `claims` signed by `signer` with `alg`.
fn sign(signer: &Signer, alg: Algorithm, header: &[u8], claims: &[u8]) -> Option<String> {
    let signed = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
    let signature = jsonwebtoken::crypto::sign(signed.as_bytes(), &signer.key, alg).ok()?;
    Some(format!("{signed}.{signature}"))
}

/// `Bearer` and an ES256 token of the set for `sub`, expiring at `exp`.
pub(super) fn bearer(sub: &str, exp: u64) -> String {
    let claims = json!({"iss": ISSUER, "sub": sub, "aud": AUDIENCE, "exp": exp}).to_string();
    let token = sign(&FIXTURE.signers[0], Algorithm::ES256, br#"{"alg":"ES256","kid":"ec1"}"#, claims.as_bytes());
    format!("Bearer {}", token.expect("signed"))
}

/// The tokens the corpus holds whole (each signed by the target itself):
/// good ones of each key (until 2100), and the near misses.
#[cfg(test)]
pub(super) fn fixed_tokens_for_seeds() -> Vec<String> {
    fixed_tokens(&FIXTURE.signers).into_iter().map(|(token, _)| token).collect()
}

/// The same, each with the index of its signer.
#[cfg(test)]
fn fixed_tokens(signers: &[Signer]) -> Vec<(String, usize)> {
    let claims = |extra: Value| {
        let mut all = json!({"iss": ISSUER, "sub": "alice", "aud": AUDIENCE, "iat": 1_700_000_000, "exp": LATER});
        extra.as_object().into_iter().flatten().for_each(|(k, v)| all[k] = v.clone());
        all.to_string()
    };
    let cases: [(usize, Algorithm, &str, Value); 9] = [
        (0, Algorithm::ES256, r#"{"alg":"ES256","kid":"ec1","typ":"JWT"}"#, json!({})),
        (1, Algorithm::RS256, r#"{"alg":"RS256","kid":"rsa1"}"#, json!({})),
        (2, Algorithm::EdDSA, r#"{"alg":"EdDSA"}"#, json!({})),
        (0, Algorithm::ES256, r#"{"alg":"ES256","kid":"ec1"}"#, json!({"exp": 1_700_000_600})),
        (0, Algorithm::ES256, r#"{"alg":"ES256","kid":"ec1"}"#, json!({"iss": "https://evil.example"})),
        (1, Algorithm::RS512, r#"{"alg":"RS512","kid":"rsa1"}"#, json!({"aud": ["other", AUDIENCE]})),
        (3, Algorithm::ES256, r#"{"alg":"ES256","kid":"ec1"}"#, json!({"sub": "root"})),
        (4, Algorithm::HS256, r#"{"alg":"HS256","kid":"ec1"}"#, json!({"sub": "root"})),
        (2, Algorithm::EdDSA, r#"{"alg":"none"}"#, json!({"sub": "root"})),
    ];
    let sign = |(by, alg, header, extra): (usize, Algorithm, &str, Value)| {
        let token = sign(&signers[by], alg, header.as_bytes(), claims(extra).as_bytes()).expect("a fixed token");
        (token, by)
    };
    cases.into_iter().map(sign).collect()
}

/// An `authorization` header checked twice by the server's security layer
/// (the second time, a token that passed comes from the cache): refused
/// with UNAUTHENTICATED, saying why in a bounded message that never holds
/// the token or its signature; or taken, only if signed by a key of the set
/// with an algorithm of that key's kind, with the issuer, the audience and
/// times the server takes. The fuzzer's bytes are the header (tokens the
/// target signed, seeds), or choices of a token the target signs.
pub fn jwt(data: &[u8]) {
    let _ = taken_or_not(data);
}

/// [`jwt`], saying whether the token was taken; none for a header hyper
/// would not have handed on.
pub(super) fn taken_or_not(data: &[u8]) -> Option<bool> {
    let fixture = &*FIXTURE;
    let mut input = Input::new(data);
    let (value, signer) = if input.byte() & 1 == 0 {
        (input.rest().to_vec(), None)
    } else {
        let (value, signer) = signed(fixture, &mut input)?;
        (value, Some(signer))
    };
    // What hyper would not hand on never reaches the server.
    let value = HeaderValue::from_bytes(&value).ok()?;
    let mut headers = HeaderMap::new();
    headers.insert(http::header::AUTHORIZATION, value.clone());
    let before = now();
    let first = fixture.security.check(&Peer::Plaintext, METHOD, &headers);
    let again = fixture.security.check(&Peer::Plaintext, METHOD, &headers);
    let after = now();
    let token = value.to_str().ok().and_then(|v| v.split_once(' ')).map_or("", |(_, token)| token.trim());
    match (&first, &again) {
        (Ok(caller), Ok(same)) => {
            assert_eq!(caller, same, "the cache named another caller");
            // What was taken the target signed: this input's token, or
            // (the fuzzer's bytes) one a key of the set signed, those keys
            // being the target's alone.
            let by = match signer {
                Some((signed, by)) if signed == signed_part(token) => by,
                _ => signed_by(fixture, token)
                    .unwrap_or_else(|| panic!("a token no key of the set signed was taken: {token}")),
            };
            taken(&fixture.signers[by], token, caller.request_principal.as_deref(), (before, after));
        }
        (Err(status), Err(same)) => {
            assert_eq!((status.code(), status.message()), (same.code(), same.message()), "asked twice");
            refused(status, token);
        }
        _ => panic!("asked twice, answered {first:?} then {again:?}"),
    }
    Some(first.is_ok())
}

/// A token the target signs over the fuzzer's choices, in an
/// `authorization` value; its signed part and the signer's index.
fn signed(fixture: &Fixture, input: &mut Input<'_>) -> Option<(Vec<u8>, (String, usize))> {
    const PREFIXES: [&str; 5] = ["Bearer ", "bearer ", "Bearer  ", "BEARER ", "Basic "];
    const ALGS: [&str; 10] = ["", "ES256", "RS256", "EdDSA", "PS256", "ES384", "HS256", "none", "None", "RS512"];
    let prefix = input.pick(&PREFIXES);
    let by = usize::from(input.byte()) % fixture.signers.len();
    let signer = &fixture.signers[by];
    let alg = input.pick(signer.algorithms);
    let header = if input.byte() & 1 == 0 {
        let named = match input.pick(&ALGS) {
            "" => json!(format!("{alg:?}")),
            name => json!(name),
        };
        let kid = match input.byte() % 7 {
            0 => json!(signer.kid),
            1 => Value::Null,
            2 => json!("nope"),
            3 => json!("k".repeat(300)),
            4 => json!(String::from_utf8_lossy(input.short())),
            5 => json!(["ec1"]),
            _ => json!(input.pick(&["ec1", "rsa1", "ed1"])),
        };
        let mut header = json!({"alg": named, "typ": "JWT"});
        if !kid.is_null() {
            header["kid"] = kid;
        }
        header.to_string().into_bytes()
    } else {
        input.short().to_vec()
    };
    let claims = if input.byte() & 1 == 0 { claims(input).into_bytes() } else { input.rest().to_vec() };
    let token = sign(signer, alg, &header, &claims)?;
    let signed = signed_part(&token).to_owned();
    Some(([prefix.as_bytes(), token.as_bytes()].concat(), (signed, by)))
}

/// Claims of the fuzzer's choosing, their times offsets from now.
fn claims(input: &mut Input<'_>) -> String {
    let now = now();
    let time = |input: &mut Input<'_>| match input.byte() {
        0 => Value::Null,
        1 => json!(-1),
        2 => json!(now as f64 + 0.5),
        _ => json!(now.saturating_add_signed(i16::from_be_bytes([input.byte(), input.byte()]).into())),
    };
    let iss = match input.byte() % 4 {
        0 => json!(ISSUER),
        1 => json!("https://evil.example"),
        2 => json!(format!("{ISSUER}/")),
        _ => json!(String::from_utf8_lossy(input.short())),
    };
    let aud = match input.byte() % 5 {
        0 => json!(AUDIENCE),
        1 => json!(["other", AUDIENCE]),
        2 => json!("other"),
        3 => json!([]),
        _ => Value::Null,
    };
    let sub = match input.byte() % 3 {
        0 => json!("alice"),
        1 => json!(7),
        _ => json!(String::from_utf8_lossy(input.short())),
    };
    let (exp, nbf, iat) = (time(input), time(input), time(input));
    let mut claims = json!({"iss": iss, "aud": aud, "sub": sub, "exp": exp, "nbf": nbf, "iat": iat});
    if let Some(map) = claims.as_object_mut() {
        map.retain(|_, value| !value.is_null());
    }
    claims.to_string()
}

/// The index of the key of the set whose signature `token` carries, with
/// one of the algorithms of that key's kind.
fn signed_by(fixture: &Fixture, token: &str) -> Option<usize> {
    let (signed, signature) = token.rsplit_once('.')?;
    fixture.signers.iter().position(|signer| {
        let verifies =
            |key, &alg| jsonwebtoken::crypto::verify(signature, signed.as_bytes(), key, alg).unwrap_or(false);
        signer.trusted.as_ref().is_some_and(|key| signer.algorithms.iter().any(|alg| verifies(key, alg)))
    })
}

/// A token the server took: signed by a key of the set, with an algorithm
/// of that key's kind named in its header, and claims the server takes at
/// some time between `before` and `after`; its caller `ISSUER/SUBJECT`.
fn taken(signer: &Signer, token: &str, caller: Option<&str>, (before, after): (u64, u64)) {
    assert!(signer.trusted.is_some(), "a token signed with a key not in the set was taken: {token}");
    let part = |index: usize| -> Value {
        let text = token.split('.').nth(index).unwrap_or_default();
        let bytes = URL_SAFE_NO_PAD.decode(text).unwrap_or_else(|_| panic!("taken, not base64url: {token}"));
        serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("taken, not JSON: {token}"))
    };
    let (header, claims) = (part(0), part(1));
    let alg: Option<Algorithm> = header["alg"].as_str().and_then(|alg| alg.parse().ok());
    assert!(alg.is_some_and(|alg| signer.algorithms.contains(&alg)), "taken with alg {}: {token}", header["alg"]);
    assert!(header["kid"].is_null() || header["kid"] == signer.kid, "taken with kid {}: {token}", header["kid"]);
    assert_eq!(claims["iss"], ISSUER, "taken from another issuer: {token}");
    let audience = match &claims["aud"] {
        Value::Array(all) => all.iter().any(|aud| aud == AUDIENCE),
        aud => aud == AUDIENCE,
    };
    assert!(audience, "taken for another audience: {token}");
    let time = |name: &str| claims[name].as_f64();
    let skew = SKEW.as_secs() as f64;
    assert!(time("exp").is_some_and(|exp| exp + skew >= before as f64), "taken expired: {token}");
    for name in ["nbf", "iat"] {
        assert!(time(name).is_none_or(|at| at <= after as f64 + skew), "taken before its {name}: {token}");
    }
    let sub = claims["sub"].as_str().unwrap_or_else(|| panic!("taken without a subject: {token}"));
    assert_eq!(caller, Some(format!("{ISSUER}/{sub}").as_str()), "the caller named");
}

/// A refusal: UNAUTHENTICATED, a reason, bounded, neither the token nor
/// its signature in it.
fn refused(status: &tonic::Status, token: &str) {
    let message = status.message();
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{message}");
    assert!(!message.is_empty() && message.len() <= MAX_MESSAGE, "a refusal of {} bytes: {message}", message.len());
    let signature = token.rsplit_once('.').map_or("", |(_, signature)| signature);
    for secret in [token, signature] {
        assert!(secret.len() <= MAX_ECHO || !message.contains(secret), "the refusal shows the token: {message}");
    }
}
