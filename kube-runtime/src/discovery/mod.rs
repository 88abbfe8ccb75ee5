//! Discovery with a cache, and `Api<DynamicObject>` for anything it resolves.
//!
//! [`Discovery`] runs the core's [`Fetch`] (aggregated discovery, or the legacy documents, the
//! requests of one round sent at once) and keeps the [`Catalog`] for a time to live given by
//! the caller. A name that does not resolve in a cached catalog is tried again on a fresh one
//! (a CRD may have been created since), and [`Discovery::with_api`] refreshes and retries once
//! when a resource it resolved answers that it is not served (its CRD was deleted, its version
//! removed). [`apply()`] applies files of manifests with server-side apply, in dependency order.
//!
//! ```
//! # #[cfg(feature = "fake")] {
//! use std::time::Duration;
//! use kube_proto::ListParams;
//! use kube_runtime::Client;
//! use kube_runtime::discovery::Discovery;
//! use kube_runtime::fake::FakeTransport;
//!
//! futures_executor::block_on(async {
//!     let (transport, config) = FakeTransport::new();
//!     let discovery = Discovery::new(Client::new(transport, config).unwrap(), Duration::from_secs(300));
//!     let ns = discovery.resolve("ns").await.unwrap();
//!     assert_eq!(ns.resource.kind, "Namespace");
//!     let names: Vec<String> = discovery
//!         .with_api("ns", None, |api| async move { api.list(&ListParams::default()).await })
//!         .await
//!         .unwrap()
//!         .items
//!         .into_iter()
//!         .filter_map(|n| n.metadata.name)
//!         .collect();
//!     assert!(names.contains(&"default".to_owned()));
//! });
//! # }
//! ```

pub mod apply;

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use kube_proto::DynamicObject;
use kube_proto::discovery::{Catalog, DiscoveryError, Fetch, ResolveError, ResourceInfo, is_resource_not_served};

use crate::{Api, Client, Error};

pub use apply::{Applied, ApplyError, ApplyOptions, ManifestRef, apply, read_manifests};

/// Runs discovery once: the whole catalog of what the server serves.
pub async fn discover(client: &Client) -> Result<Catalog, Error> {
    run(client, Fetch::new()).await
}

/// Runs a [`Fetch`] to its end, sending each round's requests at once.
pub async fn run(client: &Client, mut fetch: Fetch) -> Result<Catalog, Error> {
    while !fetch.is_done() {
        let mut round = Vec::new();
        while let Some(r) = fetch.poll_request() {
            round.push(r);
        }
        if round.is_empty() {
            break;
        }
        let answers =
            join_all(round.into_iter().map(|(id, req)| async move { (id, client.request_bytes(req).await) })).await;
        for (id, answer) in answers {
            let (status, headers, body) = answer?;
            fetch.on_response(id, status, &headers, &body).map_err(Error::Discovery)?;
        }
    }
    fetch.finish().map_err(Error::Discovery)
}

#[derive(Debug)]
struct Cached {
    at: Instant,
    catalog: Arc<Catalog>,
}

/// Discovery with a cache: clones share it.
#[derive(Debug, Clone)]
pub struct Discovery {
    client: Client,
    ttl: Duration,
    cached: Arc<Mutex<Option<Cached>>>,
}

impl Discovery {
    /// Discovery through `client`, a catalog being reused for `ttl` (on the transport's clock).
    pub fn new(client: Client, ttl: Duration) -> Self {
        Discovery { client, ttl, cached: Arc::new(Mutex::new(None)) }
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn fresh(&self) -> Option<Arc<Catalog>> {
        let cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        let c = cached.as_ref()?;
        (self.client.now().saturating_duration_since(c.at) < self.ttl).then(|| c.catalog.clone())
    }

    /// The catalog: the cached one while it is younger than the time to live, else a new one.
    pub async fn catalog(&self) -> Result<Arc<Catalog>, Error> {
        match self.fresh() {
            Some(c) => Ok(c),
            None => self.refresh().await,
        }
    }

    /// Runs discovery now and caches the result.
    pub async fn refresh(&self) -> Result<Arc<Catalog>, Error> {
        let catalog = Arc::new(discover(&self.client).await?);
        let at = self.client.now();
        *self.cached.lock().unwrap_or_else(PoisonError::into_inner) = Some(Cached { at, catalog: catalog.clone() });
        Ok(catalog)
    }

    /// Forgets the cached catalog: the next use runs discovery again.
    pub fn invalidate(&self) {
        *self.cached.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Looks a name up (see [`Catalog::resolve`]); a name unknown to a cached catalog is looked
    /// up again in a fresh one.
    pub async fn resolve(&self, name: &str) -> Result<ResourceInfo, Error> {
        self.lookup(|c| c.resolve(name).cloned()).await
    }

    /// Looks an `apiVersion` and `kind` up (see [`Catalog::resolve_kind`]), refreshing once as
    /// [`resolve`](Self::resolve) does.
    pub async fn resolve_kind(&self, api_version: &str, kind: &str) -> Result<ResourceInfo, Error> {
        self.lookup(|c| c.resolve_kind(api_version, kind).cloned()).await
    }

    async fn lookup(
        &self,
        find: impl Fn(&Catalog) -> Result<ResourceInfo, ResolveError>,
    ) -> Result<ResourceInfo, Error> {
        let cached = self.fresh();
        let catalog = match &cached {
            Some(c) => c.clone(),
            None => self.refresh().await?,
        };
        match find(&catalog) {
            Err(ResolveError::Unknown { .. } | ResolveError::UnknownKind { .. }) if cached.is_some() => {
                let catalog = self.refresh().await?;
                find(&catalog).map_err(|e| Error::Discovery(DiscoveryError::Resolve(e)))
            }
            found => found.map_err(|e| Error::Discovery(DiscoveryError::Resolve(e))),
        }
    }

    /// `Api<DynamicObject>` for a resolved resource: in `namespace` when given and the resource
    /// is namespaced, else across all namespaces (or cluster-wide).
    pub fn api(&self, info: &ResourceInfo, namespace: Option<&str>) -> Api<DynamicObject> {
        api_for(&self.client, info, namespace)
    }

    /// Resolves `name`, and runs `f` with its `Api<DynamicObject>` (see [`api`](Self::api)).
    /// When `f` fails because the resource is not served (a 404 that names no object: see
    /// [`is_resource_not_served`]), discovery is run again and `f` once more with what the
    /// name resolves to then.
    pub async fn with_api<T, F, Fut>(&self, name: &str, namespace: Option<&str>, f: F) -> Result<T, Error>
    where
        F: Fn(Api<DynamicObject>) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let info = self.resolve(name).await?;
        match f(self.api(&info, namespace)).await {
            Err(Error::Api(e)) if is_resource_not_served(&e) => {
                tracing::debug!(name, resource = %info.full_name(), "discovery: the resource is not served; refreshing");
                let catalog = self.refresh().await?;
                let info = catalog.resolve(name).map_err(|e| Error::Discovery(DiscoveryError::Resolve(e)))?;
                f(self.api(info, namespace)).await
            }
            other => other,
        }
    }
}

/// `Api<DynamicObject>` for a resolved resource (see [`Discovery::api`]).
pub fn api_for(client: &Client, info: &ResourceInfo, namespace: Option<&str>) -> Api<DynamicObject> {
    match namespace {
        Some(ns) if info.resource.namespaced => Api::namespaced_with(client.clone(), ns, &info.resource),
        _ => Api::all_with(client.clone(), &info.resource),
    }
}
