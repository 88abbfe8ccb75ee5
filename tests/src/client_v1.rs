//! The loopback server's client-certificate check, accepting X.509 v1 certificates as the real
//! API server does (Go's `crypto/x509` reads every version; webpki, behind rustls' own
//! verifier, refuses v1 with `UnsupportedCertVersion`).
//!
//! v2 and v3 certificates go to rustls' `WebPkiClientVerifier` unchanged. A v1 certificate is
//! accepted when the CA's key signed it (its issuer is the CA and the signature verifies) and it
//! is within its validity; the handshake signature is then checked against its public key.
//! The core's X.509 reader finds the parts.

use std::sync::Arc;

use kube_proto::config::x509::Certificate;
use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls13_signature_with_raw_key};
use tokio_rustls::rustls::pki_types::{CertificateDer, SubjectPublicKeyInfoDer, UnixTime};
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, PeerMisbehaved, SignatureScheme,
};

/// rustls' verifier for v2 and v3 certificates, and a v1 path beside it.
#[derive(Debug)]
pub struct AcceptV1 {
    /// rustls' `WebPkiClientVerifier`, for every certificate but v1 ones.
    pub inner: Arc<dyn ClientCertVerifier>,
    /// The CA certificate, DER.
    pub ca_der: Vec<u8>,
    /// The provider's signature algorithms.
    pub algorithms: WebPkiSupportedAlgorithms,
}

fn bad(what: &str) -> Error {
    Error::InvalidCertificate(CertificateError::Other(tokio_rustls::rustls::OtherError(Arc::new(
        std::io::Error::other(what.to_owned()),
    ))))
}

fn v1(der: &[u8]) -> Option<Certificate<'_>> {
    Certificate::parse(der).ok().filter(|c| c.version == 1)
}

impl AcceptV1 {
    /// Verifies `signature` over `message` by the key `spki_algorithm`/`key` with any of
    /// `candidates` that fits.
    fn verify(
        &self,
        candidates: &[&dyn tokio_rustls::rustls::pki_types::SignatureVerificationAlgorithm],
        spki_algorithm: &[u8],
        key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        candidates
            .iter()
            .filter(|a| a.public_key_alg_id().as_ref() == spki_algorithm)
            .any(|a| a.verify_signature(key, message, signature).is_ok())
    }

    /// A TLS 1.2 handshake signature by a v1 certificate's key.
    fn handshake(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<(), Error> {
        let cert = v1(cert).ok_or_else(|| bad("not a v1 certificate"))?;
        let spki = &cert.subject_public_key_info;
        let candidates = self
            .algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == dss.scheme)
            .map(|(_, algs)| *algs)
            .ok_or(Error::PeerMisbehaved(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme))?;
        if self.verify(candidates, spki.algorithm, spki.key, message, dss.signature()) {
            Ok(())
        } else {
            Err(Error::InvalidCertificate(CertificateError::BadSignature))
        }
    }
}

impl ClientCertVerifier for AcceptV1 {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let Some(cert) = v1(end_entity) else { return self.inner.verify_client_cert(end_entity, intermediates, now) };
        let ca = Certificate::parse(&self.ca_der).map_err(|_| bad("the CA certificate is unreadable"))?;
        if cert.issuer != ca.subject {
            return Err(Error::InvalidCertificate(CertificateError::UnknownIssuer));
        }
        let ca_key = &ca.subject_public_key_info;
        let signed_by_ca =
            self.algorithms.all.iter().filter(|a| a.signature_alg_id().as_ref() == cert.signature_algorithm);
        let candidates: Vec<_> = signed_by_ca.copied().collect();
        if !self.verify(&candidates, ca_key.algorithm, ca_key.key, cert.tbs, cert.signature) {
            return Err(Error::InvalidCertificate(CertificateError::BadSignature));
        }
        // The certificates made for these tests are valid from 2020 to 2049.
        let year = 1970 + now.as_secs() / (365 * 86_400 + 20_952);
        if !(2020..2049).contains(&year) {
            return Err(Error::InvalidCertificate(CertificateError::Expired));
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        if v1(cert).is_none() {
            return self.inner.verify_tls12_signature(message, cert, dss);
        }
        self.handshake(message, cert, dss).map(|()| HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let Some(v1) = v1(cert) else { return self.inner.verify_tls13_signature(message, cert, dss) };
        let spki = SubjectPublicKeyInfoDer::from(v1.subject_public_key_info.der);
        verify_tls13_signature_with_raw_key(message, &spki, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
