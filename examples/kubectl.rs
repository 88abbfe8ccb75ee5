//! A small kubectl on discovery and the dynamic API, on tokio and transport-hyper: every kind is
//! found at run time (built-in or custom), by any name kubectl accepts (`po`, `deploy`,
//! `deployments.apps`, `cronjobs.v1.batch`, a CRD's short name), and handled as
//! `DynamicObject`s.
//!
//! ```sh
//! cargo run --example kubectl                                  # a demo on the embedded fake
//! cargo run --example kubectl -- get all -n shop               # on the fake, after the demo's apply
//! cargo run --example kubectl -- --cluster get pods -A          # your kubeconfig's cluster
//! cargo run --example kubectl -- --cluster get deploy,svc -l app=shop -n shop -o yaml
//! cargo run --example kubectl -- --cluster get cm -n shop --watch
//! cargo run --example kubectl -- --cluster apply -f examples/manifests/shop [--force] [--dry-run]
//! cargo run --example kubectl -- --cluster delete deploy shop -n shop
//! cargo run --example kubectl -- --cluster delete -f examples/manifests/shop
//! cargo run --example kubectl -- --cluster api-resources
//! ```
//!
//! Commands: `get TYPE[,TYPE...] [NAME...]` or `get TYPE/NAME` (a table for common kinds,
//! `-o yaml|json|name`, `-l SELECTOR`, `-n NAMESPACE`, `-A`, `--watch`), `apply -f FILE|FOLDER`
//! (server-side apply by the field manager `kit-kubectl`, in dependency order, waiting for
//! CRDs), `delete TYPE NAME...` or `delete -f FILE|FOLDER`, and `api-resources`.
//!
//! On the fake (the default; `--cluster` or `KUBE_DEMO_CLUSTER=1` for a real one), every run
//! starts from a fresh server, so the manifests in `examples/manifests/shop` are applied to it
//! first; with no command, the demo applies them and shows them. The fake has no controllers:
//! a `--watch` there sees the example's own changes for a few seconds, then stops.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use kube_proto::discovery::ResourceInfo;
use kube_proto::manifest::sort_for_apply;
use kube_proto::{DeleteParams, DeleteResponse, DynamicObject, ListParams, PostParams, ResourceExt};
use kube_runtime::discovery::{ApplyOptions, Discovery, apply, read_manifests};
use kube_runtime::fake::FakeTransport;
use kube_runtime::watcher::{Config, Event, watcher};
use kube_runtime::{Api, Client, Error};
use serde_json::{Value, json};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const MANAGER: &str = "kit-kubectl";
const DEMO_MANIFESTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/manifests/shop");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    Table,
    Yaml,
    Json,
    Name,
}

