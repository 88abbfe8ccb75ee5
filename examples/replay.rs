//! A tour of the pure core alone, with no runtime and no network: requests built by
//! kube-proto, checked against recorded kube-apiserver v1.36 exchanges, answers parsed by it.
//!
//! Each step builds a request with the core, checks it against the request that was recorded
//! against a real kube-apiserver v1.36, and reads the recorded answer with the core's parsers:
//! create, read, a 404, paginate, merge patch, server-side apply (and its conflict), watch
//! (with bookmarks, decoded from 16 KiB chunks) and delete.
//!
//! Run it with `cargo run --example replay`. It never touches a cluster.

use std::path::{Path, PathBuf};

use http::{HeaderMap, StatusCode};
use k8s_openapi::api::core::v1::ConfigMap;
use kube_proto::{
    DeleteResponse, GetParams, ListParams, Patch, PatchParams, PostParams, Request, ResourceExt, Response,
    WatchDecoder, WatchEvent, WatchParams,
};
use serde_json::Value;

/// One recorded exchange: the request that was sent and the response that came back.
struct Exchange {
    request: Value,
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../kube-proto/tests/fixtures/apiserver-v1.36")
}

fn load(name: &str) -> Result<Exchange, Box<dyn std::error::Error>> {
    let path = fixtures_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let v: Value = serde_json::from_str(&text)?;
    let resp = &v["response"];
    let mut headers = HeaderMap::new();
    for (k, val) in resp["headers"].as_object().into_iter().flatten() {
        headers.insert(http::HeaderName::from_bytes(k.as_bytes())?, val.as_str().unwrap_or_default().parse()?);
    }
    let body = match (&resp["body"], &resp["body_lines"]) {
        (_, Value::Array(lines)) => lines.iter().map(|l| format!("{l}\n")).collect::<String>().into_bytes(),
        (Value::String(s), _) => s.clone().into_bytes(),
        (Value::Null, _) => Vec::new(),
        (json, _) => serde_json::to_vec(json)?,
    };
    Ok(Exchange {
        request: v["request"].clone(),
        status: StatusCode::from_u16(resp["status"].as_u64().unwrap_or(0) as u16)?,
        headers,
        body,
    })
}

impl Exchange {
    fn response(&self) -> Response<'_> {
        Response::new(self.status, &self.headers, &self.body)
    }

    /// Prints our request and whether it is the one the recording sent.
    fn show(&self, ours: &http::Request<Vec<u8>>) {
        let recorded = self.request["path_and_query"].as_str().unwrap_or("");
        let same = ours.method().as_str() == self.request["method"] && same_uri(&ours.uri().to_string(), recorded);
        println!(
            "  -> {} {}  [{}]",
            ours.method(),
            ours.uri(),
            if same { "as recorded" } else { "DIFFERS from recorded" }
        );
        if !same {
            println!("     recorded: {} {}", self.request["method"], self.request["path_and_query"]);
        }
        println!("  <- HTTP {}", self.status.as_u16());
    }
}

