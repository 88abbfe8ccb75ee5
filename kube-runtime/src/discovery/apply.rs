//! Applying files of manifests with server-side apply, in dependency order.
//!
//! [`read_manifests`] reads a file, or the `.yaml`, `.yml` and `.json` files of a folder (by
//! name, not recursing), as the core's [`parse_manifests`] does. [`apply`] then:
//!
//! 1. orders the objects ([`sort_for_apply`]: Namespaces, then CustomResourceDefinitions, ...,
//!    custom resources last but for admission webhooks);
//! 2. resolves the kind of every object before applying any: from discovery (run again once
//!    if some are unknown), or from a CRD of the same set. An unknown kind is an error naming
//!    the object's file and document, and nothing is applied;
//! 3. applies them one by one (`PATCH` with `application/apply-patch+yaml` and the field
//!    manager), namespaced objects without a namespace in [`ApplyOptions::namespace`]; before
//!    the first object whose kind a CRD of the set declares, it waits for those CRDs to be
//!    Established;
//! 4. stops at the first failure, with what was applied and what was not ([`ApplyError::Failed`]).

use std::fmt;
use std::path::Path;
use std::time::Duration;

use futures_util::future::{Either, select};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube_proto::discovery::{ResourceInfo, crd_resources};
use kube_proto::manifest::{Manifest, ManifestError, parse_manifests, sort_for_apply};
use kube_proto::{DynamicObject, Patch, PatchParams};

use super::{Discovery, api_for};
use crate::wait::{await_condition, conditions};
use crate::{Api, Error};

/// How to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOptions {
    /// The field manager of the applies.
    pub field_manager: String,
    /// Take ownership of fields other managers own (`force=true`).
    pub force: bool,
    /// The namespace of namespaced objects that name none.
    pub namespace: String,
    /// `dryRun=All`: the server checks and answers, and stores nothing. Custom resources whose
    /// CRD is in the same set then fail: the CRD was not created.
    pub dry_run: bool,
    /// How long to wait for the set's CRDs to be Established.
    pub crd_timeout: Duration,
}

impl ApplyOptions {
    /// Applies by `field_manager`, into the namespace `default`, without force, waiting up to a
    /// minute for CRDs.
    pub fn new(field_manager: &str) -> Self {
        ApplyOptions {
            field_manager: field_manager.to_owned(),
            force: false,
            namespace: "default".to_owned(),
            dry_run: false,
            crd_timeout: Duration::from_secs(60),
        }
    }

    /// Takes ownership of conflicting fields.
    #[must_use]
    pub fn force(mut self) -> Self {
        self.force = true;
        self
    }

    /// The namespace of namespaced objects that name none.
    #[must_use]
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = namespace.to_owned();
        self
    }

    /// Stores nothing (`dryRun=All`).
    #[must_use]
    pub fn dry_run(mut self) -> Self {
        self.dry_run = true;
        self
    }

    /// How long to wait for CRDs to be Established.
    #[must_use]
    pub fn crd_timeout(mut self, timeout: Duration) -> Self {
        self.crd_timeout = timeout;
        self
    }
}

/// Which object of which file: what reports name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRef {
    /// File, document and line (see [`Manifest::location`]).
    pub location: String,
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// The namespace it goes (or went) to; `None` for a cluster-wide object.
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

impl ManifestRef {
    fn of(m: &Manifest, namespace: Option<&str>) -> Self {
        ManifestRef {
            location: m.location(),
            api_version: m.api_version().to_owned(),
            kind: m.kind().to_owned(),
            namespace: namespace.map(str::to_owned),
            name: m.name().to_owned(),
        }
    }
}

impl fmt::Display for ManifestRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{} ({})", self.kind, self.name, self.location),
            None => write!(f, "{} {} ({})", self.kind, self.name, self.location),
        }
    }
}

/// One object applied.
#[derive(Clone)]
pub struct Applied {
    /// Which.
    pub manifest: ManifestRef,
    /// Its resource.
    pub resource: ResourceInfo,
    /// The object as the server answered.
    pub object: DynamicObject,
}

/// Without the object's fields: a Secret's data stays out of logs.
impl fmt::Debug for Applied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Applied")
            .field("manifest", &self.manifest)
            .field("resource", &self.resource.full_name())
            .finish_non_exhaustive()
    }
}

