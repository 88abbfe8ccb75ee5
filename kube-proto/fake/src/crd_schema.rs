//! Custom resources held to their CRD's structural schema, as the real API server holds them:
//! unknown fields are pruned (with a `Warning` header, or a 400 under `fieldValidation=Strict`,
//! or silently under `Ignore`) unless `x-kubernetes-preserve-unknown-fields` keeps them, schema
//! defaults fill what is missing, and values of the wrong type, outside an enum, below a
//! minimum or above a maximum (and the like) are refused with 422 Invalid and one cause each.
//!
//! The schema is read from the CRD object in the store at each write, so a CRD's update takes
//! effect at once. Kinds registered by hand (without a CRD) are not checked.

use serde_json::{Map, Value};

use kube_proto::{Reason, Status, StatusCause, StatusDetails};

use crate::FakeApiServer;
use crate::kinds::KindInfo;
use crate::store::ObjKey;

/// The `fieldValidation` of the request being served: how unknown fields are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum FieldValidation {
    /// Pruned silently.
    Ignore,
    /// Pruned, each with a `Warning` header (the server's default).
    #[default]
    Warn,
    /// Refused with 400.
    Strict,
}

impl FieldValidation {
    /// From the query parameter's value (an unknown value is the default).
    pub(crate) fn from_query(v: Option<&str>) -> Self {
        match v {
            Some("Ignore") => FieldValidation::Ignore,
            Some("Strict") => FieldValidation::Strict,
            _ => FieldValidation::Warn,
        }
    }
}

impl FakeApiServer {
    /// The structural schema of a custom resource kind, from its CRD in the store.
    pub(crate) fn custom_schema(&self, kind: &KindInfo) -> Option<Value> {
        if kind.builtin {
            return None;
        }
        let crd_kind = self.kind_id("apiextensions.k8s.io", "customresourcedefinitions")?;
        let r = &kind.resource;
        let key = ObjKey { kind: crd_kind, namespace: String::new(), name: format!("{}.{}", r.plural, r.group) };
        let crd = self.store.get(&key)?;
        crd["spec"]["versions"]
            .as_array()?
            .iter()
            .find(|v| v["name"] == r.version.as_str())
            .map(|v| v["schema"]["openAPIV3Schema"].clone())
            .filter(Value::is_object)
    }

    /// Prunes, defaults and validates a custom resource about to be written; the warnings go
    /// with the response. A no-op for built-in kinds and kinds without a CRD.
    pub(crate) fn admit_custom_resource(
        &mut self,
        kind: &KindInfo,
        name: &str,
        obj: &mut Value,
    ) -> Result<(), Box<Status>> {
        let Some(schema) = self.custom_schema(kind) else { return Ok(()) };
        let mut unknown = Vec::new();
        if let Value::Object(m) = obj {
            for (key, value) in m.iter_mut() {
                if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                match schema["properties"].get(key) {
                    Some(sub) => prune(sub, value, key, &mut unknown),
                    None if preserves(&schema) => {}
                    None => unknown.push(key.clone()),
                }
            }
            if !preserves(&schema) {
                m.retain(|k, _| {
                    matches!(k.as_str(), "apiVersion" | "kind" | "metadata") || schema["properties"].get(k).is_some()
                });
            }
        }
        if !unknown.is_empty() {
            match self.field_validation {
                FieldValidation::Strict => {
                    let list: Vec<String> = unknown.iter().map(|f| format!("unknown field {f:?}")).collect();
                    let k = &kind.resource.kind;
                    return Err(Box::new(Status::failure(
                        400,
                        Reason::BadRequest,
                        format!(
                            "{k} in version {:?} cannot be handled as a {k}: strict decoding error: {}",
                            kind.resource.version,
                            list.join(", ")
                        ),
                    )));
                }
                FieldValidation::Warn => {
                    self.warnings.extend(unknown.iter().map(|f| format!("unknown field {f:?}")));
                }
                FieldValidation::Ignore => {}
            }
        }
        default_fields(&schema, obj, true);
        let mut causes = Vec::new();
        if let Value::Object(m) = &*obj {
            for (key, value) in m {
                if let Some(sub) = schema["properties"].get(key)
                    && !matches!(key.as_str(), "apiVersion" | "kind" | "metadata")
                {
                    validate(sub, value, key, &mut causes);
                }
            }
            required(&schema, m, "", &mut causes, &["metadata", "apiVersion", "kind"]);
        }
        if let Some(scale) = &kind.scale
            && let Some(v) = lookup(obj, &scale.spec_replicas)
            && v.as_i64().is_some_and(|n| n < 0)
        {
            causes.push(StatusCause {
                reason: "FieldValueInvalid".into(),
                message: format!("Invalid value: {v}: should be a non-negative integer"),
                field: format!(".{}", scale.spec_replicas),
            });
        }
        if causes.is_empty() {
            return Ok(());
        }
        let rendered: Vec<String> = causes.iter().map(|c| format!("{}: {}", c.field, c.message)).collect();
        let list = if rendered.len() == 1 { rendered[0].clone() } else { format!("[{}]", rendered.join(", ")) };
        let r = &kind.resource;
        let mut s =
            Status::failure(422, Reason::Invalid, format!("{}.{} {name:?} is invalid: {list}", r.kind, r.group));
        s.details = Some(StatusDetails {
            name: name.to_owned(),
            group: r.group.clone(),
            kind: r.kind.clone(),
            causes,
            ..StatusDetails::default()
        });
        Err(Box::new(s))
    }
}

fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool) == Some(true)
}

fn preserves(schema: &Value) -> bool {
    flag(schema, "x-kubernetes-preserve-unknown-fields")
}

fn lookup<'a>(obj: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(obj, |v, k| v.get(k))
}

/// Removes the fields `schema` does not know from `value`, recording their paths.
fn prune(schema: &Value, value: &mut Value, path: &str, unknown: &mut Vec<String>) {
    match value {
        Value::Object(m) => {
            if let Some(Value::Object(props)) = schema.get("properties") {
                let keep_all = preserves(schema);
                m.retain(|k, _| {
                    let known = props.contains_key(k);
                    if !known && !keep_all {
                        unknown.push(format!("{path}.{k}"));
                    }
                    known || keep_all
                });
                for (k, v) in m.iter_mut() {
                    if let Some(sub) = props.get(k) {
                        prune(sub, v, &format!("{path}.{k}"), unknown);
                    }
                }
            } else if let Some(sub) = schema.get("additionalProperties").filter(|s| s.is_object()) {
                for (k, v) in m.iter_mut() {
                    prune(sub, v, &format!("{path}.{k}"), unknown);
                }
            } else if !preserves(schema) && schema.get("type").and_then(Value::as_str) == Some("object") {
                // An object with neither properties nor additionalProperties holds nothing.
                for k in m.keys() {
                    unknown.push(format!("{path}.{k}"));
                }
                m.clear();
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items") {
                for (i, v) in items.iter_mut().enumerate() {
                    prune(sub, v, &format!("{path}[{i}]"), unknown);
                }
            }
        }
        _ => {}
    }
}

/// Fills in the defaults of missing (or null but not nullable) properties, in objects that are
/// there; `root` skips the object's own metadata.
fn default_fields(schema: &Value, value: &mut Value, root: bool) {
    match value {
        Value::Object(m) => {
            if let Some(Value::Object(props)) = schema.get("properties") {
                for (k, sub) in props {
                    if root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                        continue;
                    }
                    let missing = match m.get(k) {
                        None => true,
                        Some(Value::Null) => !flag(sub, "nullable"),
                        Some(_) => false,
                    };
                    if missing && let Some(d) = sub.get("default") {
                        m.insert(k.clone(), d.clone());
                    }
                }
                for (k, v) in m.iter_mut() {
                    if let Some(sub) = props.get(k) {
                        default_fields(sub, v, false);
                    }
                }
            } else if let Some(sub) = schema.get("additionalProperties").filter(|s| s.is_object()) {
                for v in m.values_mut() {
                    default_fields(sub, v, false);
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items") {
                items.iter_mut().for_each(|v| default_fields(sub, v, false));
            }
        }
        _ => {}
    }
}

fn cause(reason: &str, field: &str, message: String) -> StatusCause {
    StatusCause { reason: reason.into(), message, field: field.into() }
}

/// The JSON type name of a value, as the API server's messages give it.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(want: &str, v: &Value) -> bool {
    match want {
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        other => type_name(v) == other,
    }
}

/// Go's `%v` of a JSON value in these messages: strings quoted, whole numbers without a
/// fraction (a bound written `0.0` shows as `0`), the rest as JSON.
fn shown(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if v.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        _ => v.to_string(),
    }
}

