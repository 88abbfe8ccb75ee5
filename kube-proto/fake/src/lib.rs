//! A fake Kubernetes API server: a pure, in-memory model of kube-apiserver.
//!
//! It answers [`http::Request`]s as the real server does (status codes, `Status` bodies,
//! resourceVersion semantics, pagination, watches with bookmarks and 410s), with no IO: time is
//! passed in as `now`, and uids and generated names come from a seed. Test code, simulation
//! harnesses and the in-process transport drive it:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube_proto_fake::{FakeApiServer, FakeConfig, Reply};
//! use kube_proto::{PostParams, Request, Response};
//!
//! let t0 = Instant::now();
//! let mut server = FakeApiServer::new(FakeConfig::default(), t0);
//! let cms = Request::namespaced::<ConfigMap>("default");
//! let cm: ConfigMap = serde_json::from_value(serde_json::json!({"metadata": {"name": "a"}})).unwrap();
//! let Reply::Response(resp) = server.handle(t0, &cms.create(&PostParams::default(), &cm).unwrap()) else { panic!() };
//! assert_eq!(resp.status(), 201);
//! let created: ConfigMap = Response::from_http(&resp).object().unwrap();
//! assert!(created.metadata.uid.is_some());
//! ```
//!
//! Where it is simpler than the real server, the item's documentation says so. It has no
//! authentication or authorization, but [`FakeApiServer::deny`] refuses chosen requests with
//! the real server's 403 (see [`access`]).
//!
//! It is a crate of its own over [`kube_proto`], pure as the core is (no IO, no clock, no
//! threads). `kube-runtime`'s `fake` feature re-exports it as `kube_runtime::fake::server` and
//! serves it through an in-process transport.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod access;
mod connect;
mod context;
mod crd_schema;
mod discovery;
pub mod exec;
pub mod faults;
mod handlers;
pub mod kinds;
pub mod patch;
#[cfg(feature = "protobuf")]
mod protobuf;
mod session;
mod spdy_session;
pub mod store;
mod watch;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderValue, Method, StatusCode};
use serde_json::{Value, json};

use context::{Call, Write};
pub use kinds::{KindInfo, ScalePaths};
use kube_proto::error::{Reason, Status, StatusCause, StatusDetails};
pub use session::{FakeSession, SessionError};
use store::{KindId, Store};
pub use watch::WatchPoll;

/// Settings of a fake API server.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// Seeds uids and generated names, so that runs are reproducible.
    pub seed: u64,
    /// How many changes the watch history keeps; watching from before them gives 410 Gone.
    pub history: usize,
    /// How often a watch with bookmarks is due one (the real watch cache: every minute). As in
    /// the real cache, one is also due 2 s before the watch's deadline (`timeoutSeconds`), a
    /// streaming list's first is due at once, and each goes out at the next tick of a
    /// once-a-second timer with a quarter second of jitter, and only if the resourceVersion has
    /// moved past where the watch started.
    pub bookmark_interval: Duration,
    /// The wall-clock time at `start`, in seconds since the Unix epoch (for creationTimestamp).
    pub wall_clock_start: i64,
    /// The resourceVersion of the first write.
    pub first_resource_version: u64,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            seed: 1,
            history: 10_000,
            bookmark_interval: Duration::from_secs(60),
            // 2026-11-25T00:00:00Z
            wall_clock_start: 1_795_564_800,
            first_resource_version: 100,
        }
    }
}

/// Identifies a watch served by the fake.
pub type WatchId = u64;

/// The fake's answer to a request.
#[derive(Debug)]
pub enum Reply {
    /// A complete response.
    Response(http::Response<Vec<u8>>),
    /// A watch: `head` is the response's status and headers; its body comes from
    /// [`FakeApiServer::poll_watch`].
    Watch {
        /// Which watch to poll.
        id: WatchId,
        /// The response head (200, `application/json`, chunked).
        head: http::Response<()>,
    },
    /// A switch to WebSocket (exec, attach, port-forward): `head` is the `101 Switching
    /// Protocols` to write, and the connection then runs `session` (see [`FakeSession`] for
    /// the loop, and [`exec`] for what runs in the pod).
    Upgrade {
        /// The `101` with `Upgrade`, `Connection`, `Sec-WebSocket-Accept` and the chosen
        /// `Sec-WebSocket-Protocol`.
        head: http::Response<()>,
        /// The server's end of the connection.
        session: Box<FakeSession>,
    },
}

