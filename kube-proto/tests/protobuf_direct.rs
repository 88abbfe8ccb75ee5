//! The direct protobuf decoders (generated code that fills the `k8s_openapi` structs without
//! serde, which `Envelope::decode_owned`, `protobuf::from_slice` and the watch decoder use for the
//! built-in kinds) give exactly what the serde path (`Envelope::decode`) gives: for every object
//! of the recorded protobuf exchanges, for every object of the recorded JSON exchanges encoded to
//! protobuf, for a Pod that uses every shape of field, and for random mutations of them that both
//! accept.
#![cfg(feature = "protobuf")]

use std::fmt::Debug;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::authentication::v1::{SelfSubjectReview, TokenRequest};
use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    Binding, ConfigMap, Endpoints, Event, Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod, Secret,
    Service, ServiceAccount,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube_proto::protobuf::{self, Envelope};
use kube_proto::rng::SplitMix64;
use kube_proto::{WatchDecoder, WatchEvent};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

const PB_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/apiserver-v1.36-protobuf");
const JSON_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/apiserver-v1.36");

/// What a comparison found.
#[derive(Debug, Default)]
struct Tally {
    /// Both decoded, to the same value.
    same: usize,
    /// Both refused.
    both_err: usize,
    /// Only the serde path decoded (kind names).
    serde_only: Vec<String>,
    /// Only the direct decoder decoded.
    direct_only: Vec<String>,
}

fn compare_as<T: DeserializeOwned + Debug + 'static>(env: &Envelope<'_>, what: &str, tally: &mut Tally) {
    let serde: Result<T, _> = env.decode();
    let direct: Result<T, _> = env.decode_owned();
    match (serde, direct) {
        // Debug, not PartialEq: a mutated double may be NaN, which equals nothing.
        (Ok(a), Ok(b)) => {
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "{what}: the direct decoder differs from serde");
            tally.same += 1;
        }
        (Err(_), Err(_)) => tally.both_err += 1,
        (Ok(_), Err(e)) => tally.serde_only.push(format!("{what}: {e}")),
        (Err(e), Ok(_)) => tally.direct_only.push(format!("{what}: {e}")),
    }
}

/// Compares the two paths on one envelope, by its kind; `false` for a kind not listed here.
fn compare(env: &Envelope<'_>, what: &str, tally: &mut Tally) -> bool {
    macro_rules! kinds {
        ($($t:ty),* $(,)?) => {
            match (env.api_version, env.kind) {
                $((av, k) if av == <$t as k8s_openapi::Resource>::API_VERSION && k == <$t as k8s_openapi::Resource>::KIND => {
                    compare_as::<$t>(env, what, tally);
                    true
                })*
                _ => false,
            }
        };
    }
    kinds!(
        Pod,
        ConfigMap,
        Namespace,
        Node,
        Secret,
        Service,
        ServiceAccount,
        Endpoints,
        Event,
        Binding,
        PersistentVolume,
        PersistentVolumeClaim,
        Deployment,
        ReplicaSet,
        StatefulSet,
        DaemonSet,
        Scale,
        Job,
        CronJob,
        Lease,
        EndpointSlice,
        Ingress,
        NetworkPolicy,
        PodDisruptionBudget,
        Role,
        RoleBinding,
        ClusterRole,
        TokenRequest,
        SelfSubjectReview,
        SelfSubjectAccessReview,
        CustomResourceDefinition,
        k8s_openapi::api::events::v1::Event,
    )
}

// A minimal protobuf reader, to take the recorded bodies apart.
fn varint(b: &[u8], i: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*i)?;
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The length-delimited fields of a message: (number, bytes).
fn fields(b: &[u8]) -> Vec<(u64, &[u8])> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let Some(tag) = varint(b, &mut i) else { break };
        match tag & 7 {
            0 => {
                varint(b, &mut i);
            }
            1 => i += 8,
            2 => {
                let Some(len) = varint(b, &mut i) else { break };
                let end = i + len as usize;
                if end > b.len() {
                    break;
                }
                out.push((tag >> 3, &b[i..end]));
                i = end;
            }
            5 => i += 4,
            _ => break,
        }
    }
    out
}

