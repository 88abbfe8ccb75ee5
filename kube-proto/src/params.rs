//! Parameters of the API's verbs, mirroring the API's own option types (`ListOptions`,
//! `PatchOptions`, `DeleteOptions`, `PodLogOptions`, ...), and their query encoding.

use serde::Serialize;

use crate::error::RequestError;
use crate::selector::{FieldSelector, LabelSelector};

/// How a list's `resourceVersion` is interpreted (`resourceVersionMatch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionMatch {
    /// Data at least as new as the given resourceVersion (any data for `"0"`).
    NotOlderThan,
    /// Data at exactly the given resourceVersion.
    Exact,
}

impl VersionMatch {
    /// The query value.
    pub fn as_str(self) -> &'static str {
        match self {
            VersionMatch::NotOlderThan => "NotOlderThan",
            VersionMatch::Exact => "Exact",
        }
    }
}

/// Which objects: the label and field selectors of a list, a watch and a watcher, declared,
/// validated and written once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selectors {
    /// `labelSelector`, such as `app=web,tier in (a,b)`.
    pub label_selector: Option<String>,
    /// `fieldSelector`, such as `metadata.name=cm1`.
    pub field_selector: Option<String>,
}

impl Selectors {
    /// Checks both selectors with the API server's grammar.
    pub(crate) fn validate(&self) -> Result<(), RequestError> {
        if let Some(s) = &self.label_selector {
            LabelSelector::validate(s).map_err(RequestError::InvalidSelector)?;
        }
        if let Some(s) = &self.field_selector {
            FieldSelector::parse(s).map_err(RequestError::InvalidSelector)?;
        }
        Ok(())
    }

    pub(crate) fn write(&self, q: &mut Query<'_>) {
        q.opt("labelSelector", self.label_selector.as_deref());
        q.opt("fieldSelector", self.field_selector.as_deref());
    }
}

/// Parameters of a list (`ListOptions` for a LIST).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListParams {
    /// `labelSelector` and `fieldSelector`.
    pub selectors: Selectors,
    /// `timeoutSeconds`: a server-side limit on the call.
    pub timeout: Option<u32>,
    /// `limit`: the page size; the server answers with a continue token when there is more.
    pub limit: Option<u32>,
    /// `continue`: the token of the page to fetch.
    pub continue_token: Option<String>,
    /// `resourceVersionMatch`; requires `resource_version`.
    pub version_match: Option<VersionMatch>,
    /// `resourceVersion`: unset for the most recent data, `"0"` for any.
    pub resource_version: Option<String>,
}

impl ListParams {
    /// Sets the label selector.
    #[must_use]
    pub fn labels(mut self, selector: &str) -> Self {
        self.selectors.label_selector = Some(selector.to_owned());
        self
    }
    /// Sets the field selector.
    #[must_use]
    pub fn fields(mut self, selector: &str) -> Self {
        self.selectors.field_selector = Some(selector.to_owned());
        self
    }
    /// Sets the server-side timeout in seconds.
    #[must_use]
    pub fn timeout(mut self, seconds: u32) -> Self {
        self.timeout = Some(seconds);
        self
    }
    /// Sets the page size.
    #[must_use]
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }
    /// Sets the continue token of the page to fetch.
    #[must_use]
    pub fn continue_token(mut self, token: &str) -> Self {
        self.continue_token = Some(token.to_owned());
        self
    }
    /// Any resourceVersion will do (`resourceVersion=0`): served from the watch cache, possibly stale.
    #[must_use]
    pub fn match_any(mut self) -> Self {
        self.resource_version = Some("0".to_owned());
        self.version_match = Some(VersionMatch::NotOlderThan);
        self
    }
    /// Data at exactly this resourceVersion.
    #[must_use]
    pub fn at(mut self, resource_version: &str) -> Self {
        self.resource_version = Some(resource_version.to_owned());
        self.version_match = Some(VersionMatch::Exact);
        self
    }
    /// Data no older than this resourceVersion.
    #[must_use]
    pub fn not_older_than(mut self, resource_version: &str) -> Self {
        self.resource_version = Some(resource_version.to_owned());
        self.version_match = Some(VersionMatch::NotOlderThan);
        self
    }

    pub(crate) fn validate(&self) -> Result<(), RequestError> {
        self.selectors.validate()?;
        if self.version_match.is_some() && self.resource_version.as_deref().is_none_or(str::is_empty) {
            return Err(RequestError::VersionMatchWithoutVersion);
        }
        if self.version_match == Some(VersionMatch::Exact) && self.resource_version.as_deref() == Some("0") {
            return Err(RequestError::InvalidParam {
                param: "resourceVersionMatch",
                reason: "Exact is not allowed with resourceVersion=0".into(),
            });
        }
        if self.continue_token.is_some() {
            if self.resource_version.as_deref().is_some_and(|v| !v.is_empty() && v != "0") {
                return Err(RequestError::InvalidParam {
                    param: "continue",
                    reason: "specifying resourceVersion is not allowed when using continue".into(),
                });
            }
            if self.version_match.is_some() {
                return Err(RequestError::InvalidParam {
                    param: "resourceVersionMatch",
                    reason: "resourceVersionMatch is forbidden when continue is provided".into(),
                });
            }
        }
        Ok(())
    }

    pub(crate) fn write(&self, q: &mut Query<'_>) {
        self.selectors.write(q);
        if let Some(t) = self.timeout {
            q.num("timeoutSeconds", t);
        }
        if let Some(l) = self.limit {
            q.num("limit", l);
        }
        q.opt("continue", self.continue_token.as_deref());
        q.opt("resourceVersion", self.resource_version.as_deref());
        q.opt("resourceVersionMatch", self.version_match.map(VersionMatch::as_str));
    }
}

