//! The node's TLS identity: a certificate and key generated on first start (rcgen) and kept in
//! the data directory, used by every listener (HTTPS API, QUIC cameras). Clients trust it by
//! loading the certificate file (`<data_dir>/tls/node-cert.pem`) or checking its fingerprint.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// ALPN protocol of the camera protocol.
pub const CAMERA_ALPN: &[u8] = b"alpr-camera/1";

/// Installs the process-wide rustls crypto provider (ring). Safe to call more than once.
pub fn init_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub struct NodeIdentity {
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
    pub cert_path: PathBuf,
}

impl NodeIdentity {
    /// Loads the identity from `<data_dir>/tls`, creating it on first start.
    pub fn load_or_create(data_dir: &Path, names: &[String]) -> Result<Self> {
        let dir = data_dir.join("tls");
        let cert_path = dir.join("node-cert.pem");
        let key_path = dir.join("node-key.pem");
        if !cert_path.exists() || !key_path.exists() {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let mut sans: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
            for name in names {
                if !sans.contains(name) {
                    sans.push(name.clone());
                }
            }
            let generated = rcgen::generate_simple_self_signed(sans)
                .context("generating the node certificate")?;
            write_private(&key_path, generated.signing_key.serialize_pem().as_bytes())?;
            std::fs::write(&cert_path, generated.cert.pem())
                .with_context(|| format!("writing {}", cert_path.display()))?;
            tracing::info!(path = %cert_path.display(), "generated the node TLS certificate");
        }
        let cert = CertificateDer::from_pem_file(&cert_path)
            .with_context(|| format!("reading certificate {}", cert_path.display()))?;
        let key = PrivateKeyDer::from_pem_file(&key_path)
            .with_context(|| format!("reading private key {}", key_path.display()))?;
        Ok(Self {
            cert,
            key,
            cert_path,
        })
    }

    /// SHA-256 of the certificate, as colon-separated hex (what a person compares).
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.cert)
    }

    /// A rustls server configuration with the given ALPN protocols.
    pub fn server_config(&self, alpn: &[&[u8]]) -> Result<rustls::ServerConfig> {
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], self.key.clone_key())
            .context("building the TLS server configuration")?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }
}

pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = Sha256::digest(cert.as_ref());
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A rustls client configuration trusting exactly the certificate(s) in `cert_pem_path`.
pub fn client_config_trusting(
    cert_pem_path: &Path,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_pem_path)
        .with_context(|| format!("reading server certificate {}", cert_pem_path.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing server certificate {}", cert_pem_path.display()))?;
    for cert in certs {
        roots
            .add(cert)
            .context("adding the server certificate as a trust root")?;
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Writes a file readable only by its owner (bootstrap passwords, keys).
pub fn write_secret_file(path: &Path, text: &str) -> Result<()> {
    write_private(path, text.as_bytes())
}