#[allow(clippy::disallowed_methods)] // reading the fixtures is the point of these tests
fn fixtures(dir: &str) -> Vec<(String, Value)> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let text = std::fs::read_to_string(format!("{dir}/{n}")).unwrap();
            (n, serde_json::from_str(&text).unwrap())
        })
        .collect()
}

fn b64(v: &Value) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap()
}

/// Every protobuf object of the recorded protobuf exchanges: bodies, list items and watch events,
/// each as an envelope (apiVersion, kind, raw).
fn recorded_objects() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (name, fx) in fixtures(PB_DIR) {
        let resp = &fx["response"];
        let body = match resp["chunks_base64"].as_array() {
            Some(chunks) => chunks.iter().flat_map(b64).collect(),
            None => match resp.get("body_base64") {
                Some(b) => b64(b),
                None => continue,
            },
        };
        let content_type = resp["headers"]["content-type"].as_str().unwrap_or_default();
        if !content_type.starts_with(protobuf::MEDIA_TYPE) {
            continue;
        }
        if resp["chunks_base64"].is_array() {
            // Watch frames: a 4-byte length, then a WatchEvent whose field 2 holds the envelope.
            let mut rest = &body[..];
            while rest.len() >= 4 {
                let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
                let frame = &rest[4..4 + len];
                rest = &rest[4 + len..];
                for (n, ext) in fields(frame) {
                    if n == 2 {
                        for (n, env) in fields(ext) {
                            if n == 1 {
                                out.push((format!("{name} (event)"), env.to_vec()));
                            }
                        }
                    }
                }
            }
            continue;
        }
        let Ok(env) = Envelope::parse(&body) else { continue };
        if let Some(item_kind) = env.kind.strip_suffix("List") {
            for (n, item) in fields(env.raw) {
                if n == 2 {
                    out.push((format!("{name} (item)"), Envelope::encode(env.api_version, item_kind, item)));
                }
            }
        }
        out.push((name, body));
    }
    out
}

