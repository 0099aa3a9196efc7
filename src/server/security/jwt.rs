//! Bearer tokens: a JWT in `authorization: Bearer`, checked against the
//! keys of a JWKS file, an issuer and an audience, with a small clock skew
//! for `exp`, `nbf` and `iat`. RS256 (and the other RSA algorithms), ES256,
//! ES384 and EdDSA are taken with their own kind of key only; `none` never;
//! HMAC only with a shared secret given on its own (a JWKS `oct` key is not
//! one: a public key can never be taken as an HMAC secret). The signature
//! and the claims are checked by `jsonwebtoken` (no hand-written crypto);
//! what failed is said in the error, never the token.
//!
//! A token that passed is kept (by its SHA-256) until it expires or the
//! keys change, so that a caller's every call does not verify a signature.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The clock skew allowed on `exp`, `nbf` and `iat`.
pub const SKEW: Duration = Duration::from_secs(30);
/// The algorithms an RSA key verifies.
const RSA: [Algorithm; 6] =
    [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512, Algorithm::PS256, Algorithm::PS384, Algorithm::PS512];
/// Tokens kept as verified at once (past it, the cache starts again).
const CACHE: usize = 10_000;

/// Why a token was refused: each a message a caller can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT: three base64url parts, a JSON header and claims.
    #[error("the bearer token is malformed ({0})")]
    Malformed(&'static str),
    /// `exp` has passed (beyond the skew).
    #[error("the bearer token has expired")]
    Expired,
    /// `nbf` or `iat` is still ahead (beyond the skew).
    #[error("the bearer token is not yet valid")]
    NotYetValid,
    /// `iss` is not the one the server takes.
    #[error("the bearer token's issuer is not the one this server trusts")]
    WrongIssuer,
    /// `aud` does not name this server.
    #[error("the bearer token's audience does not include this server")]
    WrongAudience,
    /// `kid` names no key of the key set (quoted, cut to 40 characters).
    #[error("the bearer token's key id is unknown: {0}")]
    UnknownKey(String),
    /// The signature does not verify.
    #[error("the bearer token's signature does not verify")]
    BadSignature,
    /// `alg` is `none`, HMAC without a secret given, or not the key's kind.
    #[error("the bearer token's algorithm is not allowed: {0}")]
    AlgorithmNotAllowed(String),
}

/// One key of the key set, and the algorithms it may verify (its Debug
/// leaves the key out: an HMAC secret is one).
struct Key {
    kid: Option<String>,
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key").field("kid", &self.kid).field("algorithms", &self.algorithms).finish_non_exhaustive()
    }
}

/// The keys tokens are checked against: a JWKS file's, and a shared HMAC
/// secret when one is given.
#[derive(Debug)]
pub(in crate::server) struct Keys {
    keys: Vec<Key>,
}

impl Keys {
    /// The keys of the JWKS `json`, and `hmac_secret` when given.
    ///
    /// # Errors
    /// The JSON is not a JWKS, a key does not load, or it holds no key.
    pub(in crate::server) fn parse(json: &str, hmac_secret: Option<&[u8]>) -> Result<Self, String> {
        let set: JwkSet = serde_json::from_str(json).map_err(|err| format!("not a JWKS: {err}"))?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            let kid = jwk.common.key_id.clone();
            let named = |why: &str| format!("key {:?}: {why}", kid.as_deref().unwrap_or("(no kid)"));
            let algorithms = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => RSA.to_vec(),
                AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                    EllipticCurve::P256 => vec![Algorithm::ES256],
                    EllipticCurve::P384 => vec![Algorithm::ES384],
                    _ => return Err(named("an EC curve other than P-256 or P-384")),
                },
                AlgorithmParameters::OctetKeyPair(_) => vec![Algorithm::EdDSA],
                AlgorithmParameters::OctetKey(_) => {
                    return Err(named("an HMAC (oct) key: give a shared secret with --jwt-hmac-secret-file instead"));
                }
                _ => return Err(named("an unknown key type")),
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|err| named(&err.to_string()))?;
            keys.push(Key { kid, key, algorithms });
        }
        if let Some(secret) = hmac_secret {
            let key = DecodingKey::from_secret(secret).map_err(|err| format!("the HMAC secret: {err}"))?;
            keys.push(Key { kid: None, key, algorithms: vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] });
        }
        if keys.is_empty() {
            return Err("the JWKS holds no key".into());
        }
        Ok(Self { keys })
    }

    /// The key for a token of `alg` naming `kid`.
    fn find(&self, alg: Algorithm, kid: Option<&str>) -> Result<&Key, TokenError> {
        let takes = |key: &&Key| key.algorithms.contains(&alg);
        match kid {
            Some(kid) => {
                let key = self.keys.iter().find(|key| key.kid.as_deref() == Some(kid));
                let key = key.ok_or_else(|| TokenError::UnknownKey(shown(kid)))?;
                let wrong = || format!("{alg:?} with key {}, which is not that kind of key", shown(kid));
                takes(&key).then_some(key).ok_or_else(|| TokenError::AlgorithmNotAllowed(wrong()))
            }
            // No kid: the one key of that kind, if there is one.
            None => {
                let mut fit = self.keys.iter().filter(takes);
                match (fit.next(), fit.next()) {
                    (Some(key), None) => Ok(key),
                    (None, _) => Err(TokenError::AlgorithmNotAllowed(format!("{alg:?}: no key of that kind"))),
                    (Some(_), Some(_)) => Err(TokenError::UnknownKey("none (the token names no kid)".into())),
                }
            }
        }
    }
}

