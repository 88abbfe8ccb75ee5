//! The CustomResourceDefinitions of `kube_proto::CustomResource` side by side with kube-derive 5's
//! for the same structs and the same `#[kube(...)]` attributes, compared as JSON.
//!
//! Every difference is listed in [`explained`] with the reason for it; a difference not listed
//! (or a listed one that went away) fails the test.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A color.
#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    /// Red.
    Red,
    /// Blue.
    Blue,
}

/// A nested part.
#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    /// Its name.
    pub name: String,
    /// Its weight, if known.
    pub weight_grams: Option<u32>,
}

/// A source, one of two shapes (internally tagged).
#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[serde(tag = "type")]
pub enum Source {
    /// From git.
    Git {
        /// The repository.
        url: String,
    },
    /// From an image.
    Image {
        /// The reference.
        reference: String,
        /// Pull always.
        always: bool,
    },
}

/// A status.
#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
pub struct Observed {
    /// How many are ready.
    pub ready: i32,
    /// A phase.
    pub phase: Option<String>,
}

fn three() -> i64 {
    3
}

macro_rules! both {
    ($m:ident, ($($kube:tt)*), ours($($only:tt)*), $(#[$meta:meta])* pub struct $spec:ident $body:tt) => {
        mod $m {
            pub mod ours {
                #[allow(unused_imports)]
                use super::super::*;
                #[derive(kube_proto::CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
                #[kube($($kube)*)]
                #[kube($($only)*)]
                $(#[$meta])*
                pub struct $spec $body
            }
            pub mod theirs {
                #[allow(unused_imports)]
                use super::super::*;
                #[derive(kube_derive::CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
                #[kube(crates(kube_core = "::kube_core", k8s_openapi = "::k8s_openapi",
                              schemars = "::schemars", serde = "::serde", serde_json = "::serde_json"))]
                #[kube($($kube)*)]
                $(#[$meta])*
                pub struct $spec $body
            }
        }
    };
}

both!(
    plain,
    (group = "compare.example.com", version = "v1", kind = "Plain", namespaced, status = "Observed"),
    ours(),
    /// Scalars, options, lists, maps and a string enum.
    pub struct PlainSpec {
        /// A count.
        pub count: i32,
        /// A name.
        pub name: String,
        /// A nickname, maybe.
        pub nickname: Option<String>,
        /// Tags.
        pub tags: Vec<String>,
        /// Labels.
        pub labels: BTreeMap<String, String>,
        /// A color.
        pub color: Color,
        /// Paused, false unless said.
        #[serde(default)]
        pub paused: bool,
        /// With a default of 3.
        #[serde(default = "three")]
        pub size: i64,
    }
);

both!(
    decorated,
    (
        group = "compare.example.com",
        version = "v1beta1",
        kind = "Decorated",
        shortname = "dec",
        category = "all",
        plural = "decorateds",
        status = "Observed",
        scale(spec_replicas_path = ".spec.replicas", status_replicas_path = ".status.ready"),
        printcolumn(name = "Replicas", type_ = "integer", json_path = ".spec.replicas"),
        printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#,
        selectable = ".spec.mode",
        deprecated = "use v1"
    ),
    // kube-derive's `validation` derives `kube::KubeSchema`, whose code needs the `kube` crate
    // (not a dependency here): the rule is ours alone, and listed as a difference.
    ours(validation = "self.spec.replicas >= 0"),
    /// Cluster-scoped, with every decoration.
    pub struct DecoratedSpec {
        /// Replicas.
        pub replicas: i32,
        /// A mode.
        pub mode: String,
    }
);

both!(
    nested,
    (group = "compare.example.com", version = "v1", kind = "Nested", namespaced),
    ours(),
    /// Nested structs, int-or-string, free-form JSON and a tagged enum.
    #[serde(rename_all = "camelCase")]
    pub struct NestedSpec {
        /// The main part.
        pub main_part: Part,
        /// A spare part, maybe.
        pub spare: Option<Part>,
        /// All parts.
        pub parts: Vec<Part>,
        /// A port.
        pub port: IntOrString,
        /// Anything.
        #[serde(default)]
        pub extra: Value,
        /// A color, maybe.
        pub tint: Option<Color>,
    }
);