/// Every object of the recorded JSON exchanges (bodies, list items, watch events) that protobuf
/// can carry, encoded to protobuf.
fn json_objects() -> Vec<(String, Vec<u8>)> {
    fn collect(v: &Value, name: &str, out: &mut Vec<(String, Vec<u8>)>) {
        match v {
            Value::String(s) if s.contains("apiVersion") => {
                for line in s.lines() {
                    if let Ok(v) = serde_json::from_str::<Value>(line) {
                        collect(&v, name, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| collect(v, name, out)),
            Value::Object(o) => {
                let (av, kind) = (o.get("apiVersion").and_then(Value::as_str), o.get("kind").and_then(Value::as_str));
                if let (Some(av), Some(kind)) = (av, kind) {
                    if let Some(item_kind) = kind.strip_suffix("List")
                        && let Some(items) = o.get("items").and_then(Value::as_array)
                    {
                        for item in items {
                            let mut item = item.clone();
                            item["apiVersion"] = json!(av);
                            item["kind"] = json!(item_kind);
                            collect(&item, name, out);
                        }
                    }
                    if protobuf::is_known(av, kind)
                        && let Ok(body) = protobuf::to_vec(v)
                    {
                        out.push((name.to_owned(), body));
                    }
                }
                o.values().for_each(|v| collect(v, name, out));
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (name, fx) in fixtures(JSON_DIR) {
        collect(&fx, &name, &mut out);
    }
    out
}

/// A Pod with a field of every shape the decoders read: strings, numbers, booleans, lists, maps,
/// quantities, int-or-strings, times, inlined Go structs (volume sources, probe handlers),
/// packed numbers, `FieldsV1`.
fn rich_pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "rich", "namespace": "ns", "uid": "u-1", "resourceVersion": "42", "generation": 3,
            "creationTimestamp": "2026-12-03T07:00:00Z", "deletionTimestamp": "2026-12-03T08:00:00Z",
            "deletionGracePeriodSeconds": 30,
            "labels": {"app": "web", "empty": ""}, "annotations": {"a": "b"},
            "finalizers": ["x/y", ""],
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u-2",
                                 "controller": true, "blockOwnerDeletion": false}],
            "managedFields": [{"manager": "kubectl", "operation": "Apply", "apiVersion": "v1",
                               "time": "2026-12-03T07:00:01Z", "fieldsType": "FieldsV1",
                               "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}}}]
        },
        "spec": {
            "containers": [{
                "name": "c", "image": "nginx", "args": ["a", "", "b"], "command": ["sh"],
                "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}],
                "env": [{"name": "A", "value": "1"},
                        {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "C", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
                        {"name": "D", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k", "optional": true}}}],
                "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "1"}},
                "livenessProbe": {"httpGet": {"path": "/", "port": 8080, "scheme": "HTTP",
                                              "httpHeaders": [{"name": "h", "value": "v"}]},
                                  "initialDelaySeconds": 5, "periodSeconds": 10},
                "readinessProbe": {"tcpSocket": {"port": "http"}, "timeoutSeconds": 1},
                "startupProbe": {"exec": {"command": ["true"]}, "failureThreshold": 30},
                "lifecycle": {"preStop": {"sleep": {"seconds": 3}}},
                "securityContext": {"runAsUser": 1000, "runAsNonRoot": true, "readOnlyRootFilesystem": false,
                                    "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}},
                "volumeMounts": [{"name": "v", "mountPath": "/v", "readOnly": true}]
            }],
            "initContainers": [{"name": "init", "image": "busybox"}],
            "volumes": [
                {"name": "v", "configMap": {"name": "cm", "defaultMode": 420,
                                             "items": [{"key": "k", "path": "p"}]}},
                {"name": "d", "downwardAPI": {"items": [{"path": "labels",
                                                         "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                {"name": "e", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
                {"name": "p", "projected": {"sources": [{"serviceAccountToken": {"path": "t",
                                                                                  "expirationSeconds": 3600}}]}},
                {"name": "s", "secret": {"secretName": "sec", "optional": false}}
            ],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "k", "operator": "In", "values": ["a", "b"]}]}]}},
                "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1,
                    "podAffinityTerm": {"topologyKey": "zone", "labelSelector": {"matchLabels": {"app": "web"}}}}]}},
            "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 60}],
            "securityContext": {"supplementalGroups": [1, 2, 3], "fsGroup": 2000,
                                "sysctls": [{"name": "net.ipv4.ip_forward", "value": "1"}]},
            "nodeSelector": {"disk": "ssd"},
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "hostNetwork": false,
            "dnsConfig": {"nameservers": ["1.1.1.1"], "options": [{"name": "ndots", "value": "2"}]},
            "overhead": {"cpu": "10m"}
        },
        "status": {
            "phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}], "qosClass": "Burstable",
            "startTime": "2026-12-03T07:00:02Z",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-03T07:00:03Z"}],
            "containerStatuses": [{"name": "c", "ready": true, "restartCount": 2, "image": "nginx",
                                   "imageID": "sha", "containerID": "cri://1", "started": true,
                                   "state": {"running": {"startedAt": "2026-12-03T07:00:04Z"}},
                                   "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                                                "startedAt": "2026-12-03T06:00:00Z",
                                                                "finishedAt": "2026-12-03T06:59:59Z"}},
                                   "allocatedResources": {"cpu": "500m"}}]
        }
    })
}

fn others() -> Vec<Value> {
    vec![
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "l", "namespace": "ns"},
               "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15,
                        "acquireTime": "2026-12-03T07:00:00.123456Z", "renewTime": "2026-12-03T07:00:10.654321Z",
                        "leaseTransitions": 4}}),
        json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
               "metadata": {"name": "e", "namespace": "ns"}, "eventTime": "2026-12-03T07:00:00.000001Z",
               "reportingController": "c", "reportingInstance": "i", "action": "A", "reason": "R",
               "regarding": {"kind": "Pod", "name": "p"}, "type": "Normal",
               "series": {"count": 2, "lastObservedTime": "2026-12-03T07:00:05.000002Z"}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
               "data": {"k": "aGVsbG8="}, "type": "Opaque", "immutable": true}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
               "data": {"a": "1", "b": ""}, "binaryData": {"bin": "AAEC"}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"},
               "spec": {"ports": [{"port": 80, "targetPort": "http", "protocol": "TCP"},
                                  {"port": 443, "targetPort": 8443}],
                        "selector": {"app": "web"}, "clusterIPs": ["10.0.0.2"], "type": "ClusterIP"},
               "status": {"conditions": [{"type": "T", "status": "True", "reason": "R", "message": "",
                                          "lastTransitionTime": "2026-12-03T07:00:00Z", "observedGeneration": 2}]}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
               "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                        "template": {"metadata": {"labels": {"app": "web"}},
                                     "spec": {"containers": [{"name": "c", "image": "i"}]}}},
               "status": {"replicas": 3, "readyReplicas": 3,
                          "conditions": [{"type": "Available", "status": "True",
                                          "lastUpdateTime": "2026-12-03T07:00:00Z",
                                          "lastTransitionTime": "2026-12-03T07:00:00Z"}]}}),
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
               "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}], "restartPolicy": "Never"}},
                        "podFailurePolicy": {"rules": [{"action": "Ignore",
                                                        "onExitCodes": {"operator": "In", "values": [1, 2]}}]}}}),
    ]
}

