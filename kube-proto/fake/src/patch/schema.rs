//! The list rules of built-in kinds, from the table generated out of the real server's OpenAPI
//! document ([`schema_rules`](super::schema_rules), written by `cargo run -p kube-proto-apply-gen`).
//!
//! A list is named by its dotted path from the object's root (field names, map keys included,
//! without indices), as the fake's list-key functions take it. The path is walked through the
//! kind's types: a field leads to its type (the items' type for a list, the values' type for a
//! map, whose key then takes one path segment).

use super::schema_rules::{KINDS, TYPES};

/// No nested type.
pub(super) const NONE: u16 = u16::MAX;

/// A field of a type that leads somewhere: to a nested type, or to a list rule.
#[derive(Debug, Clone, Copy)]
pub(super) struct Field {
    name: &'static str,
    /// The index in `TYPES` of the field's type (of its items or values): [`NONE`] for scalars.
    child: u16,
    /// Whether the field is a map, whose next path segment is a key.
    map: bool,
    /// Server-side apply: `None` atomic, `"$value"` a set, else the key fields comma-separated.
    ssa: Option<&'static str>,
    /// Strategic merge patch: `None` replaced whole, `"$value"` merged by value, else the merge key.
    smp: Option<&'static str>,
}

impl Field {
    pub(super) const fn new(
        name: &'static str,
        child: u16,
        map: bool,
        ssa: Option<&'static str>,
        smp: Option<&'static str>,
    ) -> Self {
        Field { name, child, map, ssa, smp }
    }
}

/// The schema of one built-in kind: its list rules by path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindSchema {
    root: u16,
}

impl KindSchema {
    /// The schema of a built-in kind of Kubernetes 1.36 (`group` empty for the core group), if
    /// the table has it.
    pub fn of(group: &str, version: &str, kind: &str) -> Option<Self> {
        KINDS
            .binary_search_by(|(g, v, k, _)| (*g, *v, *k).cmp(&(group, version, kind)))
            .ok()
            .and_then(|i| KINDS.get(i))
            .map(|&(_, _, _, root)| KindSchema { root })
    }

    fn field(self, path: &str) -> Option<&'static Field> {
        let mut ty = self.root;
        let mut found: Option<&'static Field> = None;
        let mut in_map = false;
        for seg in path.split('.') {
            if in_map {
                // A map key: the values' type continues.
                in_map = false;
                found = None;
                continue;
            }
            let fields = TYPES.get(usize::from(ty))?;
            let f = fields.binary_search_by(|f| f.name.cmp(seg)).ok().and_then(|i| fields.get(i))?;
            found = Some(f);
            in_map = f.map;
            ty = f.child;
        }
        if in_map { None } else { found }
    }

    /// How server-side apply merges the list at `path`: `None` atomic (replaced whole),
    /// [`MERGE_BY_VALUE`](super::MERGE_BY_VALUE) a set, else its key fields comma-separated
    /// (`"containerPort,protocol"`).
    pub fn apply_list_key(self, path: &str) -> Option<&'static str> {
        self.field(path).and_then(|f| f.ssa)
    }

    /// How strategic merge patch merges the list at `path`: `None` replaced whole,
    /// [`MERGE_BY_VALUE`](super::MERGE_BY_VALUE) merged by value, else its merge key.
    pub fn strategic_list_key(self, path: &str) -> Option<&'static str> {
        self.field(path).and_then(|f| f.smp)
    }
}