/// The claims a token must carry.
#[derive(Debug, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    #[serde(default)]
    iat: Option<u64>,
    exp: u64,
}

/// What a token's header says.
#[derive(Debug, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// SHA-256 of a token that passed -> its caller and expiry.
type Passed = HashMap<[u8; 32], (Arc<str>, u64)>;

/// Checks tokens for one issuer and audience, keeping those that passed.
pub(in crate::server) struct Verifier {
    issuer: String,
    audience: String,
    /// Tokens that passed, for the keys of generation `.0`.
    cache: Mutex<(u64, Passed)>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").field("issuer", &self.issuer).field("audience", &self.audience).finish()
    }
}

impl Verifier {
    /// A verifier of tokens from `issuer` for `audience`.
    pub(in crate::server) fn new(issuer: String, audience: String) -> Self {
        Self { issuer, audience, cache: Mutex::new((0, HashMap::new())) }
    }

    /// The caller, `ISSUER/SUBJECT`, of `token` checked against `keys` (of
    /// key-set generation `generation`: a new one empties the cache).
    ///
    /// # Errors
    /// [`TokenError`]: which check failed.
    pub(in crate::server) fn verify(&self, token: &str, keys: &Keys, generation: u64) -> Result<Arc<str>, TokenError> {
        let now = now();
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        {
            let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if cache.0 != generation {
                *cache = (generation, HashMap::new());
            }
            if let Some((caller, exp)) = cache.1.get(&digest)
                && now < exp.saturating_add(SKEW.as_secs())
            {
                return Ok(Arc::clone(caller));
            }
        }
        let (caller, exp) = self.check(token, keys, now)?;
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.0 == generation {
            if cache.1.len() >= CACHE {
                cache.1.clear();
            }
            cache.1.insert(digest, (Arc::clone(&caller), exp));
        }
        Ok(caller)
    }

    /// Every check, in the order a caller would fix them.
    fn check(&self, token: &str, keys: &Keys, now: u64) -> Result<(Arc<str>, u64), TokenError> {
        let header = header(token)?;
        let alg = match header.alg.as_str() {
            "none" => return Err(TokenError::AlgorithmNotAllowed("none (an unsigned token)".into())),
            name => name.parse::<Algorithm>().map_err(|_| TokenError::AlgorithmNotAllowed(shown(name)))?,
        };
        let key = keys.find(alg, header.kid.as_deref())?;
        let mut validation = Validation::new(alg);
        validation.leeway = SKEW.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, &validation).map_err(|err| refusal(&err))?;
        let claims = data.claims;
        if claims.iat.is_some_and(|iat| iat > now.saturating_add(SKEW.as_secs())) {
            return Err(TokenError::NotYetValid);
        }
        Ok((Arc::from(format!("{}/{}", claims.iss, claims.sub)), claims.exp))
    }
}

