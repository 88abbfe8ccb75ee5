//! Every Kubernetes REST request, built as an `http::Request<Vec<u8>>` with no IO.
//!
//! A [`Request`] is a collection URL (kind and scope); each verb validates its parameters as the
//! API server would, then returns the request with its method, path and query (percent-encoded as
//! the server expects), headers and body. The base URL and auth headers are the transport's.

use http::header::{ACCEPT, CONNECTION, CONTENT_TYPE, UPGRADE};
use http::{HeaderName, HeaderValue, Method};
use serde::Serialize;

use crate::error::RequestError;
use crate::params::{
    AttachParams, DeleteParams, EvictParams, GetParams, ListParams, LogParams, Patch, PatchParams, PostParams, Query,
    WatchParams, encode_path_segment,
};
use crate::resource::{DynamicObject, Resource};

/// `Accept` for JSON.
pub const JSON: &str = "application/json";
/// `Accept` for one object's metadata only.
pub const ACCEPT_METADATA: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
/// `Accept` for a list of metadata only.
pub const ACCEPT_METADATA_LIST: &str = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
/// The WebSocket subprotocols offered for exec and attach, newest first.
pub const EXEC_PROTOCOLS: &str = "v5.channel.k8s.io, v4.channel.k8s.io";
/// The WebSocket subprotocol offered for port forwarding.
pub const PORTFORWARD_PROTOCOL: &str = "v4.channel.k8s.io";

/// Whether `request` is a watch: a query with `watch` set to anything but empty, `false` or
/// `0` (as the server reads it). Its answer is a stream that lasts as long as the watch.
///
/// ```
/// use k8s_openapi::api::core::v1::Pod;
/// use kube_proto::{ListParams, Request, WatchParams};
///
/// let pods = Request::namespaced::<Pod>("default");
/// assert!(kube_proto::request::is_watch(&pods.watch(&WatchParams::default(), "1").unwrap()));
/// assert!(!kube_proto::request::is_watch(&pods.list(&ListParams::default()).unwrap()));
/// ```
pub fn is_watch<B>(request: &http::Request<B>) -> bool {
    request.uri().query().is_some_and(|q| {
        q.split('&').filter_map(|p| p.strip_prefix("watch=")).any(|v| !v.is_empty() && v != "false" && v != "0")
    })
}

/// The collection URL of one kind in one scope; its methods build the requests.
///
/// ```
/// use k8s_openapi::api::core::v1::Pod;
/// use kube_proto::{ListParams, Request};
///
/// let req = Request::namespaced::<Pod>("default").list(&ListParams::default().labels("app=web")).unwrap();
/// assert_eq!(req.method(), "GET");
/// assert_eq!(req.uri(), "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb");
/// assert_eq!(req.headers()["accept"], "application/json");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    url_path: String,
    namespace: Option<String>,
    /// A namespaced kind addressed without a namespace: lists work, object verbs do not.
    namespaced_kind: bool,
    invalid: Option<RequestError>,
}

impl Request {
    /// A request builder for a collection path such as `/api/v1/namespaces/default/pods`.
    pub fn new(url_path: impl Into<String>) -> Self {
        Request { url_path: url_path.into(), namespace: None, namespaced_kind: false, invalid: None }
    }

    /// Objects of a namespaced kind in one namespace.
    pub fn namespaced<K: Resource<DynamicType = ()>>(namespace: &str) -> Self {
        Self::namespaced_with::<K>(&(), namespace)
    }

    /// Objects of a namespaced kind in one namespace, with run-time type information.
    pub fn namespaced_with<K: Resource>(dt: &K::DynamicType, namespace: &str) -> Self {
        let invalid = validate_name("namespace", namespace).err();
        Request {
            url_path: K::url_path(dt, Some(namespace)),
            namespace: Some(namespace.to_owned()),
            namespaced_kind: K::is_namespaced(dt),
            invalid,
        }
    }

    /// Objects of a kind across all namespaces, or of a cluster-scoped kind.
    pub fn all<K: Resource<DynamicType = ()>>() -> Self {
        Self::all_with::<K>(&())
    }

