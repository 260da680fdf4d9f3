//! TLS for the MQTT links: rustls with the `ring` provider.
//!
//! The broker's certificate is checked against `ca_file` when one is set,
//! else against the system's trust store (`rustls-native-certs`: rumqttc
//! depends on it already, and it follows the operating system's updates and
//! any company CA an administrator installed, where `webpki-roots` would
//! compile in a copy of Mozilla's list that only a new release refreshes).
//!
//! Every file is read and checked here, so a wrong path or a file that is
//! not PEM stops the bridge at start with one message naming the key and the
//! file. Messages never quote what is in a file: a key file's lines are the
//! key.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::{ConfigError, MqttConfig};

fn invalid(key: String, problem: String) -> ConfigError {
    ConfigError::Invalid { key, problem }
}

/// The rustls configuration for a broker, or `None` when it is plain MQTT.
/// `key` is where `cfg` is in the configuration (`mqtt`, `folotoy.mqtt`).
pub fn client_config(cfg: &MqttConfig, key: &str) -> Result<Option<Arc<ClientConfig>>, ConfigError> {
    if !cfg.tls_enabled() {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("{key}.tls"), format!("no TLS version available: {e}")))?;
    let builder = if cfg.tls_insecure {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    } else {
        builder.with_root_certificates(roots(cfg, key)?)
    };
    let config = match (&cfg.client_cert_file, &cfg.client_key_file) {
        (Some(cert_file), Some(key_file)) => {
            let certs = certificates(cert_file, &format!("{key}.client_cert_file"))?;
            let private = private_key(key_file, &format!("{key}.client_key_file"))?;
            builder.with_client_auth_cert(certs, private).map_err(|e| {
                invalid(
                    format!("{key}.client_key_file"),
                    format!("{} cannot be used with {}: {e}", key_file.display(), cert_file.display()),
                )
            })?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Some(Arc::new(config)))
}

/// The certificates the broker's chain must end in.
fn roots(cfg: &MqttConfig, key: &str) -> Result<RootCertStore, ConfigError> {
    let mut roots = RootCertStore::empty();
    match &cfg.ca_file {
        Some(file) => {
            let ca_key = format!("{key}.ca_file");
            for (i, cert) in certificates(file, &ca_key)?.into_iter().enumerate() {
                roots.add(cert).map_err(|e| {
                    invalid(ca_key.clone(), format!("certificate {} in {} is not usable: {e}", i + 1, file.display()))
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found.errors.first().map(|e| format!(" ({e})")).unwrap_or_default();
                return Err(invalid(
                    format!("{key}.ca_file"),
                    format!("is not set and the system has no CA certificates{why}; set it to the CA that signed the broker's certificate"),
                ));
            }
        }
    }
    Ok(roots)
}

fn read(file: &Path, key: &str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(file).map_err(|e| invalid(key.to_owned(), format!("cannot read {}: {e}", file.display())))
}

/// What is wrong with a PEM file, in words that never quote its content.
fn pem_problem(file: &Path, e: &pem::Error, wanted: &str) -> String {
    let what = match e {
        pem::Error::NoItemsFound => return format!("{} has no {wanted} in PEM form", file.display()),
        pem::Error::MissingSectionEnd { .. } => "a PEM section has no END line",
        pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "a PEM section is not valid base64",
        _ => "it cannot be read as PEM",
    };
    format!("{} is not a PEM {wanted}: {what}", file.display())
}

fn certificates(file: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let text = read(file, key)?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(key.to_owned(), pem_problem(file, &e, "certificate")))?;
    if certs.is_empty() {
        return Err(invalid(key.to_owned(), pem_problem(file, &pem::Error::NoItemsFound, "certificate")));
    }
    Ok(certs)
}

fn private_key(file: &Path, key: &str) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let text = read(file, key)?;
    PrivateKeyDer::from_pem_slice(&text).map_err(|e| invalid(key.to_owned(), pem_problem(file, &e, "private key")))
}

/// `tls_insecure`: any certificate is accepted, but the handshake is still
/// checked, so the connection is encrypted, only not to a known broker.
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
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