#[derive(Debug)]
struct Args {
    cluster: bool,
    namespace: Option<String>,
    all_namespaces: bool,
    selector: Option<String>,
    output: Output,
    watch: bool,
    force: bool,
    dry_run: bool,
    files: Vec<String>,
    words: Vec<String>,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        cluster: std::env::var("KUBE_DEMO_CLUSTER").is_ok_and(|v| v == "1"),
        namespace: None,
        all_namespaces: false,
        selector: None,
        output: Output::Table,
        watch: false,
        force: false,
        dry_run: false,
        files: Vec::new(),
        words: Vec::new(),
    };
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| it.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--cluster" => a.cluster = true,
            "-n" | "--namespace" => a.namespace = Some(value(&arg)?),
            "-A" | "--all-namespaces" => a.all_namespaces = true,
            "-l" | "--selector" => a.selector = Some(value(&arg)?),
            "-w" | "--watch" => a.watch = true,
            "--force" | "--force-conflicts" => a.force = true,
            "--dry-run" => a.dry_run = true,
            "-f" | "--filename" => a.files.push(value(&arg)?),
            "-o" | "--output" => {
                a.output = match value(&arg)?.as_str() {
                    "yaml" => Output::Yaml,
                    "json" => Output::Json,
                    "name" => Output::Name,
                    other => return Err(format!("unknown output format {other:?}: yaml, json or name")),
                }
            }
            flag if flag.starts_with('-') && flag.len() > 1 => return Err(format!("unknown flag {flag}")),
            _ => a.words.push(arg),
        }
    }
    Ok(a)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(e) = kubectl().await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn kubectl() -> Result<(), BoxError> {
    let args = parse_args(std::env::args().skip(1)).map_err(|e| format!("{e}\n(see the example's docs for usage)"))?;
    let client = if args.cluster {
        transport_hyper::try_default().await?
    } else {
        let (transport, config) = FakeTransport::new();
        Client::new(transport, config)?
    };
    let discovery = Discovery::new(client.clone(), Duration::from_secs(60));
    if !args.cluster {
        eprintln!("(on the embedded fake API server, with examples/manifests/shop applied; --cluster for a real one)");
        let applied =
            apply(&discovery, read_manifests(Path::new(DEMO_MANIFESTS))?, &ApplyOptions::new(MANAGER)).await?;
        if args.words.is_empty() {
            println!("$ kubectl apply -f examples/manifests/shop");
            for a in &applied {
                println!("{} serverside-applied", type_name(&a.resource, &a.manifest.name));
            }
            for command in [&["get", "all", "-n", "shop"][..], &["get", "wdg", "sprocket", "-n", "shop", "-o", "yaml"]]
            {
                println!("\n$ kubectl {}", command.join(" "));
                let args = parse_args(command.iter().map(|s| (*s).to_owned()))?;
                run(&discovery, &args).await?;
            }
            return Ok(());
        }
    }
    run(&discovery, &args).await
}

async fn run(discovery: &Discovery, args: &Args) -> Result<(), BoxError> {
    let namespace = args.namespace.clone().unwrap_or_else(|| discovery.client().default_namespace().to_owned());
    match args.words.first().map(String::as_str) {
        Some("get") => get(discovery, args, &namespace).await,
        Some("apply") => apply_files(discovery, args, &namespace).await,
        Some("delete") => delete(discovery, args, &namespace).await,
        Some("api-resources") => api_resources(discovery).await,
        Some(other) => Err(format!("unknown command {other:?}: get, apply, delete or api-resources").into()),
        None => Err("a command is needed: get, apply, delete or api-resources".into()),
    }
}

/// `deployment.apps/shop`, as kubectl names an object.
fn type_name(info: &ResourceInfo, name: &str) -> String {
    let kind = info.resource.kind.to_lowercase();
    if info.resource.group.is_empty() {
        format!("{kind}/{name}")
    } else {
        format!("{kind}.{}/{name}", info.resource.group)
    }
}

/// The resources of `TYPE[,TYPE...]` (`all` and other categories expanded).
async fn resources(discovery: &Discovery, types: &str) -> Result<Vec<ResourceInfo>, Error> {
    let mut out = Vec::new();
    for t in types.split(',').filter(|t| !t.is_empty()) {
        let catalog = discovery.catalog().await?;
        let category = catalog.category(t);
        if !category.is_empty() && catalog.resolve(t).is_err() {
            out.extend(category.into_iter().cloned());
        } else {
            out.push(discovery.resolve(t).await?);
        }
    }
    Ok(out)
}

/// `TYPE NAME...` or `TYPE/NAME...`: the resource types and the names asked for (none: all).
fn targets(words: &[String]) -> Result<(String, Vec<String>), String> {
    let Some(first) = words.first() else { return Err("a resource type is needed (pods, deploy, ...)".into()) };
    if let Some((t, _)) = first.split_once('/') {
        let mut names = Vec::new();
        for w in words {
            match w.split_once('/') {
                Some((wt, name)) if wt == t => names.push(name.to_owned()),
                _ => return Err(format!("{w}: give every object as {t}/NAME")),
            }
        }
        return Ok((t.to_owned(), names));
    }
    Ok((first.clone(), words[1..].to_vec()))
}

