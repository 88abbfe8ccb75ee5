//! A fake API server with server-side apply and GET as one-line calls, and the managed fields
//! of one manager, for the apply configuration tests.

#![allow(dead_code)]

use std::time::Instant;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube_proto::{ApiResource, GetParams, Patch, PatchParams, Request, Resource};
use kube_proto_fake::{FakeApiServer, FakeConfig, KindInfo, Reply};
use serde::Serialize;
use serde_json::Value;

/// A fake API server and its clock.
pub struct Fake {
    pub server: FakeApiServer,
    pub now: Instant,
}

impl Fake {
    pub fn new() -> Self {
        // The fake takes time as an argument; any instant will do.
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let mut server = FakeApiServer::new(FakeConfig::default(), now);
        // Not among the fake's kinds: served here as a built-in (with its list rules).
        server.register(KindInfo {
            resource: ApiResource::erase::<HorizontalPodAutoscaler>(&()),
            status_subresource: true,
            scale: None,
            builtin: true,
            generation: true,
            validate: None,
        });
        Fake { server, now }
    }

    fn send(&mut self, req: http::Request<Vec<u8>>) -> (u16, Value) {
        let Reply::Response(resp) = self.server.handle(self.now, &req) else { panic!("not a plain response") };
        let body = serde_json::from_slice(resp.body()).unwrap_or(Value::Null);
        (resp.status().as_u16(), body)
    }

    /// Server-side apply of `body` to `K` `name` in `ns` by `manager`: the object, or the
    /// status code and `Status` body.
    pub fn apply<K: Resource<DynamicType = ()>>(
        &mut self,
        ns: &str,
        name: &str,
        body: &impl Serialize,
        manager: &str,
        force: bool,
    ) -> Result<Value, (u16, Value)> {
        let mut pp = PatchParams::apply(manager);
        if force {
            pp = pp.force();
        }
        let req = Request::namespaced::<K>(ns).patch(name, &pp, &Patch::Apply(body)).expect("request");
        match self.send(req) {
            (200 | 201, v) => Ok(v),
            (code, v) => Err((code, v)),
        }
    }

    /// Server-side apply through the `status` subresource.
    pub fn apply_status<K: Resource<DynamicType = ()>>(
        &mut self,
        ns: &str,
        name: &str,
        body: &impl Serialize,
        manager: &str,
    ) -> Value {
        let req = Request::namespaced::<K>(ns)
            .patch_subresource("status", name, &PatchParams::apply(manager), &Patch::Apply(body))
            .expect("request");
        let (code, v) = self.send(req);
        assert_eq!(code, 200, "{v}");
        v
    }

    pub fn get<K: Resource<DynamicType = ()>>(&mut self, ns: &str, name: &str) -> Value {
        let (code, v) = self.send(Request::namespaced::<K>(ns).get(name, &GetParams::default()).expect("request"));
        assert_eq!(code, 200, "{v}");
        v
    }
}

/// The `fieldsV1` of `manager`'s `Apply` entry for `subresource` (`""` the main resource), or
/// `Null` when it has none.
pub fn owned(obj: &Value, manager: &str, subresource: &str) -> Value {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| {
            e["manager"] == manager
                && e["operation"] == "Apply"
                && e.get("subresource").and_then(Value::as_str).unwrap_or("") == subresource
        })
        .map_or(Value::Null, |e| e["fieldsV1"].clone())
}
