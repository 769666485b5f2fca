//! The one TLS library of the engines (rustls) and its cryptography (ring), shared by every
//! engine that speaks TLS.

/// ring rather than aws-lc-rs (rustls's default, whose post-quantum key exchange is why ring's
/// provider is marked deprecated): it builds with the C compiler alone, in a fraction of the
/// time.
pub fn provider() -> rustls::crypto::CryptoProvider {
    #[allow(deprecated)]
    rustls::crypto::ring::default_provider()
}

/// Makes [`provider`] the process's default, for the client libraries that ask for the default
/// rather than take a provider. Called before any such client is made; later calls do nothing.
pub fn install_provider() {
    let _ = provider().install_default();
}
