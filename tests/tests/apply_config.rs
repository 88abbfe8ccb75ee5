//! Apply configurations (kube-proto-apply) through both transports: two field managers share a
//! Deployment without conflict, each owning only what it sent; one extracts its part and applies
//! it again changed; a part extracted and applied unchanged changes nothing; the k8s-openapi
//! struct claims more (its empty selector conflicts); an atomic map (a Service's selector) is one
//! field, replaced whole. Against the loopback fake, or the cluster of `KUBE_E2E_KUBECONFIG`, where
//! the deployment controller writes to the Deployment too: only our managers' entries are read.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_integration_tests::{Ctx, transport_tests};
use kube_proto::managed_fields::extract;
use kube_proto::{Patch, PatchParams};
use kube_proto_apply::api::apps::v1::{DeploymentApplyConfiguration, DeploymentSpecApplyConfiguration};
use kube_proto_apply::api::core::v1::{
    ConfigMapApplyConfiguration, ContainerApplyConfiguration, PodSpecApplyConfiguration,
    PodTemplateSpecApplyConfiguration, ServiceApplyConfiguration, ServicePortApplyConfiguration,
    ServiceSpecApplyConfiguration,
};
use kube_proto_apply::apimachinery::pkg::apis::meta::v1::{
    LabelSelectorApplyConfiguration, ObjectMetaApplyConfiguration,
};
use serde_json::{Value, json};

transport_tests!(
    two_managers_share_a_deployment,
    extract_and_reapply_changes_nothing,
    the_typed_struct_claims_more,
    an_atomic_selector_is_one_field
);

