//! TLS to PostgreSQL with libpq's URL parameters, which tokio-postgres does not read itself:
//! `sslmode` (`disable`, `prefer`, `require`, `verify-ca`, `verify-full`), `sslrootcert` (a PEM
//! file, or `system` for the system's roots), `sslcert` and `sslkey` (the client's, for a server
//! that asks for one). [`split`] takes them out of the URL; [`connector`] makes the rustls
//! connector they describe.
//!
//! As libpq: without `sslmode` it is `prefer` (TLS if the server offers it, else plain text);
//! `prefer` and `require` encrypt without checking who answers, unless `sslrootcert` is given
//! (then `require` checks the chain, as `verify-ca`); `verify-ca` checks that the certificate
//! chains to a trusted CA; `verify-full` also that it names the host. Without `sslrootcert` the
//! `verify-*` modes trust the system's roots (libpq reads `~/.postgresql/root.crt`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// `sslmode`, as libpq names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "disable" => Self::Disable,
            "allow" | "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// Where the roots come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    System,
    File(PathBuf),
}

/// The TLS parameters of a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTls {
    pub mode: SslMode,
    pub root: Option<Roots>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl PgTls {
    /// Whether the certificate's chain is checked.
    fn checks_chain(&self) -> bool {
        match self.mode {
            SslMode::VerifyCa | SslMode::VerifyFull => true,
            SslMode::Require => self.root.is_some(),
            SslMode::Disable | SslMode::Prefer => false,
        }
    }

    /// One line for `config check` and the start-up log.
    pub fn describe(&self) -> String {
        let what = match self.mode {
            SslMode::Disable => "plain text",
            SslMode::Prefer if !self.checks_chain() => {
                "TLS when the server offers it, its certificate not checked"
            }
            SslMode::Require if !self.checks_chain() => "TLS, the certificate not checked",
            SslMode::VerifyFull => "TLS, certificate chain and host name checked",
            _ => "TLS, certificate chain checked (not the host name)",
        };
        format!("sslmode={}: {what}", self.mode.name())
    }

    /// Whether TLS is on without any check of who answers.
    pub fn unverified(&self) -> bool {
        self.mode != SslMode::Disable && !self.checks_chain()
    }
}

/// Why the TLS parameters cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PgTlsError {
    #[error("{0}")]
    Url(String),
    #[error("{path}: {problem}")]
    File { path: PathBuf, problem: String },
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The URL without libpq's TLS parameters (with `sslmode` as tokio-postgres reads it), and those
/// parameters. The rest of the URL is kept byte for byte (several hosts, percent-escapes), as
/// tokio-postgres reads it.
pub fn split(url: &str) -> Result<(String, PgTls), PgTlsError> {
    let mut tls = PgTls {
        mode: SslMode::Prefer,
        root: None,
        cert: None,
        key: None,
    };
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept: Vec<&str> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, raw) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .map_err(|e| PgTlsError::Url(format!("{k}: {e}")))?;
        match k {
            "sslmode" => {
                tls.mode = SslMode::parse(&v).ok_or_else(|| {
                    PgTlsError::Url(format!(
                        "sslmode={v}: expected disable, prefer, require, verify-ca or verify-full"
                    ))
                })?;
            }
            "sslrootcert" if v == "system" => tls.root = Some(Roots::System),
            "sslrootcert" => tls.root = Some(Roots::File(PathBuf::from(&*v))),
            "sslcert" => tls.cert = Some(PathBuf::from(&*v)),
            "sslkey" => tls.key = Some(PathBuf::from(&*v)),
            _ => kept.push(pair),
        }
    }
    let driver_mode = match tls.mode {
        SslMode::Disable => "sslmode=disable",
        SslMode::Prefer => "sslmode=prefer",
        _ => "sslmode=require",
    };
    kept.push(driver_mode);
    if tls.cert.is_some() != tls.key.is_some() {
        return Err(PgTlsError::Url(
            "a client certificate needs its key: give both sslcert and sslkey, or neither".into(),
        ));
    }
    // As PostgreSQL 16's libpq: the system's roots vouch for a name, not for a server, so they
    // go with verify-full only; verify-ca needs the CA of the database's own certificates.
    match (tls.mode, &tls.root) {
        (SslMode::VerifyCa, None) => {
            return Err(PgTlsError::Url(
                "sslmode=verify-ca needs sslrootcert=<the CA file that signed the server's \
                 certificate>; with the system's roots use verify-full"
                    .into(),
            ))
        }
        (SslMode::VerifyCa | SslMode::Require | SslMode::Prefer, Some(Roots::System)) => {
            return Err(PgTlsError::Url(format!(
                "sslrootcert=system goes with sslmode=verify-full only (any publicly trusted \
                 certificate would pass {})",
                tls.mode.name()
            )))
        }
        _ => {}
    }
    Ok((format!("{base}?{}", kept.join("&")), tls))
}

