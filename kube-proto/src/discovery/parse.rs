//! The discovery requests and documents: aggregated (`APIGroupDiscoveryList`) and legacy
//! (`APIVersions`, `APIGroupList`, `APIGroup`, `APIResourceList`), read into one model.

use http::header::{ACCEPT, HeaderValue};
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;

use super::{ApiGroup, Freshness, GroupVersion, ResourceInfo, Subresource};
use crate::resource::ApiResource;
use crate::response::null_as_empty;

/// `Accept` for aggregated discovery: `apidiscovery.k8s.io/v2`, then `v2beta1` (the beta that
/// older servers serve, of the same shape), then plain JSON: a server that knows neither
/// answers with the legacy document instead of refusing (a 1.36 server refuses a request that
/// names only `v2beta1` with 406 NotAcceptable).
pub const ACCEPT_AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";

/// `Accept` for the legacy documents.
pub const ACCEPT_LEGACY: &str = "application/json";

fn get(path: String, accept: &'static str) -> http::Request<Vec<u8>> {
    let mut req = http::Request::new(Vec::new());
    *req.method_mut() = Method::GET;
    *req.uri_mut() = path.parse().unwrap_or_else(|_| http::Uri::from_static("/"));
    req.headers_mut().insert(ACCEPT, HeaderValue::from_static(accept));
    req
}

/// `GET /api`: the core group, aggregated when `aggregated` (else its versions, `APIVersions`).
pub fn api_request(aggregated: bool) -> http::Request<Vec<u8>> {
    get("/api".to_owned(), if aggregated { ACCEPT_AGGREGATED } else { ACCEPT_LEGACY })
}

/// `GET /apis`: every other group, aggregated when `aggregated` (else `APIGroupList`).
pub fn apis_request(aggregated: bool) -> http::Request<Vec<u8>> {
    get("/apis".to_owned(), if aggregated { ACCEPT_AGGREGATED } else { ACCEPT_LEGACY })
}

/// `GET /api/{version}` (core group) or `/apis/{group}/{version}`: an `APIResourceList`.
pub fn group_version_request(group: &str, version: &str) -> http::Request<Vec<u8>> {
    let mut path = String::with_capacity(group.len() + version.len() + 8);
    if group.is_empty() {
        path.push_str("/api/");
    } else {
        path.push_str("/apis/");
        crate::params::encode_path_segment(&mut path, group);
        path.push('/');
    }
    crate::params::encode_path_segment(&mut path, version);
    get(path, ACCEPT_LEGACY)
}

/// A discovery document, read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Document {
    /// `APIGroupDiscoveryList`: groups with all their resources.
    Aggregated(Vec<ApiGroup>),
    /// `APIVersions` (`/api`): the core group's versions.
    CoreVersions(Vec<String>),
    /// `APIGroupList` (`/apis`), or one `APIGroup` (`/apis/{group}`): groups with their versions,
    /// the preferred first, and no resources yet.
    Groups(Vec<ApiGroup>),
    /// `APIResourceList` (`/api/{v}`, `/apis/{g}/{v}`): one group version's resources.
    Resources {
        /// The group, empty for the core group.
        group: String,
        /// The version and its resources.
        version: GroupVersion,
    },
}

/// Reads a successful discovery answer (any of the documents), by its `kind`. An error status
/// is not read here: see [`Response::error`](crate::Response::error).
pub fn parse_document(body: &[u8]) -> Result<Document, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("not a discovery document: {e}"))?;
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    let read = |e: serde_json::Error| format!("an unreadable {kind}: {e}");
    match kind {
        "APIGroupDiscoveryList" => {
            let list = AggregatedList::deserialize(&value).map_err(read)?;
            Ok(Document::Aggregated(list.items.into_iter().map(AggregatedGroup::into_group).collect()))
        }
        "APIVersions" => Ok(Document::CoreVersions(ApiVersions::deserialize(&value).map_err(read)?.versions)),
        "APIGroupList" => {
            let list = LegacyGroupList::deserialize(&value).map_err(read)?;
            Ok(Document::Groups(list.groups.into_iter().map(LegacyGroup::into_group).collect()))
        }
        "APIGroup" => Ok(Document::Groups(vec![LegacyGroup::deserialize(&value).map_err(read)?.into_group()])),
        "APIResourceList" => {
            let list = LegacyResourceList::deserialize(&value).map_err(read)?;
            Ok(list.into_document())
        }
        "" => Err("not a discovery document: it has no kind".to_owned()),
        other => Err(format!("not a discovery document: its kind is {other:?}")),
    }
}

