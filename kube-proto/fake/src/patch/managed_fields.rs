//! `metadata.managedFields`: who owns which fields of an object ([`FieldOwners`]), and the
//! bookkeeping of every write that is not an apply ([`record_update`]).

use serde_json::{Map, Value};

use super::compare::{Comparison, Scope, split};
use super::{FieldSet, InvalidManagedFields, builtin_list_key};

/// How a manager came to own its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Any other write: create, update, JSON/merge/strategic patch.
    Update,
}

impl Operation {
    /// `"Apply"` or `"Update"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One entry of `metadata.managedFields`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedFieldsEntry {
    /// The field manager.
    pub manager: String,
    /// Apply or Update.
    pub operation: Operation,
    /// The apiVersion the fields were written at.
    pub api_version: String,
    /// When the entry last changed the object (RFC 3339), if recorded.
    pub time: Option<String>,
    /// The subresource written through (`status`, `scale`), if any.
    pub subresource: Option<String>,
    /// The owned fields.
    pub fields: FieldSet,
}

impl ManagedFieldsEntry {
    fn parse(v: &Value) -> Result<Self, InvalidManagedFields> {
        let m = v.as_object().ok_or_else(|| InvalidManagedFields(format!("entry is not an object: {v}")))?;
        let text = |k: &str| m.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
        let operation = match m.get("operation").and_then(Value::as_str) {
            Some("Apply") => Operation::Apply,
            Some("Update") => Operation::Update,
            other => return Err(InvalidManagedFields(format!("unknown operation {other:?}"))),
        };
        if let Some(t) = m.get("fieldsType").and_then(Value::as_str)
            && t != "FieldsV1"
        {
            return Err(InvalidManagedFields(format!("unknown fieldsType {t:?}")));
        }
        let fields = match m.get("fieldsV1") {
            Some(f) => FieldSet::from_fields_v1(f)?,
            None => FieldSet::default(),
        };
        Ok(ManagedFieldsEntry {
            manager: text("manager").unwrap_or_default(),
            operation,
            api_version: text("apiVersion").unwrap_or_default(),
            time: text("time"),
            subresource: text("subresource"),
            fields,
        })
    }

    fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), Value::String(self.manager.clone()));
        m.insert("operation".into(), Value::String(self.operation.as_str().into()));
        m.insert("apiVersion".into(), Value::String(self.api_version.clone()));
        if let Some(t) = &self.time {
            m.insert("time".into(), Value::String(t.clone()));
        }
        m.insert("fieldsType".into(), Value::String("FieldsV1".into()));
        m.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if let Some(s) = &self.subresource {
            m.insert("subresource".into(), Value::String(s.clone()));
        }
        Value::Object(m)
    }

    /// The real server's identity of a manager: Apply entries regardless of apiVersion.
    fn is(&self, name: &str, operation: Operation, api_version: &str, subresource: Option<&str>) -> bool {
        self.manager == name
            && self.operation == operation
            && self.subresource.as_deref() == subresource
            && (operation == Operation::Apply || self.api_version == api_version)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Slot {
    pub(super) entry: ManagedFieldsEntry,
    /// Changed the object in this round: gets the time (and a missing apiVersion) on write.
    pub(super) touched: bool,
}

/// Who owns which fields of one object: its `metadata.managedFields`, read with
/// [`FieldOwners::from_object`], changed by [`apply`](super::apply()) and [`record_update`], written back with
/// [`FieldOwners::write_to`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldOwners {
    pub(super) slots: Vec<Slot>,
}

/// A field manager writing through the main resource or a subresource.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ManagerRef<'a> {
    /// The field manager's name (`fieldManager`, or the user agent's first part).
    pub name: &'a str,
    /// The subresource written through. `status` scopes the write to `.status`; any other
    /// value (or `None`) to everything but `.status`.
    pub subresource: Option<&'a str>,
}

impl<'a> ManagerRef<'a> {
    /// A manager writing through the main resource.
    pub fn new(name: &'a str) -> Self {
        ManagerRef { name, subresource: None }
    }

    /// The same manager writing through `subresource`.
    pub fn with_subresource(self, subresource: &'a str) -> Self {
        ManagerRef { subresource: Some(subresource), ..self }
    }
}

impl FieldOwners {
    /// No owners.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads `metadata.managedFields` of an object, skipping entries that cannot be read (the
    /// real server drops unreadable managed fields too). Entries of the same manager identity
    /// are merged.
    pub fn from_object(obj: &Value) -> Self {
        let mut owners = FieldOwners::default();
        if let Some(Value::Array(items)) = obj.get("metadata").and_then(|m| m.get("managedFields")) {
            for e in items.iter().filter_map(|i| ManagedFieldsEntry::parse(i).ok()) {
                owners.insert_merged(e);
            }
        }
        owners
    }