/// Parameters of a get (`GetOptions`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetParams {
    /// `resourceVersion`: unset for the most recent, `"0"` for any (possibly cached) version.
    pub resource_version: Option<String>,
}

impl GetParams {
    /// Any version will do (`resourceVersion=0`).
    pub fn any() -> Self {
        GetParams { resource_version: Some("0".to_owned()) }
    }
    /// A version no older than this one.
    pub fn at(resource_version: &str) -> Self {
        GetParams { resource_version: Some(resource_version.to_owned()) }
    }
}

/// Parameters of a watch (`ListOptions` with `watch=true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchParams {
    /// `labelSelector` and `fieldSelector`.
    pub selectors: Selectors,
    /// `timeoutSeconds`: the server ends the watch cleanly after this long.
    pub timeout: Option<u32>,
    /// `allowWatchBookmarks` (default on): the server sends progress bookmarks.
    pub bookmarks: bool,
    /// `sendInitialEvents=true` with `resourceVersionMatch=NotOlderThan`: a streaming list,
    /// ending with the bookmark annotated `k8s.io/initial-events-end`.
    pub send_initial_events: bool,
}

impl Default for WatchParams {
    fn default() -> Self {
        WatchParams { selectors: Selectors::default(), timeout: None, bookmarks: true, send_initial_events: false }
    }
}

impl WatchParams {
    /// Sets the label selector.
    #[must_use]
    pub fn labels(mut self, selector: &str) -> Self {
        self.selectors.label_selector = Some(selector.to_owned());
        self
    }
    /// Sets the field selector.
    #[must_use]
    pub fn fields(mut self, selector: &str) -> Self {
        self.selectors.field_selector = Some(selector.to_owned());
        self
    }
    /// Sets the server-side timeout in seconds.
    #[must_use]
    pub fn timeout(mut self, seconds: u32) -> Self {
        self.timeout = Some(seconds);
        self
    }
    /// Turns bookmarks off.
    #[must_use]
    pub fn disable_bookmarks(mut self) -> Self {
        self.bookmarks = false;
        self
    }
    /// Asks for a streaming list: the current objects as ADDED events first.
    #[must_use]
    pub fn streaming_lists(mut self) -> Self {
        self.send_initial_events = true;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), RequestError> {
        self.selectors.validate()
    }

    pub(crate) fn write(&self, q: &mut Query<'_>, resource_version: &str) {
        q.pair("watch", "true");
        self.selectors.write(q);
        if let Some(t) = self.timeout {
            q.num("timeoutSeconds", t);
        }
        if self.bookmarks {
            q.pair("allowWatchBookmarks", "true");
        }
        if !resource_version.is_empty() {
            q.pair("resourceVersion", resource_version);
        }
        if self.send_initial_events {
            q.pair("sendInitialEvents", "true");
            q.pair("resourceVersionMatch", "NotOlderThan");
        }
    }
}

