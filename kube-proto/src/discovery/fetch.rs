//! [`Fetch`]: the requests discovery needs, and what their answers make.

use std::collections::{BTreeMap, VecDeque};

use http::{HeaderMap, StatusCode};

use super::parse::{self, Document};
use super::{ApiGroup, Catalog, DiscoveryError, Freshness, GroupVersion, GroupVersionFailure};
use crate::response::Response;

/// Identifies one request handed out by [`Fetch::poll_request`], to feed its answer back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(u32);

#[derive(Debug, Clone)]
enum Asked {
    Core { aggregated: bool },
    Groups { aggregated: bool },
    Resources { group: String, version: String },
}

impl Asked {
    fn path(&self) -> String {
        match self {
            Asked::Core { .. } => "/api".to_owned(),
            Asked::Groups { .. } => "/apis".to_owned(),
            Asked::Resources { group, version } if group.is_empty() => format!("/api/{version}"),
            Asked::Resources { group, version } => format!("/apis/{group}/{version}"),
        }
    }
}

/// Discovery of a whole server, as a state machine with no IO.
///
/// It starts with `GET /api` and `GET /apis` asking for aggregated discovery. A server that
/// answers with it is done in those two requests; one that answers with the legacy documents
/// gets one request per group version next. Drain [`poll_request`](Self::poll_request) (the
/// requests may be sent concurrently), feed each answer to [`on_response`](Self::on_response),
/// drain again, and call [`finish`](Self::finish) once [`is_done`](Self::is_done).
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// use kube_proto::discovery::Fetch;
///
/// let mut fetch = Fetch::legacy();
/// let mut answers = Vec::new();
/// while let Some((id, req)) = fetch.poll_request() {
///     let body: &[u8] = match req.uri().path() {
///         "/api" => br#"{"kind":"APIVersions","versions":["v1"]}"#,
///         _ => br#"{"kind":"APIGroupList","groups":[]}"#,
///     };
///     answers.push((id, body));
/// }
/// for (id, body) in answers {
///     fetch.on_response(id, StatusCode::OK, &HeaderMap::new(), body).unwrap();
/// }
/// // The core group's version is asked for next.
/// let (id, req) = fetch.poll_request().unwrap();
/// assert_eq!(req.uri(), "/api/v1");
/// let body = br#"{"kind":"APIResourceList","groupVersion":"v1","resources":[
///     {"name":"pods","singularName":"pod","namespaced":true,"kind":"Pod","verbs":["get","list"],"shortNames":["po"]}]}"#;
/// fetch.on_response(id, StatusCode::OK, &HeaderMap::new(), body).unwrap();
/// assert!(fetch.is_done());
/// let catalog = fetch.finish().unwrap();
/// assert_eq!(catalog.resolve("po").unwrap().resource.kind, "Pod");
/// ```
#[derive(Debug)]
pub struct Fetch {
    next_id: u32,
    outgoing: VecDeque<(RequestId, http::Request<Vec<u8>>)>,
    waiting: BTreeMap<RequestId, Asked>,
    core: Option<ApiGroup>,
    others: Option<Vec<ApiGroup>>,
    failures: Vec<GroupVersionFailure>,
}

impl Default for Fetch {
    fn default() -> Self {
        Self::new()
    }
}

impl Fetch {
    /// Discovery that asks for the aggregated documents first.
    pub fn new() -> Self {
        Self::start(true)
    }

    /// Discovery through the legacy documents only (`/api`, `/apis`, then each group version).
    pub fn legacy() -> Self {
        Self::start(false)
    }

    fn start(aggregated: bool) -> Self {
        let mut f = Fetch {
            next_id: 0,
            outgoing: VecDeque::new(),
            waiting: BTreeMap::new(),
            core: None,
            others: None,
            failures: Vec::new(),
        };
        f.ask(Asked::Core { aggregated });
        f.ask(Asked::Groups { aggregated });
        f
    }

    fn ask(&mut self, asked: Asked) {
        let req = match &asked {
            Asked::Core { aggregated } => parse::api_request(*aggregated),
            Asked::Groups { aggregated } => parse::apis_request(*aggregated),
            Asked::Resources { group, version } => parse::group_version_request(group, version),
        };
        let id = RequestId(self.next_id);
        self.next_id += 1;
        self.outgoing.push_back((id, req));
        self.waiting.insert(id, asked);
    }

    /// The next request to send, if any.
    pub fn poll_request(&mut self) -> Option<(RequestId, http::Request<Vec<u8>>)> {
        self.outgoing.pop_front()
    }

    /// Whether every request was answered and no other is needed.
    pub fn is_done(&self) -> bool {
        self.outgoing.is_empty() && self.waiting.is_empty()
    }