/// Reads every file `tls` names now, so that a wrong one stops the start with its name.
pub fn check_files(tls: &PgTls) -> Result<(), PgTlsError> {
    connector(tls).map(drop)
}

/// The rustls connector `tls` describes.
pub fn connector(tls: &PgTls) -> Result<tokio_postgres_rustls::MakeRustlsConnect, PgTlsError> {
    let provider = Arc::new(crate::engines::tls::provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?;
    let webpki = if tls.checks_chain() {
        let roots = Arc::new(roots(tls.root.as_ref().unwrap_or(&Roots::System))?);
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
            .build()
            .map_err(|e| {
                PgTlsError::Url(format!("sslrootcert: no usable root certificate: {e}"))
            })?;
        Some(webpki)
    } else {
        None
    };
    let verifier = Arc::new(Verifier {
        webpki,
        names: tls.mode == SslMode::VerifyFull,
        provider,
    });
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let chain = pem_certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| PgTlsError::File {
                path: key.clone(),
                problem: format!("no private key in it: {e}"),
            })?;
            builder.with_client_auth_cert(chain, key)?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

fn pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PgTlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| PgTlsError::File {
            path: path.to_owned(),
            problem: format!("cannot read a certificate from it: {e}"),
        })?;
    if certs.is_empty() {
        return Err(PgTlsError::File {
            path: path.to_owned(),
            problem: "no certificate in it".into(),
        });
    }
    Ok(certs)
}

fn roots(from: &Roots) -> Result<RootCertStore, PgTlsError> {
    let mut store = RootCertStore::empty();
    match from {
        Roots::File(path) => {
            for cert in pem_certs(path)? {
                store.add(cert).map_err(|e| PgTlsError::File {
                    path: path.clone(),
                    problem: format!("not a usable CA certificate: {e}"),
                })?;
            }
        }
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(PgTlsError::Url(
                    "sslrootcert: the system has no root certificates; give a CA file".into(),
                ));
            }
        }
    }
    Ok(store)
}

/// What a mode checks of the server's certificate: for `verify-ca` and `verify-full` the chain to
/// a trusted root (`webpki`), for `verify-full` also the host name (`names`); for `prefer` and
/// `require` without `sslrootcert` nothing (libpq's rule: encrypted, whoever answers). The
/// handshake's signatures are checked in every mode, so the key exchange is with the
/// certificate's key.
#[derive(Debug)]
struct Verifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    names: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(webpki) = &self.webpki else {
            return Ok(ServerCertVerified::assertion());
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.names => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_parameters_are_taken_out_of_the_url() {
        let (url, tls) = split(
            "postgresql://app:pw@db.example:5432/sessions?sslmode=verify-full&sslrootcert=/ca.pem\
             &application_name=x%20y",
        )
        .expect("split");
        assert_eq!(
            url,
            "postgresql://app:pw@db.example:5432/sessions?application_name=x%20y&sslmode=require"
        );
        assert_eq!(tls.mode, SslMode::VerifyFull);
        assert_eq!(tls.root, Some(Roots::File("/ca.pem".into())));
        let (url, tls) = split("postgresql:///s?host=/run/postgresql").expect("split");
        assert!(url.ends_with("sslmode=prefer"), "{url}");
        assert_eq!(tls.mode, SslMode::Prefer);
        assert!(tls.unverified());
        let (_, tls) = split("postgresql://h/s?sslmode=require&sslrootcert=/ca.pem").expect("split");
        assert!(tls.checks_chain() && !tls.unverified());
        let (url, _) = split("postgresql://pg1:5432,pg2:5432/s?target_session_attrs=read-write")
            .expect("several hosts");
        assert!(url.starts_with("postgresql://pg1:5432,pg2:5432/s?target_session_attrs"));
        assert!(split("postgresql://h/s?sslmode=verify-ca").is_err());
        assert!(split("postgresql://h/s?sslmode=verify-ca&sslrootcert=system").is_err());
        split("postgresql://h/s?sslmode=verify-full&sslrootcert=system").expect("system roots");
        assert!(split("postgresql://h/s?sslmode=verify").is_err());
        assert!(split("postgresql://h/s?sslcert=/c.pem").is_err());
    }
}
