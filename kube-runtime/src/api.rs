//! `Api<K>`: every operation on one kind in one scope, built by the core, sent by the client,
//! parsed by the core.

use std::fmt::Debug;

use futures_util::stream::{self, BoxStream, StreamExt};
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::core::v1::Pod;
use kube_proto::watch::WatchDecoder;
use kube_proto::{
    AttachParams, DeleteParams, DeleteResponse, EvictParams, GetParams, ListParams, LogParams, ObjectList,
    PartialObjectMeta, Patch, PatchParams, PostParams, Request, Resource, Response, Status, WatchEvent, WatchParams,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::remote::{AttachedProcess, PortForwardProtocol, Portforwarder};
use crate::{Client, Error};

/// Operations on objects of kind `K`, in one namespace, across all namespaces, or on a
/// cluster-scoped kind.
pub struct Api<K: Resource> {
    client: Client,
    request: Request,
    namespace: Option<String>,
    dyntype: K::DynamicType,
    /// Ask for protobuf (see [`Api::protobuf`]).
    protobuf: bool,
}

impl<K: Resource> Clone for Api<K>
where
    K::DynamicType: Clone,
{
    fn clone(&self) -> Self {
        Api {
            client: self.client.clone(),
            request: self.request.clone(),
            namespace: self.namespace.clone(),
            dyntype: self.dyntype.clone(),
            protobuf: self.protobuf,
        }
    }
}

impl<K: Resource> Debug for Api<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").field("url", &self.request.url_path()).finish()
    }
}

impl<K> Api<K>
where
    K: Resource<DynamicType = ()>,
{
    /// Objects of a cluster-scoped kind, or of a namespaced kind across all namespaces.
    pub fn all(client: Client) -> Self {
        Self::all_with(client, &())
    }

    /// Objects of a namespaced kind in one namespace.
    pub fn namespaced(client: Client, namespace: &str) -> Self
    where
        K: Resource<Scope = kube_proto::resource::NamespaceResourceScope>,
    {
        Self::namespaced_with(client, namespace, &())
    }

    /// Objects of a namespaced kind in the client's default namespace.
    pub fn default_namespaced(client: Client) -> Self
    where
        K: Resource<Scope = kube_proto::resource::NamespaceResourceScope>,
    {
        let ns = client.default_namespace().to_owned();
        Self::namespaced_with(client, &ns, &())
    }
}

