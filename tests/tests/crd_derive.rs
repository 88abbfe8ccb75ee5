//! A kind made by `#[derive(CustomResource)]` over real sockets: its CRD installed and waited on
//! until Established, objects created, listed, watched and their status patched through
//! `Api<K>` and `watcher()`, the server pruning an unknown field and filling a schema default,
//! and an object breaking the schema refused with the server's causes. Each body runs through
//! transport-hyper (tokio) and transport-asyncstd (async-std), against the loopback fake or
//! the cluster of `KUBE_E2E_KUBECONFIG`. Each transport has a kind in a group of its own (a
//! CRD is cluster-wide and the two run at once); its objects live in the test's namespace, and
//! the CRD is deleted at the end (one left by an interrupted run is reused).

use std::fmt::Debug;
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube_integration_tests::{Ctx, TransportKind, transport_tests};
use kube_proto::crd::CustomResourceExt;
use kube_proto::resource::NamespaceResourceScope;
use kube_proto::schemars::JsonSchema;
use kube_proto::{
    DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, Reason, Resource, ResourceExt,
};
use kube_runtime::wait::{await_condition, conditions};
use kube_runtime::watcher::{Config, Event, watcher};
use kube_runtime::{Api, Error};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

transport_tests!(a_derived_kind_is_installed_and_used,);

/// A Sprocket's status.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[schemars(crate = "kube_proto::schemars")]
pub struct SprocketStatus {
    /// Whether it turns.
    pub turning: bool,
}

/// What the test needs of either transport's Sprocket.
trait Sprocket:
    CustomResourceExt
    + Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Serialize
    + DeserializeOwned
    + Clone
    + Debug
    + Send
    + Sync
    + 'static
{
    fn make(name: &str, teeth: i32, labels: serde_json::Value) -> Self;
    fn teeth(&self) -> i32;
    fn finish(&self) -> &str;
    fn turning(&self) -> Option<bool>;
}

macro_rules! sprockets {
    ($($m:ident => $group:tt),* $(,)?) => {$(
        mod $m {
            use super::*;

            /// A sprocket.
            #[derive(kube_proto::CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
            #[schemars(crate = "kube_proto::schemars")]
            #[kube(group = $group, version = "v1", kind = "Sprocket", namespaced, status = "super::SprocketStatus",
                   shortname = "spr", printcolumn(name = "Teeth", type_ = "integer", json_path = ".spec.teeth"))]
            pub struct SprocketSpec {
                /// How many teeth.
                #[schemars(range(min = 1))]
                pub teeth: i32,
                /// Its finish, matte unless said.
                #[serde(default = "matte")]
                #[schemars(extend("enum" = ["matte", "gloss"]))]
                pub finish: String,
            }

            fn matte() -> String {
                "matte".into()
            }

            impl super::Sprocket for Sprocket {
                fn make(name: &str, teeth: i32, labels: serde_json::Value) -> Self {
                    let mut s = Sprocket::new(name, SprocketSpec { teeth, finish: "gloss".into() });
                    s.metadata.labels = serde_json::from_value(labels).expect("labels");
                    s
                }
                fn teeth(&self) -> i32 {
                    self.spec.teeth
                }
                fn finish(&self) -> &str {
                    &self.spec.finish
                }
                fn turning(&self) -> Option<bool> {
                    self.status.as_ref().map(|s| s.turning)
                }
            }
        }
    )*};
}

sprockets!(
    hyper_kind => "hyper.crd-derive.kit.example.com",
    asyncstd_kind => "asyncstd.crd-derive.kit.example.com",
);

async fn a_derived_kind_is_installed_and_used(ctx: Ctx) {
    match ctx.transport {
        TransportKind::Hyper => install_and_use::<hyper_kind::Sprocket>(&ctx).await,
        TransportKind::AsyncStd => install_and_use::<asyncstd_kind::Sprocket>(&ctx).await,
    }
}

async fn install_and_use<K: Sprocket>(ctx: &Ctx) {
    let crds: Api<CustomResourceDefinition> = Api::all(ctx.client.clone());
    let crd = K::crd().expect("a structural schema");
    match crds.create(&PostParams::default(), &crd).await {
        Ok(_) => {}
        Err(Error::Api(e)) if e.http_status() == 409 => {}
        Err(e) => panic!("creating the CRD: {e}"),
    }
    let established = await_condition(crds.clone(), K::crd_name(), conditions::is_crd_established());
    ctx.within(Duration::from_secs(60), "the CRD Established", established).await.expect("the CRD");
    let result = use_kind::<K>(ctx).await;
    let _ = crds.delete(K::crd_name(), &DeleteParams::default()).await;
    if let Err(e) = result {
        panic!("{e}");
    }
}

