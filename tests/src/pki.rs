//! Certificates made at startup with rcgen: a CA, a server certificate for `127.0.0.1` and
//! `localhost`, and client certificates, all ECDSA P-256 (ring generates those quickly).

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

/// A certificate authority.
pub struct Pki {
    /// The CA certificate, DER.
    pub ca_der: Vec<u8>,
    /// The CA certificate, PEM.
    pub ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate signed by a [`Pki`], with its key.
pub struct Leaf {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Leaf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leaf").finish_non_exhaustive()
    }
}

impl Pki {
    /// A fresh CA named `name`.
    pub fn new(name: &str) -> Pki {
        let key = KeyPair::generate().expect("a CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let cert = params.self_signed(&key).expect("a self-signed CA");
        Pki { ca_der: cert.der().to_vec(), ca_pem: cert.pem(), issuer: Issuer::new(params, key) }
    }

    /// A server certificate for these DNS names or IP addresses.
    pub fn server(&self, names: &[&str]) -> Leaf {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("server certificate parameters");
        params.distinguished_name.push(DnType::CommonName, "kube-apiserver");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    /// A client certificate for the user `name` (its common name, as the API server reads it).
    pub fn client(&self, name: &str) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client certificate parameters");
        params.distinguished_name.push(DnType::CommonName, name);
        params.distinguished_name.push(DnType::OrganizationName, "system:masters");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> Leaf {
        let key = KeyPair::generate().expect("a key");
        let cert = params.signed_by(&key, &self.issuer).expect("a signed certificate");
        Leaf {
            cert_der: cert.der().to_vec(),
            cert_pem: cert.pem(),
            key_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// DER, written: a tag, a definite length, the contents.
fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match contents.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n <= 0xff => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(contents);
    out
}

/// A name of one common name and one organization (`O=<org>, CN=<cn>`), as the API server's
/// x509 authenticator reads a user and its group.
fn name(org: &str, cn: &str) -> Vec<u8> {
    let attribute =
        |oid: &[u8], value: &str| der(0x31, &der(0x30, &[der(0x06, oid), der(0x0c, value.as_bytes())].concat()));
    der(0x30, &[attribute(&[0x55, 0x04, 0x0a], org), attribute(&[0x55, 0x04, 0x03], cn)].concat())
}

impl Pki {
    /// An X.509 **version 1** client certificate for the user `name` (no version field, no
    /// extensions), as `openssl x509 -req` without an extensions file makes them. rcgen only
    /// makes v3 certificates, so this one is written out here and signed with the CA's key
    /// (ECDSA P-256 with SHA-256).
    pub fn client_v1(&self, name_: &str) -> Leaf {
        use rcgen::{PublicKeyData as _, SigningKey as _};

        let key = KeyPair::generate().expect("a key");
        let ca = kube_proto::config::x509::Certificate::parse(&self.ca_der).expect("the CA certificate");
        let ecdsa_sha256 = der(0x30, &der(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]));
        let validity = der(0x30, &[der(0x17, b"200101000000Z"), der(0x17, b"491231235959Z")].concat());
        let tbs = der(
            0x30,
            &[
                der(0x02, &[0x01, 0x23, 0x45]),
                ecdsa_sha256.clone(),
                ca.subject.to_vec(),
                validity,
                name("system:masters", name_),
                key.subject_public_key_info(),
            ]
            .concat(),
        );
        let signature = self.issuer.key().sign(&tbs).expect("a signature");
        let cert_der = der(0x30, &[tbs, ecdsa_sha256, der(0x03, &[&[0u8][..], &signature].concat())].concat());
        let body = base64_lines(&cert_der);
        Leaf {
            cert_pem: format!("-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n"),
            cert_der,
            key_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// Base64 in lines of 64 characters, each ending in a newline, as PEM has it.
fn base64_lines(bytes: &[u8]) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    text.as_bytes().chunks(64).map(|l| format!("{}\n", String::from_utf8_lossy(l))).collect()
}
