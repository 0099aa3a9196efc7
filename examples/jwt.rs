//! Keys and tokens for trying the server's bearer-token checks
//! (`docs/security.md`): an ES256 signing key and the JWKS of its public
//! half, and tokens signed with it.
//!
//!     cargo run --example jwt -- keys DIR              # DIR/signing-key.der, DIR/jwks.json
//!     cargo run --example jwt -- token DIR SUBJECT     # a token on stdout, valid 1 h
//!
//! The issuer is `https://issuer.example` and the audience `search`, as the
//! document's commands give them to the server. Never for production: the
//! key is a file in the clear.

use std::path::Path;
use std::process::ExitCode;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256};

const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "search";
const KID: &str = "demo-key";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let done = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["keys", dir] => keys(Path::new(dir)),
        ["token", dir, subject] => token(Path::new(dir), subject),
        _ => Err("usage: jwt keys DIR | jwt token DIR SUBJECT".into()),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("jwt: {err}");
            ExitCode::FAILURE
        }
    }
}

/// A P-256 key in `dir/signing-key.der` and its public half's JWKS in
/// `dir/jwks.json`.
fn keys(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    let pair = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|err| err.to_string())?;
    let point = pair.public_key_raw();
    let jwks = serde_json::json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": KID, "alg": "ES256", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    }]});
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(dir.join(name), bytes).map_err(|err| format!("{}: {err}", dir.join(name).display()))
    };
    write("signing-key.der", &pair.serialize_der())?;
    write("jwks.json", format!("{jwks:#}\n").as_bytes())
}

/// A token for `subject`, signed with `dir/signing-key.der`, valid an hour.
fn token(dir: &Path, subject: &str) -> Result<(), String> {
    let path = dir.join("signing-key.der");
    let der = std::fs::read(&path).map_err(|err| format!("{}: {err} (run `jwt keys` first)", path.display()))?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_err(|e| e.to_string())?.as_secs();
    let claims = serde_json::json!({"iss": ISSUER, "sub": subject, "aud": AUDIENCE, "iat": now, "exp": now + 3600});
    let header = Header { kid: Some(KID.into()), ..Header::new(Algorithm::ES256) };
    let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_der(&der)).map_err(|e| e.to_string())?;
    println!("{token}");
    Ok(())
}