#[test]
fn direct_decoding_equals_serde_on_every_recorded_object() {
    let mut tally = Tally::default();
    let mut objects = recorded_objects();
    let recorded = objects.len();
    objects.extend(json_objects());
    objects.push(("rich pod".to_owned(), protobuf::to_vec(&rich_pod()).unwrap()));
    for (i, v) in others().iter().enumerate() {
        objects.push((format!("other {i}"), protobuf::to_vec(v).unwrap()));
    }
    let mut kinds = std::collections::BTreeSet::new();
    for (name, body) in &objects {
        let env = Envelope::parse(body).unwrap_or_else(|e| panic!("{name}: {e}"));
        if compare(&env, name, &mut tally) {
            kinds.insert(env.kind.to_owned());
        }
    }
    assert!(tally.serde_only.is_empty(), "only serde decoded: {:?}", tally.serde_only);
    assert!(tally.direct_only.is_empty(), "only the direct decoder decoded: {:?}", tally.direct_only);
    assert_eq!(tally.both_err, 0, "recorded objects decode");
    assert!(recorded >= 20, "{recorded} recorded protobuf objects");
    assert!(tally.same >= 100, "{tally:?}");
    for kind in ["Pod", "ConfigMap", "Deployment", "Namespace", "CustomResourceDefinition", "Lease", "Event", "Scale"] {
        assert!(kinds.contains(kind), "no {kind} compared: {kinds:?}");
    }
}

/// A list read as a response (`Api::list`'s way: its items by the generated functions) against
/// the same list read by serde alone.
/// Whether both read it.
fn list_matches<K: DeserializeOwned + PartialEq + Debug + 'static>(body: &[u8], what: &str) -> bool {
    let headers = http::HeaderMap::new();
    let listed = kube_proto::Response::new(http::StatusCode::OK, &headers, body).list::<K>();
    let serde = Envelope::parse(body).unwrap().decode::<kube_proto::ObjectList<K>>();
    match (listed, serde) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "{what}");
            assert_eq!(a.items.capacity(), a.items.len(), "{what}: no spare capacity");
            true
        }
        (Err(_), Err(_)) => false,
        (a, b) => panic!("{what}: listed {a:?}, serde {b:?}"),
    }
}

/// Lists with fields duplicated, removed or swapped at any depth (items, their fields, the
/// list's metadata): `Api::list`'s reading always equals serde's.
#[test]
fn mutated_lists_read_as_serde_reads_them() {
    let mut bodies: Vec<(String, Vec<u8>)> =
        recorded_objects().into_iter().filter(|(_, b)| Envelope::parse(b).unwrap().kind.ends_with("List")).collect();
    let pod = |name: &str| {
        let mut p = rich_pod();
        p["metadata"]["name"] = json!(name);
        p
    };
    let pods = json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "9", "continue": "c"},
        "items": [pod("a"), pod("b"), pod("c")]});
    bodies.push(("rich pods".to_owned(), protobuf::to_vec(&pods).unwrap()));
    let mut rng = Rng(SplitMix64::new(0x1157));
    let (mut both, mut rounds) = (0, 0);
    for round in 0..3_000 {
        let (name, body) = &bodies[rng.below(bodies.len())];
        let env = Envelope::parse(body).unwrap();
        let mut raw = env.raw.to_vec();
        for _ in 0..1 + rng.below(3) {
            raw = mutate_fields(&raw, &mut rng, 0);
        }
        let mutated = Envelope::encode(env.api_version, env.kind, &raw);
        let what = format!("{name}, round {round}");
        rounds += 1;
        both += usize::from(match env.kind {
            "PodList" => list_matches::<Pod>(&mutated, &what),
            "ConfigMapList" => list_matches::<ConfigMap>(&mutated, &what),
            "NamespaceList" => list_matches::<Namespace>(&mutated, &what),
            other => panic!("{name}: no item type for {other}"),
        });
    }
    assert!(both > rounds / 2, "too few mutated lists decode for the test to mean anything: {both} of {rounds}");
}

