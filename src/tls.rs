//! One TLS crypto provider for the whole process. Our clients (IMAP, SMTP) use rustls with
//! *ring*; the DKIM resolver's dependencies enable rustls' aws-lc-rs as well, and with both
//! compiled in rustls refuses to guess. Installing *ring* as the process default, once,
//! before any TLS configuration is built, settles it.

/// Makes *ring* the process-wide rustls provider (a no-op after the first call).
pub fn install_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err only when a provider is already installed, which is what we want anyway.
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    });
}
