//! Discovery: what an API server serves, and what a person means by `po`, `deploy` or
//! `cronjobs.v1.batch`.
//!
//! - [`Fetch`] asks for it: aggregated discovery (`apidiscovery.k8s.io/v2`, two requests for the
//!   whole server) negotiated with `Accept`, falling back to the legacy documents (`/api`,
//!   `/apis`, then one request per group version) when the server answers with those. It is a
//!   small state machine: the caller sends the requests it hands out, in any order or all at
//!   once, and feeds each answer back.
//! - [`Catalog`] is the result: groups, their versions in the server's order of preference, and
//!   each resource's kind, singular, short names, categories, scope, verbs and subresources
//!   ([`ResourceInfo`]).
//! - [`Catalog::resolve`] turns what a person types into a resource as kubectl's REST mapper
//!   does (see there); [`Catalog::resolve_kind`] finds the resource of an `apiVersion` and
//!   `kind`, as applying a manifest needs.
//!
//! ```
//! use kube_proto::discovery::{Catalog, Fetch, ResolveError};
//!
//! let mut fetch = Fetch::new();
//! let mut sent = Vec::new();
//! while let Some((id, request)) = fetch.poll_request() {
//!     sent.push((id, request.uri().to_string()));
//! }
//! assert_eq!(sent.iter().map(|(_, uri)| uri.as_str()).collect::<Vec<_>>(), ["/api", "/apis"]);
//! // ... send them, then for each answer:
//! // fetch.on_response(id, status, &headers, &body)?;
//! // and once fetch.is_done(): let catalog = fetch.finish()?;
//! ```
//!
//! Where a version of a group cannot be read (an aggregated API whose backend is down answers
//! 503), the rest is still read, and [`Catalog::failures`] says what is missing, as kubectl does.

mod fetch;
mod parse;
mod resolve;

pub use fetch::{Fetch, RequestId};

/// Whether an error answer means that the resource itself is not served (any more): a 404 that
/// is the plain `404 page not found`, or a `Status` naming no object (`the server could not find
/// the requested resource`), as opposed to a 404 for one object that does not exist. Discovery
/// that resolved to such a resource is out of date (its CRD was deleted, its version removed).
pub fn is_resource_not_served(error: &ResponseError) -> bool {
    error.is_not_found() && error.api_status().is_none_or(|s| s.details.as_ref().is_none_or(|d| d.name.is_empty()))
}
pub use parse::{
    ACCEPT_AGGREGATED, ACCEPT_LEGACY, Document, api_request, apis_request, crd_resources, group_version_request,
    parse_document,
};

use crate::error::ResponseError;
use crate::resource::ApiResource;

/// Whether a resource's objects live in a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Objects live in a namespace (`Namespaced`).
    Namespaced,
    /// Objects are cluster-wide (`Cluster`).
    Cluster,
}

impl Scope {
    /// The scope as discovery spells it: `Namespaced` or `Cluster`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Namespaced => "Namespaced",
            Scope::Cluster => "Cluster",
        }
    }
}

/// A subresource of a resource, such as `pods/log` or `deployments/scale`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subresource {
    /// The subresource's name: `status`, `scale`, `log`, `exec`, ...
    pub name: String,
    /// The group of the kind it answers with (`autoscaling` for `scale`), empty for the core group.
    pub group: String,
    /// The version of the kind it answers with.
    pub version: String,
    /// The kind it answers with (`Scale`, `Eviction`, the resource's own kind for `status`).
    pub kind: String,
    /// The verbs it supports.
    pub verbs: Vec<String>,
}

/// One resource of one group version, as discovery describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInfo {
    /// Group, version, kind, plural and whether it is namespaced: what [`DynamicObject`]s of it
    /// need (`Api::<DynamicObject>::all_with(client, &info.resource)`).
    ///
    /// [`DynamicObject`]: crate::DynamicObject
    pub resource: ApiResource,
    /// The singular name, such as `pod` (the lower-case kind when the server gave none).
    pub singular: String,
    /// Short names, such as `po` or `deploy`.
    pub short_names: Vec<String>,
    /// Categories it belongs to, such as `all`.
    pub categories: Vec<String>,
    /// The verbs it supports: `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`.
    pub verbs: Vec<String>,
    /// Its subresources.
    pub subresources: Vec<Subresource>,
}

impl ResourceInfo {
    /// The scope.
    pub fn scope(&self) -> Scope {
        if self.resource.namespaced { Scope::Namespaced } else { Scope::Cluster }
    }

    /// Whether it supports `verb` (`list`, `watch`, ...).
    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// The subresource `name`, if it has one.
    pub fn subresource(&self, name: &str) -> Option<&Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// The plural with its group, as the API server names it: `deployments.apps`, or `pods`.
    pub fn qualified_name(&self) -> String {
        let r = &self.resource;
        if r.group.is_empty() { r.plural.clone() } else { format!("{}.{}", r.plural, r.group) }
    }

    /// The plural with its version and group, as kubectl accepts it: `cronjobs.v1.batch`, or
    /// `pods.v1.` for the core group.
    pub fn full_name(&self) -> String {
        let r = &self.resource;
        format!("{}.{}.{}", r.plural, r.version, r.group)
    }
}

/// Whether discovery's view of a group version is up to date (aggregated discovery only: an
/// aggregated API whose backend did not answer is `Stale`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Up to date.
    Current,
    /// The server could not refresh it: its resources may be out of date.
    Stale,
}