/// How the server treats fields it does not know (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationDirective {
    /// Fail the request.
    Strict,
    /// Drop them and answer with a `Warning` header (the server's default).
    Warn,
    /// Drop them silently.
    Ignore,
}

impl ValidationDirective {
    /// The query value.
    pub fn as_str(self) -> &'static str {
        match self {
            ValidationDirective::Strict => "Strict",
            ValidationDirective::Warn => "Warn",
            ValidationDirective::Ignore => "Ignore",
        }
    }
}

/// Parameters of a create or replace (`CreateOptions`, `UpdateOptions`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostParams {
    /// `dryRun=All`: validate and default, but store nothing.
    pub dry_run: bool,
    /// `fieldManager`: the name recorded in managedFields.
    pub field_manager: Option<String>,
    /// `fieldValidation`.
    pub field_validation: Option<ValidationDirective>,
}

impl PostParams {
    pub(crate) fn validate(&self) -> Result<(), RequestError> {
        validate_field_manager(self.field_manager.as_deref())
    }
    pub(crate) fn write(&self, q: &mut Query<'_>) {
        if self.dry_run {
            q.pair("dryRun", "All");
        }
        q.opt("fieldManager", self.field_manager.as_deref());
        q.opt("fieldValidation", self.field_validation.map(ValidationDirective::as_str));
    }
}

fn validate_field_manager(manager: Option<&str>) -> Result<(), RequestError> {
    match manager {
        Some(m) if m.is_empty() || m.len() > 128 => Err(RequestError::InvalidParam {
            param: "fieldManager",
            reason: format!("must be 1 to 128 characters, got {}", m.len()),
        }),
        Some(m) if m.chars().any(|c| c.is_control()) => Err(RequestError::InvalidParam {
            param: "fieldManager",
            reason: "must not contain control characters".into(),
        }),
        _ => Ok(()),
    }
}

/// A patch body and its kind; each kind has its own `Content-Type`.
#[derive(Debug, Clone, PartialEq)]
pub enum Patch<T> {
    /// Server-side apply (`application/apply-patch+yaml`, sent as JSON): the fully specified
    /// intent of one field manager. Needs [`PatchParams::field_manager`].
    Apply(T),
    /// JSON patch, RFC 6902 (`application/json-patch+json`): `T` serializes to an array of
    /// operations.
    Json(T),
    /// JSON merge patch, RFC 7386 (`application/merge-patch+json`).
    Merge(T),
    /// Strategic merge patch (`application/strategic-merge-patch+json`): built-in kinds only.
    Strategic(T),
}

impl<T> Patch<T> {
    /// The `Content-Type` of this kind of patch.
    pub fn content_type(&self) -> &'static str {
        match self {
            Patch::Apply(_) => "application/apply-patch+yaml",
            Patch::Json(_) => "application/json-patch+json",
            Patch::Merge(_) => "application/merge-patch+json",
            Patch::Strategic(_) => "application/strategic-merge-patch+json",
        }
    }

    /// Whether this is a server-side apply.
    pub fn is_apply(&self) -> bool {
        matches!(self, Patch::Apply(_))
    }

    /// The patch body.
    pub fn body(&self) -> &T {
        match self {
            Patch::Apply(t) | Patch::Json(t) | Patch::Merge(t) | Patch::Strategic(t) => t,
        }
    }
}

impl<T: Serialize> Patch<T> {
    pub(crate) fn serialize(&self) -> Result<Vec<u8>, RequestError> {
        // Typical patch bodies are a few KiB: start big enough to avoid most regrowth.
        let mut buf = Vec::with_capacity(1024);
        serde_json::to_writer(&mut buf, self.body()).map_err(|e| RequestError::SerializeBody(e.to_string()))?;
        if let Patch::Json(_) = self
            && buf.first() != Some(&b'[')
        {
            return Err(RequestError::InvalidParam {
                param: "body",
                reason: "a JSON patch must serialize to an array of operations".into(),
            });
        }
        Ok(buf)
    }
}

