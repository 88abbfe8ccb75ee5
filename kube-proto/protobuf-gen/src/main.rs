//! Writes `kube-proto/src/protobuf/schema.rs`: the protobuf descriptors (field numbers, JSON
//! names, types) of every message reachable from the built-in kinds; and next to it
//! `direct_gen.rs`: for each of those messages that has a `k8s-openapi` struct, a function that
//! decodes its bytes straight into the struct (see `src/direct.rs`), for every Kubernetes version
//! k8s-openapi has.
//!
//! Field numbers and types come from the `k8s-pb` crate (the kube-rs project's prost bindings,
//! generated from the upstream `generated.proto` files), JSON names from `k8s-openapi` (the
//! types users decode into), joined by name with case and punctuation ignored (`pod_i_ps` in
//! prost is `podIPs` in JSON). Neither crate is a dependency: this reads their sources.
//!
//! ```text
//! cargo fetch --manifest-path kube-proto/protobuf-gen/k8s-pb/Cargo.toml --locked
//! cargo run --manifest-path kube-proto/protobuf-gen/Cargo.toml -- \
//!     ~/.cargo/registry/src/<index>/k8s-pb-0.9.0/src \
//!     ~/.cargo/registry/src/<index>/k8s-openapi-0.29.0/src/v1_36 \
//!     kube-proto/src/protobuf/schema.rs [--check]
//! ```
//!
//! With `--check` nothing is written: it fails (exit code 1) when either file differs from what
//! it would write, which is how to tell that the committed files are current. `.ci/run` does.

// A development tool under kube-proto/, not part of the core: it reads k8s-openapi's sources and
// writes files, which kube-proto/clippy.toml forbids the core's crates.
#![allow(clippy::disallowed_methods)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

mod direct;
#[path = "../../gen-shared/openapi_source.rs"]
mod openapi_source;
use openapi_source::{field_keys, resource_consts, rust_sources, walk};

#[derive(Debug, Clone)]
enum Ty {
    Scalar(&'static str),
    Message(String),
}

#[derive(Debug, Clone)]
struct Field {
    number: u32,
    rust_name: String,
    ty: Ty,
    /// "single", "repeated", or "map" (whose key is a string).
    rep: &'static str,
}

#[derive(Debug, Default)]
struct Message {
    fields: Vec<Field>,
}

/// How many Go structs deep an inlined struct may sit.
const MAX_INLINE_DEPTH: usize = 3;

/// Module path (as `a::b::c`) and struct name.
type Key = (String, String);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let check = args.len() == 5 && args[4] == "--check";
    if args.len() != 4 && !check {
        eprintln!("usage: {} <k8s-pb/src> <k8s-openapi/src/v1_NN> <out.rs> [--check]", args[0]);
        std::process::exit(2);
    }
    let (pb_root, openapi_root, out) = (PathBuf::from(&args[1]), PathBuf::from(&args[2]), PathBuf::from(&args[3]));

    let mut messages: BTreeMap<Key, Message> = BTreeMap::new();
    let mut kinds: Vec<(String, String, Key)> = Vec::new();
    for file in walk(&pb_root) {
        if file.file_name().and_then(|n| n.to_str()) != Some("mod.rs") {
            continue;
        }
        let rel = file.parent().unwrap().strip_prefix(&pb_root).unwrap();
        let module: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        if module.is_empty() || module.contains(&"testapigroup".to_owned()) || module[0] == "metrics" {
            continue;
        }
        parse_pb(&std::fs::read_to_string(&file).unwrap(), &module, &mut messages, &mut kinds);
    }

    let (json_names, openapi_kinds) = parse_openapi(&openapi_root);
    // k8s-openapi names kinds k8s-pb does not (subresources such as autoscaling/v1 Scale).
    for (module, norm_name, api_version, kind) in openapi_kinds {
        if let Some(key) = messages.keys().find(|k| k.0 == module && norm(&k.1) == norm_name) {
            kinds.push((api_version, kind, key.clone()));
        }
    }