/// The `fieldsV1` of `manager`'s Apply entry.
fn owned(obj: &impl serde::Serialize, manager: &str) -> Value {
    let v = serde_json::to_value(obj).expect("JSON");
    v["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["manager"] == manager && e["operation"] == "Apply")
        .map_or(Value::Null, |e| e["fieldsV1"].clone())
}

fn deployer(name: &str, ns: &str, image: &str) -> DeploymentApplyConfiguration {
    DeploymentApplyConfiguration::new(name, ns).with_spec(
        DeploymentSpecApplyConfiguration::new()
            .with_selector(LabelSelectorApplyConfiguration::new().with_match_label("app", name))
            .with_template(
                PodTemplateSpecApplyConfiguration::new()
                    .with_metadata(ObjectMetaApplyConfiguration::new().with_label("app", name))
                    .with_spec(
                        PodSpecApplyConfiguration::new()
                            .with_container(ContainerApplyConfiguration::new().with_name("web").with_image(image)),
                    ),
            ),
    )
}

async fn two_managers_share_a_deployment(ctx: Ctx) {
    let api = ctx.api::<Deployment>();
    api.apply("web", &deployer("web", &ctx.ns, "nginx:1.28"), "deployer").await.expect("the deployer applies");
    let scaler = DeploymentApplyConfiguration::new("web", &ctx.ns)
        .with_spec(DeploymentSpecApplyConfiguration::new().with_replicas(2));
    let d = api.apply("web", &scaler, "scaler").await.expect("the scaler applies, no conflict");
    assert_eq!(owned(&d, "scaler"), json!({"f:spec": {"f:replicas": {}}}));
    assert!(owned(&d, "deployer")["f:spec"].get("f:replicas").is_none());

    // The deployer's own part, changed and applied again: the scaler's replicas stay.
    let mut mine: DeploymentApplyConfiguration = extract(&d, "deployer").expect("extract");
    assert_eq!(mine, deployer("web", &ctx.ns, "nginx:1.28"), "exactly what the deployer applied");
    let container = mine
        .spec
        .as_mut()
        .and_then(|s| s.template.as_mut())
        .and_then(|t| t.spec.as_mut())
        .and_then(|p| p.containers.as_mut())
        .and_then(|c| c.first_mut())
        .expect("the deployer's container");
    container.image = Some("nginx:1.29".into());
    let d = api.apply("web", &mine, "deployer").await.expect("the deployer re-applies");
    assert_eq!(d.spec.replicas, Some(2));
    assert_eq!(
        d.spec.template.spec.as_ref().and_then(|p| p.containers[0].image.clone()).as_deref(),
        Some("nginx:1.29")
    );
    assert_eq!(owned(&d, "scaler"), json!({"f:spec": {"f:replicas": {}}}));
}

async fn extract_and_reapply_changes_nothing(ctx: Ctx) {
    let api = ctx.api::<ConfigMap>();
    let a = ConfigMapApplyConfiguration::new("cfg", &ctx.ns).with_label("owner", "a").with_data_entry("mode", "fast");
    let b = ConfigMapApplyConfiguration::new("cfg", &ctx.ns).with_annotation("b", "1").with_data_entry("size", "3");
    api.apply("cfg", &a, "a").await.expect("a applies");
    let live = api.apply("cfg", &b, "b").await.expect("b applies");
    for (manager, sent) in [("a", &a), ("b", &b)] {
        let part: ConfigMapApplyConfiguration = extract(&live, manager).expect("extract");
        assert_eq!(&part, sent, "{manager}'s part");
        let again = api.apply("cfg", &part, manager).await.expect("re-apply");
        assert_eq!(again.metadata.resource_version, live.metadata.resource_version, "{manager}: a no-op");
        assert_eq!(again.metadata.managed_fields, live.metadata.managed_fields, "{manager}: the same owners");
        assert_eq!(again.data, live.data);
    }
}

async fn the_typed_struct_claims_more(ctx: Ctx) {
    let api = ctx.api::<Deployment>();
    api.apply("typed", &deployer("typed", &ctx.ns, "nginx:1.28"), "deployer").await.expect("the deployer applies");
    // Only the replicas are meant; the struct also sends its required selector and template.
    let typed = Deployment {
        metadata: ObjectMeta { name: Some("typed".into()), namespace: Some(ctx.ns.clone()), ..ObjectMeta::default() },
        spec: DeploymentSpec { replicas: Some(2), ..DeploymentSpec::default() },
        ..Deployment::default()
    };
    // The selector is atomic (one field): `{}` would replace the deployer's, a conflict.
    let e = api.patch("typed", &PatchParams::apply("scaler"), &Patch::Apply(&typed)).await.expect_err("a conflict");
    assert_conflict(&e.to_string(), "deployer", ".spec.selector");
}

/// A 409 naming `manager` and `field`.
fn assert_conflict(msg: &str, manager: &str, field: &str) {
    assert!(msg.contains("409") || msg.contains("onflict"), "{msg}");
    assert!(msg.contains(&format!("conflict with \"{manager}\"")), "{msg}");
    assert!(msg.contains(field), "{msg}");
}

/// A Service's selector is an atomic map: one field, owned, compared and replaced whole, by
/// appliers and by other writers alike.
async fn an_atomic_selector_is_one_field(ctx: Ctx) {
    let api = ctx.api::<Service>();
    let svc = |selector: &[(&str, &str)]| {
        ServiceApplyConfiguration::new("sel", &ctx.ns).with_spec(
            ServiceSpecApplyConfiguration::new()
                .with_selector(selector.iter().copied())
                .with_port(ServicePortApplyConfiguration::new().with_port(80)),
        )
    };
    let wide = svc(&[("app", "sel"), ("tier", "fe")]);
    api.apply("sel", &wide, "a").await.expect("a applies");
    let s = api.apply("sel", &wide, "b").await.expect("b applies the same selector: no conflict");
    for m in ["a", "b"] {
        assert_eq!(owned(&s, m)["f:spec"]["f:selector"], json!({}), "{m}: one field, not one per label");
    }

    // a narrows it: b's field would change (were it granular, a would just give up `tier`).
    let narrow = svc(&[("app", "sel")]);
    let e = api.apply("sel", &narrow, "a").await.expect_err("a conflicts with b");
    assert_conflict(&e.to_string(), "b", ".spec.selector");
    // Forced: the selector is exactly a's, though b set `tier` too; b loses it.
    let s = api.patch("sel", &PatchParams::apply("a").force(), &Patch::Apply(&narrow)).await.expect("forced");
    let selector = |s: &Service| s.spec.as_ref().and_then(|p| p.selector.clone()).unwrap_or_default();
    assert_eq!(selector(&s), BTreeMap::from([("app".to_owned(), "sel".to_owned())]));
    assert!(owned(&s, "b")["f:spec"].get("f:selector").is_none(), "{}", owned(&s, "b"));

    // A merge patch adds a label: its manager takes the whole selector, a loses it.
    let pp = PatchParams { field_manager: Some("editor".into()), ..PatchParams::default() };
    let s = api.patch("sel", &pp, &Patch::Merge(json!({"spec": {"selector": {"zone": "z1"}}}))).await.expect("patched");
    assert_eq!(selector(&s).len(), 2);
    let editor = serde_json::to_value(&s).expect("JSON")["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["manager"] == "editor" && e["operation"] == "Update")
        .map_or(Value::Null, |e| e["fieldsV1"].clone());
    assert_eq!(editor, json!({"f:spec": {"f:selector": {}}}));
    assert!(owned(&s, "a")["f:spec"].get("f:selector").is_none(), "{}", owned(&s, "a"));
    let e = api.apply("sel", &narrow, "a").await.expect_err("a conflicts with the editor");
    assert_conflict(&e.to_string(), "editor", ".spec.selector");
}
