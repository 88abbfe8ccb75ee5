//! Sharding a controller's objects over several replicas, one Lease per shard, as a pure state
//! machine.
//!
//! controller-runtime (and client-go) elect one leader per controller: the other replicas stand
//! by, and the leader alone reconciles every object. That removes the single point of failure
//! but not the single replica's limits. Here the objects are split into `S` shards by a stable
//! hash ([`shard_of`], FNV-1a of the object's UID or namespace, the same on every replica and
//! every run), each shard has its own Lease (`<prefix>-<i>`), and each replica leads the shards
//! it holds. A replica reconciles an object only while it leads the object's shard, so each
//! object has at most one live owner, with the same safety argument as a single Lease (see
//! [`lease`](crate::lease)); with `S = 1` this is controller-runtime's single leader.
//!
//! Replicas find each other through membership Leases: each holds its own
//! (`<prefix>-member-<hash of its identity>`), and every replica LISTs the group's Leases (label
//! [`GROUP_LABEL`]) once per retry period. That one LIST also serves as the read of every shard
//! Lease. A member is live while its Lease keeps changing (judged, as always, by when the change
//! was observed locally). Each replica aims at a fair share: with `n` live members, `S / n`
//! shards, plus one for the first `S mod n` members by identity, so that the shares add up to
//! exactly `S`. It takes free or expired shards up to its share, and gives back (clears the
//! holder of) those beyond it, so
//! shards move to a replica that joins and away from one that leaves or dies; on shutdown it
//! gives back all of them and its membership.
//!
//! ```
//! use kube_proto::shard::{shard_of, ShardConfig, Shards};
//!
//! assert_eq!(shard_of("6c3f2a4e-8b1d-4c55-9f2e-0d8a7b6c5e4f", 4), shard_of("6c3f2a4e-8b1d-4c55-9f2e-0d8a7b6c5e4f", 4));
//! assert!(shard_of("anything", 4) < 4);
//! let shards = Shards::new(ShardConfig::new("default", "my-controller", "replica-a", 4)).unwrap();
//! assert_eq!(shards.config().shard_lease_name(2), "my-controller-2");
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use http::{HeaderMap, StatusCode};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::lease::{Action, Elector, LeaseConfig, LeaseConfigError, LeaseError, LeaseEvent, LostReason, RequestId};
use crate::params::ListParams;
use crate::request::Request;
use crate::response::Response;

/// The label naming the group (the Lease name prefix) on every Lease of a sharded controller.
pub const GROUP_LABEL: &str = "leases.kube-proto.io/group";
/// The label saying whether a Lease is a shard's (`shard`) or a member's (`member`).
pub const ROLE_LABEL: &str = "leases.kube-proto.io/role";

/// FNV-1a, 64 bits: a fixed, stable hash (unlike std's, which is seeded per process).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The shard, in `0..shards`, of an object whose key (UID or namespace) is `key`. `0` when
/// `shards` is 0.
pub fn shard_of(key: &str, shards: u32) -> u32 {
    if shards == 0 {
        return 0;
    }
    (fnv1a64(key.as_bytes()) % u64::from(shards)) as u32
}

/// What an object is sharded by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShardKey {
    /// Its UID: objects spread evenly, each on its own.
    #[default]
    Uid,
    /// Its namespace: all objects of a namespace in one shard (cluster-scoped objects share the
    /// empty namespace's shard).
    Namespace,
}

impl ShardKey {
    /// The shard of an object with this metadata. An object with no UID yet (never the case for
    /// objects read from the server) is sharded by its namespace and name.
    pub fn shard(&self, meta: &ObjectMeta, shards: u32) -> u32 {
        match self {
            ShardKey::Uid => match meta.uid.as_deref() {
                Some(uid) => shard_of(uid, shards),
                None => {
                    let key =
                        format!("{}/{}", meta.namespace.as_deref().unwrap_or(""), meta.name.as_deref().unwrap_or(""));
                    shard_of(&key, shards)
                }
            },
            ShardKey::Namespace => shard_of(meta.namespace.as_deref().unwrap_or(""), shards),
        }
    }
}