fn list(refs: &[ManifestRef]) -> String {
    if refs.is_empty() {
        return "none".to_owned();
    }
    refs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// Why applying stopped, and what was applied before.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// A file or folder could not be read. Nothing was applied.
    #[error("{path}: {message}; nothing was applied")]
    File {
        /// The path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A document is not a manifest (not YAML, no kind, ...). Nothing was applied.
    #[error("{0}; nothing was applied")]
    Manifest(ManifestError),
    /// Discovery failed, or an object's kind is not served and no CRD of the set declares it.
    /// Nothing was applied.
    #[error("{}{error}; nothing was applied", manifest.as_ref().map(|m| format!("{m}: ")).unwrap_or_default())]
    Unresolved {
        /// The object whose kind is unknown (none when discovery itself failed).
        manifest: Option<Box<ManifestRef>>,
        /// Why.
        error: Box<Error>,
    },
    /// The set's CustomResourceDefinitions were applied but not Established in time: the
    /// objects of their kinds were not applied.
    #[error(
        "the CustomResourceDefinition {crd} was not Established within {timeout:?}; applied: {}; not applied: {}",
        list(applied),
        list(not_applied)
    )]
    NotEstablished {
        /// What was applied, in order.
        applied: Vec<ManifestRef>,
        /// The CRD waited for.
        crd: String,
        /// How long.
        timeout: Duration,
        /// What was not applied.
        not_applied: Vec<ManifestRef>,
    },
    /// Applying stopped at `failed`.
    #[error("applying {failed}: {error}; applied: {}; not applied: {}", list(applied), list(not_applied))]
    Failed {
        /// What was applied, in order.
        applied: Vec<ManifestRef>,
        /// The object that failed.
        failed: Box<ManifestRef>,
        /// Why.
        error: Box<Error>,
        /// What was not applied (after `failed`).
        not_applied: Vec<ManifestRef>,
    },
}

impl ApplyError {
    /// What was applied before the failure (empty but for [`ApplyError::Failed`]).
    pub fn applied(&self) -> &[ManifestRef] {
        match self {
            ApplyError::Failed { applied, .. } | ApplyError::NotEstablished { applied, .. } => applied,
            _ => &[],
        }
    }
}

/// The manifests of a file, or of the `.yaml`, `.yml` and `.json` files of a folder (by file
/// name; subfolders are not read).
pub fn read_manifests(path: &Path) -> Result<Vec<Manifest>, ApplyError> {
    let file_error =
        |p: &Path, e: std::io::Error| ApplyError::File { path: p.display().to_string(), message: e.to_string() };
    let meta = std::fs::metadata(path).map_err(|e| file_error(path, e))?;
    let files = if meta.is_dir() {
        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(path)
            .map_err(|e| file_error(path, e))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .filter(|p| p.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "yaml" | "yml" | "json")))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(ApplyError::File {
                path: path.display().to_string(),
                message: "no manifests (.yaml, .yml or .json files) in this folder".to_owned(),
            });
        }
        files
    } else {
        vec![path.to_path_buf()]
    };
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|e| file_error(&file, e))?;
        out.extend(parse_manifests(&file.display().to_string(), &text).map_err(ApplyError::Manifest)?);
    }
    Ok(out)
}

fn is_crd(m: &Manifest) -> bool {
    m.kind() == "CustomResourceDefinition" && m.api_version().starts_with("apiextensions.k8s.io/")
}

/// Where an object's resource comes from.
enum Source {
    /// Discovery lists it.
    Served(ResourceInfo),
    /// A CRD of the set declares it: wait for the CRD first.
    Declared(ResourceInfo),
}

