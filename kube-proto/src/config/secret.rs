//! Values that must never be printed: tokens, passwords, private keys.

use std::fmt;

/// A secret string: its `Debug` and `Display` say `<redacted>`; read it with
/// [`expose`](Self::expose) where it is really needed (building a header).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        SecretString(s.into())
    }
    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        SecretString(s)
    }
}

impl From<&str> for SecretString {
    fn from(s: &str) -> Self {
        SecretString(s.to_owned())
    }
}

impl<'de> serde::Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(SecretString)
    }
}

impl serde::Serialize for SecretString {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Secret bytes (a private key): `Debug` says how many bytes, never what they are.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps secret bytes.
    pub fn new(b: Vec<u8>) -> Self {
        SecretBytes(b)
    }
    /// The bytes themselves.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted {} bytes>", self.0.len())
    }
}

/// A URL for display: a password in it (`http://user:pass@proxy`) shows as `<redacted>`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("<redacted>"));
            u.to_string().replace("%3Credacted%3E", "<redacted>")
        }
        Ok(_) => url.to_owned(),
        // Not a URL: it may still hold a secret; show its scheme-less shape only.
        Err(_) if url.contains('@') => "<redacted>".to_owned(),
        Err(_) => url.to_owned(),
    }
}

/// Replaces quoted values in a parser's message (`"..."` and `` `...` ``) by `"…"`, so that an
/// error about a malformed token or key never repeats it.
pub(crate) fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' || c == '`' {
            out.push(c);
            out.push('…');
            let mut escaped = false;
            for d in chars.by_ref() {
                if escaped {
                    escaped = false;
                } else if d == '\\' {
                    escaped = true;
                } else if d == c {
                    break;
                }
            }
            out.push(c);
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let s = SecretString::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "<redacted> <redacted>");
        assert_eq!(format!("{:?}", SecretBytes::new(vec![1, 2, 3])), "<redacted 3 bytes>");
    }

    #[test]
    fn url_passwords_are_redacted() {
        assert_eq!(redact_url("http://me:pw@proxy:3128"), "http://me:<redacted>@proxy:3128/");
        assert_eq!(redact_url("http://proxy:3128"), "http://proxy:3128");
    }

    #[test]
    fn quoted_values_are_redacted() {
        assert_eq!(
            redact_quoted(r#"invalid type: string "s3cr\"et", expected a map at `tok` end"#),
            r#"invalid type: string "…", expected a map at `…` end"#
        );
    }
}
