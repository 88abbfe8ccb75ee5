//! CustomResourceDefinitions from Rust types: what `#[derive(CustomResource)]` (the `derive`
//! feature) builds on, usable by hand as well.
//!
//! - [`structural_schema`] turns a JSON Schema (as schemars 1.x writes it) into the structural
//!   OpenAPI v3 schema the API server requires of a CRD.
//! - [`CrdVersion`] describes one version of a kind; [`CrdVersion::to_crd`] makes its
//!   `CustomResourceDefinition`.
//! - [`merge_crds`] joins several versions of one kind into one CRD with one storage version.
//! - [`CustomResourceExt`] is what a derived kind implements.
//!
//! ```
//! use kube_proto::crd::{CrdVersion, merge_crds};
//! use serde_json::json;
//!
//! let schema = json!({"type": "object", "properties": {"spec": {"$ref": "#/$defs/Spec"}},
//!                     "$defs": {"Spec": {"type": "object", "properties": {
//!                         "size": {"type": ["integer", "null"], "format": "int32"}}}}});
//! let v1 = CrdVersion::new("example.com", "v1", "Widget", schema.clone()).to_crd().unwrap();
//! let v2 = CrdVersion::new("example.com", "v2", "Widget", schema).to_crd().unwrap();
//! let crd = merge_crds(vec![v1, v2], "v2").unwrap();
//! assert_eq!(crd.metadata.name.as_deref(), Some("widgets.example.com"));
//! let stored: Vec<_> = crd.spec.versions.iter().filter(|v| v.storage).map(|v| v.name.as_str()).collect();
//! assert_eq!(stored, ["v2"]);
//! let size = &crd.spec.versions[0].schema.as_ref().unwrap().open_api_v3_schema.as_ref().unwrap()
//!     .properties.as_ref().unwrap()["spec"].properties.as_ref().unwrap()["size"];
//! assert_eq!((size.type_.as_deref(), size.nullable), (Some("integer"), Some(true)));
//! ```

mod schema;

#[cfg(feature = "derive")]
mod derive_support;
#[cfg(feature = "derive")]
pub use derive_support::kind_schema;

pub use schema::{SchemaError, structural_schema, structural_value};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};

use crate::resource::{ApiResource, guess_plural};

/// What a kind made by `#[derive(CustomResource)]` knows about its definition.
pub trait CustomResourceExt {
    /// Its CustomResourceDefinition (this version alone, as the storage version).
    ///
    /// An error when the spec or status type has no structural schema (a recursive type, a
    /// value of several types), or when an attribute given as JSON does not parse.
    fn crd() -> Result<CustomResourceDefinition, CrdError>;
    /// The CRD's name, `{plural}.{group}`.
    fn crd_name() -> &'static str;
    /// Its type information.
    fn api_resource() -> ApiResource;
    /// Its short names, for kubectl.
    fn shortnames() -> &'static [&'static str];
}

/// Why a CustomResourceDefinition could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CrdError {
    /// The schema of a version is not structural.
    #[error("the schema of {kind} {version}: {source}")]
    Schema {
        /// The kind.
        kind: String,
        /// The version.
        version: String,
        /// What is wrong with it.
        source: SchemaError,
    },
    /// An attribute given as JSON (a printer column, a scale subresource) does not parse.
    #[error("{what}: {reason}")]
    Json {
        /// Which attribute.
        what: String,
        /// The parser's message.
        reason: String,
    },
    /// Nothing to merge.
    #[error("no CustomResourceDefinition to merge")]
    NothingToMerge,
    /// The CRDs to merge are not of the same kind: `field` differs.
    #[error("the CustomResourceDefinitions differ in {field}: {first} and {other}")]
    Mismatch {
        /// What differs, such as `spec.group`.
        field: String,
        /// The first CRD's value.
        first: String,
        /// The other CRD's value.
        other: String,
    },
    /// The same version twice.
    #[error("version {0} is given twice")]
    DuplicateVersion(String),
    /// The storage version named is none of the versions.
    #[error("the storage version {storage} is none of the versions ({versions})")]
    NoSuchStorageVersion {
        /// The version named as storage.
        storage: String,
        /// The versions there are, comma-separated.
        versions: String,
    },
}

