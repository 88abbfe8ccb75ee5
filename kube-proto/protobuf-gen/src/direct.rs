//! Writes `kube-proto/src/protobuf/direct_gen.rs`: one decoding function per message that has a
//! `k8s-openapi` struct, reading the protobuf bytes straight into that struct (a `match` on the
//! field number per field, no serde in between), and the table of kinds they serve.
//!
//! What the table-driven serde path does is what these functions do: an empty string in a
//! singular field is absent, a zero `Time` is `None`, a repeated field or map is one run of
//! consecutive entries (a later run of the same field replaces it), inlined Go structs fill their
//! parent's fields. Fields of shapes that are rare or hold JSON (`FieldsV1`, `RawExtension`,
//! bytes, packed numbers...) are handed to the serde path for that field alone, so both always
//! agree.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::openapi_source::{StructBlock, field_keys, gated, resource_consts, rust_sources, struct_block};
use crate::{Key, Message, Ty, norm, special, split, static_name};

/// A field of a `k8s-openapi` struct.
#[derive(Debug, Clone)]
pub struct OaField {
    /// The Rust name, as written (`r#type`).
    pub rust: String,
    /// The Rust type, with `crate::` as written.
    pub ty: String,
}

/// A `k8s-openapi` struct: its name, fields by JSON name, whether it derives `Default`, and its
/// `(apiVersion, kind)` when it is a resource.
#[derive(Debug, Clone, Default)]
pub struct OaStruct {
    pub name: String,
    pub by_json: BTreeMap<String, OaField>,
    pub default: bool,
    pub kind: Option<(String, String)>,
}

/// The structs of `k8s-openapi`, by (module path, normalized name).
pub fn parse_structs(root: &Path) -> BTreeMap<(String, String), OaStruct> {
    let mut out = BTreeMap::new();
    for (module, text) in rust_sources(root) {
        let Some(StructBlock { name, default, fields: by_rust }) = struct_block(&text) else { continue };
        let mut by_json = BTreeMap::new();
        for (lit, key) in field_keys(&text) {
            let found = by_rust.iter().find(|(n, _)| n.trim_start_matches("r#") == key);
            if let Some((n, ty)) = found {
                by_json.insert(lit, OaField { rust: n.clone(), ty: ty.clone() });
            }
        }
        let kind = resource_consts(&text);
        out.insert((module.join("::"), norm(&name)), OaStruct { name, by_json, default, kind });
    }
    out
}

/// A Rust field type, as far as the generated code reads it natively.
#[derive(Debug, Clone, PartialEq)]
enum R {
    Opt(Box<R>),
    Vec(Box<R>),
    Map(Box<R>),
    Boxed(Box<R>),
    Str,
    Bool,
    I32,
    I64,
    F64,
    Other(String),
    /// A struct of `k8s-openapi` (module path, name).
    Path(String, String),
}

fn rty(t: &str) -> R {
    let inner = |p: &str| t.strip_prefix(p).and_then(|r| r.strip_suffix('>'));
    if let Some(i) = inner("Option<") {
        return R::Opt(Box::new(rty(i)));
    }
    if let Some(i) = inner("std::vec::Vec<") {
        return R::Vec(Box::new(rty(i)));
    }
    if let Some(i) = inner("std::boxed::Box<") {
        return R::Boxed(Box::new(rty(i)));
    }
    if let Some(i) = inner("std::collections::BTreeMap<std::string::String, ") {
        return R::Map(Box::new(rty(i)));
    }
    match t {
        "std::string::String" => R::Str,
        "bool" => R::Bool,
        "i32" => R::I32,
        "i64" => R::I64,
        "f64" => R::F64,
        _ => match t.strip_prefix("crate::").and_then(|p| p.rsplit_once("::")) {
            Some((m, n)) => R::Path(m.to_owned(), n.to_owned()),
            None => R::Other(t.to_owned()),
        },
    }
}

/// The Rust spelling of an openapi type in the generated file.
fn spell(t: &str) -> String {
    t.replace("crate::", "o::")
}