/// Settings of a sharded election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardConfig {
    /// The namespace of the Leases, the name prefix (`name`: the shards' Leases are
    /// `<name>-<i>`), this replica's identity and the timings, shared by every shard.
    pub lease: LeaseConfig,
    /// How many shards (at least 1, at most 1024).
    pub shards: u32,
}

impl ShardConfig {
    /// `shards` shards of Leases named `<prefix>-<i>` in `namespace`, contended for as
    /// `identity`, with client-go's default timings.
    pub fn new(
        namespace: impl Into<String>,
        prefix: impl Into<String>,
        identity: impl Into<String>,
        shards: u32,
    ) -> Self {
        ShardConfig { lease: LeaseConfig::new(namespace, prefix, identity), shards }
    }

    /// Sets the three timings (see [`LeaseConfig`]).
    #[must_use]
    pub fn timings(mut self, lease_duration: Duration, renew_deadline: Duration, retry_period: Duration) -> Self {
        self.lease = self.lease.timings(lease_duration, renew_deadline, retry_period);
        self
    }

    /// The name prefix.
    pub fn prefix(&self) -> &str {
        &self.lease.name
    }

    /// The name of shard `i`'s Lease.
    pub fn shard_lease_name(&self, i: u32) -> String {
        format!("{}-{i}", self.lease.name)
    }

    /// The name of this replica's membership Lease.
    pub fn member_lease_name(&self) -> String {
        format!("{}-member-{:016x}", self.lease.name, fnv1a64(self.lease.identity.as_bytes()))
    }

    /// Checks that the settings are usable.
    pub fn validate(&self) -> Result<(), LeaseConfigError> {
        self.lease.validate()?;
        if self.shards == 0 || self.shards > 1024 {
            return Err(LeaseConfigError("the number of shards must be between 1 and 1024".into()));
        }
        let p = self.prefix();
        let label_ok = !p.is_empty()
            && p.len() <= 63
            && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && p.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && p.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric());
        if !label_ok {
            return Err(LeaseConfigError(
                "the prefix must be a valid label value: at most 63 lower-case letters, digits, '-' or '.', starting \
                 and ending with a letter or digit"
                    .into(),
            ));
        }
        Ok(())
    }

    fn child(&self, name: String, role: &str) -> LeaseConfig {
        let mut c = self.lease.clone();
        c.name = name;
        c.labels.insert(GROUP_LABEL.to_owned(), self.lease.name.clone());
        c.labels.insert(ROLE_LABEL.to_owned(), role.to_owned());
        c
    }
}

/// What the sharded election tells its user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShardEvent {
    /// This replica leads shard `0`.
    Acquired(u32),
    /// This replica no longer leads shard `0`; it had stopped acting for it by then.
    Lost(u32, LostReason),
    /// Shard `0`'s Lease names a new holder.
    Holder(u32, Option<String>),
    /// The live members (identities, sorted) changed.
    Members(Vec<String>),
}

