//! What the core needs to know about a kind: its group, version, kind, plural and scope.
//!
//! Every `k8s_openapi` type satisfies [`Resource`] through a blanket implementation, with
//! `DynamicType = ()` because everything is known at compile time. [`DynamicObject`] and
//! [`PartialObjectMeta`] carry their type information at run time in an [`ApiResource`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::marker::PhantomData;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde::{Deserialize, Serialize};

pub use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope, SubResourceScope};

/// The scope of a resource whose scope is only known at run time (from its [`ApiResource`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DynamicResourceScope;

/// Compile-time knowledge of whether a scope type is namespaced.
pub trait KnownScope {
    /// Whether objects of this scope live in a namespace.
    const NAMESPACED: bool;
}
impl KnownScope for NamespaceResourceScope {
    const NAMESPACED: bool = true;
}
impl KnownScope for ClusterResourceScope {
    const NAMESPACED: bool = false;
}
impl KnownScope for SubResourceScope {
    const NAMESPACED: bool = false;
}

/// A Kubernetes kind: its type information and access to its `metadata`.
///
/// The type information may depend on a run-time value, `DynamicType`: `()` for
/// compile-time types, [`ApiResource`] for dynamic objects.
pub trait Resource {
    /// The run-time value that completes the type information (`()` when none is needed).
    type DynamicType: Send + Sync + 'static;
    /// `NamespaceResourceScope`, `ClusterResourceScope`, or [`DynamicResourceScope`].
    type Scope;

    /// The kind, such as `Pod`.
    fn kind(dt: &Self::DynamicType) -> Cow<'_, str>;
    /// The API group, empty for the core group.
    fn group(dt: &Self::DynamicType) -> Cow<'_, str>;
    /// The version, such as `v1`.
    fn version(dt: &Self::DynamicType) -> Cow<'_, str>;
    /// `group/version`, or just `version` for the core group.
    fn api_version(dt: &Self::DynamicType) -> Cow<'_, str>;
    /// The plural, lower-case resource name used in URLs, such as `pods`.
    fn plural(dt: &Self::DynamicType) -> Cow<'_, str>;
    /// Whether objects of this kind live in a namespace.
    fn is_namespaced(dt: &Self::DynamicType) -> bool;

    /// The object's metadata.
    fn meta(&self) -> &ObjectMeta;
    /// The object's metadata, mutable.
    fn meta_mut(&mut self) -> &mut ObjectMeta;

    /// The collection path: `/api/v1/namespaces/{ns}/pods`, `/apis/apps/v1/deployments`, ...
    ///
    /// `namespace` is ignored for cluster-scoped kinds; `None` for a namespaced kind is the
    /// all-namespaces collection. The namespace is percent-encoded as a path segment.
    fn url_path(dt: &Self::DynamicType, namespace: Option<&str>) -> String {
        let namespace = if Self::is_namespaced(dt) { namespace } else { None };
        collection_path(&Self::group(dt), &Self::version(dt), &Self::plural(dt), namespace)
    }
}

/// Builds a collection path from its parts, with a single allocation. The namespace is
/// percent-encoded as a path segment.
pub(crate) fn collection_path(group: &str, version: &str, plural: &str, namespace: Option<&str>) -> String {
    let ns_len = namespace.map_or(0, |n| n.len() + 12);
    let mut s = String::with_capacity(8 + group.len() + version.len() + ns_len + plural.len() + 48);
    if group.is_empty() {
        s.push_str("/api/");
    } else {
        s.push_str("/apis/");
        s.push_str(group);
        s.push('/');
    }
    s.push_str(version);
    if let Some(ns) = namespace {
        s.push_str("/namespaces/");
        crate::params::encode_path_segment(&mut s, ns);
    }
    s.push('/');
    s.push_str(plural);
    s
}

impl<K> Resource for K
where
    K: k8s_openapi::Resource + k8s_openapi::Metadata<Ty = ObjectMeta>,
    K::Scope: KnownScope,
{
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(K::KIND)
    }
    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(K::GROUP)
    }
    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(K::VERSION)
    }
    fn api_version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(K::API_VERSION)
    }
    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(K::URL_PATH_SEGMENT)
    }
    fn is_namespaced(_: &()) -> bool {
        <K::Scope as KnownScope>::NAMESPACED
    }
    fn meta(&self) -> &ObjectMeta {
        self.metadata()
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        self.metadata_mut()
    }
}

/// Type information for a kind known only at run time: a custom resource, or anything found by
/// discovery.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApiResource {
    /// API group, empty for the core group.
    pub group: String,
    /// Version, such as `v1`.
    pub version: String,
    /// `group/version`, or `version` for the core group.
    pub api_version: String,
    /// Kind, such as `Widget`.
    pub kind: String,
    /// Plural resource name used in URLs, such as `widgets`.
    pub plural: String,
    /// Whether objects of this kind live in a namespace.
    pub namespaced: bool,
}