    /// Feeds the answer to the request `id`. An error of `/api` or `/apis` is returned (their
    /// fallback to the legacy documents aside); an error of one group version is recorded in
    /// the catalog's [`failures`](Catalog::failures) and the rest goes on.
    pub fn on_response(
        &mut self,
        id: RequestId,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), DiscoveryError> {
        let asked = self.waiting.remove(&id).ok_or(DiscoveryError::UnknownRequest(id))?;
        let path = asked.path();
        if !status.is_success() {
            return match asked {
                Asked::Core { aggregated: true } if parse::is_not_acceptable(status) => {
                    self.ask(Asked::Core { aggregated: false });
                    Ok(())
                }
                Asked::Groups { aggregated: true } if parse::is_not_acceptable(status) => {
                    self.ask(Asked::Groups { aggregated: false });
                    Ok(())
                }
                Asked::Core { .. } | Asked::Groups { .. } => {
                    Err(DiscoveryError::Api { path, error: Response::new(status, headers, body).error() })
                }
                Asked::Resources { group, version } => {
                    self.drop_version(&group, &version);
                    let group_version = if group.is_empty() { version } else { format!("{group}/{version}") };
                    let error = Response::new(status, headers, body).error();
                    self.failures.push(GroupVersionFailure { group_version, error });
                    Ok(())
                }
            };
        }
        let doc = parse::parse_document(body)
            .map_err(|message| DiscoveryError::Unexpected { path: path.clone(), message })?;
        let unexpected =
            |what: &str| DiscoveryError::Unexpected { path: path.clone(), message: format!("answered {what}") };
        match (asked, doc) {
            (Asked::Core { .. }, Document::Aggregated(groups)) => {
                let core = groups.into_iter().find(|g| g.name.is_empty());
                self.core = Some(core.unwrap_or(ApiGroup { name: String::new(), versions: Vec::new() }));
            }
            (Asked::Core { .. }, Document::CoreVersions(versions)) => {
                for v in &versions {
                    self.ask(Asked::Resources { group: String::new(), version: v.clone() });
                }
                let versions = versions
                    .into_iter()
                    .map(|version| GroupVersion { version, resources: Vec::new(), freshness: Freshness::Current })
                    .collect();
                self.core = Some(ApiGroup { name: String::new(), versions });
            }
            (Asked::Groups { .. }, Document::Aggregated(groups)) => {
                self.others = Some(groups.into_iter().filter(|g| !g.name.is_empty()).collect());
            }
            (Asked::Groups { .. }, Document::Groups(groups)) => {
                for g in &groups {
                    for v in &g.versions {
                        self.ask(Asked::Resources { group: g.name.clone(), version: v.version.clone() });
                    }
                }
                self.others = Some(groups);
            }
            (Asked::Resources { group, version }, Document::Resources { group: g, version: gv })
                if g == group && gv.version == version =>
            {
                if let Some(slot) =
                    self.group_mut(&group).and_then(|g| g.versions.iter_mut().find(|v| v.version == version))
                {
                    *slot = gv;
                }
            }
            (Asked::Resources { .. }, Document::Resources { group, version }) => {
                let gv = if group.is_empty() { version.version } else { format!("{group}/{}", version.version) };
                return Err(unexpected(&format!("the resources of another group version, {gv}")));
            }
            (_, Document::Aggregated(_)) => return Err(unexpected("an APIGroupDiscoveryList")),
            (_, Document::CoreVersions(_)) => return Err(unexpected("an APIVersions")),
            (_, Document::Groups(_)) => return Err(unexpected("an APIGroupList")),
            (_, Document::Resources { .. }) => return Err(unexpected("an APIResourceList")),
        }
        Ok(())
    }

    fn group_mut(&mut self, name: &str) -> Option<&mut ApiGroup> {
        if name.is_empty() { self.core.as_mut() } else { self.others.as_mut()?.iter_mut().find(|g| g.name == name) }
    }

    fn drop_version(&mut self, group: &str, version: &str) {
        if let Some(g) = self.group_mut(group) {
            g.versions.retain(|v| v.version != version);
        }
    }

    /// The catalog, once [`is_done`](Self::is_done). Groups left with no version that could be
    /// read are left out (their failures say why).
    pub fn finish(self) -> Result<Catalog, DiscoveryError> {
        if !self.is_done() {
            return Err(DiscoveryError::NotFinished(self.waiting.len()));
        }
        let mut groups: Vec<ApiGroup> = self.core.into_iter().chain(self.others.unwrap_or_default()).collect();
        groups.retain(|g| !g.versions.is_empty());
        Ok(Catalog::new(groups).with_failures(self.failures))
    }
}