impl ShardEvent {
    /// The event of shard `shard` for an event of its Lease.
    pub fn of_shard(shard: u32, event: LeaseEvent) -> Self {
        match event {
            LeaseEvent::Acquired => ShardEvent::Acquired(shard),
            LeaseEvent::Lost(r) => ShardEvent::Lost(shard, r),
            LeaseEvent::Holder(h) => ShardEvent::Holder(shard, h),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Child {
    Shard(u32),
    Member,
}

#[derive(Debug, Clone)]
struct MemberSeen {
    resource_version: Option<String>,
    holder: Option<String>,
    duration: Duration,
    since: Instant,
}

/// The sharded election. See the [module documentation](self).
#[derive(Debug)]
pub struct Shards {
    config: ShardConfig,
    shards: Vec<Elector>,
    member: Elector,
    list: Request,
    selector: String,
    list_in_flight: Option<(RequestId, Instant, Instant)>,
    /// When to LIST next (`None`: at the first poll).
    next_list: Option<Instant>,
    listed: bool,
    members: BTreeMap<String, MemberSeen>,
    reported_members: Vec<String>,
    routes: BTreeMap<RequestId, (Child, RequestId)>,
    next_id: RequestId,
    out: VecDeque<Action<ShardEvent>>,
    releasing: bool,
}

impl Shards {
    /// A sharded election.
    pub fn new(config: ShardConfig) -> Result<Self, LeaseConfigError> {
        config.validate()?;
        let shards = (0..config.shards)
            .map(|i| Ok(Elector::fed(config.child(config.shard_lease_name(i), "shard"))?.with_wanted(false)))
            .collect::<Result<Vec<_>, LeaseConfigError>>()?;
        let member = Elector::fed(config.child(config.member_lease_name(), "member"))?;
        let list = Request::namespaced::<Lease>(&config.lease.namespace);
        let selector = format!("{GROUP_LABEL}={}", config.prefix());
        Ok(Shards {
            config,
            shards,
            member,
            list,
            selector,
            list_in_flight: None,
            next_list: None,
            listed: false,
            members: BTreeMap::new(),
            reported_members: Vec::new(),
            routes: BTreeMap::new(),
            next_id: 1,
            out: VecDeque::new(),
            releasing: false,
        })
    }

    /// The settings.
    pub fn config(&self) -> &ShardConfig {
        &self.config
    }

    /// Whether this replica leads shard `shard` at `now` (see [`Elector::is_leading`]).
    pub fn is_leading(&self, shard: u32, now: Instant) -> bool {
        self.shards.get(shard as usize).is_some_and(|e| e.is_leading(now))
    }

    /// Until when this replica leads shard `shard`, unless it renews first.
    pub fn leading_until(&self, shard: u32) -> Option<Instant> {
        self.shards.get(shard as usize).and_then(Elector::leading_until)
    }

    /// The shards this replica leads at `now`.
    pub fn leading(&self, now: Instant) -> Vec<u32> {
        (0..self.config.shards).filter(|i| self.is_leading(*i, now)).collect()
    }

    /// The live members as last computed (identities, sorted).
    pub fn members(&self) -> &[String] {
        &self.reported_members
    }

    /// Shuts down: every shard's leadership stops at once, the shards and the membership are
    /// given back, then [`poll`](Self::poll) answers [`Action::Stopped`].
    pub fn release(&mut self, now: Instant) {
        self.releasing = true;
        for e in &mut self.shards {
            e.release(now);
        }
        self.member.release(now);
    }

    /// What to do next. Drain until [`Action::Wait`] or [`Action::Stopped`].
    pub fn poll(&mut self, now: Instant, wall: SystemTime) -> Action<ShardEvent> {
        if let Some(a) = self.out.pop_front() {
            return a;
        }
        let next_list = *self.next_list.get_or_insert(now);
        let mut until = None::<Instant>;
        let earliest = |until: &mut Option<Instant>, t: Instant| *until = Some(until.map_or(t, |u| u.min(t)));
        if !self.releasing {
            match self.list_in_flight {
                Some((id, _, deadline)) if now >= deadline => {
                    self.list_in_flight = None;
                    self.next_list = Some(now + self.config.lease.retry_period);
                    self.out.push_back(Action::Cancel(id));
                    self.out.push_back(Action::Error(LeaseError::Timeout(self.config.lease.request_timeout)));
                }
                Some((_, _, deadline)) => earliest(&mut until, deadline),
                None if now >= next_list => {
                    let lp = ListParams::default().labels(&self.selector);
                    match self.list.list(&lp) {
                        Ok(req) => {
                            let id = self.take_id();
                            let deadline = now + self.config.lease.request_timeout;
                            self.list_in_flight = Some((id, now, deadline));
                            self.next_list = Some(now + self.config.lease.retry_period);
                            self.out.push_back(Action::Send(id, req));
                            earliest(&mut until, deadline);
                        }
                        Err(e) => {
                            self.next_list = Some(now + self.config.lease.retry_period);
                            self.out.push_back(Action::Error(LeaseError::Request(e)));
                        }
                    }
                }
                None => earliest(&mut until, next_list),
            }
            if self.listed {
                self.rebalance(now);
                // Rebalance again when a member would expire: its shards are taken over as soon
                // as their own Leases expire, not a LIST later.
                for m in self.members.values().filter(|m| m.holder.is_some()) {
                    let expiry = m.since + m.duration;
                    if now < expiry {
                        earliest(&mut until, expiry);
                    }
                }
            }
        }
        let mut stopped = true;
        let children = (0..self.config.shards).map(Child::Shard).chain([Child::Member]);
        for child in children {
            let elector = match child {
                Child::Shard(i) => &mut self.shards[i as usize],
                Child::Member => &mut self.member,
            };
            loop {
                match elector.poll(now, wall) {
                    Action::Send(inner, req) => {
                        let id = self.next_id;
                        self.next_id += 1;
                        self.routes.insert(id, (child, inner));
                        self.out.push_back(Action::Send(id, req));
                    }
                    Action::Cancel(inner) => {
                        let outer = self.routes.iter().find(|(_, r)| **r == (child, inner)).map(|(id, _)| *id);
                        if let Some(id) = outer {
                            self.routes.remove(&id);
                            self.out.push_back(Action::Cancel(id));
                        }
                    }
                    Action::Emit(ev) => {
                        if let Child::Shard(i) = child {
                            self.out.push_back(Action::Emit(ShardEvent::of_shard(i, ev)));
                        }
                    }
                    Action::Error(e) => self.out.push_back(Action::Error(e)),
                    Action::Wait { until: t, .. } => {
                        stopped = false;
                        earliest(&mut until, t);
                        break;
                    }
                    Action::Stopped => break,
                }
            }
        }
        if let Some(a) = self.out.pop_front() {
            return a;
        }
        if self.releasing && stopped {
            return Action::Stopped;
        }
        let until = until.unwrap_or(now + self.config.lease.retry_period);
        Action::Wait { until, reason: crate::lease::WaitReason::Next }
    }

    fn take_id(&mut self) -> RequestId {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Feeds the response to request `id`: its status, headers and whole body.
    pub fn on_response(&mut self, now: Instant, id: RequestId, status: StatusCode, headers: &HeaderMap, body: &[u8]) {
        if let Some((list_id, started, _)) = self.list_in_flight
            && list_id == id
        {
            self.list_in_flight = None;
            match Response::new(status, headers, body).list::<Lease>() {
                Ok(list) => self.listed(now, started, &list.items),
                Err(e) => self.out.push_back(Action::Error(LeaseError::Response(e))),
            }
            return;
        }
        match self.routes.remove(&id) {
            Some((Child::Shard(i), inner)) => self.shards[i as usize].on_response(now, inner, status, headers, body),
            Some((Child::Member, inner)) => self.member.on_response(now, inner, status, headers, body),
            None => {}
        }
    }

    /// Feeds a transport failure of request `id`.
    pub fn on_transport_error(&mut self, now: Instant, id: RequestId, error: impl Into<String>) {
        if self.list_in_flight.is_some_and(|(list_id, _, _)| list_id == id) {
            self.list_in_flight = None;
            self.out.push_back(Action::Error(LeaseError::Transport(error.into())));
            return;
        }
        match self.routes.remove(&id) {
            Some((Child::Shard(i), inner)) => self.shards[i as usize].on_transport_error(now, inner, error),
            Some((Child::Member, inner)) => self.member.on_transport_error(now, inner, error),
            None => {}
        }
    }

    fn listed(&mut self, now: Instant, started: Instant, items: &[Lease]) {
        self.listed = true;
        let by_name: BTreeMap<&str, &Lease> =
            items.iter().filter_map(|l| l.metadata.name.as_deref().map(|n| (n, l))).collect();
        for i in 0..self.config.shards {
            let name = self.config.shard_lease_name(i);
            self.shards[i as usize].observe(now, started, by_name.get(name.as_str()).copied());
        }
        let own = self.config.member_lease_name();
        self.member.observe(now, started, by_name.get(own.as_str()).copied());
        let mut seen = BTreeMap::new();
        for lease in items {
            let is_member =
                lease.metadata.labels.as_ref().and_then(|l| l.get(ROLE_LABEL)).map(String::as_str) == Some("member");
            let Some(name) = lease.metadata.name.clone().filter(|_| is_member) else { continue };
            let spec = lease.spec.as_ref();
            let holder = spec.and_then(|s| s.holder_identity.clone()).filter(|h| !h.is_empty());
            let duration = spec
                .and_then(|s| s.lease_duration_seconds)
                .and_then(|s| u64::try_from(s).ok())
                .filter(|s| *s > 0)
                .map_or(self.config.lease.lease_duration, Duration::from_secs);
            let resource_version = lease.metadata.resource_version.clone();
            let since = match self.members.get(&name) {
                Some(m) if m.resource_version == resource_version && m.holder == holder => m.since,
                _ => now,
            };
            seen.insert(name, MemberSeen { resource_version, holder, duration, since });
        }
        self.members = seen;
    }

    /// The live members: those whose membership Lease names a holder and changed within its
    /// duration, and this replica.
    fn live_members(&self, now: Instant) -> Vec<String> {
        let mut live: BTreeSet<String> =
            self.members.values().filter(|m| now < m.since + m.duration).filter_map(|m| m.holder.clone()).collect();
        live.insert(self.config.lease.identity.clone());
        live.into_iter().collect()
    }

    /// Sets which shards this replica wants: those it holds, up to its share, then free ones up
    /// to it.
    fn rebalance(&mut self, now: Instant) {
        let live = self.live_members(now);
        if live != self.reported_members {
            self.reported_members = live.clone();
            self.out.push_back(Action::Emit(ShardEvent::Members(live.clone())));
        }
        let s = self.config.shards;
        let n = live.len().max(1) as u32;
        // An exact split: `S / n` each, and one more for the first `S % n` members by identity.
        // (A plain `ceil(S / n)` each can starve a newcomer: with 4 shards held 2 and 2, a third
        // replica's share would be 2 too, and nobody would be over it to give one back.)
        let rank = live.iter().position(|m| *m == self.config.lease.identity).unwrap_or(0) as u32;
        let target = (s / n + u32::from(rank < s % n)) as usize;
        let mut keep: Vec<u32> = Vec::with_capacity(target);
        for i in 0..s {
            if keep.len() < target && self.shards[i as usize].holds() {
                keep.push(i);
            }
        }
        for i in 0..s {
            let e = &self.shards[i as usize];
            if keep.len() < target && !keep.contains(&i) && e.wanted() && e.acquiring() {
                keep.push(i);
            }
        }
        // Free shards, starting at a place of this replica's own, so that replicas that start
        // together do not all reach for the same ones.
        let start = (fnv1a64(self.config.lease.identity.as_bytes()) % u64::from(s)) as u32;
        for k in 0..s {
            let i = (start + k) % s;
            if keep.len() >= target {
                break;
            }
            if !keep.contains(&i) && self.shards[i as usize].is_free(now) {
                keep.push(i);
            }
        }
        for i in 0..s {
            self.shards[i as usize].set_wanted(now, keep.contains(&i));
        }
    }
}

#[cfg(test)]
mod tests;
