//! Server-side check of MaxCompute's request signature (v2, HMAC-SHA1): the
//! canonical string is rebuilt from the request with `odps-tunnel`'s signer
//! and the signature compared (in constant time) with the configured key.

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
        let (id, signature) = odps_tunnel::auth::parse_authorization(auth).ok_or_else(|| {
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
        if !odps_tunnel::auth::verify(&self.access_key, &canonical_string(parts), signature) {
            return Err(OdpsError::new(
                403,
                "SignatureNotMatch",
                "ODPS-0410042:Invalid signature value - User signature does not match",
            ));
        }
        Ok(())
    }
}

/// Largest difference between a request's `Date` and the server clock.
const MAX_CLOCK_SKEW_SECS: i64 = 15 * 60;

/// Refuses a request whose `Date` is missing, unreadable or too far from
/// `now` (seconds since the epoch), as MaxCompute does; signatures must not
/// be replayable forever.
pub fn check_date(headers: &[(String, String)], now: i64) -> Result<(), OdpsError> {
    let date = headers
        .iter()
        .find(|(k, _)| k == "date")
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| {
            OdpsError::new(
                403,
                "RequestTimeTooSkewed",
                "ODPS-0410051:Invalid credentials - the Date header is missing",
            )
        })?;
    let sent = odps_tunnel::auth::parse_http_date(date).ok_or_else(|| {
        OdpsError::new(
            403,
            "RequestTimeTooSkewed",
            format!("ODPS-0410051:Invalid credentials - unreadable Date header {date:?}"),
        )
    })?;
    if (now - sent).abs() > MAX_CLOCK_SKEW_SECS {
        return Err(OdpsError::new(
            403,
            "RequestTimeTooSkewed",
            format!(
                "ODPS-0410051:Invalid credentials - the difference between the request time and the server time ({} s) is too large",
                now - sent
            ),
        ));
    }
    Ok(())
}

/// Base64 HMAC-SHA1 of the canonical string (the client crate's signer).
pub fn sign(secret: &str, canonical: &str) -> String {
    odps_tunnel::auth::signature(secret, canonical)
}

/// The canonical string the SDK signs, built by the client crate's own code
/// so that client and server cannot drift apart.
pub fn canonical_string(parts: &SignedParts<'_>) -> String {
    odps_tunnel::auth::canonical_string(
        parts.method,
        parts.path,
        parts.query,
        parts.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )
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
    fn refuses_skewed_or_missing_dates() {
        let at = |d: &str| vec![("date".to_owned(), d.to_owned())];
        let now = 1_735_689_600; // Wed, 01 Jan 2025 00:00:00 GMT
        assert!(check_date(&at("Wed, 01 Jan 2025 00:10:00 GMT"), now).is_ok());
        let skewed = check_date(&at("Wed, 01 Jan 2025 01:00:00 GMT"), now).unwrap_err();
        assert_eq!(skewed.code, "RequestTimeTooSkewed");
        assert!(check_date(&at("yesterday"), now).is_err());
        assert!(check_date(&[], now).is_err());
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
