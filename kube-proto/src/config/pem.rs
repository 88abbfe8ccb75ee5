//! PEM, as RFC 7468 defines it: enough to check certificates and keys and hand their DER to
//! a TLS library.

use base64::Engine as _;

use super::ConfigError;
use super::secret::SecretBytes;

/// One PEM block: its label (`CERTIFICATE`, `PRIVATE KEY`, ...) and its DER bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct PemBlock {
    /// The label between `BEGIN ` and the dashes.
    pub label: String,
    /// The decoded contents.
    pub der: Vec<u8>,
}

impl std::fmt::Debug for PemBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys are secret: never print contents.
        write!(f, "PemBlock({}, {} bytes)", self.label, self.der.len())
    }
}

/// Parses every PEM block in `text`, ignoring text between blocks. The error says which line
/// is wrong, never what it holds.
pub fn parse_pem(text: &[u8]) -> Result<Vec<PemBlock>, String> {
    let text = std::str::from_utf8(text)
        .map_err(|e| format!("not PEM: not UTF-8 text (invalid byte at offset {})", e.valid_up_to()))?;
    let mut blocks = Vec::new();
    let mut current: Option<(String, String, usize)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(label) = line.strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----")) {
            if current.is_some() {
                return Err(format!("line {}: BEGIN inside another PEM block", i + 1));
            }
            current = Some((label.to_owned(), String::new(), i + 1));
        } else if let Some(label) = line.strip_prefix("-----END ").and_then(|l| l.strip_suffix("-----")) {
            let Some((begin, body, start)) = current.take() else {
                return Err(format!("line {}: END without BEGIN", i + 1));
            };
            if begin != label {
                return Err(format!("line {}: END {label} does not match BEGIN {begin} on line {start}", i + 1));
            }
            let der = base64::engine::general_purpose::STANDARD
                .decode(body.as_bytes())
                .map_err(|_| format!("the {begin} block starting on line {start} is not valid base64"))?;
            if der.is_empty() {
                return Err(format!("the {begin} block starting on line {start} is empty"));
            }
            blocks.push(PemBlock { label: begin, der });
        } else if let Some((_, body, _)) = current.as_mut()
            && !line.contains(':')
        {
            // Lines with a colon are RFC 1421 headers (Proc-Type, DEK-Info), not base64.
            body.push_str(line);
        }
    }
    if let Some((label, _, start)) = current {
        return Err(format!("the {label} block starting on line {start} has no END line"));
    }
    Ok(blocks)
}

/// The DER certificates of a PEM bundle; at least one is required.
pub(crate) fn certificates(pem: &[u8], field: &str) -> Result<Vec<Vec<u8>>, ConfigError> {
    let err = |message: String| ConfigError::Pem { field: field.into(), message };
    let blocks = parse_pem(pem).map_err(err)?;
    let certs: Vec<Vec<u8>> = blocks.into_iter().filter(|b| b.label == "CERTIFICATE").map(|b| b.der).collect();
    if certs.is_empty() {
        return Err(err("no PEM CERTIFICATE block found".into()));
    }
    for (i, c) in certs.iter().enumerate() {
        // A DER certificate is a SEQUENCE.
        if c.first() != Some(&0x30) {
            return Err(err(format!("certificate {} is not a DER certificate", i + 1)));
        }
    }
    Ok(certs)
}

/// The single private key of a PEM file: RSA (`RSA PRIVATE KEY`), EC (`EC PRIVATE KEY`) or
/// PKCS#8 (`PRIVATE KEY`).
pub(crate) fn private_key(pem: &[u8], field: &str) -> Result<(String, SecretBytes), ConfigError> {
    let err = |message: String| ConfigError::Pem { field: field.into(), message };
    let blocks = parse_pem(pem).map_err(err)?;
    let mut keys =
        blocks.into_iter().filter(|b| matches!(b.label.as_str(), "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "PRIVATE KEY"));
    let key = keys
        .next()
        .ok_or_else(|| err("no PEM private key found (RSA PRIVATE KEY, EC PRIVATE KEY or PRIVATE KEY)".into()))?;
    if keys.next().is_some() {
        return Err(err("more than one private key".into()));
    }
    if key.der.first() != Some(&0x30) {
        return Err(err(format!("the {} is not DER", key.label)));
    }
    Ok((key.label, SecretBytes::new(key.der)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n";

    #[test]
    fn blocks_and_errors() {
        let b = parse_pem(format!("junk\n{CERT}more junk\n{CERT}").as_bytes()).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].der, [0x30, 3, 2, 1, 1]);
        assert!(parse_pem(b"-----BEGIN CERTIFICATE-----\nMAMC\n").unwrap_err().contains("no END"));
        assert!(parse_pem(b"-----BEGIN A-----\nMAMC\n-----END B-----\n").unwrap_err().contains("does not match"));
        assert!(parse_pem(b"-----BEGIN A-----\n!!!\n-----END A-----\n").unwrap_err().contains("base64"));
        assert!(certificates(b"nothing", "f").is_err());
        assert_eq!(certificates(CERT.as_bytes(), "f").unwrap().len(), 1);
    }

    #[test]
    fn keys() {
        let k = "-----BEGIN EC PRIVATE KEY-----\nMAMCAQE=\n-----END EC PRIVATE KEY-----\n";
        assert_eq!(private_key(k.as_bytes(), "f").unwrap().0, "EC PRIVATE KEY");
        let e = private_key(CERT.as_bytes(), "users[u].client-key").unwrap_err();
        assert!(e.to_string().starts_with("users[u].client-key: no PEM private key"), "{e}");
        assert!(!format!("{:?}", private_key(k.as_bytes(), "f").unwrap()).contains("MAMC"));
    }
}
