//! rustls settings from a [`Config`]: the trusted roots, the client certificate, the
//! `insecure-skip-tls-verify` verifier and the name to verify the server against.
//!
//! This module does no I/O and needs no executor, so every rustls-based transport
//! (`transport-hyper`, `transport-asyncstd`, a user's own) builds its TLS the same way. It uses
//! rustls' `ring` provider explicitly, so it works whether or not a process-wide default
//! provider was installed.
//!
//! ```
//! use kube_proto::config::Config;
//!
//! let config = Config::new("https://127.0.0.1:6443".parse().unwrap());
//! let tls = kube_runtime::tls::client_config(&config, &[b"h2", b"http/1.1"]).unwrap();
//! assert_eq!(tls.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
//! let name = kube_runtime::tls::server_name(&config).unwrap();
//! assert_eq!(name.to_str(), "127.0.0.1");
//! ```

use std::sync::Arc;

use kube_proto::config::{Config, x509};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{AlertDescription, CertificateError, DigitallySignedStruct, Error as TlsError, SignatureScheme};

use crate::transport::TransportError;

/// The crypto provider every configuration here uses (rustls' `ring` provider).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls client configuration for a cluster, offering the ALPN protocols `alpn` (such as
/// `[b"h2", b"http/1.1"]`, or `[b"http/1.1"]` for connections that will be upgraded).
///
/// The trusted roots are the configuration's CA certificates (`certificate-authority(-data)`, or
/// the in-cluster `ca.crt`); when it gives none, the Mozilla roots of `webpki-roots`. When the
/// configuration says `insecure-skip-tls-verify`, any server certificate is accepted
/// ([`InsecureAcceptAnyCertificate`]). The client certificate, if any, is presented; its key
/// may be RSA (PKCS#1), EC (SEC1) or PKCS#8.
pub fn client_config(config: &Config, alpn: &[&[u8]]) -> Result<rustls::ClientConfig, TransportError> {
    let url = display_url(config);
    let tls_err = |message: String| TransportError::Tls { url: url.clone(), message };
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(format!("cannot set up TLS: {e}")))?;
    let builder = if config.accept_invalid_certs {
        tracing::debug!(url = %url, "TLS certificate verification is disabled (insecure-skip-tls-verify)");
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(InsecureAcceptAnyCertificate::new(provider.clone())))
    } else {
        builder.with_root_certificates(root_store(config).map_err(tls_err)?)
    };
    let mut tls = match &config.identity {
        Some(identity) => {
            let certs: Vec<CertificateDer<'static>> =
                identity.certificates_der().into_iter().map(CertificateDer::from).collect();
            if certs.is_empty() {
                return Err(tls_err("the client certificate holds no certificate".into()));
            }
            let (label, der) =
                identity.private_key_der().ok_or_else(|| tls_err("the client key is not a PEM private key".into()))?;
            let key = match label.as_str() {
                "RSA PRIVATE KEY" => PrivateKeyDer::Pkcs1(der.expose().to_vec().into()),
                "EC PRIVATE KEY" => PrivateKeyDer::Sec1(der.expose().to_vec().into()),
                "PRIVATE KEY" => PrivateKeyDer::Pkcs8(der.expose().to_vec().into()),
                other => return Err(tls_err(format!("the client key has an unsupported PEM label {other:?}"))),
            };
            builder.with_client_cert_resolver(Arc::new(client_cert(certs, key, &provider).map_err(tls_err)?))
        }
        None => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(tls)
}

/// The client certificate and its signing key, checked to belong together.
///
/// rustls' own `with_client_auth_cert` reads the certificate with webpki, which refuses X.509 v1
/// certificates (`UnsupportedCertVersion`); Go's TLS stack, and so kubectl, presents them. The
/// client only needs the certificate's public key, to check that `client-key` matches
/// `client-certificate`: the core's X.509 reader finds it in any version. The server still
/// verifies the certificate as it always does.
fn client_cert(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
) -> Result<SingleCertAndKey, String> {
    // rustls' and the reader's messages name the problem, never the key material.
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("the client key (client-key) cannot be used: {e}"))?;
    let first = certs.first().ok_or("the client certificate (client-certificate) holds no certificate")?;
    let cert = x509::Certificate::parse(first)
        .map_err(|e| format!("the client certificate (client-certificate) cannot be read: {e}"))?;
    // A key type whose public key rustls cannot derive is left for the server to judge.
    if let Some(public) = signing_key.public_key()
        && public.as_ref() != cert.subject_public_key_info.der
    {
        return Err("the client key (client-key) does not belong to the client certificate (client-certificate)".into());
    }
    Ok(SingleCertAndKey::from(CertifiedKey::new(certs, signing_key)))
}

