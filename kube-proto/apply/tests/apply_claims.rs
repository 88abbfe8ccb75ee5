//! Applying a k8s-openapi struct claims fields its field manager never set (the required fields
//! it serializes whatever they hold: an empty selector conflicts with its owner, the atomic
//! selector being one field); applying an apply configuration claims exactly the fields set.
//! Shown from the `managedFields` the fake API server records, for several kinds.

mod support;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec, Deployment, DeploymentSpec, StatefulSet, StatefulSetSpec};
use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube_proto_apply::api::apps::v1 as apps;
use kube_proto_apply::api::autoscaling::v2 as autoscaling;
use kube_proto_apply::api::batch::v1 as batch;
use kube_proto_apply::api::core::v1 as core;
use kube_proto_apply::apimachinery::pkg::apis::meta::v1 as meta;
use serde_json::{Value, json};
use support::{Fake, owned};

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta { name: Some(name.into()), namespace: Some("default".into()), ..ObjectMeta::default() }
}

fn selector() -> meta::LabelSelectorApplyConfiguration {
    meta::LabelSelectorApplyConfiguration::new().with_match_label("app", "web")
}

fn template() -> core::PodTemplateSpecApplyConfiguration {
    core::PodTemplateSpecApplyConfiguration::new()
        .with_metadata(meta::ObjectMetaApplyConfiguration::new().with_label("app", "web"))
        .with_spec(
            core::PodSpecApplyConfiguration::new()
                .with_restart_policy("Never")
                .with_container(core::ContainerApplyConfiguration::new().with_name("app").with_image("nginx:1.29")),
        )
}

/// What the tuning manager owns, when it meant to own `spec.<field>` alone.
const ONLY: fn(&str) -> Value = |field| json!({"f:spec": {format!("f:{field}"): {}}});

