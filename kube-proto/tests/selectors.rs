//! Label and field selectors, case by case against the behaviour of `k8s.io/apimachinery`'s
//! `pkg/labels` and `pkg/fields` parsers (many cases are theirs: `TestSelectorParse`,
//! `TestSetSelectorParser`, `TestSelectorMatches`, `TestEscapeValue`, ...).

use std::collections::BTreeMap;

use kube_proto::selector::{
    FieldOp, FieldSelector, LabelOp, LabelSelector, is_dns1123_subdomain, validate_label_key, validate_label_value,
};
use proptest::prelude::*;

// ---- Helpers ----

/// A label or field set, as pairs.
type Pairs = &'static [(&'static str, &'static str)];
/// A selector, a set, and whether the selector matches it.
type MatchCase = (&'static str, Pairs, bool);
/// A label selector and the requirements it parses to: (key, operator, values).
type LabelCase = (&'static str, &'static [(&'static str, LabelOp, &'static [&'static str])]);
/// A field selector and the requirements it parses to: (field, operator, value).
type FieldCase = (&'static str, &'static [(&'static str, FieldOp, &'static str)]);

#[track_caller]
fn label_ok(s: &str) -> LabelSelector {
    LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

#[track_caller]
fn label_bad(s: &str) {
    match LabelSelector::parse(s) {
        Ok(sel) => panic!("{s:?} should be rejected, parsed as {sel:?}"),
        Err(e) => {
            assert_eq!((e.kind, e.selector.as_str()), ("label", s));
            assert!(!e.reason.is_empty());
        }
    }
}

/// The requirements as (key, operator, values).
fn reqs(sel: &LabelSelector) -> Vec<(&str, LabelOp, Vec<&str>)> {
    sel.requirements.iter().map(|r| (r.key.as_str(), r.op, r.values.iter().map(String::as_str).collect())).collect()
}

fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|&(k, v)| (k.to_owned(), v.to_owned())).collect()
}

#[track_caller]
fn field_ok(s: &str) -> Vec<(String, FieldOp, String)> {
    let sel = FieldSelector::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"));
    sel.requirements.into_iter().map(|r| (r.field, r.op, r.value)).collect()
}

#[track_caller]
fn field_bad(s: &str) {
    match FieldSelector::parse(s) {
        Ok(sel) => panic!("{s:?} should be rejected, parsed as {sel:?}"),
        Err(e) => {
            assert_eq!((e.kind, e.selector.as_str()), ("field", s));
            assert!(!e.reason.is_empty());
        }
    }
}

fn field_matches(s: &str, fields: &[(&str, &str)]) -> bool {
    let fields = set(fields);
    FieldSelector::parse(s).unwrap().matches(|f| fields.get(f).map(String::as_str))
}

/// Escapes a field selector value as apimachinery's `fields.EscapeValue`.
fn escape_field_value(v: &str) -> String {
    v.replace('\\', "\\\\").replace(',', "\\,").replace('=', "\\=")
}

// ---- Label selectors: what parses, and to what ----

#[test]
fn label_selectors_that_parse() {
    use LabelOp::*;
    let cases: &[LabelCase] = &[
        ("", &[]),
        ("   ", &[]),
        ("x=a,y=b,z=c", &[("x", Equals, &["a"]), ("y", Equals, &["b"]), ("z", Equals, &["c"])]),
        ("x!=a,y=b", &[("x", NotEquals, &["a"]), ("y", Equals, &["b"])]),
        ("x==a", &[("x", Equals, &["a"])]),
        // An empty value, with or without spaces after it.
        ("x=", &[("x", Equals, &[""])]),
        ("x= ", &[("x", Equals, &[""])]),
        ("x=,z= ", &[("x", Equals, &[""]), ("z", Equals, &[""])]),
        ("x= ,z= ", &[("x", Equals, &[""]), ("z", Equals, &[""])]),
        ("x!=", &[("x", NotEquals, &[""])]),
        ("x==", &[("x", Equals, &[""])]),
        ("!x", &[("x", DoesNotExist, &[])]),
        ("! x", &[("x", DoesNotExist, &[])]),
        ("x", &[("x", Exists, &[])]),
        ("a ", &[("a", Exists, &[])]),
        ("\rx", &[("x", Exists, &[])]),
        ("x>1", &[("x", GreaterThan, &["1"])]),
        ("x<7", &[("x", LessThan, &["7"])]),
        ("x>1,z<5", &[("x", GreaterThan, &["1"]), ("z", LessThan, &["5"])]),
        ("x > 10", &[("x", GreaterThan, &["10"])]),
        ("x>0", &[("x", GreaterThan, &["0"])]),
        ("x<9223372036854775807", &[("x", LessThan, &["9223372036854775807"])]),
        // Whitespace between tokens (space, tab, CR, LF) is insignificant.
        ("  app  =  web  ,  tier  !=  front  ", &[("app", Equals, &["web"]), ("tier", NotEquals, &["front"])]),
        ("foo  in\t (abc)", &[("foo", In, &["abc"])]),
        ("x notin\n (abc)", &[("x", NotIn, &["abc"])]),
        ("x  notin\t\t\t(abc,def)", &[("x", NotIn, &["abc", "def"])]),
        ("a\r\nin\r\n(b)", &[("a", In, &["b"])]),
        // Sets: empty members are allowed, in any position.
        ("x in (abc,def)", &[("x", In, &["abc", "def"])]),
        ("x in ( abc , def )", &[("x", In, &["abc", "def"])]),
        ("x in(abc)", &[("x", In, &["abc"])]),
        ("x in (abc,)", &[("x", In, &["abc", ""])]),
        ("x in ()", &[("x", In, &[""])]),
        ("x notin ( )", &[("x", NotIn, &[""])]),
        ("x notin (, a)", &[("x", NotIn, &["", "a"])]),
        ("x notin (abc,,def)", &[("x", NotIn, &["abc", "", "def"])]),
        (
            "x notin (abc,,def),bar,z in (),w",
            &[("x", NotIn, &["abc", "", "def"]), ("bar", Exists, &[]), ("z", In, &[""]), ("w", Exists, &[])],
        ),
        ("x,y in (a)", &[("x", Exists, &[]), ("y", In, &["a"])]),
        ("x=a,y!=b,z in (h,i,j)", &[("x", Equals, &["a"]), ("y", NotEquals, &["b"]), ("z", In, &["h", "i", "j"])]),
        // 'in' and 'notin' are only operators where an operator is expected.
        ("a in (x,y,notin, z,in)", &[("a", In, &["x", "y", "notin", "z", "in"])]),
        ("notin=in", &[("notin", Equals, &["in"])]),
        ("in in (in)", &[("in", In, &["in"])]),
        ("in", &[("in", Exists, &[])]),
        ("!notin", &[("notin", DoesNotExist, &[])]),
        // Keys: DNS-subdomain prefixes, upper case and digits in the name.
        ("this-is-a-dns.domain.com/key-with-dash", &[("this-is-a-dns.domain.com/key-with-dash", Exists, &[])]),
        (
            "this-is-another-dns.domain.com/key-with-dash in (so,what)",
            &[("this-is-another-dns.domain.com/key-with-dash", In, &["so", "what"])],
        ),
        (
            "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
            &[("0.1.2.domain/99", NotIn, &["10.10.100.1", "tick.tack.clock"])],
        ),
        ("example.com/app=web", &[("example.com/app", Equals, &["web"])]),
        ("app.kubernetes.io/name==my_app-1.0", &[("app.kubernetes.io/name", Equals, &["my_app-1.0"])]),
        ("!node-role.kubernetes.io/control-plane", &[("node-role.kubernetes.io/control-plane", DoesNotExist, &[])]),
        ("App=Web", &[("App", Equals, &["Web"])]),
        ("1foo in (bar)", &[("1foo", In, &["bar"])]),
        ("1234=5678", &[("1234", Equals, &["5678"])]),
        ("a.b_c-d=E.F_G-H", &[("a.b_c-d", Equals, &["E.F_G-H"])]),
        // The same key more than once is allowed (all requirements must hold).
        ("x=a,x!=b,x", &[("x", Equals, &["a"]), ("x", NotEquals, &["b"]), ("x", Exists, &[])]),
    ];
    for &(input, want) in cases {
        let sel = label_ok(input);
        let want: Vec<(&str, LabelOp, Vec<&str>)> = want.iter().map(|&(k, op, v)| (k, op, v.to_vec())).collect();
        assert_eq!(reqs(&sel), want, "{input:?}");
    }
}

#[test]
fn label_selectors_that_are_rejected() {
    for bad in [
        // apimachinery's own bad strings
        "x=a||y=b",
        "x==a==b",
        "!x=a",
        "x<a",
        "x,,y",
        ",x,y",
        "x nott in (y)",
        "a in (xyz),",
        "a in (xyz)b notin ()",
        "a in (xyz abc)",
        "a notin(",
        "a (",
        "(",
        // sets
        "app in web",
        "app in (web",
        "app in (web,",
        "app in web)",
        "app notin",
        "app in",
        "app in ((a))",
        "app in (a=b)",
        "app in (-a)",
        "app in (a b)",
        "app=(a)",
        // commas
        "a=b,",
        "a=b, ",
        "a=b,,c=d",
        ",",
        ",a",
        "a,,",
        // operators
        "=x",
        "==x",
        "!=x",
        "!",
        "!!x",
        "! ",
        "!x,",
        "a!b",
        "a!",
        "a=!b",
        "a===b",
        "a= =b",
        "a=b=c",
        "a=b c",
        "a b",
        "a in",
        "a>",
        "a<",
        "a>b",
        "a>1.5",
        "a>1e3",
        "a>-1",
        "a<+1",
        "a>99999999999999999999",
        "a>=1",
        "a<=1",
        "a>1>2",
        "a=>1",
        "a||b",
        // keys
        "Bad Key=x",
        "-a=b",
        "a-=b",
        "_a",
        "a_",
        ".a",
        "/a",
        "a/",
        "a/b/c",
        "Example.com/a",
        "example..com/a",
        "-example.com/a",
        "example_com/a",
        "ключ=x",
        "a*=b",
        // values
        "a=-b",
        "a=b-",
        "a=_b",
        "a=b.",
        "a=ü",
        "a=b/c",
        "a=b*",
        "a=$y",
        "a=b:c",
        "a in (b,-c)",
    ] {
        label_bad(bad);
    }
    // The error names the selector and says what is wrong.
    let e = LabelSelector::parse("app in web").unwrap_err();
    assert!(e.to_string().contains("app in web") && e.to_string().contains("label"), "{e}");
}

#[test]
fn label_name_and_value_lengths() {
    let n63 = "a".repeat(63);
    let n64 = "a".repeat(64);
    // A key's name part and a value: at most 63 characters.
    label_ok(&format!("{n63}={n63}"));
    label_ok(&format!("{n63} in ({n63},b)"));
    label_ok(&format!("!{n63}"));
    label_bad(&format!("{n64}=a"));
    label_bad(&format!("a={n64}"));
    label_bad(&format!("a in (b,{n64})"));
    label_bad(&format!("!{n64}"));
    label_bad(&"a".repeat(254));
    // A prefix: a DNS subdomain of at most 253 characters.
    let p253 = format!("{n63}.{n63}.{n63}.{}", "b".repeat(61));
    assert_eq!(p253.len(), 253);
    label_ok(&format!("{p253}/{n63}=x"));
    label_bad(&format!("{p253}c/a=x"));
    // As in apimachinery's IsDNS1123Subdomain, only the whole prefix is limited, not its labels.
    label_ok(&format!("{n64}.com/a=x"));
    // The validators, directly.
    assert!(validate_label_key(&n63).is_ok() && validate_label_key(&n64).is_err());
    assert!(validate_label_key(&format!("{p253}/{n63}")).is_ok());
    assert!(validate_label_key(&format!("{p253}c/a")).is_err());
    assert!(validate_label_key("").is_err() && validate_label_key("/").is_err() && validate_label_key("a/").is_err());
    assert!(
        validate_label_value("").is_ok() && validate_label_value(&n63).is_ok() && validate_label_value(&n64).is_err()
    );
    assert!(validate_label_value("A-b_c.9").is_ok() && validate_label_value("a b").is_err());
    for ok in ["a", "0", "a-b", "a.b", "a--b", "0.1.2.domain", "example.com", "a1-b2.c3"] {
        assert!(is_dns1123_subdomain(ok), "{ok}");
    }
    for bad in ["", "A", "a_b", "-a", "a-", ".a", "a.", "a..b", "a.-b", "ü", &"a".repeat(254)] {
        assert!(!is_dns1123_subdomain(bad), "{bad}");
    }
}

// ---- Label selectors: matching ----

#[test]
fn label_matching() {
    let cases: &[MatchCase] = &[
        // apimachinery's TestSelectorMatches
        ("", &[("x", "y")], true),
        ("x=y", &[("x", "y")], true),
        ("x=y,z=w", &[("x", "y"), ("z", "w")], true),
        ("x!=y,z!=w", &[("x", "z"), ("z", "a")], true),
        ("notin=in", &[("notin", "in")], true),
        ("x", &[("x", "z")], true),
        ("!x", &[("y", "z")], true),
        ("x>1", &[("x", "2")], true),
        ("x<1", &[("x", "0")], true),
        ("x=z", &[], false),
        ("x=y", &[("x", "z")], false),
        ("x=y,z=w", &[("x", "w"), ("z", "w")], false),
        ("x!=y,z!=w", &[("x", "z"), ("z", "w")], false),
        ("x", &[("y", "z")], false),
        ("!x", &[("x", "z")], false),
        ("x>1", &[("x", "0")], false),
        ("x<1", &[("x", "2")], false),
        ("foo=bar,baz=blah", &[("foo", "bar"), ("baz", "blah")], true),
        ("foo=bar,foobar=bar,baz=blah", &[("foo", "bar"), ("baz", "blah")], false),
        // TestRequirementSelectorMatching
        ("x in (foo),y notin (alpha)", &[("x", "foo"), ("y", "baz")], true),
        ("x in (foo),y in (alpha)", &[("x", "foo"), ("y", "baz")], false),
        ("x notin (),y", &[("y", "")], true),
        ("!x,y", &[("y", "")], true),
        ("x notin (),!y", &[("y", "")], false),
        ("x in ()", &[("y", "baz")], false),
        ("z>1", &[("z", "2")], true),
        ("z>1", &[("z", "v2")], false),
        // Absent labels: != and notin match, = and in do not.
        ("x!=a", &[], true),
        ("x notin (a,b)", &[], true),
        ("x=a", &[], false),
        ("x in (a,b)", &[], false),
        ("x>0", &[], false),
        ("x<0", &[], false),
        // Empty values.
        ("x=", &[("x", "")], true),
        ("x=", &[], false),
        ("x!=", &[("x", "")], false),
        ("x!=", &[("x", "a")], true),
        ("x!=", &[], true),
        ("x in (a,)", &[("x", "")], true),
        ("x notin (a,)", &[("x", "")], false),
        // Comparisons are of 64-bit integers, not strings.
        ("x>9", &[("x", "10")], true),
        ("x<10", &[("x", "9")], true),
        ("x>1", &[("x", "-5")], false),
        ("x<1", &[("x", "-5")], true),
        ("x>1", &[("x", "1")], false),
        ("x<1", &[("x", "1")], false),
        ("x>1", &[("x", "99999999999999999999")], false),
        ("x>1", &[("x", "2.5")], false),
        ("x<9223372036854775807", &[("x", "-9223372036854775808")], true),
        // Prefixed keys are compared whole.
        ("example.com/app=web", &[("app", "web")], false),
        ("example.com/app=web", &[("example.com/app", "web")], true),
        ("!example.com/app", &[("app", "web")], true),
        // Case matters.
        ("App=web", &[("app", "web")], false),
        ("app=Web", &[("app", "web")], false),
        // Every requirement on the same key must hold.
        ("x,x!=a,x notin (b)", &[("x", "c")], true),
        ("x,x!=a,x notin (b)", &[("x", "b")], false),
    ];
    for &(selector, labels, want) in cases {
        let got = label_ok(selector).matches(&set(labels));
        assert_eq!(got, want, "{selector:?} on {labels:?}");
    }
}

#[test]
fn label_display_is_canonical_and_round_trips() {
    for (input, canonical) in [
        ("", ""),
        ("x=a,y=b,z=c", "x=a,y=b,z=c"),
        ("x==a", "x=a"),
        (" x = a , y != b ", "x=a,y!=b"),
        ("x  in ( a ,b )", "x in (a,b)"),
        ("x notin (abc),y in (jkl,mno),z notin ()", "x notin (abc),y in (jkl,mno),z notin ()"),
        ("x notin (abc,def),y!=jkl,!z", "x notin (abc,def),y!=jkl,!z"),
        ("x>2,y<8,z", "x>2,y<8,z"),
        ("! a", "!a"),
        ("x=", "x="),
    ] {
        let sel = label_ok(input);
        assert_eq!(sel.to_string(), canonical, "{input:?}");
        assert_eq!(label_ok(canonical), sel, "{canonical:?}");
    }
}

// ---- Field selectors ----

#[test]
fn field_selectors_that_parse() {
    use FieldOp::*;
    let cases: &[FieldCase] = &[
        ("", &[]),
        ("x=a,y=b,z=c", &[("x", Equals, "a"), ("y", Equals, "b"), ("z", Equals, "c")]),
        ("x!=a,y=b", &[("x", NotEquals, "a"), ("y", Equals, "b")]),
        ("x==a", &[("x", Equals, "a")]),
        ("metadata.name=my-cm", &[("metadata.name", Equals, "my-cm")]),
        ("metadata.namespace!=kube-system", &[("metadata.namespace", NotEquals, "kube-system")]),
        ("spec.nodeName=", &[("spec.nodeName", Equals, "")]),
        ("spec.nodeName!=", &[("spec.nodeName", NotEquals, "")]),
        // Escapes: `\\`, `\,` and `\=` in values.
        (r"x=a||y\=b", &[("x", Equals, "a||y=b")]),
        (r"x=a\=\=b", &[("x", Equals, "a==b")]),
        (r"complex=\=value\\\,\\", &[("complex", Equals, r"=value\,\")]),
        (r"x=a\,b,y=c", &[("x", Equals, "a,b"), ("y", Equals, "c")]),
        (r"x=\\,y=\,", &[("x", Equals, "\\"), ("y", Equals, ",")]),
        // The operator is the first one in the term: `=` then `!` is a value starting with '!'.
        ("x=!a", &[("x", Equals, "!a")]),
        ("x==!a", &[("x", Equals, "!a")]),
        // Values are free text: spaces, '!', '|', not ASCII.
        ("metadata.name=café", &[("metadata.name", Equals, "café")]),
        ("metadata.name=日本語", &[("metadata.name", Equals, "日本語")]),
        ("x=a b ", &[("x", Equals, "a b ")]),
        ("x=a|b!c", &[("x", Equals, "a|b!c")]),
        // Empty terms are skipped, as apimachinery does.
        ("x=a,", &[("x", Equals, "a")]),
        ("x=a,,y=b", &[("x", Equals, "a"), ("y", Equals, "b")]),
        (",x=a", &[("x", Equals, "a")]),
        (",", &[]),
        (",,", &[]),
    ];
    for &(input, want) in cases {
        let want: Vec<(String, FieldOp, String)> =
            want.iter().map(|&(f, op, v)| (f.to_owned(), op, v.to_owned())).collect();
        assert_eq!(field_ok(input), want, "{input:?}");
    }
}

#[test]
fn field_selectors_that_are_rejected() {
    for bad in [
        // apimachinery's own bad strings
        "x=a||y=b",
        "x==a==b",
        "x=a,b",
        "x in (a)",
        "x in (a,b,c)",
        "x",
        // no field
        "=x",
        "==x",
        "!=x",
        // unescaped '=' in a value, wherever the operator is
        "x=a=b",
        "x=a!=b",
        "x!=a=b",
        "x==a=b",
        "x=a==b",
        // bad escapes
        r"x=a\",
        r"x=\a",
        r"x=\\\",
        r"x=a\b",
        r"x=\n",
        // a bad term among good ones
        "x=a,y",
        "x=a,y,z=b",
    ] {
        field_bad(bad);
    }
    let e = FieldSelector::parse("metadata.name").unwrap_err();
    assert!(e.to_string().contains("metadata.name") && e.to_string().contains("field"), "{e}");
}

#[test]
fn field_matching() {
    let fields: Pairs = &[("foo", "bar"), ("baz", "blah"), ("complex", r"=value\,\")];
    let cases: &[MatchCase] = &[
        // apimachinery's TestSelectorMatches
        ("", &[("x", "y")], true),
        ("x=y", &[("x", "y")], true),
        ("x=y,z=w", &[("x", "y"), ("z", "w")], true),
        ("x!=y,z!=w", &[("x", "z"), ("z", "a")], true),
        ("notin=in", &[("notin", "in")], true),
        ("x=y", &[("x", "z")], false),
        ("x=y,z=w", &[("x", "w"), ("z", "w")], false),
        ("x!=y,z!=w", &[("x", "z"), ("z", "w")], false),
        ("foo=bar", fields, true),
        ("baz=blah", fields, true),
        ("foo=bar,baz=blah", fields, true),
        (r"foo=bar,baz=blah,complex=\=value\\\,\\", fields, true),
        ("foo=blah", fields, false),
        ("baz=bar", fields, false),
        ("foo=bar,foobar=bar,baz=blah", fields, false),
        // A field the object does not have reads as "".
        ("missing=", fields, true),
        ("missing!=", fields, false),
        ("missing=x", fields, false),
        ("missing!=x", fields, true),
        ("foo==bar", fields, true),
        ("foo!=bar", fields, false),
        ("foo=bar,", fields, true),
    ];
    for &(selector, set, want) in cases {
        assert_eq!(field_matches(selector, set), want, "{selector:?} on {set:?}");
    }
}

#[test]
fn field_value_escaping() {
    // apimachinery's TestEscapeValue: escaped and unescaped forms.
    for (unescaped, escaped) in
        [("", ""), ("a", "a"), ("=", r"\="), (",", r"\,"), ("\\", r"\\"), (r"\=\,\", r"\\\=\\\,\\")]
    {
        assert_eq!(escape_field_value(unescaped), escaped);
        assert_eq!(field_ok(&format!("f={escaped}")), [("f".to_owned(), FieldOp::Equals, unescaped.to_owned())]);
    }
    for invalid in [r"\", r"\\\", r"\a"] {
        field_bad(&format!("f={invalid}"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any value, escaped, parses back to itself, next to other terms.
    #[test]
    fn escaped_field_values_round_trip(value in "(?s).{0,24}", other in "[a-z]{0,5}", not in any::<bool>()) {
        let op = if not { "!=" } else { "=" };
        let s = format!("a.b{op}{},c=d{other}", escape_field_value(&value));
        let want_op = if not { FieldOp::NotEquals } else { FieldOp::Equals };
        prop_assert_eq!(
            field_ok(&s),
            vec![("a.b".to_owned(), want_op, value.clone()), ("c".to_owned(), FieldOp::Equals, format!("d{other}"))]
        );
        let d = format!("d{other}");
        prop_assert!(field_matches(&s, &[("a.b", value.as_str()), ("c", d.as_str())]) != not);
    }

    /// Selectors built from valid parts parse to those parts, and their display parses back.
    #[test]
    fn built_label_selectors_parse_and_round_trip(
        parts in prop::collection::vec(
            (
                "([a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?\\.)?[a-z0-9]{1,5}/",
                "[A-Za-z0-9]([-A-Za-z0-9_.]{0,10}[A-Za-z0-9])?",
                0usize..8,
                prop::collection::vec("([A-Za-z0-9]([-A-Za-z0-9_.]{0,6}[A-Za-z0-9])?)?", 1..4),
                -1000i64..1000,
                prop::sample::select(vec!["", " ", "  ", "\t"]),
            ),
            1..6,
        ),
        prefixed in any::<bool>(),
    ) {
        let mut terms = Vec::new();
        let mut want = Vec::new();
        for (prefix, name, op, values, n, ws) in &parts {
            let key = if prefixed { format!("{prefix}{name}") } else { name.clone() };
            let v0 = values[0].clone();
            let (term, op, vals) = match op {
                0 => (format!("{key}{ws}={ws}{v0}"), LabelOp::Equals, vec![v0]),
                1 => (format!("{key}{ws}=={ws}{v0}"), LabelOp::Equals, vec![v0]),
                2 => (format!("{key}{ws}!={ws}{v0}"), LabelOp::NotEquals, vec![v0]),
                3 => (format!("{key} in{ws}({})", values.join(&format!(",{ws}"))), LabelOp::In, values.clone()),
                4 => (format!("{key} notin ({ws}{}{ws})", values.join(",")), LabelOp::NotIn, values.clone()),
                5 => (format!("{ws}{key}"), LabelOp::Exists, vec![]),
                6 => (format!("!{ws}{key}"), LabelOp::DoesNotExist, vec![]),
                _ => {
                    let n = n.abs();
                    (format!("{key}{ws}{}{ws}{n}", if n % 2 == 0 { ">" } else { "<" }), if n % 2 == 0 { LabelOp::GreaterThan } else { LabelOp::LessThan }, vec![n.to_string()])
                }
            };
            terms.push(term);
            want.push((key, op, vals));
        }
        let s = terms.join(",");
        let sel = LabelSelector::parse(&s).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let got: Vec<(String, LabelOp, Vec<String>)> = sel.requirements.iter().map(|r| (r.key.clone(), r.op, r.values.clone())).collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(LabelSelector::parse(&sel.to_string()).unwrap(), sel);
        // A trailing comma always makes it invalid.
        let trailing = format!("{s},");
        prop_assert!(LabelSelector::parse(&trailing).is_err(), "a trailing comma");
    }

    /// Nothing panics the parsers, and what parses displays as something that parses the same.
    #[test]
    fn arbitrary_selectors_never_panic(s in "(?s).{0,40}", t in "[a-z!=<>(), \\t0-9/.\\-_]{0,30}") {
        for input in [&s, &t] {
            if let Ok(sel) = LabelSelector::parse(input) {
                prop_assert_eq!(LabelSelector::parse(&sel.to_string()).unwrap(), sel);
            }
            let _ = FieldSelector::parse(input);
        }
    }
}