/// The trusted roots: the configuration's CA certificates, or the `webpki-roots` when it has none.
fn root_store(config: &Config) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    if config.root_certs.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(roots);
    }
    for (i, der) in config.root_certs.iter().enumerate() {
        roots
            .add(CertificateDer::from(der.clone()))
            .map_err(|e| format!("CA certificate {} of certificate-authority cannot be used: {e}", i + 1))?;
    }
    Ok(roots)
}

/// The name to verify the server's certificate against (and to send as SNI when it is a DNS
/// name): the configuration's `tls-server-name` if set, else the host of its `cluster_url`.
pub fn server_name(config: &Config) -> Result<ServerName<'static>, TransportError> {
    let host = config.cluster_url.host_str().unwrap_or_default();
    server_name_for(config.tls_server_name.as_deref(), host)
        .map_err(|message| TransportError::Tls { url: display_url(config), message })
}

/// The name to verify for a connection to `host` (a URL's host: a DNS name, an IPv4 address or
/// a bracketed IPv6 address): `tls_server_name` when given, else `host`.
pub fn server_name_for(tls_server_name: Option<&str>, host: &str) -> Result<ServerName<'static>, String> {
    let (name, what) = match tls_server_name.filter(|n| !n.is_empty()) {
        Some(n) => (n, "tls-server-name"),
        None => (host, "the server's host"),
    };
    let bare = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')).unwrap_or(name);
    ServerName::try_from(bare.to_owned()).map_err(|e| format!("{what} {name:?} is not a valid TLS server name: {e}"))
}

/// A readable explanation of a TLS failure, naming certificates when they are the cause, for a
/// [`TransportError::Tls`] message.
pub fn describe_error(error: &TlsError) -> String {
    match error {
        TlsError::InvalidCertificate(e) => {
            let hint = match e {
                CertificateError::UnknownIssuer => {
                    " (it is not signed by a trusted CA: check certificate-authority / certificate-authority-data)"
                }
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                    " (it is not issued for the host connected to: check the server URL or set tls-server-name)"
                }
                _ => "",
            };
            format!("the server's certificate could not be verified: {error}{hint}")
        }
        TlsError::AlertReceived(
            alert @ (AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::AccessDenied),
        ) => {
            format!(
                "the server rejected the TLS handshake ({alert:?}): it requires a client certificate it trusts; check client-certificate / client-key"
            )
        }
        TlsError::InvalidCertRevocationList(_) => format!("certificate revocation list problem: {error}"),
        _ => format!("TLS handshake failed: {error}"),
    }
}

/// The cluster's scheme, host and port only (the URL's credentials, path and query are left
/// out), for messages.
fn display_url(config: &Config) -> String {
    let url = &config.cluster_url;
    match (url.host_str(), url.port_or_known_default()) {
        (Some(h), Some(p)) => format!("{}://{h}:{p}", url.scheme()),
        (Some(h), None) => format!("{}://{h}", url.scheme()),
        _ => url.scheme().to_owned(),
    }
}

/// A server certificate verifier that accepts **any** certificate, for clusters whose
/// kubeconfig sets `insecure-skip-tls-verify: true`. The certificate chain, its names and its
/// dates are not checked (so the connection can be intercepted); the handshake signatures are
/// still checked against the presented certificate's key, as Go's `InsecureSkipVerify` does.
#[derive(Debug)]
pub struct InsecureAcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl InsecureAcceptAnyCertificate {
    /// A verifier checking handshake signatures with `provider`'s algorithms.
    pub fn new(provider: Arc<CryptoProvider>) -> Self {
        InsecureAcceptAnyCertificate { provider }
    }
}