pub struct Gen<'a> {
    pub messages: &'a BTreeMap<Key, Message>,
    pub structs: &'a BTreeMap<(String, String), OaStruct>,
    pub reachable: &'a std::collections::BTreeSet<Key>,
    /// The JSON name the descriptor table gives each field (empty: inlined).
    pub json: &'a BTreeMap<(Key, u32), String>,
    /// Messages with a native function: key -> Rust path of the struct.
    native: BTreeMap<Key, String>,
    pub fallbacks: usize,
}

impl<'a> Gen<'a> {
    pub fn new(
        messages: &'a BTreeMap<Key, Message>,
        structs: &'a BTreeMap<(String, String), OaStruct>,
        reachable: &'a std::collections::BTreeSet<Key>,
        json: &'a BTreeMap<(Key, u32), String>,
    ) -> Self {
        let mut native = BTreeMap::new();
        for key in reachable {
            if special(key) != "None" {
                continue;
            }
            if let Some(s) = structs.get(&(key.0.clone(), norm(&key.1)))
                && s.default
            {
                native.insert(key.clone(), format!("o::{}::{}", key.0, s.name));
            }
        }
        Gen { messages, structs, reachable, json, native, fallbacks: 0 }
    }

    fn fn_name(key: &Key) -> String {
        static_name(key).to_lowercase()
    }

    /// Whether the Rust type `path` is the struct of message `m`.
    fn is_struct_of(&self, m: &Key, module: &str, name: &str) -> bool {
        m.0 == module && norm(&m.1) == norm(name)
    }

    /// The expression decoding one message value `v` of message `m` into Rust type `r`, if native.
    fn value_expr(&self, m: &Key, r: &R, v: &str) -> Option<String> {
        let sp = special(m);
        match (sp, r) {
            ("Quantity", R::Path(_, n)) if n == "Quantity" => Some(format!("quantity({v})?")),
            ("IntOrString", R::Path(_, n)) if n == "IntOrString" => Some(format!("int_or_string({v})?")),
            ("None", R::Path(module, n)) if self.native.contains_key(m) && self.is_struct_of(m, module, n) => {
                Some(format!("message({v}, {})?", Self::fn_name(m)))
            }
            ("None", R::Boxed(b)) => self.value_expr(m, b, v).map(|e| format!("Box::new({e})")),
            _ => None,
        }
    }

    /// The function filling the struct of message `m` in place, when `r` is that struct (or a
    /// `Box` of it) and it has one.
    fn native_fn(&self, m: &Key, r: &R) -> Option<String> {
        match r {
            R::Path(module, n)
                if special(m) == "None" && self.native.contains_key(m) && self.is_struct_of(m, module, n) =>
            {
                Some(Self::fn_name(m))
            }
            R::Boxed(b) => self.native_fn(m, b),
            _ => None,
        }
    }