    /// Objects of a kind across all namespaces, or of a cluster-scoped kind, with run-time type
    /// information.
    pub fn all_with<K: Resource>(dt: &K::DynamicType) -> Self {
        Request { namespaced_kind: K::is_namespaced(dt), ..Request::new(K::url_path(dt, None)) }
    }

    /// Objects of a dynamic kind: namespaced when `namespace` is given and the kind is namespaced.
    pub fn dynamic(resource: &crate::ApiResource, namespace: Option<&str>) -> Self {
        match namespace {
            Some(ns) if resource.namespaced => Self::namespaced_with::<DynamicObject>(resource, ns),
            _ => Self::all_with::<DynamicObject>(resource),
        }
    }

    /// The collection path.
    pub fn url_path(&self) -> &str {
        &self.url_path
    }

    fn check(&self) -> Result<(), RequestError> {
        match &self.invalid {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn object_path(&self, name: &str, extra: usize) -> Result<String, RequestError> {
        self.check()?;
        if self.namespaced_kind && self.namespace.is_none() {
            return Err(RequestError::NamespaceRequired);
        }
        validate_name("name", name)?;
        let mut p = String::with_capacity(self.url_path.len() + name.len() + extra + 64);
        p.push_str(&self.url_path);
        p.push('/');
        encode_path_segment(&mut p, name);
        Ok(p)
    }

    fn subresource_path(&self, name: &str, subresource: &str) -> Result<String, RequestError> {
        validate_name("subresource", subresource)?;
        let mut p = self.object_path(name, subresource.len() + 1)?;
        p.push('/');
        encode_path_segment(&mut p, subresource);
        Ok(p)
    }

    fn collection_path(&self, extra: usize) -> Result<String, RequestError> {
        self.check()?;
        let mut p = String::with_capacity(self.url_path.len() + extra);
        p.push_str(&self.url_path);
        Ok(p)
    }

    // ---- Reads ----

    /// `GET` one object.
    pub fn get(&self, name: &str, gp: &GetParams) -> Result<http::Request<Vec<u8>>, RequestError> {
        let mut p = self.object_path(name, 0)?;
        Query::new(&mut p).opt("resourceVersion", gp.resource_version.as_deref());
        build(Method::GET, p, JSON, None, Vec::new())
    }

    /// `GET` the collection (a LIST).
    pub fn list(&self, lp: &ListParams) -> Result<http::Request<Vec<u8>>, RequestError> {
        lp.validate()?;
        let mut p = self.collection_path(64)?;
        lp.write(&mut Query::new(&mut p));
        build(Method::GET, p, JSON, None, Vec::new())
    }

    /// `GET` the collection with `watch=true`, from `resource_version` (empty for none: the
    /// server then starts with the current state).
    pub fn watch(&self, wp: &WatchParams, resource_version: &str) -> Result<http::Request<Vec<u8>>, RequestError> {
        self.watch_with_accept(wp, resource_version, JSON)
    }

    fn watch_with_accept(
        &self,
        wp: &WatchParams,
        resource_version: &str,
        accept: &'static str,
    ) -> Result<http::Request<Vec<u8>>, RequestError> {
        wp.validate()?;
        let mut p = self.collection_path(96 + resource_version.len())?;
        wp.write(&mut Query::new(&mut p), resource_version);
        build(Method::GET, p, accept, None, Vec::new())
    }

    /// `GET` one object's metadata only (a `PartialObjectMetadata`).
    pub fn get_metadata(&self, name: &str, gp: &GetParams) -> Result<http::Request<Vec<u8>>, RequestError> {
        let mut req = self.get(name, gp)?;
        req.headers_mut().insert(ACCEPT, HeaderValue::from_static(ACCEPT_METADATA));
        Ok(req)
    }

    /// LIST metadata only (a `PartialObjectMetadataList`).
    pub fn list_metadata(&self, lp: &ListParams) -> Result<http::Request<Vec<u8>>, RequestError> {
        let mut req = self.list(lp)?;
        req.headers_mut().insert(ACCEPT, HeaderValue::from_static(ACCEPT_METADATA_LIST));
        Ok(req)
    }

    /// WATCH metadata only: every event's object is a `PartialObjectMetadata`.
    pub fn watch_metadata(
        &self,
        wp: &WatchParams,
        resource_version: &str,
    ) -> Result<http::Request<Vec<u8>>, RequestError> {
        self.watch_with_accept(wp, resource_version, ACCEPT_METADATA)
    }

    // ---- Writes ----

    /// `POST` a new object to the collection.
    pub fn create<T: Serialize>(&self, pp: &PostParams, data: &T) -> Result<http::Request<Vec<u8>>, RequestError> {
        pp.validate()?;
        let mut p = self.collection_path(64)?;
        pp.write(&mut Query::new(&mut p));
        build(Method::POST, p, JSON, Some(JSON), to_json(data)?)
    }

    /// `PUT` an object, replacing it. A `metadata.resourceVersion` in `data` makes it conditional.
    pub fn replace<T: Serialize>(
        &self,
        name: &str,
        pp: &PostParams,
        data: &T,
    ) -> Result<http::Request<Vec<u8>>, RequestError> {
        pp.validate()?;
        let mut p = self.object_path(name, 0)?;
        pp.write(&mut Query::new(&mut p));
        build(Method::PUT, p, JSON, Some(JSON), to_json(data)?)
    }

    /// `PATCH` an object with any kind of patch, including server-side apply.
    pub fn patch<P: Serialize>(
        &self,
        name: &str,
        pp: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<http::Request<Vec<u8>>, RequestError> {
        pp.validate(patch)?;
        let mut p = self.object_path(name, 0)?;
        pp.write(&mut Query::new(&mut p));
        build(Method::PATCH, p, JSON, Some(patch.content_type()), patch.serialize()?)
    }

    /// `PATCH` an object and receive its metadata only.
    pub fn patch_metadata<P: Serialize>(
        &self,
        name: &str,
        pp: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<http::Request<Vec<u8>>, RequestError> {
        let mut req = self.patch(name, pp, patch)?;
        req.headers_mut().insert(ACCEPT, HeaderValue::from_static(ACCEPT_METADATA));
        Ok(req)
    }

    /// `DELETE` an object. The answer is the object while deletion is pending (finalizers,
    /// foreground propagation), else a `Status`.
    pub fn delete(&self, name: &str, dp: &DeleteParams) -> Result<http::Request<Vec<u8>>, RequestError> {
        let p = self.object_path(name, 0)?;
        delete_request(p, dp)
    }

    /// `DELETE` the collection (deletecollection), filtered by `lp`'s selectors. The answer is
    /// the list of deleted objects.
    pub fn delete_collection(
        &self,
        dp: &DeleteParams,
        lp: &ListParams,
    ) -> Result<http::Request<Vec<u8>>, RequestError> {
        lp.validate()?;
        let mut p = self.collection_path(64)?;
        lp.write(&mut Query::new(&mut p));
        delete_request(p, dp)
    }

    // ---- Subresources ----

    /// `GET` a subresource, such as `status`, `scale` or `ephemeralcontainers`.
    pub fn get_subresource(&self, subresource: &str, name: &str) -> Result<http::Request<Vec<u8>>, RequestError> {
        let p = self.subresource_path(name, subresource)?;
        build(Method::GET, p, JSON, None, Vec::new())
    }

    /// `PUT` a subresource.
    pub fn replace_subresource<T: Serialize>(
        &self,
        subresource: &str,
        name: &str,
        pp: &PostParams,
        data: &T,
    ) -> Result<http::Request<Vec<u8>>, RequestError> {
        pp.validate()?;
        let mut p = self.subresource_path(name, subresource)?;
        pp.write(&mut Query::new(&mut p));
        build(Method::PUT, p, JSON, Some(JSON), to_json(data)?)
    }

    /// `PATCH` a subresource.
    pub fn patch_subresource<P: Serialize>(
        &self,
        subresource: &str,
        name: &str,
        pp: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<http::Request<Vec<u8>>, RequestError> {
        pp.validate(patch)?;
        let mut p = self.subresource_path(name, subresource)?;
        pp.write(&mut Query::new(&mut p));
        build(Method::PATCH, p, JSON, Some(patch.content_type()), patch.serialize()?)
    }

    /// `POST` to a subresource, such as `eviction`, `binding` or `token`.
    pub fn create_subresource<T: Serialize>(
        &self,
        subresource: &str,
        name: &str,
        pp: &PostParams,
        data: &T,
    ) -> Result<http::Request<Vec<u8>>, RequestError> {
        pp.validate()?;
        let mut p = self.subresource_path(name, subresource)?;
        pp.write(&mut Query::new(&mut p));
        build(Method::POST, p, JSON, Some(JSON), to_json(data)?)
    }

    /// `GET` a pod's log. The body is plain text (a stream of lines with `follow`).
    pub fn logs(&self, name: &str, lp: &LogParams) -> Result<http::Request<Vec<u8>>, RequestError> {
        lp.validate()?;
        let mut p = self.subresource_path(name, "log")?;
        lp.write(&mut Query::new(&mut p));
        build(Method::GET, p, "*/*", None, Vec::new())
    }

    /// `POST` a `policy/v1` `Eviction` of a pod, which honours PodDisruptionBudgets (429 when
    /// one would be violated).
    pub fn evict(&self, name: &str, ep: &EvictParams) -> Result<http::Request<Vec<u8>>, RequestError> {
        #[derive(Serialize)]
        struct EvictionMeta<'a> {
            name: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            namespace: Option<&'a str>,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Eviction<'a> {
            api_version: &'static str,
            kind: &'static str,
            metadata: EvictionMeta<'a>,
            #[serde(skip_serializing_if = "Option::is_none")]
            delete_options: Option<crate::params::DeleteOptions<'a>>,
        }
        let body = Eviction {
            api_version: "policy/v1",
            kind: "Eviction",
            metadata: EvictionMeta { name, namespace: self.namespace.as_deref() },
            delete_options: ep.delete_options.as_ref().map(DeleteParams::options),
        };
        self.create_subresource("eviction", name, &ep.post_options, &body)
    }

    /// The WebSocket upgrade `GET` that runs `command` in a pod's container (exec).
    ///
    /// The transport adds `Sec-WebSocket-Key` (see [`websocket_key`]) and the base URL.
    pub fn exec<I, S>(&self, name: &str, command: I, ap: &AttachParams) -> Result<http::Request<Vec<u8>>, RequestError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        ap.validate()?;
        let mut p = self.subresource_path(name, "exec")?;
        let mut q = Query::new(&mut p);
        let mut any = false;
        for c in command {
            q.pair("command", c.as_ref());
            any = true;
        }
        if !any {
            return Err(RequestError::InvalidParam { param: "command", reason: "exec needs a command".into() });
        }
        ap.write(&mut q);
        upgrade(p, EXEC_PROTOCOLS)
    }

    /// The WebSocket upgrade `GET` that attaches to a running container.
    pub fn attach(&self, name: &str, ap: &AttachParams) -> Result<http::Request<Vec<u8>>, RequestError> {
        ap.validate()?;
        let mut p = self.subresource_path(name, "attach")?;
        ap.write(&mut Query::new(&mut p));
        upgrade(p, EXEC_PROTOCOLS)
    }

    /// The WebSocket upgrade `GET` that forwards the given ports of a pod.
    pub fn portforward(&self, name: &str, ports: &[u16]) -> Result<http::Request<Vec<u8>>, RequestError> {
        if ports.is_empty() {
            return Err(RequestError::InvalidParam { param: "ports", reason: "at least one port is needed".into() });
        }
        if ports.contains(&0) {
            return Err(RequestError::InvalidParam { param: "ports", reason: "port 0 is not a valid port".into() });
        }
        let mut p = self.subresource_path(name, "portforward")?;
        let mut q = Query::new(&mut p);
        for &port in ports {
            q.num("ports", port);
        }
        upgrade(p, PORTFORWARD_PROTOCOL)
    }
}

/// The `Sec-WebSocket-Key` header value for a 16-byte nonce (which the caller draws from its
/// own randomness, keeping the core deterministic).
pub fn websocket_key(nonce: [u8; 16]) -> HeaderValue {
    use base64::Engine as _;
    let s = base64::engine::general_purpose::STANDARD.encode(nonce);
    HeaderValue::from_str(&s).expect("base64 is a valid header value")
}

/// Checks an object name, namespace or subresource exactly as `k8s.io/apimachinery`'s
/// `IsValidPathSegmentName` does: not empty, not `.` or `..`, no `/` and no `%`. Everything else
/// (spaces, `?`, `#`, control characters, any UTF-8) is valid and percent-encoded in the path.
pub(crate) fn validate_name(what: &'static str, name: &str) -> Result<(), RequestError> {
    if name.is_empty() {
        return Err(RequestError::EmptyName { what });
    }
    let reason = if name == "." {
        Some("may not be '.'")
    } else if name == ".." {
        Some("may not be '..'")
    } else if name.contains('/') {
        Some("may not contain '/'")
    } else if name.contains('%') {
        Some("may not contain '%'")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(RequestError::InvalidName { what, value: name.to_owned(), reason }),
        None => Ok(()),
    }
}

fn to_json<T: Serialize>(data: &T) -> Result<Vec<u8>, RequestError> {
    let mut buf = Vec::with_capacity(1024);
    serde_json::to_writer(&mut buf, data).map_err(|e| RequestError::SerializeBody(e.to_string()))?;
    Ok(buf)
}

fn delete_request(path: String, dp: &DeleteParams) -> Result<http::Request<Vec<u8>>, RequestError> {
    if dp.is_default() {
        build(Method::DELETE, path, JSON, None, Vec::new())
    } else {
        build(Method::DELETE, path, JSON, Some(JSON), dp.body()?)
    }
}

fn upgrade(path: String, protocols: &'static str) -> Result<http::Request<Vec<u8>>, RequestError> {
    let mut req = build(Method::GET, path, "*/*", None, Vec::new())?;
    let h = req.headers_mut();
    h.remove(ACCEPT);
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(HeaderName::from_static("sec-websocket-version"), HeaderValue::from_static("13"));
    h.insert(HeaderName::from_static("sec-websocket-protocol"), HeaderValue::from_static(protocols));
    Ok(req)
}

fn build(
    method: Method,
    path_and_query: String,
    accept: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
) -> Result<http::Request<Vec<u8>>, RequestError> {
    let uri = match http::Uri::try_from(path_and_query.as_str()) {
        Ok(uri) => uri,
        Err(e) => return Err(RequestError::InvalidUri { uri: path_and_query, reason: e.to_string() }),
    };
    let mut req = http::Request::new(body);
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    let headers = req.headers_mut();
    headers.insert(ACCEPT, HeaderValue::from_static(accept));
    if let Some(ct) = content_type {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    #[test]
    fn only_names_the_server_refuses_as_path_segments_are_rejected() {
        let r = Request::namespaced::<Pod>("default");
        assert_eq!(r.get("", &GetParams::default()).unwrap_err(), RequestError::EmptyName { what: "name" });
        for bad in ["a/b", "..", ".", "a%2F"] {
            assert!(matches!(r.get(bad, &GetParams::default()), Err(RequestError::InvalidName { .. })), "{bad}");
        }
        let req = r.get("a b?x#y", &GetParams::default()).unwrap();
        assert_eq!(req.uri(), "/api/v1/namespaces/default/pods/a%20b%3Fx%23y");
        let bad_ns = Request::namespaced::<Pod>("");
        assert_eq!(bad_ns.list(&ListParams::default()).unwrap_err(), RequestError::EmptyName { what: "namespace" });
    }

    #[test]
    fn websocket_key_is_base64_of_the_nonce() {
        assert_eq!(websocket_key(*b"the sample nonce"), "dGhlIHNhbXBsZSBub25jZQ==");
    }
}
