//! Refusing requests as a user without the permission would be refused: the fake has no
//! authentication or RBAC, but [`FakeApiServer::deny`] adds rules that answer matching requests
//! with 403 Forbidden, in the real server's `Status` shape, so that code can be tested against
//! missing permissions (a controller without RBAC for Events, a watch it may not open).
//!
//! ```
//! use std::time::Instant;
//! use k8s_openapi::api::events::v1::Event;
//! use kube_proto::{PostParams, Request};
//! use kube_proto_fake::access::DenyRule;
//! use kube_proto_fake::{FakeApiServer, FakeConfig, Reply};
//!
//! let t0 = Instant::now();
//! let mut server = FakeApiServer::new(FakeConfig::default(), t0);
//! let user = "system:serviceaccount:apps:ctl";
//! server.deny(DenyRule::new("events.k8s.io", "events").verbs(&["create", "patch"]).user(user));
//! let event: Event = serde_json::from_value(serde_json::json!({"metadata": {"name": "e"}})).unwrap();
//! let req = Request::namespaced::<Event>("apps").create(&PostParams::default(), &event).unwrap();
//! let Reply::Response(resp) = server.handle(t0, &req) else { panic!() };
//! assert_eq!(resp.status(), 403);
//! let body: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
//! assert_eq!(
//!     body["message"],
//!     "events.events.k8s.io is forbidden: User \"system:serviceaccount:apps:ctl\" cannot create resource \
//!      \"events\" in API group \"events.k8s.io\" in the namespace \"apps\""
//! );
//! ```
//!
//! Simpler than the real server: a rule is checked after the request is routed, so a request
//! for a resource the fake does not serve is answered 404 even where a rule would match it (the
//! real server authorizes first), and rules only deny (there is nothing to grant: everything not
//! denied is allowed).

use kube_proto::error::{Reason, Status, StatusDetails};

use crate::FakeApiServer;

/// The user named in the messages of rules that name none: the `default` service account of
/// the `default` namespace.
pub const DEFAULT_USER: &str = "system:serviceaccount:default:default";

/// What a request asks for, in the terms of RBAC: its verb, API group, resource (with
/// `/subresource`), namespace (empty at the cluster scope) and object name (empty for a
/// collection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete` or `deletecollection`.
    pub verb: &'static str,
    /// The API group (`""` for the core group).
    pub group: String,
    /// The plural resource name.
    pub resource: String,
    /// The subresource (`status`, `scale`, ...), or empty.
    pub subresource: String,
    /// The namespace, or empty at the cluster scope.
    pub namespace: String,
    /// The object's name, or empty.
    pub name: String,
}

/// A rule refusing requests: the verbs, the API group, the resource and, optionally, the
/// namespace it covers, and the user its refusals name. `"*"` as the group, the resource or a
/// verb matches any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenyRule {
    verbs: Vec<String>,
    group: String,
    resource: String,
    namespace: Option<String>,
    user: String,
}

impl DenyRule {
    /// Refuses every verb on `resource` (plural, such as `events`, or `plural/subresource`,
    /// such as `pods/log`, which, as in RBAC, a rule for the plural alone does not cover) of
    /// the API group `group` (`""` for the core group), in every namespace, to
    /// [`DEFAULT_USER`].
    pub fn new(group: &str, resource: &str) -> Self {
        DenyRule {
            verbs: vec!["*".to_owned()],
            group: group.to_owned(),
            resource: resource.to_owned(),
            namespace: None,
            user: DEFAULT_USER.to_owned(),
        }
    }

    /// Refuses only these verbs (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`).
    #[must_use]
    pub fn verbs(mut self, verbs: &[&str]) -> Self {
        self.verbs = verbs.iter().map(|v| (*v).to_owned()).collect();
        self
    }

    /// Refuses only in `namespace` (requests at the cluster scope are not covered).
    #[must_use]
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_owned());
        self
    }

    /// Names `user` in the refusal's message (such as
    /// `system:serviceaccount:<namespace>:<name>`).
    #[must_use]
    pub fn user(mut self, user: &str) -> Self {
        self.user = user.to_owned();
        self
    }

    /// Whether this rule refuses a request with these attributes.
    pub fn matches(&self, a: &Attributes) -> bool {
        let resource =
            if a.subresource.is_empty() { a.resource.clone() } else { format!("{}/{}", a.resource, a.subresource) };
        let any_or = |pattern: &str, value: &str| pattern == "*" || pattern == value;
        self.verbs.iter().any(|v| any_or(v, a.verb))
            && any_or(&self.group, &a.group)
            && any_or(&self.resource, &resource)
            && self.namespace.as_deref().is_none_or(|ns| ns == a.namespace)
    }

    /// The 403 the real server gives `user` for a request with these attributes.
    pub fn forbidden(&self, a: &Attributes) -> Status {
        forbidden(&self.user, a)
    }
}

/// The real server's 403 for `user` and a request with these attributes: the message names the
/// user, the verb, the resource (with its subresource), the API group and the namespace or the
/// cluster scope; the details name the group, the resource (as `kind`) and the object.
pub fn forbidden(user: &str, a: &Attributes) -> Status {
    let qualified = if a.group.is_empty() { a.resource.clone() } else { format!("{}.{}", a.resource, a.group) };
    let subject = if a.name.is_empty() { qualified } else { format!("{qualified} {:?}", a.name) };
    let resource =
        if a.subresource.is_empty() { a.resource.clone() } else { format!("{}/{}", a.resource, a.subresource) };
    let scope = if a.namespace.is_empty() {
        "at the cluster scope".to_owned()
    } else {
        format!("in the namespace {:?}", a.namespace)
    };
    let mut status = Status::failure(
        403,
        Reason::Forbidden,
        format!(
            "{subject} is forbidden: User {user:?} cannot {} resource {resource:?} in API group {:?} {scope}",
            a.verb, a.group
        ),
    );
    status.details = Some(StatusDetails {
        name: a.name.clone(),
        group: a.group.clone(),
        kind: a.resource.clone(),
        ..StatusDetails::default()
    });
    status
}

impl FakeApiServer {
    /// Refuses the requests `rule` matches with 403 Forbidden from now on (see the
    /// [`access`](self) module). Rules add up: a request any rule matches is refused, in the
    /// words of the first one added.
    pub fn deny(&mut self, rule: DenyRule) {
        self.denials.push(rule);
    }

    /// Removes every rule added by [`deny`](Self::deny): everything is allowed again.
    pub fn allow_all(&mut self) {
        self.denials.clear();
    }

    /// The refusal of the first rule matching `a`, if any.
    pub(crate) fn refusal(&self, a: &Attributes) -> Option<Status> {
        self.denials.iter().find(|r| r.matches(a)).map(|r| r.forbidden(a))
    }
}
