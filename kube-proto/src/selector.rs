//! Label and field selectors: parsed with the grammar and validation rules of
//! `k8s.io/apimachinery/pkg/labels` and `pkg/fields`, and matched against objects.
//!
//! The request builders use the parsers to reject a selector the API server would reject,
//! before any request is sent; the fake API server uses the matchers.

use std::collections::BTreeMap;
use std::fmt;

/// Why a selector was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} selector {selector:?}: {reason}")]
pub struct SelectorError {
    /// `label` or `field`.
    pub kind: &'static str,
    /// The selector as given.
    pub selector: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The operator of one label requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelOp {
    /// `key=value` or `key==value`.
    Equals,
    /// `key!=value`: the label is absent or has another value.
    NotEquals,
    /// `key in (a,b)`.
    In,
    /// `key notin (a,b)`: the label is absent or has none of the values.
    NotIn,
    /// `key`: the label is present.
    Exists,
    /// `!key`: the label is absent.
    DoesNotExist,
    /// `key>n`: the label is an integer greater than n.
    GreaterThan,
    /// `key<n`: the label is an integer less than n.
    LessThan,
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelRequirement {
    /// The label key.
    pub key: String,
    /// The operator.
    pub op: LabelOp,
    /// The values (one for equality and comparisons, none for existence).
    pub values: Vec<String>,
}

impl LabelRequirement {
    /// Whether a label set satisfies this requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let got = labels.get(&self.key);
        match self.op {
            LabelOp::Equals | LabelOp::In => got.is_some_and(|v| self.values.iter().any(|w| w == v)),
            LabelOp::NotEquals | LabelOp::NotIn => got.is_none_or(|v| !self.values.iter().any(|w| w == v)),
            LabelOp::Exists => got.is_some(),
            LabelOp::DoesNotExist => got.is_none(),
            LabelOp::GreaterThan | LabelOp::LessThan => {
                let (Some(v), Some(bound)) = (got, self.values.first()) else { return false };
                let (Ok(v), Ok(bound)) = (v.parse::<i64>(), bound.parse::<i64>()) else { return false };
                if self.op == LabelOp::GreaterThan { v > bound } else { v < bound }
            }
        }
    }
}

/// A parsed label selector: all requirements must hold. The empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    /// The requirements, in the order written.
    pub requirements: Vec<LabelRequirement>,
}

impl LabelSelector {
    /// Parses a selector in the API server's string form, such as `app in (web,cache),tier!=front`.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        LabelParser { s: selector.as_bytes(), pos: 0, src: selector }.parse()
    }

    /// Whether a label set satisfies every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Checks a selector as [`parse`](Self::parse) does, with the same error, without building
    /// it when it is of the common simple form (which then needs no allocation).
    pub(crate) fn validate(selector: &str) -> Result<(), SelectorError> {
        if is_simple_valid(selector) {
            return Ok(());
        }
        Self::parse(selector).map(drop)
    }
}

/// Whether `selector` is one or more comma-separated `key=value`, `key==value` or `key!=value`
/// terms, with no spaces, a valid key and a valid (possibly empty) value: a form the parser
/// always accepts. `false` means only "not of this form"; the parser decides the rest.
fn is_simple_valid(selector: &str) -> bool {
    selector.split(',').all(|term| {
        let Some(at) = term.find(['=', '!']) else { return false };
        let (key, op) = term.split_at(at);
        let value = match op.strip_prefix("!=").or_else(|| op.strip_prefix("==")).or_else(|| op.strip_prefix('=')) {
            Some(v) => v,
            None => return false,
        };
        // Valid keys and values are made of identifier bytes only, so the parser reads exactly
        // this key and this value.
        validate_label_key(key).is_ok() && validate_label_value(value).is_ok()
    })
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match r.op {
                LabelOp::Equals => write!(f, "{}={}", r.key, r.values[0])?,
                LabelOp::NotEquals => write!(f, "{}!={}", r.key, r.values[0])?,
                LabelOp::In => write!(f, "{} in ({})", r.key, r.values.join(","))?,
                LabelOp::NotIn => write!(f, "{} notin ({})", r.key, r.values.join(","))?,
                LabelOp::Exists => write!(f, "{}", r.key)?,
                LabelOp::DoesNotExist => write!(f, "!{}", r.key)?,
                LabelOp::GreaterThan => write!(f, "{}>{}", r.key, r.values[0])?,
                LabelOp::LessThan => write!(f, "{}<{}", r.key, r.values[0])?,
            }
        }
        Ok(())
    }
}

