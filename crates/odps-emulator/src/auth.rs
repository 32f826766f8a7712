//! Server-side check of MaxCompute's request signature (v2, HMAC-SHA1): the
//! canonical string is rebuilt from the request exactly as the SDK builds it
//! and the signature recomputed with the configured key.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::error::OdpsError;

/// The one account the emulator knows.
#[derive(Clone)]
pub struct Credentials {
    /// AccessKey id.
    pub access_id: String,
    /// AccessKey secret (never logged).
    pub access_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_id", &self.access_id)
            .field("access_key", &"<redacted>")
            .finish()
    }
}

/// What the signature covers, taken from the request.
#[derive(Debug)]
pub struct SignedParts<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Lower-cased header names with their values.
    pub headers: Vec<(String, String)>,
    /// Path after the endpoint, still percent-encoded.
    pub path: &'a str,
    /// Raw query string (without `?`), still percent-encoded.
    pub query: Option<&'a str>,
}

impl Credentials {
    /// Checks the `Authorization` header; the error is MaxCompute's own.
    pub fn verify(&self, parts: &SignedParts<'_>) -> Result<(), OdpsError> {
        let auth = parts
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| {
                OdpsError::new(
                    401,
                    "Unauthorized",
                    "ODPS-0410051:Invalid credentials - authorization header is missing",
                )
            })?;
        let (id, signature) = auth
            .strip_prefix("ODPS ")
            .and_then(|rest| rest.rsplit_once(':'))
            .ok_or_else(|| {
                OdpsError::new(
                    401,
                    "Unauthorized",
                    "ODPS-0410051:Invalid credentials - malformed authorization header",
                )
            })?;
        if id != self.access_id {
            return Err(OdpsError::new(
                401,
                "InvalidAccessKeyId",
                "ODPS-0410051:Invalid credentials - accessKeyId not found",
            ));
        }
        let expected = sign(&self.access_key, &canonical_string(parts));
        if expected.as_bytes() != signature.as_bytes() {
            return Err(OdpsError::new(
                403,
                "SignatureNotMatch",
                "ODPS-0410042:Invalid signature value - User signature does not match",
            ));
        }
        Ok(())
    }
}

/// Base64 HMAC-SHA1 of the canonical string.
pub fn sign(secret: &str, canonical: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(canonical.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The canonical string the SDK signs.
pub fn canonical_string(parts: &SignedParts<'_>) -> String {
    // The SDK percent-decodes the whole URL once, then splits the query and
    // decodes each pair again (form decoding: `+` is a space).
    let path = percent_decode(parts.path, false);
    let params = parts
        .query
        .map(|q| parse_query_for_signing(&percent_decode(q, false)));
    let mut signed: Vec<(String, String)> = vec![
        ("content-md5".into(), String::new()),
        ("content-type".into(), String::new()),
    ];
    let mut date = None;
    for (k, v) in &parts.headers {
        if k == "content-type" || k == "content-md5" || k.starts_with("x-odps-") {
            upsert(&mut signed, k, v);
        } else if k == "date" {
            date = Some(v.clone());
        }
    }
    upsert(&mut signed, "date", &date.unwrap_or_default());
    if let Some(params) = &params {
        for (k, v) in params {
            if k.starts_with("x-odps-") {
                upsert(&mut signed, k, v);
            }
        }
    }
    signed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut lines = vec![parts.method.to_owned()];
    for (k, v) in signed {
        if k.starts_with("x-odps-") {
            lines.push(format!("{k}:{v}"));
        } else {
            lines.push(v);
        }
    }
    let mut resource = path;
    if let Some(mut params) = params.filter(|p| !p.is_empty()) {
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let joined = params
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    k.clone()
                } else {
                    format!("{k}={v}")
                }
            })
            .collect::<Vec<_>>()
            .join("&");
        resource.push('?');
        resource.push_str(&joined);
    }
    lines.push(resource);
    lines.join("\n")
}

fn upsert(list: &mut Vec<(String, String)>, key: &str, value: &str) {
    match list.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => entry.1 = value.to_owned(),
        None => list.push((key.to_owned(), value.to_owned())),
    }
}

/// Query pairs as Python's `dict(parse_qsl(q, keep_blank_values=True))`
/// gives them: later duplicates win, the first position is kept.
fn parse_query_for_signing(query: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (percent_decode(k, true), percent_decode(v, true));
        upsert(&mut out, &k, &v);
    }
    out
}

/// Percent-decodes; with `plus_is_space`, `+` becomes a space (form style).
/// Invalid escapes stay as they are, like Python's `unquote`.
pub fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' && i + 2 < bytes.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                // Two hex digits make at most 0xFF.
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(if plus_is_space && b == b'+' { b' ' } else { b });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector from the protocol notes, computed with the SDK's own signer.
    #[test]
    fn matches_the_sdk_signature_vector() {
        let parts = SignedParts {
            method: "PUT",
            headers: vec![
                ("date".into(), "Wed, 01 Jan 2025 00:00:00 GMT".into()),
                ("content-type".into(), "application/octet-stream".into()),
                ("x-odps-tunnel-version".into(), "6".into()),
                ("x-odps-user-agent".into(), "ua".into()),
            ],
            path: "/projects/p/tables/t",
            query: Some("uploadid=U&blockid=0&partition=pt%3Dx&arrow=&curr_project=p"),
        };
        let canonical = canonical_string(&parts);
        assert_eq!(
            canonical,
            "PUT\n\napplication/octet-stream\nWed, 01 Jan 2025 00:00:00 GMT\nx-odps-tunnel-version:6\n\
             x-odps-user-agent:ua\n/projects/p/tables/t?arrow&blockid=0&curr_project=p&partition=pt=x&uploadid=U"
        );
        assert_eq!(sign("SK", &canonical), "2D8BMlBp77odOqdnjgxAqQB3CCA=");
        let creds = Credentials {
            access_id: "AK".into(),
            access_key: "SK".into(),
        };
        let mut signed = parts;
        signed.headers.push((
            "authorization".into(),
            "ODPS AK:2D8BMlBp77odOqdnjgxAqQB3CCA=".into(),
        ));
        assert!(creds.verify(&signed).is_ok());
        let wrong = Credentials {
            access_id: "AK".into(),
            access_key: "other".into(),
        };
        assert_eq!(wrong.verify(&signed).unwrap_err().code, "SignatureNotMatch");
    }

    #[test]
    fn debug_hides_the_secret() {
        let creds = Credentials {
            access_id: "AK".into(),
            access_key: "very-secret".into(),
        };
        assert!(!format!("{creds:?}").contains("very-secret"));
    }
}