impl ApiResource {
    /// Type information from its parts.
    pub fn new(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> Self {
        let api_version = if group.is_empty() { version.to_owned() } else { format!("{group}/{version}") };
        ApiResource {
            group: group.to_owned(),
            version: version.to_owned(),
            api_version,
            kind: kind.to_owned(),
            plural: plural.to_owned(),
            namespaced,
        }
    }

    /// Type information from group, version and kind, guessing the plural the way
    /// Kubernetes' own heuristic does (`Policy` -> `policies`, `Ingress` -> `ingresses`).
    /// Prefer [`ApiResource::new`] with the plural from discovery or the CRD when you have it.
    pub fn from_gvk(group: &str, version: &str, kind: &str, namespaced: bool) -> Self {
        Self::new(group, version, kind, &guess_plural(kind), namespaced)
    }

    /// The type information of a static resource type.
    pub fn erase<K: Resource>(dt: &K::DynamicType) -> Self {
        ApiResource {
            group: K::group(dt).into_owned(),
            version: K::version(dt).into_owned(),
            api_version: K::api_version(dt).into_owned(),
            kind: K::kind(dt).into_owned(),
            plural: K::plural(dt).into_owned(),
            namespaced: K::is_namespaced(dt),
        }
    }
}

/// Guesses the plural resource name of a kind, as `k8s.io/apimachinery`'s
/// `UnsafeGuessKindToResource` does.
pub fn guess_plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if lower.is_empty() {
        return lower;
    }
    if lower == "endpoints" {
        return lower;
    }
    if lower.ends_with('s')
        || lower.ends_with("ch")
        || lower.ends_with("sh")
        || lower.ends_with('x')
        || lower.ends_with('z')
    {
        return format!("{lower}es");
    }
    if let Some(stem) = lower.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
    {
        return format!("{stem}ies");
    }
    format!("{lower}s")
}

/// `apiVersion` and `kind`, as they appear at the top of every object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeMeta {
    /// `group/version`, or `version` for the core group.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// The kind.
    pub kind: String,
}

impl TypeMeta {
    /// The `TypeMeta` of a resource type.
    pub fn resource<K: Resource>(dt: &K::DynamicType) -> Self {
        TypeMeta { api_version: K::api_version(dt).into_owned(), kind: K::kind(dt).into_owned() }
    }
}

/// An object of any kind, with its fields other than `apiVersion`, `kind` and `metadata` kept
/// as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DynamicObject {
    /// `apiVersion` and `kind`; absent on list items.
    #[serde(flatten, default)]
    pub types: Option<TypeMeta>,
    /// The object's metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Everything else (`spec`, `status`, `data`, ...).
    #[serde(flatten)]
    pub data: serde_json::Value,
}

impl DynamicObject {
    /// A new object of the given type with the given name.
    pub fn new(name: &str, resource: &ApiResource) -> Self {
        DynamicObject {
            types: Some(TypeMeta { api_version: resource.api_version.clone(), kind: resource.kind.clone() }),
            metadata: ObjectMeta { name: Some(name.to_owned()), ..ObjectMeta::default() },
            data: serde_json::Value::Object(serde_json::Map::new()),
        }
    }

    /// Sets the namespace.
    #[must_use]
    pub fn within(mut self, namespace: &str) -> Self {
        self.metadata.namespace = Some(namespace.to_owned());
        self
    }

    /// Sets the fields other than `apiVersion`, `kind` and `metadata`.
    #[must_use]
    pub fn data(mut self, data: serde_json::Value) -> Self {
        self.data = data;
        self
    }

    /// Converts into a typed object by a JSON round trip.
    pub fn try_parse<K: serde::de::DeserializeOwned>(self) -> Result<K, serde_json::Error> {
        serde_json::from_value(serde_json::to_value(self)?)
    }
}

impl Resource for DynamicObject {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        Cow::Borrowed(&dt.kind)
    }
    fn group(dt: &ApiResource) -> Cow<'_, str> {
        Cow::Borrowed(&dt.group)
    }
    fn version(dt: &ApiResource) -> Cow<'_, str> {
        Cow::Borrowed(&dt.version)
    }
    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        Cow::Borrowed(&dt.api_version)
    }
    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        Cow::Borrowed(&dt.plural)
    }
    fn is_namespaced(dt: &ApiResource) -> bool {
        dt.namespaced
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// An object's metadata only, as served for `Accept: ...;as=PartialObjectMetadata`.
///
/// The type parameter names the kind whose metadata this is, so that URLs are built for it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct PartialObjectMeta<K = DynamicObject> {
    /// `meta.k8s.io/v1` `PartialObjectMetadata`; absent on list items.
    #[serde(flatten, default)]
    pub types: Option<TypeMeta>,
    /// The object's metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(skip)]
    _kind: PhantomData<fn() -> K>,
}

impl<K> PartialObjectMeta<K> {
    /// Metadata-only view of an object with the given metadata.
    pub fn new(metadata: ObjectMeta) -> Self {
        PartialObjectMeta { types: None, metadata, _kind: PhantomData }
    }
}

impl<K> Clone for PartialObjectMeta<K> {
    fn clone(&self) -> Self {
        PartialObjectMeta { types: self.types.clone(), metadata: self.metadata.clone(), _kind: PhantomData }
    }
}