struct LabelParser<'a> {
    s: &'a [u8],
    pos: usize,
    src: &'a str,
}

fn is_ident_byte(b: u8) -> bool {
    !matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b',' | b'=' | b'!' | b'(' | b')' | b'<' | b'>')
}

impl LabelParser<'_> {
    fn err(&self, reason: impl Into<String>) -> SelectorError {
        SelectorError { kind: "label", selector: self.src.to_owned(), reason: reason.into() }
    }

    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn ident(&mut self) -> &str {
        let start = self.pos;
        while self.pos < self.s.len() && is_ident_byte(self.s[self.pos]) {
            self.pos += 1;
        }
        &self.src[start..self.pos]
    }

    fn parse(mut self) -> Result<LabelSelector, SelectorError> {
        let mut requirements = Vec::new();
        self.skip_ws();
        if self.pos == self.s.len() {
            return Ok(LabelSelector { requirements });
        }
        loop {
            requirements.push(self.requirement()?);
            self.skip_ws();
            match self.peek() {
                None => break,
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws();
                    if self.pos == self.s.len() {
                        return Err(self.err("found end of selector after ','; expected a requirement"));
                    }
                }
                Some(c) => return Err(self.err(format!("found '{}', expected ',' or end of selector", c as char))),
            }
        }
        Ok(LabelSelector { requirements })
    }

    fn requirement(&mut self) -> Result<LabelRequirement, SelectorError> {
        self.skip_ws();
        if self.peek() == Some(b'!') {
            self.pos += 1;
            self.skip_ws();
            let key = self.ident().to_owned();
            validate_label_key(&key).map_err(|r| self.err(r))?;
            return Ok(LabelRequirement { key, op: LabelOp::DoesNotExist, values: vec![] });
        }
        let key = self.ident().to_owned();
        if key.is_empty() {
            return Err(self.err(format!("expected a label key at position {}", self.pos)));
        }
        validate_label_key(&key).map_err(|r| self.err(r))?;
        self.skip_ws();
        let op = match self.peek() {
            None | Some(b',') => return Ok(LabelRequirement { key, op: LabelOp::Exists, values: vec![] }),
            Some(b'=') => {
                self.pos += 1;
                if self.peek() == Some(b'=') {
                    self.pos += 1;
                }
                LabelOp::Equals
            }
            Some(b'!') => {
                self.pos += 1;
                if self.peek() != Some(b'=') {
                    return Err(self.err("found '!', expected '!='"));
                }
                self.pos += 1;
                LabelOp::NotEquals
            }
            Some(b'>') => {
                self.pos += 1;
                LabelOp::GreaterThan
            }
            Some(b'<') => {
                self.pos += 1;
                LabelOp::LessThan
            }
            Some(_) => {
                let word = self.ident().to_owned();
                match word.as_str() {
                    "in" => LabelOp::In,
                    "notin" => LabelOp::NotIn,
                    _ => return Err(self.err(format!("found '{word}', expected one of =, ==, !=, in, notin, <, >"))),
                }
            }
        };
        self.skip_ws();
        let values = match op {
            LabelOp::In | LabelOp::NotIn => {
                if self.peek() != Some(b'(') {
                    return Err(self.err(format!(
                        "expected '(' after '{key} {}'",
                        if op == LabelOp::In { "in" } else { "notin" }
                    )));
                }
                self.pos += 1;
                let mut values = Vec::new();
                loop {
                    self.skip_ws();
                    let v = self.ident().to_owned();
                    validate_label_value(&v).map_err(|r| self.err(r))?;
                    values.push(v);
                    self.skip_ws();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b')') => {
                            self.pos += 1;
                            break;
                        }
                        _ => return Err(self.err("expected ',' or ')' in a set of values")),
                    }
                }
                values
            }
            LabelOp::GreaterThan | LabelOp::LessThan => {
                let v = self.ident().to_owned();
                if v.parse::<i64>().is_err() {
                    return Err(self.err(format!("for '<' and '>', the value must be an integer, not {v:?}")));
                }
                // apimachinery also checks it as a label value: `-1` and `+1` are rejected.
                validate_label_value(&v).map_err(|r| self.err(r))?;
                vec![v]
            }
            _ => {
                let v = self.ident().to_owned();
                validate_label_value(&v).map_err(|r| self.err(r))?;
                vec![v]
            }
        };
        Ok(LabelRequirement { key, op, values })
    }
}