    /// The statements of a field loop filling `out` (a `&mut` of the struct `target`) from the
    /// bytes `b` of message `key`.
    fn body(
        &mut self,
        key: &Key,
        target: &OaStruct,
        target_path: &str,
        parent_fn: &str,
        out: &mut String,
        extra: &mut Vec<String>,
    ) {
        let msg = &self.messages[key];
        let mut fields = msg.fields.clone();
        fields.sort_by_key(|f| f.number);
        let mut arms = String::new();
        let (mut uses_last, mut uses_start) = (false, false);
        for f in &fields {
            let n = f.number;
            let ty_const = match &f.ty {
                Ty::Scalar(s) => format!("Ty::{s}"),
                Ty::Message(p) => format!("Ty::Message(&schema::{})", static_name(&split(p))),
            };
            // The JSON name the table gave this field (the schema generator's choice).
            let json = self.json[&(key.clone(), f.number)].clone();
            if json.is_empty() {
                // Inlined: its fields are the parent's.
                let Ty::Message(p) = &f.ty else { panic!("inline scalar") };
                let child = split(p);
                let fname = format!("{parent_fn}_inline_{}", Self::fn_name(&child));
                if !extra.iter().any(|e| e.contains(&format!("fn {fname}("))) {
                    let mut inner = String::new();
                    self.body(&child, target, target_path, parent_fn, &mut inner, extra);
                    extra.push(format!(
                        "fn {fname}(b: &[u8], out: &mut {target_path}) -> Result<(), ProtobufError> {{\n{inner}    Ok(())\n}}\n"
                    ));
                }
                writeln!(arms, "            {n} => {fname}(bytes(v)?, out)?,").unwrap();
                continue;
            }
            let Some(of) = target.by_json.get(&json) else {
                // A field the struct does not have: read (and checked) as serde would, then dropped.
                match f.rep {
                    "single" => {
                        let skip = matches!(&f.ty, Ty::Scalar("String" | "Bytes"));
                        if skip {
                            writeln!(arms, "            {n} => if !is_empty(v) {{ serde_value::<serde::de::IgnoredAny>({ty_const}, v)?; }},").unwrap();
                        } else {
                            writeln!(
                                arms,
                                "            {n} => {{ serde_value::<serde::de::IgnoredAny>({ty_const}, v)?; }}"
                            )
                            .unwrap();
                        }
                    }
                    _ => {
                        uses_start = true;
                        let table = format!("schema::{}", static_name(key));
                        writeln!(arms, "            {n} => {{ serde_run::<serde::de::IgnoredAny>(&{table}, {n}, run(&mut r, start, {n})?)?; }}").unwrap();
                    }
                }
                self.fallbacks += 1;
                continue;
            };
            let field = &of.rust;
            let r = rty(&of.ty);
            let native: Option<String> = match (f.rep, &f.ty, &r) {
                ("single", Ty::Scalar("String"), R::Opt(b)) if **b == R::Str => {
                    Some(format!("if let Some(s) = string(v)? {{ out.{field} = Some(s) }}"))
                }
                ("single", Ty::Scalar("String"), R::Str) => {
                    Some(format!("if let Some(s) = string(v)? {{ out.{field} = s }}"))
                }
                ("single", Ty::Scalar("Bool"), R::Opt(b)) if **b == R::Bool => {
                    Some(format!("out.{field} = Some(boolean(v)?)"))
                }
                ("single", Ty::Scalar("Bool"), R::Bool) => Some(format!("out.{field} = boolean(v)?")),
                ("single", Ty::Scalar("Int32"), R::Opt(b)) if **b == R::I32 => {
                    Some(format!("out.{field} = Some(int32(v)?)"))
                }
                ("single", Ty::Scalar("Int32"), R::I32) => Some(format!("out.{field} = int32(v)?")),
                ("single", Ty::Scalar("Int32"), R::Opt(b)) if **b == R::I64 => {
                    Some(format!("out.{field} = Some(i64::from(int32(v)?))"))
                }
                ("single", Ty::Scalar("Int32"), R::I64) => Some(format!("out.{field} = i64::from(int32(v)?)")),
                ("single", Ty::Scalar("Int64"), R::Opt(b)) if **b == R::I64 => {
                    Some(format!("out.{field} = Some(int64(v)?)"))
                }
                ("single", Ty::Scalar("Int64"), R::I64) => Some(format!("out.{field} = int64(v)?")),
                ("single", Ty::Scalar("Double"), R::Opt(b)) if **b == R::F64 => {
                    Some(format!("out.{field} = Some(double(v)?)"))
                }
                ("single", Ty::Scalar("Double"), R::F64) => Some(format!("out.{field} = double(v)?")),
                ("single", Ty::Message(p), R::Opt(b)) => {
                    let m = split(p);
                    match special(&m) {
                        "Time" if matches!(&**b, R::Path(_, x) if x == "Time") => {
                            Some(format!("out.{field} = time(v)?"))
                        }
                        "MicroTime" if matches!(&**b, R::Path(_, x) if x == "MicroTime") => {
                            Some(format!("out.{field} = micro_time(v)?"))
                        }
                        "Time" | "MicroTime" => None,
                        // A later occurrence replaces an earlier one (as serde's duplicate key).
                        _ => match self.native_fn(&m, b) {
                            Some(f) => Some(format!("{f}(bytes(v)?, out.{field}.insert(Default::default()))?")),
                            None => self.value_expr(&m, b, "v").map(|e| format!("out.{field} = Some({e})")),
                        },
                    }
                }
                ("single", Ty::Message(p), r) => match self.native_fn(&split(p), r) {
                    Some(f) => {
                        Some(format!("{{ out.{field} = Default::default(); {f}(bytes(v)?, &mut out.{field})? }}"))
                    }
                    None => self.value_expr(&split(p), r, "v").map(|e| format!("out.{field} = {e}")),
                },
                ("repeated", ty, _) => {
                    let optional = matches!(r, R::Opt(_));
                    let b = match &r {
                        R::Opt(b) => b.as_ref(),
                        other => other,
                    };
                    let elem = match b {
                        R::Vec(e) => Some(e.as_ref()),
                        _ => None,
                    };
                    // The list is sized for its whole run when the run starts; message
                    // elements are filled where they lie in it.
                    let list = if optional { "list" } else { "list_required" };
                    let list = format!("{list}(&mut out.{field}, last != {n}, &r, {n})");
                    let stmt = match (ty, elem) {
                        (Ty::Scalar("String"), Some(R::Str)) => Some(format!("{list}.push(string_any(v)?)")),
                        (Ty::Message(p), Some(e)) => {
                            let m = split(p);
                            if matches!(special(&m), "Time" | "MicroTime") {
                                None
                            } else if let Some(f) = self.native_fn(&m, e) {
                                Some(format!("{f}(bytes(v)?, push_default({list}))?"))
                            } else {
                                self.value_expr(&m, e, "v").map(|e| format!("{list}.push({e})"))
                            }
                        }
                        _ => None,
                    };
                    stmt.inspect(|_| uses_last = true)
                }
                ("map", ty, _) => {
                    let optional = matches!(r, R::Opt(_));
                    let b = match &r {
                        R::Opt(b) => b.as_ref(),
                        other => other,
                    };
                    let elem = match b {
                        R::Map(e) => Some(e.as_ref()),
                        _ => None,
                    };
                    let expr = match (ty, elem) {
                        (Ty::Scalar("String"), Some(R::Str)) => Some("string_any(val)?".to_owned()),
                        (Ty::Message(p), Some(e)) => {
                            let m = split(p);
                            if matches!(special(&m), "Time" | "MicroTime") {
                                None
                            } else {
                                self.value_expr(&m, e, "val")
                            }
                        }
                        _ => None,
                    };
                    expr.map(|e| {
                        uses_last = true;
                        let map = if optional { "map" } else { "map_required" };
                        format!("{{ let (k, val) = entry(v)?; {map}(&mut out.{field}, last != {n}).insert(k, {e}); }}")
                    })
                }
                _ => None,
            };
            match native {
                Some(stmt) => writeln!(arms, "            {n} => {stmt},").unwrap(),
                None => {
                    self.fallbacks += 1;
                    let t = spell(&of.ty);
                    match f.rep {
                        "single" => {
                            let skip = matches!(&f.ty, Ty::Scalar("String" | "Bytes"));
                            if skip {
                                writeln!(arms, "            {n} => if !is_empty(v) {{ out.{field} = serde_value::<{t}>({ty_const}, v)? }},")
                                    .unwrap();
                            } else {
                                writeln!(arms, "            {n} => out.{field} = serde_value::<{t}>({ty_const}, v)?,")
                                    .unwrap();
                            }
                        }
                        _ => {
                            uses_start = true;
                            let table = format!("schema::{}", static_name(key));
                            writeln!(
                                arms,
                                "            {n} => out.{field} = serde_run::<{t}>(&{table}, {n}, run(&mut r, start, {n})?)?,"
                            )
                            .unwrap();
                        }
                    }
                }
            }
        }
        let _ = self.reachable;
        let _ = self.structs;
        writeln!(out, "    let mut r = Reader::new(b);").unwrap();
        if uses_last {
            writeln!(out, "    let mut last = 0;").unwrap();
        }
        let v = if arms.contains("(v") || arms.contains(" v)") { "v" } else { "_" };
        if uses_start {
            writeln!(out, "    loop {{\n        let start = r.pos;").unwrap();
            writeln!(out, "        let Some((n, {v})) = r.field()? else {{ break }};").unwrap();
        } else {
            writeln!(out, "    while let Some((n, {v})) = r.field()? {{").unwrap();
        }
        if arms.is_empty() {
            writeln!(out, "        let _ = n;").unwrap();
        } else {
            writeln!(out, "        match n {{\n{arms}            _ => {{}}\n        }}").unwrap();
        }
        if uses_last {
            writeln!(out, "        last = n;").unwrap();
        }
        writeln!(out, "    }}").unwrap();
    }

