//! `pods/{name}/exec`, `attach` and `portforward`: the checks the API server and the kubelet
//! make before they switch protocols, the WebSocket handshake, and the session that follows.
//!
//! The checks come in the real servers' order, and their answers are theirs (those recorded
//! from kube-apiserver v1.36 are checked against the fake in its tests):
//!
//! 1. the API server: the pod (404), the container (400 `container X is not valid for pod
//!    Y`, or `a container name must be specified ...` when the pod has several), the node
//!    (400 `pod X does not have a host assigned`), an upgrade at all (400 `Upgrade request
//!    required`);
//! 2. for exec and attach offering `v5.channel.k8s.io`, the API server's stream translator
//!    answers the handshake itself and chooses v5; otherwise the kubelet does, choosing the
//!    first subprotocol offered that it speaks (`channel.k8s.io` to `v4.channel.k8s.io`; for
//!    port-forward `v4.channel.k8s.io`, or none). Before its handshake the kubelet checks the
//!    streams asked for (`you must specify at least 1 of stdin, stdout, stderr`) or the ports
//!    (`query parameter "port" is required`, ...) and answers in plain text;
//! 3. the handshake (Go's `x/net/websocket`): a `POST` gets `405 bad method`, a missing
//!    `Sec-WebSocket-Key` `400 mismatch challenge/response`, a version other than 13 `400
//!    missing or bad WebSocket Version`, no subprotocol it speaks `403` with no body.
//!
//! Simpler than the real servers: a pod counts as running on a node when it has
//! `spec.nodeName` or anything scripted for it (the script stands in for the kubelet); a
//! container's state is not checked (a real kubelet refuses one that is not running); an
//! exec without a command is run, and fails as a program that is not found does, where the
//! real runtime's wording differs; the base64 subprotocols are not spoken, and SPDY only for
//! port-forward (an exec or attach asking for SPDY gets a 400 `Status` saying so); an `InternalError` the v5 translator relays is written as the
//! kubelet wrote it; authorization checks `get` or `create` on `pods/exec` by the method, as
//! for other subresources.

use std::collections::BTreeMap;