/// Whether a status means the `Accept` was refused.
pub(super) fn is_not_acceptable(status: StatusCode) -> bool {
    status == StatusCode::NOT_ACCEPTABLE
}

// ---- Aggregated discovery ----

#[derive(Deserialize)]
struct AggregatedList {
    #[serde(default, deserialize_with = "null_as_empty")]
    items: Vec<AggregatedGroup>,
}

#[derive(Deserialize, Default)]
struct NameOnly {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct AggregatedGroup {
    #[serde(default)]
    metadata: NameOnly,
    #[serde(default, deserialize_with = "null_as_empty")]
    versions: Vec<AggregatedVersion>,
}

#[derive(Deserialize)]
struct AggregatedVersion {
    version: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    resources: Vec<AggregatedResource>,
    #[serde(default)]
    freshness: Option<String>,
}

#[derive(Deserialize, Default)]
struct Gvk {
    #[serde(default)]
    group: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    kind: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AggregatedResource {
    resource: String,
    #[serde(default)]
    response_kind: Option<Gvk>,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    singular_resource: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    verbs: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    short_names: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    categories: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    subresources: Vec<AggregatedSubresource>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AggregatedSubresource {
    subresource: String,
    #[serde(default)]
    response_kind: Option<Gvk>,
    #[serde(default, deserialize_with = "null_as_empty")]
    verbs: Vec<String>,
}

impl AggregatedGroup {
    fn into_group(self) -> ApiGroup {
        let group = self.metadata.name;
        let versions = self
            .versions
            .into_iter()
            .map(|v| {
                let resources = v.resources.into_iter().filter_map(|r| r.into_info(&group, &v.version)).collect();
                let freshness = match v.freshness.as_deref() {
                    Some("Stale") => Freshness::Stale,
                    _ => Freshness::Current,
                };
                GroupVersion { version: v.version, resources, freshness }
            })
            .collect();
        ApiGroup { name: group, versions }
    }
}

/// A subresource's response kind, its empty group and version meaning the resource's own.
fn subresource(
    name: String,
    gvk: Option<Gvk>,
    verbs: Vec<String>,
    group: &str,
    version: &str,
    kind: &str,
) -> Subresource {
    let gvk = gvk.unwrap_or_default();
    let (sub_group, sub_version) =
        if gvk.version.is_empty() { (group.to_owned(), version.to_owned()) } else { (gvk.group, gvk.version) };
    let kind = if gvk.kind.is_empty() { kind.to_owned() } else { gvk.kind };
    Subresource { name, group: sub_group, version: sub_version, kind, verbs }
}

impl AggregatedResource {
    /// The resource, or `None` when it names no kind (nothing could be made of its objects).
    fn into_info(self, group: &str, version: &str) -> Option<ResourceInfo> {
        let kind = self.response_kind.map(|k| k.kind).filter(|k| !k.is_empty())?;
        let namespaced = self.scope == "Namespaced";
        let singular = if self.singular_resource.is_empty() { kind.to_lowercase() } else { self.singular_resource };
        let subresources = self
            .subresources
            .into_iter()
            .map(|s| subresource(s.subresource, s.response_kind, s.verbs, group, version, &kind))
            .collect();
        Some(ResourceInfo {
            resource: ApiResource::new(group, version, &kind, &self.resource, namespaced),
            singular,
            short_names: self.short_names,
            categories: self.categories,
            verbs: self.verbs,
            subresources,
        })
    }
}

// ---- Legacy discovery ----

#[derive(Deserialize)]
struct ApiVersions {
    #[serde(default, deserialize_with = "null_as_empty")]
    versions: Vec<String>,
}

#[derive(Deserialize)]
struct LegacyGroupList {
    #[serde(default, deserialize_with = "null_as_empty")]
    groups: Vec<LegacyGroup>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VersionForDiscovery {
    version: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LegacyGroup {
    name: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    versions: Vec<VersionForDiscovery>,
    #[serde(default)]
    preferred_version: Option<VersionForDiscovery>,
}

impl LegacyGroup {
    fn into_group(self) -> ApiGroup {
        let mut versions: Vec<GroupVersion> = self
            .versions
            .into_iter()
            .map(|v| GroupVersion { version: v.version, resources: Vec::new(), freshness: Freshness::Current })
            .collect();
        if let Some(p) = self.preferred_version
            && let Some(i) = versions.iter().position(|v| v.version == p.version)
        {
            let preferred = versions.remove(i);
            versions.insert(0, preferred);
        }
        ApiGroup { name: self.name, versions }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LegacyResourceList {
    group_version: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    resources: Vec<LegacyResource>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LegacyResource {
    name: String,
    #[serde(default)]
    singular_name: String,
    #[serde(default)]
    namespaced: bool,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    kind: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    verbs: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    short_names: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    categories: Vec<String>,
}

impl LegacyResourceList {
    fn into_document(self) -> Document {
        let (group, version) = match self.group_version.split_once('/') {
            Some((g, v)) => (g.to_owned(), v.to_owned()),
            None => (String::new(), self.group_version.clone()),
        };
        let mut resources: Vec<ResourceInfo> = Vec::new();
        let mut subs: Vec<(String, LegacyResource)> = Vec::new();
        for r in self.resources {
            if let Some((parent, _)) = r.name.split_once('/') {
                subs.push((parent.to_owned(), r));
                continue;
            }
            let singular = if r.singular_name.is_empty() { r.kind.to_lowercase() } else { r.singular_name };
            resources.push(ResourceInfo {
                resource: ApiResource::new(&group, &version, &r.kind, &r.name, r.namespaced),
                singular,
                short_names: r.short_names,
                categories: r.categories,
                verbs: r.verbs,
                subresources: Vec::new(),
            });
        }
        for (parent, r) in subs {
            let Some(p) = resources.iter_mut().find(|p| p.resource.plural == parent) else { continue };
            let name = r.name.split_once('/').map_or("", |(_, s)| s).to_owned();
            let gvk = Gvk { group: r.group.unwrap_or_default(), version: r.version.unwrap_or_default(), kind: r.kind };
            p.subresources.push(subresource(name, Some(gvk), r.verbs, &group, &version, &p.resource.kind));
        }
        Document::Resources { group, version: GroupVersion { version, resources, freshness: Freshness::Current } }
    }
}

/// The resources a CustomResourceDefinition declares, one per served version, in the order of
/// its versions: what discovery will list once the CRD is Established (its names as written in
/// `spec.names`). Empty when the object is not a CRD with a group, kind and plural.
pub fn crd_resources(crd: &Value) -> Vec<ResourceInfo> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let (Some(group), Some(kind), Some(plural)) =
        (spec["group"].as_str(), names["kind"].as_str(), names["plural"].as_str())
    else {
        return Vec::new();
    };
    let strings = |v: &Value| -> Vec<String> {
        v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_owned)).collect()
    };
    let singular = names["singular"].as_str().map_or_else(|| kind.to_lowercase(), str::to_owned);
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    let mut out = Vec::new();
    for v in spec["versions"].as_array().into_iter().flatten() {
        let Some(version) = v["name"].as_str() else { continue };
        if v["served"].as_bool() == Some(false) {
            continue;
        }
        let mut subresources = Vec::new();
        let sub = &v["subresources"];
        if sub.get("status").is_some() {
            subresources.push(Subresource {
                name: "status".into(),
                group: group.into(),
                version: version.into(),
                kind: kind.into(),
                verbs: vec!["get".into(), "patch".into(), "update".into()],
            });
        }
        if sub.get("scale").is_some() {
            subresources.push(Subresource {
                name: "scale".into(),
                group: "autoscaling".into(),
                version: "v1".into(),
                kind: "Scale".into(),
                verbs: vec!["get".into(), "patch".into(), "update".into()],
            });
        }
        out.push(ResourceInfo {
            resource: ApiResource::new(group, version, kind, plural, namespaced),
            singular: singular.clone(),
            short_names: strings(&names["shortNames"]),
            categories: strings(&names["categories"]),
            verbs: ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"]
                .map(str::to_owned)
                .to_vec(),
            subresources,
        });
    }
    out
}
