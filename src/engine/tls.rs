//! TLS client setup: rustls with the webpki roots (public endpoints such as Fireworks), an optional
//! extra CA from a PEM file (private endpoints, tests), or verification switched off when the user
//! asks for `insecure` (the report's config then says so). One `ClientConfig` is shared by every
//! connection of a run, so its session cache gives resumption across reconnects. ALPN offers only
//! `http/1.1`: the engine speaks nothing else.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error, RootCertStore, SignatureScheme,
};

/// Builds the run's client configuration. Errors are setup errors with a readable message.
pub fn client_config(
    ca_cert: Option<&std::path::Path>,
    insecure: bool,
) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls setup: {e}"))?;
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = ca_cert {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("ca_cert {}: {e}", path.display()))?;
            let mut added = 0;
            for cert in certs {
                let cert = cert.map_err(|e| format!("ca_cert {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("ca_cert {}: {e}", path.display()))?;
                added += 1;
            }
            if added == 0 {
                return Err(format!(
                    "ca_cert {}: no certificate in the file",
                    path.display()
                ));
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The name rustls should check the certificate against (SNI is not sent for IP literals).
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.to_string())
        .map_err(|_| format!("tls: {host:?} is not a valid server name"))
}

/// Short stable reasons for the report's `tls: <reason>` names.
pub fn reason(e: &Error) -> &'static str {
    match e {
        Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => "invalid certificate: unknown issuer",
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "invalid certificate: not valid for name"
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "invalid certificate: expired"
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "invalid certificate: not valid yet"
            }
            CertificateError::Revoked => "invalid certificate: revoked",
            CertificateError::BadSignature => "invalid certificate: bad signature",
            CertificateError::BadEncoding => "invalid certificate: bad encoding",
            _ => "invalid certificate",
        },
        Error::InvalidMessage(_)
        | Error::InappropriateMessage { .. }
        | Error::InappropriateHandshakeMessage { .. } => {
            "corrupt message (is the server speaking TLS?)"
        }
        Error::AlertReceived(_) => "alert received from server",
        Error::NoApplicationProtocol => "no application protocol (server refused ALPN http/1.1)",
        Error::PeerIncompatible(_) => "peer incompatible",
        Error::PeerMisbehaved(_) => "peer misbehaved",
        Error::DecryptError => "decrypt error",
        _ => "handshake failed",
    }
}

#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
