//! Watches: streaming lists, history replay from a resourceVersion, selector transitions,
//! bookmarks, timeouts and 410 Expired.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderValue, StatusCode};
use serde_json::{Value, json};

use super::handlers::Filter;
use super::store::{Change, KindId};
use super::{FakeApiServer, MetaAccept, Reply, Route, WatchId};
use crate::error::{Reason, Status};

/// What a watch has to say now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchPoll {
    /// Newline-delimited events; the stream goes on.
    Data(Vec<u8>),
    /// Nothing now. Poll again after the next write, or at this instant (a bookmark or the
    /// timeout is due then).
    Pending(Option<Instant>),
    /// The last bytes (possibly none); the server ends the stream here.
    Finished(Vec<u8>),
}

#[derive(Debug)]
pub(super) struct WatchState {
    kind: KindId,
    filter: Filter,
    /// Log entries up to here have been considered.
    sent_rv: u64,
    /// A streaming list (initial events first).
    streaming: bool,
    deadline: Instant,
    /// When the next progress bookmark is due, if any is.
    next_bookmark: Option<Instant>,
    /// The stream ends at the first poll, with no events.
    end_at_once: bool,
    initial: VecDeque<Arc<Value>>,
    initial_end: Option<u64>,
    error: Option<Status>,
    meta: MetaAccept,
}

