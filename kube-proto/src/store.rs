//! The reflector's store: the state of a watched collection and the rules that update it from
//! [`watcher::Event`](crate::watcher::Event)s, with secondary indexes. Pure: no locks, no clock,
//! no IO; the runtime puts it behind a lock and hands out readers.
//!
//! What it promises:
//! - **One copy during a relist.** An `InitApply` replaces the live entry as it arrives and marks
//!   it with the relist's generation; at `InitDone` the entries left unmarked (gone from the
//!   server) are removed. Nothing is buffered, so a relist never holds two copies of the
//!   collection, and a reader sees a complete state at every point: an object present before and
//!   after a relist never vanishes in between.
//! - **Ready after the first `InitDone`**, and from then on.
//! - **Indexes kept exact** on every apply, delete and relist: by namespace ([`BY_NAMESPACE`]), by
//!   label `key=value` ([`BY_LABEL`]), by owner UID ([`BY_OWNER`]), and any index function added
//!   with [`StoreConfig::index`] (client-go's `Indexers`).
//! - **No deep copies.** Objects are moved in and kept as `Arc<K>`; what the store hands back is
//!   the same `Arc` (see [`Store::apply`], which returns the event with those `Arc`s).
//! - **Bad input is skipped, not stored**: an object with no name, or one outside the watched
//!   namespace, leaves the store as it was and comes back as a [`Skipped`] naming it, for the
//!   caller to log.
//! - Deterministic order: [`Store::state`] and index lookups are in key order (namespace, name).
//!
//! ```
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube_proto::store::{ObjectRef, Store, StoreConfig, BY_LABEL};
//! use kube_proto::watcher::Event;
//!
//! let cm = |name: &str| -> ConfigMap {
//!     serde_json::from_value(serde_json::json!({
//!         "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}}
//!     })).unwrap()
//! };
//! let mut store = Store::<ConfigMap>::new(StoreConfig::default(), ());
//! for ev in [Event::Init, Event::InitApply(cm("a")), Event::InitApply(cm("b")), Event::InitDone] {
//!     store.apply(ev).unwrap();
//! }
//! assert!(store.is_ready());
//! assert_eq!(store.len(), 2);
//! assert!(store.get(&ObjectRef::new("a").within("default")).is_some());
//! assert_eq!(store.by_index(BY_LABEL, "app=web").unwrap().len(), 2);
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::resource::{Resource, ResourceExt};
use crate::watcher::Event;

/// The built-in index of objects by namespace (the value is the namespace; cluster-scoped
/// objects are not in it).
pub const BY_NAMESPACE: &str = "namespace";
/// The built-in index of objects by label: the value is `key=value`, one per label.
pub const BY_LABEL: &str = "label";
/// The built-in index of objects by the UID of each of their owners (`ownerReferences[].uid`).
pub const BY_OWNER: &str = "owner";

/// A user-defined index function: the values under which an object is indexed (client-go's
/// `IndexFunc`). It must depend on the object only, so that the same object always gives the
/// same values.
pub type IndexFn<K> = Arc<dyn Fn(&K) -> Vec<String> + Send + Sync>;

/// A transform applied to every object before it is stored (and passed on).
pub type Transform<K> = Arc<dyn Fn(&mut K) + Send + Sync>;

/// A reference to an object of kind `K`: its namespace and name, plus the kind's run-time type
/// information (`()` for `k8s_openapi` types, an [`ApiResource`](crate::ApiResource) for
/// dynamic ones).
pub struct ObjectRef<K: Resource> {
    /// The name.
    pub name: String,
    /// The namespace (`None` for cluster-scoped objects).
    pub namespace: Option<String>,
    /// The kind's run-time type information.
    pub dyntype: K::DynamicType,
}

impl<K: Resource> ObjectRef<K>
where
    K::DynamicType: Default,
{
    /// A cluster-scoped reference (add a namespace with [`within`](Self::within)).
    pub fn new(name: &str) -> Self {
        Self::new_with(name, K::DynamicType::default())
    }

    /// The reference of an object (its name, or `""` when it has none).
    pub fn from_obj(obj: &K) -> Self {
        Self::from_obj_with(obj, K::DynamicType::default())
    }
}

impl<K: Resource> ObjectRef<K> {
    /// A cluster-scoped reference of a kind with run-time type information.
    pub fn new_with(name: &str, dyntype: K::DynamicType) -> Self {
        ObjectRef { name: name.to_owned(), namespace: None, dyntype }
    }

