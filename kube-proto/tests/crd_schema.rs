//! JSON Schemas (in the shapes schemars 1.x writes) made structural for a CRD, and the errors
//! for those that cannot be.

use kube_proto::crd::{SchemaError, structural_schema, structural_value};
use serde_json::{Value, json};

fn rewrite(v: Value) -> Value {
    structural_value(&v).unwrap()
}

fn spec_of(props: Value, defs: Value) -> Value {
    json!({"type": "object", "properties": {"spec": {"type": "object", "properties": props}}, "$defs": defs,
           "$schema": "https://json-schema.org/draft/2020-12/schema"})
}

#[test]
fn refs_are_inlined_with_the_referring_description_on_top() {
    let out = rewrite(spec_of(
        json!({"part": {"$ref": "#/$defs/Part", "description": "the field's doc"}}),
        json!({"Part": {"type": "object", "description": "the type's doc", "properties": {"n": {"type": "integer"}}, "required": ["n"]}}),
    ));
    assert_eq!(
        out["properties"]["spec"]["properties"]["part"],
        json!({"type": "object", "description": "the field's doc", "properties": {"n": {"type": "integer"}}, "required": ["n"]})
    );
    assert!(out.get("$defs").is_none() && out.get("$schema").is_none(), "{out}");
}

#[test]
fn options_become_nullable() {
    let out = rewrite(spec_of(
        json!({
            "a": {"type": ["string", "null"]},
            "b": {"anyOf": [{"$ref": "#/$defs/Part"}, {"type": "null"}], "description": "maybe a part"},
            "c": {"enum": ["x", "y", null]},
        }),
        json!({"Part": {"type": "object", "properties": {"n": {"type": "integer"}}}}),
    ));
    let p = &out["properties"]["spec"]["properties"];
    assert_eq!(p["a"], json!({"type": "string", "nullable": true}));
    assert_eq!(p["b"]["type"], "object");
    assert_eq!(p["b"]["nullable"], true);
    assert_eq!(p["b"]["description"], "maybe a part");
    assert_eq!(p["b"]["properties"]["n"], json!({"type": "integer"}));
    assert_eq!(p["c"], json!({"type": "string", "enum": ["x", "y"], "nullable": true}));
}

#[test]
fn enums_of_strings_merge_into_one_enum() {
    let out = rewrite(spec_of(
        json!({"e": {"oneOf": [{"type": "string", "const": "A", "description": "a"}, {"type": "string", "enum": ["B", "C"]}]}}),
        json!({}),
    ));
    assert_eq!(
        out["properties"]["spec"]["properties"]["e"],
        json!({"type": "string", "enum": ["A", "B", "C"], "description": "a"})
    );
}

#[test]
fn tagged_variants_merge_their_properties() {
    let out = rewrite(spec_of(
        json!({"v": {"oneOf": [
            {"type": "object", "properties": {"kind": {"type": "string", "const": "Disk"}, "size": {"type": "integer"}}, "required": ["kind", "size"]},
            {"type": "object", "properties": {"kind": {"type": "string", "const": "Net"}, "port": {"type": "integer"}}, "required": ["kind"]},
        ]}}),
        json!({}),
    ));
    let v = &out["properties"]["spec"]["properties"]["v"];
    assert_eq!(v["type"], "object");
    assert_eq!(v["required"], json!(["kind"]), "only what every variant requires");
    assert_eq!(v["properties"]["kind"], json!({"type": "string", "enum": ["Disk", "Net"]}));
    assert_eq!(v["properties"]["size"], json!({"type": "integer"}));
    assert_eq!(v["properties"]["port"], json!({"type": "integer"}));
}

