//! Objects the test bodies create, labelled with the suite label so that counted lists see only
//! them (a real cluster adds its own objects, such as the `kube-root-ca.crt` ConfigMap).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::json;

use crate::Ctx;

/// A ConfigMap `name` with the suite label and `data`.
pub fn configmap(ctx: &Ctx, name: &str, data: &[(&str, &str)]) -> ConfigMap {
    let data: serde_json::Map<String, serde_json::Value> = data.iter().map(|(k, v)| ((*k).into(), json!(v))).collect();
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": ctx.labels(&[])},
        "data": data,
    }))
    .expect("a ConfigMap")
}

/// A ConfigMap `name` without the suite label (lists scoped by it do not see it).
pub fn unlabelled_configmap(name: &str) -> ConfigMap {
    serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"x": "y"}}),
    )
    .expect("a ConfigMap")
}

/// A Deployment `name` of one `pause` container with `replicas`, selecting `app=<name>`.
pub fn deployment(ctx: &Ctx, name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": ctx.labels(&[("app", name)])},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10"}]},
            },
        },
    }))
    .expect("a Deployment")
}