    /// The reference of an object of a kind with run-time type information.
    pub fn from_obj_with(obj: &K, dyntype: K::DynamicType) -> Self {
        ObjectRef {
            name: obj.name().unwrap_or_default().to_owned(),
            namespace: obj.namespace().map(str::to_owned),
            dyntype,
        }
    }

    /// Sets the namespace.
    #[must_use]
    pub fn within(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_owned());
        self
    }
}

impl<K: Resource> Clone for ObjectRef<K>
where
    K::DynamicType: Clone,
{
    fn clone(&self) -> Self {
        ObjectRef { name: self.name.clone(), namespace: self.namespace.clone(), dyntype: self.dyntype.clone() }
    }
}

impl<K: Resource> fmt::Debug for ObjectRef<K>
where
    K::DynamicType: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectRef")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field("dyntype", &self.dyntype)
            .finish()
    }
}

/// `namespace/name`, or `name` for a cluster-scoped object.
impl<K: Resource> fmt::Display for ObjectRef<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

impl<K: Resource> PartialEq for ObjectRef<K>
where
    K::DynamicType: PartialEq,
{
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.namespace == other.namespace && self.dyntype == other.dyntype
    }
}

impl<K: Resource> Eq for ObjectRef<K> where K::DynamicType: Eq {}

/// By namespace (cluster-scoped first), then name, then type information.
impl<K: Resource> PartialOrd for ObjectRef<K>
where
    K::DynamicType: Ord,
{
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<K: Resource> Ord for ObjectRef<K>
where
    K::DynamicType: Ord,
{
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (&self.namespace, &self.name, &self.dyntype).cmp(&(&other.namespace, &other.name, &other.dyntype))
    }
}

impl<K: Resource> Hash for ObjectRef<K>
where
    K::DynamicType: Hash,
{
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.namespace.hash(state);
        self.dyntype.hash(state);
    }
}

/// The store's own key: namespace then name, shared (one allocation per object) between the map
/// of objects and every index that holds the object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    namespace: Option<String>,
    name: String,
}

/// A key as borrowed parts, so that looking an object up allocates nothing: the map's `Arc<Key>`
/// borrows as a `dyn KeyView`, which borrowed parts also are, ordered exactly as [`Key`] is.
trait KeyView {
    fn parts(&self) -> (Option<&str>, &str);
}

impl KeyView for Key {
    fn parts(&self) -> (Option<&str>, &str) {
        (self.namespace.as_deref(), &self.name)
    }
}

/// Namespace and name borrowed from an object or an [`ObjectRef`].
struct KeyRef<'a> {
    namespace: Option<&'a str>,
    name: &'a str,
}

impl KeyView for KeyRef<'_> {
    fn parts(&self) -> (Option<&str>, &str) {
        (self.namespace, self.name)
    }
}

impl KeyRef<'_> {
    fn to_key(&self) -> Key {
        Key { namespace: self.namespace.map(str::to_owned), name: self.name.to_owned() }
    }
}

impl<'a> std::borrow::Borrow<dyn KeyView + 'a> for Arc<Key> {
    fn borrow(&self) -> &(dyn KeyView + 'a) {
        &**self
    }
}

impl PartialEq for dyn KeyView + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn KeyView + '_ {}

impl PartialOrd for dyn KeyView + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn KeyView + '_ {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // (Option<&str>, &str) orders as Key's derived order: namespace (None first), then name.
        self.parts().cmp(&other.parts())
    }
}

/// What the store skipped, and why. The store is left as it was; the caller logs this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Skipped {
    /// The object has no `metadata.name`.
    #[error(
        "{event} of an object with no metadata.name (namespace {namespace:?}, generateName {generate_name:?}): skipped"
    )]
    NoName {
        /// `Apply`, `InitApply` or `Delete`.
        event: &'static str,
        /// The object's namespace.
        namespace: Option<String>,
        /// The object's `metadata.generateName`.
        generate_name: Option<String>,
    },
    /// The object is not in the namespace the store is for.
    #[error("{event} of {name} in namespace {namespace:?}, outside the watched namespace {watched:?}: skipped")]
    OutsideNamespace {
        /// `Apply`, `InitApply` or `Delete`.
        event: &'static str,
        /// The object's name.
        name: String,
        /// The object's namespace.
        namespace: Option<String>,
        /// The namespace the store is for.
        watched: String,
    },
}

/// An index name that the store does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no index named {0:?}")]
pub struct UnknownIndex(pub String);

/// How a [`Store`] is set up: the namespace it is for, its index functions, and a transform.
pub struct StoreConfig<K> {
    namespace: Option<String>,
    indexers: BTreeMap<String, Indexer<K>>,
    transform: Option<Transform<K>>,
}