#[test]
fn recorded_lists_read_as_serde_reads_them() {
    let mut lists = 0;
    let mut bodies = recorded_objects();
    bodies.extend(json_objects());
    for (name, body) in &bodies {
        let env = Envelope::parse(body).unwrap();
        let before = lists;
        lists += 1;
        match env.kind {
            "PodList" => assert!(list_matches::<Pod>(body, name)),
            "ConfigMapList" => assert!(list_matches::<ConfigMap>(body, name)),
            "NamespaceList" => assert!(list_matches::<Namespace>(body, name)),
            "EventList" => assert!(list_matches::<Event>(body, name)),
            "DeploymentList" => assert!(list_matches::<Deployment>(body, name)),
            "SecretList" => assert!(list_matches::<Secret>(body, name)),
            "NodeList" => assert!(list_matches::<Node>(body, name)),
            "ServiceList" => assert!(list_matches::<Service>(body, name)),
            _ => lists = before,
        }
    }
    assert!(lists >= 3, "{lists} lists compared");
}

#[test]
fn the_rich_pod_decodes_directly_with_every_field() {
    let pod: Pod = protobuf::from_slice(&protobuf::to_vec(&rich_pod()).unwrap()).unwrap();
    let spec = pod.spec.as_ref().unwrap();
    let c = &spec.containers[0];
    assert_eq!(c.args.as_deref(), Some(&["a".to_owned(), String::new(), "b".to_owned()][..]));
    // Each list is sized for its run of fields before it is filled: no spare capacity.
    assert_eq!(c.args.as_ref().unwrap().capacity(), 3);
    assert_eq!(spec.containers.capacity(), spec.containers.len());
    assert_eq!(c.resources.as_ref().unwrap().limits.as_ref().unwrap()["memory"].0, "128Mi");
    let probe = c.liveness_probe.as_ref().unwrap();
    assert_eq!(
        probe.http_get.as_ref().unwrap().port,
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8080)
    );
    let volumes = spec.volumes.as_ref().unwrap();
    assert_eq!(volumes.capacity(), volumes.len());
    assert!(volumes[1].downward_api.is_some(), "an inlined volume source with an acronym in its name");
    assert_eq!(spec.security_context.as_ref().unwrap().supplemental_groups.as_deref(), Some(&[1, 2, 3][..]));
    let meta = &pod.metadata;
    assert_eq!(meta.labels.as_ref().unwrap()["empty"], "");
    assert_eq!(meta.creation_timestamp.as_ref().unwrap().0.as_second(), 1_796_281_200);
    let status = pod.status.as_ref().unwrap();
    assert_eq!(status.container_statuses.as_ref().unwrap()[0].restart_count, 2);
    let lease: Lease = protobuf::from_slice(&protobuf::to_vec(&others()[0]).unwrap()).unwrap();
    assert_eq!(lease.spec.unwrap().renew_time.unwrap().0.subsec_nanosecond(), 654_321_000);
}

/// The core's seeded generator, drawing indexes and bytes.
struct Rng(SplitMix64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn below(&mut self, n: usize) -> usize {
        self.0.below(n as u64) as usize
    }
}

