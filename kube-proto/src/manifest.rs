//! Manifests: files of YAML (or JSON) documents read into [`DynamicObject`]s, and the order to
//! apply them in.
//!
//! [`parse_manifests`] splits a file at its `---` lines as kubectl does, reads each document,
//! flattens `List`s, and checks that each object has an `apiVersion`, a `kind` and a name. A
//! document that fails is an error naming the file, the document (counting from 1, empty
//! documents not counted) and the line it starts on; nothing of a file that fails is returned.
//! [`sort_for_apply`] orders objects so that what others depend on goes first: Namespaces, then
//! CustomResourceDefinitions, then cluster-wide policy and storage, RBAC, configuration,
//! Services, workloads, and custom resources last but for admission webhooks (which could
//! otherwise refuse the rest).
//!
//! ```
//! use kube_proto::manifest::{parse_manifests, sort_for_apply};
//!
//! let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: shop}\n---\n\
//!             apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n";
//! let mut manifests = parse_manifests("shop.yaml", text).unwrap();
//! sort_for_apply(&mut manifests);
//! assert_eq!(manifests[0].kind(), "Namespace");
//! assert_eq!(manifests[1].document, 1);
//!
//! let err = parse_manifests("bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nmetadata: {name: b}\n")
//!     .unwrap_err();
//! assert_eq!(err.to_string(), "bad.yaml, document 2 (line 5): it has no kind");
//! ```

use std::fmt;

use serde_json::Value;

use crate::resource::DynamicObject;

/// One object read from a file.
#[derive(Clone, PartialEq)]
pub struct Manifest {
    /// The file (or other source) it was read from, as the caller named it.
    pub file: String,
    /// Which document of the file it is, counting from 1 (empty documents are not counted).
    pub document: usize,
    /// The line of the file its document starts on, counting from 1.
    pub line: usize,
    /// Its index in the document's `items` when the document is a `List`.
    pub item: Option<usize>,
    /// The object.
    pub object: DynamicObject,
}

impl Manifest {
    /// The object's `apiVersion`.
    pub fn api_version(&self) -> &str {
        self.object.types.as_ref().map_or("", |t| t.api_version.as_str())
    }

    /// The object's `kind`.
    pub fn kind(&self) -> &str {
        self.object.types.as_ref().map_or("", |t| t.kind.as_str())
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        self.object.metadata.name.as_deref().unwrap_or("")
    }

    /// The object's namespace, if the manifest gives one.
    pub fn namespace(&self) -> Option<&str> {
        self.object.metadata.namespace.as_deref()
    }

    /// Where it was read from: `app.yaml, document 2 (line 14)`.
    pub fn location(&self) -> String {
        location(&self.file, self.document, self.line, self.item)
    }
}

/// Without the object's fields: a Secret's data stays out of logs.
impl fmt::Debug for Manifest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manifest")
            .field("file", &self.file)
            .field("document", &self.document)
            .field("line", &self.line)
            .field("item", &self.item)
            .field("api_version", &self.api_version())
            .field("kind", &self.kind())
            .field("namespace", &self.namespace())
            .field("name", &self.name())
            .finish()
    }
}

fn location(file: &str, document: usize, line: usize, item: Option<usize>) -> String {
    match item {
        Some(i) => format!("{file}, document {document} (line {line}), items[{i}]"),
        None => format!("{file}, document {document} (line {line})"),
    }
}

/// What is wrong with a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestProblem {
    /// The document is not YAML (or JSON). The reader's message, with its line and column
    /// counted within the document, and without the text around it (it may be a secret).
    #[error("it is not valid YAML: {0}")]
    NotYaml(String),
    /// The document is YAML, but not a mapping (a list, a string, ...).
    #[error("it is not an object but {0}")]
    NotAnObject(&'static str),
    /// No `apiVersion` (or not a string).
    #[error("it has no apiVersion")]
    MissingApiVersion,
    /// No `kind` (or not a string).
    #[error("it has no kind")]
    MissingKind,
    /// No `metadata.name`: applying needs one.
    #[error("it has no metadata.name")]
    MissingName,
    /// Its metadata does not read as `ObjectMeta`.
    #[error("its metadata is invalid: {0}")]
    InvalidMetadata(String),
}

/// A document of a file could not be read as an object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {problem}", location(file, *document, *line, *item))]
pub struct ManifestError {
    /// The file, as the caller named it.
    pub file: String,
    /// The document, counting from 1 (empty documents are not counted).
    pub document: usize,
    /// The line of the file the document starts on, counting from 1.
    pub line: usize,
    /// The index in the document's `items`, when it is a `List`.
    pub item: Option<usize>,
    /// What is wrong.
    pub problem: ManifestProblem,
}