    // Roots: the kinds, their lists, and what the protocol itself sends.
    let meta = "apimachinery::pkg::apis::meta::v1".to_owned();
    let mut roots: Vec<Key> = Vec::new();
    let mut kind_table: Vec<(String, String, Key)> = Vec::new();
    for (api_version, kind, key) in &kinds {
        roots.push(key.clone());
        kind_table.push((api_version.clone(), kind.clone(), key.clone()));
        let list = (key.0.clone(), format!("{}List", key.1));
        if messages.contains_key(&list) {
            roots.push(list.clone());
            kind_table.push((api_version.clone(), format!("{kind}List"), list));
        }
    }
    for (av, name) in [
        ("v1", "Status"),
        ("meta.k8s.io/v1", "PartialObjectMetadata"),
        ("meta.k8s.io/v1", "PartialObjectMetadataList"),
        ("v1", "WatchEvent"),
        ("v1", "List"),
    ] {
        let key = (meta.clone(), name.to_owned());
        assert!(messages.contains_key(&key), "{name} missing from k8s-pb");
        roots.push(key.clone());
        kind_table.push((av.to_owned(), name.to_owned(), key));
    }
    let mut reachable: BTreeSet<Key> = BTreeSet::new();
    let mut stack = roots;
    while let Some(k) = stack.pop() {
        if !reachable.insert(k.clone()) {
            continue;
        }
        let m = messages.get(&k).unwrap_or_else(|| panic!("unknown message {k:?}"));
        for f in &m.fields {
            if let Ty::Message(path) = &f.ty {
                stack.push(split(path));
            }
        }
    }
    kind_table.sort();
    kind_table.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);

    let mut src = String::new();
    src.push_str(
        "// @generated by kube-proto/protobuf-gen from k8s-pb 0.9.0 (field numbers and types) and\n\
         // k8s-openapi 0.29.0, v1_36 (JSON names). Do not edit; regenerate (see protobuf-gen/src/main.rs).\n\
         //! The protobuf descriptors of the messages reachable from the built-in kinds.\n\n\
         use super::schema_types::{Field, Message, Rep, Special, Ty};\n\n",
    );
    let mut unmatched = 0;
    let mut json_of: BTreeMap<(Key, u32), String> = BTreeMap::new();
    // A message k8s-openapi has no struct of, inlined into one it has (core/v1 VolumeSource into
    // Volume): its fields take their JSON names from the parent (`downwardAPI`, not camel case).
    let mut inlined_names: BTreeMap<Key, Vec<String>> = BTreeMap::new();
    for _ in 0..MAX_INLINE_DEPTH {
        for key in &reachable {
            let own = json_names.get(&(key.0.clone(), norm(&key.1)));
            let Some(ns) = own.or_else(|| inlined_names.get(key)).cloned() else { continue };
            for f in &messages[key].fields {
                let Ty::Message(p) = &f.ty else { continue };
                let child = split(p);
                let found = ns.iter().any(|n| norm(n) == norm(&f.rust_name));
                if !found
                    && !json_names.contains_key(&(child.0.clone(), norm(&child.1)))
                    && overlaps(&messages, &child, &ns)
                {
                    inlined_names.entry(child).or_default().extend(ns.iter().cloned());
                }
            }
        }
    }
    for key in &reachable {
        let m = &messages[key];
        let names = json_names.get(&(key.0.clone(), norm(&key.1))).or_else(|| inlined_names.get(key));
        let special = special(key);
        let mut fields = m.fields.clone();
        fields.sort_by_key(|f| f.number);
        writeln!(src, "pub(crate) static {}: Message = Message {{", static_name(key)).unwrap();
        writeln!(src, "    name: \"{}\",", proto_name(key)).unwrap();
        writeln!(src, "    special: Special::{special},").unwrap();
        writeln!(src, "    fields: &[").unwrap();
        for f in &fields {
            let found = names.and_then(|ns| ns.iter().find(|n| norm(n) == norm(&f.rust_name))).cloned();
            // A Go struct embedded with `json:",inline"`: its own message on the wire, its fields
            // at the parent's level in JSON.
            let inline = match (&found, names, &f.ty) {
                (None, Some(ns), Ty::Message(p)) => overlaps(&messages, &split(p), ns),
                _ => false,
            };
            let json = found.or_else(|| inline.then(String::new)).unwrap_or_else(|| {
                if names.is_some() && special == "None" {
                    unmatched += 1;
                    eprintln!("no JSON name for {}.{}", proto_name(key), f.rust_name);
                }
                camel(&f.rust_name)
            });
            json_of.insert((key.clone(), f.number), json.clone());
            let ty = match &f.ty {
                Ty::Scalar(s) => format!("Ty::{s}"),
                Ty::Message(p) => format!("Ty::Message(&{})", static_name(&split(p))),
            };
            let rep = match f.rep {
                _ if inline => "Rep::Inline",
                "single" => "Rep::Single",
                "repeated" => "Rep::Repeated",
                _ => "Rep::Map",
            };
            writeln!(src, "        Field {{ number: {}, name: {json:?}, ty: {ty}, rep: {rep} }},", f.number).unwrap();
        }
        writeln!(src, "    ],\n}};").unwrap();
    }
    writeln!(src, "\n/// `(apiVersion, kind)` of each kind and list, sorted, to its message.").unwrap();
    writeln!(src, "pub(crate) static KINDS: &[(&str, &str, &Message)] = &[").unwrap();
    for (av, kind, key) in &kind_table {
        writeln!(src, "    ({av:?}, {kind:?}, &{}),", static_name(key)).unwrap();
    }
    writeln!(src, "];").unwrap();
    let mut stale = emit(&out, &src, check);
    eprintln!("{} messages, {} kinds, {unmatched} fields without a JSON name", reachable.len(), kind_table.len());

    // The direct decoders, for every version of k8s-openapi next to the one named.
    let mut versions = Vec::new();
    let versions_dir = openapi_root.parent().unwrap();
    let mut fallbacks = 0;
    for dir in std::fs::read_dir(versions_dir).unwrap().map(|e| e.unwrap().path()) {
        let Some(minor) = dir.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_prefix("v1_")) else {
            continue;
        };
        let minor: u32 = minor.parse().unwrap();
        let structs = direct::parse_structs(&dir);
        let mut generator = direct::Gen::new(&messages, &structs, &reachable, &json_of);
        versions.push((minor, generator.items()));
        fallbacks += generator.fallbacks;
    }
    versions.sort_by_key(|(v, _)| *v);
    let direct_out = out.with_file_name("direct_gen.rs");
    stale |= emit(&direct_out, &direct::file(&versions), check);
    eprintln!("{}: {} fields handed to the serde path (all versions)", direct_out.display(), fallbacks);
    if stale {
        std::process::exit(1);
    }
}