#[test]
fn deployment_replicas_alone() {
    let mut fake = Fake::new();
    for name in ["typed", "config"] {
        let full = apps::DeploymentApplyConfiguration::new(name, "default").with_spec(
            apps::DeploymentSpecApplyConfiguration::new().with_selector(selector()).with_template(template()),
        );
        fake.apply::<Deployment>("default", name, &full, "owner", false).unwrap();
    }

    let config = apps::DeploymentApplyConfiguration::new("config", "default")
        .with_spec(apps::DeploymentSpecApplyConfiguration::new().with_replicas(5));
    let obj = fake.apply::<Deployment>("default", "config", &config, "scaler", false).unwrap();
    assert_eq!(owned(&obj, "scaler", ""), ONLY("replicas"));
    assert_eq!(obj["spec"]["replicas"], 5);
    assert_eq!(obj["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.29");

    // The struct's required `selector` goes out as `{}`: the selector is atomic (one field), so
    // `{}` would replace the owner's, a conflict (as on the real server).
    let typed = Deployment {
        metadata: meta("typed"),
        spec: DeploymentSpec { replicas: Some(5), ..DeploymentSpec::default() },
        ..Deployment::default()
    };
    selector_conflict(fake.apply::<Deployment>("default", "typed", &typed, "scaler", false));

    // With the selector repeated to avoid that, the scaler co-owns it and the template.
    let typed = Deployment {
        spec: DeploymentSpec { replicas: Some(5), selector: typed_selector(), ..DeploymentSpec::default() },
        ..typed
    };
    let obj = fake.apply::<Deployment>("default", "typed", &typed, "scaler", false).unwrap();
    let claimed = owned(&obj, "scaler", "");
    assert_ne!(claimed, ONLY("replicas"), "the typed struct claims more than replicas");
    assert_eq!(claimed["f:spec"]["f:selector"], json!({}), "{claimed}");
    assert_eq!(claimed["f:spec"]["f:template"], json!({}), "{claimed}");
}

/// The selector of [`selector`] as k8s-openapi's type.
fn typed_selector() -> LabelSelector {
    LabelSelector { match_labels: Some([("app".to_owned(), "web".to_owned())].into()), ..LabelSelector::default() }
}

/// A 409 naming `.spec.selector`, the owner's.
fn selector_conflict(res: Result<Value, (u16, Value)>) {
    let (code, status) = res.expect_err("a conflict");
    assert_eq!(code, 409, "{status}");
    assert_eq!(status["message"], "Apply failed with 1 conflict: conflict with \"owner\": .spec.selector", "{status}");
}

#[test]
fn statefulset_and_daemonset_claim_selector_and_template() {
    let mut fake = Fake::new();
    let sts = apps::StatefulSetApplyConfiguration::new("db", "default").with_spec(
        apps::StatefulSetSpecApplyConfiguration::new()
            .with_service_name("db")
            .with_selector(selector())
            .with_template(template()),
    );
    fake.apply::<StatefulSet>("default", "db", &sts, "owner", false).unwrap();
    let typed = StatefulSet {
        metadata: meta("db"),
        spec: StatefulSetSpec { replicas: Some(2), ..StatefulSetSpec::default() },
        ..StatefulSet::default()
    };
    selector_conflict(fake.apply::<StatefulSet>("default", "db", &typed, "typed", false));
    let typed = StatefulSet {
        spec: StatefulSetSpec { replicas: Some(2), selector: typed_selector(), ..StatefulSetSpec::default() },
        ..typed
    };
    let obj = fake.apply::<StatefulSet>("default", "db", &typed, "typed", false).unwrap();
    assert!(owned(&obj, "typed", "")["f:spec"].get("f:template").is_some());
    let config = apps::StatefulSetApplyConfiguration::new("db", "default")
        .with_spec(apps::StatefulSetSpecApplyConfiguration::new().with_replicas(2));
    let obj = fake.apply::<StatefulSet>("default", "db", &config, "config", false).unwrap();
    assert_eq!(owned(&obj, "config", ""), ONLY("replicas"));

    let ds = apps::DaemonSetApplyConfiguration::new("agent", "default")
        .with_spec(apps::DaemonSetSpecApplyConfiguration::new().with_selector(selector()).with_template(template()));
    fake.apply::<DaemonSet>("default", "agent", &ds, "owner", false).unwrap();
    let typed = DaemonSet {
        metadata: meta("agent"),
        spec: DaemonSetSpec { min_ready_seconds: Some(10), ..DaemonSetSpec::default() },
        ..DaemonSet::default()
    };
    selector_conflict(fake.apply::<DaemonSet>("default", "agent", &typed, "typed", false));
    let typed = DaemonSet {
        spec: DaemonSetSpec { min_ready_seconds: Some(10), selector: typed_selector(), ..DaemonSetSpec::default() },
        ..typed
    };
    let obj = fake.apply::<DaemonSet>("default", "agent", &typed, "typed", false).unwrap();
    assert!(owned(&obj, "typed", "")["f:spec"].get("f:selector").is_some());
    let config = apps::DaemonSetApplyConfiguration::new("agent", "default")
        .with_spec(apps::DaemonSetSpecApplyConfiguration::new().with_min_ready_seconds(10));
    let obj = fake.apply::<DaemonSet>("default", "agent", &config, "config", false).unwrap();
    assert_eq!(owned(&obj, "config", ""), ONLY("minReadySeconds"));
}

#[test]
fn job_template_is_claimed_by_the_struct() {
    let mut fake = Fake::new();
    let job = batch::JobApplyConfiguration::new("once", "default")
        .with_spec(batch::JobSpecApplyConfiguration::new().with_template(template()));
    fake.apply::<Job>("default", "once", &job, "owner", false).unwrap();
    let typed = Job {
        metadata: meta("once"),
        spec: Some(JobSpec { active_deadline_seconds: Some(600), ..JobSpec::default() }),
        ..Job::default()
    };
    let obj = fake.apply::<Job>("default", "once", &typed, "typed", false).unwrap();
    assert!(owned(&obj, "typed", "")["f:spec"].get("f:template").is_some());
    let config = batch::JobApplyConfiguration::new("once", "default")
        .with_spec(batch::JobSpecApplyConfiguration::new().with_active_deadline_seconds(600));
    let obj = fake.apply::<Job>("default", "once", &config, "config", false).unwrap();
    assert_eq!(owned(&obj, "config", ""), ONLY("activeDeadlineSeconds"));
}

/// A required scalar is worse: the struct sends `maxReplicas: 0` and a blank target, which
/// conflicts with their owner (and, forced, would overwrite them).
#[test]
fn hpa_min_replicas_alone() {
    let mut fake = Fake::new();
    let full = autoscaling::HorizontalPodAutoscalerApplyConfiguration::new("web", "default").with_spec(
        autoscaling::HorizontalPodAutoscalerSpecApplyConfiguration::new().with_max_replicas(10).with_scale_target_ref(
            autoscaling::CrossVersionObjectReferenceApplyConfiguration::new()
                .with_api_version("apps/v1")
                .with_kind("Deployment")
                .with_name("web"),
        ),
    );
    fake.apply::<HorizontalPodAutoscaler>("default", "web", &full, "owner", false).unwrap();

    let typed = HorizontalPodAutoscaler {
        metadata: meta("web"),
        spec: HorizontalPodAutoscalerSpec { min_replicas: Some(2), ..HorizontalPodAutoscalerSpec::default() },
        ..HorizontalPodAutoscaler::default()
    };
    let (code, status) = fake.apply::<HorizontalPodAutoscaler>("default", "web", &typed, "tuner", false).unwrap_err();
    assert_eq!(code, 409, "{status}");
    assert!(status["message"].as_str().unwrap_or("").contains(".spec.maxReplicas"), "{status}");

    let config = autoscaling::HorizontalPodAutoscalerApplyConfiguration::new("web", "default")
        .with_spec(autoscaling::HorizontalPodAutoscalerSpecApplyConfiguration::new().with_min_replicas(2));
    let obj = fake.apply::<HorizontalPodAutoscaler>("default", "web", &config, "tuner", false).unwrap();
    assert_eq!(owned(&obj, "tuner", ""), ONLY("minReplicas"));
    assert_eq!(obj["spec"]["maxReplicas"], 10);
}

#[test]
fn configurations_serialize_only_what_is_set() {
    let d = apps::DeploymentApplyConfiguration::new("web", "default").with_label("app", "web").with_spec(
        apps::DeploymentSpecApplyConfiguration::new().with_replicas(3).with_template(
            core::PodTemplateSpecApplyConfiguration::new().with_spec(
                core::PodSpecApplyConfiguration::new().with_container(
                    core::ContainerApplyConfiguration::new()
                        .with_name("app")
                        .with_port(core::ContainerPortApplyConfiguration::new().with_container_port(80))
                        .with_env_item(core::EnvVarApplyConfiguration::new().with_name("A").with_value("1")),
                ),
            ),
        ),
    );
    assert_eq!(
        serde_json::to_value(&d).unwrap(),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
               "spec": {"replicas": 3, "template": {"spec": {"containers": [
                   {"name": "app", "ports": [{"containerPort": 80}], "env": [{"name": "A", "value": "1"}]}]}}}})
    );
    let back: apps::DeploymentApplyConfiguration = serde_json::from_value(serde_json::to_value(&d).unwrap()).unwrap();
    assert_eq!(back, d);
    // Cluster-scoped kinds have no namespace.
    let node = core::NodeApplyConfiguration::new("n1");
    assert_eq!(
        serde_json::to_value(&node).unwrap(),
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    );
    // An explicitly empty list is sent (and owned), unlike an unset one.
    let empty = core::PodSpecApplyConfiguration::new().with_tolerations([]);
    assert_eq!(serde_json::to_value(&empty).unwrap(), json!({"tolerations": []}));
}