/// The header of `token`, read before anything is verified, so that what
/// is wrong with it can be named.
fn header(token: &str) -> Result<Header, TokenError> {
    let mut parts = token.split('.');
    let (Some(head), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed("not three dot-separated parts"));
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head)
        .map_err(|_| TokenError::Malformed("the header is not base64url"))?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed("the header is not a JWT header"))
}

/// Text from a token (a `kid`, an `alg`) as a refusal shows it: quoted, cut
/// to 40 characters, so that a refusal stays short whatever a token says.
fn shown(text: &str) -> String {
    let quoted = format!("{text:?}");
    quoted.char_indices().nth(40).map_or_else(|| quoted.clone(), |(cut, _)| format!("{}...", &quoted[..cut]))
}

/// What `jsonwebtoken` refused, as the caller's error.
fn refusal(err: &jsonwebtoken::errors::Error) -> TokenError {
    use jsonwebtoken::errors::ErrorKind;
    match err.kind() {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::InvalidAlgorithm => TokenError::AlgorithmNotAllowed("not the key's".into()),
        ErrorKind::MissingRequiredClaim(_) => TokenError::Malformed("a required claim (exp, iss, aud, sub) is missing"),
        _ => TokenError::Malformed("the claims or the signature do not decode"),
    }
}