fn is_name_part(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Whether `s` is a DNS-1123 subdomain: lower-case alphanumerics, `-` and `.`, at most 253
/// characters, starting and ending alphanumeric.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 253
        && s.split('.').all(|part| {
            let p = part.as_bytes();
            !p.is_empty()
                && (p[0].is_ascii_lowercase() || p[0].is_ascii_digit())
                && (p[p.len() - 1].is_ascii_lowercase() || p[p.len() - 1].is_ascii_digit())
                && p.iter().all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        })
}

/// Checks a label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63
/// characters.
pub fn validate_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && !is_dns1123_subdomain(p)
    {
        return Err(format!("label key {key:?}: prefix must be a DNS-1123 subdomain"));
    }
    if !is_name_part(name, 63) {
        return Err(format!(
            "label key {key:?}: name part must be 1-63 characters of alphanumerics, '-', '_' or '.', starting and ending alphanumeric"
        ));
    }
    Ok(())
}

/// Checks a label value: empty, or at most 63 characters of alphanumerics, `-`, `_`, `.`,
/// starting and ending alphanumeric.
pub fn validate_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_name_part(value, 63) {
        Ok(())
    } else {
        Err(format!(
            "label value {value:?}: must be at most 63 characters of alphanumerics, '-', '_' or '.', starting and ending alphanumeric"
        ))
    }
}

/// The operator of one field requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldOp {
    /// `field=value` or `field==value`.
    Equals,
    /// `field!=value`.
    NotEquals,
}

/// One requirement of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    /// The field path, such as `metadata.name`.
    pub field: String,
    /// The operator.
    pub op: FieldOp,
    /// The value, unescaped.
    pub value: String,
}

/// A parsed field selector: all requirements must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    /// The requirements, in the order written.
    pub requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses a field selector such as `metadata.name=cm1,metadata.namespace!=kube-system`.
    /// Values may escape `\`, `,` and `=` with a backslash.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let err = |reason: String| SelectorError { kind: "field", selector: selector.to_owned(), reason };
        let mut requirements = Vec::new();
        if selector.trim().is_empty() {
            return Ok(FieldSelector { requirements });
        }
        for term in split_unescaped(selector, ',') {
            // apimachinery skips empty terms (`a=b,` and `a=b,,c=d` are accepted).
            if term.is_empty() {
                continue;
            }
            let Some((field, op, value)) = split_term(term) else {
                return Err(err(format!("{term:?} is not of the form field=value, field==value or field!=value")));
            };
            let field = field.trim();
            if field.is_empty() {
                return Err(err(format!("{term:?} has no field name")));
            }
            let value = unescape_field_value(value).map_err(&err)?;
            requirements.push(FieldRequirement { field: field.to_owned(), op, value });
        }
        Ok(FieldSelector { requirements })
    }

    /// Whether an object satisfies every requirement; `lookup` returns a field's value, or
    /// `None` for a field the kind does not support.
    pub fn matches<'a>(&self, mut lookup: impl FnMut(&str) -> Option<&'a str>) -> bool {
        self.requirements.iter().all(|r| {
            let v = lookup(&r.field).unwrap_or("");
            match r.op {
                FieldOp::Equals => v == r.value,
                FieldOp::NotEquals => v != r.value,
            }
        })
    }
}

fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(&s[start..i]);
            start = i + 1;
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Splits a term as apimachinery's `splitTerm`: at the first position where an operator starts
/// (trying `!=`, then `==`, then `=` there); the field part has no escapes.
fn split_term(term: &str) -> Option<(&str, FieldOp, &str)> {
    const OPS: [(&str, FieldOp); 3] = [("!=", FieldOp::NotEquals), ("==", FieldOp::Equals), ("=", FieldOp::Equals)];
    term.char_indices().find_map(|(i, _)| {
        let rest = &term[i..];
        OPS.iter().find(|(pat, _)| rest.starts_with(pat)).map(|&(pat, op)| (&term[..i], op, &rest[pat.len()..]))
    })
}