/// The fields of a message as spans `(start, payload start, end, wire type)`, when all parse.
fn spans(b: &[u8]) -> Option<Vec<(usize, usize, usize, u64)>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        let tag = varint(b, &mut i)?;
        let payload = match tag & 7 {
            0 => {
                let p = i;
                varint(b, &mut i)?;
                p
            }
            1 => {
                i += 8;
                i - 8
            }
            2 => {
                let len = varint(b, &mut i)? as usize;
                i += len;
                i - len
            }
            5 => {
                i += 4;
                i - 4
            }
            _ => return None,
        };
        if i > b.len() {
            return None;
        }
        out.push((start, payload, i, tag & 7));
    }
    Some(out)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// One edit of a message's fields, at its level or (re-encoding the lengths) inside one of its
/// nested messages: a field duplicated elsewhere, removed, or two fields swapped. These keep the
/// bytes well-formed, and make what random bytes rarely do: a repeated field split in two runs,
/// a field given twice, fields out of order.
fn mutate_fields(b: &[u8], rng: &mut Rng, depth: u32) -> Vec<u8> {
    let Some(sp) = spans(b).filter(|s| !s.is_empty()) else { return b.to_vec() };
    let pick = |rng: &mut Rng| sp[rng.below(sp.len())];
    let nested: Vec<_> =
        sp.iter().filter(|(_, p, e, w)| *w == 2 && spans(&b[*p..*e]).is_some_and(|s| !s.is_empty())).collect();
    let op = rng.below(if depth < 8 && !nested.is_empty() { 6 } else { 3 });
    let mut out = Vec::with_capacity(b.len() + 64);
    match op {
        0 => {
            let (s, _, e, _) = pick(rng);
            let (at, _, _, _) = pick(rng);
            out.extend_from_slice(&b[..at]);
            out.extend_from_slice(&b[s..e]);
            out.extend_from_slice(&b[at..]);
        }
        1 => {
            let (s, _, e, _) = pick(rng);
            out.extend_from_slice(&b[..s]);
            out.extend_from_slice(&b[e..]);
        }
        2 => {
            let (mut x, mut y) = (pick(rng), pick(rng));
            if x.0 > y.0 {
                std::mem::swap(&mut x, &mut y);
            }
            if x.2 > y.0 {
                return b.to_vec();
            }
            out.extend_from_slice(&b[..x.0]);
            out.extend_from_slice(&b[y.0..y.2]);
            out.extend_from_slice(&b[x.2..y.0]);
            out.extend_from_slice(&b[x.0..x.2]);
            out.extend_from_slice(&b[y.2..]);
        }
        _ => {
            let &&(s, p, e, _) = &nested[rng.below(nested.len())];
            let mut i = s;
            let tag = varint(b, &mut i).expect("parsed");
            let inner = mutate_fields(&b[p..e], rng, depth + 1);
            out.extend_from_slice(&b[..s]);
            put_varint(&mut out, tag);
            put_varint(&mut out, inner.len() as u64);
            out.extend_from_slice(&inner);
            out.extend_from_slice(&b[e..]);
        }
    }
    out
}

/// Random edits of an object's bytes (the envelope around them kept whole): fields duplicated,
/// removed or swapped at any depth, bytes overwritten, removed or duplicated; wherever both
/// decoders accept the result, they agree.
#[test]
fn mutations_that_both_accept_decode_the_same() {
    let mut bodies: Vec<(String, Vec<u8>)> = recorded_objects()
        .into_iter()
        .filter(|(n, _)| n.contains("pod") || n.contains("deployment") || n.contains("crd") || n.contains("configmap"))
        .collect();
    bodies.push(("rich pod".to_owned(), protobuf::to_vec(&rich_pod()).unwrap()));
    for (i, v) in others().iter().enumerate() {
        bodies.push((format!("other {i}"), protobuf::to_vec(v).unwrap()));
    }
    let mut rng = Rng(SplitMix64::new(0x5eed));
    let mut tally = Tally::default();
    for round in 0..20_000 {
        let (name, body) = &bodies[rng.below(bodies.len())];
        let env = Envelope::parse(body).unwrap();
        if env.kind.ends_with("List") || !protobuf::is_known(env.api_version, env.kind) {
            continue;
        }
        let mut raw = env.raw.to_vec();
        for _ in 0..1 + rng.below(3) {
            if raw.is_empty() {
                break;
            }
            if rng.below(3) > 0 {
                raw = mutate_fields(&raw, &mut rng, 0);
                continue;
            }
            let at = rng.below(raw.len());
            match rng.below(4) {
                0 => raw[at] = rng.next() as u8,
                1 => {
                    let end = (at + 1 + rng.below(16)).min(raw.len());
                    raw.drain(at..end);
                }
                2 => {
                    let end = (at + 1 + rng.below(32)).min(raw.len());
                    let copy = raw[at..end].to_vec();
                    let to = rng.below(raw.len());
                    raw.splice(to..to, copy);
                }
                _ => raw[at] ^= 1 << rng.below(8),
            }
        }
        let mutated = Envelope::encode(env.api_version, env.kind, &raw);
        let env = Envelope::parse(&mutated).unwrap();
        compare(&env, &format!("{name}, round {round}"), &mut tally);
    }
    eprintln!(
        "mutations: {} decoded the same by both, {} refused by both, {} by the direct decoder only, {} by serde only",
        tally.same,
        tally.both_err,
        tally.serde_only.len(),
        tally.direct_only.len()
    );
    assert!(tally.same > 5_000, "too few mutations decode for the test to mean anything: {}", tally.same);
}