/// One version of a group, with its resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupVersion {
    /// The version, such as `v1`.
    pub version: String,
    /// Its resources (subresources are inside their resource).
    pub resources: Vec<ResourceInfo>,
    /// Whether this view is up to date.
    pub freshness: Freshness,
}

/// An API group with its versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiGroup {
    /// The group's name, empty for the core group.
    pub name: String,
    /// Its versions in the server's order of preference: the first is the preferred version.
    pub versions: Vec<GroupVersion>,
}

impl ApiGroup {
    /// The preferred version.
    pub fn preferred_version(&self) -> Option<&GroupVersion> {
        self.versions.first()
    }

    /// The version `version`, if served.
    pub fn version(&self, version: &str) -> Option<&GroupVersion> {
        self.versions.iter().find(|v| v.version == version)
    }
}

/// A group version that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupVersionFailure {
    /// `group/version`, or `v1` for the core group.
    pub group_version: String,
    /// What the server answered.
    pub error: ResponseError,
}

/// What a server serves, as discovery told it: groups in the server's order (the core group
/// first), each with its versions in order of preference.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Catalog {
    groups: Vec<ApiGroup>,
    failures: Vec<GroupVersionFailure>,
}

impl Catalog {
    /// A catalog of these groups, in this order (the core group, named `""`, is moved first).
    pub fn new(mut groups: Vec<ApiGroup>) -> Self {
        if let Some(core) = groups.iter().position(|g| g.name.is_empty()) {
            let core = groups.remove(core);
            groups.insert(0, core);
        }
        Catalog { groups, failures: Vec::new() }
    }

    /// Records group versions that could not be read.
    #[must_use]
    pub fn with_failures(mut self, failures: Vec<GroupVersionFailure>) -> Self {
        self.failures = failures;
        self
    }

    /// The groups, the core group first.
    pub fn groups(&self) -> &[ApiGroup] {
        &self.groups
    }

    /// The group `name` (`""` for the core group).
    pub fn group(&self, name: &str) -> Option<&ApiGroup> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The group versions that could not be read.
    pub fn failures(&self) -> &[GroupVersionFailure] {
        &self.failures
    }

    /// Every resource of every version.
    pub fn resources(&self) -> impl Iterator<Item = &ResourceInfo> + '_ {
        self.groups.iter().flat_map(|g| &g.versions).flat_map(|v| &v.resources)
    }

    /// Every resource once, in the preferred version of its group that serves it (the resources
    /// kubectl lists in `kubectl api-resources`).
    pub fn preferred_resources(&self) -> Vec<&ResourceInfo> {
        let mut out: Vec<&ResourceInfo> = Vec::new();
        for g in &self.groups {
            let start = out.len();
            for r in g.versions.iter().flat_map(|v| &v.resources) {
                if !out[start..].iter().any(|o| o.resource.plural == r.resource.plural) {
                    out.push(r);
                }
            }
        }
        out
    }

    /// The resources of a category (`all`: what `kubectl get all` lists), each in the preferred
    /// version that serves it.
    pub fn category(&self, category: &str) -> Vec<&ResourceInfo> {
        self.preferred_resources().into_iter().filter(|r| r.categories.iter().any(|c| c == category)).collect()
    }

    /// The resource of group, version and plural, if served.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceInfo> {
        self.group(group)?.version(version)?.resources.iter().find(|r| r.resource.plural == plural)
    }
}

/// What a name given to [`Catalog::resolve`] or [`Catalog::resolve_kind`] could not be turned into.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// No resource has this name, singular, short name or kind.
    #[error("the server doesn't have a resource type {name:?}")]
    Unknown {
        /// The name given.
        name: String,
    },
    /// The name matches resources of several groups, none of them the core group: say which
    /// one is meant with its group (`widgets.example.com`).
    #[error("{name:?} is ambiguous: it matches {}; name one with its group", candidates.join(", "))]
    Ambiguous {
        /// The name given.
        name: String,
        /// The matching resources, as `plural.version.group`, in the server's group order.
        candidates: Vec<String>,
    },
    /// No served resource has this `apiVersion` and `kind`.
    #[error("no matches for kind {kind:?} in version {api_version:?}")]
    UnknownKind {
        /// The `apiVersion` given.
        api_version: String,
        /// The `kind` given.
        kind: String,
    },
    /// The name is empty or not a resource name.
    #[error("invalid resource name {name:?}: {reason}")]
    Invalid {
        /// The name given.
        name: String,
        /// Why.
        reason: &'static str,
    },
}

/// Why discovery failed as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// `/api` or `/apis` answered with an error (a 403 without credentials, ...).
    #[error("discovery of {path}: {error}")]
    Api {
        /// The path asked.
        path: String,
        /// What the server answered.
        error: ResponseError,
    },
    /// An answer was not the document asked for.
    #[error("discovery of {path}: {message}")]
    Unexpected {
        /// The path asked.
        path: String,
        /// What was wrong with it.
        message: String,
    },
    /// [`Fetch::on_response`] was given an id it did not hand out, or was answered twice.
    #[error("no discovery request {0:?} is waiting for an answer")]
    UnknownRequest(RequestId),
    /// [`Fetch::finish`] was called while requests were outstanding.
    #[error("discovery is not finished: {0} requests are outstanding")]
    NotFinished(usize),
    /// A name could not be resolved.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
}
