//! `extract` gives back exactly what a manager owns: applying it again unchanged changes
//! nothing, neither the object nor its managedFields (nor its resourceVersion), on the fake API
//! server, for hand-picked objects and for generated ones with two managers.

mod support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube_proto::managed_fields::{extract, extract_subresource};
use kube_proto_apply::api::apps::v1 as apps;
use kube_proto_apply::api::core::v1 as core;
use kube_proto_apply::apimachinery::pkg::apis::meta::v1 as meta;
use proptest::prelude::*;
use serde_json::{Value, json};
use support::{Fake, owned};

/// Extracts `manager`'s part of `K` `name`, applies it unchanged, and checks that nothing moved.
fn reapply_is_noop<K, C>(fake: &mut Fake, name: &str, manager: &str) -> C
where
    K: kube_proto::Resource<DynamicType = ()>,
    C: serde::de::DeserializeOwned + serde::Serialize,
{
    let before = fake.get::<K>("default", name);
    let part: C = extract(&before, manager).expect("extract");
    let after = fake.apply::<K>("default", name, &part, manager, false).expect("re-apply");
    assert_eq!(after, before, "re-applying {manager}'s extracted fields changed the object");
    assert_eq!(fake.get::<K>("default", name), before);
    part
}

fn container(name: &str) -> core::ContainerApplyConfiguration {
    core::ContainerApplyConfiguration::new().with_name(name)
}

#[test]
fn deployment_two_managers() {
    let mut fake = Fake::new();
    let owner = apps::DeploymentApplyConfiguration::new("web", "default").with_label("app", "web").with_spec(
        apps::DeploymentSpecApplyConfiguration::new()
            .with_selector(meta::LabelSelectorApplyConfiguration::new().with_match_label("app", "web"))
            .with_template(
                core::PodTemplateSpecApplyConfiguration::new()
                    .with_metadata(meta::ObjectMetaApplyConfiguration::new().with_label("app", "web"))
                    .with_spec(
                        core::PodSpecApplyConfiguration::new().with_container(
                            container("app")
                                .with_image("nginx:1.29")
                                .with_port(
                                    core::ContainerPortApplyConfiguration::new()
                                        .with_container_port(80)
                                        .with_protocol("TCP"),
                                )
                                .with_env_item(
                                    core::EnvVarApplyConfiguration::new().with_name("MODE").with_value("fast"),
                                )
                                .with_resources(core::ResourceRequirementsApplyConfiguration::new().with_limit(
                                    "cpu",
                                    k8s_openapi::apimachinery::pkg::api::resource::Quantity("500m".into()),
                                )),
                        ),
                    ),
            ),
    );
    fake.apply::<Deployment>("default", "web", &owner, "owner", false).unwrap();
    // A second manager owns the replicas, a label and one env var of the same container.
    let tuner = apps::DeploymentApplyConfiguration::new("web", "default").with_label("tuned", "yes").with_spec(
        apps::DeploymentSpecApplyConfiguration::new().with_replicas(4).with_template(
            core::PodTemplateSpecApplyConfiguration::new().with_spec(
                core::PodSpecApplyConfiguration::new().with_container(
                    container("app")
                        .with_env_item(core::EnvVarApplyConfiguration::new().with_name("LEVEL").with_value("3")),
                ),
            ),
        ),
    );
    fake.apply::<Deployment>("default", "web", &tuner, "tuner", false).unwrap();

    let got: apps::DeploymentApplyConfiguration = reapply_is_noop::<Deployment, _>(&mut fake, "web", "tuner");
    assert_eq!(got, tuner, "the tuner's part is what it applied");
    let got: apps::DeploymentApplyConfiguration = reapply_is_noop::<Deployment, _>(&mut fake, "web", "owner");
    assert_eq!(got, owner, "the owner's part is what it applied");

    // Change one field of the extracted part and re-apply: only that field moves, and the other
    // manager's fields stay.
    let live = fake.get::<Deployment>("default", "web");
    let mut mine: apps::DeploymentApplyConfiguration = extract(&live, "tuner").unwrap();
    if let Some(spec) = mine.spec.as_mut() {
        spec.replicas = Some(6);
    }
    let after = fake.apply::<Deployment>("default", "web", &mine, "tuner", false).unwrap();
    assert_eq!(after["spec"]["replicas"], 6);
    assert_eq!(owned(&after, "owner", ""), owned(&live, "owner", ""));
    assert_eq!(after["spec"]["template"]["spec"]["containers"][0]["env"].as_array().map(Vec::len), Some(2));
}