/// Seconds since the epoch.
fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header as JwtHeader};
    use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ED25519};
    use serde_json::json;

    use super::*;

    const ISSUER: &str = "https://issuer.example";
    const AUDIENCE: &str = "search";

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A P-256 key and an Ed25519 key, and the JWKS of their public halves.
    fn keys() -> (KeyPair, KeyPair, String) {
        let ec = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("a P-256 key");
        let ed = KeyPair::generate_for(&PKCS_ED25519).expect("an Ed25519 key");
        let point = ec.public_key_raw();
        let jwks = json!({"keys": [
            {"kty": "EC", "crv": "P-256", "kid": "ec1", "x": b64(&point[1..33]), "y": b64(&point[33..65])},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed1", "x": b64(ed.public_key_raw())},
        ]});
        (ec, ed, jwks.to_string())
    }

    /// A token of `alg` signed with `key`, naming `kid`, with `claims`
    /// over good defaults.
    fn mint(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: serde_json::Value) -> String {
        let now = now();
        let mut all = json!({"iss": ISSUER, "sub": "alice", "aud": AUDIENCE, "iat": now, "exp": now + 600});
        for (k, v) in claims.as_object().expect("an object") {
            all[k] = v.clone();
        }
        let header = JwtHeader { kid: kid.map(str::to_owned), ..JwtHeader::new(alg) };
        jsonwebtoken::encode(&header, &all, key).expect("signed")
    }

    fn check(token: &str, keys: &Keys) -> Result<String, TokenError> {
        Verifier::new(ISSUER.into(), AUDIENCE.into()).verify(token, keys, 0).map(|who| who.to_string())
    }
    #[test]
    fn good_tokens_name_their_caller_and_each_failed_check_is_named() {
        let (ec, ed, jwks) = keys();
        let keys = Keys::parse(&jwks, None).expect("the JWKS loads");
        let es = EncodingKey::from_ec_der(&ec.serialize_der());
        let eddsa = EncodingKey::from_ed_der(&ed.serialize_der());
        let now = now();
        let ok = |claims| mint(Algorithm::ES256, &es, Some("ec1"), claims);
        assert_eq!(check(&ok(json!({})), &keys), Ok(format!("{ISSUER}/alice")));
        assert_eq!(
            check(&mint(Algorithm::EdDSA, &eddsa, Some("ed1"), json!({})), &keys),
            Ok(format!("{ISSUER}/alice"))
        );
        assert_eq!(check(&ok(json!({"exp": now - 3600})), &keys), Err(TokenError::Expired));
        assert!(check(&ok(json!({"exp": now - 10})), &keys).is_ok(), "within the clock skew");
        assert_eq!(check(&ok(json!({"nbf": now + 3600})), &keys), Err(TokenError::NotYetValid));
        assert_eq!(check(&ok(json!({"iat": now + 3600})), &keys), Err(TokenError::NotYetValid));
        assert_eq!(check(&ok(json!({"iss": "https://evil.example"})), &keys), Err(TokenError::WrongIssuer));
        assert_eq!(check(&ok(json!({"aud": "other"})), &keys), Err(TokenError::WrongAudience));
        let unknown = mint(Algorithm::ES256, &es, Some("nope"), json!({}));
        assert_eq!(check(&unknown, &keys), Err(TokenError::UnknownKey(r#""nope""#.into())));
        let long = check(&mint(Algorithm::ES256, &es, Some(&"k".repeat(500)), json!({})), &keys);
        assert_eq!(long, Err(TokenError::UnknownKey(format!("\"{}...", "k".repeat(39)))), "cut short");
        // Signed with the EC key, claimed to be the Ed25519 key's.
        assert!(matches!(
            check(&mint(Algorithm::ES256, &es, Some("ed1"), json!({})), &keys),
            Err(TokenError::AlgorithmNotAllowed(_))
        ));
        let good = ok(json!({}));
        let (head, rest) = good.split_once('.').expect("parts");
        let (_, signature) = rest.rsplit_once('.').expect("parts");
        let forged = format!(
            "{head}.{}.{signature}",
            b64(br#"{"iss":"https://issuer.example","sub":"root","aud":"search","exp":9999999999}"#)
        );
        assert_eq!(check(&forged, &keys), Err(TokenError::BadSignature));
        assert!(matches!(check("not-a-token", &keys), Err(TokenError::Malformed(_))));
        assert!(matches!(check(&ok(json!({"sub": null})), &keys), Err(TokenError::Malformed(_))));
    }

    #[test]
    fn none_and_hmac_with_a_public_key_are_refused_hmac_only_with_its_secret() {
        let (ec, _, jwks) = keys();
        let keys = Keys::parse(&jwks, None).expect("the JWKS loads");
        let claims = b64(br#"{"iss":"https://issuer.example","sub":"root","aud":"search","exp":9999999999}"#);
        let unsigned = format!("{}.{claims}.", b64(br#"{"alg":"none","typ":"JWT"}"#));
        assert!(matches!(check(&unsigned, &keys), Err(TokenError::AlgorithmNotAllowed(why)) if why.contains("none")));
        // The classic confusion: HS256 "signed" with the server's public key.
        let public = EncodingKey::from_secret(ec.public_key_raw()).expect("any bytes");
        let confused = mint(Algorithm::HS256, &public, Some("ec1"), json!({}));
        assert!(matches!(check(&confused, &keys), Err(TokenError::AlgorithmNotAllowed(_))));
        let no_kid = mint(Algorithm::HS256, &public, None, json!({}));
        assert!(matches!(check(&no_kid, &keys), Err(TokenError::AlgorithmNotAllowed(_))));
        // With a secret given on its own, HS256 tokens signed with it pass.
        let with_secret = Keys::parse(&jwks, Some(b"a shared secret of enough bytes")).expect("loads");
        let secret = EncodingKey::from_secret(b"a shared secret of enough bytes").expect("a secret");
        let hs = mint(Algorithm::HS256, &secret, None, json!({}));
        assert_eq!(check(&hs, &with_secret), Ok(format!("{ISSUER}/alice")));
        // An HMAC key inside a JWKS is refused at load.
        let oct = json!({"keys": [{"kty": "oct", "kid": "s", "k": b64(b"secret")}]}).to_string();
        assert!(Keys::parse(&oct, None).expect_err("oct refused").contains("--jwt-hmac-secret-file"));
    }

    #[test]
    fn a_token_kept_as_verified_is_checked_again_when_the_keys_change() {
        let (ec, _, jwks) = keys();
        let first = Keys::parse(&jwks, None).expect("loads");
        let (_, _, other) = keys();
        let second = Keys::parse(&other.replace("ec1", "ec2"), None).expect("loads");
        let es = EncodingKey::from_ec_der(&ec.serialize_der());
        let token = mint(Algorithm::ES256, &es, Some("ec1"), json!({}));
        let verifier = Verifier::new(ISSUER.into(), AUDIENCE.into());
        assert!(verifier.verify(&token, &first, 0).is_ok());
        assert!(verifier.verify(&token, &first, 0).is_ok(), "kept");
        assert_eq!(
            verifier.verify(&token, &second, 1),
            Err(TokenError::UnknownKey(r#""ec1""#.into())),
            "not kept past new keys"
        );
    }
}