/// An index function, and for the built-in ones a cheap test that an update leaves the object's
/// values unchanged (labels, owners or namespace compared as they are), which spares computing
/// and comparing the values (a `k=v` string per label) for every event.
struct Indexer<K> {
    values: IndexFn<K>,
    unchanged: Option<fn(&K, &K) -> bool>,
}

impl<K> Clone for Indexer<K> {
    fn clone(&self) -> Self {
        Indexer { values: self.values.clone(), unchanged: self.unchanged }
    }
}

impl<K: Resource + 'static> Default for StoreConfig<K> {
    /// All namespaces, the built-in indexes, no transform.
    fn default() -> Self {
        let mut indexers: BTreeMap<String, Indexer<K>> = BTreeMap::new();
        let built_in =
            |values: IndexFn<K>, unchanged: fn(&K, &K) -> bool| Indexer { values, unchanged: Some(unchanged) };
        indexers.insert(BY_NAMESPACE.to_owned(), built_in(Arc::new(namespace_values::<K>), same_namespace::<K>));
        indexers.insert(BY_LABEL.to_owned(), built_in(Arc::new(label_values::<K>), same_labels::<K>));
        indexers.insert(BY_OWNER.to_owned(), built_in(Arc::new(owner_values::<K>), same_owners::<K>));
        StoreConfig { namespace: None, indexers, transform: None }
    }
}

impl<K> Clone for StoreConfig<K> {
    fn clone(&self) -> Self {
        StoreConfig {
            namespace: self.namespace.clone(),
            indexers: self.indexers.clone(),
            transform: self.transform.clone(),
        }
    }
}

impl<K> fmt::Debug for StoreConfig<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("namespace", &self.namespace)
            .field("indexes", &self.indexers.keys().collect::<Vec<_>>())
            .field("transform", &self.transform.is_some())
            .finish()
    }
}

impl<K: Resource + 'static> StoreConfig<K> {
    /// The store is for one namespace: objects from any other are skipped.
    #[must_use]
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_owned());
        self
    }

    /// Adds (or replaces) an index function under `name`.
    #[must_use]
    pub fn index(mut self, name: &str, f: impl Fn(&K) -> Vec<String> + Send + Sync + 'static) -> Self {
        self.indexers.insert(name.to_owned(), Indexer { values: Arc::new(f), unchanged: None });
        self
    }

    /// Removes an index, a built-in one included (to save its memory when it is not used).
    #[must_use]
    pub fn without_index(mut self, name: &str) -> Self {
        self.indexers.remove(name);
        self
    }

    /// Transforms every object before it is stored; transforms compose in the order given.
    #[must_use]
    pub fn transform(mut self, f: impl Fn(&mut K) + Send + Sync + 'static) -> Self {
        self.transform = Some(match self.transform.take() {
            None => Arc::new(f),
            Some(first) => Arc::new(move |k: &mut K| {
                first(k);
                f(k);
            }),
        });
        self
    }

    /// Drops `metadata.managedFields` before storing: often a third of a Pod's size, and rarely
    /// read by a controller.
    #[must_use]
    pub fn drop_managed_fields(self) -> Self {
        self.transform(drop_managed_fields::<K>)
    }
}

/// Clears `metadata.managedFields`: the transform of [`StoreConfig::drop_managed_fields`].
pub fn drop_managed_fields<K: Resource>(obj: &mut K) {
    obj.meta_mut().managed_fields = None;
}

fn namespace_values<K: Resource>(obj: &K) -> Vec<String> {
    obj.namespace().map(|ns| vec![ns.to_owned()]).unwrap_or_default()
}

fn same_namespace<K: Resource>(a: &K, b: &K) -> bool {
    a.meta().namespace == b.meta().namespace
}

fn same_labels<K: Resource>(a: &K, b: &K) -> bool {
    a.meta().labels == b.meta().labels
}

fn same_owners<K: Resource>(a: &K, b: &K) -> bool {
    a.owner_references().iter().map(|o| &o.uid).eq(b.owner_references().iter().map(|o| &o.uid))
}

fn label_values<K: Resource>(obj: &K) -> Vec<String> {
    obj.labels().iter().map(|(k, v)| format!("{k}={v}")).collect()
}

fn owner_values<K: Resource>(obj: &K) -> Vec<String> {
    obj.owner_references().iter().map(|o| o.uid.clone()).collect()
}

struct Entry<K> {
    obj: Arc<K>,
    /// The relist generation this entry was last seen in (listed, applied).
    generation: u64,
}