impl ServerCertVerifier for InsecureAcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use kube_proto::config::Identity;

    use super::*;

    fn config(url: &str) -> Config {
        Config::new(url.parse().unwrap())
    }

    #[test]
    fn server_name_is_the_host_or_the_override() {
        assert_eq!(server_name(&config("https://example.com:6443")).unwrap().to_str(), "example.com");
        assert_eq!(server_name(&config("https://10.1.2.3")).unwrap().to_str(), "10.1.2.3");
        assert_eq!(server_name(&config("https://[::1]:6443")).unwrap().to_str(), "::1");
        let mut c = config("https://10.1.2.3:6443");
        c.tls_server_name = Some("kubernetes.default.svc".into());
        assert_eq!(server_name(&c).unwrap().to_str(), "kubernetes.default.svc");
        assert!(server_name_for(Some("not a name!"), "h").unwrap_err().contains("tls-server-name"));
    }

    #[test]
    fn roots_default_to_webpki_and_bad_cas_are_reported() {
        assert!(root_store(&config("https://h")).unwrap().len() > 50);
        let mut c = config("https://user:pw@h:6443/path");
        c.root_certs = vec![b"not der".to_vec()];
        let err = client_config(&c, &[]).unwrap_err();
        let TransportError::Tls { url, message } = &err else { panic!("{err:?}") };
        assert_eq!(url, "https://h:6443");
        assert!(message.contains("CA certificate 1"), "{message}");
    }

    #[test]
    fn insecure_config_builds_with_alpn() {
        let mut c = config("https://h");
        c.accept_invalid_certs = true;
        let tls = client_config(&c, &[b"http/1.1"]).unwrap();
        assert_eq!(tls.alpn_protocols, [b"http/1.1".to_vec()]);
    }

    /// Reads one of the core's X.509 fixtures (made by `openssl x509 -req`: v1 certificates).
    fn fixture(name: &str) -> Vec<u8> {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../kube-proto/tests/fixtures/x509").join(name);
        #[allow(clippy::disallowed_methods)]
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn with_identity(cert: &str, key: &str) -> Config {
        let mut c = config("https://h");
        c.identity = Some(Identity::from_pem(fixture(cert), fixture(key), "test").unwrap());
        c
    }

    #[test]
    fn x509_v1_client_certificates_are_presented() {
        for (cert, key) in [("v1-client-rsa.crt", "v1-client-rsa.key"), ("v1-client-ec.crt", "v1-client-ec.key")] {
            let tls = client_config(&with_identity(cert, key), &[]).unwrap_or_else(|e| panic!("{cert}: {e}"));
            assert!(tls.client_auth_cert_resolver.has_certs(), "{cert}");
        }
    }

    #[test]
    fn a_key_that_is_not_the_certificates_names_both_fields() {
        let err = client_config(&with_identity("v1-client-rsa.crt", "v1-client-ec.key"), &[]).unwrap_err();
        let TransportError::Tls { message, .. } = &err else { panic!("{err:?}") };
        assert!(message.contains("client-key") && message.contains("client-certificate"), "{message}");
        assert!(!message.contains("peer"), "it is the client's own certificate: {message}");
    }

    #[test]
    fn an_unreadable_client_certificate_names_the_field() {
        let mut c = config("https://h");
        let not_x509 = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
        c.identity = Some(Identity::from_pem(not_x509.into(), fixture("v1-client-ec.key"), "test").unwrap());
        let err = client_config(&c, &[]).unwrap_err();
        let TransportError::Tls { message, .. } = &err else { panic!("{err:?}") };
        assert!(message.contains("client-certificate") && message.contains("not an X.509 certificate"), "{message}");
    }

    #[test]
    fn describes_certificate_errors() {
        let m = describe_error(&TlsError::InvalidCertificate(CertificateError::UnknownIssuer));
        assert!(m.contains("certificate") && m.contains("certificate-authority"), "{m}");
        let m = describe_error(&TlsError::AlertReceived(AlertDescription::CertificateRequired));
        assert!(m.contains("client certificate"), "{m}");
    }
}
