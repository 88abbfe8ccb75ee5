//! The store under random event sequences: watch events and relists (some broken and started
//! over), with random namespaces, labels and owners.
//!
//! After every event, every index equals one recomputed from scratch from the objects stored;
//! after every watch event the store equals a plain map folded from the events; after every
//! relist it holds exactly what the relist listed; and no snapshot taken during a relist misses an
//! object present both before and after it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube_proto::ResourceExt;
use kube_proto::store::{BY_LABEL, BY_NAMESPACE, BY_OWNER, ObjectRef, Store, StoreConfig};
use kube_proto::watcher::Event;
use proptest::prelude::*;

const NAMESPACES: [&str; 2] = ["a", "b"];
const NAMES: [&str; 6] = ["n0", "n1", "n2", "n3", "n4", "n5"];
const LABELS: [(&str, &str); 4] = [("app", "web"), ("app", "db"), ("tier", "fe"), ("team", "x")];
const OWNERS: [&str; 3] = ["u1", "u2", "u3"];

/// A generated object: namespace, name, labels, owners, and a version to tell copies apart.
#[derive(Debug, Clone)]
struct Obj {
    ns: usize,
    name: usize,
    labels: Vec<usize>,
    owners: Vec<usize>,
    rv: u32,
}

impl Obj {
    fn key(&self) -> (String, String) {
        (NAMESPACES[self.ns].to_owned(), NAMES[self.name].to_owned())
    }

    fn build(&self) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(NAMES[self.name].to_owned()),
                namespace: Some(NAMESPACES[self.ns].to_owned()),
                resource_version: Some(self.rv.to_string()),
                labels: Some(self.labels.iter().map(|&l| (LABELS[l].0.to_owned(), LABELS[l].1.to_owned())).collect()),
                owner_references: Some(
                    self.owners
                        .iter()
                        .map(|&o| OwnerReference { uid: OWNERS[o].to_owned(), ..Default::default() })
                        .collect(),
                ),
                ..Default::default()
            },
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone)]
enum Step {
    Apply(Obj),
    Delete(usize, usize),
    /// A relist of these objects (deduplicated by key, the last one wins); when `broken`, an
    /// attempt that stops after its first half comes first.
    Relist {
        objects: Vec<Obj>,
        broken: bool,
    },
}

fn obj() -> impl Strategy<Value = Obj> {
    (
        0..NAMESPACES.len(),
        0..NAMES.len(),
        prop::collection::vec(0..LABELS.len(), 0..3),
        prop::collection::vec(0..OWNERS.len(), 0..2),
        0u32..1000,
    )
        .prop_map(|(ns, name, labels, owners, rv)| Obj { ns, name, labels, owners, rv })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => obj().prop_map(Step::Apply),
        2 => (0..NAMESPACES.len(), 0..NAMES.len()).prop_map(|(ns, name)| Step::Delete(ns, name)),
        1 => (prop::collection::vec(obj(), 0..10), any::<bool>()).prop_map(|(objects, broken)| Step::Relist { objects, broken }),
    ]
}

/// The store's contents: key -> resourceVersion.
fn contents(store: &Store<ConfigMap>) -> BTreeMap<(String, String), String> {
    store
        .state()
        .iter()
        .map(|o| ((o.namespace().unwrap().to_owned(), o.name_any()), o.resource_version().unwrap().to_owned()))
        .collect()
}

/// The custom index of the test: the parity of the name's digit.
fn parity(c: &ConfigMap) -> Vec<String> {
    let digit = c.name_any().bytes().last().map(|b| b % 2).unwrap_or(0);
    vec![if digit == 0 { "even" } else { "odd" }.to_owned()]
}

