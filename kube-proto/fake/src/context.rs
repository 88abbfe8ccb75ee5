//! What the handlers of writes share: the request being served ([`Call`]) and one write to the
//! store ([`Write`]), in place of long argument lists.

use std::collections::BTreeMap;
use std::time::Instant;

use super::Route;
use super::patch::FieldOwners;

/// The query of a request, decoded.
pub(super) type Query = BTreeMap<String, String>;

/// One request being served: when, where it was routed, and the request with its query.
#[derive(Debug, Clone, Copy)]
pub(super) struct Call<'a> {
    /// The time the request is served at.
    pub now: Instant,
    /// Where the path led.
    pub route: &'a Route,
    /// The request (method, headers, body).
    pub req: &'a http::Request<Vec<u8>>,
    /// Its query parameters.
    pub query: &'a Query,
}

impl Call<'_> {
    /// The field manager: `fieldManager`, else the user agent's product name, else `unknown`.
    pub fn manager(&self) -> String {
        if let Some(m) = self.query.get("fieldManager") {
            return m.clone();
        }
        self.req
            .headers()
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .and_then(|ua| ua.split('/').next())
            .filter(|s| !s.is_empty())
            .unwrap_or("unknown")
            .to_owned()
    }

    /// `dryRun=All`: everything is checked, nothing is stored.
    pub fn dry_run(&self) -> bool {
        self.query.get("dryRun").is_some_and(|v| v == "All")
    }
}

/// One create or update of a stored object: who writes, when, through which subresource, and
/// whether it is only checked.
#[derive(Debug)]
pub(super) struct Write<'a> {
    /// The time of the write (`creationTimestamp`, `managedFields` times).
    pub now: Instant,
    /// The field manager recorded for the write.
    pub manager: &'a str,
    /// Checked and answered, but not stored.
    pub dry_run: bool,
    /// The subresource written through (`status`, `scale`, `ephemeralcontainers`), if any.
    pub subresource: Option<&'a str>,
    /// The object's field owners as a server-side apply left them; `None` records the write as
    /// an Update by `manager`.
    pub applied: Option<FieldOwners>,
}

impl<'a> Write<'a> {
    /// A write by `manager` at `now` through the main resource, stored, not an apply.
    pub fn new(now: Instant, manager: &'a str) -> Self {
        Write { now, manager, dry_run: false, subresource: None, applied: None }
    }

    /// The same write, only checked if `dry_run`.
    pub fn dry_run(self, dry_run: bool) -> Self {
        Write { dry_run, ..self }
    }

    /// The same write, through `subresource`.
    pub fn through(self, subresource: Option<&'a str>) -> Self {
        Write { subresource, ..self }
    }

    /// The same write, as a server-side apply that left the field owners `owners`.
    pub fn applied(self, owners: Option<FieldOwners>) -> Self {
        Write { applied: owners, ..self }
    }
}
