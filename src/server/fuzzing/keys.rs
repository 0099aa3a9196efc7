//! The fuzz targets' key set: an ES256 (P-256), an RS256 (RSA 2048) and an
//! EdDSA (Ed25519) key, their JWKS, and a stranger P-256 key outside it.
//! Made once with `openssl genpkey` for these targets and the corpus's
//! tokens; no server ever takes them. Private keys as `jsonwebtoken` reads
//! them: PKCS#8 DER (EC, Ed25519) and PKCS#1 DER (RSA), in base64.

/// The P-256 key `ec1`.
pub(super) const EC: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg7bg3i2m9dOfm92ZUyXd5LyQTh1Y/b3BBGD4SAOA03I+hRANCAASLYDxUTJNSrxfyACodrH1HTAU5Mi5hBfd80cQ8g5ticcdbRo23FJQ2qBy/n/uQG3avSUdQ2NoqHvLOU8TRkRrf";
/// A P-256 key that is not in the set.
pub(super) const STRANGER: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgNCV6quPkCqep0Wi9POkYSX8z4CP+g0uNTO1HNa7IuLuhRANCAASEae6ZIMpgaxoani30EJfp1hERaFlhz95s15duHrx8SXowU7b/xgSpMh/DCkkXbEdUS2+58MXcXDU8sLfB1e1V";
/// The Ed25519 key `ed1`.
pub(super) const ED: &str = "MC4CAQAwBQYDK2VwBCIEIJtmgNNb0k+uH31AdAlAQfxYsSDJzLAIyT18S+uEfGbh";
/// The RSA key `rsa1`.
pub(super) const RSA: &str = concat!(
    "MIIEowIBAAKCAQEAwac9FydQeFUbhJcROO214JpswTC9Or0OboWIxuYnisKqiiBuNAQCJGtG7lkb7EJduFlZAMXa1PbnfZ/L",
    "MMLtqKRpHB9CykOJC/Oq0bNTJWJdQ0ju7vy0ECYIwlVjEbctJ5/g7d0998dd1+F40iEcXd88cLkAAUmQzIiXiI1wr0WUZAgp",
    "NX47nGdcLUop4cLJN+OLmWU6dxulDxT5YEij+HaXK+1PwqptptGHAVQ1f1TM/6rV13G3G0QQwTk/ajJxtQH0E4hMz1wQt3+w",
    "D5mg2QlpuTo7BEaaZiT678A940FIaV7XkJFi2ri8ja1ZazrciucfsPLS74f7r15Nf9ijvQIDAQABAoIBAAr4r6RdLNj0cW+s",
    "o2QnS5OjDCBR45atWWD3nc0vAvSAnOrgdX3q8Dgh/83HLKbRB8BHB5zcmM5SAsGCSR/FG3PfhLj8KGuPMfeEYZwp3b8TeJc0",
    "TZ0qogT8MqjX75n0V9GT5El1rGoaWH2/n3nAOHw1BpaYVKC+Cz8bSgKJiOXVIPKyYlWorj9d6Gpib1u2CwTwuCNx0RxcQLmW",
    "/pd/ONhx54qdhPJLKMWgYZHBxqBfV/FwlhGgGoDkJopyLnnEs5M1Z8Pmo4FGX77a1wMFUeRJPVlNGln6E9DMtpt43N+6TKaR",
    "qf4cG9Gu28zFwSjC0FvgHAwNQMPLfND9RltlbB0CgYEA+cR3gAeyyo+jdouUlCe1Mvv4OZXlONV/zfymdI1yxX/Gt14g/nqP",
    "nTLuTBCgowWHhq+DBYq4O2zMvlNfskWSMh7ItwOvTid7zHULbY4qNTLe4mcRwjNInY45cimAzv6SqSU2XqKwmxH2iab4F1aL",
    "BIG1P3LkSNJX+/f2czUfT6cCgYEAxnxPb1RVwXBQW192K+IVZX1eLjgKad3piZYjxJDMDhFaT+Az5/GRrJ1zusIjclYW42Oh",
    "ifWQUBt+vQyEEAIAnM8s1HLCNtp9zxpbCM5+u5X0XIlae3/zLWP72L11iFzp4/JL31S9amAeje/FU9VlPCsVnPBm34k1v5AZ",
    "gU3XffsCgYEA2zmxteOL77VhwaRD9kJgDe8RceH6fwcOFYwDwluA+I7tqXbqONL0iQLyHDuf81bgHLyioNOgXzBhCVD+tufP",
    "qURR4ilOzqdjRxMYw8E7lNQgw9G5yZ3fx8LU8zowf/78VZB/B1N+9a0vmqS+LyXcAUmj/5vleXF+nn+HhpmC8RMCgYACTgU6",
    "HLeWNHCqbvRXVBu9fvQuAzaTviDtGRI3QRsteqQa01am9dYkM/vZClIRDNDdORXyHSjc1UTmexO5f9xz9a/mk6KPsn/NfNfb",
    "xVIRaY9Z17p2PqkbONL+1ExeFf4dSH37DOfaKV2RdlxLOeogBbwNg3keVWCLZef16Wp8KwKBgGfXVUbbbsdxf7rvSRUFMP+1",
    "7q1/eBj4dJmT2ze/q9uFDgDyrYJal9pytzaAAzV0jC74G1mRbrxtbZtrrkIYQ2Dx1vW0m9/yV/9QdYnNGmYFGqCh6A/kC+Nh",
    "3a3bIM7L+H7bID3gAS7cj+90HqSF3s/TLd+BVQX3+1yE7AolfJb6",
);
/// `ec1`'s public point's x, a secret an attacker knows (for HS256 "signed"
/// with the server's public key).
pub(super) const EC_X: &str = "i2A8VEyTUq8X8gAqHax9R0wFOTIuYQX3fNHEPIObYnE";
/// The public halves of `ec1`, `rsa1` and `ed1`.
pub(super) const JWKS: &str = concat!(
    r#"{"keys": ["#,
    r#"{"kty": "EC", "crv": "P-256", "kid": "ec1", "x": "i2A8VEyTUq8X8gAqHax9R0wFOTIuYQX3fNHEPIObYnE", "y": "x1tGjbcUlDaoHL-f-5Abdq9JR1DY2ioe8s5TxNGRGt8"}, "#,
    r#"{"kty": "RSA", "kid": "rsa1", "e": "AQAB", "n": ""#,
    "wac9FydQeFUbhJcROO214JpswTC9Or0OboWIxuYnisKqiiBuNAQCJGtG7lkb7EJduFlZAMXa1PbnfZ_LMMLtqKRp",
    "HB9CykOJC_Oq0bNTJWJdQ0ju7vy0ECYIwlVjEbctJ5_g7d0998dd1-F40iEcXd88cLkAAUmQzIiXiI1wr0WUZAgp",
    "NX47nGdcLUop4cLJN-OLmWU6dxulDxT5YEij-HaXK-1PwqptptGHAVQ1f1TM_6rV13G3G0QQwTk_ajJxtQH0E4hM",
    "z1wQt3-wD5mg2QlpuTo7BEaaZiT678A940FIaV7XkJFi2ri8ja1ZazrciucfsPLS74f7r15Nf9ijvQ",
    r#""}, "#,
    r#"{"kty": "OKP", "crv": "Ed25519", "kid": "ed1", "x": "4FTrLBSwGF0WHvgydJLW_KTLTL11wSURjVEihriJfTk"}"#,
    r#"]}"#,
);
