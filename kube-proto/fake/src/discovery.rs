//! Discovery, as the real server serves it: `/api` and `/apis` in both forms (aggregated
//! `apidiscovery.k8s.io/v2` when the `Accept` asks for it, else `APIVersions` and
//! `APIGroupList`), `/apis/{group}` (`APIGroup`) and `/api/v1`, `/apis/{group}/{version}`
//! (`APIResourceList`). What is listed is what the fake serves at that moment: its built-in
//! kinds, with the real server's short names, categories and verbs, and the kinds of the
//! CustomResourceDefinitions that exist, with the names their CRD declares.
//!
//! Simpler than the real server: no `storageVersionHash`, only the subresources the fake serves
//! (pods have no `log` or `proxy`), and built-in groups listed in the real server's order with
//! custom resource groups after them by name.

use std::collections::BTreeMap;

use http::{HeaderValue, Method, StatusCode};
use serde_json::{Map, Value, json};

use super::{FakeApiServer, KindInfo, json_response, status_response};
use kube_proto::error::{Reason, Status};

/// The aggregated form's media type, as the real server answers it.
const AGGREGATED_V2: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// The built-in groups in the order the real server lists them.
const GROUP_ORDER: &[&str] = &[
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
    "resource.k8s.io",
    "flowcontrol.apiserver.k8s.io",
];

const ALL_VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
const SUB_VERBS: &[&str] = &["get", "patch", "update"];

/// One subresource as discovery lists it: name, response kind (group, version, kind; empty
/// group and version meaning the resource's own) and verbs.
struct Sub {
    name: &'static str,
    group: String,
    version: String,
    kind: String,
    verbs: &'static [&'static str],
}

/// One resource as discovery lists it.
struct Entry {
    group: String,
    version: String,
    plural: String,
    singular: String,
    kind: String,
    namespaced: bool,
    verbs: &'static [&'static str],
    short_names: Vec<String>,
    categories: Vec<String>,
    subresources: Vec<Sub>,
    /// Whether response kinds name their group and version (custom resources) or leave them
    /// empty (built-in kinds).
    full_response_kind: bool,
}

/// The real server's short names and categories of the fake's built-in kinds.
fn builtin_names(group: &str, plural: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match (group, plural) {
        ("", "namespaces") => (&["ns"], &[]),
        ("", "configmaps") => (&["cm"], &[]),
        ("", "pods") => (&["po"], &["all"]),
        ("", "services") => (&["svc"], &["all"]),
        ("", "serviceaccounts") => (&["sa"], &[]),
        ("", "endpoints") => (&["ep"], &[]),
        ("", "events") | ("events.k8s.io", "events") => (&["ev"], &[]),
        ("", "nodes") => (&["no"], &[]),
        ("", "persistentvolumes") => (&["pv"], &[]),
        ("", "persistentvolumeclaims") => (&["pvc"], &[]),
        ("", "replicationcontrollers") => (&["rc"], &["all"]),
        ("apps", "deployments") => (&["deploy"], &["all"]),
        ("apps", "replicasets") => (&["rs"], &["all"]),
        ("apps", "statefulsets") => (&["sts"], &["all"]),
        ("apps", "daemonsets") => (&["ds"], &["all"]),
        ("batch", "jobs") => (&[], &["all"]),
        ("batch", "cronjobs") => (&["cj"], &["all"]),
        ("policy", "poddisruptionbudgets") => (&["pdb"], &[]),
        ("apiextensions.k8s.io", "customresourcedefinitions") => (&["crd", "crds"], &["api-extensions"]),
        _ => (&[], &[]),
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_owned)).collect()
}

/// Orders versions as Kubernetes does: GA before beta before alpha, higher numbers first, and
/// versions of another form last, by name.
fn version_priority(v: &str) -> (u8, std::cmp::Reverse<u64>, std::cmp::Reverse<u64>, String) {
    use std::cmp::Reverse;
    let parse = |s: &str| -> Option<(u8, u64, u64)> {
        let rest = s.strip_prefix('v')?;
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let major: u64 = rest[..digits].parse().ok()?;
        match &rest[digits..] {
            "" => Some((0, major, 0)),
            tail => {
                let (stage, minor) = if let Some(n) = tail.strip_prefix("beta") {
                    (1, n)
                } else if let Some(n) = tail.strip_prefix("alpha") {
                    (2, n)
                } else {
                    return None;
                };
                Some((stage, major, minor.parse().ok()?))
            }
        }
    };
    match parse(v) {
        Some((stage, major, minor)) => (stage, Reverse(major), Reverse(minor), String::new()),
        None => (3, Reverse(0), Reverse(0), v.to_owned()),
    }
}