impl Reply {
    /// The complete response, or `None` for a watch or an upgrade.
    pub fn into_response(self) -> Option<http::Response<Vec<u8>>> {
        match self {
            Reply::Response(r) => Some(r),
            Reply::Watch { .. } | Reply::Upgrade { .. } => None,
        }
    }
}

/// The in-memory API server.
#[derive(Debug)]
pub struct FakeApiServer {
    config: FakeConfig,
    start: Instant,
    kinds: Vec<KindInfo>,
    /// The watches answered in protobuf frames.
    #[cfg(feature = "protobuf")]
    protobuf_watches: std::collections::BTreeSet<WatchId>,
    /// Kinds no longer served (their CRD was deleted); their ids stay, as the store's keys use them.
    unserved: std::collections::BTreeSet<KindId>,
    store: Store,
    watches: BTreeMap<WatchId, watch::WatchState>,
    next_watch: WatchId,
    rng: kube_proto::rng::SplitMix64,
    /// The watch cache's bookmark timer.
    bookmark_clock: watch::BookmarkClock,
    /// Requests to refuse with 403 ([`FakeApiServer::deny`]).
    denials: Vec<access::DenyRule>,
    /// What runs in pods on exec and attach, and listens on their ports, by namespace and name.
    scripts: BTreeMap<(String, String), connect::PodScripts>,
    /// The `fieldValidation` of the request being served.
    field_validation: crd_schema::FieldValidation,
    /// The `Warning` headers of the response being made.
    warnings: Vec<String>,
}

/// The result of a handler: a response body and status, or an error `Status`.
type HResult = Result<(StatusCode, Value), Box<Status>>;

impl FakeApiServer {
    /// A server with the built-in kinds and the namespaces `default`, `kube-system`,
    /// `kube-public` and `kube-node-lease`, as a fresh cluster has.
    pub fn new(config: FakeConfig, start: Instant) -> Self {
        let store = Store::new(config.first_resource_version, config.history.max(1));
        let mut server = FakeApiServer {
            rng: kube_proto::rng::SplitMix64::new(config.seed ^ 0x9E37_79B9_7F4A_7C15),
            bookmark_clock: watch::BookmarkClock::new(start, config.seed),
            config,
            start,
            kinds: kinds::builtin_kinds(),
            #[cfg(feature = "protobuf")]
            protobuf_watches: std::collections::BTreeSet::new(),
            unserved: std::collections::BTreeSet::new(),
            store,
            watches: BTreeMap::new(),
            next_watch: 1,
            denials: Vec::new(),
            scripts: BTreeMap::new(),
            field_validation: crd_schema::FieldValidation::default(),
            warnings: Vec::new(),
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            let ns_kind = server.kind_id("", "namespaces").expect("namespaces are built in");
            server
                .create_object(Write::new(start, "fake-apiserver"), ns_kind, None, obj)
                .expect("the built-in namespaces are valid");
        }
        server
    }

    /// Serves another kind (a custom resource without creating its CRD, for example).
    pub fn register(&mut self, kind: KindInfo) {
        let r = &kind.resource;
        match self.kinds.iter().position(|k| {
            k.resource.group == r.group && k.resource.version == r.version && k.resource.plural == r.plural
        }) {
            Some(id) => {
                self.kinds[id] = kind;
                self.unserved.remove(&id);
            }
            None => self.kinds.push(kind),
        }
    }

    /// Stops serving a kind (its CRD is gone): requests for it get 404 again.
    fn unserve(&mut self, kind: KindId) {
        self.unserved.insert(kind);
    }

