//! The mock's TLS identity: a CA and a leaf certificate (for `localhost`, `127.0.0.1` and `::1`)
//! generated at start, so HTTPS runs need no files and clients trust the mock by its CA PEM only.

use std::io;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

pub(super) struct Identity {
    pub(super) server_config: Arc<rustls::ServerConfig>,
    pub(super) ca_pem: String,
}

fn tls_error(what: &str, err: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("mock tls: {what}: {err}"))
}

impl Identity {
    pub(super) fn generate() -> io::Result<Identity> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())
            .map_err(|e| tls_error("CA parameters", e))?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "pacer mock CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().map_err(|e| tls_error("CA key", e))?;
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .map_err(|e| tls_error("CA certificate", e))?;
        let issuer = Issuer::new(ca_params, ca_key);

        let names = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ];
        let mut leaf_params =
            CertificateParams::new(names).map_err(|e| tls_error("leaf parameters", e))?;
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        leaf_params.use_authority_key_identifier_extension = true;
        leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = KeyPair::generate().map_err(|e| tls_error("leaf key", e))?;
        let leaf_cert = leaf_params
            .signed_by(&leaf_key, &issuer)
            .map_err(|e| tls_error("leaf certificate", e))?;

        let chain = vec![leaf_cert.der().clone(), ca_cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("protocol versions", e))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| tls_error("server certificate", e))?;
        // Clients offering h2 and http/1.1 (curl) must settle on the only protocol the mock speaks.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Identity {
            server_config: Arc::new(config),
            ca_pem: ca_cert.pem(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_a_ca_pem() {
        let identity = Identity::generate().unwrap();
        assert!(identity.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(
            identity.server_config.alpn_protocols,
            vec![b"http/1.1".to_vec()]
        );
    }
}