fn validate(schema: &Value, value: &Value, path: &str, causes: &mut Vec<StatusCause>) {
    if value.is_null() {
        if !flag(schema, "nullable") && schema.get("type").is_some() {
            let want = schema["type"].as_str().unwrap_or_default();
            causes.push(cause(
                "FieldValueTypeInvalid",
                path,
                format!("Invalid value: \"null\": {path} in body must be of type {want}: \"null\""),
            ));
        }
        return;
    }
    if flag(schema, "x-kubernetes-int-or-string") {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            causes.push(cause(
                "FieldValueTypeInvalid",
                path,
                format!(
                    "Invalid value: {:?}: {path} in body must be of type integer,string: {}",
                    type_name(value),
                    shown(value)
                ),
            ));
        }
        return;
    }
    if let Some(want) = schema.get("type").and_then(Value::as_str)
        && !type_matches(want, value)
    {
        causes.push(cause(
            "FieldValueTypeInvalid",
            path,
            format!("Invalid value: {:?}: {path} in body must be of type {want}: {}", type_name(value), shown(value)),
        ));
        return;
    }
    if let Some(Value::Array(allowed)) = schema.get("enum")
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(shown).collect();
        causes.push(cause(
            "FieldValueNotSupported",
            path,
            format!("Unsupported value: {}: supported values: {}", shown(value), list.join(", ")),
        ));
    }
    if let (Some(n), Some(min)) = (value.as_f64(), schema.get("minimum").and_then(Value::as_f64)) {
        let exclusive = flag(schema, "exclusiveMinimum");
        if n < min || (exclusive && n == min) {
            let op = if exclusive { "greater than" } else { "greater than or equal to" };
            causes.push(cause(
                "FieldValueInvalid",
                path,
                format!("Invalid value: {}: {path} in body should be {op} {}", shown(value), shown(&schema["minimum"])),
            ));
        }
    }
    if let (Some(n), Some(max)) = (value.as_f64(), schema.get("maximum").and_then(Value::as_f64)) {
        let exclusive = flag(schema, "exclusiveMaximum");
        if n > max || (exclusive && n == max) {
            let op = if exclusive { "less than" } else { "less than or equal to" };
            causes.push(cause(
                "FieldValueInvalid",
                path,
                format!("Invalid value: {}: {path} in body should be {op} {}", shown(value), shown(&schema["maximum"])),
            ));
        }
    }
    if let Some(s) = value.as_str() {
        let len = s.chars().count() as u64;
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && len < min
        {
            causes.push(cause(
                "FieldValueInvalid",
                path,
                format!("Invalid value: {}: {path} in body should be at least {min} chars long", shown(value)),
            ));
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && len > max
        {
            causes.push(cause("FieldValueTooLong", path, format!("Too long: may not be more than {max} bytes")));
        }
    }
    match value {
        Value::Object(m) => {
            if let Some(Value::Object(props)) = schema.get("properties") {
                for (k, v) in m {
                    if let Some(sub) = props.get(k) {
                        validate(sub, v, &format!("{path}.{k}"), causes);
                    }
                }
            } else if let Some(sub) = schema.get("additionalProperties").filter(|s| s.is_object()) {
                for (k, v) in m {
                    validate(sub, v, &format!("{path}.{k}"), causes);
                }
            }
            required(schema, m, path, causes, &[]);
        }
        Value::Array(items) => {
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < min
            {
                causes.push(cause(
                    "FieldValueInvalid",
                    path,
                    format!("Invalid value: {}: {path} in body should have at least {min} items", items.len()),
                ));
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && (items.len() as u64) > max
            {
                causes.push(cause(
                    "FieldValueTooMany",
                    path,
                    format!("Too many: {}: must have at most {max} items", items.len()),
                ));
            }
            if let Some(sub) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    validate(sub, v, &format!("{path}[{i}]"), causes);
                }
            }
        }
        _ => {}
    }
}

/// The required properties that are missing from `m`.
fn required(schema: &Value, m: &Map<String, Value>, path: &str, causes: &mut Vec<StatusCause>, skip: &[&str]) {
    for r in schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        if !m.contains_key(r) && !skip.contains(&r) {
            let field = if path.is_empty() { r.to_owned() } else { format!("{path}.{r}") };
            causes.push(cause("FieldValueRequired", &field, "Required value".into()));
        }
    }
}
