//! Request signing as MaxCompute expects it (signature version 2, HMAC-SHA1).
//!
//! The same functions serve both sides: the client signs a request, and a
//! server (such as `odps-emulator`) rebuilds the canonical string from what it
//! received and compares signatures with [`verify`].
//!
//! # Canonical string
//!
//! Lines joined by `\n`, no trailing newline:
//!
//! 1. the HTTP method, upper case;
//! 2. the `Content-MD5` value (or empty), the `Content-Type` value (or empty),
//!    the `Date` value, then one `name:value` line per `x-odps-*` header and
//!    per `x-odps-*` query parameter, names lower-cased and sorted;
//! 3. the resource: the percent-decoded path relative to the endpoint, then,
//!    when there is a query, `?` and the parameters sorted by name, each
//!    `name=value`, or the bare name when the value is empty.
//!
//! The signature is `base64(HMAC-SHA1(secret, canonical))`, sent as
//! `Authorization: ODPS <access_id>:<signature>`. Temporary (STS) credentials
//! sign the same way and add the token in the unsigned
//! `authorization-sts-token` header.
//!
//! # Secrets
//!
//! [`Credentials`] and [`Secret`] never print the secret: their `Debug`
//! output shows `***`.
//!
//! # Example
//!
//! ```
//! use odps_tunnel::auth::{canonical_string, Credentials};
//!
//! let creds = Credentials::new("AK", "SK");
//! let canonical = canonical_string(
//!     "PUT",
//!     "/projects/p/tables/t",
//!     Some("uploadid=U&blockid=0&partition=pt%3Dx&arrow=&curr_project=p"),
//!     [
//!         ("Date", "Wed, 01 Jan 2025 00:00:00 GMT"),
//!         ("Content-Type", "application/octet-stream"),
//!         ("x-odps-tunnel-version", "6"),
//!         ("x-odps-user-agent", "ua"),
//!     ],
//! );
//! assert_eq!(
//!     creds.authorization(&canonical),
//!     "ODPS AK:2D8BMlBp77odOqdnjgxAqQB3CCA="
//! );
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use percent_encoding::percent_decode_str;
use sha1::Sha1;

/// Header that carries the signature.
pub const AUTHORIZATION: &str = "authorization";
/// Header that carries an STS security token (not signed).
pub const STS_TOKEN_HEADER: &str = "authorization-sts-token";
/// Prefix of the `Authorization` header value.
pub const SCHEME_PREFIX: &str = "ODPS ";

type HmacSha1 = Hmac<Sha1>;