use http::header::{CONNECTION, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use kube_proto::channel::ChannelProtocol;
use kube_proto::channel::portforward::MAX_PORTS;
use kube_proto::error::{Reason, StatusDetails};
use kube_proto::spdy;
use kube_proto::websocket::accept_key;
use serde_json::Value;

use crate::exec::{ExecScript, PortScript, Process};
use crate::session::FakeSession;
use crate::{FakeApiServer, Reply, Route, bad_request, not_found, percent_decode, status_response};

/// What is scripted for one pod.
#[derive(Debug, Default)]
pub(crate) struct PodScripts {
    /// By container; `None` for the pod's other containers.
    exec: BTreeMap<Option<String>, ExecScript>,
    ports: BTreeMap<u16, PortScript>,
}

/// The subprotocols the kubelet speaks for exec and attach (the base64 ones aside).
const KUBELET_EXEC_PROTOCOLS: [ChannelProtocol; 4] =
    [ChannelProtocol::V1, ChannelProtocol::V2, ChannelProtocol::V3, ChannelProtocol::V4];

/// What a connect request reached: an answer, or the session after a `101`.
type Answer = Result<Reply, Box<http::Response<Vec<u8>>>>;

impl FakeApiServer {
    /// Sets what runs when a process is exec'd in, or attached to, `container` of the pod
    /// `namespace/pod` (`None`: any container without a script of its own). Scripting a pod
    /// also makes it count as running on a node. See [`exec`](crate::exec).
    pub fn script_exec(&mut self, namespace: &str, pod: &str, container: Option<&str>, script: ExecScript) {
        let scripts = self.scripts.entry((namespace.to_owned(), pod.to_owned())).or_default();
        scripts.exec.insert(container.map(str::to_owned), script);
    }

    /// Sets what listens on `port` of the pod `namespace/pod`, for port-forwards; other ports
    /// refuse connections. Scripting a pod also makes it count as running on a node.
    pub fn script_port(&mut self, namespace: &str, pod: &str, port: u16, script: PortScript) {
        let scripts = self.scripts.entry((namespace.to_owned(), pod.to_owned())).or_default();
        scripts.ports.insert(port, script);
    }

    /// Forgets what was scripted for the pod `namespace/pod`: it runs the built-in commands
    /// again ([`ExecScript::builtins`]) and nothing listens on its ports.
    pub fn clear_scripts(&mut self, namespace: &str, pod: &str) {
        self.scripts.remove(&(namespace.to_owned(), pod.to_owned()));
    }

    /// Answers `pods/{name}/exec`, `attach` or `portforward`.
    pub(crate) fn connect(&mut self, route: &Route, name: &str, sub: &str, req: &http::Request<Vec<u8>>) -> Reply {
        match self.try_connect(route, name, sub, req) {
            Ok(reply) => reply,
            Err(resp) => Reply::Response(*resp),
        }
    }

    fn try_connect(&mut self, route: &Route, name: &str, sub: &str, req: &http::Request<Vec<u8>>) -> Answer {
        let refuse = |s| Err(Box::new(status_response(&s)));
        if req.method() != Method::GET && req.method() != Method::POST {
            let mut s = kube_proto::error::Status::failure(
                405,
                Reason::MethodNotAllowed,
                "the server does not allow this method on the requested resource",
            );
            s.details = Some(StatusDetails::default());
            return refuse(s);
        }
        let query = Query::parse(req.uri().query().unwrap_or(""));
        let kind = &self.kinds[route.kind];
        let Some(pod) = self.store.get(&self.key(route, name)).cloned() else { return refuse(*not_found(kind, name)) };
        let namespace = route.namespace.clone().unwrap_or_default();
        // The API server reads `ports` as integers; the kubelet checks them after the upgrade.
        let mut requested_ports = Vec::new();
        let mut container = String::new();
        if sub == "portforward" {
            for value in query.all("ports") {
                match value.parse::<i32>() {
                    Ok(p) => requested_ports.push(p),
                    Err(_) => {
                        return refuse(*bad_request(format!("strconv.ParseInt: parsing {value:?}: invalid syntax")));
                    }
                }
            }
        } else {
            container = match choose_container(&pod, name, query.first("container").unwrap_or("")) {
                Ok(c) => c,
                Err(message) => return refuse(*bad_request(message)),
            };
        }
        let key = (namespace.clone(), name.to_owned());
        let scripted = self.scripts.contains_key(&key);
        if pod["spec"]["nodeName"].as_str().unwrap_or("").is_empty() && !scripted {
            return refuse(*bad_request(format!("pod {name} does not have a host assigned")));
        }
        let headers = req.headers();
        if !has_token(headers, &CONNECTION, "upgrade") {
            return refuse(*bad_request("Upgrade request required"));
        }
        let upgrade = joined(headers, &UPGRADE);
        let scripts = self.scripts.get(&key);
        let spdy = upgrade.trim().eq_ignore_ascii_case(spdy::UPGRADE_TOKEN);
        if spdy && sub == "portforward" {
            // The kubelet's SPDY port-forward reads the ports from the streams' headers.
            let asked = joined(headers, &HeaderName::from_static(spdy::STREAM_PROTOCOL_HEADER));
            if !asked.split(',').any(|p| p.trim() == spdy::PORTFORWARD_PROTOCOL) {
                let text = format!(
                    "unable to upgrade: unable to negotiate protocol: client supports {asked:?}, server supports [{:?}]",
                    spdy::PORTFORWARD_PROTOCOL
                );
                return Err(Box::new(raw_response(StatusCode::FORBIDDEN, &text, Some(TEXT))));
            }
            let (sandbox, netns) = sandbox_and_netns(&pod);
            let listeners = scripts.map(|s| s.ports.clone()).unwrap_or_default();
            let session = FakeSession::spdy_port_forward(spdy::PORTFORWARD_PROTOCOL, sandbox, netns, listeners, false);
            let mut head = http::Response::new(());
            *head.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            let h = head.headers_mut();
            h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
            h.insert(UPGRADE, HeaderValue::from_static(spdy::UPGRADE_TOKEN));
            h.insert(spdy::STREAM_PROTOCOL_HEADER, HeaderValue::from_static(spdy::PORTFORWARD_PROTOCOL));
            return Ok(Reply::Upgrade { head, session: Box::new(session) });
        }
        if !upgrade.trim().eq_ignore_ascii_case("websocket") {
            return refuse(*bad_request(format!(
                "the fake API server upgrades {sub} to websocket only, not {upgrade:?} (SPDY is spoken for portforward only)"
            )));
        }
        let offered = offered_protocols(headers);

        if sub == "portforward" {
            let ports = match kubelet_ports(&requested_ports) {
                Ok(p) => p,
                Err(text) => return Err(Box::new(raw_response(StatusCode::BAD_REQUEST, &text, Some(TEXT)))),
            };
            handshake(req)?;
            if offered.iter().any(|p| p == spdy::PORTFORWARD_TUNNEL_PROTOCOL) {
                // The API server's tunnel (Kubernetes 1.31 on): SPDY inside the WebSocket.
                let (sandbox, netns) = sandbox_and_netns(&pod);
                let listeners = scripts.map(|s| s.ports.clone()).unwrap_or_default();
                let protocol = spdy::PORTFORWARD_TUNNEL_PROTOCOL;
                let session = FakeSession::spdy_port_forward(protocol, sandbox, netns, listeners, true);
                return Ok(switching(req, protocol, session));
            }
            let protocol = if offered.is_empty() {
                ""
            } else if offered.iter().any(|p| p == "v4.channel.k8s.io") {
                "v4.channel.k8s.io"
            } else {
                return Err(Box::new(raw_response(StatusCode::FORBIDDEN, "", None)));
            };
            let (sandbox, netns) = sandbox_and_netns(&pod);
            let listeners = ports
                .iter()
                .map(|&port| (port, scripts.and_then(|s| s.ports.get(&port)).map(|s| s.connect(port))))
                .collect();
            let session = FakeSession::port_forward(protocol, sandbox, netns, listeners);
            return Ok(switching(req, protocol, session));
        }

        let attach = sub == "attach";
        let flag = |k: &str| query.first(k).is_some_and(go_bool);
        let tty = flag("tty");
        // The kubelet drops stderr with a tty: the terminal merges it into stdout.
        let (stdin, stdout, stderr) = (flag("stdin"), flag("stdout"), flag("stderr") && !tty);
        let no_streams = !stdin && !stdout && !stderr;
        let no_streams_text = "you must specify at least 1 of stdin, stdout, stderr";
        let (protocol, refused) = if offered.iter().any(|p| p == ChannelProtocol::V5.name()) {
            handshake(req)?;
            // The translator upgrades first; the kubelet's refusal then comes as a status.
            (ChannelProtocol::V5, no_streams.then(|| format!("unable to upgrade connection: {no_streams_text}")))
        } else {
            if no_streams {
                return Err(Box::new(raw_response(StatusCode::BAD_REQUEST, no_streams_text, Some(TEXT))));
            }
            handshake(req)?;
            let chosen = if offered.is_empty() {
                Some(ChannelProtocol::V1)
            } else {
                offered.iter().find_map(|o| KUBELET_EXEC_PROTOCOLS.into_iter().find(|p| p.name() == o))
            };
            match chosen {
                Some(p) => (p, None),
                None => return Err(Box::new(raw_response(StatusCode::FORBIDDEN, "", None))),
            }
        };
        let command = if attach { container_command(&pod, &container) } else { query.all("command") };
        let process =
            Process { namespace, pod: name.to_owned(), container, command, attach, stdin, stdout, stderr, tty };
        let script = scripts
            .and_then(|s| s.exec.get(&Some(process.container.clone())).or_else(|| s.exec.get(&None)))
            .cloned()
            .unwrap_or_else(ExecScript::builtins);
        let handler = script.spawn(&process);
        let name = if offered.is_empty() { "" } else { protocol.name() };
        let session = FakeSession::exec(name, protocol, process, handler, refused);
        Ok(switching(req, name, session))
    }
}

/// The pod's sandbox id and network namespace, as the runtime's messages name them.
fn sandbox_and_netns(pod: &Value) -> (String, String) {
    let uid = pod["metadata"]["uid"].as_str().unwrap_or("");
    let sandbox = crate::exec::hex_id(&format!("sandbox/{uid}"));
    let n = crate::exec::hex_id(&format!("netns/{uid}"));
    let netns = format!("/var/run/netns/cni-{}-{}-{}-{}-{}", &n[..8], &n[8..12], &n[12..16], &n[16..20], &n[20..32]);
    (sandbox, netns)
}

/// `text/plain`, as Go's HTTP server sniffs a plain-text body.
const TEXT: &str = "text/plain; charset=utf-8";

/// The kubelet's reading of the ports: all of them, joined with commas as the API server
/// passes them, each from 1 to 65535.
fn kubelet_ports(ports: &[i32]) -> Result<Vec<u16>, String> {
    if ports.is_empty() {
        return Err("query parameter \"port\" is required".into());
    }
    let joined = ports.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
    let mut out = Vec::with_capacity(ports.len());
    for &p in ports {
        let port = match u16::try_from(p) {
            Ok(port) => port,
            Err(_) if p < 0 => {
                return Err(format!(
                    "unable to parse {joined:?} as a port: strconv.ParseUint: parsing \"{p}\": invalid syntax"
                ));
            }
            Err(_) => {
                return Err(format!(
                    "unable to parse {joined:?} as a port: strconv.ParseUint: parsing \"{p}\": value out of range"
                ));
            }
        };
        if port == 0 {
            return Err(format!("port {joined:?} must be > 0"));
        }
        out.push(port);
    }
    if out.len() > MAX_PORTS {
        return Err(format!("the fake API server forwards at most {MAX_PORTS} ports on one connection"));
    }
    Ok(out)
}

/// The container an exec or attach runs in, as the API server chooses it.
fn choose_container(pod: &Value, pod_name: &str, asked: &str) -> Result<String, String> {
    let names = |field: &str| -> Vec<String> {
        pod["spec"][field]
            .as_array()
            .map(|cs| cs.iter().filter_map(|c| c["name"].as_str()).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let containers = names("containers");
    if asked.is_empty() {
        return match containers.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(format!("a container name must be specified for pod {pod_name}")),
            many => {
                let mut message = format!(
                    "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                    many.join(" ")
                );
                let init = names("initContainers");
                if !init.is_empty() {
                    message.push_str(&format!(" or one of the init containers: [{}]", init.join(" ")));
                }
                Err(message)
            }
        };
    }
    let known =
        containers.iter().chain(&names("initContainers")).chain(&names("ephemeralContainers")).any(|c| c == asked);
    if known { Ok(asked.to_owned()) } else { Err(format!("container {asked} is not valid for pod {pod_name}")) }
}

/// The command and args a container was started with, from the pod's spec.
fn container_command(pod: &Value, container: &str) -> Vec<String> {
    let spec = &pod["spec"];
    let c = ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .filter_map(|f| spec[*f].as_array())
        .flatten()
        .find(|c| c["name"] == container);
    let strings = |v: &Value| -> Vec<String> {
        v.as_array().map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect()).unwrap_or_default()
    };
    c.map(|c| [strings(&c["command"]), strings(&c["args"])].concat()).unwrap_or_default()
}

/// The checks of Go's `x/net/websocket` handshake, after the subprotocol's.
fn handshake(req: &http::Request<Vec<u8>>) -> Result<(), Box<http::Response<Vec<u8>>>> {
    if req.method() != Method::GET {
        return Err(Box::new(raw_response(StatusCode::METHOD_NOT_ALLOWED, "bad method", None)));
    }
    let first = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    if first("sec-websocket-key").is_empty() {
        return Err(Box::new(raw_response(StatusCode::BAD_REQUEST, "mismatch challenge/response", None)));
    }
    if first("sec-websocket-version") != "13" {
        let mut resp = raw_response(StatusCode::BAD_REQUEST, "missing or bad WebSocket Version", None);
        resp.headers_mut().insert("sec-websocket-version", HeaderValue::from_static("13"));
        return Err(Box::new(resp));
    }
    Ok(())
}

/// The `101 Switching Protocols` and the session after it.
fn switching(req: &http::Request<Vec<u8>>, protocol: &str, session: FakeSession) -> Reply {
    let key = req.headers().get("sec-websocket-key").and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut head = http::Response::new(());
    *head.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = head.headers_mut();
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&accept_key(key)) {
        h.insert("sec-websocket-accept", accept);
    }
    if let Ok(p) = HeaderValue::from_str(protocol)
        && !protocol.is_empty()
    {
        h.insert("sec-websocket-protocol", p);
    }
    Reply::Upgrade { head, session: Box::new(session) }
}

/// A response written by hand, as `x/net/websocket` and the kubelet write theirs: a status,
/// a body and at most a content type.
fn raw_response(code: StatusCode, body: &str, content_type: Option<&'static str>) -> http::Response<Vec<u8>> {
    let mut resp = http::Response::new(body.as_bytes().to_vec());
    *resp.status_mut() = code;
    if let Some(ct) = content_type {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    resp
}

/// Whether a comma-separated header has a token, in any case.
fn has_token(headers: &HeaderMap, name: &http::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn joined(headers: &HeaderMap, name: &http::HeaderName) -> String {
    headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(", ")
}

/// The subprotocols offered, in order.
fn offered_protocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A boolean query parameter as the API server converts it: false for `0`, `f` and `false` (in
/// any case), true for anything else, the empty value included.
fn go_bool(value: &str) -> bool {
    !(value == "0" || value.eq_ignore_ascii_case("f") || value.eq_ignore_ascii_case("false"))
}

/// A query string's values, repeated keys kept in order.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: &str) -> Query {
        Query(
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    fn first(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn all(&self, key: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect()
    }
}
