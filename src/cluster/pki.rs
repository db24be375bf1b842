//! The cluster's public-key infrastructure: a cluster CA created at `cluster certs`, one
//! certificate per node signed by it, and the mutual-TLS configurations of the node-to-node QUIC
//! transport. Only holders of a certificate signed by the cluster CA (nodes and operators running
//! `alpr-central cluster ...`) can talk to a node's peer port.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// ALPN of the node-to-node protocol.
pub const PEER_ALPN: &[u8] = b"alpr-peer/1";

const CA_NAME: &str = "alpr-central cluster CA";

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_NAME);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

fn write_key(path: &Path, pem: &str) -> Result<()> {
    crate::tls::write_secret_file(path, pem)
}

/// Creates the CA in `dir` (ca.pem, ca-key.pem) unless it exists.
pub fn ensure_ca(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
    if cert_path.exists() && key_path.exists() {
        return Ok(());
    }
    let key = KeyPair::generate().context("generating the CA key")?;
    let cert = ca_params()
        .self_signed(&key)
        .context("self-signing the CA")?;
    write_key(&key_path, &key.serialize_pem())?;
    std::fs::write(&cert_path, cert.pem())
        .with_context(|| format!("writing {}", cert_path.display()))?;
    Ok(())
}

/// Issues `<name>.pem` and `<name>-key.pem` in `dir`, signed by the CA there, valid for `ips`.
pub fn issue(dir: &Path, name: &str, ips: &[IpAddr]) -> Result<()> {
    let key_pem = std::fs::read_to_string(dir.join("ca-key.pem")).with_context(|| {
        format!(
            "reading the CA key in {} (run `cluster certs` first)",
            dir.display()
        )
    })?;
    let ca_key = KeyPair::from_pem(&key_pem).context("parsing the CA key")?;
    let issuer = Issuer::new(ca_params(), ca_key);
    let mut params =
        CertificateParams::new(vec!["localhost".to_string()]).context("certificate parameters")?;
    params
        .distinguished_name
        .push(DnType::CommonName, name.to_string());
    for ip in ips {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    let key = KeyPair::generate().context("generating a node key")?;
    let cert = params
        .signed_by(&key, &issuer)
        .with_context(|| format!("signing the certificate of {name}"))?;
    write_key(&dir.join(format!("{name}-key.pem")), &key.serialize_pem())?;
    let path = dir.join(format!("{name}.pem"));
    std::fs::write(&path, cert.pem()).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// A node's or operator's identity inside the cluster.
pub struct PeerIdentity {
    roots: Arc<rustls::RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl PeerIdentity {
    /// Loads `<dir>/ca.pem`, `<dir>/<name>.pem` and `<dir>/<name>-key.pem`.
    pub fn load(dir: &Path, name: &str) -> Result<Self> {
        let ca_path = dir.join("ca.pem");
        let mut roots = rustls::RootCertStore::empty();
        let ca = CertificateDer::from_pem_file(&ca_path)
            .with_context(|| format!("reading the cluster CA {}", ca_path.display()))?;
        roots.add(ca).context("adding the cluster CA")?;
        let cert_path: PathBuf = dir.join(format!("{name}.pem"));
        let key_path: PathBuf = dir.join(format!("{name}-key.pem"));
        let cert = CertificateDer::from_pem_file(&cert_path)
            .with_context(|| format!("reading {}", cert_path.display()))?;
        let key = PrivateKeyDer::from_pem_file(&key_path)
            .with_context(|| format!("reading {}", key_path.display()))?;
        Ok(Self {
            roots: Arc::new(roots),
            chain: vec![cert],
            key,
        })
    }

    /// QUIC server side: requires a client certificate signed by the cluster CA.
    pub fn quic_server(&self) -> Result<quinn::ServerConfig> {
        let verifier = rustls::server::WebPkiClientVerifier::builder(self.roots.clone())
            .build()
            .context("building the client-certificate verifier")?;
        let mut tls = rustls::ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .context("peer TLS server configuration")?;
        tls.alpn_protocols = vec![PEER_ALPN.to_vec()];
        let crypto =
            quinn::crypto::rustls::QuicServerConfig::try_from(tls).context("QUIC server crypto")?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        config.transport_config(Arc::new(transport()));
        Ok(config)
    }

    /// QUIC client side: presents this identity and trusts only the cluster CA.
    pub fn quic_client(&self) -> Result<quinn::ClientConfig> {
        let mut tls = rustls::ClientConfig::builder()
            .with_root_certificates(self.roots.clone())
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .context("peer TLS client configuration")?;
        tls.alpn_protocols = vec![PEER_ALPN.to_vec()];
        let crypto =
            quinn::crypto::rustls::QuicClientConfig::try_from(tls).context("QUIC client crypto")?;
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        config.transport_config(Arc::new(transport()));
        Ok(config)
    }
}

fn transport() -> quinn::TransportConfig {
    let mut transport = quinn::TransportConfig::default();
    transport.max_concurrent_bidi_streams(1024u32.into());
    transport.keep_alive_interval(Some(std::time::Duration::from_millis(500)));
    if let Ok(timeout) = quinn::IdleTimeout::try_from(std::time::Duration::from_secs(3)) {
        transport.max_idle_timeout(Some(timeout));
    }
    transport
}

/// Parses "127.0.0.1,127.0.0.2" into addresses.
pub fn parse_ips(text: &str) -> Result<Vec<IpAddr>> {
    let mut ips = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        ips.push(
            part.parse()
                .with_context(|| format!("'{part}' is not an IP address"))?,
        );
    }
    if ips.is_empty() {
        bail!("no IP address given");
    }
    Ok(ips)
}