impl FakeApiServer {
    /// Answers a discovery request, or `None` when the request is not one.
    pub(super) fn serve_discovery(&self, req: &http::Request<Vec<u8>>) -> Option<http::Response<Vec<u8>>> {
        if req.method() != Method::GET {
            return None;
        }
        let path = req.uri().path().trim_end_matches('/');
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let accept =
            req.headers().get(http::header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
        let groups = self.discovery_groups();
        match segs.as_slice() {
            ["api"] | ["apis"] => {
                let core = segs[0] == "api";
                let listed: Vec<(&String, &BTreeMap<String, Vec<Entry>>)> =
                    groups.iter().filter(|(g, _)| g.is_empty() == core).map(|(g, v)| (g, v)).collect();
                Some(match negotiate(accept) {
                    Ok(true) => aggregated(&listed),
                    Ok(false) if core => json_response(
                        StatusCode::OK,
                        &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                            {"clientCIDR": "0.0.0.0/0", "serverAddress": "fake-apiserver.invalid:443"}]}),
                    ),
                    Ok(false) => json_response(
                        StatusCode::OK,
                        &json!({"kind": "APIGroupList", "apiVersion": "v1",
                                "groups": listed.iter().map(|(g, vs)| legacy_group(g, vs)).collect::<Vec<_>>()}),
                    ),
                    Err(status) => status_response(&status),
                })
            }
            ["apis", group] => {
                let (name, versions) = groups.iter().find(|(g, _)| !g.is_empty() && g.as_str() == *group)?;
                let mut body = legacy_group(name, versions);
                body["kind"] = "APIGroup".into();
                body["apiVersion"] = "v1".into();
                Some(json_response(StatusCode::OK, &body))
            }
            ["api", version] => {
                let entries = groups.iter().find(|(g, _)| g.is_empty())?.1.get(*version)?;
                let body =
                    json!({"kind": "APIResourceList", "groupVersion": version, "resources": legacy_resources(entries)});
                Some(json_response(StatusCode::OK, &body))
            }
            ["apis", group, version] => {
                let entries = groups.iter().find(|(g, _)| !g.is_empty() && g.as_str() == *group)?.1.get(*version)?;
                let body = json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": format!("{group}/{version}"),
                                  "resources": legacy_resources(entries)});
                Some(json_response(StatusCode::OK, &body))
            }
            _ => None,
        }
    }

    /// What is served now: groups in the real server's order, each with its versions (by
    /// version priority, at the time of listing) and their resources by plural.
    fn discovery_groups(&self) -> Vec<(String, BTreeMap<String, Vec<Entry>>)> {
        let crds: Vec<Value> = self
            .kind_id("apiextensions.k8s.io", "customresourcedefinitions")
            .map(|id| {
                self.store.range_at(id, None, self.store.current_rv(), None).map(|(_, v)| (**v).clone()).collect()
            })
            .unwrap_or_default();
        let mut groups: BTreeMap<String, BTreeMap<String, Vec<Entry>>> = BTreeMap::new();
        for (_, kind) in self.served() {
            let entry = entry(kind, &crds);
            groups.entry(entry.group.clone()).or_default().entry(entry.version.clone()).or_default().push(entry);
        }
        for versions in groups.values_mut() {
            for entries in versions.values_mut() {
                entries.sort_by(|a, b| a.plural.cmp(&b.plural));
            }
        }
        let rank = |g: &str| match GROUP_ORDER.iter().position(|o| *o == g) {
            _ if g.is_empty() => (0, String::new()),
            Some(i) => (1 + i, String::new()),
            None => (GROUP_ORDER.len() + 1, g.to_owned()),
        };
        let mut out: Vec<(String, BTreeMap<String, Vec<Entry>>)> = groups.into_iter().collect();
        out.sort_by_key(|(g, _)| rank(g));
        out
    }
}