fn event_line(out: &mut Vec<u8>, ty: &str, object: &Value, meta: MetaAccept) {
    let object = if meta == MetaAccept::None {
        std::borrow::Cow::Borrowed(object)
    } else {
        std::borrow::Cow::Owned(
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": object["metadata"]}),
        )
    };
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(ty.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    serde_json::to_writer(&mut *out, &*object).unwrap_or_default();
    out.extend_from_slice(b"}\n");
}

/// When the next progress bookmark of a watch is due, scheduled at `from`, as the real watch
/// cache schedules them: a bookmark interval later, or 2 s before the `timeoutSeconds` deadline if
/// that comes first; none if that moment has already passed (`strictly`: or is now). A streaming
/// list gets no pre-deadline bookmark: the real server was seen to send only the
/// initial-events-end one within short timeouts.
fn next_bookmark(
    from: Instant,
    interval: Duration,
    deadline: Instant,
    streaming: bool,
    strictly: bool,
) -> Option<Instant> {
    let mut at = from + interval;
    if !streaming && let Some(pre) = deadline.checked_sub(Duration::from_secs(2)) {
        at = at.min(pre);
    }
    let passed = if strictly { at <= from } else { at < from };
    (!passed && at < deadline).then_some(at)
}

fn expired(requested: u64, oldest: u64) -> Status {
    Status::failure(410, Reason::Expired, format!("too old resource version: {requested} ({oldest})"))
}

impl FakeApiServer {
    pub(super) fn start_watch(
        &mut self,
        now: Instant,
        route: &Route,
        q: &BTreeMap<String, String>,
        meta: MetaAccept,
    ) -> Result<Reply, Box<Status>> {
        let kind = &self.kinds[route.kind];
        let filter = Filter::from_query(kind, route.namespace.as_deref(), q)?;
        let rv = q.get("resourceVersion").map(String::as_str).unwrap_or("");
        let send_initial = q.get("sendInitialEvents").map(|v| v == "true");
        let bookmarks = q.get("allowWatchBookmarks").is_some_and(|v| v == "true");
        super::validate_list_options(q, true)?;
        // With WatchList on (the 1.36 default) an unset or "0" resourceVersion is a streaming list.
        let streaming = send_initial.unwrap_or(rv.is_empty() || rv == "0");
        let current = self.store.current_rv();
        let mut state = WatchState {
            kind: route.kind,
            filter,
            sent_rv: current,
            streaming,
            deadline: now,
            next_bookmark: None,
            // The real server fails to convert watch events to a list type: the stream ends.
            end_at_once: meta == MetaAccept::List,
            initial: VecDeque::new(),
            initial_end: None,
            error: None,
            meta,
        };
        let timeout = match q.get("timeoutSeconds").and_then(|t| t.parse::<u64>().ok()) {
            Some(t) => Duration::from_secs(t),
            // The real server picks a random timeout between the minimum request timeout and
            // twice that (30 to 60 minutes by default).
            None => Duration::from_secs(1800 + self.next_random() % 1800),
        };
        state.deadline = now + timeout;
        if bookmarks {
            state.next_bookmark = next_bookmark(now, self.config.bookmark_interval, state.deadline, streaming, false);
        }
        if streaming {
            let from = if rv.is_empty() || rv == "0" { current } else { rv.parse().unwrap_or(current).max(current) };
            state.initial = self
                .store
                .range_at(route.kind, state.filter.namespace.as_deref(), current, None)
                .filter(|(_, v)| state.filter.matches(v))
                .map(|(_, v)| v.clone())
                .collect();
            state.sent_rv = current;
            if bookmarks {
                state.initial_end = Some(from.max(current));
            }
        } else if rv.is_empty() || rv == "0" {
            // sendInitialEvents=false: changes from now on only.
            state.sent_rv = current;
        } else {
            let from: u64 = rv.parse().map_err(|_| super::bad_request(format!("invalid resource version: {rv:?}")))?;
            if from < self.store.compacted_rv() {
                state.error = Some(expired(from, self.store.compacted_rv() + 1));
            }
            state.sent_rv = from;
        }
        let id = self.next_watch;
        self.next_watch += 1;
        self.watches.insert(id, state);
        let mut head = http::Response::new(());
        *head.status_mut() = StatusCode::OK;
        head.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        head.headers_mut().insert(http::header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        Ok(Reply::Watch { id, head })
    }

    /// What the watch `id` sends now: events since the last poll, bookmarks that are due, or its
    /// end at the timeout. Poll again after every write and at the instant `Pending` names.
    pub fn poll_watch(&mut self, id: WatchId, now: Instant) -> WatchPoll {
        let current = self.store.current_rv();
        let compacted = self.store.compacted_rv();
        let Some(w) = self.watches.get_mut(&id) else { return WatchPoll::Finished(Vec::new()) };
        let kind = &self.kinds[w.kind];
        let mut out = Vec::new();
        if w.end_at_once {
            self.watches.remove(&id);
            return WatchPoll::Finished(out);
        }
        if let Some(err) = w.error.take() {
            event_line(&mut out, "ERROR", &super::status_json(&err), MetaAccept::None);
            self.watches.remove(&id);
            return WatchPoll::Finished(out);
        }
        while let Some(obj) = w.initial.pop_front() {
            event_line(&mut out, "ADDED", &obj, w.meta);
        }
        if let Some(rv) = w.initial_end.take() {
            let bookmark = json!({"kind": kind.resource.kind, "apiVersion": kind.resource.api_version,
                "metadata": {"resourceVersion": rv.to_string(), "creationTimestamp": null,
                             "annotations": {crate::watch::INITIAL_EVENTS_END: "true"}}});
            event_line(&mut out, "BOOKMARK", &bookmark, w.meta);
        }
        match self.store.log_after(w.sent_rv) {
            None => {
                let err = expired(w.sent_rv, compacted + 1);
                event_line(&mut out, "ERROR", &super::status_json(&err), MetaAccept::None);
                self.watches.remove(&id);
                return WatchPoll::Finished(out);
            }
            Some(entries) => {
                for e in entries {
                    w.sent_rv = e.rv;
                    if e.key.kind != w.kind {
                        continue;
                    }
                    let after = w.filter.matches(&e.object);
                    let before = e.previous.as_ref().is_some_and(|p| w.filter.matches(p));
                    match (e.change, before, after) {
                        (Change::Added, _, true) => event_line(&mut out, "ADDED", &e.object, w.meta),
                        (Change::Modified, true, true) => event_line(&mut out, "MODIFIED", &e.object, w.meta),
                        (Change::Modified, false, true) => event_line(&mut out, "ADDED", &e.object, w.meta),
                        (Change::Modified, true, false) => {
                            // Left the selector: DELETED with the previous state at this resourceVersion.
                            let mut prev = (**e.previous.as_ref().expect("before implies a previous state")).clone();
                            prev["metadata"]["resourceVersion"] = Value::String(e.rv.to_string());
                            event_line(&mut out, "DELETED", &prev, w.meta);
                        }
                        (Change::Deleted, _, _) if before || after => {
                            event_line(&mut out, "DELETED", &e.object, w.meta)
                        }
                        _ => {}
                    }
                }
                w.sent_rv = w.sent_rv.max(current);
            }
        }
        let bookmark = |out: &mut Vec<u8>| {
            let b = json!({"kind": kind.resource.kind, "apiVersion": kind.resource.api_version,
                "metadata": {"resourceVersion": current.to_string(), "creationTimestamp": null}});
            event_line(out, "BOOKMARK", &b, w.meta);
        };
        if now >= w.deadline {
            // The pre-deadline bookmark has gone out already; the stream just ends.
            self.watches.remove(&id);
            return WatchPoll::Finished(out);
        }
        if w.next_bookmark.is_some_and(|at| now >= at) {
            bookmark(&mut out);
            w.next_bookmark = next_bookmark(now, self.config.bookmark_interval, w.deadline, w.streaming, true);
        }
        if out.is_empty() {
            let wake = w.next_bookmark.map_or(w.deadline, |at| at.min(w.deadline));
            WatchPoll::Pending(Some(wake))
        } else {
            WatchPoll::Data(out)
        }
    }

    /// Ends a watch (the client went away).
    pub fn cancel_watch(&mut self, id: WatchId) {
        self.watches.remove(&id);
    }

    /// Ends every open watch at once, as when the API server restarts or a proxy drops them.
    pub fn drop_watches(&mut self) {
        self.watches.clear();
    }

    /// The watches open now.
    pub fn open_watches(&self) -> impl Iterator<Item = WatchId> + '_ {
        self.watches.keys().copied()
    }
}