impl<K: Resource> Api<K>
where
    K::DynamicType: Clone,
{
    /// Objects of a kind known at run time, across all namespaces (or cluster-scoped).
    pub fn all_with(client: Client, dyntype: &K::DynamicType) -> Self {
        Api {
            client,
            request: Request::all_with::<K>(dyntype),
            namespace: None,
            dyntype: dyntype.clone(),
            protobuf: false,
        }
    }

    /// Objects of a kind known at run time, in one namespace.
    pub fn namespaced_with(client: Client, namespace: &str, dyntype: &K::DynamicType) -> Self {
        Api {
            client,
            request: Request::namespaced_with::<K>(dyntype, namespace),
            namespace: Some(namespace.to_owned()),
            dyntype: dyntype.clone(),
            protobuf: false,
        }
    }

    /// Objects of a kind known at run time, in the client's default namespace.
    pub fn default_namespaced_with(client: Client, dyntype: &K::DynamicType) -> Self {
        let ns = client.default_namespace().to_owned();
        Self::namespaced_with(client, &ns, dyntype)
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The namespace, if the scope is one namespace.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The core's request builder for this kind and scope.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// The run-time type information.
    pub fn dyntype(&self) -> &K::DynamicType {
        &self.dyntype
    }

    /// This `Api`, asking for protobuf where the kind has a protobuf form (the built-in kinds):
    /// `Accept: application/vnd.kubernetes.protobuf, application/json` on every request whose
    /// answer is an object, a list or a watch; bodies sent stay JSON. Answers are read in
    /// whichever format the server chose, into the same types. Custom resources (and kinds the
    /// table does not know) keep asking for JSON. The [`watcher`](crate::watcher::watcher) of this
    /// `Api` asks for protobuf too.
    #[cfg(feature = "protobuf")]
    #[must_use]
    pub fn protobuf(mut self) -> Self {
        self.protobuf = kube_proto::protobuf::is_known(&K::api_version(&self.dyntype), &K::kind(&self.dyntype));
        self
    }

    /// Whether requests ask for protobuf (see `Api::protobuf`, with the `protobuf` feature).
    pub fn is_protobuf(&self) -> bool {
        self.protobuf
    }

    /// Asks for protobuf in `req` when this `Api` does.
    fn negotiate(&self, req: &mut http::Request<Vec<u8>>) {
        #[cfg(feature = "protobuf")]
        if self.protobuf {
            kube_proto::protobuf::negotiate(req);
        }
        let _ = req;
    }
}

impl<K> Api<K>
where
    K: Resource + DeserializeOwned + Send + 'static,
    K::DynamicType: Clone,
{
    async fn call<T: DeserializeOwned + 'static>(
        &self,
        req: Result<http::Request<Vec<u8>>, kube_proto::RequestError>,
    ) -> Result<T, Error> {
        let mut req = req.map_err(Error::Request)?;
        self.negotiate(&mut req);
        self.client.request(req).await
    }

    /// One object.
    pub async fn get(&self, name: &str) -> Result<K, Error> {
        self.call(self.request.get(name, &GetParams::default())).await
    }

    /// One object, with `resourceVersion` semantics (`GetParams::any()` reads from the cache).
    pub async fn get_with(&self, name: &str, gp: &GetParams) -> Result<K, Error> {
        self.call(self.request.get(name, gp)).await
    }

    /// One object, or `None` if it does not exist.
    pub async fn get_opt(&self, name: &str) -> Result<Option<K>, Error> {
        match self.get(name).await {
            Ok(k) => Ok(Some(k)),
            Err(Error::Api(e)) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One object's metadata only.
    pub async fn get_metadata(&self, name: &str) -> Result<PartialObjectMeta<K>, Error> {
        self.call(self.request.get_metadata(name, &GetParams::default())).await
    }

    /// One page of the collection (all of it without a limit).
    pub async fn list(&self, lp: &ListParams) -> Result<ObjectList<K>, Error> {
        // Through `Response::list`, whose items of a built-in kind are read directly.
        let mut req = self.request.list(lp).map_err(Error::Request)?;
        self.negotiate(&mut req);
        let (status, headers, body) = self.client.request_bytes(req).await?;
        Response::new(status, &headers, &body).list().map_err(Error::Api)
    }

    /// Metadata of one page of the collection.
    pub async fn list_metadata(&self, lp: &ListParams) -> Result<ObjectList<PartialObjectMeta<K>>, Error> {
        self.call(self.request.list_metadata(lp)).await
    }

    /// Every object of the collection, fetching page after page (`lp.limit` is the page size).
    pub fn list_all(&self, lp: &ListParams) -> BoxStream<'static, Result<K, Error>>
    where
        K::DynamicType: Send + Sync,
    {
        let api = self.clone();
        let first = lp.clone();
        stream::unfold(Some(first), move |next| {
            let api = api.clone();
            async move {
                let lp = next?;
                match api.list(&lp).await {
                    Ok(page) => {
                        let following =
                            page.continue_token().map(|t| ListParams { continue_token: Some(t.to_owned()), ..lp });
                        Some((stream::iter(page.items.into_iter().map(Ok)).left_stream(), following))
                    }
                    Err(e) => Some((stream::iter(vec![Err(e)]).right_stream(), None)),
                }
            }
        })
        .flatten()
        .boxed()
    }

    /// Creates an object.
    pub async fn create(&self, pp: &PostParams, data: &K) -> Result<K, Error>
    where
        K: Serialize,
    {
        self.call(self.request.create(pp, data)).await
    }

    /// Replaces an object (conditional when `data` carries a resourceVersion).
    pub async fn replace(&self, name: &str, pp: &PostParams, data: &K) -> Result<K, Error>
    where
        K: Serialize,
    {
        self.call(self.request.replace(name, pp, data)).await
    }

    /// Patches an object: merge, JSON, strategic, or server-side apply.
    pub async fn patch<P: Serialize>(&self, name: &str, pp: &PatchParams, patch: &Patch<P>) -> Result<K, Error> {
        self.call(self.request.patch(name, pp, patch)).await
    }

    /// Server-side apply of `config` by `field_manager`, without force: the short form of
    /// `patch(name, &PatchParams::apply(field_manager), &Patch::Apply(config))`. `config` is
    /// anything that serializes to the object's JSON, best an apply configuration
    /// (`kube_proto_apply`, or `kube_proto::apply` with its `apply` feature), which holds only
    /// the fields the manager means to own. Fields another manager owns and this changes are a
    /// 409 Conflict; use [`Api::patch`] with [`PatchParams::force`] to take them over.
    pub async fn apply<P: Serialize>(&self, name: &str, config: &P, field_manager: &str) -> Result<K, Error> {
        self.patch(name, &PatchParams::apply(field_manager), &Patch::Apply(config)).await
    }

    /// Server-side apply of `config` by `field_manager` through the `status` subresource,
    /// without force (see [`Api::apply`]).
    pub async fn apply_status<P: Serialize>(&self, name: &str, config: &P, field_manager: &str) -> Result<K, Error> {
        self.patch_status(name, &PatchParams::apply(field_manager), &Patch::Apply(config)).await
    }

    /// Patches an object and receives its metadata only.
    pub async fn patch_metadata<P: Serialize>(
        &self,
        name: &str,
        pp: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<PartialObjectMeta<K>, Error> {
        self.call(self.request.patch_metadata(name, pp, patch)).await
    }

    /// Deletes an object: the object while deletion is pending, or the server's `Status`.
    pub async fn delete(&self, name: &str, dp: &DeleteParams) -> Result<DeleteResponse<K>, Error> {
        let mut req = self.request.delete(name, dp).map_err(Error::Request)?;
        self.negotiate(&mut req);
        let (status, headers, body) = self.client.request_bytes(req).await?;
        Response::new(status, &headers, &body).delete().map_err(Error::Api)
    }

    /// Deletes the objects matching `lp`'s selectors: the list of deleted objects.
    pub async fn delete_collection(
        &self,
        dp: &DeleteParams,
        lp: &ListParams,
    ) -> Result<DeleteResponse<ObjectList<K>>, Error> {
        let mut req = self.request.delete_collection(dp, lp).map_err(Error::Request)?;
        self.negotiate(&mut req);
        let (status, headers, body) = self.client.request_bytes(req).await?;
        Response::new(status, &headers, &body).delete().map_err(Error::Api)
    }

    /// The object through its `status` subresource.
    pub async fn get_status(&self, name: &str) -> Result<K, Error> {
        self.call(self.request.get_subresource("status", name)).await
    }

    /// Patches the `status` subresource (only `.status` changes).
    pub async fn patch_status<P: Serialize>(&self, name: &str, pp: &PatchParams, patch: &Patch<P>) -> Result<K, Error> {
        self.call(self.request.patch_subresource("status", name, pp, patch)).await
    }

    /// Replaces the `status` subresource.
    pub async fn replace_status(&self, name: &str, pp: &PostParams, data: &K) -> Result<K, Error>
    where
        K: Serialize,
    {
        self.call(self.request.replace_subresource("status", name, pp, data)).await
    }

    /// The `scale` subresource.
    pub async fn get_scale(&self, name: &str) -> Result<Scale, Error> {
        self.call(self.request.get_subresource("scale", name)).await
    }

    /// Patches the `scale` subresource.
    pub async fn patch_scale<P: Serialize>(
        &self,
        name: &str,
        pp: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<Scale, Error> {
        self.call(self.request.patch_subresource("scale", name, pp, patch)).await
    }

    /// Replaces the `scale` subresource.
    pub async fn replace_scale(&self, name: &str, pp: &PostParams, data: &Scale) -> Result<Scale, Error> {
        self.call(self.request.replace_subresource("scale", name, pp, data)).await
    }

    /// A pod's log, whole.
    pub async fn logs(&self, name: &str, lp: &LogParams) -> Result<String, Error> {
        let req = self.request.logs(name, lp).map_err(Error::Request)?;
        let (status, headers, body) = self.client.request_bytes(req).await?;
        Response::new(status, &headers, &body).text().map_err(Error::Api)
    }

    /// A pod's log as a stream of lines (with `follow`, lines as they are written).
    pub async fn log_stream(
        &self,
        name: &str,
        lp: &LogParams,
    ) -> Result<BoxStream<'static, Result<String, Error>>, Error> {
        let req = self.request.logs(name, lp).map_err(Error::Request)?;
        let resp = self.client.send(req).await?;
        if !resp.status.is_success() {
            let (status, headers, body) = crate::client::collect(resp).await.map_err(Error::Transport)?;
            return Err(Error::Api(Response::new(status, &headers, &body).error()));
        }
        Ok(lines(resp.body))
    }

    /// Evicts a pod (honouring PodDisruptionBudgets: 429 when one would be violated).
    pub async fn evict(&self, name: &str, ep: &EvictParams) -> Result<Status, Error> {
        self.call(self.request.evict(name, ep)).await
    }

    /// A raw watch from `resource_version`: events as the server sends them. Prefer
    /// [`watcher`](crate::watcher::watcher), which resumes, relists and backs off.
    pub async fn watch(
        &self,
        wp: &WatchParams,
        resource_version: &str,
    ) -> Result<BoxStream<'static, Result<WatchEvent<K>, Error>>, Error> {
        let mut req = self.request.watch(wp, resource_version).map_err(Error::Request)?;
        self.negotiate(&mut req);
        let resp = self.client.send_once(req).await?;
        if !resp.status.is_success() {
            let (status, headers, body) = crate::client::collect(resp).await.map_err(Error::Transport)?;
            return Err(Error::Api(Response::new(status, &headers, &body).error()));
        }
        Ok(decode_events(resp.body, &resp.headers))
    }
}

impl Api<Pod> {
    /// Runs `command` in a container of the pod `name` (the `exec` subresource, over
    /// WebSocket): its streams as `ap` asks, and its exit status (see [`AttachedProcess`]).
    ///
    /// A missing pod or container, or an exec that is not allowed, is [`Error::Api`] with the
    /// server's `Status`, as for any request.
    pub async fn exec<I, S>(&self, name: &str, command: I, ap: &AttachParams) -> Result<AttachedProcess, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let req = self.request.exec(name, command, ap).map_err(Error::Request)?;
        AttachedProcess::start(&self.client, req, ap).await
    }

    /// Attaches to the running process of a container of the pod `name` (the `attach`
    /// subresource), as [`exec`](Self::exec) does.
    pub async fn attach(&self, name: &str, ap: &AttachParams) -> Result<AttachedProcess, Error> {
        let req = self.request.attach(name, ap).map_err(Error::Request)?;
        AttachedProcess::start(&self.client, req, ap).await
    }

    /// Forwards `ports` of the pod `name` (the `portforward` subresource, over WebSocket): a
    /// duplex stream per port (see [`Portforwarder`]). One connection to each port; a local
    /// listener makes a port-forward per connection it accepts (see
    /// [`remote::forward`](crate::remote::forward)).
    pub async fn portforward(&self, name: &str, ports: &[u16]) -> Result<Portforwarder, Error> {
        self.portforward_with(name, ports, PortForwardProtocol::WebSocket).await
    }

    /// [`portforward`](Self::portforward) speaking `protocol`: the kubelet's WebSocket protocol
    /// (the default, as kube-rs), or SPDY as kubectl speaks it, directly or tunneled in a
    /// WebSocket (see [`PortForwardProtocol`]).
    pub async fn portforward_with(
        &self,
        name: &str,
        ports: &[u16],
        protocol: PortForwardProtocol,
    ) -> Result<Portforwarder, Error> {
        let req = self.request.portforward(name, ports).map_err(Error::Request)?;
        Portforwarder::start(&self.client, req, ports, protocol).await
    }
}

/// Splits a body into lines (without their `\n`; a last unterminated line is kept).
fn lines(body: crate::transport::Body) -> BoxStream<'static, Result<String, Error>> {
    stream::unfold((body, Vec::<u8>::new(), false), |(mut body, mut buf, mut done)| async move {
        loop {
            if let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                let text = String::from_utf8_lossy(&line[..line.len() - 1]).trim_end_matches('\r').to_owned();
                return Some((Ok(text), (body, buf, done)));
            }
            if done {
                if buf.is_empty() {
                    return None;
                }
                let text = String::from_utf8_lossy(&std::mem::take(&mut buf)).into_owned();
                return Some((Ok(text), (body, buf, done)));
            }
            match body.next().await {
                Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    done = true;
                    buf.clear();
                    return Some((Err(Error::Transport(e)), (body, buf, done)));
                }
                None => done = true,
            }
        }
    })
    .boxed()
}

/// Decodes a watch body into events.
fn decode_events<K: DeserializeOwned + Send + 'static>(
    body: crate::transport::Body,
    headers: &http::HeaderMap,
) -> BoxStream<'static, Result<WatchEvent<K>, Error>> {
    let mut decoder = WatchDecoder::<K>::new();
    // Protobuf frames or JSON lines, as the response says.
    decoder.use_content_type(headers);
    let state = (body, decoder, false);
    stream::unfold(state, |(mut body, mut decoder, mut ended)| async move {
        loop {
            if let Some(ev) = decoder.next_event() {
                return Some((ev.map_err(Error::Decode), (body, decoder, ended)));
            }
            if ended {
                return None;
            }
            match body.next().await {
                Some(Ok(chunk)) => decoder.push(&chunk),
                Some(Err(e)) => {
                    ended = true;
                    decoder.reset();
                    return Some((Err(Error::Transport(e)), (body, decoder, ended)));
                }
                None => {
                    ended = true;
                    if let Some(ev) = decoder.finish() {
                        return Some((ev.map_err(Error::Decode), (body, decoder, ended)));
                    }
                }
            }
        }
    })
    .boxed()
}