/// Per frame of a watch stream: the event type and the object's envelope.
type Frames = Vec<(String, Vec<u8>)>;

/// The recorded watch streams: name, body, frames.
fn recorded_streams() -> Vec<(String, Vec<u8>, Frames)> {
    let mut out = Vec::new();
    for (name, fx) in fixtures(PB_DIR) {
        let Some(chunks) = fx["response"]["chunks_base64"].as_array() else { continue };
        if !fx["response"]["headers"]["content-type"].as_str().unwrap_or_default().starts_with(protobuf::MEDIA_TYPE) {
            continue;
        }
        let body: Vec<u8> = chunks.iter().flat_map(b64).collect();
        let mut frames = Vec::new();
        let mut rest = &body[..];
        while rest.len() >= 4 {
            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            let frame = &rest[4..4 + len];
            rest = &rest[4 + len..];
            let (mut ty, mut env) = (String::new(), Vec::new());
            for (n, b) in fields(frame) {
                match n {
                    1 => ty = String::from_utf8(b.to_vec()).unwrap(),
                    2 => {
                        env = fields(b).into_iter().find(|(n, _)| *n == 1).map(|(_, e)| e.to_vec()).unwrap_or_default()
                    }
                    _ => {}
                }
            }
            frames.push((ty, env));
        }
        out.push((name, body, frames));
    }
    out
}

fn stream_matches<K: DeserializeOwned + PartialEq + Debug + 'static>(
    name: &str,
    body: &[u8],
    frames: &[(String, Vec<u8>)],
) -> usize {
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, protobuf::WATCH_MEDIA_TYPE.parse().unwrap());
    let mut d = WatchDecoder::<K>::new();
    d.use_content_type(&headers);
    let mut compared = 0;
    for chunk in body.chunks(777) {
        d.push(chunk);
    }
    for (ty, env) in frames {
        let event = d.next_event().unwrap_or_else(|| panic!("{name}: fewer events than frames"));
        if !matches!(ty.as_str(), "ADDED" | "MODIFIED" | "DELETED") {
            continue;
        }
        let want: K = Envelope::parse(env).unwrap().decode().unwrap();
        match event.unwrap_or_else(|e| panic!("{name}: {e}")) {
            WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => assert_eq!(o, want, "{name}"),
            other => panic!("{name}: {other:?} for a {ty} frame"),
        }
        compared += 1;
    }
    compared
}

/// The watch decoder reads the recorded protobuf watch streams (through the direct decoders) to
/// the objects serde reads from the same frames.
#[test]
fn watch_streams_decode_the_same() {
    let mut compared = 0;
    for (name, body, frames) in recorded_streams() {
        let kind = frames
            .iter()
            .filter(|(ty, _)| ty != "BOOKMARK" && ty != "ERROR")
            .find_map(|(_, env)| Envelope::parse(env).ok().map(|e| e.kind.to_owned()))
            .unwrap_or_default();
        compared += match kind.as_str() {
            "Pod" => stream_matches::<Pod>(&name, &body, &frames),
            "ConfigMap" => stream_matches::<ConfigMap>(&name, &body, &frames),
            _ => 0,
        };
    }
    assert!(compared >= 5, "{compared} watch events compared");
}