/// A key field left out and defaulted (a port's `protocol`) comes back in the extracted part,
/// as client-go's extract appends key fields: re-applying it leaves the object as it was, but
/// the manager then owns `protocol` too.
#[test]
fn defaulted_key_fields_come_back() {
    let mut fake = Fake::new();
    let owner = core::PodApplyConfiguration::new("p", "default").with_spec(
        core::PodSpecApplyConfiguration::new().with_container(
            container("app")
                .with_image("x")
                .with_port(core::ContainerPortApplyConfiguration::new().with_container_port(80)),
        ),
    );
    let before = fake.apply::<Pod>("default", "p", &owner, "owner", false).unwrap();
    let got: core::PodApplyConfiguration = extract(&before, "owner").unwrap();
    let port = &got.spec.as_ref().and_then(|s| s.containers.as_ref()).unwrap()[0].ports.as_ref().unwrap()[0];
    assert_eq!(port.protocol.as_deref(), Some("TCP"));
    let after = fake.apply::<Pod>("default", "p", &got, "owner", false).unwrap();
    let strip = |v: &Value| {
        let mut v = v.clone();
        v["metadata"].as_object_mut().map(|m| (m.remove("managedFields"), m.remove("resourceVersion")));
        v
    };
    assert_eq!(strip(&after), strip(&before));
    let ports = &owned(&after, "owner", "")["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"]["f:ports"];
    assert_eq!(ports["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"]["f:protocol"], json!({}), "{ports}");
}

#[test]
fn status_through_the_subresource() {
    let mut fake = Fake::new();
    let svc = core::ServiceApplyConfiguration::new("lb", "default")
        .with_spec(core::ServiceSpecApplyConfiguration::new().with_port(
            core::ServicePortApplyConfiguration::new().with_port(80).with_protocol("TCP").with_name("http"),
        ));
    fake.apply::<Service>("default", "lb", &svc, "svc-ctl", false).unwrap();
    let status = core::ServiceApplyConfiguration::new("lb", "default").with_status(
        core::ServiceStatusApplyConfiguration::new().with_condition(
            meta::ConditionApplyConfiguration::new()
                .with_type("Ready")
                .with_status("True")
                .with_reason("Up")
                .with_message("up")
                .with_last_transition_time(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    "2026-11-25T00:00:00Z".parse().unwrap(),
                )),
        ),
    );
    let obj = fake.apply_status::<Service>("default", "lb", &status, "svc-ctl");
    assert!(owned(&obj, "svc-ctl", "status").is_object(), "{obj}");
    let main: core::ServiceApplyConfiguration = extract(&obj, "svc-ctl").unwrap();
    assert_eq!(main, svc);
    let got: core::ServiceApplyConfiguration = extract_subresource(&obj, "svc-ctl", "status").unwrap();
    assert_eq!(got, status);
    let again = fake.apply_status::<Service>("default", "lb", &got, "svc-ctl");
    assert_eq!(again, obj);
}

#[test]
fn plain_json_too() {
    let mut fake = Fake::new();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default",
                    "annotations": {"a": "1"}}, "data": {"k": "v"}});
    fake.apply::<ConfigMap>("default", "c", &cm, "m", false).unwrap();
    let got: Value = reapply_is_noop::<ConfigMap, _>(&mut fake, "c", "m");
    assert_eq!(got, cm);
}

/// A ConfigMap's data and labels and a Deployment's containers and env, split between two
/// managers at random; each manager's extracted part, re-applied, changes nothing, and equals
/// what it applied.
/// Keyed items, each with the manager (`false` the first, `true` the second) that sets it.
type Owned = Vec<(String, String, bool)>;

#[derive(Debug, Clone)]
struct Split {
    data: Owned,
    labels: Owned,
    replicas: Option<(i32, bool)>,
    containers: Vec<(String, Owned, bool)>,
}

