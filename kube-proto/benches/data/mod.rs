//! Deterministic benchmark data: realistic Pods (typed `k8s_openapi` structs) and a watch stream
//! built by serialising them. No randomness: everything varies with the index only.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, ContainerState, ContainerStateRunning,
    ContainerStatus, EmptyDirVolumeSource, EnvVar, EnvVarSource, HTTPGetAction, HostIP, KeyToPath, ObjectFieldSelector,
    Pod, PodCondition, PodIP, PodSecurityContext, PodSpec, PodStatus, Probe, ResourceRequirements, SecretVolumeSource,
    SecurityContext, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

/// Number of events in the watch stream.
pub const EVENTS: usize = 10_000;
/// Size of the chunks the watch body is delivered in.
pub const CHUNK: usize = 16 * 1024;

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn quantities(cpu: &str, mem: &str) -> Option<BTreeMap<String, Quantity>> {
    Some([("cpu".to_owned(), Quantity(cpu.to_owned())), ("memory".to_owned(), Quantity(mem.to_owned()))].into())
}

fn time(secs: i64) -> Time {
    Time(Timestamp::from_second(1_700_000_000 + secs).expect("in range"))
}

/// A small fixed-step LCG (Knuth's MMIX constants), used only to vary hex ids.
fn lcg(x: u64) -> u64 {
    x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407)
}

fn hex_id(seed: u64, len: usize) -> String {
    let mut x = lcg(seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut out = String::with_capacity(len);
    while out.len() < len {
        x = lcg(x);
        out.push_str(&format!("{:016x}", x));
    }
    out.truncate(len);
    out
}

fn uid(seed: u64) -> String {
    let h = hex_id(seed, 32);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

fn app_container(i: usize) -> Container {
    let env = (0..8)
        .map(|k| EnvVar {
            name: format!("FEATURE_FLAG_{k}"),
            value: Some(format!("value-{}-{k}", i % 7)),
            ..Default::default()
        })
        .chain([
            EnvVar {
                name: "POD_NAME".into(),
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector { api_version: s("v1"), field_path: "metadata.name".into() }),
                    ..Default::default()
                }),
                ..Default::default()
            },
            EnvVar {
                name: "POD_NAMESPACE".into(),
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        api_version: s("v1"),
                        field_path: "metadata.namespace".into(),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
            EnvVar {
                name: "DATABASE_URL".into(),
                value: s("postgres://db.default.svc.cluster.local:5432/app"),
                ..Default::default()
            },
        ])
        .collect();
    let probe = |path: &str, delay| Probe {
        http_get: Some(HTTPGetAction {
            path: s(path),
            port: IntOrString::String("http".into()),
            scheme: s("HTTP"),
            ..Default::default()
        }),
        initial_delay_seconds: Some(delay),
        period_seconds: Some(10),
        timeout_seconds: Some(1),
        success_threshold: Some(1),
        failure_threshold: Some(3),
        ..Default::default()
    };
    Container {
        name: "web".into(),
        image: Some(format!("registry.example.com/team/web-frontend:v1.{}.{}", i % 13, i % 97)),
        image_pull_policy: s("IfNotPresent"),
        command: Some(vec!["/usr/local/bin/web".into()]),
        args: Some(vec![
            "--port=8080".into(),
            "--metrics-port=9090".into(),
            "--log-level=info".into(),
            "--config=/etc/web/config.yaml".into(),
        ]),
        env: Some(env),
        ports: Some(vec![
            ContainerPort { name: s("http"), container_port: 8080, protocol: s("TCP"), ..Default::default() },
            ContainerPort { name: s("metrics"), container_port: 9090, protocol: s("TCP"), ..Default::default() },
        ]),
        resources: Some(ResourceRequirements {
            requests: quantities("250m", "256Mi"),
            limits: quantities("1", "512Mi"),
            ..Default::default()
        }),
        liveness_probe: Some(probe("/healthz", 15)),
        readiness_probe: Some(probe("/ready", 5)),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "config".into(),
                mount_path: "/etc/web".into(),
                read_only: Some(true),
                ..Default::default()
            },
            VolumeMount {
                name: "tls".into(),
                mount_path: "/etc/tls".into(),
                read_only: Some(true),
                ..Default::default()
            },
            VolumeMount { name: "cache".into(), mount_path: "/var/cache/web".into(), ..Default::default() },
            VolumeMount {
                name: "kube-api-access-x7k2p".into(),
                mount_path: "/var/run/secrets/kubernetes.io/serviceaccount".into(),
                read_only: Some(true),
                ..Default::default()
            },
        ]),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Default::default() }),
            ..Default::default()
        }),
        termination_message_path: s("/dev/termination-log"),
        termination_message_policy: s("File"),
        ..Default::default()
    }
}