fn unescape_field_value(v: &str) -> Result<String, String> {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                Some(e) => return Err(format!("invalid escape sequence \\{e} in value {v:?}")),
                None => return Err(format!("value {v:?} ends in an unfinished escape")),
            }
        } else if c == ',' || c == '=' {
            return Err(format!("unescaped {c:?} in value {v:?} (escape it as \\{c})"));
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parses_every_operator() {
        let s = LabelSelector::parse("app in (web, cache),tier!=front,env==prod,x=y,has,!gone,n>3,m<9,k notin (a)")
            .unwrap();
        let ops: Vec<_> = s.requirements.iter().map(|r| r.op).collect();
        assert_eq!(
            ops,
            [
                LabelOp::In,
                LabelOp::NotEquals,
                LabelOp::Equals,
                LabelOp::Equals,
                LabelOp::Exists,
                LabelOp::DoesNotExist,
                LabelOp::GreaterThan,
                LabelOp::LessThan,
                LabelOp::NotIn
            ]
        );
        assert_eq!(s.requirements[0].values, ["web", "cache"]);
    }

    #[test]
    fn rejects_what_the_server_rejects() {
        for bad in ["app in web", "app in (web", "=x", "a=b,", "a!b", "Bad Key=x", "a=-x", "a>x", "a=b c"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let e = LabelSelector::parse("app in web").unwrap_err();
        assert_eq!(e.kind, "label");
        assert!(e.to_string().contains("app in web"), "{e}");
    }

    #[test]
    fn validate_agrees_with_parse() {
        for sel in [
            "",
            " ",
            "app=web",
            "app==web",
            "app!=web",
            "a=",
            "a=,b=c",
            "a=b,",
            ",",
            "a==",
            "a===b",
            "a!b",
            "a=!b",
            "!=x",
            "=x",
            "a/b=c",
            "example.com/a=b",
            "Ex.com/a=b",
            "a/b/c=d",
            "a=b c",
            " a=b",
            "a =b",
            "a=-b",
            "a=b,c",
            "in=x",
            "a=b,c!=d,e==f",
            "a>1",
            "a in (b)",
            "!a",
            "a",
            "é=b",
            "a=é",
        ] {
            assert_eq!(LabelSelector::validate(sel), LabelSelector::parse(sel).map(drop), "{sel:?}");
        }
    }

    #[test]
    fn matching() {
        let s = LabelSelector::parse("app in (web,cache),tier!=front").unwrap();
        assert!(s.matches(&labels(&[("app", "web")])));
        assert!(s.matches(&labels(&[("app", "cache"), ("tier", "back")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "front")])));
        assert!(!s.matches(&labels(&[])));
        assert!(LabelSelector::parse("").unwrap().matches(&labels(&[])));
        assert!(LabelSelector::parse("tier,!app").unwrap().matches(&labels(&[("tier", "x")])));
        assert!(LabelSelector::parse("n>3").unwrap().matches(&labels(&[("n", "4")])));
        assert!(!LabelSelector::parse("n>3").unwrap().matches(&labels(&[("n", "x")])));
    }

    #[test]
    fn display_round_trips() {
        let text = "app in (web,cache),tier!=front,has,!gone";
        assert_eq!(LabelSelector::parse(text).unwrap().to_string(), text);
    }

    #[test]
    fn field_selectors() {
        let s = FieldSelector::parse("metadata.name!=cm1,metadata.namespace==ns,spec.x=a\\,b").unwrap();
        assert_eq!(s.requirements[2].value, "a,b");
        assert!(s.matches(|f| match f {
            "metadata.name" => Some("cm2"),
            "metadata.namespace" => Some("ns"),
            "spec.x" => Some("a,b"),
            _ => None,
        }));
        assert!(FieldSelector::parse("metadata.name").is_err());
        assert!(FieldSelector::parse("=x").is_err());
        assert!(FieldSelector::parse("a=b\\q").is_err());
    }
}
