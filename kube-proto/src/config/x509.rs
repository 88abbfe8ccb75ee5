//! Just enough DER (ITU-T X.690) to find the parts of an X.509 certificate (RFC 5280) that a
//! client needs: its version, names and public key, and the signed bytes with their signature.
//!
//! TLS libraries built on webpki refuse X.509 **v1** certificates outright, while Go's `crypto/x509`
//! (kubectl, client-go, the API server) accepts them, and older `openssl x509 -req` recipes and
//! some cluster tooling still make them. A client presenting its own certificate only has to
//! send it and prove it holds the key: for that it needs the certificate's public key, which
//! this module reads from v1 and v3 certificates alike.

/// A certificate that is not well-formed DER X.509.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an X.509 certificate: {what} at byte {offset}")]
pub struct X509Error {
    /// What was expected or wrong.
    pub what: &'static str,
    /// Where, from the start of the DER.
    pub offset: usize,
}

/// A parsed certificate, borrowing from its DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate<'a> {
    /// 1, 2 or 3 (the DER's `version` field plus one; absent means v1).
    pub version: u8,
    /// The `tbsCertificate`, whole (tag and length included): the bytes the issuer signed.
    pub tbs: &'a [u8],
    /// The `issuer` name, whole.
    pub issuer: &'a [u8],
    /// The `subject` name, whole.
    pub subject: &'a [u8],
    /// The `subjectPublicKeyInfo`.
    pub subject_public_key_info: SubjectPublicKeyInfo<'a>,
    /// The contents of the outer `signatureAlgorithm` `AlgorithmIdentifier` (without its
    /// SEQUENCE tag and length, as webpki-style verifiers compare them).
    pub signature_algorithm: &'a [u8],
    /// The signature's bytes (the BIT STRING without its unused-bits byte).
    pub signature: &'a [u8],
}

/// A `SubjectPublicKeyInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectPublicKeyInfo<'a> {
    /// The structure whole (tag and length included), as TLS libraries take it.
    pub der: &'a [u8],
    /// The contents of its `AlgorithmIdentifier` (without its SEQUENCE tag and length).
    pub algorithm: &'a [u8],
    /// The key's bytes (the BIT STRING without its unused-bits byte).
    pub key: &'a [u8],
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
/// `[0] EXPLICIT`, the context tag of `version`.
const VERSION_TAG: u8 = 0xa0;

/// A cursor over DER bytes, `base` being the offset of `bytes` in the whole certificate.
struct Der<'a> {
    bytes: &'a [u8],
    base: usize,
}

/// One element: its contents and the element whole.
struct Element<'a> {
    contents: Der<'a>,
    whole: &'a [u8],
}

impl<'a> Der<'a> {
    fn err(&self, what: &'static str) -> X509Error {
        X509Error { what, offset: self.base }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.first().copied()
    }

    /// The next element, whatever its tag.
    fn any(&mut self) -> Result<Element<'a>, X509Error> {
        let [_tag, first, rest @ ..] = self.bytes else { return Err(self.err("truncated element")) };
        let (len, header) = match *first {
            n if n < 0x80 => (usize::from(n), 2),
            0x80 => return Err(self.err("indefinite length (not DER)")),
            n => {
                let count = usize::from(n & 0x7f);
                if count > 4 || rest.len() < count {
                    return Err(self.err("length too large or truncated"));
                }
                let len = rest[..count].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
                (len, 2 + count)
            }
        };
        let end = header.checked_add(len).filter(|end| *end <= self.bytes.len());
        let Some(end) = end else { return Err(self.err("element longer than its container")) };
        let element = Element {
            contents: Der { bytes: &self.bytes[header..end], base: self.base + header },
            whole: &self.bytes[..end],
        };
        self.bytes = &self.bytes[end..];
        self.base += end;
        Ok(element)
    }

    /// The next element, which must have `tag`.
    fn expect(&mut self, tag: u8, what: &'static str) -> Result<Element<'a>, X509Error> {
        if self.peek() != Some(tag) {
            return Err(self.err(what));
        }
        self.any()
    }

    /// A BIT STRING's bits, which must be whole bytes.
    fn bit_string(&mut self, what: &'static str) -> Result<&'a [u8], X509Error> {
        let bits = self.expect(BIT_STRING, what)?;
        match bits.contents.bytes {
            [0, rest @ ..] => Ok(rest),
            _ => Err(bits.contents.err("a BIT STRING with unused bits")),
        }
    }
}

impl<'a> Certificate<'a> {
    /// Parses a DER certificate, v1, v2 or v3. Extensions are not read; no signature is checked.
    pub fn parse(der: &'a [u8]) -> Result<Certificate<'a>, X509Error> {
        let mut outer = Der { bytes: der, base: 0 };
        let mut cert = outer.expect(SEQUENCE, "expected the Certificate SEQUENCE")?.contents;
        if !outer.bytes.is_empty() {
            return Err(outer.err("bytes after the certificate"));
        }
        let tbs = cert.expect(SEQUENCE, "expected the tbsCertificate SEQUENCE")?;
        let signature_algorithm = cert.expect(SEQUENCE, "expected the signatureAlgorithm SEQUENCE")?.contents.bytes;
        let signature = cert.bit_string("expected the signature BIT STRING")?;

        let mut fields = tbs.contents;
        let version = if fields.peek() == Some(VERSION_TAG) {
            let mut explicit = fields.any()?.contents;
            let v = explicit.expect(INTEGER, "expected the version INTEGER")?;
            match v.contents.bytes {
                [v @ 0..=2] => v + 1,
                _ => return Err(v.contents.err("a version other than v1, v2 or v3")),
            }
        } else {
            1
        };
        fields.expect(INTEGER, "expected the serialNumber INTEGER")?;
        fields.expect(SEQUENCE, "expected the signature AlgorithmIdentifier")?;
        let issuer = fields.expect(SEQUENCE, "expected the issuer Name")?.whole;
        fields.expect(SEQUENCE, "expected the validity SEQUENCE")?;
        let subject = fields.expect(SEQUENCE, "expected the subject Name")?.whole;
        let spki = fields.expect(SEQUENCE, "expected the subjectPublicKeyInfo SEQUENCE")?;
        let mut spki_fields = spki.contents;
        let algorithm = spki_fields.expect(SEQUENCE, "expected the public key's AlgorithmIdentifier")?.contents.bytes;
        let key = spki_fields.bit_string("expected the public key BIT STRING")?;
        Ok(Certificate {
            version,
            tbs: tbs.whole,
            issuer,
            subject,
            subject_public_key_info: SubjectPublicKeyInfo { der: spki.whole, algorithm, key },
            signature_algorithm,
            signature,
        })
    }
}
