//! TLS through rustls: the four modes MySQL clients know, with an optional
//! custom CA.
//!
//! | mode | encrypts | checks the chain | checks the host name |
//! |---|---|---|---|
//! | [`TlsMode::Disabled`] | no | – | – |
//! | [`TlsMode::Required`] | yes | no | no |
//! | [`TlsMode::VerifyCa`] | yes | yes | no |
//! | [`TlsMode::VerifyIdentity`] | yes | yes | yes |
//!
//! `verify_ca` needs a custom CA (`ssl-ca`): trusting every public CA while
//! ignoring the host name would accept any publicly certified server, so
//! it is refused. `verify_identity` without a custom CA trusts the Mozilla
//! roots (`webpki-roots`), which is safe because the host name is checked
//! (cloud databases with public certificates).
//!
//! Only the `verify_*` modes count as protected for sending a password
//! itself (see `ConnectOptions::enable_cleartext_plugin`); `preferred` and
//! `required` are logged as unverified once per server.

use crate::error::{Error, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;

/// How the connection uses TLS.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub enum TlsMode {
    /// Plain TCP.
    Disabled,
    /// TLS if the server offers it, plain otherwise (MySQL's `PREFERRED`).
    #[default]
    Preferred,
    /// TLS, but any certificate is accepted (encryption without authentication).
    Required,
    /// TLS, the certificate must chain to the CA of `ssl-ca` (required);
    /// the host name is not checked.
    VerifyCa,
    /// TLS, trusted chain (the `ssl-ca` CA, else the public roots) and a
    /// certificate valid for the host name.
    VerifyIdentity,
}

impl TlsMode {
    /// Parses the usual spellings (`disabled`, `preferred`, `required`,
    /// `verify_ca`/`verify-ca`, `verify_identity`/`verify-identity`).
    ///
    /// # Errors
    /// [`Error::Url`] for anything else.
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "disabled" | "disable" | "false" | "off" => Ok(Self::Disabled),
            "preferred" | "prefer" => Ok(Self::Preferred),
            "required" | "require" | "true" | "on" => Ok(Self::Required),
            "verify_ca" => Ok(Self::VerifyCa),
            "verify_identity" | "verify_full" => Ok(Self::VerifyIdentity),
            other => Err(Error::Url(format!("unknown TLS mode '{other}'"))),
        }
    }

    /// True when the connection must fail if the server offers no TLS.
    pub fn is_mandatory(self) -> bool {
        matches!(self, Self::Required | Self::VerifyCa | Self::VerifyIdentity)
    }

    /// True when the server's certificate is verified (`verify_ca`,
    /// `verify_identity`): only then may a password itself travel over
    /// the connection without an explicit opt-in.
    pub fn is_verified(self) -> bool {
        matches!(self, Self::VerifyCa | Self::VerifyIdentity)
    }
}

/// Builds the rustls client configuration for `mode` (not called for `Disabled`).
///
/// `ca_pem` replaces the default roots when given.
///
/// # Errors
/// [`Error::Tls`] when the CA file holds no usable certificate, or for
/// [`TlsMode::VerifyCa`] without `ca_pem`.
pub fn client_config(mode: TlsMode, ca_pem: Option<&[u8]>) -> Result<Arc<ClientConfig>> {
    if mode == TlsMode::VerifyCa && ca_pem.is_none() {
        return Err(Error::Tls(
            "ssl-mode=verify_ca needs ssl-ca=PATH (the CA that signs the server certificate); \
             without it use ssl-mode=verify_identity, which checks the host name"
                .into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?;
    let roots = root_store(ca_pem)?;
    let config = match mode {
        TlsMode::Disabled | TlsMode::Preferred | TlsMode::Required => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(
                provider.signature_verification_algorithms,
            )))
            .with_no_client_auth(),
        TlsMode::VerifyCa => {
            let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| Error::Tls(e.to_string()))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly(inner)))
                .with_no_client_auth()
        }
        TlsMode::VerifyIdentity => builder.with_root_certificates(roots).with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn root_store(ca_pem: Option<&[u8]>) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| Error::Tls(format!("cannot read the CA file: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| Error::Tls(format!("unusable CA certificate: {e}")))?;
            }
            if roots.is_empty() {
                return Err(Error::Tls("the CA file holds no certificate".into()));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(roots)
}

/// The server name rustls checks (VerifyIdentity) and sends as SNI.
///
/// # Errors
/// [`Error::Tls`] for a host that is neither a DNS name nor an IP address.
pub fn server_name(host: &str) -> Result<ServerName<'static>> {
    ServerName::try_from(host.to_owned())
        .map_err(|e| Error::Tls(format!("invalid TLS server name '{host}': {e}")))
}

/// Turns a failed TLS handshake into [`Error::Certificate`] when the
/// certificate was the reason, [`Error::Tls`] otherwise.
pub(crate) fn handshake_error(e: std::io::Error) -> Error {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::InvalidCertificate(c)) => Error::Certificate(format!("{c:?}")),
        Some(other) => Error::Tls(other.to_string()),
        None => Error::Tls(e.to_string()),
    }
}

/// `required`: encryption, no authentication of the server.
#[derive(Debug)]
struct AcceptAnyCert(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// `verify_ca`: the chain must lead to a trusted root; a name mismatch is forgiven.
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