/// One index: value -> the keys of the objects indexed under it.
type Index = BTreeMap<String, BTreeSet<Arc<Key>>>;

/// The state of a watched collection. See the [module documentation](self).
pub struct Store<K: Resource> {
    config: StoreConfig<K>,
    dyntype: K::DynamicType,
    objects: BTreeMap<Arc<Key>, Entry<K>>,
    indexes: BTreeMap<String, Index>,
    /// The current relist's generation (bumped by every `Init`).
    generation: u64,
    /// Entries marked with the current generation, so that an `InitDone` that removes nothing
    /// skips its scan.
    marked: usize,
    ready: bool,
}

impl<K: Resource> fmt::Debug for Store<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("objects", &self.objects.len())
            .field("generation", &self.generation)
            .field("ready", &self.ready)
            .field("config", &self.config)
            .finish()
    }
}

impl<K: Resource> Store<K>
where
    K::DynamicType: Clone,
{
    /// An empty store, not ready, for the kind `dyntype` describes.
    pub fn new(config: StoreConfig<K>, dyntype: K::DynamicType) -> Self {
        let indexes = config.indexers.keys().map(|name| (name.clone(), Index::new())).collect();
        Store { config, dyntype, objects: BTreeMap::new(), indexes, generation: 0, marked: 0, ready: false }
    }

    /// Applies one watcher event, and hands the event back with the stored `Arc`s (after the
    /// transform), for the caller to pass on. An event the store skips comes back as the reason,
    /// and the store is unchanged.
    pub fn apply(&mut self, event: Event<K>) -> Result<Event<Arc<K>>, Skipped> {
        self.apply_inner(event, None)
    }

    /// [`apply`](Self::apply), handing the objects the event replaces or removes to `retired`
    /// instead of dropping them. Dropping a stored object frees all of its allocations, made long
    /// before and gone from the cache: a caller that holds a lock for the apply (as
    /// `kube_runtime`'s reflector does) drops them after releasing it, so readers do not wait.
    pub fn apply_retiring(&mut self, event: Event<K>, retired: &mut Vec<Arc<K>>) -> Result<Event<Arc<K>>, Skipped> {
        self.apply_inner(event, Some(retired))
    }

    fn apply_inner(
        &mut self,
        event: Event<K>,
        mut retired: Option<&mut Vec<Arc<K>>>,
    ) -> Result<Event<Arc<K>>, Skipped> {
        Ok(match event {
            Event::Init => {
                self.generation += 1;
                self.marked = 0;
                Event::Init
            }
            Event::InitApply(obj) => Event::InitApply(self.upsert(obj, "InitApply", retired)?),
            Event::Apply(obj) => Event::Apply(self.upsert(obj, "Apply", retired)?),
            Event::Delete(obj) => {
                let key = self.key_of(&obj, "Delete")?;
                self.remove(&key, retired.as_deref_mut());
                Event::Delete(Arc::new(obj))
            }
            Event::InitDone => {
                self.finish_relist(retired);
                self.ready = true;
                Event::InitDone
            }
        })
    }

    /// Whether a complete state has been received (the first `InitDone`).
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// The number of objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether the store holds no object.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The object `r` refers to (namespace and name; its type information is not compared).
    pub fn get(&self, r: &ObjectRef<K>) -> Option<Arc<K>> {
        let key = KeyRef { namespace: r.namespace.as_deref(), name: &r.name };
        self.objects.get(&key as &dyn KeyView).map(|e| e.obj.clone())
    }

    /// Every object, in key order (namespace, then name).
    pub fn state(&self) -> Vec<Arc<K>> {
        self.objects.values().map(|e| e.obj.clone()).collect()
    }

    /// Every object with its reference, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (ObjectRef<K>, &Arc<K>)> {
        self.objects.iter().map(|(k, e)| (self.object_ref(k), &e.obj))
    }

    /// The objects indexed under `value` in the index `index`, in key order.
    pub fn by_index(&self, index: &str, value: &str) -> Result<Vec<Arc<K>>, UnknownIndex> {
        let keys = self.index(index)?.get(value);
        Ok(keys.into_iter().flatten().filter_map(|k| self.objects.get(k)).map(|e| e.obj.clone()).collect())
    }

    /// The references of the objects indexed under `value` in the index `index`, in key order.
    pub fn refs_by_index(&self, index: &str, value: &str) -> Result<Vec<ObjectRef<K>>, UnknownIndex> {
        let keys = self.index(index)?.get(value);
        Ok(keys.into_iter().flatten().map(|k| self.object_ref(k)).collect())
    }

    /// The values the index `index` has objects under, in order (client-go's `ListIndexFuncValues`).
    pub fn index_values(&self, index: &str) -> Result<Vec<String>, UnknownIndex> {
        Ok(self.index(index)?.keys().cloned().collect())
    }

    /// The names of the indexes, in order.
    pub fn index_names(&self) -> Vec<String> {
        self.indexes.keys().cloned().collect()
    }

    /// The values `obj` would be indexed under in the index `index` (its index function).
    pub fn index_function_values(&self, index: &str, obj: &K) -> Result<Vec<String>, UnknownIndex> {
        let f = self.config.indexers.get(index).ok_or_else(|| UnknownIndex(index.to_owned()))?;
        Ok((f.values)(obj))
    }

    fn index(&self, index: &str) -> Result<&Index, UnknownIndex> {
        self.indexes.get(index).ok_or_else(|| UnknownIndex(index.to_owned()))
    }

    fn object_ref(&self, key: &Key) -> ObjectRef<K> {
        ObjectRef { name: key.name.clone(), namespace: key.namespace.clone(), dyntype: self.dyntype.clone() }
    }

    /// The object's key, or why it is skipped.
    fn key_of<'a>(&self, obj: &'a K, event: &'static str) -> Result<KeyRef<'a>, Skipped> {
        let meta = obj.meta();
        let Some(name) = meta.name.as_deref().filter(|n| !n.is_empty()) else {
            return Err(Skipped::NoName {
                event,
                namespace: meta.namespace.clone(),
                generate_name: meta.generate_name.clone(),
            });
        };
        if let Some(watched) = &self.config.namespace
            && meta.namespace.as_ref() != Some(watched)
        {
            return Err(Skipped::OutsideNamespace {
                event,
                name: name.to_owned(),
                namespace: meta.namespace.clone(),
                watched: watched.clone(),
            });
        }
        Ok(KeyRef { namespace: meta.namespace.as_deref(), name })
    }

    fn upsert(
        &mut self,
        mut obj: K,
        event: &'static str,
        retired: Option<&mut Vec<Arc<K>>>,
    ) -> Result<Arc<K>, Skipped> {
        if let Some(t) = &self.config.transform {
            t(&mut obj);
        }
        let found = {
            let key = self.key_of(&obj, event)?;
            match self.objects.get_key_value(&key as &dyn KeyView) {
                Some((shared, _)) => Ok(shared.clone()),
                None => Err(key.to_key()),
            }
        };
        let generation = self.generation;
        let obj = Arc::new(obj);
        match found {
            Ok(shared) => {
                let entry = self.objects.get_mut(&*shared as &dyn KeyView).expect("the entry just found");
                let old = std::mem::replace(&mut entry.obj, obj.clone());
                if entry.generation != generation {
                    entry.generation = generation;
                    self.marked += 1;
                }
                reindex(&self.config.indexers, &mut self.indexes, &shared, Some(&old), Some(&obj));
                if let Some(retired) = retired {
                    retired.push(old);
                }
            }
            Err(key) => {
                let key = Arc::new(key);
                reindex(&self.config.indexers, &mut self.indexes, &key, None, Some(&obj));
                self.objects.insert(key, Entry { obj: obj.clone(), generation });
                self.marked += 1;
            }
        }
        Ok(obj)
    }

    fn remove(&mut self, key: &dyn KeyView, retired: Option<&mut Vec<Arc<K>>>) {
        if let Some((key, entry)) = self.objects.remove_entry(key) {
            if entry.generation == self.generation {
                self.marked -= 1;
            }
            reindex(&self.config.indexers, &mut self.indexes, &key, Some(&entry.obj), None);
            if let Some(retired) = retired {
                retired.push(entry.obj);
            }
        }
    }

    /// Removes what the relist did not mark: the objects gone from the server.
    fn finish_relist(&mut self, mut retired: Option<&mut Vec<Arc<K>>>) {
        if self.marked == self.objects.len() {
            return;
        }
        let generation = self.generation;
        let stale: Vec<Arc<Key>> =
            self.objects.iter().filter(|(_, e)| e.generation != generation).map(|(k, _)| k.clone()).collect();
        for key in stale {
            self.remove(&*key, retired.as_deref_mut());
        }
    }
}