async fn use_kind<K: Sprocket>(ctx: &Ctx) -> Result<(), String> {
    let api: Api<K> = ctx.api();
    let raw: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ctx.ns, &K::api_resource());
    // A CRD may take a moment to be served after it is Established on a real cluster.
    let s1 = K::make("s1", 12, ctx.labels(&[]));
    let mut waited = Duration::ZERO;
    let s1 = loop {
        match api.create(&PostParams::default(), &s1).await {
            Ok(s) => break s,
            Err(Error::Api(e)) if e.http_status() == 404 && waited < Duration::from_secs(30) => {
                ctx.sleep(Duration::from_millis(100)).await;
                waited += Duration::from_millis(100);
            }
            Err(e) => return Err(format!("creating s1: {e}")),
        }
    };
    assert_eq!((s1.teeth(), s1.finish(), s1.turning()), (12, "gloss", None));

    // Sent untyped: an unknown field is pruned, the missing finish defaulted.
    let s2: DynamicObject = serde_json::from_value(json!({
        "apiVersion": K::api_version(&()), "kind": "Sprocket",
        "metadata": {"name": "s2", "labels": ctx.labels(&[])},
        "spec": {"teeth": 7, "polish": "extra"},
    }))
    .map_err(|e| e.to_string())?;
    let s2 = raw.create(&PostParams::default(), &s2).await.map_err(|e| format!("creating s2: {e}"))?;
    assert_eq!(s2.data["spec"], json!({"teeth": 7, "finish": "matte"}));

    let listed = api.list(&ListParams::default().labels(&ctx.selector())).await.map_err(|e| e.to_string())?;
    let mut seen: Vec<(String, i32, String)> =
        listed.items.iter().map(|s| (s.name_any(), s.teeth(), s.finish().to_owned())).collect();
    seen.sort();
    assert_eq!(seen, [("s1".into(), 12, "gloss".into()), ("s2".into(), 7, "matte".into())]);

    // The watcher's initial list holds both, typed.
    let mut events = Box::pin(watcher(api.clone(), Config::default().labels(&ctx.selector())));
    let mut initial = Vec::new();
    ctx.within(Duration::from_secs(30), "the watcher's initial list", async {
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::InitApply(s)) => initial.push(s.name_any()),
                Ok(Event::InitDone) => break,
                _ => {}
            }
        }
    })
    .await;
    initial.sort();
    assert_eq!(initial, ["s1", "s2"]);

    let patched = api
        .patch_status("s1", &PatchParams::default(), &Patch::Merge(json!({"status": {"turning": true}})))
        .await
        .map_err(|e| format!("patching the status: {e}"))?;
    assert_eq!(patched.turning(), Some(true));
    assert_eq!(api.get("s1").await.map_err(|e| e.to_string())?.turning(), Some(true));

    // Breaking the schema: too few teeth and a finish outside the enum.
    let bad: DynamicObject = serde_json::from_value(json!({
        "apiVersion": K::api_version(&()), "kind": "Sprocket",
        "metadata": {"name": "bad"}, "spec": {"teeth": 0, "finish": "rusty"},
    }))
    .map_err(|e| e.to_string())?;
    match raw.create(&PostParams::default(), &bad).await {
        Err(Error::Api(e)) => {
            assert_eq!((e.http_status(), e.reason()), (422, Some(&Reason::Invalid)), "{e:?}");
            let causes = e.api_status().and_then(|s| s.details.as_ref()).map(|d| d.causes.clone()).unwrap_or_default();
            let mut fields: Vec<String> = causes.into_iter().map(|c| c.field).collect();
            fields.sort();
            assert_eq!(fields, ["spec.finish", "spec.teeth"]);
        }
        other => return Err(format!("a Sprocket breaking the schema was not refused: {other:?}")),
    }

    for name in ["s1", "s2"] {
        api.delete(name, &DeleteParams::default()).await.map_err(|e| format!("deleting {name}: {e}"))?;
    }
    Ok(())
}