    /// This version's functions (name, text) and its kind table's rows.
    pub fn items(&mut self) -> VersionItems {
        let mut fns = Vec::new();
        let mut extra = Vec::new();
        let native: Vec<(Key, String)> = self.native.iter().map(|(k, p)| (k.clone(), p.clone())).collect();
        let mut kinds: Vec<(String, String, String, String)> = Vec::new();
        for (key, path) in &native {
            let target = self.structs[&(key.0.clone(), norm(&key.1))].clone();
            let mut body = String::new();
            let name = Self::fn_name(key);
            self.body(key, &target, path, &name, &mut body, &mut extra);
            let mut src = String::new();
            writeln!(src, "pub(super) fn {name}(b: &[u8], out: &mut {path}) -> Result<(), ProtobufError> {{").unwrap();
            src.push_str(&body);
            writeln!(src, "    Ok(())\n}}").unwrap();
            fns.push((name.clone(), src));
            if let Some((av, kind)) = &target.kind {
                kinds.push((av.clone(), kind.clone(), path.clone(), name));
            }
        }
        for e in extra {
            let name = e.trim_start_matches("fn ").split('(').next().unwrap().to_owned();
            fns.push((name, e.trim_end().to_owned()));
        }
        kinds.sort();
        let mut table = String::new();
        for (av, kind, path, name) in &kinds {
            writeln!(table, "    ({av:?}, {kind:?}, |b, slot| fill::<{path}>(b, slot, {name})),").unwrap();
        }
        (fns, table)
    }
}