    fn served(&self) -> impl Iterator<Item = (KindId, &KindInfo)> + '_ {
        self.kinds.iter().enumerate().filter(|(i, _)| !self.unserved.contains(i))
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.store.current_rv()
    }

    /// Forgets the history: lists at and watches from any earlier resourceVersion get 410 Gone,
    /// and continue tokens expire, as after an etcd compaction.
    pub fn compact(&mut self) {
        self.store.compact();
    }

    /// Handles one request at time `now`. With the `protobuf` feature, a request that asks for
    /// `application/vnd.kubernetes.protobuf` first is answered in protobuf for built-in kinds.
    pub fn handle(&mut self, now: Instant, req: &http::Request<Vec<u8>>) -> Reply {
        #[cfg(feature = "protobuf")]
        if let Some(wanted) = protobuf::wanted(req) {
            return self.handle_protobuf(now, wanted);
        }
        self.handle_json(now, req)
    }

    fn handle_json(&mut self, now: Instant, req: &http::Request<Vec<u8>>) -> Reply {
        let reply = match self.dispatch(now, req) {
            Ok(reply) => reply,
            Err(resp) => Reply::Response(*resp),
        };
        if req.method() != Method::GET {
            // The controllers that finish deletions run after every write: a namespace goes once
            // it is empty, a CRD once its custom resources are gone.
            self.sweep_namespaces();
            self.sweep_crds(now);
        }
        reply
    }

    fn dispatch(&mut self, now: Instant, req: &http::Request<Vec<u8>>) -> Result<Reply, Box<http::Response<Vec<u8>>>> {
        if let Some(resp) = self.serve_discovery(req) {
            return Ok(Reply::Response(resp));
        }
        let route = self.route(req)?;
        let query = parse_query(req.uri().query().unwrap_or(""));
        self.warnings.clear();
        self.field_validation =
            crd_schema::FieldValidation::from_query(query.get("fieldValidation").map(String::as_str));
        let is_watch = route.legacy_watch || query.get("watch").is_some_and(|v| v == "true" || v == "1");
        let method = req.method();
        // Authorization comes before everything else the request asks.
        if !self.denials.is_empty()
            && let Some(status) = self.refusal(&self.attributes(&route, method, is_watch))
        {
            return Err(Box::new(status_response(&status)));
        }
        if let (Some(name), Some(sub)) = (&route.name, &route.subresource)
            && matches!(sub.as_str(), "exec" | "attach" | "portforward")
            && self.is_builtin(route.kind, "", "pods")
        {
            return Ok(self.connect(&route, name, sub, req));
        }
        let accept =
            req.headers().get(http::header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
        let meta = match metadata_accept(accept) {
            Ok(m) => m,
            Err(status) => return Err(Box::new(status_response(&status))),
        };
        let call = Call { now, route: &route, req, query: &query };
        let result = match (&route.name, &route.subresource, method) {
            (None, None, &Method::GET) if is_watch => {
                return self.start_watch(now, &route, &query, meta).map_err(|s| Box::new(status_response(&s)));
            }
            (None, None, &Method::GET) => self.list(&route, &query),
            // A namespaced kind is created in its namespace's collection, not the all-namespaces one.
            (None, None, &Method::POST) if !self.kinds[route.kind].resource.namespaced || route.namespace.is_some() => {
                self.create(call)
            }
            // Namespaces have no deletecollection.
            (None, None, &Method::DELETE) if !self.is_builtin(route.kind, "", "namespaces") => {
                self.delete_collection(call)
            }
            (Some(name), None, &Method::GET) => self.get(&route, name, &query),
            (Some(name), None, &Method::PUT) => self.replace(call, name, None),
            (Some(name), None, &Method::PATCH) => self.patch(call, name, None),
            (Some(name), None, &Method::DELETE) => self.delete(call, name),
            (Some(name), Some(sub), _) => self.subresource(call, name, sub),
            _ => {
                let mut s = Status::failure(
                    405,
                    Reason::MethodNotAllowed,
                    "the server does not allow this method on the requested resource",
                );
                s.details = Some(StatusDetails::default());
                Err(Box::new(s))
            }
        };
        let resp = match result {
            Ok((code, body)) => {
                let body = match meta {
                    MetaAccept::None => body,
                    MetaAccept::Object if body.get("items").is_some() => {
                        return Err(Box::new(status_response(&Status::failure(
                            406,
                            Reason::NotAcceptable,
                            "you requested PartialObjectMetadata, but the requested object is a list",
                        ))));
                    }
                    MetaAccept::List if body.get("items").is_none() => {
                        return Err(Box::new(status_response(&Status::failure(
                            406,
                            Reason::NotAcceptable,
                            "you requested PartialObjectMetadataList, but the requested object is not a list",
                        ))));
                    }
                    MetaAccept::Object | MetaAccept::List => to_partial_metadata(&body),
                };
                let mut resp = json_response(code, &body);
                for w in self.warnings.drain(..) {
                    if let Ok(v) = http::HeaderValue::from_str(&format!("299 - {w:?}")) {
                        resp.headers_mut().append(http::header::WARNING, v);
                    }
                }
                resp
            }
            Err(status) => status_response(&status),
        };
        Ok(Reply::Response(resp))
    }

    /// What a routed request asks for, as the real server's authorizer sees it.
    fn attributes(&self, route: &Route, method: &Method, is_watch: bool) -> access::Attributes {
        let collection = route.name.is_none();
        let verb = match *method {
            Method::GET | Method::HEAD if is_watch => "watch",
            Method::GET | Method::HEAD if collection => "list",
            Method::POST => "create",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE if collection => "deletecollection",
            Method::DELETE => "delete",
            _ => "get",
        };
        let resource = &self.kinds[route.kind].resource;
        // A namespace's own requests are in that namespace, as the real server's request info has it.
        let namespace = match (&route.namespace, resource.group.is_empty() && resource.plural == "namespaces") {
            (Some(ns), _) => ns.clone(),
            (None, true) => route.name.clone().unwrap_or_default(),
            (None, false) => String::new(),
        };
        access::Attributes {
            verb,
            group: resource.group.clone(),
            resource: resource.plural.clone(),
            subresource: route.subresource.clone().unwrap_or_default(),
            namespace,
            name: route.name.clone().unwrap_or_default(),
        }
    }

    fn is_builtin(&self, kind: KindId, group: &str, plural: &str) -> bool {
        let k = &self.kinds[kind];
        k.builtin && k.resource.group == group && k.resource.plural == plural
    }

    fn kind_id(&self, group: &str, plural: &str) -> Option<KindId> {
        self.served().find(|(_, k)| k.resource.group == group && k.resource.plural == plural).map(|(i, _)| i)
    }

    fn route(&self, req: &http::Request<Vec<u8>>) -> Result<Route, Box<http::Response<Vec<u8>>>> {
        // The path is unescaped before routing, as the real server's is: a name sent as
        // `my%20role` is the object `my role`. A malformed escape is refused as Go's HTTP server
        // refuses it.
        let decoded: Option<Vec<String>> =
            req.uri().path().trim_matches('/').split('/').map(kube_proto::params::decode_path_segment).collect();
        let Some(decoded) = decoded else { return Err(Box::new(bad_request_page())) };
        let segs: Vec<&str> = decoded.iter().map(String::as_str).collect();
        let (group, version, rest) = match segs.as_slice() {
            ["api", version, rest @ ..] => ("", *version, rest),
            ["apis", group, version, rest @ ..] => (*group, *version, rest),
            _ => return Err(Box::new(not_found_page())),
        };
        // Built-in groups answer for an unknown version or resource with a JSON `Status`; a group
        // served only by custom resources (and an unknown group) with the plain-text 404 page.
        let builtin_group = self.kinds.iter().any(|k| k.builtin && k.resource.group == group);
        let builtin_gv =
            self.kinds.iter().any(|k| k.builtin && k.resource.group == group && k.resource.version == version);
        let unknown_resource = || {
            let mut s = Status::failure(404, Reason::NotFound, "the server could not find the requested resource");
            s.details = Some(StatusDetails::default());
            Box::new(status_response(&s))
        };
        if !self.served().any(|(_, k)| k.resource.group == group && k.resource.version == version) {
            return Err(if builtin_group { unknown_resource() } else { Box::new(not_found_page()) });
        }
        let (legacy_watch, rest) = match rest {
            ["watch", rest @ ..] => (true, rest),
            _ => (false, rest),
        };
        let (namespace, plural, name, sub) = match rest {
            ["namespaces"] => (None, "namespaces", None, None),
            ["namespaces", name] => (None, "namespaces", Some(*name), None),
            ["namespaces", name, sub @ ("status" | "finalize")] => (None, "namespaces", Some(*name), Some(*sub)),
            ["namespaces", ns, plural] => (Some(*ns), *plural, None, None),
            ["namespaces", ns, plural, name] => (Some(*ns), *plural, Some(*name), None),
            ["namespaces", ns, plural, name, sub] => (Some(*ns), *plural, Some(*name), Some(*sub)),
            [plural] => (None, *plural, None, None),
            [plural, name] => (None, *plural, Some(*name), None),
            [plural, name, sub] => (None, *plural, Some(*name), Some(*sub)),
            _ => return Err(Box::new(not_found_page())),
        };
        let Some(kind) = self
            .served()
            .find(|(_, k)| k.resource.group == group && k.resource.version == version && k.resource.plural == plural)
            .map(|(i, _)| i)
        else {
            return Err(if builtin_gv { unknown_resource() } else { Box::new(not_found_page()) });
        };
        let namespaced = self.kinds[kind].resource.namespaced;
        if namespace.is_some() && !namespaced {
            return Err(Box::new(not_found_page()));
        }
        if namespace.is_none() && namespaced && name.is_some() {
            return Err(Box::new(not_found_page()));
        }
        Ok(Route {
            kind,
            namespace: namespace.map(str::to_owned),
            name: name.map(str::to_owned),
            subresource: sub.map(str::to_owned),
            legacy_watch,
        })
    }

    fn timestamp(&self, now: Instant) -> String {
        let secs = self.config.wall_clock_start + now.saturating_duration_since(self.start).as_secs() as i64;
        k8s_openapi::jiff::Timestamp::from_second(secs).map(|t| t.to_string()).unwrap_or_default()
    }

    fn next_random(&mut self) -> u64 {
        self.rng.next_u64()
    }

    fn new_uid(&mut self) -> String {
        let a = self.next_random();
        let b = self.next_random();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48) & 0x3fff,
            b & 0xffff_ffff_ffff
        )
    }

    fn generated_suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut r = self.next_random();
        (0..5)
            .map(|_| {
                let c = ALPHABET[(r % ALPHABET.len() as u64) as usize] as char;
                r /= ALPHABET.len() as u64;
                c
            })
            .collect()
    }
}

