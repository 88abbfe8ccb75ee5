//! What a person types, to the resource they mean: [`Catalog::resolve`] and
//! [`Catalog::resolve_kind`].

use super::{Catalog, ResolveError, ResourceInfo};

impl Catalog {
    /// The resource a person means, as kubectl reads its arguments:
    ///
    /// 1. `resource.version.group` (`cronjobs.v1.batch`), when that group version serves it;
    /// 2. a plural or singular name (`pods`, `pod`, `Pod`: case does not matter), alone or with
    ///    its group (`deployments.apps`, `Deployment.apps`);
    /// 3. a short name (`po`, `deploy`, a CRD's own), alone or with its group;
    /// 4. a kind (`Endpoints`), alone, with its group, or as `Kind.version.group`.
    ///
    /// The first step that matches decides, so a plural or singular wins over another
    /// resource's short name, as in kubectl. Within a group, the server's preferred version
    /// that serves the resource is taken. A name matched in the core group and in others means
    /// the core group's resource (`events`, not `events.events.k8s.io`), as kubectl's group
    /// order has it; matched in several other groups, it is [`ResolveError::Ambiguous`] with
    /// the candidates (where kubectl would silently take the group the server lists first).
    pub fn resolve(&self, name: &str) -> Result<&ResourceInfo, ResolveError> {
        let input = name.trim();
        if input.is_empty() {
            return Err(ResolveError::Invalid { name: name.to_owned(), reason: "it is empty" });
        }
        if input.contains('/') {
            return Err(ResolveError::Invalid {
                name: name.to_owned(),
                reason: "a resource name has no '/' (give the object's name apart)",
            });
        }
        let lower = input.to_ascii_lowercase();
        // 1. resource.version.group
        let full: Vec<&str> = lower.splitn(3, '.').collect();
        if let [resource, version, group] = full.as_slice()
            && let Some(r) = self.find(group, version, resource)
        {
            return Ok(r);
        }
        let (resource, group) = match lower.split_once('.') {
            Some((r, g)) => (r, Some(g)),
            None => (lower.as_str(), None),
        };
        // 2. plural or singular
        if let Some(r) = self.pick(input, group, |r| r.resource.plural == resource || r.singular == resource)? {
            return Ok(r);
        }
        // 3. short names
        if let Some(r) = self.pick(input, group, |r| r.short_names.iter().any(|s| s.eq_ignore_ascii_case(resource)))? {
            return Ok(r);
        }
        // 4. kinds: Kind.version.group, then Kind or Kind.group
        if let [kind, version, group] = full.as_slice()
            && let Some(r) = self
                .group(group)
                .and_then(|g| g.version(version))
                .and_then(|v| v.resources.iter().find(|r| r.resource.kind.eq_ignore_ascii_case(kind)))
        {
            return Ok(r);
        }
        if let Some(r) = self.pick(input, group, |r| r.resource.kind.eq_ignore_ascii_case(resource))? {
            return Ok(r);
        }
        Err(ResolveError::Unknown { name: input.to_owned() })
    }

    /// Per group (in the server's order) the first version, in order of preference, with a
    /// resource matching `pred`; then the core group's when it has one, the only one when there
    /// is one, or an ambiguity.
    fn pick(
        &self,
        name: &str,
        group: Option<&str>,
        pred: impl Fn(&ResourceInfo) -> bool,
    ) -> Result<Option<&ResourceInfo>, ResolveError> {
        let found: Vec<&ResourceInfo> = self
            .groups()
            .iter()
            .filter(|g| group.is_none_or(|want| g.name == want))
            .filter_map(|g| g.versions.iter().flat_map(|v| &v.resources).find(|r| pred(r)))
            .collect();
        match found.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one)),
            [first, ..] if first.resource.group.is_empty() => Ok(Some(first)),
            _ => Err(ResolveError::Ambiguous {
                name: name.to_owned(),
                candidates: found.iter().map(|r| r.full_name()).collect(),
            }),
        }
    }

    /// The resource of an object's `apiVersion` (`v1`, `apps/v1`) and `kind`, exactly (kind
    /// case-sensitive), as applying a manifest needs it.
    pub fn resolve_kind(&self, api_version: &str, kind: &str) -> Result<&ResourceInfo, ResolveError> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        self.group(group)
            .and_then(|g| g.version(version))
            .and_then(|v| v.resources.iter().find(|r| r.resource.kind == kind))
            .ok_or_else(|| ResolveError::UnknownKind { api_version: api_version.to_owned(), kind: kind.to_owned() })
    }
}
