//! A JSON Schema (as schemars 1.x writes it: draft 2020-12, `$defs` and `$ref`) turned into the
//! structural OpenAPI v3 schema a CustomResourceDefinition needs.
//!
//! The API server accepts a CRD's schema only if it is *structural*: no `$ref`, a `type` on every
//! node (except where `x-kubernetes-int-or-string` or `x-kubernetes-preserve-unknown-fields`
//! stands for it), `nullable` instead of a `null` type, no `additionalProperties: false` beside
//! `properties`, no `uniqueItems: true`, no tuples. [`structural_schema`] rewrites the common
//! shapes into that form and says which node it could not rewrite.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
use serde_json::{Map, Value};

/// Why a JSON Schema could not be made structural. `path` is where in the schema, as
/// `.spec.items[*].name` (the root is `.`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// A type contains itself: a structural schema is a finite tree.
    #[error("{path}: the type {reference} contains itself; a structural schema cannot be recursive")]
    Recursive {
        /// Where.
        path: String,
        /// The `$ref` that led back to a type being expanded.
        reference: String,
    },
    /// A `$ref` that points nowhere in the schema.
    #[error("{path}: unresolved reference {reference}")]
    UnresolvedRef {
        /// Where.
        path: String,
        /// The reference.
        reference: String,
    },
    /// A node that may hold values of several types (other than an integer or a string).
    #[error("{path}: a value may be any of {types}; a structural schema has one type per field")]
    MixedTypes {
        /// Where.
        path: String,
        /// The types, comma-separated.
        types: String,
    },
    /// A node without a `type` that is neither int-or-string nor preserves unknown fields.
    #[error("{path}: no type")]
    MissingType {
        /// Where.
        path: String,
    },
    /// A JSON Schema feature the API server does not take in a CRD.
    #[error("{path}: {feature} is not allowed in a structural schema")]
    Unsupported {
        /// Where.
        path: String,
        /// The keyword, such as `prefixItems` (a tuple).
        feature: String,
    },
    /// The rewritten schema does not decode as `JSONSchemaProps`.
    #[error("the schema does not decode as JSONSchemaProps: {0}")]
    Decode(String),
}

/// Keywords that the API server does not know and that carry no meaning for it.
const DROPPED: &[&str] = &[
    "$schema",
    "$defs",
    "definitions",
    "$id",
    "$comment",
    "$anchor",
    "examples",
    "readOnly",
    "writeOnly",
    "deprecated",
    "unevaluatedProperties",
    "contentEncoding",
    "contentMediaType",
];
/// Keywords that describe a value without constraining it; a schema with only these (and
/// `x-kubernetes-` extensions) takes any value.
const ANNOTATIONS: &[&str] = &["description", "title", "default", "nullable", "example", "externalDocs"];
/// Extensions that say what a value is.
const STRUCTURE: &[&str] = &["x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields"];
/// Keywords that make a schema not structural, and that no rewrite here can remove.
const UNSUPPORTED: &[&str] = &[
    "prefixItems",
    "if",
    "then",
    "else",
    "dependentRequired",
    "dependentSchemas",
    "contains",
    "patternProperties",
    "propertyNames",
    "$dynamicRef",
];

/// Makes `root` (a JSON Schema whose `$ref`s point into itself, such as `#/$defs/Name`)
/// structural and decodes it as `JSONSchemaProps`.
pub fn structural_schema(root: &Value) -> Result<JSONSchemaProps, SchemaError> {
    let value = structural_value(root)?;
    serde_json::from_value(value).map_err(|e| SchemaError::Decode(e.to_string()))
}

/// [`structural_schema`], as JSON.
pub fn structural_value(root: &Value) -> Result<Value, SchemaError> {
    let mut rewriter = Rewriter { root, expanding: Vec::new() };
    let mut out = rewriter.rewrite(root, ".")?;
    check_types(&out, ".")?;
    // `nullable` at the root means nothing to the API server.
    out.remove("nullable");
    Ok(Value::Object(out))
}

struct Rewriter<'a> {
    root: &'a Value,
    /// The `$ref`s being expanded, to catch recursion.
    expanding: Vec<String>,
}

