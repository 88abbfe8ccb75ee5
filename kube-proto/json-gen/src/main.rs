//! Writes `kube-proto/src/direct_json/generated.rs`: for every `k8s-openapi` struct reachable
//! from the built-in kinds, a function that reads its JSON object straight into the struct (a
//! `match` on the key, each field filled in place), for every Kubernetes version k8s-openapi
//! has; and `KINDS`, the kinds' types to their decoders.
//!
//! It reads k8s-openapi's own sources (the struct's fields, and its generated `Deserialize`: the
//! JSON names, the `apiVersion`/`kind` checks, how absent and `null` fields are filled) and
//! writes a function only for a struct whose `Deserialize` has the usual shape: `Default`, every
//! field read as `Option<field type>` (so `null` is absent), an absent required field its
//! default, unknown keys ignored. Any other struct, and every type that is not a struct (enums,
//! newtypes over JSON), is read by `serde_json` from the text of its value alone.
//!
//! ```text
//! cargo run --manifest-path kube-proto/json-gen/Cargo.toml -- \
//!     ~/.cargo/registry/src/<index>/k8s-openapi-0.29.0/src \
//!     kube-proto/src/direct_json/generated.rs [--check]
//! ```
//!
//! With `--check` nothing is written: it fails (exit code 1) when the file differs from what it
//! would write, which is how to tell that the committed file is current.

// A development tool under kube-proto/, not part of the core: it reads k8s-openapi's sources and
// writes files, which kube-proto/clippy.toml forbids the core's crates.
#![allow(clippy::disallowed_methods)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[path = "../../gen-shared/openapi_source.rs"]
mod openapi_source;
use openapi_source::{StructBlock, field_keys, gated, resource_consts, rust_sources, struct_block};

/// A struct of one k8s-openapi version, as far as the generated code needs it.
#[derive(Debug, Clone)]
struct Struct {
    /// `a::b::c` (below `crate::`).
    module: String,
    name: String,
    /// JSON name -> (Rust field name, Rust type as written).
    fields: Vec<(String, String, String)>,
    /// `(apiVersion, kind)` checked by its `Deserialize` (a resource).
    checks: Option<(String, String)>,
    /// Whether the generated function can read it (see the file's doc).
    native: bool,
}

impl Struct {
    fn path(&self) -> String {
        format!("o::{}::{}", self.module, self.name)
    }

    fn fn_name(&self) -> String {
        format!("{}_{}", self.module.replace("::", "_"), self.name).to_lowercase()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let check = args.len() == 4 && args[3] == "--check";
    if args.len() != 3 && !check {
        eprintln!("usage: {} <k8s-openapi/src> <out.rs> [--check]", args[0]);
        std::process::exit(2);
    }
    let (root, out) = (PathBuf::from(&args[1]), PathBuf::from(&args[2]));
    let mut versions: Vec<(u32, Items)> = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()) {
        let Some(minor) = dir.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_prefix("v1_")) else {
            continue;
        };
        let minor: u32 = minor.parse().unwrap();
        let items = items(&parse(&dir));
        eprintln!("v1_{minor}: {} structs read directly, {} types by serde", items.native, items.serde);
        versions.push((minor, items));
    }
    versions.sort_by_key(|(v, _)| *v);
    let text = file(&versions);
    let stale = if check {
        let stale = std::fs::read_to_string(&out).ok().as_deref() != Some(text.as_str());
        if stale {
            eprintln!("{} is not what the generator writes: regenerate it", out.display());
        }
        stale
    } else {
        std::fs::write(&out, text).unwrap();
        false
    };
    if stale {
        std::process::exit(1);
    }
}