#[test]
fn int_or_string_preserve_unknown_and_sets() {
    let out = rewrite(spec_of(
        json!({
            "ios": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            "ios2": {"type": ["integer", "string"]},
            "k8s": {"x-kubernetes-int-or-string": true},
            "any": true,
            "anyDoc": {"description": "anything", "default": null},
            "map": {"type": "object", "additionalProperties": true},
            "closed": {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false},
            "set": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
            "objSet": {"type": "array", "items": {"type": "object", "properties": {}}, "uniqueItems": true},
        }),
        json!({}),
    ));
    let p = &out["properties"]["spec"]["properties"];
    assert_eq!(p["ios"], json!({"x-kubernetes-int-or-string": true}));
    assert_eq!(p["ios2"], json!({"x-kubernetes-int-or-string": true}));
    assert_eq!(p["k8s"], json!({"x-kubernetes-int-or-string": true}));
    assert_eq!(p["any"], json!({"x-kubernetes-preserve-unknown-fields": true}));
    assert_eq!(p["anyDoc"], json!({"x-kubernetes-preserve-unknown-fields": true, "description": "anything"}));
    assert_eq!(p["map"], json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
    assert_eq!(p["closed"], json!({"type": "object", "properties": {"a": {"type": "string"}}}));
    assert_eq!(p["set"], json!({"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"}));
    assert_eq!(p["objSet"], json!({"type": "array", "items": {"type": "object", "properties": {}}}));
}

#[test]
fn all_of_and_const_and_defaults() {
    let out = rewrite(spec_of(
        json!({
            "x": {"allOf": [{"$ref": "#/$defs/A"}], "default": {"a": "z"}},
            "c": {"const": 7, "type": "integer"},
        }),
        json!({"A": {"type": "object", "properties": {"a": {"type": "string"}}}}),
    ));
    let p = &out["properties"]["spec"]["properties"];
    assert_eq!(p["x"], json!({"type": "object", "properties": {"a": {"type": "string"}}, "default": {"a": "z"}}));
    assert_eq!(p["c"], json!({"type": "integer", "enum": [7]}));
}

#[test]
fn the_result_decodes_as_json_schema_props() {
    let props = structural_schema(&spec_of(
        json!({"n": {"type": ["integer", "null"], "format": "int32", "minimum": 0}}),
        json!({}),
    ))
    .unwrap();
    let n = &props.properties.as_ref().unwrap()["spec"].properties.as_ref().unwrap()["n"];
    assert_eq!(n.type_.as_deref(), Some("integer"));
    assert_eq!(n.nullable, Some(true));
    assert_eq!(n.minimum, Some(0.0));
}

#[test]
fn what_cannot_be_structural_is_a_typed_error_with_its_path() {
    let cases = [
        (
            spec_of(
                json!({"t": {"$ref": "#/$defs/T"}}),
                json!({"T": {"type": "object", "properties": {"next": {"$ref": "#/$defs/T"}}}}),
            ),
            SchemaError::Recursive { path: ".spec.t.next".into(), reference: "#/$defs/T".into() },
        ),
        (
            spec_of(json!({"r": {"$ref": "#/$defs/Nope"}}), json!({})),
            SchemaError::UnresolvedRef { path: ".spec.r".into(), reference: "#/$defs/Nope".into() },
        ),
        (
            spec_of(json!({"m": {"type": ["boolean", "string"]}}), json!({})),
            SchemaError::MixedTypes { path: ".spec.m".into(), types: "boolean, string".into() },
        ),
        (
            spec_of(json!({"m": {"anyOf": [{"type": "object", "properties": {}}, {"type": "string"}]}}), json!({})),
            SchemaError::MixedTypes { path: ".spec.m".into(), types: "object, string".into() },
        ),
        (
            spec_of(
                json!({"tup": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]}}),
                json!({}),
            ),
            SchemaError::Unsupported { path: ".spec.tup".into(), feature: "prefixItems".into() },
        ),
        (
            spec_of(
                json!({"l": {"type": "array", "items": {"format": "int32", "minimum": 1, "nullable": true}}}),
                json!({}),
            ),
            SchemaError::MissingType { path: ".spec.l[*]".into() },
        ),
        (
            spec_of(json!({"f": false}), json!({})),
            SchemaError::Unsupported { path: ".spec.f".into(), feature: "the schema `false`".into() },
        ),
    ];
    for (input, want) in cases {
        assert_eq!(structural_value(&input).unwrap_err(), want, "{input}");
    }
}
