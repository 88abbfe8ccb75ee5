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
use kube_proto::error::{Reason, Status};

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
    /// A progress bookmark goes out only when the watch cache's resourceVersion is newer than
    /// this: the resourceVersion the watch started from, raised by its initial events (the
    /// history it replayed, or the initial-events-end of a streaming list).
    start_rv: u64,
    /// History up to here is the watch's initial events (the replay of a watch from a
    /// resourceVersion); what comes after is live.
    replay_until: u64,
    deadline: Instant,
    /// When the next progress bookmark goes out (a tick of the bookmark timer), if one is due.
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

/// The period of the real watch cache's bookmark timer (`dispatchEvents` in the cacher resets it
/// to `wait.Jitter(time.Second, 0.25)` each time it fires: a second plus up to a quarter second).
const BOOKMARK_TICK: Duration = Duration::from_secs(1);
/// The timer's jitter, as a fraction of [`BOOKMARK_TICK`].
const BOOKMARK_TICK_JITTER: f64 = 0.25;
/// How far ahead of the timer's known ticks [`BookmarkClock::delivery`] walks tick by tick;
/// past that (a bookmark interval of hours) it draws the tick's place in the bucket directly.
const BOOKMARK_TICKS_WALKED: u32 = 4096;

/// The real watch cache's bookmark timer. The cacher files each watcher that wants bookmarks
/// under a whole-second bucket (`watcherBookmarkTimeBuckets`, seconds counted from the cache's
/// start) holding the time its next bookmark is due. Each time the timer fires it takes every
/// bucket that has begun (`popExpiredWatchersThreadUnsafe`) and sends those watchers a bookmark
/// at the cache's resourceVersion. So a bookmark goes out at the first tick in (or after) its
/// time's second: up to a second before that time, or up to 1.25 s after it. A watcher filed
/// again right after a tick waits for a later second: the next tick at the earliest.
///
/// Here the ticks come from a [`SplitMix64`](kube_proto::rng::SplitMix64) of their own, seeded from
/// the fake's seed, so that they do not depend on the order of requests; and the buckets count
/// from the fake's start.
#[derive(Debug, Clone)]
pub(super) struct BookmarkClock {
    /// Where the whole-second buckets are counted from.
    epoch: Instant,
    /// The last tick known to be at or before every instant asked about (at first, the epoch).
    tick: Instant,
    /// The generator of the gaps between ticks after `tick`.
    rng: kube_proto::rng::SplitMix64,
}

impl BookmarkClock {
    pub(super) fn new(epoch: Instant, seed: u64) -> Self {
        BookmarkClock { epoch, tick: epoch, rng: kube_proto::rng::SplitMix64::new(seed ^ 0xB00C_3A2C_71C4_5EED) }
    }

    fn gap(rng: &mut kube_proto::rng::SplitMix64) -> Duration {
        BOOKMARK_TICK + BOOKMARK_TICK.mul_f64(BOOKMARK_TICK_JITTER * rng.next_f64())
    }

    /// When a bookmark due at `due` goes out, for a watcher filed at `now`: at the first tick
    /// after `now` that falls in `due`'s second or a later one.
    pub(super) fn delivery(&mut self, now: Instant, due: Instant) -> Instant {
        // After a long stretch with nothing to place, pick the timer up again just before `now`
        // rather than walk every tick since.
        if now.saturating_duration_since(self.tick) > Duration::from_secs(3600) {
            self.tick = now - BOOKMARK_TICK.mul_f64(self.rng.next_f64());
        }
        // Ticks at or before `now` are past: later questions come at a later `now`.
        loop {
            let mut rng = self.rng.clone();
            let next = self.tick + Self::gap(&mut rng);
            if next > now {
                break;
            }
            (self.tick, self.rng) = (next, rng);
        }
        let bucket = self.epoch + Duration::from_secs(due.saturating_duration_since(self.epoch).as_secs());
        let mut rng = self.rng.clone();
        let mut t = self.tick;
        for _ in 0..BOOKMARK_TICKS_WALKED {
            t += Self::gap(&mut rng);
            if t > now && t >= bucket {
                return t;
            }
        }
        // Far ahead: somewhere in the first 1.25 s of the bucket, as the walk would have found.
        bucket.max(now) + Self::gap(&mut rng).mul_f64(rng.next_f64())
    }
}

/// When the real watch cache next wants to send a watcher a bookmark, asked at `now`
/// (`cacheWatcher.nextBookmarkTime`): a bookmark interval later, or 2 s before the watch's
/// deadline if that comes first; none if that time has passed.
fn bookmark_due(now: Instant, interval: Duration, deadline: Instant) -> Option<Instant> {
    let heartbeat = now.checked_add(interval);
    let pre_timeout = deadline.checked_sub(Duration::from_secs(2));
    let due = match (heartbeat, pre_timeout) {
        (Some(h), Some(p)) => h.min(p),
        (h, p) => h.or(p)?,
    };
    (due >= now).then_some(due)
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
            start_rv: current,
            replay_until: current,
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
        // A timeout past what the clock can count ends never, in effect: a century.
        state.deadline = now.checked_add(timeout).unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400));
        if bookmarks {
            // A streaming list waits for the bookmark that confirms its initial events: the real
            // cacher files it for the very next tick (`nextBookmarkTime` answers "now" until
            // then). Any other watch is filed for its first bookmark time.
            let due =
                if streaming { Some(now) } else { bookmark_due(now, self.config.bookmark_interval, state.deadline) };
            state.next_bookmark = due.map(|due| self.bookmark_clock.delivery(now, due));
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
            state.start_rv = from.max(current);
            if bookmarks {
                state.initial_end = Some(state.start_rv);
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
            state.start_rv = from;
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
        #[cfg(feature = "protobuf")]
        if self.protobuf_watches.contains(&id) {
            return self.poll_protobuf_watch(id, now);
        }
        self.poll_watch_json(id, now)
    }

    /// [`poll_watch`](Self::poll_watch) in JSON lines.
    pub(crate) fn poll_watch_json(&mut self, id: WatchId, now: Instant) -> WatchPoll {
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
                             "annotations": {kube_proto::watch::INITIAL_EVENTS_END: "true"}}});
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
                    if e.rv <= w.replay_until {
                        // A replayed change, one of the watch's initial events.
                        w.start_rv = w.start_rv.max(e.rv);
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
        // Progress bookmarks due by now, in the order the timer sent them, and only those
        // before the deadline. The real cacher sends one only if the cache's resourceVersion is
        // newer than the watch started from (`cacheWatcher.process`): here the fake's one
        // counter stands for it, which other kinds' writes move as etcd's progress
        // notifications move a real watch cache when the rest of the cluster is written.
        let deadline = w.deadline;
        while let Some(at) = w.next_bookmark.filter(|at| *at <= now && *at < deadline) {
            if current > w.start_rv {
                let b = json!({"kind": kind.resource.kind, "apiVersion": kind.resource.api_version,
                    "metadata": {"resourceVersion": current.to_string(), "creationTimestamp": null}});
                event_line(&mut out, "BOOKMARK", &b, w.meta);
            }
            // Filed again at once for its next bookmark time, if that has not passed.
            w.next_bookmark = bookmark_due(at, self.config.bookmark_interval, deadline)
                .map(|due| self.bookmark_clock.delivery(at, due));
        }
        if now >= deadline {
            self.watches.remove(&id);
            return WatchPoll::Finished(out);
        }
        if out.is_empty() {
            let wake = w.next_bookmark.map_or(deadline, |at| at.min(deadline));
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
