//! Names the API server accepts as path segments (RBAC roles may hold a space, `?`, `#` or any
//! other character but `/` and `%`, and may not be `.` or `..`) are escaped in every request,
//! so an object created with such a name can then be read, patched and deleted. The fake API
//! server unescapes the path before routing, as the real one does.

// The tests pick their own `now` for the fake.
#![allow(clippy::disallowed_methods)]

use std::time::Instant;

use k8s_openapi::api::rbac::v1::Role;
use kube_proto::{DeleteParams, GetParams, Patch, PatchParams, PostParams, Request, RequestError, Response};
use kube_proto_fake::{FakeApiServer, FakeConfig, Reply};
use serde_json::json;

fn send(fake: &mut FakeApiServer, req: http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
    match fake.handle(Instant::now(), &req) {
        Reply::Response(r) => r,
        Reply::Watch { .. } => panic!("not a watch"),
        Reply::Upgrade { .. } => panic!("not an upgrade"),
    }
}

fn role(name: &str) -> Role {
    serde_json::from_value(json!({"metadata": {"name": name}, "rules": []})).unwrap()
}

#[test]
fn an_object_with_an_unusual_name_can_be_created_read_patched_and_deleted() {
    let mut fake = FakeApiServer::new(FakeConfig::default(), Instant::now());
    let roles = Request::namespaced::<Role>("default");
    for name in ["my role", "a?b#c", "tab\there", "caf\u{e9}", "x:y@z+1", "50 percent"] {
        let created = send(&mut fake, roles.create(&PostParams::default(), &role(name)).unwrap());
        assert_eq!(created.status(), 201, "{name}: {}", String::from_utf8_lossy(created.body()));

        let get = roles.get(name, &GetParams::default()).unwrap();
        assert!(!get.uri().path().contains(' ') && !get.uri().path().contains('#'), "{}", get.uri());
        let got = send(&mut fake, get);
        let got: Role = Response::from_http(&got).object().unwrap();
        assert_eq!(got.metadata.name.as_deref(), Some(name));

        let patch = Patch::Merge(json!({"metadata": {"labels": {"patched": "yes"}}}));
        let patched = send(&mut fake, roles.patch(name, &PatchParams::default(), &patch).unwrap());
        let patched: Role = Response::from_http(&patched).object().unwrap();
        assert_eq!(patched.metadata.labels.unwrap()["patched"], "yes");

        let deleted = send(&mut fake, roles.delete(name, &DeleteParams::default()).unwrap());
        assert_eq!(deleted.status(), 200, "{name}");
        assert_eq!(send(&mut fake, roles.get(name, &GetParams::default()).unwrap()).status(), 404, "{name}");
    }
}

#[test]
fn names_the_server_refuses_as_path_segments_are_refused_before_sending() {
    let roles = Request::namespaced::<Role>("default");
    for name in [".", "..", "a/b", "100%"] {
        assert!(matches!(roles.get(name, &GetParams::default()), Err(RequestError::InvalidName { .. })), "{name}");
    }
}

#[test]
fn a_malformed_escape_in_a_path_is_a_400_as_from_gos_http_server() {
    let mut fake = FakeApiServer::new(FakeConfig::default(), Instant::now());
    let req = http::Request::get("/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles/a%zz")
        .body(Vec::new())
        .unwrap();
    let resp = send(&mut fake, req);
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.body(), b"400 Bad Request");
}