both!(
    tagged,
    (group = "compare.example.com", version = "v1", kind = "Tagged", namespaced),
    ours(),
    /// An internally tagged enum.
    pub struct TaggedSpec {
        /// Where from.
        pub source: Source,
    }
);

/// The differences between two JSON values, as `path: ours | theirs` (`-` where absent).
fn diff(path: &str, ours: Option<&Value>, theirs: Option<&Value>, out: &mut Vec<String>) {
    match (ours, theirs) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                diff(&format!("{path}/{k}"), a.get(k), b.get(k), out);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff(&format!("{path}/{i}"), Some(x), Some(y), out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => {
            let show = |v: Option<&Value>| v.map_or_else(|| "-".to_owned(), Value::to_string);
            out.push(format!("{path}: {} | {}", show(a), show(b)));
        }
    }
}

/// `required` lists in name order: kube-derive 5 sorts them, ours keep the fields' order, and
/// the order means nothing to the API server.
fn sort_required(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, sub) in m.iter_mut() {
                if let (true, Value::Array(names)) = (k == "required", &mut *sub) {
                    names.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
                } else {
                    sort_required(sub);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(sort_required),
        _ => {}
    }
}

fn compare(ours: &impl Serialize, theirs: &impl Serialize) -> Vec<String> {
    let (mut a, mut b) = (serde_json::to_value(ours).unwrap(), serde_json::to_value(theirs).unwrap());
    sort_required(&mut a);
    sort_required(&mut b);
    let mut out = Vec::new();
    diff("", Some(&a), Some(&b), &mut out);
    out
}

const SCHEMA: &str = "/spec/versions/0/schema/openAPIV3Schema";