impl Rewriter<'_> {
    fn rewrite(&mut self, schema: &Value, path: &str) -> Result<Map<String, Value>, SchemaError> {
        let mut m = match schema {
            Value::Bool(true) => return Ok(preserve_unknown()),
            Value::Object(m) => m.clone(),
            Value::Bool(false) => {
                return Err(SchemaError::Unsupported { path: path.into(), feature: "the schema `false`".into() });
            }
            _ => {
                return Err(SchemaError::Unsupported {
                    path: path.into(),
                    feature: "a schema that is not an object".into(),
                });
            }
        };
        for key in DROPPED {
            m.remove(*key);
        }
        if let Some(key) = UNSUPPORTED.iter().find(|k| m.contains_key(**k)) {
            return Err(SchemaError::Unsupported { path: path.into(), feature: (*key).into() });
        }
        // A null default asks for nothing (and the API server refuses one on a field that is
        // not nullable).
        if m.get("default").is_some_and(Value::is_null) {
            m.remove("default");
        }
        // Only annotations (a description, say): any JSON value.
        if m.keys().all(|k| {
            ANNOTATIONS.contains(&k.as_str()) || (k.starts_with("x-kubernetes-") && !STRUCTURE.contains(&k.as_str()))
        }) {
            let mut any = preserve_unknown();
            any.append(&mut m);
            return Ok(any);
        }

        // A reference: the target, with the referring node's own keywords over it (a field's
        // description over its type's).
        if let Some(reference) = m.remove("$ref") {
            let reference = reference.as_str().unwrap_or_default().to_owned();
            let mut base = self.expand(&reference, path)?;
            let own = if m.keys().all(|k| ANNOTATIONS.contains(&k.as_str())) {
                m
            } else {
                self.rewrite(&Value::Object(m), path)?
            };
            overlay(&mut base, own, true);
            return Ok(base);
        }

        if let Some(Value::Array(parts)) = m.remove("allOf") {
            for (i, part) in parts.iter().enumerate() {
                let part = self.rewrite(part, &format!("{path}(allOf {i})"))?;
                overlay(&mut m, part, false);
            }
        }

        // `type: ["T", "null"]` is `type: T` and `nullable`.
        if let Some(Value::Array(types)) = m.get("type").cloned() {
            let mut names: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
            if names.contains(&"null") {
                names.retain(|t| *t != "null");
                m.insert("nullable".into(), Value::Bool(true));
            }
            match names.as_slice() {
                [one] => {
                    m.insert("type".into(), Value::String((*one).into()));
                }
                _ if is_int_or_string(&names) => {
                    m.remove("type");
                    m.insert("x-kubernetes-int-or-string".into(), Value::Bool(true));
                }
                _ => return Err(SchemaError::MixedTypes { path: path.into(), types: names.join(", ") }),
            }
        }

        for keyword in ["anyOf", "oneOf"] {
            if let Some(Value::Array(branches)) = m.remove(keyword) {
                self.one_of(&mut m, &branches, path)?;
            }
        }

        if let Some(c) = m.remove("const")
            && !m.contains_key("enum")
        {
            m.insert("enum".into(), Value::Array(vec![c]));
        }
        if let Some(Value::Array(values)) = m.get_mut("enum")
            && values.iter().any(Value::is_null)
        {
            values.retain(|v| !v.is_null());
            m.insert("nullable".into(), Value::Bool(true));
        }
        // An enum without a type: the type of its values, when they share one.
        if !m.contains_key("type")
            && let Some(Value::Array(values)) = m.get("enum")
            && let Some(t) = shared_type(values)
        {
            m.insert("type".into(), Value::String(t.into()));
        }
        if m.get("type").and_then(Value::as_str) == Some("null") {
            return Err(SchemaError::MixedTypes { path: path.into(), types: "null".into() });
        }

        if let Some(Value::Object(props)) = m.remove("properties") {
            let mut out = Map::new();
            for (name, sub) in props {
                let sub = self.rewrite(&sub, &child(path, &name))?;
                out.insert(name, Value::Object(sub));
            }
            m.insert("properties".into(), Value::Object(out));
        }
        if let Some(items) = m.get("items").cloned() {
            if items.is_array() {
                return Err(SchemaError::Unsupported {
                    path: path.into(),
                    feature: "items as a list (a tuple)".into(),
                });
            }
            let items = self.rewrite(&items, &format!("{}[*]", path.trim_end_matches('.')))?;
            m.insert("items".into(), Value::Object(items));
        }
        match m.remove("additionalProperties") {
            // Maps of arbitrary JSON keep what they are given.
            Some(Value::Bool(true)) => {
                m.insert("x-kubernetes-preserve-unknown-fields".into(), Value::Bool(true));
            }
            // Unknown fields are pruned by the server, which is what `false` asked for.
            Some(Value::Bool(false)) | None => {}
            Some(sub) => {
                let sub = self.rewrite(&sub, &format!("{}[*]", path.trim_end_matches('.')))?;
                m.insert("additionalProperties".into(), Value::Object(sub));
            }
        }
        if let Some(sub) = m.remove("not") {
            let sub = self.rewrite(&sub, path)?;
            m.insert("not".into(), Value::Object(sub));
        }
        // Sets: the API server refuses `uniqueItems: true`; a list of scalars can say
        // `x-kubernetes-list-type: set` instead.
        if m.remove("uniqueItems") == Some(Value::Bool(true)) && !m.contains_key("x-kubernetes-list-type") {
            let scalar = m
                .get("items")
                .and_then(|i| i.get("type"))
                .and_then(Value::as_str)
                .is_some_and(|t| matches!(t, "string" | "integer" | "number" | "boolean"));
            if scalar {
                m.insert("x-kubernetes-list-type".into(), Value::String("set".into()));
            }
        }
        Ok(m)
    }

    fn expand(&mut self, reference: &str, path: &str) -> Result<Map<String, Value>, SchemaError> {
        if self.expanding.iter().any(|r| r == reference) {
            return Err(SchemaError::Recursive { path: path.into(), reference: reference.into() });
        }
        let target = reference
            .strip_prefix('#')
            .and_then(|pointer| self.root.pointer(pointer))
            .ok_or_else(|| SchemaError::UnresolvedRef { path: path.into(), reference: reference.into() })?;
        self.expanding.push(reference.to_owned());
        let out = self.rewrite(target, path);
        self.expanding.pop();
        out
    }

    /// `anyOf`/`oneOf`: null branches make the node nullable; one branch left is the node; several
    /// are merged when they are all strings (an enum of values), all objects (the variants of an
    /// enum, their properties side by side), or an integer and a string.
    fn one_of(&mut self, m: &mut Map<String, Value>, branches: &[Value], path: &str) -> Result<(), SchemaError> {
        let mut kept = Vec::new();
        for branch in branches {
            if branch.get("type").and_then(Value::as_str) == Some("null") {
                m.insert("nullable".into(), Value::Bool(true));
                continue;
            }
            kept.push(self.rewrite(branch, path)?);
        }
        let types: Vec<String> = kept
            .iter()
            .map(|b| match (b.get("type").and_then(Value::as_str), b.get("x-kubernetes-int-or-string")) {
                (Some(t), _) => t.to_owned(),
                (None, Some(_)) => "int-or-string".to_owned(),
                (None, None) => "any".to_owned(),
            })
            .collect();
        match kept.len() {
            0 => {}
            1 => {
                let only = kept.pop().unwrap_or_default();
                overlay(m, only, false);
            }
            _ if types.iter().all(|t| t == "string") => {
                let mut values = Vec::new();
                for b in &kept {
                    match b.get("enum") {
                        Some(Value::Array(vs)) => values.extend(vs.iter().cloned()),
                        // A free string among the values: any string goes.
                        _ => {
                            values.clear();
                            break;
                        }
                    }
                }
                m.insert("type".into(), Value::String("string".into()));
                if !values.is_empty() {
                    m.insert("enum".into(), Value::Array(values));
                }
                if let Some(d) = kept.iter().find_map(|b| b.get("description")) {
                    m.entry("description").or_insert_with(|| d.clone());
                }
            }
            _ if types.iter().all(|t| t == "object") => {
                // The variants' properties side by side; only what every variant requires stays
                // required.
                let mut props = Map::new();
                let mut required: Option<Vec<Value>> = None;
                for b in &kept {
                    if let Some(Value::Object(p)) = b.get("properties") {
                        for (k, v) in p {
                            match props.get_mut(k) {
                                Some(existing) => merge_enum(existing, v),
                                None => {
                                    props.insert(k.clone(), v.clone());
                                }
                            }
                        }
                    }
                    let reqs = match b.get("required") {
                        Some(Value::Array(r)) => r.clone(),
                        _ => Vec::new(),
                    };
                    required = Some(match required {
                        None => reqs,
                        Some(prev) => prev.into_iter().filter(|r| reqs.contains(r)).collect(),
                    });
                }
                m.insert("type".into(), Value::String("object".into()));
                if !props.is_empty() {
                    m.insert("properties".into(), Value::Object(props));
                }
                if let Some(r) = required.filter(|r| !r.is_empty()) {
                    m.insert("required".into(), Value::Array(r));
                }
            }
            _ if is_int_or_string(&types.iter().map(String::as_str).collect::<Vec<_>>()) => {
                m.insert("x-kubernetes-int-or-string".into(), Value::Bool(true));
            }
            _ => {
                let mut t = types;
                t.dedup();
                return Err(SchemaError::MixedTypes { path: path.into(), types: t.join(", ") });
            }
        }
        Ok(())
    }
}

