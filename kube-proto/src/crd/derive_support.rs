//! The JSON Schema of a derived kind, from its spec and status types (the `derive` feature).

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

/// The JSON Schema of a kind whose spec is `Spec` and, when `with_status`, whose optional status
/// is `Status`: `{"type": "object", "properties": {"spec": .., "status": ..}, "required": ["spec"]}`,
/// with the types' definitions under `$defs`. [`CrdVersion::to_crd`](super::CrdVersion::to_crd)
/// makes it structural.
pub fn kind_schema<Spec: JsonSchema, Status: JsonSchema>(kind: &str, description: &str, with_status: bool) -> Value {
    let mut settings = SchemaSettings::draft2020_12();
    settings.meta_schema = None;
    let mut generator = settings.into_generator();
    let spec = generator.subschema_for::<Spec>();
    let mut properties = Map::new();
    properties.insert("spec".into(), spec.to_value());
    if with_status {
        let mut status = generator.subschema_for::<Status>().to_value();
        // The status is optional: absent until a controller writes it.
        if let Value::Object(m) = &mut status {
            m.insert("nullable".into(), Value::Bool(true));
        }
        properties.insert("status".into(), status);
    }
    let defs = generator.take_definitions(true);
    json!({
        "description": description,
        "title": kind,
        "type": "object",
        "properties": properties,
        "required": ["spec"],
        "$defs": defs,
    })
}