/// Every struct of one version's sources, by `module::Name`.
fn parse(root: &Path) -> BTreeMap<String, Struct> {
    let mut out = BTreeMap::new();
    for (module, text) in rust_sources(root) {
        let module = module.join("::");
        let Some(StructBlock { name, default, fields: by_rust }) = struct_block(&text) else { continue };
        let trimmed: Vec<&str> = text.lines().map(|l| l.trim()).collect();
        let has = |s: &str| trimmed.contains(&s);
        let mut native = default && text.contains("fn visit_map<A>(self, mut map: A)");
        let mut fields = Vec::new();
        let mut checked = (false, false);
        for (lit, key) in field_keys(&text) {
            let found = by_rust.iter().find(|(n, _)| n.trim_start_matches("r#") == key);
            match found {
                Some((n, ty)) => {
                    // Read as `Option<type>` (null: absent), filled as is or defaulted.
                    let read = has(&format!(
                        "Field::Key_{key} => value_{key} = crate::serde::de::MapAccess::next_value(&mut map)?,"
                    ));
                    let built = if ty.starts_with("Option<") {
                        has(&format!("{n}: value_{key},"))
                    } else {
                        has(&format!("{n}: value_{key}.unwrap_or_default(),"))
                    };
                    native &= read && built;
                    fields.push((lit, n.clone(), ty.clone()));
                }
                None if key == "api_version" && lit == "apiVersion" => checked.0 = true,
                None if key == "kind" && lit == "kind" => checked.1 = true,
                None => native = false,
            }
        }
        let checks = resource_consts(&text);
        if checked.0 || checked.1 {
            // What the checks compare with.
            native &= checked == (true, true)
                && checks.is_some()
                && text.contains("if value_api_version != <Self::Value as crate::Resource>::API_VERSION {")
                && text.contains("if value_kind != <Self::Value as crate::Resource>::KIND {");
        }
        native &= fields.len() < 128;
        let checks = if checked.0 { checks } else { None };
        out.insert(format!("{module}::{name}"), Struct { module, name, fields, checks, native });
    }
    out
}

/// The `crate::` paths a Rust type names.
fn paths(ty: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = ty;
    while let Some(i) = rest.find("crate::") {
        let t = &rest[i + "crate::".len()..];
        let end = t.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(t.len());
        out.push(t[..end].to_owned());
        rest = &t[end..];
    }
    out
}

/// The types read by hand-written code (`direct_json/fill.rs`).
const HAND: &[&str] = &[
    "apimachinery::pkg::api::resource::Quantity",
    "apimachinery::pkg::apis::meta::v1::Time",
    "apimachinery::pkg::apis::meta::v1::MicroTime",
    "apimachinery::pkg::util::intstr::IntOrString",
    "apimachinery::pkg::apis::meta::v1::FieldsV1",
    "ByteString",
    "serde_json::Value",
];

/// One version's items: name -> text, and counts.
#[derive(Default)]
struct Items {
    items: BTreeMap<String, String>,
    native: usize,
    serde: usize,
}

