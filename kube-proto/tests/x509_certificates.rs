//! Reading X.509 certificates of every version, v1 included (made by `openssl x509 -req`; see
//! `fixtures/x509/README.md`): the parts a client needs to present its own certificate.

use kube_proto::config::parse_pem;
use kube_proto::config::x509::Certificate;
use proptest::prelude::*;

/// `rsaEncryption` (1.2.840.113549.1.1.1) with NULL parameters.
const RSA_ALGORITHM: &[u8] = &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00];
/// `id-ecPublicKey` (1.2.840.10045.2.1) on `prime256v1` (1.2.840.10045.3.1.7).
const P256_ALGORITHM: &[u8] =
    &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// `sha256WithRSAEncryption` (1.2.840.113549.1.1.11) with NULL parameters.
const SHA256_RSA: &[u8] = &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00];

fn der(name: &str) -> Vec<u8> {
    let pem = match name {
        "v1-ca.crt" => include_bytes!("fixtures/x509/v1-ca.crt").as_slice(),
        "v1-client-rsa.crt" => include_bytes!("fixtures/x509/v1-client-rsa.crt").as_slice(),
        "v1-client-ec.crt" => include_bytes!("fixtures/x509/v1-client-ec.crt").as_slice(),
        other => panic!("no fixture {other}"),
    };
    parse_pem(pem).unwrap().remove(0).der
}

#[test]
fn a_v1_rsa_certificate_from_openssl_x509_req_is_read() {
    let der = der("v1-client-rsa.crt");
    let cert = Certificate::parse(&der).unwrap();
    assert_eq!(cert.version, 1);
    assert_eq!(cert.subject_public_key_info.algorithm, RSA_ALGORITHM);
    // A 2048-bit RSAPublicKey: a SEQUENCE of the modulus and the exponent.
    assert_eq!(cert.subject_public_key_info.key[0], 0x30);
    assert!(cert.subject_public_key_info.key.len() > 256);
    assert_eq!(cert.signature_algorithm, SHA256_RSA);
    assert_eq!(cert.signature.len(), 256, "signed by the 2048-bit CA key");
    assert!(der.starts_with(&[0x30]) && der[4..].starts_with(cert.tbs));
}

#[test]
fn a_v1_ec_certificate_is_read() {
    let der = der("v1-client-ec.crt");
    let cert = Certificate::parse(&der).unwrap();
    assert_eq!(cert.version, 1);
    assert_eq!(cert.subject_public_key_info.algorithm, P256_ALGORITHM);
    assert_eq!(cert.subject_public_key_info.key.len(), 65, "an uncompressed P-256 point");
    assert_eq!(cert.subject_public_key_info.key[0], 0x04);
}

#[test]
fn a_v3_certificate_is_read_and_names_chain() {
    let ca_der = der("v1-ca.crt");
    let ca = Certificate::parse(&ca_der).unwrap();
    assert_eq!(ca.version, 3);
    assert_eq!(ca.issuer, ca.subject, "self-signed");
    let client_der = der("v1-client-rsa.crt");
    let client = Certificate::parse(&client_der).unwrap();
    assert_eq!(client.issuer, ca.subject);
    assert_ne!(client.subject, ca.subject);
}

#[test]
fn malformed_certificates_are_errors_that_say_where() {
    let der = der("v1-client-ec.crt");
    let err = Certificate::parse(&der[..der.len() - 1]).unwrap_err();
    assert!(err.to_string().contains("longer than its container"), "{err}");
    let mut trailing = der.clone();
    trailing.push(0);
    assert_eq!(Certificate::parse(&trailing).unwrap_err().what, "bytes after the certificate");
    assert_eq!(Certificate::parse(b"").unwrap_err().what, "expected the Certificate SEQUENCE");
    let err = Certificate::parse(&[0x30, 0x80, 0, 0]).unwrap_err();
    assert_eq!((err.what, err.offset), ("indefinite length (not DER)", 0));
}

proptest! {
    #[test]
    fn any_bytes_give_a_certificate_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Certificate::parse(&bytes);
    }

    #[test]
    fn any_truncation_or_flipped_byte_gives_a_certificate_or_an_error(cut in 0usize..2000, flip in 0usize..2000, bit in 0u8..8) {
        for name in ["v1-client-rsa.crt", "v1-client-ec.crt", "v1-ca.crt"] {
            let mut der = der(name);
            let i = flip % der.len();
            der[i] ^= 1 << bit;
            let _ = Certificate::parse(&der);
            der.truncate(cut % der.len());
            prop_assert!(Certificate::parse(&der).is_err());
        }
    }
}