/// One version of a custom resource kind, everything its CRD says about it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CrdVersion {
    /// API group, such as `example.com`.
    pub group: String,
    /// Version, such as `v1`.
    pub version: String,
    /// Kind, such as `Widget`.
    pub kind: String,
    /// Plural; guessed from the kind when `None` (`Widget` -> `widgets`).
    pub plural: Option<String>,
    /// Singular; the kind in lower case when `None`.
    pub singular: Option<String>,
    /// Namespaced, or cluster-scoped.
    pub namespaced: bool,
    /// Short names (`kubectl get wd`).
    pub short_names: Vec<String>,
    /// Categories (`kubectl get all`).
    pub categories: Vec<String>,
    /// Whether `status` is a subresource.
    pub status_subresource: bool,
    /// The scale subresource: `{"specReplicasPath": .., "statusReplicasPath": .., "labelSelectorPath": ..}`.
    pub scale: Option<Value>,
    /// Additional printer columns: `{"name": .., "type": .., "jsonPath": .., ...}` each.
    pub printer_columns: Vec<Value>,
    /// JSON paths of fields usable in field selectors, such as `.spec.color`.
    pub selectable_fields: Vec<String>,
    /// CEL rules on the whole object: `(rule, message)`.
    pub validations: Vec<(String, Option<String>)>,
    /// Whether the version is served.
    pub served: bool,
    /// Whether the version is the storage version.
    pub storage: bool,
    /// Whether the version is deprecated, and the warning to give (the API server has a default one).
    pub deprecated: Option<Option<String>>,
    /// The JSON Schema of the whole object (spec and status); made structural by [`CrdVersion::to_crd`].
    pub schema: Value,
}

impl CrdVersion {
    /// A namespaced, served and stored version with nothing else set.
    pub fn new(group: &str, version: &str, kind: &str, schema: Value) -> Self {
        CrdVersion {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: None,
            singular: None,
            namespaced: true,
            short_names: Vec::new(),
            categories: Vec::new(),
            status_subresource: false,
            scale: None,
            printer_columns: Vec::new(),
            selectable_fields: Vec::new(),
            validations: Vec::new(),
            served: true,
            storage: true,
            deprecated: None,
            schema,
        }
    }

    /// The plural, given or guessed.
    pub fn plural(&self) -> String {
        self.plural.clone().unwrap_or_else(|| guess_plural(&self.kind))
    }

    /// The CustomResourceDefinition with this version alone.
    pub fn to_crd(&self) -> Result<CustomResourceDefinition, CrdError> {
        let schema_error = |source| CrdError::Schema { kind: self.kind.clone(), version: self.version.clone(), source };
        let mut schema = structural_value(&self.schema).map_err(schema_error)?;
        if !self.validations.is_empty() {
            let rules: Vec<Value> = self
                .validations
                .iter()
                .map(|(rule, message)| match message {
                    Some(m) => json!({"rule": rule, "message": m}),
                    None => json!({"rule": rule}),
                })
                .collect();
            schema["x-kubernetes-validations"] = Value::Array(rules);
        }
        let plural = self.plural();
        let singular = self.singular.clone().unwrap_or_else(|| self.kind.to_ascii_lowercase());
        let mut names = json!({
            "kind": self.kind,
            "listKind": format!("{}List", self.kind),
            "plural": plural,
            "singular": singular,
        });
        if !self.short_names.is_empty() {
            names["shortNames"] = json!(self.short_names);
        }
        if !self.categories.is_empty() {
            names["categories"] = json!(self.categories);
        }
        let mut version = json!({
            "name": self.version,
            "served": self.served,
            "storage": self.storage,
            "schema": {"openAPIV3Schema": schema},
        });
        let mut subresources = serde_json::Map::new();
        if self.status_subresource {
            subresources.insert("status".into(), json!({}));
        }
        if let Some(scale) = &self.scale {
            subresources.insert("scale".into(), scale.clone());
        }
        if !subresources.is_empty() {
            version["subresources"] = Value::Object(subresources);
        }
        if !self.printer_columns.is_empty() {
            version["additionalPrinterColumns"] = json!(self.printer_columns);
        }
        if !self.selectable_fields.is_empty() {
            let fields: Vec<Value> = self.selectable_fields.iter().map(|p| json!({"jsonPath": p})).collect();
            version["selectableFields"] = Value::Array(fields);
        }
        if let Some(warning) = &self.deprecated {
            version["deprecated"] = Value::Bool(true);
            if let Some(w) = warning {
                version["deprecationWarning"] = Value::String(w.clone());
            }
        }
        let crd = json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{plural}.{}", self.group)},
            "spec": {
                "group": self.group,
                "names": names,
                "scope": if self.namespaced { "Namespaced" } else { "Cluster" },
                "versions": [version],
            },
        });
        serde_json::from_value(crd)
            .map_err(|e| CrdError::Json { what: "the CustomResourceDefinition".into(), reason: e.to_string() })
    }
}