/// Writes `text` to `path`, or with `check` only compares: whether the file was stale.
fn emit(path: &Path, text: &str, check: bool) -> bool {
    if !check {
        std::fs::write(path, text).unwrap();
        return false;
    }
    let stale = std::fs::read_to_string(path).ok().as_deref() != Some(text);
    if stale {
        eprintln!("{} is not what the generator writes: regenerate it", path.display());
    }
    stale
}

/// Whether a message's fields (or those of messages inlined in it) are among `names`.
fn overlaps(messages: &BTreeMap<Key, Message>, key: &Key, names: &[String]) -> bool {
    overlaps_within(messages, key, names, 3)
}

fn overlaps_within(messages: &BTreeMap<Key, Message>, key: &Key, names: &[String], depth: u32) -> bool {
    depth > 0
        && messages[key].fields.iter().any(|f| {
            names.iter().any(|n| norm(n) == norm(&f.rust_name))
                || matches!(&f.ty, Ty::Message(p) if f.rep == "single" && overlaps_within(messages, &split(p), names, depth - 1))
        })
}

fn split(path: &str) -> Key {
    let (m, n) = path.rsplit_once("::").unwrap();
    (m.to_owned(), n.to_owned())
}

fn proto_name(key: &Key) -> String {
    format!("k8s.io.{}.{}", key.0.replace("::", "."), key.1)
}