/// Every index, recomputed from scratch from the stored objects, equals the store's.
fn check_indexes(store: &Store<ConfigMap>) -> Result<(), TestCaseError> {
    let mut expected: BTreeMap<&str, BTreeMap<String, BTreeSet<ObjectRef<ConfigMap>>>> = BTreeMap::new();
    for index in [BY_NAMESPACE, BY_LABEL, BY_OWNER, "parity"] {
        expected.insert(index, BTreeMap::new());
    }
    for o in store.state() {
        let r = ObjectRef::from_obj(&*o);
        let mut add = |index: &'static str, value: String| {
            expected.get_mut(index).unwrap().entry(value).or_default().insert(r.clone());
        };
        add(BY_NAMESPACE, o.namespace().unwrap().to_owned());
        for (k, v) in o.labels() {
            add(BY_LABEL, format!("{k}={v}"));
        }
        for owner in o.owner_references() {
            add(BY_OWNER, owner.uid.clone());
        }
        for v in parity(&o) {
            add("parity", v);
        }
    }
    for (index, values) in expected {
        let got_values: Vec<String> = store.index_values(index).unwrap();
        prop_assert_eq!(&got_values, &values.keys().cloned().collect::<Vec<_>>(), "values of index {}", index);
        for (value, refs) in values {
            let got: BTreeSet<ObjectRef<ConfigMap>> = store.refs_by_index(index, &value).unwrap().into_iter().collect();
            prop_assert_eq!(&got, &refs, "index {} value {}", index, value);
            let objects = store.by_index(index, &value).unwrap();
            prop_assert_eq!(objects.len(), refs.len());
        }
    }
    Ok(())
}

fn apply(store: &mut Store<ConfigMap>, ev: Event<ConfigMap>) -> Result<(), TestCaseError> {
    prop_assert!(store.apply(ev).is_ok());
    check_indexes(store)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn indexes_stay_exact_and_relists_never_hide_a_surviving_object(steps in prop::collection::vec(step(), 0..40)) {
        let mut store = Store::new(StoreConfig::default().index("parity", parity), ());
        let mut model: BTreeMap<(String, String), String> = BTreeMap::new();
        for step in steps {
            match step {
                Step::Apply(o) => {
                    model.insert(o.key(), o.rv.to_string());
                    apply(&mut store, Event::Apply(o.build()))?;
                }
                Step::Delete(ns, name) => {
                    let o = Obj { ns, name, labels: vec![], owners: vec![], rv: 0 };
                    model.remove(&o.key());
                    apply(&mut store, Event::Delete(o.build()))?;
                }
                Step::Relist { objects, broken } => {
                    let before: BTreeSet<_> = model.keys().cloned().collect();
                    let listed: BTreeMap<_, _> = objects.iter().map(|o| (o.key(), o.rv.to_string())).collect();
                    let mut snapshots = vec![];
                    if broken {
                        apply(&mut store, Event::Init)?;
                        for o in &objects[..objects.len() / 2] {
                            apply(&mut store, Event::InitApply(o.build()))?;
                            snapshots.push(contents(&store));
                        }
                    }
                    apply(&mut store, Event::Init)?;
                    snapshots.push(contents(&store));
                    for o in &objects {
                        apply(&mut store, Event::InitApply(o.build()))?;
                        snapshots.push(contents(&store));
                    }
                    apply(&mut store, Event::InitDone)?;
                    prop_assert!(store.is_ready());
                    model = listed;
                    for key in before.iter().filter(|k| model.contains_key(*k)) {
                        for snap in &snapshots {
                            prop_assert!(snap.contains_key(key), "{:?} vanished during the relist", key);
                        }
                    }
                }
            }
            prop_assert_eq!(contents(&store), model.clone());
        }
    }
}

#[test]
fn stored_objects_are_the_ones_handed_back_never_copies() {
    let mut store = Store::new(StoreConfig::default(), ());
    let o = Obj { ns: 0, name: 0, labels: vec![0], owners: vec![], rv: 1 };
    let Ok(Event::Apply(passed)) = store.apply(Event::Apply(o.build())) else { panic!("not applied") };
    let stored = store.get(&ObjectRef::from_obj(&*passed)).unwrap();
    assert!(Arc::ptr_eq(&passed, &stored));
    assert_eq!(Arc::strong_count(&stored), 3, "the store's, the event's and this one");
}
