//! The verbs: get, list, create, replace, patch, delete, deletecollection and subresources.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::context::{Call, Query, Write};
use super::kinds::{self, KindInfo};
use super::patch;
use super::store::{Change, KindId, ObjKey};
use super::{
    FakeApiServer, HResult, Route, arc, bad_request, conflict, details, invalid, not_found, options_invalid,
    too_large_rv,
};
use kube_proto::error::{Reason, Status, StatusCause, StatusDetails};
use kube_proto::selector::{FieldSelector, LabelSelector, is_dns1123_subdomain};

/// Options of a delete, from the body and the query.
#[derive(Debug, Default, Clone)]
pub(super) struct DeleteOpts {
    pub dry_run: bool,
    pub grace: Option<i64>,
    pub propagation: Option<String>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

pub(super) fn meta(v: &Value) -> &Value {
    &v["metadata"]
}

fn meta_str<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    v["metadata"][field].as_str()
}

fn meta_mut(v: &mut Value) -> &mut Map<String, Value> {
    if !v["metadata"].is_object() {
        v["metadata"] = Value::Object(Map::new());
    }
    v["metadata"].as_object_mut().expect("metadata was just made an object")
}

fn finalizers(v: &Value) -> Vec<String> {
    v["metadata"]["finalizers"]
        .as_array()
        .map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

fn is_dns1123_label(s: &str) -> bool {
    s.len() <= 63 && !s.contains('.') && is_dns1123_subdomain(s)
}

fn content_type(req: &http::Request<Vec<u8>>) -> &str {
    req.headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .map(str::trim)
        .unwrap_or("")
}

/// The labels of an object as a map, for selector matching.
pub(super) fn labels_of(v: &Value) -> BTreeMap<String, String> {
    v["metadata"]["labels"]
        .as_object()
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
        .unwrap_or_default()
}

/// The fields a kind supports in field selectors (besides `metadata.name` and
/// `metadata.namespace`), as the real server defines them.
fn selectable_fields(kind: &KindInfo) -> &'static [&'static str] {
    match (kind.resource.group.as_str(), kind.resource.plural.as_str()) {
        ("", "pods") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ("", "secrets") => &["type"],
        ("", "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("", "nodes") => &["spec.unschedulable"],
        ("", "namespaces") => &["status.phase"],
        ("apps", "replicasets") => &["status.replicas"],
        ("batch", "jobs") => &["status.successful"],
        _ => &[],
    }
}

fn lookup_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |cur, seg| cur.get(seg))
}

/// A compiled list/watch filter.
#[derive(Debug, Clone)]
pub(super) struct Filter {
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Filter {
    pub(super) fn from_query(kind: &KindInfo, namespace: Option<&str>, q: &Query) -> Result<Self, Box<Status>> {
        let labels = LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))
            .map_err(|e| bad_request(format!("unable to parse requirement: {}", e.reason)))?;
        let fields = FieldSelector::parse(q.get("fieldSelector").map_or("", String::as_str))
            .map_err(|e| bad_request(format!("invalid field selector: {}", e.reason)))?;
        let supported = selectable_fields(kind);
        for r in &fields.requirements {
            if r.field != "metadata.name" && r.field != "metadata.namespace" && !supported.contains(&r.field.as_str()) {
                return Err(bad_request(format!("field label not supported: {}", r.field)));
            }
        }
        Ok(Filter { namespace: namespace.map(str::to_owned), labels, fields })
    }

    pub(super) fn matches(&self, v: &Value) -> bool {
        if let Some(ns) = &self.namespace
            && meta_str(v, "namespace") != Some(ns.as_str())
        {
            return false;
        }
        if !self.labels.requirements.is_empty() && !self.labels.matches(&labels_of(v)) {
            return false;
        }
        if self.fields.requirements.is_empty() {
            return true;
        }
        let mut scratch: Vec<String> = Vec::new();
        for r in &self.fields.requirements {
            let got = match lookup_path(v, &r.field) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Bool(b)) => b.to_string(),
                Some(Value::Number(n)) => n.to_string(),
                _ => String::new(),
            };
            scratch.push(got);
        }
        self.fields.requirements.iter().zip(&scratch).all(|(r, got)| match r.op {
            kube_proto::selector::FieldOp::Equals => *got == r.value,
            kube_proto::selector::FieldOp::NotEquals => *got != r.value,
        })
    }

    fn is_unfiltered(&self) -> bool {
        self.labels.requirements.is_empty() && self.fields.requirements.is_empty()
    }
}