/// One version's items: its functions (name, text) and its `KINDS` table's rows.
pub type VersionItems = (Vec<(String, String)>, String);

/// The whole file from each version's items: a function whose text is the same in every version
/// is written once; one that differs (a field added, a type removed) once per run of versions it
/// holds in, inside `k8s_openapi`'s `k8s_if_ge_1_NN!`/`k8s_if_le_1_NN!`, so the file compiles
/// against whichever version the application picks.
pub fn file(versions: &[(u32, VersionItems)]) -> String {
    let mut src = String::new();
    let list: Vec<String> = versions.iter().map(|(v, _)| format!("v1_{v}")).collect();
    writeln!(
        src,
        "// @generated by kube-proto/protobuf-gen from k8s-pb 0.9.0 (field numbers and types) and\n\
         // k8s-openapi 0.29.0, {} (Rust fields). Do not edit; regenerate (see protobuf-gen/src/main.rs).\n\
         //! Protobuf messages decoded straight into their `k8s_openapi` structs: one function per\n\
         //! message, a `match` on the field number; `KINDS`, the kinds they serve.\n\n\
         // Which functions a kind reaches depends on the Kubernetes version k8s-openapi is built for.\n\
         #![allow(dead_code, clippy::single_match, clippy::collapsible_match)]\n\n\
         use k8s_openapi as o;\n\n\
         use super::direct::*;\n\
         use super::schema;\n\
         use super::schema_types::Ty;\n\
         use super::wire::Reader;\n\
         use super::ProtobufError;\n",
        list.join(", ")
    )
    .unwrap();
    let all: Vec<u32> = versions.iter().map(|(v, _)| *v).collect();
    // name -> text -> versions
    let mut by_name: BTreeMap<String, Vec<(String, Vec<u32>)>> = BTreeMap::new();
    for (v, (fns, _)) in versions {
        for (name, text) in fns {
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
            src.push_str(&gated(text, vs, &all));
            src.push('\n');
        }
    }
    for (v, (_, table)) in versions {
        let text = format!(
            "/// `(apiVersion, kind)` of each kind, sorted, to its decoder.\n\
             pub(super) static KINDS: &[(&str, &str, Direct)] = &[\n{table}];"
        );
        src.push('\n');
        src.push_str(&gated(&text, &[*v], &all));
        src.push('\n');
    }
    src
}