fn items(structs: &BTreeMap<String, Struct>) -> Items {
    // Reachable from the kinds.
    let mut reach: BTreeSet<String> = BTreeSet::new();
    let mut stack: Vec<String> = structs.iter().filter(|(_, s)| s.checks.is_some()).map(|(k, _)| k.clone()).collect();
    let mut leaves: BTreeSet<String> = BTreeSet::new();
    while let Some(k) = stack.pop() {
        if !reach.insert(k.clone()) {
            continue;
        }
        let s = &structs[&k];
        if !s.native {
            leaves.insert(k);
            continue;
        }
        for (_, _, ty) in &s.fields {
            for p in paths(ty) {
                if structs.contains_key(&p) {
                    stack.push(p);
                } else {
                    leaves.insert(p);
                }
            }
        }
    }
    let mut out = Items::default();
    for k in &reach {
        let s = &structs[k];
        if !s.native {
            continue;
        }
        out.native += 1;
        let mut f = String::new();
        let path = s.path();
        let name = s.fn_name();
        writeln!(f, "fn {name}(p: &mut Parser<'_>, out: &mut {path}) -> Step {{").unwrap();
        if !s.fields.is_empty() {
            writeln!(f, "    let mut seen = 0u128;").unwrap();
        }
        writeln!(f, "    let mut key = p.object()?;\n    while let Some(k) = key {{\n        match k {{").unwrap();
        if let Some((av, kind)) = &s.checks {
            writeln!(
                f,
                "            \"apiVersion\" => p.expect_str({av:?})?,\n            \"kind\" => p.expect_str({kind:?})?,"
            )
            .unwrap();
        }
        for (i, (json, rust, _)) in s.fields.iter().enumerate() {
            writeln!(f, "            {json:?} => field(p, &mut out.{rust}, &mut seen, {i})?,").unwrap();
        }
        writeln!(f, "            _ => p.skip()?,\n        }}\n        key = p.next_key()?;\n    }}").unwrap();
        if !s.fields.is_empty() {
            // Over an object held before: what this text leaves out goes back to its default.
            writeln!(f, "    if p.is_refilling() {{").unwrap();
            for (i, (_, rust, _)) in s.fields.iter().enumerate() {
                writeln!(f, "        unseen(&mut out.{rust}, seen, {i});").unwrap();
            }
            writeln!(f, "    }}").unwrap();
        }
        writeln!(f, "    Ok(())\n}}").unwrap();
        writeln!(f, "in_place!({path}, {name});").unwrap();
        out.items.insert(name, f);
    }
    for l in &leaves {
        if HAND.contains(&l.as_str()) {
            continue;
        }
        out.serde += 1;
        let (m, n) = l.rsplit_once("::").unwrap_or(("", l));
        let path = if m.is_empty() { format!("o::{n}") } else { format!("o::{m}::{n}") };
        out.items.insert(format!("~serde {l}"), format!("by_serde!({path});"));
    }
    let mut table = String::new();
    let mut n = 0;
    for k in &reach {
        let s = &structs[k];
        if s.native && s.checks.is_some() {
            writeln!(table, "    (TypeId::of::<{0}>, direct::<{0}>),", s.path()).unwrap();
            n += 1;
        }
    }
    out.items.insert(
        "~~kinds".to_owned(),
        format!("/// Each kind's type to its decoder.\npub(super) const KINDS: [Kind; {n}] = [\n{table}];"),
    );
    out
}

/// The whole file: an item whose text is the same in every version is written once; one that
/// differs once per run of versions it holds in, inside k8s-openapi's `k8s_if_ge_1_NN!` /
/// `k8s_if_le_1_NN!`, so that the file compiles for whichever version the application picks.
fn file(versions: &[(u32, Items)]) -> String {
    let list: Vec<String> = versions.iter().map(|(v, _)| format!("v1_{v}")).collect();
    let mut src = format!(
        "// @generated by kube-proto/json-gen from k8s-openapi 0.29.0, {}. Do not edit; regenerate\n\
         // (see kube-proto/json-gen/src/main.rs).\n\
         //! The `k8s_openapi` structs read straight from JSON: one function per struct, a `match` on\n\
         //! the key; the types read by `serde_json` from their value's text; `KINDS`, the kinds.\n\n\
         // Which items a version has depends on the Kubernetes version k8s-openapi is built for.\n\
         #![allow(dead_code, unused_imports)]\n\n\
         use std::any::TypeId;\n\n\
         use k8s_openapi as o;\n\n\
         use super::fill::{{Kind, by_serde, direct, field, in_place, unseen}};\n\
         use super::parser::{{Parser, Step}};\n",
        list.join(", ")
    );
    let all: Vec<u32> = versions.iter().map(|(v, _)| *v).collect();
    let mut by_name: BTreeMap<String, Vec<(String, Vec<u32>)>> = BTreeMap::new();
    for (v, items) in versions {
        for (name, text) in &items.items {
            let variants = by_name.entry(name.clone()).or_default();
            match variants.iter_mut().find(|(t, _)| t == text) {
                Some((_, vs)) => vs.push(*v),
                None => variants.push((text.clone(), vec![*v])),
            }
        }
    }
    for variants in by_name.values() {
        for (text, vs) in variants {
            src.push('\n');
            src.push_str(&gated(text.trim_end(), vs, &all));
            src.push('\n');
        }
    }
    src
}