/// Applies `manifests` (see the [module](self) docs): what was applied, in order.
pub async fn apply(
    discovery: &Discovery,
    mut manifests: Vec<Manifest>,
    options: &ApplyOptions,
) -> Result<Vec<Applied>, ApplyError> {
    sort_for_apply(&mut manifests);
    let declared: Vec<ResourceInfo> = manifests
        .iter()
        .filter(|m| is_crd(m))
        .flat_map(|m| serde_json::to_value(&m.object).map(|v| crd_resources(&v)).unwrap_or_default())
        .collect();
    let unresolved = |error| ApplyError::Unresolved { manifest: None, error: Box::new(error) };
    let mut catalog = discovery.catalog().await.map_err(unresolved)?;
    let mut refreshed = false;
    let mut plan: Vec<(Manifest, Source)> = Vec::with_capacity(manifests.len());
    for m in manifests {
        let (av, kind) = (m.api_version(), m.kind());
        let mut found = catalog.resolve_kind(av, kind).ok().cloned();
        let in_set = || declared.iter().find(|r| r.resource.api_version == av && r.resource.kind == kind).cloned();
        if found.is_none() && in_set().is_none() && !refreshed {
            // A kind unknown to a cached catalog may have been added since.
            catalog = discovery.refresh().await.map_err(unresolved)?;
            refreshed = true;
            found = catalog.resolve_kind(av, kind).ok().cloned();
        }
        let source = match (found, in_set()) {
            (Some(r), _) => Source::Served(r),
            (None, Some(r)) => Source::Declared(r),
            (None, None) => {
                let error = catalog.resolve_kind(av, kind).map(|_| ()).unwrap_err();
                return Err(ApplyError::Unresolved {
                    manifest: Some(Box::new(ManifestRef::of(&m, m.namespace()))),
                    error: Box::new(Error::Discovery(error.into())),
                });
            }
        };
        plan.push((m, source));
    }

    let client = discovery.client().clone();
    let mut pp = PatchParams::apply(&options.field_manager);
    pp.force = options.force;
    pp.dry_run = options.dry_run;
    let mut applied: Vec<Applied> = Vec::new();
    let mut crds: Vec<String> = Vec::new();
    let mut crds_ready = false;
    let refs = |plan: &[(Manifest, Source)]| -> Vec<ManifestRef> {
        plan.iter().map(|(m, s)| ManifestRef::of(m, target_namespace(m, source_info(s), options))).collect()
    };
    for i in 0..plan.len() {
        let (m, source) = &plan[i];
        let info = match source {
            Source::Served(r) => r.clone(),
            Source::Declared(r) => {
                if !crds_ready {
                    crds_ready = true;
                    match wait_established(discovery, &crds, options.crd_timeout).await {
                        Ok(()) => {}
                        Err(Waited::Error(error)) => {
                            return Err(failed(&applied, m, source, error, refs(&plan[i + 1..]), options));
                        }
                        Err(Waited::TimedOut(crd)) => {
                            return Err(ApplyError::NotEstablished {
                                applied: applied.iter().map(|a| a.manifest.clone()).collect(),
                                crd,
                                timeout: options.crd_timeout,
                                not_applied: refs(&plan[i..]),
                            });
                        }
                    }
                    // The server's view once they are served, when discovery already has it.
                    if let Ok(c) = discovery.refresh().await {
                        catalog = c;
                    }
                }
                catalog.resolve_kind(m.api_version(), m.kind()).cloned().unwrap_or_else(|_| r.clone())
            }
        };
        let namespace = target_namespace(m, &info, options);
        let mut object = m.object.clone();
        object.metadata.namespace = namespace.map(str::to_owned);
        let api = api_for(&client, &info, namespace);
        match api.patch(m.name(), &pp, &Patch::Apply(&object)).await {
            Ok(object) => {
                if is_crd(m) {
                    crds.push(m.name().to_owned());
                }
                tracing::debug!(object = %ManifestRef::of(m, namespace), "applied");
                applied.push(Applied { manifest: ManifestRef::of(m, namespace), resource: info, object });
            }
            Err(error) => return Err(failed(&applied, m, source, error, refs(&plan[i + 1..]), options)),
        }
    }
    Ok(applied)
}

fn source_info(s: &Source) -> &ResourceInfo {
    match s {
        Source::Served(r) | Source::Declared(r) => r,
    }
}

fn target_namespace<'a>(m: &'a Manifest, info: &ResourceInfo, options: &'a ApplyOptions) -> Option<&'a str> {
    info.resource.namespaced.then(|| m.namespace().unwrap_or(&options.namespace))
}

fn failed(
    applied: &[Applied],
    m: &Manifest,
    source: &Source,
    error: Error,
    not_applied: Vec<ManifestRef>,
    options: &ApplyOptions,
) -> ApplyError {
    ApplyError::Failed {
        applied: applied.iter().map(|a| a.manifest.clone()).collect(),
        failed: Box::new(ManifestRef::of(m, target_namespace(m, source_info(source), options))),
        error: Box::new(error),
        not_applied,
    }
}

enum Waited {
    Error(Error),
    TimedOut(String),
}

/// Waits until each CRD named is Established, or `timeout` passes (on the transport's timer).
async fn wait_established(discovery: &Discovery, names: &[String], timeout: Duration) -> Result<(), Waited> {
    let client = discovery.client();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let deadline = client.now() + timeout;
    for name in names {
        let established = await_condition(crds.clone(), name, conditions::is_crd_established());
        match select(Box::pin(established), client.transport().sleep_until(deadline)).await {
            Either::Left((Ok(_), _)) => {}
            Either::Left((Err(e), _)) => return Err(Waited::Error(e)),
            Either::Right(_) => return Err(Waited::TimedOut(name.clone())),
        }
    }
    Ok(())
}