/// Parses an attribute given as JSON text (a printer column, a scale subresource).
pub fn parse_json(what: &str, text: &str) -> Result<Value, CrdError> {
    serde_json::from_str(text).map_err(|e| CrdError::Json { what: what.into(), reason: e.to_string() })
}

/// Joins the CRDs of several versions of one kind into one, with `storage_version` the only
/// storage version. They must agree on name, group, names and scope; each version once.
pub fn merge_crds(
    crds: Vec<CustomResourceDefinition>,
    storage_version: &str,
) -> Result<CustomResourceDefinition, CrdError> {
    let mut crds = crds.into_iter();
    let mut merged = crds.next().ok_or(CrdError::NothingToMerge)?;
    for crd in crds {
        let mismatch =
            |field: &str, a: String, b: String| CrdError::Mismatch { field: field.into(), first: a, other: b };
        if crd.metadata.name != merged.metadata.name {
            return Err(mismatch(
                "metadata.name",
                format!("{:?}", merged.metadata.name),
                format!("{:?}", crd.metadata.name),
            ));
        }
        if crd.spec.group != merged.spec.group {
            return Err(mismatch("spec.group", merged.spec.group.clone(), crd.spec.group.clone()));
        }
        if crd.spec.scope != merged.spec.scope {
            return Err(mismatch("spec.scope", merged.spec.scope.clone(), crd.spec.scope.clone()));
        }
        if crd.spec.names != merged.spec.names {
            return Err(mismatch("spec.names", format!("{:?}", merged.spec.names), format!("{:?}", crd.spec.names)));
        }
        for v in crd.spec.versions {
            if merged.spec.versions.iter().any(|m| m.name == v.name) {
                return Err(CrdError::DuplicateVersion(v.name));
            }
            merged.spec.versions.push(v);
        }
    }
    if merged.spec.versions.iter().any(|v| merged.spec.versions.iter().filter(|w| w.name == v.name).count() > 1) {
        // Only reachable with a first CRD that already held a version twice.
        let dup =
            merged.spec.versions.iter().find(|v| merged.spec.versions.iter().filter(|w| w.name == v.name).count() > 1);
        return Err(CrdError::DuplicateVersion(dup.map(|v| v.name.clone()).unwrap_or_default()));
    }
    if !merged.spec.versions.iter().any(|v| v.name == storage_version) {
        let versions: Vec<&str> = merged.spec.versions.iter().map(|v| v.name.as_str()).collect();
        return Err(CrdError::NoSuchStorageVersion { storage: storage_version.into(), versions: versions.join(", ") });
    }
    for v in &mut merged.spec.versions {
        v.storage = v.name == storage_version;
    }
    Ok(merged)
}

/// What the generated code reaches through `kube_proto`, so that a user needs no other
/// dependency. Not a stable API.
#[cfg(feature = "derive")]
#[doc(hidden)]
pub mod __private {
    pub use k8s_openapi;
    pub use schemars;
    pub use serde;
    pub use serde_json;
}