/// A parsed request path.
#[derive(Debug, Clone)]
struct Route {
    kind: KindId,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
    legacy_watch: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MetaAccept {
    None,
    Object,
    List,
}

fn metadata_accept(accept: &str) -> Result<MetaAccept, Box<Status>> {
    // The first media type this fake can serve wins, as in the real content negotiation.
    let mut json_with_unknown_as = false;
    for part in accept.split(',') {
        let params: Vec<&str> = part.split(';').map(str::trim).collect();
        let media = params.first().copied().unwrap_or("");
        if !matches!(media, "application/json" | "*/*" | "application/*") {
            continue;
        }
        let as_ = params.iter().find_map(|p| p.strip_prefix("as="));
        match as_ {
            None => return Ok(MetaAccept::None),
            Some("PartialObjectMetadata") => return Ok(MetaAccept::Object),
            Some("PartialObjectMetadataList") => return Ok(MetaAccept::List),
            Some(_) => json_with_unknown_as = true,
        }
    }
    if json_with_unknown_as {
        // JSON with a conversion (`as=`) the server does not know: no details, as the real server.
        return Err(Box::new(Status::failure(
            406,
            Reason::NotAcceptable,
            "only the following media types are accepted: application/json (the fake API server serves JSON and PartialObjectMetadata only)",
        )));
    }
    let mut s = Status::failure(
        406,
        Reason::NotAcceptable,
        format!(
            "406: Not Acceptable\n\nAvailable representations: application/json (the fake API server does not serve {accept:?})"
        ),
    );
    s.details = Some(StatusDetails::default());
    Err(Box::new(s))
}

fn to_partial_metadata(body: &Value) -> Value {
    if let Some(items) = body.get("items").and_then(Value::as_array) {
        let items: Vec<Value> = items
            .iter()
            .map(
                |i| json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": i["metadata"]}),
            )
            .collect();
        json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": body["metadata"], "items": items})
    } else {
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": body["metadata"]})
    }
}

/// Parses a query string, decoding `+` and percent-escapes. Repeated keys keep the last value
/// except where the handler reads all of them.
fn parse_query(q: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(percent_decode(k), percent_decode(v));
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn json_response(code: StatusCode, body: &Value) -> http::Response<Vec<u8>> {
    let mut resp = http::Response::new(serde_json::to_vec(body).unwrap_or_default());
    *resp.status_mut() = code;
    resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn status_json(s: &Status) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or_default();
    if let Value::Object(m) = &mut v {
        m.insert("kind".into(), "Status".into());
        m.insert("apiVersion".into(), "v1".into());
        if s.reason == Reason::default() {
            m.remove("reason");
        }
    }
    v
}

fn status_response(s: &Status) -> http::Response<Vec<u8>> {
    let code = u16::try_from(s.code).ok().and_then(|c| StatusCode::from_u16(c).ok());
    let mut resp = json_response(code.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), &status_json(s));
    if let Some(secs) = s.details.as_ref().and_then(|d| d.retry_after_seconds) {
        resp.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

fn not_found_page() -> http::Response<Vec<u8>> {
    let mut resp = http::Response::new(b"404 page not found\n".to_vec());
    *resp.status_mut() = StatusCode::NOT_FOUND;
    resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

/// Go's HTTP server's answer to a request line it cannot parse (a malformed `%` escape).
fn bad_request_page() -> http::Response<Vec<u8>> {
    let mut resp = http::Response::new(b"400 Bad Request".to_vec());
    *resp.status_mut() = StatusCode::BAD_REQUEST;
    resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

fn details(kind: &KindInfo, name: &str) -> Option<StatusDetails> {
    Some(StatusDetails {
        name: name.to_owned(),
        group: kind.resource.group.clone(),
        kind: kind.resource.plural.clone(),
        ..StatusDetails::default()
    })
}

fn not_found(kind: &KindInfo, name: &str) -> Box<Status> {
    let mut s = Status::failure(404, Reason::NotFound, format!("{} {name:?} not found", kind.qualified_plural()));
    s.details = details(kind, name);
    Box::new(s)
}

fn conflict(kind: &KindInfo, name: &str, what: &str) -> Box<Status> {
    let mut s = Status::failure(
        409,
        Reason::Conflict,
        format!("Operation cannot be fulfilled on {} {name:?}: {what}", kind.qualified_plural()),
    );
    s.details = details(kind, name);
    Box::new(s)
}

fn bad_request(msg: impl Into<String>) -> Box<Status> {
    Box::new(Status::failure(400, Reason::BadRequest, msg))
}

fn invalid(kind: &KindInfo, name: &str, field: &str, cause_reason: &str, msg: &str) -> Box<Status> {
    let mut s =
        Status::failure(422, Reason::Invalid, format!("{} {name:?} is invalid: {field}: {msg}", kind.resource.kind));
    s.details = Some(StatusDetails {
        name: name.to_owned(),
        group: kind.resource.group.clone(),
        kind: kind.resource.kind.clone(),
        causes: vec![StatusCause { reason: cause_reason.into(), message: msg.into(), field: field.into() }],
        ..StatusDetails::default()
    });
    Box::new(s)
}

fn options_invalid(options: &str, field: &str, cause_reason: &str, msg: &str) -> Box<Status> {
    options_invalid_causes(
        options,
        vec![StatusCause { reason: cause_reason.into(), message: msg.into(), field: field.into() }],
    )
}

/// A 422 on `ListOptions`, `PatchOptions`, ... with these causes, as the real server renders it.
fn options_invalid_causes(options: &str, causes: Vec<StatusCause>) -> Box<Status> {
    let rendered: Vec<String> = causes.iter().map(|c| format!("{}: {}", c.field, c.message)).collect();
    let list = if rendered.len() == 1 { rendered[0].clone() } else { format!("[{}]", rendered.join(", ")) };
    let mut s = Status::failure(422, Reason::Invalid, format!("{options}.meta.k8s.io \"\" is invalid: {list}"));
    s.details =
        Some(StatusDetails { group: "meta.k8s.io".into(), kind: options.into(), causes, ..StatusDetails::default() });
    Box::new(s)
}

/// The real server's validation of `ListOptions` for a LIST (`watch` false) or a WATCH.
fn validate_list_options(q: &BTreeMap<String, String>, watch: bool) -> Result<(), Box<Status>> {
    let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let rv = get("resourceVersion");
    let rv_match = get("resourceVersionMatch");
    let cont = get("continue");
    let send_initial = q.contains_key("sendInitialEvents");
    let mut causes = Vec::new();
    let forbidden = |causes: &mut Vec<StatusCause>, field: &str, msg: &str| {
        causes.push(StatusCause {
            reason: "FieldValueForbidden".into(),
            message: format!("Forbidden: {msg}"),
            field: field.into(),
        });
    };
    let not_supported = |causes: &mut Vec<StatusCause>, value: &str, supported: &str| {
        causes.push(StatusCause {
            reason: "FieldValueNotSupported".into(),
            message: format!("Unsupported value: {value:?}: supported values: {supported}"),
            field: "resourceVersionMatch".into(),
        });
    };
    if watch {
        if send_initial && rv_match != Some("NotOlderThan") {
            forbidden(
                &mut causes,
                "resourceVersionMatch",
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            );
        }
        if let Some(m) = rv_match {
            if !send_initial {
                forbidden(
                    &mut causes,
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                );
            }
            if m != "NotOlderThan" {
                not_supported(&mut causes, m, "\"NotOlderThan\"");
            }
            if cont.is_some() {
                forbidden(
                    &mut causes,
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden when continue is provided",
                );
            }
        }
    } else {
        if let Some(m) = rv_match {
            if rv.is_none() {
                forbidden(
                    &mut causes,
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                );
            }
            if cont.is_some() {
                forbidden(
                    &mut causes,
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden when continue is provided",
                );
            }
            if m != "Exact" && m != "NotOlderThan" {
                not_supported(&mut causes, m, "\"Exact\", \"NotOlderThan\", \"\"");
            }
            if m == "Exact" && rv == Some("0") {
                forbidden(
                    &mut causes,
                    "resourceVersionMatch",
                    "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                );
            }
        }
        if send_initial {
            forbidden(&mut causes, "sendInitialEvents", "sendInitialEvents is forbidden for list");
        }
    }
    if causes.is_empty() { Ok(()) } else { Err(options_invalid_causes("ListOptions", causes)) }
}

fn too_large_rv(requested: u64, current: u64) -> Box<Status> {
    let mut s = Status::failure(
        504,
        Reason::Timeout,
        format!("Timeout: Too large resource version: {requested}, current: {current}"),
    );
    s.details = Some(StatusDetails {
        causes: vec![StatusCause {
            reason: "ResourceVersionTooLarge".into(),
            message: "Too large resource version".into(),
            field: String::new(),
        }],
        retry_after_seconds: Some(1),
        ..StatusDetails::default()
    });
    Box::new(s)
}

fn arc(v: Value) -> Arc<Value> {
    Arc::new(v)
}
