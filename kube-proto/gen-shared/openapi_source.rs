//! Reading `k8s-openapi`'s generated sources, for the code generators (`json-gen`,
//! `protobuf-gen`) that include this file as a module (`#[path]`): the walk over a version's
//! folders, a file's `pub struct … {}` block, the JSON names its `Deserialize` matches, its
//! `Resource` constants, and the gating of generated text to some Kubernetes versions.
//!
//! k8s-openapi writes one struct per file, in one fixed layout; these read that layout and
//! nothing more general.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every file below `dir`, folders depth first, each folder's entries in name order.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Every `.rs` file below `root`: its module path (the folders from `root`) and its text.
pub fn rust_sources(root: &Path) -> Vec<(Vec<String>, String)> {
    walk(root)
        .into_iter()
        .filter(|file| file.extension().and_then(|e| e.to_str()) == Some("rs"))
        .map(|file| {
            let rel = file.parent().unwrap().strip_prefix(root).unwrap();
            let module = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            (module, std::fs::read_to_string(&file).unwrap())
        })
        .collect()
}

/// A file's `pub struct Name {` block.
pub struct StructBlock {
    /// The struct's name.
    pub name: String,
    /// Whether it derives `Default` (a `#[derive(…Default…)]` within the three lines above it).
    pub default: bool,
    /// Rust field name, as written (`r#type`), to its Rust type, as written.
    pub fields: BTreeMap<String, String>,
}

/// The first non-generic `pub struct … {` block of `text`, if it has one.
pub fn struct_block(text: &str) -> Option<StructBlock> {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines.iter().position(|l| l.starts_with("pub struct ") && l.ends_with(" {"))?;
    let name = lines[at].trim_start_matches("pub struct ").trim_end_matches(" {").to_owned();
    if name.contains('<') {
        return None;
    }
    let default =
        at > 0 && lines[..at].iter().rev().take(3).any(|l| l.starts_with("#[derive(") && l.contains("Default"));
    let mut fields = BTreeMap::new();
    for l in &lines[at + 1..] {
        if *l == "}" {
            break;
        }
        if let Some(rest) = l.strip_prefix("    pub ") {
            let (n, ty) = rest.split_once(": ").unwrap();
            fields.insert(n.to_owned(), ty.trim_end_matches(',').to_owned());
        }
    }
    Some(StructBlock { name, default, fields })
}

/// The arms `"jsonName" => Field::Key_key,` of the file's `Deserialize`, in order: (JSON name,
/// key, which is the Rust field's name without `r#`).
pub fn field_keys(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let (lit, rest) = l.trim().strip_prefix('"')?.split_once("\" => Field::Key_")?;
            Some((lit.to_owned(), rest.trim_end_matches(',').to_owned()))
        })
        .collect()
}

/// The file's `Resource` constants `(API_VERSION, KIND)`, when it has both.
pub fn resource_consts(text: &str) -> Option<(String, String)> {
    let konst = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .map(|v| v.trim_end_matches(';').trim_matches('"').to_owned())
    };
    Some((konst("const API_VERSION: &'static str = ")?, konst("const KIND: &'static str = ")?))
}

/// `text` compiled only for the versions `vs` (of `all`, both ascending): wrapped in
/// k8s-openapi's `k8s_if_ge_1_N!`/`k8s_if_le_1_N!` for each contiguous run of versions.
pub fn gated(text: &str, vs: &[u32], all: &[u32]) -> String {
    if vs == all {
        return text.to_owned();
    }
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for &v in vs {
        match runs.last_mut() {
            Some((_, hi)) if all.iter().position(|a| a == hi).map(|i| all.get(i + 1)) == Some(Some(&v)) => *hi = v,
            _ => runs.push((v, v)),
        }
    }
    let mut out = String::new();
    for (lo, hi) in runs {
        let mut t = text.to_owned();
        if hi != *all.last().unwrap() {
            t = format!("k8s_openapi::k8s_if_le_1_{hi}! {{\n{t}\n}}");
        }
        if lo != all[0] {
            t = format!("k8s_openapi::k8s_if_ge_1_{lo}! {{\n{t}\n}}");
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&t);
    }
    out
}