    /// Reads a `managedFields` array, strictly.
    pub fn from_managed_fields(list: &Value) -> Result<Self, InvalidManagedFields> {
        let items = list.as_array().ok_or_else(|| InvalidManagedFields("managedFields must be an array".into()))?;
        let mut owners = FieldOwners::default();
        for i in items {
            owners.insert_merged(ManagedFieldsEntry::parse(i)?);
        }
        Ok(owners)
    }

    fn insert_merged(&mut self, e: ManagedFieldsEntry) {
        let existing = self.slots.iter_mut().find(|s| {
            s.entry.is(&e.manager, e.operation, &e.api_version, e.subresource.as_deref())
                && s.entry.api_version == e.api_version
        });
        match existing {
            Some(s) => s.entry.fields.paths.extend(e.fields.paths),
            None => self.slots.push(Slot { entry: e, touched: false }),
        }
    }

    /// The entries, in the order they were read or added.
    pub fn entries(&self) -> impl Iterator<Item = &ManagedFieldsEntry> {
        self.slots.iter().map(|s| &s.entry)
    }

    /// The first entry of `manager` with `operation`.
    pub fn entry(&self, manager: &str, operation: Operation) -> Option<&ManagedFieldsEntry> {
        self.entries().find(|e| e.manager == manager && e.operation == operation)
    }

    /// Whether nobody owns anything.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The `managedFields` array, sorted as the real server sorts it (Apply before Update, then by
    /// time, manager, apiVersion, subresource). Entries that changed the object since they were
    /// read get `time` (if not empty) and, if they have none, `api_version`.
    pub fn to_managed_fields(&self, api_version: &str, time: &str) -> Value {
        let mut entries: Vec<ManagedFieldsEntry> = self
            .slots
            .iter()
            .map(|s| {
                let mut e = s.entry.clone();
                if s.touched {
                    if !time.is_empty() {
                        e.time = Some(time.to_owned());
                    }
                    if e.api_version.is_empty() {
                        e.api_version = api_version.to_owned();
                    }
                }
                e
            })
            .collect();
        entries.sort_by(|p, q| {
            (p.operation, p.time.as_deref().unwrap_or(""), &p.manager, &p.api_version, &p.subresource).cmp(&(
                q.operation,
                q.time.as_deref().unwrap_or(""),
                &q.manager,
                &q.api_version,
                &q.subresource,
            ))
        });
        Value::Array(entries.iter().map(ManagedFieldsEntry::to_value).collect())
    }

    /// Sets `metadata.managedFields` of `obj` to [`FieldOwners::to_managed_fields`], or removes it
    /// when nobody owns anything.
    pub fn write_to(&self, obj: &mut Value, api_version: &str, time: &str) {
        let Value::Object(root) = obj else { return };
        if self.slots.is_empty() {
            if let Some(Value::Object(meta)) = root.get_mut("metadata") {
                meta.remove("managedFields");
            }
            return;
        }
        let meta = root.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
        if !meta.is_object() {
            *meta = Value::Object(Map::new());
        }
        if let Value::Object(meta) = meta {
            meta.insert("managedFields".into(), self.to_managed_fields(api_version, time));
        }
    }

    pub(super) fn position(
        &self,
        name: &str,
        operation: Operation,
        api_version: &str,
        subresource: Option<&str>,
    ) -> Option<usize> {
        self.slots.iter().position(|s| s.entry.is(name, operation, api_version, subresource))
    }

    pub(super) fn drop_empty(&mut self) {
        self.slots.retain(|s| !s.entry.fields.is_empty());
    }
}

/// Records a write that is not an apply (create, update, JSON/merge/strategic patch) by `manager`
/// through the main resource, with the built-in list keys: see [`record_update_as`].
pub fn record_update(before: Option<&Value>, after: &Value, manager: &str, owners: &mut FieldOwners) {
    record_update_as(before, after, ManagerRef::new(manager), owners, &builtin_list_key);
}