/// A secret string whose `Debug` and `Display` never reveal it.
#[derive(Clone, Eq, PartialEq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is needed (signing).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// An AccessKey pair, optionally with an STS security token.
///
/// `Debug` shows the AccessKey id (it is not secret) and `***` for the
/// secret and the token.
#[derive(Clone)]
pub struct Credentials {
    access_id: String,
    secret: Secret,
    sts_token: Option<Secret>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_id", &self.access_id)
            .field("secret", &"***")
            .field("sts_token", &self.sts_token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Credentials {
    /// Long-term AccessKey id and secret.
    pub fn new(access_id: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            access_id: access_id.into(),
            secret: Secret::new(secret),
            sts_token: None,
        }
    }

    /// Temporary credentials: signs with the temporary pair and sends `token`
    /// in the [`STS_TOKEN_HEADER`] header.
    pub fn with_sts_token(mut self, token: impl Into<String>) -> Self {
        self.sts_token = Some(Secret::new(token));
        self
    }

    /// The AccessKey id (public).
    pub fn access_id(&self) -> &str {
        &self.access_id
    }

    /// The STS token, when these are temporary credentials.
    pub fn sts_token(&self) -> Option<&Secret> {
        self.sts_token.as_ref()
    }

    /// The signature of `canonical` with this secret.
    pub fn signature(&self, canonical: &str) -> String {
        signature(self.secret.expose(), canonical)
    }

    /// The full `Authorization` header value: `ODPS <access_id>:<signature>`.
    pub fn authorization(&self, canonical: &str) -> String {
        format!(
            "{SCHEME_PREFIX}{}:{}",
            self.access_id,
            self.signature(canonical)
        )
    }
}

/// Builds the canonical string of a request.
///
/// `path` and `query` are the raw (possibly percent-encoded) path relative to
/// the endpoint (without the endpoint's own path such as `/api`) and the query
/// string without `?`. `headers` are all request headers; names are matched
/// case-insensitively and only `Content-MD5`, `Content-Type`, `Date` and
/// `x-odps-*` are used. A later duplicate replaces an earlier one.
pub fn canonical_string<'a, I>(method: &str, path: &str, query: Option<&str>, headers: I) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut signed: BTreeMap<String, String> = BTreeMap::new();
    signed.insert("content-md5".into(), String::new());
    signed.insert("content-type".into(), String::new());
    signed.insert("date".into(), String::new());
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        if matches!(name.as_str(), "content-md5" | "content-type" | "date")
            || name.starts_with("x-odps-")
        {
            signed.insert(name, value.to_owned());
        }
    }

    let params = query.map(parse_query).unwrap_or_default();
    for (key, value) in &params {
        if key.starts_with("x-odps-") {
            signed.insert(key.clone(), value.clone());
        }
    }

    let mut out = String::with_capacity(256);
    out.push_str(&method.to_ascii_uppercase());
    for (name, value) in &signed {
        out.push('\n');
        if name.starts_with("x-odps-") {
            out.push_str(name);
            out.push(':');
        }
        out.push_str(value);
    }
    out.push('\n');
    out.push_str(&percent_decode_str(path).decode_utf8_lossy());
    if query.is_some_and(|q| !q.is_empty()) {
        out.push('?');
        for (i, (key, value)) in params.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            out.push_str(key);
            if !value.is_empty() {
                out.push('=');
                out.push_str(value);
            }
        }
    }
    out
}

/// Parses a query string the way the reference SDK does before signing: the
/// whole query is percent-decoded, split at `&`, each part split at its first
/// `=` and decoded once more (`+` is a space). Later duplicates win; the map is
/// sorted by key.
pub fn parse_query(query: &str) -> BTreeMap<String, String> {
    let decoded = percent_decode_str(query).decode_utf8_lossy();
    let mut params = BTreeMap::new();
    for part in decoded.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        params.insert(decode_component(key), decode_component(value));
    }
    params
}