/// Splits a file into documents at its `---` lines (a `---` followed by nothing but spaces or
/// a comment, as kubectl's reader has it): each document with the line it starts on.
fn documents(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let rest = line.strip_prefix("---").map(str::trim);
        if let Some(rest) = rest
            && (rest.is_empty() || rest.starts_with('#'))
        {
            out.push((start, std::mem::take(&mut current)));
            start = i + 2;
            continue;
        }
        current.push_str(line);
    }
    out.push((start, current));
    out
}

/// Whether a document holds nothing but blank lines and comments.
fn is_blank(doc: &str) -> bool {
    doc.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#')
    })
}

fn yaml_options(len: usize) -> serde_saphyr::Options {
    // Limits that grow with the document (a CRD can be a megabyte), and keep the default guard
    // against aliases expanding a small document into a huge one.
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = budget.max_nodes.max(len.saturating_mul(2).saturating_add(1024));
    budget.max_events = budget.max_events.max(len.saturating_mul(4).saturating_add(1024));
    budget.max_total_scalar_bytes = budget.max_total_scalar_bytes.max(len.saturating_mul(2));
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Reads an object: it has an `apiVersion`, a `kind` and a name.
fn object(v: Value) -> Result<DynamicObject, ManifestProblem> {
    let Value::Object(map) = &v else { return Err(ManifestProblem::NotAnObject(kind_of(&v))) };
    if map.get("apiVersion").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Err(ManifestProblem::MissingApiVersion);
    }
    if map.get("kind").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Err(ManifestProblem::MissingKind);
    }
    let obj: DynamicObject = serde_json::from_value(v).map_err(|e| ManifestProblem::InvalidMetadata(e.to_string()))?;
    if obj.metadata.name.as_deref().is_none_or(str::is_empty) {
        return Err(ManifestProblem::MissingName);
    }
    Ok(obj)
}

/// Whether a document is a list of objects to flatten (`kind: List`, or any `...List` with
/// `items`).
fn is_list(v: &Value) -> bool {
    v.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List"))
        && v.get("items").is_some_and(Value::is_array)
}

/// Reads the objects of one file (`file` names it in errors). See the [module](self) docs.
pub fn parse_manifests(file: &str, text: &str) -> Result<Vec<Manifest>, ManifestError> {
    let mut out = Vec::new();
    let mut document = 0;
    for (line, doc) in documents(text) {
        if is_blank(&doc) {
            continue;
        }
        document += 1;
        let err = |item, problem| ManifestError { file: file.to_owned(), document, line, item, problem };
        let value: Value = serde_saphyr::from_str_with_options(&doc, yaml_options(doc.len()))
            .map_err(|e| err(None, ManifestProblem::NotYaml(e.without_snippet().to_string())))?;
        if value.is_null() {
            document -= 1;
            continue;
        }
        if is_list(&value) {
            let Value::Object(mut map) = value else { continue };
            let Some(Value::Array(items)) = map.remove("items") else { continue };
            for (i, item) in items.into_iter().enumerate() {
                let object = object(item).map_err(|p| err(Some(i), p))?;
                out.push(Manifest { file: file.to_owned(), document, line, item: Some(i), object });
            }
            continue;
        }
        let object = object(value).map_err(|p| err(None, p))?;
        out.push(Manifest { file: file.to_owned(), document, line, item: None, object });
    }
    Ok(out)
}

/// Where a kind goes in the order of [`sort_for_apply`]: lower first. Kinds this table does not
/// know (custom resources) come after every built-in kind they might need, and only admission
/// webhooks and policies after them.
pub fn apply_rank(api_version: &str, kind: &str) -> u8 {
    let group = api_version.split_once('/').map_or("", |(g, _)| g);
    match (group, kind) {
        ("", "Namespace") => 0,
        ("apiextensions.k8s.io", "CustomResourceDefinition") => 1,
        ("scheduling.k8s.io", "PriorityClass") | ("storage.k8s.io", "StorageClass" | "CSIDriver") => 2,
        ("", "PersistentVolume") => 3,
        ("rbac.authorization.k8s.io", "ClusterRole") => 4,
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => 5,
        ("", "ResourceQuota" | "LimitRange") | ("networking.k8s.io", "NetworkPolicy") => 6,
        ("", "ServiceAccount") => 7,
        ("rbac.authorization.k8s.io", "Role") => 8,
        ("rbac.authorization.k8s.io", "RoleBinding") => 9,
        ("", "Secret" | "ConfigMap") => 10,
        ("", "PersistentVolumeClaim") => 11,
        ("", "Service" | "Endpoints") | ("discovery.k8s.io", "EndpointSlice") => 12,
        ("", "Pod" | "ReplicationController" | "PodTemplate")
        | ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet")
        | ("batch", "Job" | "CronJob") => 13,
        ("autoscaling", "HorizontalPodAutoscaler") | ("policy", "PodDisruptionBudget") => 14,
        ("networking.k8s.io", "IngressClass" | "Ingress") => 15,
        ("apiregistration.k8s.io", "APIService") => 16,
        (
            "admissionregistration.k8s.io",
            "MutatingWebhookConfiguration"
            | "ValidatingWebhookConfiguration"
            | "ValidatingAdmissionPolicy"
            | "ValidatingAdmissionPolicyBinding"
            | "MutatingAdmissionPolicy"
            | "MutatingAdmissionPolicyBinding",
        ) => 19,
        ("", _) => 17,
        (g, _) if g.ends_with(".k8s.io") || !g.contains('.') => 17,
        _ => 18,
    }
}