/// Every difference, and why.
fn explained(kind: &str) -> Vec<String> {
    let mut d: Vec<String> = Vec::new();
    let mut add = |path: &str, ours: &str, theirs: &str| d.push(format!("{path}: {ours} | {theirs}"));
    // Our default description of the whole object is our own wording (`doc = ".."` sets it in both).
    let spec = format!("{kind}Spec");
    // We write `listKind` (`{Kind}List`); kube-derive leaves it to the API server, which
    // defaults it to the same value.
    add("/spec/names/listKind", &format!("\"{kind}List\""), "-");
    add(
        &format!("{SCHEMA}/description"),
        &format!("\"Custom resource {kind}, derived from {spec} by #[derive(CustomResource)]\""),
        &format!("\"Auto-generated derived type for {spec} via `CustomResource`\""),
    );
    match kind {
        "Plain" => {
            // A null default is dropped (it asks for nothing); kube-derive keeps `default`s as
            // schemars writes them, and schemars writes none here, so the two agree: no entry.
            //
            // kube-derive writes the status as `nullable` and lets its own type's description
            // stand; ours carries the same.
        }
        "Decorated" => {
            // kube-derive writes `deprecationWarning` and `deprecated` the same way; the
            // printer columns and the scale match. The CEL rule is given to ours alone (above).
            add(&format!("{SCHEMA}/x-kubernetes-validations"), r#"[{"rule":"self.spec.replicas >= 0"}]"#, "-");
        }
        "Nested" => {
            // `extra: serde_json::Value`: kube-derive 5 writes `{"description": ..}` alone, a
            // node with no type, which a structural schema does not allow (the API server
            // refuses the CRD: `type: Required value`); we mark it as any JSON value with
            // `x-kubernetes-preserve-unknown-fields` (and drop schemars' `"default": null`,
            // which asks for nothing).
            add(
                &format!("{SCHEMA}/properties/spec/properties/extra/x-kubernetes-preserve-unknown-fields"),
                "true",
                "-",
            );
            // `tint: Option<Color>`: the field's own doc comment describes it in ours; kube-derive
            // hoists the enum's `anyOf` branch over it and so shows the enum type's doc.
            add(
                &format!("{SCHEMA}/properties/spec/properties/tint/description"),
                "\"A color, maybe.\"",
                "\"A color.\"",
            );
        }
        _ => {}
    }
    d
}

#[test]
fn our_crds_match_kube_derive_5_but_for_the_explained_differences() {
    use kube_core::CustomResourceExt as _;
    use kube_proto::crd::CustomResourceExt as _;
    let cases: [(&str, Vec<String>); 3] = [
        ("Plain", compare(&plain::ours::Plain::crd().unwrap(), &plain::theirs::Plain::crd())),
        ("Decorated", compare(&decorated::ours::Decorated::crd().unwrap(), &decorated::theirs::Decorated::crd())),
        ("Nested", compare(&nested::ours::Nested::crd().unwrap(), &nested::theirs::Nested::crd())),
    ];
    let mut failures = Vec::new();
    for (kind, got) in cases {
        let want = explained(kind);
        for g in &got {
            if !want.contains(g) {
                failures.push(format!("{kind}: unexplained difference {g}"));
            }
        }
        for w in &want {
            if !got.contains(w) {
                failures.push(format!("{kind}: explained difference no longer there {w}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// An internally tagged enum (`#[serde(tag = "type")]`): kube-derive 5 panics in `crd()`, as its
/// variants give the tag property different `enum`s; ours puts the variants' properties side by
/// side, the tag an enum of every variant's name, and requires only what every variant requires.
#[test]
fn an_internally_tagged_enum_makes_kube_derive_5_panic_and_ours_merge() {
    use kube_core::CustomResourceExt as _;
    use kube_proto::crd::CustomResourceExt as _;
    let theirs = std::panic::catch_unwind(tagged::theirs::Tagged::crd);
    assert!(theirs.is_err(), "kube-derive 5 no longer panics: compare the two instead");
    let ours = serde_json::to_value(tagged::ours::Tagged::crd().unwrap()).unwrap();
    let source = ours.pointer(&format!("{SCHEMA}/properties/spec/properties/source")).unwrap();
    assert_eq!(source["type"], "object");
    assert_eq!(source["properties"]["type"], serde_json::json!({"type": "string", "enum": ["Git", "Image"]}));
    assert_eq!(source["required"], serde_json::json!(["type"]));
    let keys: Vec<&String> = source["properties"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["always", "reference", "type", "url"]);
}

#[test]
fn both_name_the_kind_alike() {
    use kube_core::CustomResourceExt as _;
    use kube_proto::crd::CustomResourceExt as _;
    assert_eq!(decorated::ours::Decorated::crd_name(), decorated::theirs::Decorated::crd_name());
    assert_eq!(decorated::ours::Decorated::shortnames(), decorated::theirs::Decorated::shortnames());
    let (a, b) = (plain::ours::Plain::api_resource(), plain::theirs::Plain::api_resource());
    assert_eq!(
        (a.group, a.version, a.api_version, a.kind, a.plural),
        (b.group, b.version, b.api_version, b.kind, b.plural)
    );
    // The objects serialize alike too.
    let spec = || plain::ours::PlainSpec {
        count: 1,
        name: "n".into(),
        nickname: None,
        tags: vec![],
        labels: BTreeMap::new(),
        color: Color::Red,
        paused: false,
        size: 3,
    };
    let ours = serde_json::to_value(plain::ours::Plain::new("p", spec())).unwrap();
    let s = spec();
    let theirs_spec = plain::theirs::PlainSpec {
        count: s.count,
        name: s.name,
        nickname: s.nickname,
        tags: s.tags,
        labels: s.labels,
        color: s.color,
        paused: s.paused,
        size: s.size,
    };
    let theirs = serde_json::to_value(plain::theirs::Plain::new("p", theirs_spec)).unwrap();
    assert_eq!(ours, theirs);
}