fn static_name(key: &Key) -> String {
    format!("{}_{}", key.0.replace("::", "_"), key.1).to_uppercase()
}

fn special(key: &Key) -> &'static str {
    match (key.0.as_str(), norm(&key.1).as_str()) {
        ("apimachinery::pkg::apis::meta::v1", "time") => "Time",
        ("apimachinery::pkg::apis::meta::v1", "microtime") => "MicroTime",
        ("apimachinery::pkg::apis::meta::v1", "fieldsv1") => "RawJson",
        ("apimachinery::pkg::api::resource", "quantity") => "Quantity",
        ("apimachinery::pkg::util::intstr", "intorstring") => "IntOrString",
        ("apimachinery::pkg::runtime", "rawextension") => "RawJson",
        (m, "json") if m.starts_with("apiextensions_apiserver") => "RawJson",
        (m, "jsonschemapropsorarray") if m.starts_with("apiextensions_apiserver") => "SchemaOrArray",
        (m, "jsonschemapropsorbool") if m.starts_with("apiextensions_apiserver") => "SchemaOrBool",
        (m, "jsonschemapropsorstringarray") if m.starts_with("apiextensions_apiserver") => "SchemaOrStringArray",
        (_, "extravalue") => "Items",
        _ => "None",
    }
}

/// Lower case, letters and digits only: how prost's and JSON's spellings of a name are compared.
fn norm(s: &str) -> String {
    s.trim_start_matches("r#").chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

fn camel(snake: &str) -> String {
    let mut out = String::new();
    let mut up = false;
    for c in snake.trim_start_matches("r#").chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.push(c.to_ascii_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn parse_pb(
    text: &str,
    module: &[String],
    messages: &mut BTreeMap<Key, Message>,
    kinds: &mut Vec<(String, String, Key)>,
) {
    let modpath = module.join("::");
    let mut current: Option<String> = None;
    let mut attr: Option<String> = None;
    // A field declaration that rustfmt wrapped over several lines, while it is being read.
    let mut pending = String::new();
    let mut resource: Option<(String, Option<String>, Option<String>)> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = line.strip_prefix("pub struct ") {
            let empty = rest.ends_with("{}");
            let name = rest.trim_end_matches("{}").trim_end_matches(" {").trim().to_owned();
            messages.insert((modpath.clone(), name.clone()), Message::default());
            current = if empty { None } else { Some(name) };
            continue;
        }
        if line == "}" {
            current = None;
            if let Some((name, Some(av), Some(kind))) = resource.take() {
                kinds.push((av, kind, (modpath.clone(), name)));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("impl crate::Resource for ") {
            resource = Some((rest.trim_end_matches(" {").trim().to_owned(), None, None));
            continue;
        }
        if let Some((_, av, kind)) = resource.as_mut() {
            if let Some(v) = t.strip_prefix("const API_VERSION: &'static str = ") {
                *av = Some(v.trim_end_matches(';').trim_matches('"').to_owned());
            } else if let Some(v) = t.strip_prefix("const KIND: &'static str = ") {
                *kind = Some(v.trim_end_matches(';').trim_matches('"').to_owned());
            }
            continue;
        }
        let Some(msg) = current.as_ref() else { continue };
        if let Some(a) = t.strip_prefix("#[prost(") {
            attr = Some(a.trim_end_matches(")]").to_owned());
            continue;
        }
        if attr.is_some() && (t.starts_with("pub ") || !pending.is_empty()) {
            if !pending.is_empty() {
                pending.push(' ');
            }
            pending.push_str(t);
            let balanced = pending.matches('<').count() == pending.matches('>').count();
            if !(balanced && pending.ends_with(',')) {
                continue;
            }
        }
        if let (true, Some(a)) = (!pending.is_empty(), attr.clone()) {
            attr = None;
            let decl = std::mem::take(&mut pending);
            let decl = decl.strip_prefix("pub ").unwrap();
            let (name, rust_ty) = decl.split_once(": ").unwrap_or_else(|| panic!("{decl} / {a}"));
            let rust_ty = rust_ty.replace(' ', "").replace(",>", ">");
            let rust_ty = rust_ty.replace("String,", "String, ");
            let rust_ty = rust_ty.trim_end_matches(',');
            let number: u32 = a.split("tag = \"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
            let first = a.split(',').next().unwrap().trim();
            let (ty, rep) = if let Some(map) = a.strip_prefix("btree_map = \"") {
                let value = map.split('"').next().unwrap().split(", ").nth(1).unwrap();
                (field_ty(value, rust_ty, &modpath), "map")
            } else {
                let rep = if a.contains("repeated") { "repeated" } else { "single" };
                (field_ty(first, rust_ty, &modpath), rep)
            };
            messages.get_mut(&(modpath.clone(), msg.clone())).unwrap().fields.push(Field {
                number,
                rust_name: name.to_owned(),
                ty,
                rep,
            });
        }
    }
}

fn field_ty(proto: &str, rust_ty: &str, modpath: &str) -> Ty {
    match proto {
        "string" => Ty::Scalar("String"),
        "bytes = \"vec\"" | "bytes" => Ty::Scalar("Bytes"),
        "bool" => Ty::Scalar("Bool"),
        "int32" => Ty::Scalar("Int32"),
        "int64" => Ty::Scalar("Int64"),
        "double" => Ty::Scalar("Double"),
        "message" => Ty::Message(resolve(rust_ty, modpath)),
        other => panic!("unsupported prost type {other} ({rust_ty})"),
    }
}

/// The message a Rust field type names, as `module::path::Struct`.
fn resolve(rust_ty: &str, modpath: &str) -> String {
    let mut t = rust_ty.trim();
    for prefix in [
        "::core::option::Option<",
        "::prost::alloc::vec::Vec<",
        "::prost::alloc::boxed::Box<",
        "::prost::alloc::collections::BTreeMap<::prost::alloc::string::String, ",
    ] {
        if let Some(rest) = t.strip_prefix(prefix) {
            t = rest;
        }
        if let Some(rest) = t.strip_prefix("::prost::alloc::boxed::Box<") {
            t = rest;
        }
    }
    let t = t.trim_end_matches('>');
    let mut module: Vec<&str> = modpath.split("::").collect();
    let mut rest = t;
    while let Some(r) = rest.strip_prefix("super::") {
        module.pop();
        rest = r;
    }
    if module.is_empty() { rest.to_owned() } else { format!("{}::{rest}", module.join("::")) }
}

/// JSON names of each k8s-openapi struct: (module path, normalized struct name) -> names.
#[allow(clippy::type_complexity)]
fn parse_openapi(root: &Path) -> (BTreeMap<(String, String), Vec<String>>, Vec<(String, String, String, String)>) {
    let mut out = BTreeMap::new();
    let mut kinds = Vec::new();
    for (module, text) in rust_sources(root) {
        let Some(name) = text
            .lines()
            .find_map(|l| l.strip_prefix("impl<'de> crate::serde::Deserialize<'de> for "))
            .map(|r| r.trim_end_matches(" {").trim().to_owned())
        else {
            continue;
        };
        let names: Vec<String> = field_keys(&text).into_iter().map(|(lit, _)| lit).collect();
        if let Some((av, kind)) = resource_consts(&text) {
            kinds.push((module.join("::"), norm(&name), av, kind));
        }
        out.insert((module.join("::"), norm(&name)), names);
    }
    (out, kinds)
}