fn split() -> impl Strategy<Value = Split> {
    let kv = || proptest::collection::vec(("[a-e]{1,2}", "[a-z0-9]{0,3}", any::<bool>()), 0..5);
    (
        kv(),
        kv(),
        proptest::option::of((0..10i32, any::<bool>())),
        proptest::collection::vec(("[a-c]", kv(), any::<bool>()), 1..4),
    )
        .prop_map(|(data, labels, replicas, containers)| Split { data, labels, replicas, containers })
}

/// Each key once: the first manager to name it gets it.
fn dedup<T: Clone>(items: &[(String, T, bool)]) -> Vec<(String, T, bool)> {
    let mut seen = std::collections::BTreeSet::new();
    items.iter().filter(|(k, _, _)| seen.insert(k.clone())).cloned().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn extract_reapply_changes_nothing(s in split()) {
        let mut fake = Fake::new();
        // ConfigMap
        let mut parts = [core::ConfigMapApplyConfiguration::new("cm", "default"), core::ConfigMapApplyConfiguration::new("cm", "default")];
        for (k, v, second) in dedup(&s.data) {
            let p = &mut parts[usize::from(second)];
            *p = std::mem::take(p).with_data_entry(k, v);
        }
        for (k, v, second) in dedup(&s.labels) {
            let p = &mut parts[usize::from(second)];
            *p = std::mem::take(p).with_label(k, v);
        }
        for (i, p) in parts.iter().enumerate() {
            fake.apply::<ConfigMap>("default", "cm", p, &format!("m{i}"), false).unwrap();
        }
        for (i, p) in parts.iter().enumerate() {
            let got: core::ConfigMapApplyConfiguration = reapply_is_noop::<ConfigMap, _>(&mut fake, "cm", &format!("m{i}"));
            prop_assert_eq!(&got, p);
        }

        // Deployment: the first manager owns the selector, template labels and every container's
        // image; containers' env vars and the replicas go to either.
        let base = || apps::DeploymentApplyConfiguration::new("d", "default");
        let mut specs = [apps::DeploymentSpecApplyConfiguration::new(), apps::DeploymentSpecApplyConfiguration::new()];
        specs[0] = std::mem::take(&mut specs[0])
            .with_selector(meta::LabelSelectorApplyConfiguration::new().with_match_label("app", "d"));
        if let Some((r, second)) = s.replicas {
            let p = &mut specs[usize::from(second)];
            *p = std::mem::take(p).with_replicas(r);
        }
        let mut pods = [core::PodSpecApplyConfiguration::new(), core::PodSpecApplyConfiguration::new()];
        for (name, env, _) in dedup(&s.containers) {
            let mut cs = [container(&name).with_image("img"), container(&name)];
            let mut has = [true, false];
            for (k, v, second) in dedup(&env) {
                let i = usize::from(second);
                let c = std::mem::take(&mut cs[i]);
                cs[i] = c.with_env_item(core::EnvVarApplyConfiguration::new().with_name(k).with_value(v));
                has[i] = true;
            }
            for i in 0..2 {
                if has[i] {
                    let p = std::mem::take(&mut pods[i]);
                    pods[i] = p.with_container(cs[i].clone());
                }
            }
        }
        let mut configs = Vec::new();
        for i in 0..2 {
            let mut tpl = core::PodTemplateSpecApplyConfiguration::new();
            if i == 0 {
                tpl = tpl.with_metadata(meta::ObjectMetaApplyConfiguration::new().with_label("app", "d"));
            }
            if pods[i] != core::PodSpecApplyConfiguration::default() {
                tpl = tpl.with_spec(pods[i].clone());
            }
            let mut spec = specs[i].clone();
            if tpl != core::PodTemplateSpecApplyConfiguration::default() {
                spec = spec.with_template(tpl);
            }
            let mut c = base();
            if spec != apps::DeploymentSpecApplyConfiguration::default() {
                c = c.with_spec(spec);
            }
            configs.push(c);
        }
        for (i, c) in configs.iter().enumerate() {
            fake.apply::<Deployment>("default", "d", c, &format!("m{i}"), false).unwrap();
        }
        for (i, c) in configs.iter().enumerate() {
            let got: apps::DeploymentApplyConfiguration = reapply_is_noop::<Deployment, _>(&mut fake, "d", &format!("m{i}"));
            prop_assert_eq!(&got, c);
        }
    }
}