/// Parameters of a patch (`PatchOptions`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatchParams {
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `force=true`: take ownership of conflicting fields. Apply only.
    pub force: bool,
    /// `fieldManager`: required for apply.
    pub field_manager: Option<String>,
    /// `fieldValidation`.
    pub field_validation: Option<ValidationDirective>,
}

impl PatchParams {
    /// Parameters for a server-side apply by this field manager.
    pub fn apply(manager: &str) -> Self {
        PatchParams { field_manager: Some(manager.to_owned()), ..PatchParams::default() }
    }
    /// Takes ownership of fields other managers own (apply only).
    #[must_use]
    pub fn force(mut self) -> Self {
        self.force = true;
        self
    }
    /// Validates without storing.
    #[must_use]
    pub fn dry_run(mut self) -> Self {
        self.dry_run = true;
        self
    }
    /// Sets the field validation directive.
    #[must_use]
    pub fn validation(mut self, directive: ValidationDirective) -> Self {
        self.field_validation = Some(directive);
        self
    }

    pub(crate) fn validate<T>(&self, patch: &Patch<T>) -> Result<(), RequestError> {
        validate_field_manager(self.field_manager.as_deref())?;
        if patch.is_apply() && self.field_manager.is_none() {
            return Err(RequestError::MissingFieldManager);
        }
        if self.force && !patch.is_apply() {
            return Err(RequestError::ForceWithoutApply);
        }
        Ok(())
    }

    pub(crate) fn write(&self, q: &mut Query<'_>) {
        if self.dry_run {
            q.pair("dryRun", "All");
        }
        if self.force {
            q.pair("force", "true");
        }
        q.opt("fieldManager", self.field_manager.as_deref());
        q.opt("fieldValidation", self.field_validation.map(ValidationDirective::as_str));
    }
}

/// What happens to an object's dependents when it is deleted (`propagationPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PropagationPolicy {
    /// Dependents are left alone (their owner reference is removed).
    Orphan,
    /// The object goes at once; the garbage collector deletes dependents afterwards.
    Background,
    /// The object stays (with the `foregroundDeletion` finalizer) until its blocking
    /// dependents are gone.
    Foreground,
}

/// Conditions a delete must meet, or it fails with 409 Conflict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Preconditions {
    /// The object's resourceVersion must be this.
    #[serde(rename = "resourceVersion", skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// The object's uid must be this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// Parameters of a delete (`DeleteOptions`), sent as the request body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteParams {
    /// `dryRun: ["All"]`.
    pub dry_run: bool,
    /// `gracePeriodSeconds`: 0 deletes at once.
    pub grace_period_seconds: Option<u32>,
    /// `propagationPolicy`.
    pub propagation_policy: Option<PropagationPolicy>,
    /// `preconditions`.
    pub preconditions: Option<Preconditions>,
}

impl DeleteParams {
    /// Background propagation: the object goes at once, dependents afterwards.
    pub fn background() -> Self {
        DeleteParams { propagation_policy: Some(PropagationPolicy::Background), ..Self::default() }
    }
    /// Foreground propagation: the object waits for its dependents.
    pub fn foreground() -> Self {
        DeleteParams { propagation_policy: Some(PropagationPolicy::Foreground), ..Self::default() }
    }
    /// Orphan the dependents.
    pub fn orphan() -> Self {
        DeleteParams { propagation_policy: Some(PropagationPolicy::Orphan), ..Self::default() }
    }
    /// Validates without deleting.
    #[must_use]
    pub fn dry_run(mut self) -> Self {
        self.dry_run = true;
        self
    }
    /// Sets the grace period.
    #[must_use]
    pub fn grace_period(mut self, seconds: u32) -> Self {
        self.grace_period_seconds = Some(seconds);
        self
    }
    /// Deletes only if the object still has this resourceVersion.
    #[must_use]
    pub fn precondition_resource_version(mut self, resource_version: &str) -> Self {
        self.preconditions.get_or_insert_with(Preconditions::default).resource_version =
            Some(resource_version.to_owned());
        self
    }
    /// Deletes only if the object still has this uid.
    #[must_use]
    pub fn precondition_uid(mut self, uid: &str) -> Self {
        self.preconditions.get_or_insert_with(Preconditions::default).uid = Some(uid.to_owned());
        self
    }