async fn get(discovery: &Discovery, args: &Args, namespace: &str) -> Result<(), BoxError> {
    let (types, names) = targets(&args.words[1..])?;
    let infos = resources(discovery, &types).await?;
    let scope = if args.all_namespaces { None } else { Some(namespace) };
    if args.watch {
        let [info] = infos.as_slice() else { return Err("--watch takes one resource type".into()) };
        return watch(discovery, info, scope, args).await;
    }
    let mut objects: Vec<(ResourceInfo, DynamicObject)> = Vec::new();
    for info in &infos {
        if !info.supports("list") {
            continue;
        }
        let api = discovery.api(info, scope);
        if names.is_empty() {
            let mut lp = ListParams::default();
            if let Some(s) = &args.selector {
                lp = lp.labels(s);
            }
            let list = api.list(&lp).await?;
            objects.extend(list.items.into_iter().map(|o| (info.clone(), o)));
        } else {
            for name in &names {
                objects.push((info.clone(), api.get(name).await?));
            }
        }
    }
    print_objects(&objects, args, infos.len() > 1)
}

fn print_objects(objects: &[(ResourceInfo, DynamicObject)], args: &Args, several_types: bool) -> Result<(), BoxError> {
    let full = |(info, o): &(ResourceInfo, DynamicObject)| -> Value {
        let mut v = serde_json::to_value(o).unwrap_or(Value::Null);
        // List items come without their type; put it back, as kubectl shows them.
        v["apiVersion"] = info.resource.api_version.clone().into();
        v["kind"] = info.resource.kind.clone().into();
        // As kubectl, without --show-managed-fields.
        if let Some(m) = v["metadata"].as_object_mut() {
            m.remove("managedFields");
        }
        v
    };
    let single = !several_types && objects.len() == 1 && !args.words.is_empty() && args.words.len() > 2;
    let document = || {
        if single {
            full(&objects[0])
        } else {
            json!({"apiVersion": "v1", "kind": "List", "items": objects.iter().map(full).collect::<Vec<_>>()})
        }
    };
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&document())?),
        Output::Yaml => print!("{}", to_yaml(&document())),
        Output::Name => {
            for (info, o) in objects {
                println!("{}", type_name(info, &o.name_any()));
            }
        }
        Output::Table => {
            if objects.is_empty() {
                println!("No resources found.");
            }
            let mut by_type: BTreeMap<String, (ResourceInfo, Vec<&DynamicObject>)> = BTreeMap::new();
            let mut order = Vec::new();
            for (info, o) in objects {
                let key = info.full_name();
                if !by_type.contains_key(&key) {
                    order.push(key.clone());
                }
                by_type.entry(key).or_insert_with(|| (info.clone(), Vec::new())).1.push(o);
            }
            for (i, key) in order.iter().enumerate() {
                let (info, objs) = &by_type[key];
                if i > 0 {
                    println!();
                }
                let rows: Vec<Vec<String>> = objs
                    .iter()
                    .map(|o| row(info, o, several_types, args.all_namespaces && info.resource.namespaced))
                    .collect();
                print_table(&header(info, args.all_namespaces && info.resource.namespaced), &rows);
            }
        }
    }
    Ok(())
}

/// The columns kubectl shows for a kind.
fn columns(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pod" => &["READY", "STATUS", "RESTARTS"],
        "Deployment" | "StatefulSet" => &["READY", "UP-TO-DATE", "AVAILABLE"],
        "ReplicaSet" => &["DESIRED", "CURRENT", "READY"],
        "ConfigMap" => &["DATA"],
        "Secret" => &["TYPE", "DATA"],
        "Service" => &["TYPE", "CLUSTER-IP", "PORT(S)"],
        "Namespace" | "Node" => &["STATUS"],
        "Job" => &["COMPLETIONS"],
        "CronJob" => &["SCHEDULE", "SUSPEND"],
        _ => &[],
    }
}

