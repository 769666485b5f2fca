//! The checks of `[session.redis]`'s URLs (which schemes each key takes) and TLS files (readable,
//! PEM, a certificate with its key), and how a URL with a password is shown in their errors,
//! apart from the table's shape in `config.rs`.

use ::redis::IntoConnectionInfo;

use std::path::PathBuf;

use crate::config::check::Invalid;

pub(super) fn url_scheme(url: &str) -> Option<&str> {
    url.split_once("://").map(|(scheme, _)| scheme)
}

/// The TLS files: a client certificate with its key or neither, each one readable, and some URL
/// in use that asks for TLS.
pub(super) fn check_tls(
    tls: &TlsFiles,
    url: &str,
    cluster_urls: &[String],
    sentinel_urls: &[String],
) -> Result<(), Invalid> {
    let files = [
        ("session.redis.tls_ca_file", &tls.ca),
        ("session.redis.tls_cert_file", &tls.cert),
        ("session.redis.tls_key_file", &tls.key),
    ];
    for (key, path) in files {
        let Some(path) = path else { continue };
        let refused = |why: String| {
            Invalid::new(key, format!("{:?}", path.display().to_string()), why)
        };
        let bytes = std::fs::read(path).map_err(|e| refused(format!("cannot read it: {e}")))?;
        // Read as the connection will read it, so that a wrong file stops the start rather
        // than every connection.
        use rustls::pki_types::pem::PemObject;
        let usable = if key.ends_with("tls_key_file") {
            rustls::pki_types::PrivateKeyDer::from_pem_slice(&bytes).is_ok()
        } else {
            let certs: Result<Vec<_>, _> =
                rustls::pki_types::CertificateDer::pem_slice_iter(&bytes).collect();
            certs.is_ok_and(|c| !c.is_empty())
        };
        if !usable {
            return Err(refused(if key.ends_with("tls_key_file") {
                "no PEM private key in it".into()
            } else {
                "no PEM certificate in it".into()
            }));
        }
    }
    if tls.cert.is_some() != tls.key.is_some() {
        let (key, path) = if tls.cert.is_some() {
            ("session.redis.tls_cert_file", &tls.cert)
        } else {
            ("session.redis.tls_key_file", &tls.key)
        };
        let shown_path = path.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        return Err(Invalid::new(
            key,
            format!("{shown_path:?}"),
            "a client certificate needs its key: set both tls_cert_file and tls_key_file, or \
             neither",
        ));
    }
    let in_use: Vec<&str> = if !cluster_urls.is_empty() {
        cluster_urls.iter().map(String::as_str).collect()
    } else {
        std::iter::once(url)
            .chain(sentinel_urls.iter().map(String::as_str))
            .collect()
    };
    if !tls.is_empty() && !in_use.iter().any(|u| url_scheme(u) == Some("rediss")) {
        return Err(Invalid::new(
            "session.redis.tls_ca_file",
            "(set)",
            "TLS files are set but no URL asks for TLS: use rediss:// in url (or cluster_urls, \
             sentinel_urls)",
        ));
    }
    Ok(())
}

/// Which URLs a key takes: a cluster's nodes are reached over TCP only, in database 0.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Single,
    Cluster,
    Sentinel,
}

impl Mode {
    fn schemes(self) -> &'static [&'static str] {
        match self {
            Self::Single => &["redis", "rediss", "unix", "redis+unix"],
            Self::Cluster | Self::Sentinel => &["redis", "rediss"],
        }
    }

    fn allowed(self) -> &'static str {
        match self {
            Self::Single => {
                "expected redis://[user:password@]host[:port][/db] (rediss:// for TLS) or \
                 unix:///path/to/redis.sock[?db=N] (also redis+unix://)"
            }
            Self::Cluster => {
                "expected redis://[user:password@]host[:port] (rediss:// for TLS) for each \
                 cluster node (a unix socket cannot reach a cluster)"
            }
            Self::Sentinel => {
                "expected redis://host:port (rediss:// for TLS) for each Sentinel"
            }
        }
    }
}

/// Checks that `url` is a Redis URL `mode` accepts, as the `redis` crate will read it.
pub(super) fn check_url(key: &'static str, url: &str, mode: Mode) -> Result<(), Invalid> {
    let wrong = |allowed: &str| Invalid::new(key, shown(url), allowed);
    let scheme = url_scheme(url);
    if !scheme.is_some_and(|s| mode.schemes().contains(&s)) {
        return Err(wrong(mode.allowed()));
    }
    let parsed = redis::parse_redis_url(url).ok_or_else(|| wrong(mode.allowed()))?;
    let info = parsed
        .into_connection_info()
        .map_err(|_| wrong(mode.allowed()))?;
    if mode == Mode::Cluster && info.redis_settings().db() != 0 {
        return Err(wrong(
            "Redis Cluster has database 0 only: leave the /db out",
        ));
    }
    Ok(())
}

/// `tls_ca_file`, `tls_cert_file`, `tls_key_file`: paths, checked readable at load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl TlsFiles {
    pub fn is_empty(&self) -> bool {
        self.ca.is_none() && self.cert.is_none() && self.key.is_none()
    }
}

/// `url` as an error may show it: quoted, with any password (`user:password@` or `?pass=`)
/// replaced by `***`.
pub(super) fn shown(url: &str) -> String {
    let Some(mut parsed) = redis::parse_redis_url(url) else {
        // Not parsable: whatever stands between `://` and the last `@` may be a password.
        return match url.split_once("://") {
            Some((scheme, rest)) if rest.contains('@') => {
                let host = rest.rsplit_once('@').map_or("", |(_, host)| host);
                format!("{:?}", format!("{scheme}://***@{host}"))
            }
            _ => format!("{url:?}"),
        };
    };
    let in_userinfo = parsed.password().is_some();
    let in_query = parsed.query_pairs().any(|(k, _)| k == "pass");
    if !in_userinfo && !in_query {
        return format!("{url:?}");
    }
    if in_userinfo && parsed.set_password(Some("***")).is_err() {
        return "(a URL with a password)".to_owned();
    }
    if in_query {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "pass" {
                    "***".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    format!("{:?}", parsed.as_str())
}