    /// Whether these are the defaults, which need no body.
    pub fn is_default(&self) -> bool {
        *self == DeleteParams::default()
    }

    /// The `DeleteOptions` this stands for, ready to serialize.
    pub(crate) fn options(&self) -> DeleteOptions<'_> {
        DeleteOptions {
            api_version: "meta.k8s.io/v1",
            kind: "DeleteOptions",
            dry_run: self.dry_run.then_some(["All"]),
            grace_period_seconds: self.grace_period_seconds,
            propagation_policy: self.propagation_policy,
            preconditions: self.preconditions.as_ref(),
        }
    }

    /// The `DeleteOptions` body.
    pub(crate) fn body(&self) -> Result<Vec<u8>, RequestError> {
        serde_json::to_vec(&self.options()).map_err(|e| RequestError::SerializeBody(e.to_string()))
    }
}

/// A `meta.k8s.io/v1` `DeleteOptions` as sent.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeleteOptions<'a> {
    api_version: &'static str,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dry_run: Option<[&'static str; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    grace_period_seconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    propagation_policy: Option<PropagationPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preconditions: Option<&'a Preconditions>,
}

/// Parameters of a pod log request (`PodLogOptions`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogParams {
    /// `container`: needed when the pod has more than one.
    pub container: Option<String>,
    /// `follow`: stream new lines as they are written.
    pub follow: bool,
    /// `limitBytes`.
    pub limit_bytes: Option<u64>,
    /// `pretty`.
    pub pretty: bool,
    /// `previous`: the previous, terminated instance of the container.
    pub previous: bool,
    /// `sinceSeconds`; exclusive with `since_time`.
    pub since_seconds: Option<u64>,
    /// `sinceTime`, RFC 3339; exclusive with `since_seconds`.
    pub since_time: Option<k8s_openapi::jiff::Timestamp>,
    /// `tailLines`.
    pub tail_lines: Option<u64>,
    /// `timestamps`: prefix each line with its RFC 3339 time.
    pub timestamps: bool,
}

impl LogParams {
    pub(crate) fn validate(&self) -> Result<(), RequestError> {
        if self.since_seconds.is_some() && self.since_time.is_some() {
            return Err(RequestError::InvalidParam {
                param: "sinceSeconds",
                reason: "at most one of sinceTime or sinceSeconds may be specified".into(),
            });
        }
        if self.since_seconds == Some(0) {
            return Err(RequestError::InvalidParam { param: "sinceSeconds", reason: "must be greater than 0".into() });
        }
        if self.limit_bytes == Some(0) {
            return Err(RequestError::InvalidParam { param: "limitBytes", reason: "must be greater than 0".into() });
        }
        Ok(())
    }

    pub(crate) fn write(&self, q: &mut Query<'_>) {
        q.opt("container", self.container.as_deref());
        if self.follow {
            q.pair("follow", "true");
        }
        if let Some(n) = self.limit_bytes {
            q.num("limitBytes", n);
        }
        if self.pretty {
            q.pair("pretty", "true");
        }
        if self.previous {
            q.pair("previous", "true");
        }
        if let Some(n) = self.since_seconds {
            q.num("sinceSeconds", n);
        }
        if let Some(t) = self.since_time {
            q.pair("sinceTime", &t.to_string());
        }
        if let Some(n) = self.tail_lines {
            q.num("tailLines", n);
        }
        if self.timestamps {
            q.pair("timestamps", "true");
        }
    }
}

/// Parameters of exec and attach (`PodExecOptions`, `PodAttachOptions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachParams {
    /// `container`: needed when the pod has more than one.
    pub container: Option<String>,
    /// `stdin`.
    pub stdin: bool,
    /// `stdout` (default on).
    pub stdout: bool,
    /// `stderr` (default on; must be off with a tty).
    pub stderr: bool,
    /// `tty`.
    pub tty: bool,
}

impl Default for AttachParams {
    fn default() -> Self {
        AttachParams { container: None, stdin: false, stdout: true, stderr: true, tty: false }
    }
}