fn shared_type(values: &[Value]) -> Option<&'static str> {
    let type_of = |v: &Value| match v {
        Value::String(_) => Some("string"),
        Value::Bool(_) => Some("boolean"),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some("integer"),
        Value::Number(_) => Some("number"),
        _ => None,
    };
    let first = type_of(values.first()?)?;
    values.iter().all(|v| type_of(v) == Some(first)).then_some(first)
}

fn preserve_unknown() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("x-kubernetes-preserve-unknown-fields".into(), Value::Bool(true));
    m
}

fn is_int_or_string(types: &[&str]) -> bool {
    let mut t: Vec<&str> = types.iter().map(|t| if *t == "number" { "integer" } else { t }).collect();
    t.sort_unstable();
    t.dedup();
    t == ["integer", "string"] || t == ["int-or-string"] || t == ["int-or-string", "integer", "string"]
}

/// Puts `from`'s keywords into `into`: over what is there when `replace`, else only where
/// `into` has none (properties and required are unions either way).
fn overlay(into: &mut Map<String, Value>, from: Map<String, Value>, replace: bool) {
    for (k, v) in from {
        let typed = into.contains_key("type");
        match (k.as_str(), into.get_mut(&k)) {
            ("properties", Some(Value::Object(existing))) => {
                if let Value::Object(more) = v {
                    for (pk, pv) in more {
                        existing.entry(pk).or_insert(pv);
                    }
                }
            }
            ("required", Some(Value::Array(existing))) => {
                if let Value::Array(more) = v {
                    for r in more {
                        if !existing.contains(&r) {
                            existing.push(r);
                        }
                    }
                }
            }
            // A referring node that only preserves unknown fields adds nothing to a typed target.
            ("x-kubernetes-preserve-unknown-fields", _) if typed => {}
            (_, Some(slot)) => {
                if replace {
                    *slot = v;
                }
            }
            (_, None) => {
                into.insert(k, v);
            }
        }
    }
}