impl<K> PartialEq for PartialObjectMeta<K> {
    fn eq(&self, other: &Self) -> bool {
        self.types == other.types && self.metadata == other.metadata
    }
}

impl<K: Resource> Resource for PartialObjectMeta<K> {
    type DynamicType = K::DynamicType;
    type Scope = K::Scope;

    fn kind(dt: &K::DynamicType) -> Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &K::DynamicType) -> Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &K::DynamicType) -> Cow<'_, str> {
        K::version(dt)
    }
    fn api_version(dt: &K::DynamicType) -> Cow<'_, str> {
        K::api_version(dt)
    }
    fn plural(dt: &K::DynamicType) -> Cow<'_, str> {
        K::plural(dt)
    }
    fn is_namespaced(dt: &K::DynamicType) -> bool {
        K::is_namespaced(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

static EMPTY_MAP: BTreeMap<String, String> = BTreeMap::new();

/// Convenience accessors for every [`Resource`].
pub trait ResourceExt: Resource {
    /// The name, or the `generateName` prefix when the server has not named it yet, or `""`.
    fn name_any(&self) -> String {
        let m = self.meta();
        m.name.clone().or_else(|| m.generate_name.clone()).unwrap_or_default()
    }
    /// The name, if set.
    fn name(&self) -> Option<&str> {
        self.meta().name.as_deref()
    }
    /// The namespace, if set.
    fn namespace(&self) -> Option<&str> {
        self.meta().namespace.as_deref()
    }
    /// The resourceVersion, if set.
    fn resource_version(&self) -> Option<&str> {
        self.meta().resource_version.as_deref()
    }
    /// The uid, if set.
    fn uid(&self) -> Option<&str> {
        self.meta().uid.as_deref()
    }
    /// The labels (empty when unset).
    fn labels(&self) -> &BTreeMap<String, String> {
        self.meta().labels.as_ref().unwrap_or(&EMPTY_MAP)
    }
    /// The labels, creating the map if needed.
    fn labels_mut(&mut self) -> &mut BTreeMap<String, String> {
        self.meta_mut().labels.get_or_insert_with(BTreeMap::new)
    }
    /// The annotations (empty when unset).
    fn annotations(&self) -> &BTreeMap<String, String> {
        self.meta().annotations.as_ref().unwrap_or(&EMPTY_MAP)
    }
    /// The annotations, creating the map if needed.
    fn annotations_mut(&mut self) -> &mut BTreeMap<String, String> {
        self.meta_mut().annotations.get_or_insert_with(BTreeMap::new)
    }
    /// The finalizers (empty when unset).
    fn finalizers(&self) -> &[String] {
        self.meta().finalizers.as_deref().unwrap_or(&[])
    }
    /// The owner references (empty when unset).
    fn owner_references(&self) -> &[OwnerReference] {
        self.meta().owner_references.as_deref().unwrap_or(&[])
    }
    /// Whether the object is being deleted (`metadata.deletionTimestamp` is set).
    fn is_terminating(&self) -> bool {
        self.meta().deletion_timestamp.is_some()
    }
}

impl<K: Resource> ResourceExt for K {}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{Node, Pod};

    #[test]
    fn typed_paths() {
        assert_eq!(Pod::url_path(&(), Some("default")), "/api/v1/namespaces/default/pods");
        assert_eq!(Pod::url_path(&(), None), "/api/v1/pods");
        assert_eq!(Node::url_path(&(), Some("ignored")), "/api/v1/nodes");
        assert_eq!(Deployment::url_path(&(), Some("a")), "/apis/apps/v1/namespaces/a/deployments");
    }

    #[test]
    fn dynamic_paths() {
        let ar = ApiResource::new("example.com", "v1", "Widget", "widgets", true);
        assert_eq!(ar.api_version, "example.com/v1");
        assert_eq!(DynamicObject::url_path(&ar, Some("ns")), "/apis/example.com/v1/namespaces/ns/widgets");
        assert_eq!(ApiResource::erase::<Pod>(&()), ApiResource::new("", "v1", "Pod", "pods", true));
    }

    #[test]
    fn plurals_follow_the_apimachinery_heuristic() {
        for (kind, plural) in [
            ("Pod", "pods"),
            ("Ingress", "ingresses"),
            ("NetworkPolicy", "networkpolicies"),
            ("Gateway", "gateways"),
            ("Endpoints", "endpoints"),
            ("Box", "boxes"),
            ("Patch", "patches"),
        ] {
            assert_eq!(guess_plural(kind), plural, "{kind}");
        }
    }

    #[test]
    fn dynamic_object_round_trip() {
        let json = r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w1"},"spec":{"color":"red"}}"#;
        let obj: DynamicObject = serde_json::from_str(json).unwrap();
        assert_eq!(obj.types.as_ref().unwrap().kind, "Widget");
        assert_eq!(obj.name_any(), "w1");
        assert_eq!(obj.data["spec"]["color"], "red");
        let back: serde_json::Value = serde_json::to_value(&obj).unwrap();
        assert_eq!(back, serde_json::from_str::<serde_json::Value>(json).unwrap());
    }
}