impl AttachParams {
    /// Interactive: stdin and a tty, stdout, no separate stderr.
    pub fn interactive_tty() -> Self {
        AttachParams { container: None, stdin: true, stdout: true, stderr: false, tty: true }
    }
    /// Selects the container.
    #[must_use]
    pub fn container(mut self, name: &str) -> Self {
        self.container = Some(name.to_owned());
        self
    }
    /// Sets stdin.
    #[must_use]
    pub fn stdin(mut self, on: bool) -> Self {
        self.stdin = on;
        self
    }
    /// Sets stdout.
    #[must_use]
    pub fn stdout(mut self, on: bool) -> Self {
        self.stdout = on;
        self
    }
    /// Sets stderr.
    #[must_use]
    pub fn stderr(mut self, on: bool) -> Self {
        self.stderr = on;
        self
    }
    /// Sets tty.
    #[must_use]
    pub fn tty(mut self, on: bool) -> Self {
        self.tty = on;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), RequestError> {
        if !self.stdin && !self.stdout && !self.stderr {
            return Err(RequestError::InvalidParam {
                param: "stdin",
                reason: "at least one of stdin, stdout or stderr must be true".into(),
            });
        }
        if self.tty && self.stderr {
            return Err(RequestError::InvalidParam {
                param: "stderr",
                reason: "tty and stderr cannot both be true: a tty merges stderr into stdout".into(),
            });
        }
        Ok(())
    }

    pub(crate) fn write(&self, q: &mut Query<'_>) {
        q.opt("container", self.container.as_deref());
        if self.stdin {
            q.pair("stdin", "true");
        }
        if self.stdout {
            q.pair("stdout", "true");
        }
        if self.stderr {
            q.pair("stderr", "true");
        }
        if self.tty {
            q.pair("tty", "true");
        }
    }
}

/// Parameters of an eviction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvictParams {
    /// The `deleteOptions` of the Eviction.
    pub delete_options: Option<DeleteParams>,
    /// `dryRun` and `fieldManager` of the create.
    pub post_options: PostParams,
}

/// Appends a query string to a path, percent-encoding values exactly as Go's
/// `url.QueryEscape` does (what client-go sends and the API server expects).
pub(crate) struct Query<'a> {
    out: &'a mut String,
    has_query: bool,
}

impl<'a> Query<'a> {
    pub(crate) fn new(out: &'a mut String) -> Self {
        let has_query = out.contains('?');
        Query { out, has_query }
    }

    fn sep(&mut self) {
        self.out.push(if self.has_query { '&' } else { '?' });
        self.has_query = true;
    }

    pub(crate) fn pair(&mut self, key: &str, value: &str) {
        self.sep();
        self.out.push_str(key);
        self.out.push('=');
        encode_query_value(self.out, value);
    }

    /// Appends `key=value` when there is a non-empty value (an empty one means "unset" to the
    /// server, so it is left out, as client-go does).
    pub(crate) fn opt(&mut self, key: &str, value: Option<&str>) {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            self.pair(key, v);
        }
    }

    pub(crate) fn num(&mut self, key: &str, value: impl Into<u64>) {
        self.sep();
        self.out.push_str(key);
        self.out.push('=');
        push_u64(self.out, value.into());
    }
}

fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(d as char);
    }
}

/// Percent-encodes a query value as Go's `url.QueryEscape`: unreserved characters
/// (`A-Z a-z 0-9 - _ . ~`) stay, a space becomes `+`, every other byte becomes `%XX`.
pub fn encode_query_value(out: &mut String, value: &str) {
    percent_encode(out, value, Escape::Query);
}

/// Percent-encodes one path segment (an object name, a namespace, a subresource): unreserved
/// characters, the RFC 3986 sub-delimiters (`! $ & ' ( ) * + , ; =`), `:` and `@` stay; every
/// other byte becomes `%XX` — a space `%20`, `?` `%3F`, `#` `%23`, `/` `%2F`, `%` `%25`, control
/// characters and each byte of a non-ASCII character. The API server unescapes the path before
/// routing, so the name it sees is exactly the one given.
pub fn encode_path_segment(out: &mut String, segment: &str) {
    percent_encode(out, segment, Escape::PathSegment);
}