/// The discovery entry of a served kind: the built-in table's names, or its CRD's.
fn entry(kind: &KindInfo, crds: &[Value]) -> Entry {
    let r = &kind.resource;
    let status = |group: &str, version: &str| Sub {
        name: "status",
        group: group.to_owned(),
        version: version.to_owned(),
        kind: r.kind.clone(),
        verbs: SUB_VERBS,
    };
    let scale = || Sub {
        name: "scale",
        group: "autoscaling".into(),
        version: "v1".into(),
        kind: "Scale".into(),
        verbs: SUB_VERBS,
    };
    if kind.builtin {
        let (short, categories) = builtin_names(&r.group, &r.plural);
        let own = |name, kind: &str, verbs| Sub {
            name,
            group: String::new(),
            version: String::new(),
            kind: kind.into(),
            verbs,
        };
        let mut subresources = Vec::new();
        if r.group.is_empty() && r.plural == "pods" {
            subresources.push(own("attach", "PodAttachOptions", &["create", "get"]));
            subresources.push(own("binding", "Binding", &["create"]));
            subresources.push(own("ephemeralcontainers", "Pod", SUB_VERBS));
            subresources.push(Sub {
                name: "eviction",
                group: "policy".into(),
                version: "v1".into(),
                kind: "Eviction".into(),
                verbs: &["create"],
            });
            subresources.push(own("exec", "PodExecOptions", &["create", "get"]));
            subresources.push(own("portforward", "PodPortForwardOptions", &["create", "get"]));
        }
        if kind.scale.is_some() {
            subresources.push(scale());
        }
        if kind.status_subresource {
            subresources.push(status("", ""));
        }
        let namespaces = r.group.is_empty() && r.plural == "namespaces";
        return Entry {
            group: r.group.clone(),
            version: r.version.clone(),
            plural: r.plural.clone(),
            singular: r.kind.to_lowercase(),
            kind: r.kind.clone(),
            namespaced: r.namespaced,
            // Namespaces have no deletecollection.
            verbs: if namespaces {
                &["create", "delete", "get", "list", "patch", "update", "watch"]
            } else {
                ALL_VERBS
            },
            short_names: short.iter().map(|s| (*s).to_owned()).collect(),
            categories: categories.iter().map(|s| (*s).to_owned()).collect(),
            subresources,
            full_response_kind: false,
        };
    }
    let names = crds
        .iter()
        .find(|c| c["spec"]["group"] == r.group.as_str() && c["spec"]["names"]["plural"] == r.plural.as_str())
        .map(|c| &c["spec"]["names"]);
    let mut subresources = Vec::new();
    if kind.scale.is_some() {
        subresources.push(scale());
    }
    if kind.status_subresource {
        subresources.push(status(&r.group, &r.version));
    }
    Entry {
        group: r.group.clone(),
        version: r.version.clone(),
        plural: r.plural.clone(),
        singular: names.and_then(|n| n["singular"].as_str()).map_or_else(|| r.kind.to_lowercase(), str::to_owned),
        kind: r.kind.clone(),
        namespaced: r.namespaced,
        verbs: ALL_VERBS,
        short_names: names.map(|n| strings(&n["shortNames"])).unwrap_or_default(),
        categories: names.map(|n| strings(&n["categories"])).unwrap_or_default(),
        subresources,
        full_response_kind: true,
    }
}

/// Whether the `Accept` asks for aggregated discovery (`true`) or the legacy documents, or a
/// 406 when it allows neither. The first media type the server can serve wins.
fn negotiate(accept: &str) -> Result<bool, Box<Status>> {
    for part in accept.split(',') {
        let params: Vec<&str> = part.split(';').map(str::trim).collect();
        let media = params.first().copied().unwrap_or("");
        if !matches!(media, "application/json" | "*/*" | "application/*") {
            continue;
        }
        let param = |name: &str| params.iter().find_map(|p| p.strip_prefix(name)?.strip_prefix('='));
        match param("as") {
            None => return Ok(false),
            Some("APIGroupDiscoveryList") if param("g") == Some("apidiscovery.k8s.io") && param("v") == Some("v2") => {
                return Ok(true);
            }
            Some(_) => continue,
        }
    }
    Err(Box::new(Status::failure(
        406,
        Reason::NotAcceptable,
        "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf",
    )))
}