/// Orders manifests for applying (see [`apply_rank`]), keeping the files' order among objects
/// of the same rank.
pub fn sort_for_apply(manifests: &mut [Manifest]) {
    manifests.sort_by_key(|m| apply_rank(m.api_version(), m.kind()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_follow_kubectl() {
        let docs = documents("a: 1\n--- # comment\nb: 2\n---x\nc: 3\n---\n");
        assert_eq!(docs, [(1, "a: 1\n".to_owned()), (3, "b: 2\n---x\nc: 3\n".to_owned()), (7, String::new())]);
    }

    #[test]
    fn numbers_and_booleans_stay_typed() {
        let m = parse_manifests(
            "d.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: {app: web}\nspec:\n  replicas: 3\n  paused: false\n  x: \"3\"\n",
        )
        .unwrap();
        assert_eq!(m[0].object.data["spec"]["replicas"], 3);
        assert_eq!(m[0].object.data["spec"]["paused"], false);
        assert_eq!(m[0].object.data["spec"]["x"], "3");
        assert_eq!(m[0].object.metadata.labels.as_ref().unwrap()["app"], "web");
    }

    #[test]
    fn lists_are_flattened_and_blank_documents_skipped() {
        let text = "---\n# nothing\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n- {apiVersion: v1, kind: Secret, metadata: {name: b}}\n";
        let m = parse_manifests("l.yaml", text).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!((m[1].document, m[1].line, m[1].item, m[1].kind()), (1, 4, Some(1), "Secret"));
        let bad = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap}\n";
        let e = parse_manifests("l.yaml", bad).unwrap_err();
        assert_eq!((e.item, &e.problem), (Some(0), &ManifestProblem::MissingName));
        assert_eq!(e.to_string(), "l.yaml, document 1 (line 1), items[0]: it has no metadata.name");
    }

    #[test]
    fn bad_documents_name_file_document_and_line() {
        let ok = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n";
        let cases: [(&str, ManifestProblem); 4] = [
            ("kind: ConfigMap\nmetadata: {name: x}\n", ManifestProblem::MissingApiVersion),
            ("apiVersion: v1\nmetadata: {name: x}\n", ManifestProblem::MissingKind),
            ("- a\n- b\n", ManifestProblem::NotAnObject("a list")),
            ("apiVersion: v1\nkind: ConfigMap\nmetadata: {namespace: x}\n", ManifestProblem::MissingName),
        ];
        for (doc, problem) in cases {
            let e = parse_manifests("f.yaml", &format!("{ok}---\n{doc}")).unwrap_err();
            assert_eq!((e.file.as_str(), e.document, e.line, e.problem), ("f.yaml", 2, 5, problem), "{doc}");
        }
        let e = parse_manifests("f.yaml", &format!("{ok}---\nkey: [unclosed\n  data: c2VjcmV0\n")).unwrap_err();
        assert!(matches!(e.problem, ManifestProblem::NotYaml(_)), "{e:?}");
        assert!(!e.to_string().contains("c2VjcmV0"), "{e}");
        let e =
            parse_manifests("f.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: 3}\n").unwrap_err();
        assert!(matches!(e.problem, ManifestProblem::InvalidMetadata(_)), "{e:?}");
    }

    #[test]
    fn debug_leaves_the_data_out() {
        let m = parse_manifests(
            "s.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {password: hunter2}\n",
        )
        .unwrap();
        let debug = format!("{:?}", m[0]);
        assert!(debug.contains("Secret") && !debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn namespaces_and_crds_first_custom_resources_late_webhooks_last() {
        let kinds = [
            ("example.com/v1", "Widget"),
            ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"),
            ("apps/v1", "Deployment"),
            ("v1", "ConfigMap"),
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
            ("v1", "Namespace"),
            ("v1", "ServiceAccount"),
        ];
        let mut m: Vec<Manifest> = kinds
            .iter()
            .enumerate()
            .map(|(i, (av, k))| {
                let text = format!("apiVersion: {av}\nkind: {k}\nmetadata: {{name: n{i}}}\n");
                parse_manifests("k.yaml", &text).unwrap().remove(0)
            })
            .collect();
        sort_for_apply(&mut m);
        let order: Vec<&str> = m.iter().map(Manifest::kind).collect();
        assert_eq!(
            order,
            [
                "Namespace",
                "CustomResourceDefinition",
                "ServiceAccount",
                "ConfigMap",
                "Deployment",
                "Widget",
                "ValidatingWebhookConfiguration"
            ]
        );
    }
}
