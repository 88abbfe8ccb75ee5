//! The fake server's storage: a multi-version store with one global, increasing
//! resourceVersion (like etcd's revision), an event log for watches, and compaction.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;

/// Index of a kind in the server's kind table.
pub type KindId = usize;

/// Identifies one object: its kind, namespace (empty for cluster-scoped) and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjKey {
    /// The kind.
    pub kind: KindId,
    /// The namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// The name.
    pub name: String,
}

/// What happened to an object at one resourceVersion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Deleted.
    Deleted,
}

/// One entry of the event log.
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// The resourceVersion of the change.
    pub rv: u64,
    /// Which object.
    pub key: ObjKey,
    /// What happened.
    pub change: Change,
    /// The object after the change (for a delete: its last state, with the deletion's
    /// resourceVersion).
    pub object: Arc<Value>,
    /// The object before the change (none for a create).
    pub previous: Option<Arc<Value>>,
}

#[derive(Debug, Clone)]
struct Version {
    rv: u64,
    object: Option<Arc<Value>>,
}

/// The store. Reads at an older resourceVersion see the state as of then, until compaction.
#[derive(Debug)]
pub struct Store {
    rv: u64,
    compacted: u64,
    objects: BTreeMap<ObjKey, Vec<Version>>,
    log: VecDeque<LogEntry>,
    window: usize,
}

impl Store {
    /// An empty store whose first write gets `first_rv`; it keeps `window` log entries.
    pub fn new(first_rv: u64, window: usize) -> Self {
        Store { rv: first_rv - 1, compacted: first_rv - 1, objects: BTreeMap::new(), log: VecDeque::new(), window }
    }

    /// The latest resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.rv
    }

    /// ResourceVersions at or below this are compacted: older reads and watches get 410.
    pub fn compacted_rv(&self) -> u64 {
        self.compacted
    }

    /// The current state of an object.
    pub fn get(&self, key: &ObjKey) -> Option<&Arc<Value>> {
        self.objects.get(key)?.last()?.object.as_ref()
    }

    /// Records a change, returning its resourceVersion. The caller has already stamped
    /// `metadata.resourceVersion` with [`next_rv`](Self::next_rv); for a delete, `object` is the
    /// last state, stamped with the deletion's resourceVersion.
    pub fn write(&mut self, key: ObjKey, change: Change, object: Arc<Value>) -> u64 {
        let stored = (change != Change::Deleted).then(|| object.clone());
        self.rv += 1;
        let rv = self.rv;
        let previous = self.get(&key).cloned();
        let versions = self.objects.entry(key.clone()).or_default();
        versions.push(Version { rv, object: stored });
        // Keep one version at or below the compaction point, for snapshot reads.
        let keep_from = versions.iter().rposition(|v| v.rv <= self.compacted).unwrap_or(0);
        if keep_from > 0 {
            versions.drain(..keep_from);
        }
        self.log.push_back(LogEntry { rv, key, change, object, previous });
        while self.log.len() > self.window {
            if let Some(e) = self.log.pop_front() {
                self.compacted = self.compacted.max(e.rv);
            }
        }
        rv
    }

    /// The resourceVersion the next write will get.
    pub fn next_rv(&self) -> u64 {
        self.rv + 1
    }

    /// Forgets all history up to now: reads and watches from older resourceVersions get 410.
    pub fn compact(&mut self) {
        self.compacted = self.rv;
        self.log.clear();
        self.objects.retain(|_, versions| {
            let last = versions.pop();
            versions.clear();
            match last {
                Some(v) if v.object.is_some() => {
                    versions.push(v);
                    true
                }
                _ => false,
            }
        });
    }

    /// The objects of a kind (optionally in one namespace) as of `at`, in key order, starting
    /// after `start` (exclusive) when given.
    pub fn range_at<'a>(
        &'a self,
        kind: KindId,
        namespace: Option<&'a str>,
        at: u64,
        start: Option<&'a (String, String)>,
    ) -> impl Iterator<Item = (&'a ObjKey, &'a Arc<Value>)> + 'a {
        let lo = ObjKey { kind, namespace: namespace.unwrap_or("").to_owned(), name: String::new() };
        self.objects
            .range(lo..)
            .take_while(move |(k, _)| k.kind == kind && namespace.is_none_or(|ns| k.namespace == ns))
            .filter(move |(k, _)| start.is_none_or(|(sns, sname)| (&k.namespace, &k.name) > (sns, sname)))
            .filter_map(move |(k, versions)| {
                let v = versions.iter().rev().find(|v| v.rv <= at)?;
                Some((k, v.object.as_ref()?))
            })
    }

    /// The log entries after `rv`, or `None` if some of them were compacted away.
    pub fn log_after(&self, rv: u64) -> Option<impl Iterator<Item = &LogEntry>> {
        if rv < self.compacted {
            return None;
        }
        let idx = self.log.partition_point(|e| e.rv <= rv);
        Some(self.log.range(idx..))
    }
}