fn sidecar(i: usize) -> Container {
    Container {
        name: "log-shipper".into(),
        image: Some(format!("registry.example.com/infra/log-shipper:2.{}.0", i % 5)),
        image_pull_policy: s("IfNotPresent"),
        args: Some(vec!["--input=/var/log/web".into(), "--output=loki.monitoring.svc:3100".into()]),
        resources: Some(ResourceRequirements {
            requests: quantities("50m", "64Mi"),
            limits: quantities("200m", "128Mi"),
            ..Default::default()
        }),
        volume_mounts: Some(vec![VolumeMount {
            name: "cache".into(),
            mount_path: "/var/log/web".into(),
            ..Default::default()
        }]),
        termination_message_path: s("/dev/termination-log"),
        termination_message_policy: s("File"),
        ..Default::default()
    }
}

/// A realistic web Pod: two containers, env, probes, volumes, labels, annotations, owner
/// reference, tolerations. With `status`, also what the server adds (uid, resourceVersion,
/// timestamps, node, IPs, conditions, container statuses).
pub fn pod(i: usize, status: bool) -> Pod {
    let hash = hex_id(i as u64 / 50, 10);
    let suffix = &hex_id(i as u64, 5);
    let name = format!("web-frontend-{hash}-{suffix}");
    let mut metadata = ObjectMeta {
        name: Some(name.clone()),
        namespace: s("default"),
        labels: Some(map(&[
            ("app", "web"),
            ("app.kubernetes.io/name", "web-frontend"),
            ("app.kubernetes.io/instance", "web-frontend-prod"),
            ("app.kubernetes.io/version", "1.27.3"),
            ("app.kubernetes.io/component", "frontend"),
            ("app.kubernetes.io/part-of", "storefront"),
            ("app.kubernetes.io/managed-by", "bench"),
            ("pod-template-hash", &hash),
        ])),
        annotations: Some(map(&[
            ("prometheus.io/scrape", "true"),
            ("prometheus.io/port", "9090"),
            ("prometheus.io/path", "/metrics"),
            ("kubectl.kubernetes.io/default-container", "web"),
            ("checksum/config", &hex_id(i as u64 / 100 + 7, 64)),
            ("example.com/owner-team", "storefront-platform"),
        ])),
        ..Default::default()
    };
    let spec = PodSpec {
        // The watched Pods (~5 KiB with their status) run the app alone; the applied one (~4 KiB)
        // has a log-shipping sidecar too.
        containers: if status { vec![app_container(i)] } else { vec![app_container(i), sidecar(i)] },
        volumes: Some(vec![
            Volume {
                name: "config".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: "web-frontend-config".into(),
                    items: Some(vec![KeyToPath {
                        key: "config.yaml".into(),
                        path: "config.yaml".into(),
                        ..Default::default()
                    }]),
                    default_mode: Some(0o644),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Volume {
                name: "tls".into(),
                secret: Some(SecretVolumeSource {
                    secret_name: s("web-frontend-tls"),
                    default_mode: Some(0o400),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Volume {
                name: "cache".into(),
                empty_dir: Some(EmptyDirVolumeSource {
                    size_limit: Some(Quantity("1Gi".into())),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ]),
        node_selector: Some(map(&[("kubernetes.io/os", "linux"), ("node.kubernetes.io/instance-type", "m5.xlarge")])),
        tolerations: Some(vec![
            Toleration {
                key: s("node.kubernetes.io/not-ready"),
                operator: s("Exists"),
                effect: s("NoExecute"),
                toleration_seconds: Some(300),
                ..Default::default()
            },
            Toleration {
                key: s("node.kubernetes.io/unreachable"),
                operator: s("Exists"),
                effect: s("NoExecute"),
                toleration_seconds: Some(300),
                ..Default::default()
            },
        ]),
        security_context: Some(PodSecurityContext {
            run_as_user: Some(10001),
            fs_group: Some(10001),
            ..Default::default()
        }),
        service_account_name: s("web-frontend"),
        restart_policy: s("Always"),
        dns_policy: s("ClusterFirst"),
        termination_grace_period_seconds: Some(30),
        scheduler_name: s("default-scheduler"),
        priority_class_name: s("storefront-high"),
        enable_service_links: Some(false),
        ..Default::default()
    };
    if !status {
        return Pod { metadata, spec: Some(spec), status: None };
    }
    let spec = PodSpec { node_name: Some(format!("ip-10-0-{}-{}.ec2.internal", i % 4, 10 + i % 200)), ..spec };
    metadata.uid = Some(uid(i as u64));
    metadata.resource_version = Some((1_000_000 + 7 * i).to_string());
    metadata.creation_timestamp = Some(time(i as i64));
    metadata.generate_name = Some(format!("web-frontend-{hash}-"));
    metadata.owner_references = Some(vec![OwnerReference {
        api_version: "apps/v1".into(),
        kind: "ReplicaSet".into(),
        name: format!("web-frontend-{hash}"),
        uid: uid(i as u64 / 50 + 1_000_000),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }]);
    let ip = format!("10.1.{}.{}", (i / 250) % 256, i % 250 + 2);
    let condition = |ty: &str, at| PodCondition {
        type_: ty.into(),
        status: "True".into(),
        last_transition_time: Some(time(at)),
        ..Default::default()
    };
    let container_status = |c: &Container, started| ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone().unwrap_or_default(),
        image_id: format!("registry.example.com/team/{}@sha256:{}", c.name, hex_id(started as u64, 64)),
        container_id: Some(format!("containerd://{}", hex_id(i as u64 * 3 + started as u64, 64))),
        ready: true,
        started: Some(true),
        restart_count: (i % 3) as i32,
        state: Some(ContainerState {
            running: Some(ContainerStateRunning { started_at: Some(time(started)) }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let t = i as i64;
    let status = PodStatus {
        phase: s("Running"),
        conditions: Some(vec![
            condition("PodReadyToStartContainers", t + 3),
            condition("Initialized", t + 1),
            condition("Ready", t + 9),
            condition("ContainersReady", t + 9),
            condition("PodScheduled", t),
        ]),
        host_ip: s("10.0.3.17"),
        host_ips: Some(vec![HostIP { ip: "10.0.3.17".into() }]),
        pod_ip: Some(ip.clone()),
        pod_ips: Some(vec![PodIP { ip }]),
        start_time: Some(time(t)),
        container_statuses: Some(spec.containers.iter().map(|c| container_status(c, t + 4)).collect()),
        qos_class: s("Burstable"),
        ..Default::default()
    };
    Pod { metadata, spec: Some(spec), status: Some(status) }
}

/// The watch body: `EVENTS` newline-terminated `MODIFIED` events, the line boundaries within it,
/// and the byte ranges of each event's object.
pub struct Stream {
    pub body: Vec<u8>,
    pub lines: Vec<(usize, usize)>,
    pub objects: Vec<(usize, usize)>,
}

pub fn watch_stream() -> Stream {
    const PREFIX: &[u8] = br#"{"type":"MODIFIED","object":"#;
    let mut body = Vec::new();
    let mut lines = Vec::with_capacity(EVENTS);
    let mut objects = Vec::with_capacity(EVENTS);
    for i in 0..EVENTS {
        let start = body.len();
        body.extend_from_slice(PREFIX);
        let obj = body.len();
        let mut p = pod(i, true);
        p.metadata.managed_fields = None;
        // Serialise with apiVersion and kind, as the server sends them.
        serde_json::to_writer(&mut body, &p).expect("serialize");
        objects.push((obj, body.len()));
        body.push(b'}');
        lines.push((start, body.len()));
        body.push(b'\n');
    }
    Stream { body, lines, objects }
}