/// Moves `key` in every index from the values of `old` to those of `new` (either may be absent).
fn reindex<K>(
    indexers: &BTreeMap<String, Indexer<K>>,
    indexes: &mut BTreeMap<String, Index>,
    key: &Arc<Key>,
    old: Option<&K>,
    new: Option<&K>,
) {
    for (name, indexer) in indexers {
        if let (Some(unchanged), Some(old), Some(new)) = (indexer.unchanged, old, new)
            && unchanged(old, new)
        {
            continue;
        }
        let Some(index) = indexes.get_mut(name) else { continue };
        let f = &indexer.values;
        let mut before = old.map(|o| f(o)).unwrap_or_default();
        let mut after = new.map(|n| f(n)).unwrap_or_default();
        if before == after {
            continue;
        }
        before.sort_unstable();
        before.dedup();
        after.sort_unstable();
        after.dedup();
        for value in before.iter().filter(|v| after.binary_search(v).is_err()) {
            if let Some(set) = index.get_mut(value) {
                set.remove(key);
                if set.is_empty() {
                    index.remove(value);
                }
            }
        }
        for value in after.into_iter().filter(|v| before.binary_search(v).is_err()) {
            index.entry(value).or_default().insert(key.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::{ApiResource, DynamicObject, PartialObjectMeta};
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta, OwnerReference};

    fn cm(ns: &str, name: &str, labels: &[(&str, &str)], owner: Option<&str>, rv: u32) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(ns.to_owned()),
                resource_version: Some(rv.to_string()),
                labels: Some(labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()),
                owner_references: owner.map(|uid| {
                    vec![OwnerReference {
                        uid: uid.to_owned(),
                        name: "o".into(),
                        kind: "X".into(),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn names(objs: &[Arc<ConfigMap>]) -> Vec<String> {
        objs.iter().map(|o| o.name_any()).collect()
    }

    fn feed(store: &mut Store<ConfigMap>, events: Vec<Event<ConfigMap>>) {
        for ev in events {
            store.apply(ev).unwrap();
        }
    }

    #[test]
    fn ready_only_after_the_first_init_done_and_for_good() {
        let mut s = Store::new(StoreConfig::default(), ());
        assert!(!s.is_ready());
        feed(&mut s, vec![Event::Init, Event::InitApply(cm("a", "x", &[], None, 1))]);
        assert!(!s.is_ready(), "not ready in the middle of the first list");
        assert_eq!(s.len(), 1, "but what was listed is readable");
        s.apply(Event::InitDone).unwrap();
        assert!(s.is_ready());
        s.apply(Event::Init).unwrap();
        assert!(s.is_ready(), "a relist does not make the store unready");
    }

    #[test]
    fn a_relist_replaces_entries_in_place_and_drops_only_the_unlisted_at_init_done() {
        let mut s = Store::new(StoreConfig::default(), ());
        feed(
            &mut s,
            vec![
                Event::Init,
                Event::InitApply(cm("a", "keep", &[], None, 1)),
                Event::InitApply(cm("a", "gone", &[], None, 2)),
                Event::InitDone,
            ],
        );
        s.apply(Event::Init).unwrap();
        let newer = s.apply(Event::InitApply(cm("a", "keep", &[], None, 3))).unwrap();
        // In the middle of the relist: both still there, `keep` already at its new version.
        assert_eq!(names(&s.state()), ["gone", "keep"]);
        let live = s.get(&ObjectRef::new("keep").within("a")).unwrap();
        let Event::InitApply(newer) = newer else { panic!("{newer:?}") };
        assert!(Arc::ptr_eq(&live, &newer), "the stored object is the one handed back, not a copy");
        s.apply(Event::InitDone).unwrap();
        assert_eq!(names(&s.state()), ["keep"]);
        assert_eq!(s.get(&ObjectRef::new("keep").within("a")).unwrap().resource_version(), Some("3"));
    }

    #[test]
    fn apply_retiring_hands_over_what_it_replaces_and_removes_instead_of_dropping_it() {
        let mut s = Store::new(StoreConfig::default(), ());
        let mut retired = Vec::new();
        let events = [
            Event::Init,
            Event::InitApply(cm("a", "x", &[], None, 1)),
            Event::InitApply(cm("a", "y", &[], None, 1)),
            Event::InitDone,
        ];
        for ev in events {
            s.apply_retiring(ev, &mut retired).unwrap();
        }
        assert!(retired.is_empty(), "nothing replaced yet");
        let old_x = s.get(&ObjectRef::new("x").within("a")).unwrap();
        s.apply_retiring(Event::Apply(cm("a", "x", &[], None, 2)), &mut retired).unwrap();
        assert_eq!(retired.len(), 1);
        assert!(Arc::ptr_eq(&retired[0], &old_x), "the replaced object itself");
        s.apply_retiring(Event::Delete(cm("a", "x", &[], None, 3)), &mut retired).unwrap();
        assert_eq!(retired.iter().map(|o| o.resource_version().unwrap()).collect::<Vec<_>>(), ["1", "2"]);
        // A relist that leaves `y` out retires it at InitDone.
        for ev in [Event::Init, Event::InitApply(cm("a", "z", &[], None, 4)), Event::InitDone] {
            s.apply_retiring(ev, &mut retired).unwrap();
        }
        assert_eq!(retired.last().unwrap().name_any(), "y");
        assert_eq!(retired.len(), 3);
        assert_eq!(names(&s.state()), ["z"]);
        assert_eq!(s.by_index(BY_NAMESPACE, "a").unwrap().len(), 1);
    }

    #[test]
    fn an_init_restarting_a_broken_relist_still_removes_what_the_last_one_did_not_list() {
        let mut s = Store::new(StoreConfig::default(), ());
        feed(
            &mut s,
            vec![
                Event::Init,
                Event::InitApply(cm("a", "x", &[], None, 1)),
                Event::InitApply(cm("a", "y", &[], None, 1)),
                Event::InitDone,
                Event::Init,
                Event::InitApply(cm("a", "x", &[], None, 2)),
                // The relist broke and started over: `x` was marked by the broken attempt only.
                Event::Init,
                Event::InitApply(cm("a", "y", &[], None, 2)),
                Event::InitDone,
            ],
        );
        assert_eq!(names(&s.state()), ["y"]);
    }

    #[test]
    fn apply_and_delete_update_every_built_in_index() {
        let mut s = Store::new(StoreConfig::default(), ());
        feed(
            &mut s,
            vec![
                Event::Init,
                Event::InitApply(cm("a", "x", &[("app", "web"), ("tier", "fe")], Some("u1"), 1)),
                Event::InitApply(cm("b", "y", &[("app", "web")], Some("u2"), 1)),
                Event::InitDone,
            ],
        );
        assert_eq!(names(&s.by_index(BY_NAMESPACE, "a").unwrap()), ["x"]);
        assert_eq!(names(&s.by_index(BY_LABEL, "app=web").unwrap()), ["x", "y"]);
        assert_eq!(names(&s.by_index(BY_OWNER, "u2").unwrap()), ["y"]);
        // Relabel and re-own x.
        s.apply(Event::Apply(cm("a", "x", &[("app", "db")], Some("u2"), 2))).unwrap();
        assert_eq!(names(&s.by_index(BY_LABEL, "app=web").unwrap()), ["y"]);
        assert_eq!(names(&s.by_index(BY_LABEL, "app=db").unwrap()), ["x"]);
        assert!(s.by_index(BY_LABEL, "tier=fe").unwrap().is_empty());
        assert_eq!(s.index_values(BY_LABEL).unwrap(), ["app=db", "app=web"], "empty values are dropped");
        assert_eq!(names(&s.by_index(BY_OWNER, "u2").unwrap()), ["x", "y"]);
        s.apply(Event::Delete(cm("b", "y", &[], None, 3))).unwrap();
        assert_eq!(s.index_values(BY_NAMESPACE).unwrap(), ["a"]);
        assert_eq!(s.index_values(BY_OWNER).unwrap(), ["u2"]);
        assert_eq!(s.refs_by_index(BY_OWNER, "u2").unwrap(), [ObjectRef::new("x").within("a")]);
    }

    #[test]
    fn user_index_functions_are_kept_like_client_go_indexers() {
        let config = StoreConfig::default().index("first-letter", |c: &ConfigMap| {
            c.name().and_then(|n| n.get(..1)).map(|l| vec![l.to_owned()]).unwrap_or_default()
        });
        let mut s = Store::new(config, ());
        feed(
            &mut s,
            vec![
                Event::Init,
                Event::InitApply(cm("a", "apple", &[], None, 1)),
                Event::InitApply(cm("a", "avocado", &[], None, 1)),
                Event::InitApply(cm("a", "banana", &[], None, 1)),
                Event::InitDone,
                Event::Init,
                Event::InitApply(cm("a", "banana", &[], None, 2)),
                Event::InitDone,
            ],
        );
        assert_eq!(s.index_values("first-letter").unwrap(), ["b"]);
        assert_eq!(s.by_index("nope", "x").unwrap_err(), UnknownIndex("nope".into()));
        assert_eq!(s.index_names(), ["first-letter", BY_LABEL, BY_NAMESPACE, BY_OWNER]);
    }

    #[test]
    fn an_object_without_a_name_is_skipped_with_a_warning_and_the_store_is_intact() {
        let mut s = Store::new(StoreConfig::default(), ());
        feed(&mut s, vec![Event::Init, Event::InitApply(cm("a", "x", &[("k", "v")], None, 1)), Event::InitDone]);
        let mut nameless = cm("a", "", &[("k", "v")], None, 2);
        nameless.metadata.name = None;
        nameless.metadata.generate_name = Some("web-".into());
        let err = s.apply(Event::Apply(nameless.clone())).unwrap_err();
        assert_eq!(
            err,
            Skipped::NoName { event: "Apply", namespace: Some("a".into()), generate_name: Some("web-".into()) }
        );
        assert!(err.to_string().contains("web-"), "{err}");
        assert!(s.apply(Event::Delete(nameless)).is_err());
        assert_eq!(names(&s.state()), ["x"]);
        assert_eq!(names(&s.by_index(BY_LABEL, "k=v").unwrap()), ["x"]);
    }

    #[test]
    fn an_object_outside_the_watched_namespace_is_skipped_with_a_warning_naming_it() {
        let mut s = Store::new(StoreConfig::default().namespace("a"), ());
        feed(&mut s, vec![Event::Init, Event::InitApply(cm("a", "x", &[], None, 1)), Event::InitDone]);
        let err = s.apply(Event::Apply(cm("b", "intruder", &[], None, 2))).unwrap_err();
        assert!(matches!(&err, Skipped::OutsideNamespace { name, namespace, watched, .. }
            if name == "intruder" && namespace.as_deref() == Some("b") && watched == "a"));
        assert!(err.to_string().contains("intruder"), "{err}");
        // A Delete from elsewhere cannot remove the object of the same name here.
        assert!(s.apply(Event::Delete(cm("b", "x", &[], None, 3))).is_err());
        assert_eq!(names(&s.state()), ["x"]);
        assert_eq!(s.index_values(BY_NAMESPACE).unwrap(), ["a"]);
    }

    #[test]
    fn the_transform_runs_before_storing_and_can_drop_managed_fields() {
        let config = StoreConfig::default().drop_managed_fields().transform(|c: &mut ConfigMap| {
            c.labels_mut().insert("seen".into(), "yes".into());
        });
        let mut s = Store::new(config, ());
        let mut obj = cm("a", "x", &[], None, 1);
        obj.metadata.managed_fields =
            Some(vec![ManagedFieldsEntry { manager: Some("kubectl".into()), ..Default::default() }]);
        let Event::Apply(passed) = s.apply(Event::Apply(obj)).unwrap() else { panic!() };
        assert_eq!(passed.metadata.managed_fields, None);
        assert_eq!(names(&s.by_index(BY_LABEL, "seen=yes").unwrap()), ["x"], "indexed after the transform");
    }

    #[test]
    fn cluster_scoped_objects_are_keyed_by_name_and_not_in_the_namespace_index() {
        let mut s = Store::<Namespace>::new(StoreConfig::default(), ());
        let ns = Namespace {
            metadata: ObjectMeta { name: Some("kube-system".into()), ..Default::default() },
            ..Default::default()
        };
        s.apply(Event::Apply(ns)).unwrap();
        assert!(s.get(&ObjectRef::new("kube-system")).is_some());
        assert!(s.index_values(BY_NAMESPACE).unwrap().is_empty());
        assert_eq!(ObjectRef::<Namespace>::new("kube-system").to_string(), "kube-system");
    }

    #[test]
    fn dynamic_objects_carry_their_api_resource_in_their_refs() {
        let ar = ApiResource::new("example.com", "v1", "Widget", "widgets", true);
        let mut s = Store::<DynamicObject>::new(StoreConfig::default(), ar.clone());
        s.apply(Event::Apply(DynamicObject::new("w", &ar).within("ns"))).unwrap();
        let r = ObjectRef::<DynamicObject>::new_with("w", ar.clone()).within("ns");
        assert!(s.get(&r).is_some());
        let (listed, _) = s.iter().next().unwrap();
        assert_eq!(listed, r);
        assert_eq!(listed.dyntype, ar);
    }

    #[test]
    fn metadata_only_stores_hold_partial_object_meta() {
        let mut s = Store::<PartialObjectMeta<ConfigMap>>::new(StoreConfig::default(), ());
        let meta = cm("a", "x", &[("app", "web")], None, 1).metadata;
        s.apply(Event::Apply(PartialObjectMeta::new(meta))).unwrap();
        assert_eq!(s.by_index(BY_LABEL, "app=web").unwrap().len(), 1);
    }
}