/// The same path and the same query parameters, in any order (the server does not care).
fn same_uri(a: &str, b: &str) -> bool {
    let split = |u: &str| {
        let (path, query) = u.split_once('?').unwrap_or((u, ""));
        let mut pairs: Vec<String> = query.split('&').filter(|p| !p.is_empty()).map(str::to_owned).collect();
        pairs.sort();
        (path.to_owned(), pairs)
    };
    split(a) == split(b)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("kube-proto demo: requests built by the pure core, answers recorded from kube-apiserver v1.36\n");
    let cms = Request::namespaced::<ConfigMap>("fixtures");

    println!("1. create a ConfigMap");
    let ex = load("create-configmap")?;
    let cm: ConfigMap = serde_json::from_value(ex.request["body"].clone())?;
    ex.show(&cms.create(&PostParams::default(), &cm)?);
    let created: ConfigMap = ex.response().object()?;
    println!(
        "     created {} uid={} resourceVersion={}",
        created.name_any(),
        created.uid().unwrap_or("?"),
        created.resource_version().unwrap_or("?")
    );

    println!("2. get one that does not exist");
    let ex = load("get-configmap-notfound")?;
    ex.show(&cms.get("nope", &GetParams::default())?);
    let err = ex.response().object::<ConfigMap>().unwrap_err();
    println!("     typed error: reason={:?} not_found={} ({err})", err.reason(), err.is_not_found());

    println!("3. list a namespace two at a time, following continue tokens");
    let pages = Request::namespaced::<ConfigMap>("fixtures-pages");
    let mut lp = ListParams::default().limit(2);
    for page in 1..=4 {
        let ex = load(&format!("list-configmaps-paginated-page{page}"))?;
        ex.show(&pages.list(&lp)?);
        let list = ex.response().list::<ConfigMap>()?;
        let names: Vec<_> = list.iter().map(ResourceExt::name_any).collect();
        println!("     page {page}: {names:?}, remaining {:?}", list.metadata.remaining_item_count);
        match list.continue_token() {
            Some(token) => lp = lp.continue_token(token),
            None => break,
        }
    }

    println!("4. merge patch");
    let ex = load("patch-configmap-merge")?;
    ex.show(&cms.patch("cm1", &PatchParams::default(), &Patch::Merge(&ex.request["body"]))?);
    let patched: ConfigMap = ex.response().object()?;
    println!("     labels now {:?}", patched.labels());

    println!("5. server-side apply, then a conflicting apply by another manager");
    let intent = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "ssa", "labels": {"owner": "a"}}, "data": {"key": "value1", "shared": "from-a"}});
    let ex = load("apply-configmap-create")?;
    ex.show(&cms.patch("ssa", &PatchParams::apply("a"), &Patch::Apply(&intent))?);
    println!("     applied, HTTP {} (created)", ex.status.as_u16());
    let other = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"shared": "from-b", "other": "b"}});
    let ex = load("apply-configmap-conflict")?;
    ex.show(&cms.patch("ssa", &PatchParams::apply("b"), &Patch::Apply(&other))?);
    let err = ex.response().object::<ConfigMap>().unwrap_err();
    for cause in err.api_status().map(|s| s.causes()).unwrap_or_default() {
        println!("     conflict: {} on {}", cause.reason, cause.field);
    }

    println!("6. watch from a resourceVersion, with bookmarks, decoded from 16 KiB chunks");
    let ex = load("watch-configmaps-bookmarks-timeout5")?;
    ex.show(&cms.watch(&WatchParams::default().timeout(5), "797")?);
    let mut decoder = WatchDecoder::<ConfigMap>::new();
    for chunk in ex.body.chunks(16 * 1024) {
        decoder.push(chunk);
        while let Some(event) = decoder.next_event() {
            match event? {
                WatchEvent::Added(o) => {
                    println!("     ADDED    {} rv={}", o.name_any(), o.resource_version().unwrap_or(""))
                }
                WatchEvent::Modified(o) => {
                    println!("     MODIFIED {} rv={}", o.name_any(), o.resource_version().unwrap_or(""))
                }
                WatchEvent::Deleted(o) => {
                    println!("     DELETED  {} rv={}", o.name_any(), o.resource_version().unwrap_or(""))
                }
                WatchEvent::Bookmark(b) => println!("     BOOKMARK rv={}", b.metadata.resource_version),
                WatchEvent::Error(s) => println!("     ERROR    {s}"),
            }
        }
    }
    if let Some(last) = decoder.finish() {
        println!("     trailing: {:?}", last.map(|e| e.type_name()));
    }

    println!("7. delete: gone at once (a Status), and held by a finalizer (the object)");
    for (fixture, name) in [("delete-configmap", "del1"), ("finalizer-delete-configmap", "fin1")] {
        let ex = load(fixture)?;
        ex.show(&cms.delete(name, &Default::default())?);
        match ex.response().delete::<ConfigMap>()? {
            DeleteResponse::Status(s) => println!("     {name}: deleted ({})", s.status),
            DeleteResponse::Object(o) => {
                println!(
                    "     {name}: pending, deletionTimestamp set={}, finalizers {:?}",
                    o.is_terminating(),
                    o.finalizers()
                )
            }
        }
    }
    println!("\ndone: every request above was built by kube-proto and every answer parsed by it.");
    Ok(())
}