fn response_kind(e: &Entry, group: &str, version: &str, kind: &str) -> Value {
    let (g, v) = if e.full_response_kind && group.is_empty() && version.is_empty() {
        (e.group.as_str(), e.version.as_str())
    } else {
        (group, version)
    };
    json!({"group": g, "version": v, "kind": kind})
}

fn aggregated(groups: &[(&String, &BTreeMap<String, Vec<Entry>>)]) -> http::Response<Vec<u8>> {
    let items: Vec<Value> = groups
        .iter()
        .map(|(name, versions)| {
            let mut ordered: Vec<(&String, &Vec<Entry>)> = versions.iter().collect();
            ordered.sort_by_key(|(v, _)| version_priority(v));
            let versions: Vec<Value> = ordered
                .into_iter()
                .map(|(version, entries)| {
                    let resources: Vec<Value> = entries.iter().map(aggregated_resource).collect();
                    json!({"version": version, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let metadata = if name.is_empty() { json!({}) } else { json!({"name": name}) };
            json!({"metadata": metadata, "versions": versions})
        })
        .collect();
    let body = json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items});
    let mut resp = json_response(StatusCode::OK, &body);
    resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static(AGGREGATED_V2));
    resp
}

fn aggregated_resource(e: &Entry) -> Value {
    let mut m = Map::new();
    m.insert("resource".into(), e.plural.clone().into());
    m.insert("responseKind".into(), response_kind(e, "", "", &e.kind));
    m.insert("scope".into(), if e.namespaced { "Namespaced" } else { "Cluster" }.into());
    m.insert("singularResource".into(), e.singular.clone().into());
    m.insert("verbs".into(), json!(e.verbs));
    if !e.short_names.is_empty() {
        m.insert("shortNames".into(), json!(e.short_names));
    }
    if !e.categories.is_empty() {
        m.insert("categories".into(), json!(e.categories));
    }
    if !e.subresources.is_empty() {
        let mut subs: Vec<&Sub> = e.subresources.iter().collect();
        subs.sort_by_key(|s| s.name);
        let subs: Vec<Value> = subs
            .into_iter()
            .map(|s| {
                json!({"subresource": s.name, "responseKind": response_kind(e, &s.group, &s.version, &s.kind), "verbs": s.verbs})
            })
            .collect();
        m.insert("subresources".into(), subs.into());
    }
    Value::Object(m)
}

fn legacy_group(name: &str, versions: &BTreeMap<String, Vec<Entry>>) -> Value {
    let mut ordered: Vec<&String> = versions.keys().collect();
    ordered.sort_by_key(|v| version_priority(v));
    let gv = |v: &str| json!({"groupVersion": format!("{name}/{v}"), "version": v});
    json!({"name": name, "versions": ordered.iter().map(|v| gv(v)).collect::<Vec<_>>(), "preferredVersion": gv(ordered[0])})
}

fn legacy_resources(entries: &[Entry]) -> Vec<Value> {
    let mut out: Vec<(String, Value)> = Vec::new();
    for e in entries {
        let mut m = Map::new();
        m.insert("name".into(), e.plural.clone().into());
        m.insert("singularName".into(), e.singular.clone().into());
        m.insert("namespaced".into(), e.namespaced.into());
        m.insert("kind".into(), e.kind.clone().into());
        m.insert("verbs".into(), json!(e.verbs));
        if !e.short_names.is_empty() {
            m.insert("shortNames".into(), json!(e.short_names));
        }
        if !e.categories.is_empty() {
            m.insert("categories".into(), json!(e.categories));
        }
        out.push((e.plural.clone(), Value::Object(m)));
        for s in &e.subresources {
            let name = format!("{}/{}", e.plural, s.name);
            let mut m = Map::new();
            m.insert("name".into(), name.clone().into());
            m.insert("singularName".into(), "".into());
            m.insert("namespaced".into(), e.namespaced.into());
            // The group and version are given where they are not the resource's own.
            if !s.group.is_empty() && (s.group != e.group || s.version != e.version) {
                m.insert("group".into(), s.group.clone().into());
                m.insert("version".into(), s.version.clone().into());
            }
            m.insert("kind".into(), s.kind.clone().into());
            m.insert("verbs".into(), json!(s.verbs));
            out.push((name, Value::Object(m)));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, v)| v).collect()
}