fn header(info: &ResourceInfo, with_namespace: bool) -> Vec<String> {
    let mut h = Vec::new();
    if with_namespace {
        h.push("NAMESPACE".to_owned());
    }
    h.push("NAME".to_owned());
    h.extend(columns(&info.resource.kind).iter().map(|c| (*c).to_owned()));
    h.push("AGE".to_owned());
    h
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn row(info: &ResourceInfo, o: &DynamicObject, qualified: bool, with_namespace: bool) -> Vec<String> {
    let d = &o.data;
    let mut r = Vec::new();
    if with_namespace {
        r.push(o.namespace().unwrap_or("").to_owned());
    }
    r.push(if qualified { type_name(info, &o.name_any()) } else { o.name_any() });
    let count = |v: &Value| v.as_object().map_or(0, serde_json::Map::len);
    let cells: Vec<String> = match info.resource.kind.as_str() {
        "Pod" => {
            let statuses = d["status"]["containerStatuses"].as_array().cloned().unwrap_or_default();
            let total = d["spec"]["containers"].as_array().map_or(0, Vec::len);
            let ready = statuses.iter().filter(|s| s["ready"] == true).count();
            let restarts: i64 = statuses.iter().map(|s| int(&s["restartCount"])).sum();
            let phase = d["status"]["phase"].as_str().unwrap_or("Unknown");
            let phase = if o.is_terminating() { "Terminating" } else { phase };
            vec![format!("{ready}/{total}"), phase.to_owned(), restarts.to_string()]
        }
        "Deployment" | "StatefulSet" => vec![
            format!("{}/{}", int(&d["status"]["readyReplicas"]), int(&d["spec"]["replicas"])),
            int(&d["status"]["updatedReplicas"]).to_string(),
            int(&d["status"]["availableReplicas"]).to_string(),
        ],
        "ReplicaSet" => vec![
            int(&d["spec"]["replicas"]).to_string(),
            int(&d["status"]["replicas"]).to_string(),
            int(&d["status"]["readyReplicas"]).to_string(),
        ],
        "ConfigMap" => vec![(count(&d["data"]) + count(&d["binaryData"])).to_string()],
        "Secret" => vec![d["type"].as_str().unwrap_or("Opaque").to_owned(), count(&d["data"]).to_string()],
        "Service" => {
            let ports: Vec<String> = d["spec"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| format!("{}/{}", int(&p["port"]), p["protocol"].as_str().unwrap_or("TCP")))
                .collect();
            vec![
                d["spec"]["type"].as_str().unwrap_or("ClusterIP").to_owned(),
                d["spec"]["clusterIP"].as_str().unwrap_or("<none>").to_owned(),
                if ports.is_empty() { "<none>".to_owned() } else { ports.join(",") },
            ]
        }
        "Namespace" => vec![d["status"]["phase"].as_str().unwrap_or("Active").to_owned()],
        "Node" => {
            let ready = d["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "Ready")
                .is_some_and(|c| c["status"] == "True");
            vec![if ready { "Ready" } else { "NotReady" }.to_owned()]
        }
        "Job" => vec![format!("{}/{}", int(&d["status"]["succeeded"]), d["spec"]["completions"].as_i64().unwrap_or(1))],
        "CronJob" => vec![
            d["spec"]["schedule"].as_str().unwrap_or("").to_owned(),
            d["spec"]["suspend"]
                .as_bool()
                .unwrap_or(false)
                .to_string()
                .replace("false", "False")
                .replace("true", "True"),
        ],
        _ => Vec::new(),
    };
    r.extend(cells);
    r.push(age(o));
    r
}

/// The object's age as kubectl shows it: `42s`, `5m`, `3h`, `12d`.
fn age(o: &DynamicObject) -> String {
    let Some(created) = &o.metadata.creation_timestamp else { return "<unknown>".to_owned() };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let secs = (now - created.0.as_second()).max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn print_table(header: &[String], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(String::len).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}   "));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header);
    for r in rows {
        line(r);
    }
}

async fn watch(discovery: &Discovery, info: &ResourceInfo, scope: Option<&str>, args: &Args) -> Result<(), BoxError> {
    let api = discovery.api(info, scope);
    let mut config = Config::default();
    if let Some(s) = &args.selector {
        config = config.labels(s);
    }
    let with_namespace = args.all_namespaces && info.resource.namespaced;
    if !args.cluster {
        // The fake has no other writers: make a few changes to watch, then stop.
        let api = api.clone();
        let info = info.clone();
        let ns = scope.unwrap_or("default").to_owned();
        tokio::spawn(async move { make_changes(api, &info, &ns).await });
    }
    let mut events = Box::pin(watcher(api, config));
    let until = tokio::time::sleep(if args.cluster { Duration::MAX / 4 } else { Duration::from_secs(3) });
    tokio::pin!(until);
    // Rows as they come, in columns as wide as the header's or 24 for names.
    let header = header(info, with_namespace);
    let widths: Vec<usize> =
        header.iter().map(|h| if h == "NAME" || h == "NAMESPACE" { h.len().max(24) } else { h.len() }).collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("   ").trim_end().to_owned()
    };
    println!("{}", line(&header));
    loop {
        let event = tokio::select! {
            e = events.next() => e,
            () = &mut until => return Ok(()),
        };
        match event {
            Some(Ok(Event::InitApply(o) | Event::Apply(o))) => {
                println!("{}", line(&row(info, &o, false, with_namespace)));
            }
            Some(Ok(Event::Delete(o))) => println!("{}   (deleted)", line(&row(info, &o, false, with_namespace))),
            Some(Ok(_)) => {}
            Some(Err(e)) => eprintln!("watch: {e} (retrying)"),
            None => return Ok(()),
        }
    }
}

/// On the fake, for `--watch`: a new object of the watched kind when it is a ConfigMap, else a
/// label added to what there is.
async fn make_changes(api: Api<DynamicObject>, info: &ResourceInfo, ns: &str) {
    for i in 0..3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if info.resource.kind == "ConfigMap" {
            let cm = DynamicObject::new(&format!("watched-{i}"), &info.resource)
                .within(ns)
                .data(json!({"data": {"n": i.to_string()}}));
            let _ = api.create(&PostParams::default(), &cm).await;
        } else if let Ok(list) = api.list(&ListParams::default()).await {
            for o in list.items {
                let patch = json!({"metadata": {"labels": {"watched": i.to_string()}}});
                let _ = api.patch(&o.name_any(), &Default::default(), &kube_proto::Patch::Merge(&patch)).await;
            }
        }
    }
    if info.resource.kind == "ConfigMap" {
        let _ = api.delete("watched-0", &DeleteParams::default()).await;
    }
}

