//! Which certificate authorities the IMAP and SMTP clients trust.
//!
//! The system's trust store (on Debian `/etc/ssl/certs`, kept by the `ca-certificates` package,
//! read with rustls-native-certs) plus the certificates of `ca_file` — an internal CA, or the
//! Russian national root that government mail servers use and Mozilla's list lacks. Certificates
//! are always verified: there is no setting that turns verification off.
//!
//! ring is the only crypto provider (lettre and tokio-rustls are built with it); it is named
//! explicitly so that rustls never has to guess a process-wide default.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;

/// The roots one connection trusts.
#[derive(Clone, Debug, Default)]
pub struct Trust {
    /// The certificates of `ca_file`, already checked to be usable as roots.
    extra: Vec<CertificateDer<'static>>,
    ca_file: Option<PathBuf>,
}

/// The system's roots, read once per process; `None` when the system has no trust store.
fn system_roots() -> Option<&'static [CertificateDer<'static>]> {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    let roots = ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        // Keep only what rustls can use as a root: one unusable certificate in the system
        // bundle must not make the whole set unusable (lettre adds them one by one and fails
        // on the first it cannot parse).
        let usable: Vec<CertificateDer<'static>> = found
            .certs
            .into_iter()
            .filter(|c| RootCertStore::empty().add(c.clone()).is_ok())
            .collect();
        if usable.is_empty() {
            tracing::warn!(
                errors = found.errors.len(),
                "no system trust store found (is ca-certificates installed?); trusting the Mozilla roots built into mailintake"
            );
        } else {
            tracing::debug!(roots = usable.len(), "system trust store loaded");
        }
        usable
    });
    (!roots.is_empty()).then_some(roots.as_slice())
}

/// Read a PEM file of one or more CA certificates; each must be usable as a root.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    for (i, c) in certs.iter().enumerate() {
        RootCertStore::empty().add(c.clone()).map_err(|e| {
            format!(
                "{}: certificate {} cannot be a trust root: {e}",
                path.display(),
                i + 1
            )
        })?;
    }
    Ok(certs)
}

impl Trust {
    /// The system's roots only.
    pub fn system() -> Trust {
        Trust::default()
    }

    /// The system's roots and, when given, those of `ca_file`.
    pub fn with_ca_file(ca_file: Option<&Path>) -> Result<Trust, String> {
        let Some(path) = ca_file else {
            return Ok(Trust::system());
        };
        Ok(Trust {
            extra: read_ca_file(path)?,
            ca_file: Some(path.to_path_buf()),
        })
    }

    /// The configured `ca_file`, for error messages.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    pub fn root_store(&self) -> RootCertStore {
        let mut store = RootCertStore::empty();
        match system_roots() {
            Some(roots) => {
                store.add_parsable_certificates(roots.iter().cloned());
            }
            None => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        store.add_parsable_certificates(self.extra.iter().cloned());
        store
    }

    /// A rustls client configuration (for IMAP) with ring as its provider.
    pub fn rustls_config(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS configuration: {e}"))?
            .with_root_certificates(self.root_store())
            .with_no_client_auth();
        Ok(Arc::new(config))
    }

    /// lettre's TLS parameters (for SMTP) trusting the same roots.
    pub fn lettre_parameters(
        &self,
        host: &str,
    ) -> Result<lettre::transport::smtp::client::TlsParameters, String> {
        use lettre::transport::smtp::client::{Certificate, CertificateStore, TlsParameters};
        let mut b = TlsParameters::builder(host.to_string());
        b = match system_roots() {
            Some(roots) => {
                let mut b = b.certificate_store(CertificateStore::None);
                for der in roots {
                    if let Ok(c) = Certificate::from_der(der.to_vec()) {
                        b = b.add_root_certificate(c);
                    }
                }
                b
            }
            None => b.certificate_store(CertificateStore::WebpkiRoots),
        };
        for der in &self.extra {
            let c = Certificate::from_der(der.to_vec()).map_err(|e| e.to_string())?;
            b = b.add_root_certificate(c);
        }
        b.build_rustls().map_err(|e| e.to_string())
    }

    /// A hint to add to a certificate error: where an administrator puts the issuing CA.
    pub fn hint(&self, section: &str) -> String {
        match &self.ca_file {
            Some(p) => format!(
                "the certificate is issued by none of the system's CAs nor those in {section}.ca_file ({})",
                p.display()
            ),
            None => format!(
                "if the server's certificate comes from an internal or national CA, put that CA's certificate (PEM) in {section}.ca_file"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_certificates_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.pem");
        std::fs::write(&p, "not a certificate\n").unwrap();
        let err = Trust::with_ca_file(Some(&p)).unwrap_err();
        assert!(
            err.contains("ca.pem") && err.contains("no certificate"),
            "{err}"
        );
        let missing = Trust::with_ca_file(Some(&dir.path().join("nope.pem"))).unwrap_err();
        assert!(missing.contains("nope.pem"), "{missing}");
    }

    #[test]
    fn the_default_trusts_some_roots_and_builds_both_clients() {
        let t = Trust::system();
        assert!(!t.root_store().is_empty());
        t.rustls_config().unwrap();
        t.lettre_parameters("mail.example.org").unwrap();
    }
}