/// Decodes one percent-encoded path segment, as the API server does before routing (Go's
/// `url.PathUnescape`): `%XX` becomes its byte, everything else stays. `None` for a malformed
/// escape or bytes that are not UTF-8.
pub fn decode_path_segment(segment: &str) -> Option<String> {
    if !segment.contains('%') {
        return Some(segment.to_owned());
    }
    let mut out = Vec::with_capacity(segment.len());
    let mut bytes = segment.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let hex = |c: Option<u8>| char::from(c?).to_digit(16);
        let (hi, lo) = (hex(bytes.next())?, hex(bytes.next())?);
        out.push((hi * 16 + lo) as u8);
    }
    String::from_utf8(out).ok()
}

/// What may stand raw: the one table behind both encoders.
#[derive(Clone, Copy)]
enum Escape {
    Query,
    PathSegment,
}

impl Escape {
    fn keeps(self, b: u8) -> bool {
        let unreserved = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
        match self {
            Escape::Query => unreserved,
            Escape::PathSegment => unreserved || b"!$&'()*+,;=:@".contains(&b),
        }
    }
}

fn percent_encode(out: &mut String, value: &str, escape: Escape) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = value.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if escape.keeps(b) {
            continue;
        }
        if start < i {
            // Only plain ASCII lies between: both ends are character boundaries.
            out.push_str(&value[start..i]);
        }
        if b == b' ' && matches!(escape, Escape::Query) {
            out.push('+');
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
        start = i + 1;
    }
    out.push_str(&value[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &str) -> String {
        let mut out = String::new();
        encode_query_value(&mut out, s);
        out
    }

    #[test]
    fn decoding_a_path_segment_inverts_encoding_it() {
        for s in ["plain", "my role", "a?b#c", "50%", "caf\u{e9}", "tab\there", "!$&'()*+,;=:@"] {
            let mut out = String::new();
            encode_path_segment(&mut out, s);
            assert_eq!(decode_path_segment(&out).as_deref(), Some(s), "{out}");
        }
        assert_eq!(decode_path_segment("a%2"), None);
        assert_eq!(decode_path_segment("a%zz"), None);
        assert_eq!(decode_path_segment("%ff"), None, "not UTF-8");
        assert_eq!(decode_path_segment("%41%42").as_deref(), Some("AB"));
    }

    #[test]
    fn encodes_like_go_query_escape() {
        assert_eq!(enc("app=web"), "app%3Dweb");
        assert_eq!(enc("app in (web,cache),tier!=front"), "app+in+%28web%2Ccache%29%2Ctier%21%3Dfront");
        assert_eq!(enc("a~b_c-d.e*f/g"), "a~b_c-d.e%2Af%2Fg");
        assert_eq!(enc("é"), "%C3%A9");
        assert_eq!(enc(""), "");
    }

    #[test]
    fn path_segments_keep_sub_delimiters_and_escape_the_rest() {
        let seg = |s: &str| {
            let mut out = String::new();
            encode_path_segment(&mut out, s);
            out
        };
        assert_eq!(seg("web-0.a_b~c"), "web-0.a_b~c");
        assert_eq!(seg("a!$&'()*+,;=:@b"), "a!$&'()*+,;=:@b");
        assert_eq!(seg("a b?c#d/e%f"), "a%20b%3Fc%23d%2Fe%25f");
        assert_eq!(seg("\t\n\u{0}\u{7f}"), "%09%0A%00%7F");
        assert_eq!(seg("café"), "caf%C3%A9");
    }

    #[test]
    fn numbers() {
        for n in [0u64, 7, 10, 4096, u64::MAX] {
            let mut s = String::new();
            push_u64(&mut s, n);
            assert_eq!(s, n.to_string());
        }
    }

    #[test]
    fn delete_options_body() {
        let body = DeleteParams::foreground().dry_run().grace_period(0).precondition_uid("u").body().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"apiVersion":"meta.k8s.io/v1","kind":"DeleteOptions","dryRun":["All"],
                "gracePeriodSeconds":0,"propagationPolicy":"Foreground","preconditions":{"uid":"u"}})
        );
    }
}