/// The same property in two variants: string enums are united.
fn merge_enum(existing: &mut Value, other: &Value) {
    if let (Some(Value::Array(a)), Some(Value::Array(b))) = (existing.get("enum").cloned(), other.get("enum")) {
        let mut all = a;
        for v in b {
            if !all.contains(v) {
                all.push(v.clone());
            }
        }
        existing["enum"] = Value::Array(all);
    }
}

fn child(path: &str, name: &str) -> String {
    if path == "." { format!(".{name}") } else { format!("{path}.{name}") }
}

/// Every node has a type, or says it needs none.
fn check_types(m: &Map<String, Value>, path: &str) -> Result<(), SchemaError> {
    let flag = |k: &str| m.get(k).and_then(Value::as_bool) == Some(true);
    if !m.contains_key("type") && !flag("x-kubernetes-int-or-string") && !flag("x-kubernetes-preserve-unknown-fields") {
        return Err(SchemaError::MissingType { path: path.into() });
    }
    if let Some(Value::Object(props)) = m.get("properties") {
        for (name, sub) in props {
            if let Value::Object(sub) = sub {
                check_types(sub, &child(path, name))?;
            }
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(Value::Object(sub)) = m.get(key) {
            check_types(sub, &format!("{}[*]", path.trim_end_matches('.')))?;
        }
    }
    Ok(())
}