/// Records a write that is not an apply: `manager`'s Update entry (identified by manager,
/// apiVersion of `after` and subresource) takes every field that was added or changed from
/// `before` (`None` on create) to `after`, other managers lose those fields, and fields that
/// were removed lose all their owners. Parents that appear are owned too (`.` in `fieldsV1`).
///
/// The scope is as for [`apply_as`](super::apply_as): through `status` only `.status` counts, otherwise
/// everything but `.status` and the server-set fields. The entry is marked as changed (gets the
/// time on [`FieldOwners::write_to`]) only if it took fields.
pub fn record_update_as<'k>(
    before: Option<&Value>,
    after: &Value,
    manager: ManagerRef<'_>,
    owners: &mut FieldOwners,
    list_keys: &dyn Fn(&str) -> Option<&'k str>,
) {
    let scope = Scope::of(manager.subresource);
    let empty = Value::Object(Map::new());
    let (b, _) = split(before.unwrap_or(&empty), scope);
    let (a, _) = split(after, scope);
    let cmp = Comparison::between(&b, &a, list_keys);
    let api_version = after.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let mut changed = cmp.added;
    changed.extend(cmp.modified);
    let me = owners.position(manager.name, Operation::Update, api_version, manager.subresource);
    for (i, s) in owners.slots.iter_mut().enumerate() {
        if Some(i) != me {
            s.entry.fields.paths.retain(|p| !changed.contains(p) && !cmp.removed.contains(p));
        }
    }
    match me.and_then(|i| owners.slots.get_mut(i)) {
        Some(slot) => {
            slot.entry.fields.paths.retain(|p| !cmp.removed.contains(p));
            slot.touched |= !changed.is_empty();
            slot.entry.fields.paths.extend(changed);
        }
        None if !changed.is_empty() => owners.slots.push(Slot {
            entry: ManagedFieldsEntry {
                manager: manager.name.to_owned(),
                operation: Operation::Update,
                api_version: api_version.to_owned(),
                time: None,
                subresource: manager.subresource.map(str::to_owned),
                fields: FieldSet { paths: changed },
            },
            touched: true,
        }),
        None => {}
    }
    owners.drop_empty();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::test_support::{body, fields_of, fixture, fixture_fields, no_keys};
    use crate::patch::{json_patch, merge_patch, strategic_merge_patch};
    use serde_json::json;

    #[test]
    fn managed_fields_round_trip_the_real_format() {
        for body in [
            fixture!("patch-pod-ephemeralcontainers")["response"]["body"].clone(),
            fixture!("crd-widget-apply-force")["response"]["body"].clone(),
            fixture!("create-deployment")["response"]["body"].clone(),
            fixture!("apply-configmap-force")["response"]["body"].clone(),
        ] {
            let list = &body["metadata"]["managedFields"];
            let owners = FieldOwners::from_managed_fields(list).unwrap();
            assert_eq!(owners, FieldOwners::from_object(&body));
            // Nothing touched: written back exactly (the real order and times kept).
            assert_eq!(owners.to_managed_fields("ignored", "ignored"), *list);
            let mut copy = body.clone();
            owners.write_to(&mut copy, "v1", "now");
            assert_eq!(copy, body);
        }
    }

    #[test]
    fn invalid_managed_fields() {
        assert!(FieldOwners::from_managed_fields(&json!({})).is_err());
        assert!(FieldOwners::from_managed_fields(&json!([{"manager": "a", "operation": "Frob"}])).is_err());
        assert!(
            FieldOwners::from_managed_fields(
                &json!([{"manager": "a", "operation": "Apply", "fieldsType": "FieldsV2"}])
            )
            .is_err()
        );
        assert!(
            FieldOwners::from_managed_fields(&json!([{"manager": "a", "operation": "Apply", "fieldsV1": {"x:y": {}}}]))
                .is_err()
        );
        assert!(FieldSet::from_fields_v1(&json!({"k:notjson": {}})).is_err());
        assert!(FieldSet::from_fields_v1(&json!({"f:a": 1})).is_err());
        // Lenient reading skips bad entries.
        let obj = json!({"metadata": {"managedFields": [
            {"manager": "a", "operation": "Frob"},
            {"manager": "b", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:data": {"f:x": {}}}}
        ]}});
        let owners = FieldOwners::from_object(&obj);
        assert_eq!(owners.entries().count(), 1);
        assert_eq!(owners.entries().next().unwrap().fields.paths(), [".data.x"]);
        // Writing nobody removes the field.
        let mut obj = obj;
        FieldOwners::new().write_to(&mut obj, "v1", "t");
        assert_eq!(obj, json!({"metadata": {}}));
    }

    /// create → PUT → PUT → merge patch → JSON patch → strategic merge patch, each step's
    /// managedFields as the real server wrote them.
    #[test]
    fn record_update_replays_the_configmap_fixtures() {
        let mut owners = FieldOwners::new();
        let create = fixture!("create-configmap");
        let mut obj = body(&create);
        record_update(None, &obj, "fixture-capture", &mut owners);
        owners.write_to(&mut obj, "v1", "2026-11-25T23:08:56Z");
        assert_eq!(obj["metadata"]["managedFields"], create["response"]["body"]["metadata"]["managedFields"]);

        for (name, fx) in [
            ("replace-configmap", fixture!("replace-configmap")),
            ("replace-configmap-no-rv", fixture!("replace-configmap-no-rv")),
        ] {
            let mut after = body(&fx);
            let mut owners = FieldOwners::from_object(&obj);
            record_update(Some(&obj), &after, "fixture-capture", &mut owners);
            owners.write_to(&mut after, "v1", "2026-11-25T23:08:56Z");
            assert_eq!(
                after["metadata"]["managedFields"], fx["response"]["body"]["metadata"]["managedFields"],
                "{name}"
            );
            obj = after;
        }

        for (name, kind, fx) in [
            ("patch-configmap-merge", 0, fixture!("patch-configmap-merge")),
            ("patch-configmap-jsonpatch", 1, fixture!("patch-configmap-jsonpatch")),
            ("patch-configmap-strategic-merge", 2, fixture!("patch-configmap-strategic-merge")),
        ] {
            let body = body(&fx);
            let mut after = obj.clone();
            match kind {
                0 => merge_patch(&mut after, &body),
                1 => json_patch(&mut after, &body).unwrap(),
                _ => strategic_merge_patch(&mut after, &body, &builtin_list_key).unwrap(),
            }
            let mut owners = FieldOwners::from_object(&obj);
            record_update(Some(&obj), &after, "fixture-capture", &mut owners);
            owners.write_to(&mut after, "v1", "2026-11-25T23:08:56Z");
            let want = &fx["response"]["body"];
            assert_eq!(after["metadata"]["managedFields"], want["metadata"]["managedFields"], "{name}");
            assert_eq!(after["data"], want["data"], "{name}");
            obj = after;
        }
    }

    #[test]
    fn record_update_custom_resource_create_and_status() {
        let create = fixture!("crd-widget-create");
        let obj = body(&create);
        let mut owners = FieldOwners::new();
        record_update_as(None, &obj, ManagerRef::new("fixture-capture"), &mut owners, &no_keys);
        assert_eq!(
            fields_of(&owners, "fixture-capture", Operation::Update),
            fixture_fields(&create["response"]["body"], "fixture-capture", "Update", None)
        );

        let status = fixture!("crd-widget-patch-status");
        let mut after = obj.clone();
        merge_patch(&mut after, &body(&status));
        let m = ManagerRef::new("fixture-capture").with_subresource("status");
        record_update_as(Some(&obj), &after, m, &mut owners, &no_keys);
        let mut written = after.clone();
        owners.write_to(&mut written, "example.com/v1", "2026-11-25T23:10:39Z");
        assert_eq!(written["metadata"]["managedFields"], status["response"]["body"]["metadata"]["managedFields"]);
    }

    #[test]
    fn record_update_identity_ownership_transfer_and_time() {
        let v1 = json!({"apiVersion": "v1", "data": {"a": "1", "b": "2"}});
        let mut owners = FieldOwners::new();
        record_update(None, &v1, "one", &mut owners);
        // Another manager changes a and removes b: it takes a, b loses its owner.
        let v2 = json!({"apiVersion": "v1", "data": {"a": "x"}});
        let mut written = v2.clone();
        owners.write_to(&mut written, "v1", "T0");
        let mut owners = FieldOwners::from_object(&written);
        record_update(Some(&v1), &v2, "two", &mut owners);
        assert_eq!(fields_of(&owners, "one", Operation::Update), json!({"f:data": {}}));
        assert_eq!(fields_of(&owners, "two", Operation::Update), json!({"f:data": {"f:a": {}}}));
        owners.write_to(&mut written, "v1", "T1");
        let mf = &written["metadata"]["managedFields"];
        assert_eq!(mf[0]["manager"], "one");
        assert_eq!(mf[0]["time"], "T0", "untouched entries keep their time");
        assert_eq!(mf[1]["time"], "T1");

        // A no-op touches nothing.
        let mut owners = FieldOwners::from_object(&written);
        let snapshot = owners.clone();
        record_update(Some(&v2), &v2, "three", &mut owners);
        assert_eq!(owners, snapshot);

        // Update entries are per apiVersion.
        let v3 = json!({"apiVersion": "v2", "data": {"a": "y"}});
        record_update(Some(&v2), &v3, "two", &mut owners);
        let twos: Vec<_> = owners.entries().filter(|e| e.manager == "two").collect();
        assert_eq!(twos.len(), 1, "v1 entry lost its only field");
        assert_eq!(twos[0].api_version, "v2");
    }
}