fn decode_component(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

/// `base64(HMAC-SHA1(secret, canonical))`.
pub fn signature(secret: &str, canonical: &str) -> String {
    BASE64.encode(mac(secret, canonical).finalize().into_bytes())
}

fn mac(secret: &str, canonical: &str) -> HmacSha1 {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let Ok(mut mac) = HmacSha1::new_from_slice(secret.as_bytes()) else {
        unreachable!("HMAC takes keys of any length")
    };
    mac.update(canonical.as_bytes());
    mac
}

/// Checks `signature` (base64) against the one `secret` gives for
/// `canonical`, in constant time.
pub fn verify(secret: &str, canonical: &str, signature: &str) -> bool {
    match BASE64.decode(signature.trim()) {
        Ok(raw) => mac(secret, canonical).verify_slice(&raw).is_ok(),
        Err(_) => false,
    }
}

/// Splits an `Authorization: ODPS <access_id>:<signature>` value into
/// `(access_id, signature)`. Returns `None` for any other scheme.
pub fn parse_authorization(value: &str) -> Option<(&str, &str)> {
    let rest = value.trim().strip_prefix(SCHEME_PREFIX)?;
    let (id, sig) = rest.rsplit_once(':')?;
    (!id.is_empty() && !sig.is_empty() && !id.contains('/')).then_some((id, sig))
}

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Formats a time as the `Date` header wants it (RFC 1123, GMT), e.g.
/// `Wed, 01 Jan 2025 00:00:00 GMT`.
pub fn http_date(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses an RFC 1123 `Date` value (as written by [`http_date`]) into seconds
/// since the Unix epoch. Returns `None` when it is not in that form.
pub fn parse_http_date(value: &str) -> Option<i64> {
    let mut parts = value.split_whitespace();
    let _weekday = parts.next()?;
    let day: i64 = parts.next()?.parse().ok()?;
    let month = MONTHS
        .iter()
        .position(|m| Some(*m) == parts.clone().next())? as i64
        + 1;
    parts.next()?;
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(str::parse::<i64>);
    let (h, mi, s) = (hms.next()?.ok()?, hms.next()?.ok()?, hms.next()?.ok()?);
    if parts.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + mi * 60 + s)
}

/// Days since 1970-01-01 → (year, month 1..=12, day 1..=31), proleptic Gregorian.
pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01, proleptic Gregorian.
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const VECTOR_HEADERS: [(&str, &str); 4] = [
        ("Date", "Wed, 01 Jan 2025 00:00:00 GMT"),
        ("Content-Type", "application/octet-stream"),
        ("x-odps-tunnel-version", "6"),
        ("x-odps-user-agent", "ua"),
    ];

    #[test]
    fn spec_vector_canonical_and_signature() {
        let canonical = canonical_string(
            "PUT",
            "/projects/p/tables/t",
            Some("uploadid=U&blockid=0&partition=pt%3Dx&arrow=&curr_project=p"),
            VECTOR_HEADERS,
        );
        assert_eq!(
            canonical,
            "PUT\n\napplication/octet-stream\nWed, 01 Jan 2025 00:00:00 GMT\n\
             x-odps-tunnel-version:6\nx-odps-user-agent:ua\n\
             /projects/p/tables/t?arrow&blockid=0&curr_project=p&partition=pt=x&uploadid=U"
        );
        let creds = Credentials::new("AK", "SK");
        assert_eq!(
            creds.authorization(&canonical),
            "ODPS AK:2D8BMlBp77odOqdnjgxAqQB3CCA="
        );
        assert!(verify("SK", &canonical, "2D8BMlBp77odOqdnjgxAqQB3CCA="));
        assert!(!verify("SK2", &canonical, "2D8BMlBp77odOqdnjgxAqQB3CCA="));
        assert!(!verify("SK", &canonical, "not base64!"));
    }

    #[test]
    fn bare_action_signs_like_empty_value() {
        let a = canonical_string("GET", "/p", Some("data&arrow"), VECTOR_HEADERS);
        let b = canonical_string("GET", "/p", Some("arrow=&data="), VECTOR_HEADERS);
        assert_eq!(a, b);
        assert!(a.ends_with("/p?arrow&data"));
    }

    #[test]
    fn x_odps_query_params_become_header_lines() {
        let c = canonical_string("GET", "/p", Some("x-odps-a=1&b=2"), [("Date", "D")]);
        assert_eq!(c, "GET\n\n\nD\nx-odps-a:1\n/p?b=2&x-odps-a=1");
    }

    #[test]
    fn secrets_are_not_printed() {
        let creds = Credentials::new("AK", "very-secret").with_sts_token("tok-secret");
        let dbg = format!("{creds:?}");
        assert!(dbg.contains("AK"));
        assert!(!dbg.contains("very-secret"));
        assert!(!dbg.contains("tok-secret"));
        assert!(dbg.contains("***"), "{dbg}");
        let pretty = format!("{:#?}", Credentials::new("AK", "very-secret"));
        assert!(!pretty.contains("very-secret"), "{pretty}");
        assert_eq!(format!("{}", Secret::new("x")), "***");
    }

    #[test]
    fn authorization_header_parses() {
        assert_eq!(parse_authorization("ODPS AK:abc="), Some(("AK", "abc=")));
        assert_eq!(parse_authorization("Bearer x"), None);
        assert_eq!(parse_authorization("ODPS nocolon"), None);
    }

    #[test]
    fn http_date_round_trips() {
        let t = UNIX_EPOCH + Duration::from_secs(1_735_689_600);
        assert_eq!(http_date(t), "Wed, 01 Jan 2025 00:00:00 GMT");
        assert_eq!(
            parse_http_date("Wed, 01 Jan 2025 00:00:00 GMT"),
            Some(1_735_689_600)
        );
        for secs in [0_i64, 951_782_400, 4_102_444_799, 1_709_251_199] {
            let t = UNIX_EPOCH + Duration::from_secs(secs as u64);
            assert_eq!(parse_http_date(&http_date(t)), Some(secs));
        }
        assert_eq!(parse_http_date("yesterday"), None);
    }
}