async fn apply_files(discovery: &Discovery, args: &Args, namespace: &str) -> Result<(), BoxError> {
    if args.files.is_empty() {
        return Err("apply needs -f FILE or -f FOLDER".into());
    }
    let mut manifests = Vec::new();
    for f in &args.files {
        manifests.extend(read_manifests(Path::new(f))?);
    }
    let mut options = ApplyOptions::new(MANAGER).namespace(namespace);
    options.force = args.force;
    options.dry_run = args.dry_run;
    let suffix = if args.dry_run { " (server dry run)" } else { "" };
    let applied = apply(discovery, manifests, &options).await?;
    for a in applied {
        println!("{} serverside-applied{suffix}", type_name(&a.resource, &a.manifest.name));
    }
    Ok(())
}

async fn delete(discovery: &Discovery, args: &Args, namespace: &str) -> Result<(), BoxError> {
    let mut targets: Vec<(ResourceInfo, Option<String>, String)> = Vec::new();
    for f in &args.files {
        let mut manifests = read_manifests(Path::new(f))?;
        sort_for_apply(&mut manifests);
        // What depends on others goes first.
        for m in manifests.iter().rev() {
            let info = discovery.resolve_kind(m.api_version(), m.kind()).await?;
            let ns = info.resource.namespaced.then(|| m.namespace().unwrap_or(namespace).to_owned());
            targets.push((info, ns, m.name().to_owned()));
        }
    }
    if args.files.is_empty() {
        let (types, names) = targets_of(&args.words[1..])?;
        if names.is_empty() {
            return Err("delete needs names (delete TYPE NAME...) or -f".into());
        }
        let info = discovery.resolve(&types).await?;
        for name in names {
            let ns = info.resource.namespaced.then(|| namespace.to_owned());
            targets.push((info.clone(), ns, name));
        }
    }
    for (info, ns, name) in targets {
        let api = discovery.api(&info, ns.as_deref());
        let what = type_name(&info, &name);
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(DeleteResponse::Object(_)) | Ok(DeleteResponse::Status(_)) => println!("{what} deleted"),
            Err(Error::Api(e)) if e.is_not_found() && !args.files.is_empty() => println!("{what} not found"),
            Err(e) => return Err(format!("{what}: {e}").into()),
        }
    }
    Ok(())
}