fn encode_continue(rv: i64, start: &str) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{start}\u{0}")});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<(i64, String), Box<Status>> {
    let invalid = |why: String| bad_request(format!("invalid continue token: continue key is not valid: {why}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|e| invalid(e.to_string()))?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    if v["v"] != "meta.k8s.io/v1" {
        return Err(invalid("incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into()));
    }
    let rv = v["rv"].as_i64().ok_or_else(|| invalid("no resourceVersion".into()))?;
    let start = v["start"].as_str().ok_or_else(|| invalid("no start key".into()))?;
    Ok((rv, start.trim_end_matches('\u{0}').to_owned()))
}

fn parse_rv(s: &str) -> Result<u64, Box<Status>> {
    s.parse().map_err(|_| bad_request(format!("invalid resource version: {s:?}")))
}

impl FakeApiServer {
    pub(super) fn key(&self, route: &Route, name: &str) -> ObjKey {
        let namespaced = self.kinds[route.kind].resource.namespaced;
        ObjKey {
            kind: route.kind,
            namespace: if namespaced { route.namespace.clone().unwrap_or_default() } else { String::new() },
            name: name.to_owned(),
        }
    }

    pub(super) fn get(&self, route: &Route, name: &str, q: &Query) -> HResult {
        let kind = &self.kinds[route.kind];
        if let Some(rv) = q.get("resourceVersion").filter(|rv| !rv.is_empty() && *rv != "0") {
            let rv = parse_rv(rv)?;
            if rv > self.store.current_rv() {
                return Err(too_large_rv(rv, self.store.current_rv()));
            }
        }
        let obj = self.store.get(&self.key(route, name)).ok_or_else(|| not_found(kind, name))?;
        Ok((StatusCode::OK, (**obj).clone()))
    }

    pub(super) fn list(&self, route: &Route, q: &Query) -> HResult {
        let kind = &self.kinds[route.kind];
        let filter = Filter::from_query(kind, route.namespace.as_deref(), q)?;
        let rv = q.get("resourceVersion").map(String::as_str).filter(|s| !s.is_empty());
        let rv_match = q.get("resourceVersionMatch").map(String::as_str).filter(|s| !s.is_empty());
        let mut limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0);
        let current = self.store.current_rv();
        super::validate_list_options(q, false)?;
        let (at, start) = if let Some(token) = q.get("continue").filter(|t| !t.is_empty()) {
            let (trv, start) = decode_continue(token)?;
            if trv < 0 {
                (current, Some(start))
            } else if (trv as u64) < self.store.compacted_rv() {
                let mut s = Status::failure(
                    410,
                    Reason::Expired,
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                );
                s.metadata.continue_token = Some(encode_continue(-1, &start));
                return Err(Box::new(s));
            } else {
                (trv as u64, Some(start))
            }
        } else {
            match (rv, rv_match) {
                (None, _) => (current, None),
                (Some("0"), _) => {
                    // Served from the watch cache: the limit is ignored, as the real server does.
                    limit = 0;
                    (current, None)
                }
                (Some(rv), Some("Exact")) => {
                    let rv = parse_rv(rv)?;
                    if rv <= self.store.compacted_rv() && rv != current {
                        return Err(Box::new(Status::failure(
                            410,
                            Reason::Expired,
                            "The resourceVersion for the provided list is too old.",
                        )));
                    }
                    if rv > current {
                        return Err(too_large_rv(rv, current));
                    }
                    (rv, None)
                }
                (Some(rv), _) => {
                    let rv = parse_rv(rv)?;
                    if rv > current {
                        return Err(too_large_rv(rv, current));
                    }
                    (current, None)
                }
            }
        };
        let start_key = start.as_deref().map(|s| match s.split_once('/') {
            Some((ns, name)) => (ns.to_owned(), name.to_owned()),
            None => (String::new(), s.to_owned()),
        });
        let mut items = Vec::new();
        let mut last: Option<&ObjKey> = None;
        let mut more = false;
        let mut remaining: i64 = 0;
        for (key, obj) in self.store.range_at(route.kind, filter.namespace.as_deref(), at, start_key.as_ref()) {
            if !filter.matches(obj) {
                continue;
            }
            if limit > 0 && items.len() == limit {
                more = true;
                remaining += 1;
                continue;
            }
            items.push(self.list_item(kind, obj));
            last = Some(key);
        }
        let mut metadata = json!({"resourceVersion": at.to_string()});
        if more && let Some(k) = last {
            metadata["continue"] = Value::String(encode_continue(at as i64, &format!("{}/{}", k.namespace, k.name)));
            if filter.is_unfiltered() {
                metadata["remainingItemCount"] = json!(remaining);
            }
        } else if !kind.builtin {
            // Custom resource lists (unstructured) always carry the field, empty on the last page.
            metadata["continue"] = Value::String(String::new());
        }
        Ok((
            StatusCode::OK,
            json!({"kind": format!("{}List", kind.resource.kind), "apiVersion": kind.resource.api_version, "metadata": metadata, "items": items}),
        ))
    }

    /// An object as a list item: built-in kinds drop apiVersion and kind there.
    fn list_item(&self, kind: &KindInfo, obj: &Value) -> Value {
        let mut item = obj.clone();
        if kind.builtin
            && let Value::Object(m) = &mut item
        {
            m.remove("apiVersion");
            m.remove("kind");
        }
        item
    }

    fn parse_body(&self, kind: &KindInfo, req: &http::Request<Vec<u8>>) -> Result<Value, Box<Status>> {
        let ct = content_type(req);
        if !(ct == "application/json" || ct.is_empty()) {
            let mut s = Status::failure(
                415,
                Reason::UnsupportedMediaType,
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json (the fake API server does not read {ct})"
                ),
            );
            s.status = "Failure".into();
            return Err(Box::new(s));
        }
        let body = req.body();
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(bad_request(format!(
                "the object provided is unrecognized (must be of type {}): couldn't get version/kind; json parse error: unexpected end of JSON input (<empty>)",
                kind.resource.kind
            )));
        }
        let v: Value = serde_json::from_slice(body).map_err(|e| {
            bad_request(format!(
                "the object provided is unrecognized (must be of type {}): couldn't get version/kind; json parse error: {e}",
                kind.resource.kind
            ))
        })?;
        if !v.is_object() {
            return Err(bad_request(format!(
                "the object provided is unrecognized (must be of type {})",
                kind.resource.kind
            )));
        }
        check_type(kind, &v)?;
        // A value of the wrong type does not decode (400); a missing required field decodes to
        // Go's zero value and fails validation later (422), so that is left to validation.
        if let Some(check) = kind.validate
            && let Err(e) = check(&v)
            && !e.contains("missing field")
        {
            return Err(bad_request(format!(
                "{k} in version {:?} cannot be handled as a {k}: {e}",
                kind.resource.version,
                k = kind.resource.kind
            )));
        }
        Ok(v)
    }

    pub(super) fn create(&mut self, call: Call<'_>) -> HResult {
        let Call { now, route, req, .. } = call;
        let kind = self.kinds[route.kind].clone();
        let obj = self.parse_body(&kind, req)?;
        check_namespace(&kind, route, &obj)?;
        if kind.resource.namespaced && route.namespace.is_none() {
            return Err(bad_request(
                "the server could not find the requested resource: a namespaced object needs a namespace",
            ));
        }
        let manager = call.manager();
        let write = Write::new(now, &manager).dry_run(call.dry_run());
        self.create_object(write, route.kind, route.namespace.as_deref(), obj)
    }

    /// Creates an object of a kind in a namespace (for the fake's own setup too).
    pub(super) fn create_object(
        &mut self,
        write: Write<'_>,
        kind_id: KindId,
        namespace: Option<&str>,
        mut obj: Value,
    ) -> HResult {
        let Write { now, manager, dry_run, subresource: _, applied } = write;
        let kind = self.kinds[kind_id].clone();
        let name = match (meta_str(&obj, "name").filter(|n| !n.is_empty()), meta_str(&obj, "generateName")) {
            (Some(n), _) => n.to_owned(),
            (None, Some(prefix)) => format!("{prefix}{}", self.generated_suffix()),
            (None, None) => {
                return Err(invalid(
                    &kind,
                    "",
                    "metadata.name",
                    "FieldValueRequired",
                    "Required value: name or generateName is required",
                ));
            }
        };
        let valid =
            if kind.resource.plural == "namespaces" { is_dns1123_label(&name) } else { is_dns1123_subdomain(&name) }
                || (kind.resource.group == "rbac.authorization.k8s.io" && !name.contains('/') && !name.contains('%'));
        let mut causes = Vec::new();
        if !valid {
            let msg = format!(
                "Invalid value: {name:?}: a lowercase RFC 1123 {} must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
                if kind.resource.plural == "namespaces" { "label" } else { "subdomain" }
            );
            causes.push(StatusCause {
                reason: "FieldValueInvalid".into(),
                message: msg,
                field: "metadata.name".into(),
            });
        }
        causes.extend(field_causes(&kind, &obj));
        if !causes.is_empty() {
            return Err(invalid_causes(&kind, &name, causes));
        }
        let ns = if kind.resource.namespaced { namespace.unwrap_or("default").to_owned() } else { String::new() };
        if kind.resource.namespaced {
            self.check_namespace_open(&kind, &name, &ns)?;
        }
        let key = ObjKey { kind: kind_id, namespace: ns.clone(), name: name.clone() };
        if self.store.get(&key).is_some() {
            let mut s = Status::failure(
                409,
                Reason::AlreadyExists,
                format!("{} {name:?} already exists", kind.qualified_plural()),
            );
            s.details = details(&kind, &name);
            return Err(Box::new(s));
        }
        let uid = self.new_uid();
        let created = self.timestamp(now);
        {
            let m = meta_mut(&mut obj);
            m.insert("name".into(), Value::String(name.clone()));
            if kind.resource.namespaced {
                m.insert("namespace".into(), Value::String(ns));
            } else {
                m.remove("namespace");
            }
            m.insert("uid".into(), Value::String(uid));
            m.insert("creationTimestamp".into(), Value::String(created));
            for f in ["deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion", "selfLink"] {
                m.remove(f);
            }
            if kind.generation {
                m.insert("generation".into(), json!(1));
            } else {
                m.remove("generation");
            }
        }
        obj["apiVersion"] = Value::String(kind.resource.api_version.clone());
        obj["kind"] = Value::String(kind.resource.kind.clone());
        // The status of a kind with a status subresource is the controllers' to write: a create
        // starts from an empty one (the Go zero value, `{}`, for built-in kinds, which also always
        // have a `spec`). Nodes keep theirs, as a kubelet registers its node with its status.
        if kind.status_subresource
            && let Value::Object(m) = &mut obj
        {
            if !kind.builtin {
                m.remove("status");
            } else if kind.resource.plural != "nodes" {
                m.insert("status".into(), json!({}));
            }
            if kind.builtin {
                m.entry("spec").or_insert_with(|| json!({}));
                m.entry("status").or_insert_with(|| json!({}));
            }
        }
        match kind.resource.plural.as_str() {
            "namespaces" if kind.builtin => {
                obj["spec"] = json!({"finalizers": ["kubernetes"]});
                obj["status"] = json!({"phase": "Active"});
                meta_mut(&mut obj)
                    .entry("labels")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .map(|l| l.insert(NAMESPACE_NAME_LABEL.into(), Value::String(name.clone())));
            }
            "pods" if kind.builtin => {
                obj["status"]["phase"] = json!("Pending");
            }
            "customresourcedefinitions" if kind.builtin => {
                // As the real create answers: the names are accepted a moment later (below).
                let stored: Vec<Value> = obj["spec"]["versions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|v| v["storage"] == true)
                    .map(|v| v["name"].clone())
                    .collect();
                obj["status"] =
                    json!({"conditions": null, "acceptedNames": {"plural": "", "kind": ""}, "storedVersions": stored});
            }
            _ => {}
        }
        self.admit_custom_resource(&kind, &name, &mut obj)?;
        validate(&kind, &name, &obj)?;
        let owners = match applied {
            Some(o) => o,
            None => {
                let mut o = patch::FieldOwners::default();
                let rules = self.apply_rules(&kind);
                patch::record_update_as(None, &obj, patch::ManagerRef::new(manager), &mut o, &|p| rules.key(p));
                o
            }
        };
        owners.write_to(&mut obj, &kind.resource.api_version, &self.timestamp(now));
        if dry_run {
            return Ok((StatusCode::CREATED, obj));
        }
        meta_mut(&mut obj).insert("resourceVersion".into(), Value::String(self.store.next_rv().to_string()));
        let is_crd = kind.builtin && kind.resource.plural == "customresourcedefinitions";
        self.store.write(key.clone(), Change::Added, arc(obj.clone()));
        if is_crd {
            self.serve_crd_kinds(&obj);
            self.establish_crd(now, &key);
        }
        Ok((StatusCode::CREATED, obj))
    }

    /// Serves (again) the kinds a CustomResourceDefinition declares.
    fn serve_crd_kinds(&mut self, crd: &Value) {
        for k in kinds::kinds_from_crd(crd) {
            self.register(k);
        }
    }

    /// The apiextensions controllers: accept a new CRD's names, mark it Established, and serve
    /// its kinds. The real server takes a moment (a POST of a custom resource right after the
    /// CRD's creation gets a 404); the fake serves them at once.
    fn establish_crd(&mut self, now: Instant, key: &ObjKey) {
        let Some(cur) = self.store.get(key).cloned() else { return };
        let mut new = (*cur).clone();
        let names = &cur["spec"]["names"];
        let mut accepted = names.clone();
        if let (Some(m), Some(kind)) = (accepted.as_object_mut(), names["kind"].as_str()) {
            m.entry("singular").or_insert_with(|| Value::String(kind.to_lowercase()));
            m.entry("listKind").or_insert_with(|| Value::String(format!("{kind}List")));
        }
        let ts = self.timestamp(now);
        new["status"]["acceptedNames"] = accepted;
        new["status"]["conditions"] = json!([
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": ts, "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "lastTransitionTime": ts, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
        ]);
        let _ = self.commit_update(Write::new(now, "kube-apiserver").through(Some("status")), key, cur, new);
    }

    fn check_namespace_open(&self, kind: &KindInfo, name: &str, ns: &str) -> Result<(), Box<Status>> {
        let ns_kind = self.kind_id("", "namespaces").expect("namespaces are built in");
        let ns_key = ObjKey { kind: ns_kind, namespace: String::new(), name: ns.to_owned() };
        let Some(ns_obj) = self.store.get(&ns_key) else {
            return Err(not_found(&self.kinds[ns_kind], ns));
        };
        if !meta(ns_obj)["deletionTimestamp"].is_null() {
            let mut s = Status::failure(
                403,
                Reason::Forbidden,
                format!(
                    "{} {name:?} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    kind.qualified_plural()
                ),
            );
            s.details = Some(StatusDetails {
                name: name.to_owned(),
                kind: kind.resource.plural.clone(),
                group: kind.resource.group.clone(),
                causes: vec![StatusCause {
                    reason: "NamespaceTerminating".into(),
                    message: format!("namespace {ns} is being terminated"),
                    field: "metadata.namespace".into(),
                }],
                ..StatusDetails::default()
            });
            return Err(Box::new(s));
        }
        Ok(())
    }

    pub(super) fn replace(&mut self, call: Call<'_>, name: &str, sub: Option<&str>) -> HResult {
        let Call { now, route, req, .. } = call;
        let kind = self.kinds[route.kind].clone();
        let new = self.parse_body(&kind, req)?;
        if let Some(body_name) = meta_str(&new, "name")
            && body_name != name
        {
            return Err(bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        check_namespace(&kind, route, &new)?;
        let key = self.key(route, name);
        let old = self.store.get(&key).cloned().ok_or_else(|| not_found(&kind, name))?;
        check_resource_version(&kind, name, &new, &old)?;
        let manager = call.manager();
        self.commit_update(Write::new(now, &manager).dry_run(call.dry_run()).through(sub), &key, old, new)
    }

    pub(super) fn patch(&mut self, call: Call<'_>, name: &str, sub: Option<&str>) -> HResult {
        let Call { now, route, req, query: q } = call;
        let kind = self.kinds[route.kind].clone();
        let ct = content_type(req);
        let accepted = if kind.builtin {
            "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml"
        } else {
            "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
        };
        let is_apply = ct == "application/apply-patch+yaml";
        let known = matches!(
            ct,
            "application/json-patch+json" | "application/merge-patch+json" | "application/apply-patch+yaml"
        ) || (kind.builtin && ct == "application/strategic-merge-patch+json");
        if ct == "application/strategic-merge-patch+json" && !kind.builtin {
            return Err(Box::new(Status::failure(
                415,
                Reason::UnsupportedMediaType,
                format!("the body of the request was in an unknown format - accepted media types include: {accepted}"),
            )));
        }
        if !known {
            // Not a patch type at all: the real server answers before looking at the resource.
            let mut s = Status::failure(415, Reason::UnsupportedMediaType, "415: Unsupported Media Type");
            s.details = Some(StatusDetails::default());
            return Err(Box::new(s));
        }
        if q.get("force").is_some_and(|f| f == "true") && !is_apply {
            return Err(options_invalid(
                "PatchOptions",
                "force",
                "FieldValueForbidden",
                "Forbidden: may not be specified for non-apply patch",
            ));
        }
        let manager = match q.get("fieldManager") {
            Some(m) => m.clone(),
            None if is_apply => {
                return Err(options_invalid(
                    "PatchOptions",
                    "fieldManager",
                    "FieldValueRequired",
                    "Required value: is required for apply patch",
                ));
            }
            None => call.manager(),
        };
        let body: Value = serde_json::from_slice(req.body()).map_err(|e| {
            if is_apply {
                bad_request(format!("error decoding YAML: the fake API server reads apply bodies as JSON only: {e}"))
            } else {
                bad_request(format!("error decoding patch: {e}"))
            }
        })?;
        let key = self.key(route, name);
        let dry_run = call.dry_run();
        let force = q.get("force").is_some_and(|f| f == "true");
        let Some(old) = self.store.get(&key).cloned() else {
            if is_apply && sub.is_none() {
                let mut obj = body;
                if meta_str(&obj, "name").is_none() {
                    meta_mut(&mut obj).insert("name".into(), Value::String(name.to_owned()));
                }
                check_type(&kind, &obj)?;
                let mut owners = patch::FieldOwners::default();
                let rules = self.apply_rules(&kind);
                let built = patch::apply(None, &obj, &manager, force, &mut owners, &|p| rules.key(p))
                    .map_err(|e| apply_error(&kind, name, e))?;
                let ns = route.namespace.clone();
                let write = Write::new(now, &manager).dry_run(dry_run).applied(Some(owners));
                return self.create_object(write, route.kind, ns.as_deref(), built);
            }
            return Err(not_found(&kind, name));
        };
        let base = if sub == Some("scale") { self.scale_view(&kind, &old)? } else { (*old).clone() };
        let mut patched = base.clone();
        let mut apply_owners = None;
        match ct {
            "application/merge-patch+json" => patch::merge_patch(&mut patched, &body),
            "application/json-patch+json" => patch::json_patch(&mut patched, &body).map_err(|_| {
                let mut s = Status::failure(
                    422,
                    Reason::Invalid,
                    "the server rejected our request due to an error in our request",
                );
                s.details = Some(StatusDetails::default());
                Box::new(s)
            })?,
            "application/strategic-merge-patch+json" => {
                patch::strategic_merge_patch(&mut patched, &body, &strategic_keys_for(&kind))
                    .map_err(|e| bad_request(format!("unable to apply the strategic merge patch: {e}")))?
            }
            _ => {
                if sub == Some("scale") {
                    check_scale_type(&body)?;
                } else {
                    check_type(&kind, &body)?;
                }
                let mut owners = patch::FieldOwners::from_object(&old);
                let live = if sub == Some("scale") { &base } else { &old };
                let who = match sub {
                    Some(sub) => patch::ManagerRef::new(&manager).with_subresource(sub),
                    None => patch::ManagerRef::new(&manager),
                };
                let rules = self.apply_rules(&kind);
                patched = patch::apply_as(Some(live), &body, who, force, &mut owners, &|p| rules.key(p))
                    .map_err(|e| apply_error(&kind, name, e))?;
                apply_owners = Some(owners);
            }
        }
        check_resource_version(&kind, name, &patched, &old)?;
        if sub != Some("scale")
            && apply_owners.is_none()
            && let Some(check) = kind.validate
            && let Err(e) = check(&patched)
            && !e.contains("missing field")
        {
            // The patched object does not decode as its type.
            let msg = format!("Invalid value: {:?}: {e}", patched.to_string());
            let mut s = Status::failure(422, Reason::Invalid, format!(" \"\" is invalid: patch: {msg}"));
            s.details = Some(StatusDetails {
                causes: vec![StatusCause { reason: "FieldValueInvalid".into(), message: msg, field: "patch".into() }],
                ..StatusDetails::default()
            });
            return Err(Box::new(s));
        }
        if sub == Some("scale") {
            let replicas = scale_replicas(&patched);
            let mut new = (*old).clone();
            set_path(
                &mut new,
                &kind.scale.as_ref().map_or("spec.replicas".into(), |s| s.spec_replicas.clone()),
                replicas,
            );
            let write = Write::new(now, &manager).dry_run(dry_run).through(sub).applied(apply_owners);
            let (code, obj) = self.commit_update(write, &key, old, new)?;
            return Ok((code, self.scale_view(&kind, &obj)?));
        }
        let write = Write::new(now, &manager).dry_run(dry_run).through(sub).applied(apply_owners);
        self.commit_update(write, &key, old, patched)
    }

    /// The common path of every update: subresource rules, system metadata, finalizers,
    /// validation, no-op detection, generation, and deletion when the last finalizer goes.
    pub(super) fn commit_update(&mut self, write: Write<'_>, key: &ObjKey, old: Arc<Value>, mut new: Value) -> HResult {
        let Write { now, manager, dry_run, subresource: sub, applied: apply_owners } = write;
        let kind = self.kinds[key.kind].clone();
        let name = key.name.clone();
        if sub == Some("ephemeralcontainers") {
            // Only spec.ephemeralContainers changes through this subresource.
            let mut o = (*old).clone();
            match new["spec"].get("ephemeralContainers") {
                Some(e) => o["spec"]["ephemeralContainers"] = e.clone(),
                None => {
                    if let Some(m) = o["spec"].as_object_mut() {
                        m.remove("ephemeralContainers");
                    }
                }
            }
            new = o;
        }
        if kind.status_subresource {
            if sub == Some("status") {
                let mut o = (*old).clone();
                match new.get("status") {
                    Some(s) => o["status"] = s.clone(),
                    None => {
                        if let Value::Object(m) = &mut o {
                            m.remove("status");
                        }
                    }
                }
                new = o;
            } else if let Value::Object(m) = &mut new {
                match old.get("status") {
                    Some(s) => {
                        m.insert("status".into(), s.clone());
                    }
                    None => {
                        m.remove("status");
                    }
                }
            }
        }
        new["apiVersion"] = old["apiVersion"].clone();
        new["kind"] = old["kind"].clone();
        {
            let old_meta = old["metadata"].as_object().cloned().unwrap_or_default();
            let m = meta_mut(&mut new);
            for f in [
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match old_meta.get(f) {
                    Some(v) => {
                        m.insert(f.into(), v.clone());
                    }
                    None => {
                        m.remove(f);
                    }
                }
            }
            m.insert("resourceVersion".into(), old_meta.get("resourceVersion").cloned().unwrap_or(Value::Null));
        }
        let terminating = !old["metadata"]["deletionTimestamp"].is_null();
        if terminating {
            let before = finalizers(&old);
            let added: Vec<String> = finalizers(&new).into_iter().filter(|f| !before.contains(f)).collect();
            if !added.is_empty() {
                let list = added.iter().map(|f| format!("{f:?}")).collect::<Vec<_>>().join(", ");
                let msg = format!(
                    "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{list}}}"
                );
                // The real server reports this cause twice (two validations find it).
                let mut s = invalid(&kind, &name, "metadata.finalizers", "FieldValueForbidden", &msg);
                if let Some(d) = &mut s.details {
                    let again = d.causes[0].clone();
                    d.causes.push(again);
                }
                return Err(s);
            }
        }
        if new["metadata"]["finalizers"].as_array().is_some_and(Vec::is_empty) {
            meta_mut(&mut new).remove("finalizers");
        }
        if kind.builtin && kind.resource.plural == "namespaces" {
            // The server keeps this label equal to the name.
            if !new["metadata"]["labels"].is_object() {
                meta_mut(&mut new).insert("labels".into(), json!({}));
            }
            new["metadata"]["labels"][NAMESPACE_NAME_LABEL] = Value::String(name.clone());
        }
        self.admit_custom_resource(&kind, &name, &mut new)?;
        validate(&kind, &name, &new)?;
        let causes = field_causes(&kind, &new);
        if !causes.is_empty() {
            return Err(invalid_causes(&kind, &name, causes));
        }
        let owners = match apply_owners {
            Some(o) => o,
            None => {
                let mut o = patch::FieldOwners::from_object(&old);
                let who = match sub {
                    Some(sub) => patch::ManagerRef::new(manager).with_subresource(sub),
                    None => patch::ManagerRef::new(manager),
                };
                let rules = self.apply_rules(&kind);
                patch::record_update_as(Some(&old), &new, who, &mut o, &|p| rules.key(p));
                o
            }
        };
        owners.write_to(&mut new, &kind.resource.api_version, &self.timestamp(now));
        // A no-op unless the managed fields changed in more than their times (a manager that
        // applies values already there still becomes their co-owner, as on the real server).
        if same_content(&old, &new) && same_owners(&old, &new) {
            return Ok((StatusCode::OK, (*old).clone()));
        }
        if kind.generation && spec_changed(&old, &new, kind.status_subresource) {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            meta_mut(&mut new).insert("generation".into(), json!(g));
        }
        if dry_run {
            return Ok((StatusCode::OK, new));
        }
        if terminating && finalizers(&new).is_empty() {
            // The real server deletes in the same step: watchers see only DELETED, carrying the
            // last stored state (finalizers included) at the deletion's resourceVersion, while
            // the PATCH answers with the new state at the old resourceVersion.
            self.remove_object(key, &old);
            return Ok((StatusCode::OK, new));
        }
        meta_mut(&mut new).insert("resourceVersion".into(), Value::String(self.store.next_rv().to_string()));
        self.store.write(key.clone(), Change::Modified, arc(new.clone()));
        if kind.builtin && kind.resource.plural == "customresourcedefinitions" && !terminating {
            self.serve_crd_kinds(&new);
        }
        Ok((StatusCode::OK, new))
    }

    /// Removes an object for good, logging DELETED with its last state.
    pub(super) fn remove_object(&mut self, key: &ObjKey, last: &Value) {
        let mut gone = last.clone();
        meta_mut(&mut gone).insert("resourceVersion".into(), Value::String(self.store.next_rv().to_string()));
        self.store.write(key.clone(), Change::Deleted, arc(gone));
    }

    pub(super) fn delete(&mut self, call: Call<'_>, name: &str) -> HResult {
        let Call { now, route, req, query: q } = call;
        let opts = delete_opts(req, q)?;
        let key = self.key(route, name);
        self.delete_object(now, &key, &opts)
    }

    pub(super) fn delete_object(&mut self, now: Instant, key: &ObjKey, opts: &DeleteOpts) -> HResult {
        let kind = self.kinds[key.kind].clone();
        let name = key.name.clone();
        let old = self.store.get(key).cloned().ok_or_else(|| not_found(&kind, &name))?;
        let preconditions = [
            ("UID", opts.uid.as_deref(), meta_str(&old, "uid"), "deleted and then recreated"),
            ("ResourceVersion", opts.resource_version.as_deref(), meta_str(&old, "resourceVersion"), "modified"),
        ];
        for (what, want, have, why) in preconditions {
            if let Some(want) = want
                && have != Some(want)
            {
                let mut s = Status::failure(
                    409,
                    Reason::Conflict,
                    format!(
                        "Operation cannot be fulfilled on {} {name:?}: the {what} in the precondition ({want}) does not match the {what} in record ({}). The object might have been {why}",
                        kind.resource.kind,
                        have.unwrap_or("")
                    ),
                );
                s.details = Some(StatusDetails {
                    name: name.clone(),
                    kind: kind.resource.kind.clone(),
                    ..StatusDetails::default()
                });
                return Err(Box::new(s));
            }
        }
        let is_namespace = kind.builtin && kind.resource.plural == "namespaces";
        let is_pod = kind.builtin && kind.resource.plural == "pods";
        let is_crd = kind.builtin && kind.resource.plural == "customresourcedefinitions";
        if !old["metadata"]["deletionTimestamp"].is_null() {
            let pending_grace = old["metadata"]["deletionGracePeriodSeconds"].as_i64().unwrap_or(0);
            if let Some(grace) = opts.grace.filter(|&g| is_pod && g < pending_grace) {
                // A shorter grace period for a terminating pod: `--grace-period=0 --force`
                // removes it now (when no finalizer holds it), else its deadline moves closer.
                let mut answer = (*old).clone();
                let deadline = self.timestamp(now + std::time::Duration::from_secs(grace.max(0) as u64));
                let m = meta_mut(&mut answer);
                m.insert("deletionTimestamp".into(), Value::String(deadline));
                m.insert("deletionGracePeriodSeconds".into(), json!(grace));
                if opts.dry_run {
                    return Ok((StatusCode::OK, answer));
                }
                if grace == 0 && finalizers(&old).is_empty() {
                    self.remove_object(key, &old);
                } else {
                    meta_mut(&mut answer)
                        .insert("resourceVersion".into(), Value::String(self.store.next_rv().to_string()));
                    self.store.write(key.clone(), Change::Modified, arc(answer.clone()));
                }
                return Ok((StatusCode::OK, answer));
            }
            // Already terminating: answer with the object, unchanged.
            return Ok((StatusCode::OK, (*old).clone()));
        }
        let mut fins = finalizers(&old);
        let gc_finalizer = match opts.propagation.as_deref() {
            Some("Foreground") => Some("foregroundDeletion"),
            Some("Orphan") => Some("orphan"),
            _ => None,
        };
        if is_crd && !fins.iter().any(|f| f == CRD_CLEANUP_FINALIZER) {
            fins.push(CRD_CLEANUP_FINALIZER.to_owned());
        }
        if let Some(f) = gc_finalizer
            && !fins.iter().any(|x| x == f)
        {
            fins.push(f.to_owned());
        }
        let grace = opts.grace.unwrap_or(if is_pod { 30 } else { 0 });
        let graceful_pod = is_pod && grace > 0 && old["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty());
        let now_ts = self.timestamp(now);
        if fins.is_empty() && !is_namespace && !graceful_pod {
            let mut answer = (*old).clone();
            if opts.dry_run {
                return Ok((StatusCode::OK, deleted_status(&kind, &old)));
            }
            self.remove_object(key, &old);
            if is_pod {
                // The real server answers a pod delete with the pod, even when it goes at once.
                let m = meta_mut(&mut answer);
                m.insert("deletionTimestamp".into(), Value::String(now_ts));
                m.insert("deletionGracePeriodSeconds".into(), json!(grace));
                return Ok((StatusCode::OK, answer));
            }
            return Ok((StatusCode::OK, deleted_status(&kind, &old)));
        }
        let mut pending = (*old).clone();
        {
            let deletion_ts = if graceful_pod {
                let secs = now.saturating_duration_since(self.start).as_secs() as i64 + grace;
                k8s_openapi::jiff::Timestamp::from_second(self.config.wall_clock_start + secs)
                    .map(|t| t.to_string())
                    .unwrap_or_default()
            } else {
                now_ts
            };
            let m = meta_mut(&mut pending);
            m.insert("deletionTimestamp".into(), Value::String(deletion_ts));
            if !is_namespace && !is_crd {
                // Namespaces and CRDs are deleted by their own controllers, with no grace period.
                m.insert("deletionGracePeriodSeconds".into(), json!(if graceful_pod { grace } else { 0 }));
            }
            if !fins.is_empty() {
                m.insert("finalizers".into(), json!(fins));
            }
        }
        if is_namespace {
            pending["status"]["phase"] = json!("Terminating");
        }
        if opts.dry_run {
            return Ok((StatusCode::OK, pending));
        }
        meta_mut(&mut pending).insert("resourceVersion".into(), Value::String(self.store.next_rv().to_string()));
        self.store.write(key.clone(), Change::Modified, arc(pending.clone()));
        if is_namespace {
            self.empty_namespace(now, &key.name);
        }
        if let Some(f) = gc_finalizer {
            // No dependents are tracked, so the garbage collector's work is done at once.
            self.remove_finalizer(now, key, f);
        }
        if is_crd {
            self.sweep_crds(now);
        }
        Ok((StatusCode::OK, pending))
    }

    /// The apiextensions cleanup controller: for each terminating CRD, deletes its custom
    /// resources; once none is left (finalizers may hold some), stops serving its kinds and
    /// removes its finalizer, which completes its deletion.
    pub(super) fn sweep_crds(&mut self, now: Instant) {
        let Some(crd_kind) = self.kind_id("apiextensions.k8s.io", "customresourcedefinitions") else { return };
        let current = self.store.current_rv();
        let terminating: Vec<(ObjKey, Arc<Value>)> = self
            .store
            .range_at(crd_kind, None, current, None)
            .filter(|(_, v)| !v["metadata"]["deletionTimestamp"].is_null())
            .filter(|(_, v)| finalizers(v).iter().any(|f| f == CRD_CLEANUP_FINALIZER))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (crd_key, crd) in terminating {
            let ids: Vec<KindId> = kinds::kinds_from_crd(&crd)
                .iter()
                .filter_map(|d| {
                    let r = &d.resource;
                    self.kinds.iter().position(|k| {
                        !k.builtin
                            && k.resource.group == r.group
                            && k.resource.version == r.version
                            && k.resource.plural == r.plural
                    })
                })
                .collect();
            let mut left = false;
            for &id in &ids {
                let objs: Vec<(ObjKey, bool)> = self
                    .store
                    .range_at(id, None, self.store.current_rv(), None)
                    .map(|(k, v)| (k.clone(), v["metadata"]["deletionTimestamp"].is_null()))
                    .collect();
                for (key, live) in objs {
                    if live {
                        let _ = self.delete_object(now, &key, &DeleteOpts { grace: Some(0), ..DeleteOpts::default() });
                    }
                    left |= self.store.get(&key).is_some();
                }
            }
            if !left {
                for id in ids {
                    self.unserve(id);
                }
                self.remove_finalizer(now, &crd_key, CRD_CLEANUP_FINALIZER);
            }
        }
    }

    fn remove_finalizer(&mut self, now: Instant, key: &ObjKey, finalizer: &str) {
        let Some(cur) = self.store.get(key).cloned() else { return };
        let mut new = (*cur).clone();
        let remaining: Vec<String> = finalizers(&cur).into_iter().filter(|f| f != finalizer).collect();
        if remaining.is_empty() {
            meta_mut(&mut new).remove("finalizers");
        } else {
            meta_mut(&mut new).insert("finalizers".into(), json!(remaining));
        }
        let _ = self.commit_update(Write::new(now, "fake-garbage-collector"), key, cur, new);
    }

    /// The namespace controller: deletes everything in a terminating namespace, then the
    /// namespace itself once it is empty.
    fn empty_namespace(&mut self, now: Instant, ns: &str) {
        let keys: Vec<ObjKey> = (0..self.kinds.len())
            .filter(|&k| self.kinds[k].resource.namespaced)
            .flat_map(|k| {
                self.store
                    .range_at(k, Some(ns), self.store.current_rv(), None)
                    .map(|(key, _)| key.clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        for key in keys {
            let _ = self.delete_object(now, &key, &DeleteOpts { grace: Some(0), ..DeleteOpts::default() });
        }
        self.sweep_namespaces();
    }

    /// Removes terminating namespaces that have become empty.
    pub(super) fn sweep_namespaces(&mut self) {
        let Some(ns_kind) = self.kind_id("", "namespaces") else { return };
        let current = self.store.current_rv();
        let terminating: Vec<(ObjKey, Arc<Value>)> = self
            .store
            .range_at(ns_kind, None, current, None)
            .filter(|(_, v)| !v["metadata"]["deletionTimestamp"].is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (key, obj) in terminating {
            let empty = (0..self.kinds.len())
                .filter(|&k| self.kinds[k].resource.namespaced)
                .all(|k| self.store.range_at(k, Some(&key.name), current, None).next().is_none());
            if empty {
                self.remove_object(&key, &obj);
            }
        }
    }

    pub(super) fn delete_collection(&mut self, call: Call<'_>) -> HResult {
        let Call { now, route, req, query: q } = call;
        let kind = self.kinds[route.kind].clone();
        let filter = Filter::from_query(&kind, route.namespace.as_deref(), q)?;
        let opts = delete_opts(req, q)?;
        let keys: Vec<ObjKey> = self
            .store
            .range_at(route.kind, route.namespace.as_deref(), self.store.current_rv(), None)
            .filter(|(_, v)| filter.matches(v))
            .map(|(k, _)| k.clone())
            .collect();
        let mut items = Vec::new();
        for key in keys {
            let before = self.store.get(&key).cloned();
            match self.delete_object(now, &key, &opts) {
                Ok((_, v)) if v["kind"] == "Status" => {
                    if let Some(b) = before {
                        items.push(self.list_item(&kind, &b));
                    }
                }
                Ok((_, v)) => items.push(self.list_item(&kind, &v)),
                Err(_) => {}
            }
        }
        self.sweep_namespaces();
        Ok((
            StatusCode::OK,
            json!({"kind": format!("{}List", kind.resource.kind), "apiVersion": kind.resource.api_version,
                   "metadata": {"resourceVersion": self.store.current_rv().to_string()}, "items": items}),
        ))
    }

    pub(super) fn subresource(&mut self, call: Call<'_>, name: &str, sub: &str) -> HResult {
        let Call { now, route, req, query: q } = call;
        let kind = self.kinds[route.kind].clone();
        let not_served =
            || Box::new(Status::failure(404, Reason::NotFound, "the server could not find the requested resource"));
        match (sub, req.method()) {
            ("status", &Method::GET) if kind.status_subresource => self.get(route, name, q),
            ("status", &Method::PUT) if kind.status_subresource => self.replace(call, name, Some("status")),
            ("status", &Method::PATCH) if kind.status_subresource => self.patch(call, name, Some("status")),
            ("ephemeralcontainers", &Method::GET) if kind.builtin && kind.resource.plural == "pods" => {
                self.get(route, name, q)
            }
            ("ephemeralcontainers", &Method::PUT) if kind.builtin && kind.resource.plural == "pods" => {
                self.replace(call, name, Some("ephemeralcontainers"))
            }
            ("ephemeralcontainers", &Method::PATCH) if kind.builtin && kind.resource.plural == "pods" => {
                self.patch(call, name, Some("ephemeralcontainers"))
            }
            ("scale", &Method::GET) if kind.scale.is_some() => {
                let (_, obj) = self.get(route, name, q)?;
                Ok((StatusCode::OK, self.scale_view(&kind, &obj)?))
            }
            ("scale", &Method::PATCH) if kind.scale.is_some() => self.patch(call, name, Some("scale")),
            ("scale", &Method::PUT) if kind.scale.is_some() => {
                let body: Value =
                    serde_json::from_slice(req.body()).map_err(|e| bad_request(format!("invalid Scale: {e}")))?;
                let key = self.key(route, name);
                let old = self.store.get(&key).cloned().ok_or_else(|| not_found(&kind, name))?;
                check_resource_version(&kind, name, &body, &old)?;
                let mut new = (*old).clone();
                let path = kind.scale.as_ref().map_or("spec.replicas".into(), |s| s.spec_replicas.clone());
                set_path(&mut new, &path, scale_replicas(&body));
                let manager = call.manager();
                let write = Write::new(now, &manager).dry_run(call.dry_run()).through(Some("scale"));
                let (code, obj) = self.commit_update(write, &key, old, new)?;
                Ok((code, self.scale_view(&kind, &obj)?))
            }
            ("eviction", &Method::POST) if kind.builtin && kind.resource.plural == "pods" => {
                let body: Value =
                    serde_json::from_slice(req.body()).map_err(|e| bad_request(format!("invalid Eviction: {e}")))?;
                if let Some(n) = meta_str(&body, "name")
                    && n != name
                {
                    return Err(bad_request(format!(
                        "name in URL does not match name in Eviction object: {name} != {n}"
                    )));
                }
                let opts = delete_opts_from(&body["deleteOptions"], q);
                let key = self.key(route, name);
                self.delete_object(now, &key, &DeleteOpts { grace: opts.grace.or(Some(0)), ..opts })?;
                Ok((
                    StatusCode::CREATED,
                    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
                ))
            }
            ("binding", &Method::POST) if kind.builtin && kind.resource.plural == "pods" => {
                let body: Value =
                    serde_json::from_slice(req.body()).map_err(|e| bad_request(format!("invalid Binding: {e}")))?;
                let node = body["target"]["name"].as_str().unwrap_or("").to_owned();
                let key = self.key(route, name);
                let old = self.store.get(&key).cloned().ok_or_else(|| not_found(&kind, name))?;
                if let Some(existing) = old["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
                    return Err(conflict(&kind, name, &format!("pod {name} is already assigned to node {existing:?}")));
                }
                let mut new = (*old).clone();
                new["spec"]["nodeName"] = Value::String(node);
                let manager = call.manager();
                self.commit_update(Write::new(now, &manager), &key, old, new)?;
                Ok((
                    StatusCode::CREATED,
                    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
                ))
            }
            _ => Err(not_served()),
        }
    }

    /// The `autoscaling/v1` `Scale` of an object.
    pub(super) fn scale_view(&self, kind: &KindInfo, obj: &Value) -> Result<Value, Box<Status>> {
        let paths = kind
            .scale
            .as_ref()
            .ok_or_else(|| Box::new(Status::failure(404, Reason::NotFound, "no scale subresource")))?;
        let m = meta(obj);
        let selector =
            paths.label_selector.as_deref().and_then(|p| lookup_path(obj, p)).map(render_selector).unwrap_or_default();
        // `spec.replicas` is `omitempty` in `autoscaling/v1` (a plain int32), so the real server
        // answers `"spec": {}` for 0 replicas; `status.replicas` has no `omitempty` and is always
        // there.
        let mut spec = json!({});
        if let Some(r) = lookup_path(obj, &paths.spec_replicas).filter(|r| !r.is_null() && r.as_i64() != Some(0)) {
            spec["replicas"] = r.clone();
        }
        let mut status = json!({"replicas": lookup_path(obj, &paths.status_replicas).cloned().unwrap_or(json!(0))});
        if !selector.is_empty() {
            status["selector"] = Value::String(selector);
        }
        Ok(json!({
            "kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
                         "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]},
            "spec": spec,
            "status": status,
        }))
    }
}

/// The desired replicas a `Scale` body asks for. `spec.replicas` is an `int32` with
/// `omitempty` in `autoscaling/v1`, so an absent (or null) value means 0.
fn scale_replicas(scale: &Value) -> Value {
    match &scale["spec"]["replicas"] {
        Value::Null => json!(0),
        v => v.clone(),
    }
}

fn render_selector(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(_) => {
            let mut parts: Vec<String> = v["matchLabels"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect())
                .unwrap_or_default();
            for e in v["matchExpressions"].as_array().into_iter().flatten() {
                let key = e["key"].as_str().unwrap_or("");
                let values: Vec<&str> =
                    e["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                parts.push(match e["operator"].as_str().unwrap_or("") {
                    "In" => format!("{key} in ({})", values.join(",")),
                    "NotIn" => format!("{key} notin ({})", values.join(",")),
                    "Exists" => key.to_owned(),
                    "DoesNotExist" => format!("!{key}"),
                    _ => continue,
                });
            }
            parts.join(",")
        }
        _ => String::new(),
    }
}

fn set_path(v: &mut Value, path: &str, value: Value) {
    let mut cur = v;
    let segs: Vec<&str> = path.split('.').collect();
    for (i, seg) in segs.iter().enumerate() {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let m = cur.as_object_mut().expect("just made an object");
        if i == segs.len() - 1 {
            m.insert((*seg).to_owned(), value);
            return;
        }
        cur = m.entry((*seg).to_owned()).or_insert_with(|| Value::Object(Map::new()));
    }
}

fn deleted_status(kind: &KindInfo, old: &Value) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
           "details": {"name": meta_str(old, "name"), "group": kind.resource.group, "kind": kind.resource.plural, "uid": meta_str(old, "uid")}})
    .as_object()
    .map(|m| {
        let mut m = m.clone();
        if kind.resource.group.is_empty()
            && let Some(Value::Object(d)) = m.get_mut("details")
        {
            d.remove("group");
        }
        Value::Object(m)
    })
    .unwrap_or_default()
}

fn delete_opts(req: &http::Request<Vec<u8>>, q: &Query) -> Result<DeleteOpts, Box<Status>> {
    let body = if req.body().iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(req.body()).map_err(|e| bad_request(format!("invalid DeleteOptions: {e}")))?
    };
    Ok(delete_opts_from(&body, q))
}

fn delete_opts_from(body: &Value, q: &Query) -> DeleteOpts {
    let dry_run = q.get("dryRun").is_some_and(|v| v == "All")
        || body["dryRun"].as_array().is_some_and(|a| a.iter().any(|v| v == "All"));
    let grace =
        q.get("gracePeriodSeconds").and_then(|g| g.parse().ok()).or_else(|| body["gracePeriodSeconds"].as_i64());
    let mut propagation =
        q.get("propagationPolicy").cloned().or_else(|| body["propagationPolicy"].as_str().map(str::to_owned));
    let orphan = q.get("orphanDependents").map(|v| v == "true").or_else(|| body["orphanDependents"].as_bool());
    if propagation.is_none() && orphan == Some(true) {
        propagation = Some("Orphan".into());
    }
    DeleteOpts {
        dry_run,
        grace,
        propagation,
        uid: body["preconditions"]["uid"].as_str().map(str::to_owned),
        resource_version: body["preconditions"]["resourceVersion"].as_str().map(str::to_owned),
    }
}

/// A body for the scale subresource must be an `autoscaling/v1` `Scale` (when it says).
fn check_scale_type(v: &Value) -> Result<(), Box<Status>> {
    if let Some(av) = v["apiVersion"].as_str()
        && av != "autoscaling/v1"
    {
        return Err(bad_request(format!("no kind \"Scale\" is registered for version {av:?}")));
    }
    if let Some(k) = v["kind"].as_str()
        && k != "Scale"
    {
        return Err(bad_request(format!("{k} in version \"v1\" cannot be handled as a Scale")));
    }
    Ok(())
}

/// A body's namespace, when it has one, must be the URL's.
fn check_namespace(kind: &KindInfo, route: &Route, body: &Value) -> Result<(), Box<Status>> {
    if kind.resource.namespaced
        && let (Some(body_ns), Some(url_ns)) = (meta_str(body, "namespace"), route.namespace.as_deref())
        && body_ns != url_ns
    {
        return Err(bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

/// Optimistic concurrency: a resourceVersion in the body (an empty one means none) must be
/// the stored object's.
fn check_resource_version(kind: &KindInfo, name: &str, body: &Value, old: &Value) -> Result<(), Box<Status>> {
    if let Some(rv) = meta_str(body, "resourceVersion").filter(|r| !r.is_empty())
        && Some(rv) != meta_str(old, "resourceVersion")
    {
        return Err(conflict(
            kind,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        ));
    }
    Ok(())
}

/// `apiVersion` and `kind` in a body must be the URL's (when given).
fn check_type(kind: &KindInfo, v: &Value) -> Result<(), Box<Status>> {
    if let Some(av) = v["apiVersion"].as_str()
        && av != kind.resource.api_version
    {
        return Err(bad_request(format!("no kind {:?} is registered for version {av:?}", kind.resource.kind)));
    }
    if let Some(k) = v["kind"].as_str()
        && k != kind.resource.kind
    {
        return Err(bad_request(format!(
            "{k} in version {:?} cannot be handled as a {}: the fake API server does not convert kinds",
            kind.resource.version, kind.resource.kind
        )));
    }
    Ok(())
}

fn validate(kind: &KindInfo, name: &str, v: &Value) -> Result<(), Box<Status>> {
    if let Some(check) = kind.validate
        && let Err(e) = check(v)
    {
        let mut s = Status::failure(422, Reason::Invalid, format!("{} {name:?} is invalid: {e}", kind.resource.kind));
        s.details = Some(StatusDetails {
            name: name.to_owned(),
            group: kind.resource.group.clone(),
            kind: kind.resource.kind.clone(),
            causes: vec![StatusCause { reason: "FieldValueInvalid".into(), message: e, field: String::new() }],
            ..StatusDetails::default()
        });
        return Err(Box::new(s));
    }
    Ok(())
}

fn strip_volatile(v: &Value) -> Value {
    let mut c = v.clone();
    if let Some(m) = c["metadata"].as_object_mut() {
        m.remove("resourceVersion");
        m.remove("managedFields");
    }
    c
}

fn same_content(a: &Value, b: &Value) -> bool {
    strip_volatile(a) == strip_volatile(b)
}

/// Whether two objects' managed fields are the same but for their times.
fn same_owners(a: &Value, b: &Value) -> bool {
    let timeless = |v: &Value| {
        let mut m = v["metadata"]["managedFields"].clone();
        for e in m.as_array_mut().into_iter().flatten() {
            if let Some(e) = e.as_object_mut() {
                e.remove("time");
            }
        }
        m
    };
    timeless(a) == timeless(b)
}

/// Whether an update changes more than metadata (and status, where status is a subresource):
/// what bumps `metadata.generation`.
fn spec_changed(old: &Value, new: &Value, status_subresource: bool) -> bool {
    let strip = |v: &Value| {
        let mut c = v.clone();
        if let Value::Object(m) = &mut c {
            m.remove("metadata");
            if status_subresource {
                m.remove("status");
            }
        }
        c
    };
    strip(old) != strip(new)
}

/// Server-side apply's rules of a kind (its lists, atomic maps and structs): the real server's
/// schema for the built-in kinds of Kubernetes 1.36 ([`patch::KindSchema`]), the hand-kept table
/// for other built-ins, the CRD's structural schema for custom resources
/// ([`patch::StructuralRules`]; none, every list atomic, for kinds without a CRD).
struct ApplyRules {
    builtin: bool,
    schema: Option<patch::KindSchema>,
    custom: Option<patch::StructuralRules>,
}

impl ApplyRules {
    /// What the list-key function says for `path`.
    fn key(&self, path: &str) -> Option<&str> {
        match (&self.schema, &self.custom) {
            (Some(s), _) => s.apply_list_key(path),
            (None, Some(c)) => c.apply_list_key(path),
            (None, None) if self.builtin => patch::builtin_list_key(path),
            (None, None) => None,
        }
    }
}

impl FakeApiServer {
    fn apply_rules(&self, kind: &KindInfo) -> ApplyRules {
        let custom = self.custom_schema(kind).map(|s| patch::StructuralRules::from_schema(&s));
        ApplyRules { builtin: kind.builtin, schema: schema_of(kind), custom }
    }
}

/// Strategic merge patch's list rules of a built-in kind (`patchMergeKey`/`patchStrategy`).
fn strategic_keys_for(kind: &KindInfo) -> impl Fn(&str) -> Option<&'static str> + use<> {
    let (builtin, schema) = (kind.builtin, schema_of(kind));
    move |path: &str| match schema {
        Some(s) => s.strategic_list_key(path),
        None if builtin => patch::builtin_list_key(path),
        None => None,
    }
}

fn schema_of(kind: &KindInfo) -> Option<patch::KindSchema> {
    let r = &kind.resource;
    if kind.builtin { patch::KindSchema::of(&r.group, &r.version, &r.kind) } else { None }
}

fn apply_error(kind: &KindInfo, name: &str, e: patch::ApplyError) -> Box<Status> {
    match e {
        patch::ApplyError::Conflicts(_) => {
            // The real server names only the conflicting fields, not the object.
            let mut s = Status::failure(409, Reason::Conflict, e.to_string());
            s.details = Some(StatusDetails { causes: e.causes(), ..StatusDetails::default() });
            Box::new(s)
        }
        other => {
            let mut s = Status::failure(422, Reason::Invalid, other.to_string());
            s.details = Some(StatusDetails {
                name: name.to_owned(),
                group: kind.resource.group.clone(),
                kind: kind.resource.kind.clone(),
                ..StatusDetails::default()
            });
            Box::new(s)
        }
    }
}

/// The label the server keeps on every namespace, equal to its name.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A 422 `Invalid` for one object with these causes, rendered as the real server renders it.
fn invalid_causes(kind: &KindInfo, name: &str, causes: Vec<StatusCause>) -> Box<Status> {
    let rendered: Vec<String> = causes.iter().map(|c| format!("{}: {}", c.field, c.message)).collect();
    let list = if rendered.len() == 1 { rendered[0].clone() } else { format!("[{}]", rendered.join(", ")) };
    let mut s = Status::failure(422, Reason::Invalid, format!("{} {name:?} is invalid: {list}", kind.resource.kind));
    s.details = Some(StatusDetails {
        name: name.to_owned(),
        group: kind.resource.group.clone(),
        kind: kind.resource.kind.clone(),
        causes,
        ..StatusDetails::default()
    });
    Box::new(s)
}

/// Why a label or annotation key is not a qualified name (`[prefix/]name`), if it is not.
fn qualified_name_error(key: &str) -> Option<String> {
    const NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            return Some("prefix part must be non-empty".into());
        }
        if !is_dns1123_subdomain(p) {
            return Some("prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character".into());
        }
    }
    if name.is_empty() {
        return Some("name part must be non-empty".into());
    }
    if name.len() > 63 {
        return Some("name part must be no more than 63 bytes".into());
    }
    if !is_label_value(name) || name.contains('/') {
        return Some(format!("name part {NAME_MSG}"));
    }
    None
}

/// `(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?`, without the length limit.
fn is_label_value(v: &str) -> bool {
    let b = v.as_bytes();
    b.is_empty()
        || (b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.')))
}

/// The field errors of an object's labels, annotation keys and (for ConfigMaps and Secrets)
/// data keys, as the real server's validation reports them.
fn field_causes(kind: &KindInfo, obj: &Value) -> Vec<StatusCause> {
    let mut causes = Vec::new();
    let mut cause = |field: String, value: &str, why: String| {
        causes.push(StatusCause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {value:?}: {why}"),
            field,
        });
    };
    for (k, v) in obj["metadata"]["labels"].as_object().into_iter().flatten() {
        if let Some(why) = qualified_name_error(k) {
            cause("metadata.labels".into(), k, why);
        }
        let v = v.as_str().unwrap_or_default();
        if v.len() > 63 {
            cause("metadata.labels".into(), v, "must be no more than 63 bytes".into());
        } else if !is_label_value(v) {
            cause(
                "metadata.labels".into(),
                v,
                "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".into(),
            );
        }
    }
    for k in obj["metadata"]["annotations"].as_object().into_iter().flatten().map(|(k, _)| k) {
        if let Some(why) = qualified_name_error(&k.to_lowercase()) {
            cause("metadata.annotations".into(), k, why);
        }
    }
    if kind.builtin
        && kind.resource.group.is_empty()
        && matches!(kind.resource.plural.as_str(), "configmaps" | "secrets")
    {
        for field in ["data", "binaryData", "stringData"] {
            for k in obj[field].as_object().into_iter().flatten().map(|(k, _)| k) {
                let why = if k.is_empty()
                    || k.len() > 253
                    || !k.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
                {
                    Some(
                        "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                    )
                } else if k == "." {
                    Some("must not be '.'")
                } else if k == ".." {
                    Some("must not be '..'")
                } else if k.starts_with("..") {
                    Some("must not start with '..'")
                } else {
                    None
                };
                if let Some(why) = why {
                    cause(format!("{field}[{k}]"), k, why.into());
                }
            }
        }
    }
    causes
}

/// The finalizer the real server puts on a CustomResourceDefinition when it is deleted.
const CRD_CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";
