//! Mutual TLS: Bru presents a client certificate (the enterprise certificate,
//! virksomhetssertifikat, that X-Road and many Norwegian APIs expect) and
//! trusts only the provider's own CA.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::credentials::CredentialError;

/// A client certificate with its key and the provider's pinned CA, as one
/// rustls configuration. Needs a connection pool of its own, which the
/// [`crate::Connector`] keys by [`ClientIdentity::id`].
#[derive(Clone)]
pub struct ClientIdentity {
    id: u64,
    tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientIdentity(#{})", self.id)
    }
}

impl ClientIdentity {
    /// `cert_chain_pem`: the client certificate first, then any
    /// intermediates; `key_pem`: its private key (PKCS#8, or PKCS#1 / SEC1);
    /// `ca_pem`: the only certificates trusted for the provider's server.
    pub fn from_pem(
        cert_chain_pem: &[u8],
        key_pem: &[u8],
        ca_pem: &[u8],
    ) -> Result<ClientIdentity, CredentialError> {
        let chain = CertificateDer::pem_slice_iter(cert_chain_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| {
                CredentialError::InvalidCertificate("the client certificate file is not PEM")
            })?;
        if chain.is_empty() {
            return Err(CredentialError::InvalidCertificate(
                "the client certificate file holds no certificate",
            ));
        }
        // The message never quotes the file: it holds a private key.
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| {
            CredentialError::InvalidKey("the client key file holds no PEM private key")
        })?;
        let cas = CertificateDer::pem_slice_iter(ca_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| CredentialError::InvalidCertificate("the CA file is not PEM"))?;
        let mut roots = rustls::RootCertStore::empty();
        for ca in cas {
            roots
                .add(ca)
                .map_err(|e| CredentialError::Tls(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(CredentialError::InvalidCertificate(
                "the CA file holds no certificate",
            ));
        }
        let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| CredentialError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| CredentialError::Tls(e.to_string()))?;
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Ok(ClientIdentity {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            tls: Arc::new(tls),
        })
    }

    /// Unique per identity loaded; clones share it (and so their connections).
    pub fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn tls(&self) -> Arc<rustls::ClientConfig> {
        Arc::clone(&self.tls)
    }
}