fn targets_of(words: &[String]) -> Result<(String, Vec<String>), String> {
    targets(words)
}

async fn api_resources(discovery: &Discovery) -> Result<(), BoxError> {
    let catalog = discovery.catalog().await?;
    let rows: Vec<Vec<String>> = catalog
        .preferred_resources()
        .into_iter()
        .map(|r| {
            vec![
                r.resource.plural.clone(),
                r.short_names.join(","),
                r.resource.api_version.clone(),
                r.resource.namespaced.to_string(),
                r.resource.kind.clone(),
            ]
        })
        .collect();
    let header = ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"].map(str::to_owned);
    print_table(&header, &rows);
    for f in catalog.failures() {
        eprintln!("warning: {} could not be read: {}", f.group_version, f.error);
    }
    Ok(())
}

// ---- YAML output ----

/// JSON as block YAML, the way kubectl prints it.
fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => mapping(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => sequence(&mut out, a, 0),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn mapping(out: &mut String, m: &serde_json::Map<String, Value>, indent: usize) {
    for (i, (k, v)) in m.iter().enumerate() {
        // The first key of a sequence item follows its `- `.
        if i > 0 || !out.ends_with("- ") {
            pad(out, indent);
        }
        out.push_str(&text(k));
        out.push(':');
        child(out, v, indent);
    }
}

fn sequence(out: &mut String, a: &[Value], indent: usize) {
    for v in a {
        pad(out, indent);
        out.push_str("- ");
        match v {
            Value::Object(m) if !m.is_empty() => mapping(out, m, indent + 2),
            Value::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                sequence(out, inner, indent + 2);
            }
            other => {
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

/// A value after `key:`.
fn child(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            mapping(out, m, indent + 2);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            sequence(out, a, indent);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => text(s),
        Value::Object(_) => "{}".to_owned(),
        Value::Array(_) => "[]".to_owned(),
    }
}

/// A string plain when YAML reads it back as the same string, else double-quoted (a JSON
/// string is a valid YAML double-quoted scalar).
fn text(s: &str) -> String {
    let plain_chars = s.chars().all(|c| c.is_ascii_alphanumeric() || "-._/@+=".contains(c))
        || (s.contains(':')
            && !s.contains(": ")
            && !s.ends_with(':')
            && s.chars().all(|c| !c.is_whitespace() && c != '#'));
    let first_ok = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '_');
    let reserved = matches!(
        s.to_ascii_lowercase().as_str(),
        "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n" | "~"
    );
    if plain_chars
        && first_ok
        && !reserved
        && !s.contains(['{', '}', '[', ']', ',', '&', '*', '!', '|', '>', '\'', '"', '%', '`'])
    {
        s.to_owned()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}
