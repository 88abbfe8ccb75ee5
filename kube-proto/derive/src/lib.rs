//! `#[derive(CustomResource)]` for kube-proto: from a spec struct, a custom resource kind (its
//! struct with `metadata`, `spec` and `status`, its `Resource` impl) and its
//! CustomResourceDefinition with a structural schema. Use it through kube-proto's `derive`
//! feature, as `kube_proto::CustomResource`; the runtime half lives in `kube_proto::crd`.
//!
//! ```ignore
//! use kube_proto::CustomResource;
//! use kube_proto::crd::CustomResourceExt;
//! use kube_proto::schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
//! #[schemars(crate = "kube_proto::schemars")]
//! #[kube(group = "example.com", version = "v1", kind = "Widget", namespaced, status = "WidgetStatus",
//!        shortname = "wd", printcolumn(name = "Color", type_ = "string", json_path = ".spec.color"))]
//! pub struct WidgetSpec { pub replicas: i32, pub color: Option<String> }
//!
//! #[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
//! #[schemars(crate = "kube_proto::schemars")]
//! pub struct WidgetStatus { pub ready: bool }
//!
//! let w = Widget::new("w1", WidgetSpec { replicas: 1, color: None });
//! let crd = Widget::crd()?;
//! ```
//!
//! The attributes, all inside `#[kube(...)]`:
//!
//! | attribute | meaning |
//! | --- | --- |
//! | `group = "example.com"` | API group (required) |
//! | `version = "v1"` | version (required) |
//! | `kind = "Widget"` | kind, and the name of the generated struct (required) |
//! | `namespaced` | namespaced; cluster-scoped without it |
//! | `status = "WidgetStatus"` | the status struct; enables the status subresource |
//! | `scale(spec_replicas_path = "..", status_replicas_path = "..", label_selector_path = "..")` or `scale = "{json}"` | the scale subresource |
//! | `printcolumn(name = "..", type_ = "..", json_path = "..", description = "..", format = "..", priority = 1)` or `printcolumn = "{json}"` | an additional printer column (repeatable) |
//! | `shortname = "wd"`, `category = "all"` | short names and categories (repeatable) |
//! | `selectable = ".spec.color"` | a field usable in field selectors (repeatable) |
//! | `plural = ".."`, `singular = ".."` | names; guessed from the kind by default |
//! | `validation = "CEL rule"` or `validation(rule = "..", message = "..")` | `x-kubernetes-validations` on the whole object (repeatable) |
//! | `deprecated` or `deprecated = "warning"` | the version is deprecated |
//! | `served = false`, `storage = false` | served and storage flags (both true by default) |
//! | `derive = "PartialEq"` | an extra derive on the generated struct (repeatable) |
//! | `doc = ".."` | the schema's description |
//! | `crate = "::kube_proto"` | where kube-proto is, when renamed or re-exported |
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, LitBool, LitInt, LitStr, Path, Type};

/// Derives a custom resource kind from its spec struct. See the crate docs for the attributes.
#[proc_macro_derive(CustomResource, attributes(kube))]
pub fn derive_custom_resource(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

const KNOWN: &str = "group, version, kind, namespaced, status, scale, printcolumn, shortname, category, \
                     selectable, plural, singular, validation, deprecated, served, storage, derive, doc, crate";

#[derive(Default)]
struct Attrs {
    group: Option<LitStr>,
    version: Option<LitStr>,
    kind: Option<LitStr>,
    namespaced: bool,
    status: Option<(Type, Span)>,
    scale: Option<Json>,
    printcolumns: Vec<Json>,
    shortnames: Vec<LitStr>,
    categories: Vec<LitStr>,
    selectable: Vec<LitStr>,
    plural: Option<LitStr>,
    singular: Option<LitStr>,
    validations: Vec<(LitStr, Option<LitStr>)>,
    deprecated: Option<Option<LitStr>>,
    served: Option<LitBool>,
    storage: Option<LitBool>,
    derives: Vec<Path>,
    doc: Option<LitStr>,
    krate: Option<Path>,
}

/// A JSON value given as text (parsed when the CRD is made) or as keys (built by `json!`).
enum Json {
    Text(LitStr),
    Fields(Vec<(&'static str, TokenStream2)>),
}

fn set_once<T>(slot: &mut Option<T>, value: T, meta: &ParseNestedMeta) -> syn::Result<()> {
    if slot.is_some() {
        return Err(meta.error(format!("`{}` is given twice", path_name(&meta.path))));
    }
    *slot = Some(value);
    Ok(())
}

fn path_name(p: &Path) -> String {
    p.segments.iter().map(|s| s.ident.to_string()).collect::<Vec<_>>().join("::")
}

/// The attributes, and the tokens errors about the whole set point at (the first `#[kube(..)]`,
/// or the struct's name when there is none).
fn parse_attrs(input: &DeriveInput) -> syn::Result<(Attrs, TokenStream2)> {
    let mut a = Attrs::default();
    let mut span = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("kube")) {
        span.get_or_insert_with(|| quote!(#attr));
        attr.parse_nested_meta(|meta| {
            let name = path_name(&meta.path);
            match name.as_str() {
                "group" => set_once(&mut a.group, meta.value()?.parse()?, &meta),
                "version" => set_once(&mut a.version, meta.value()?.parse()?, &meta),
                "kind" => {
                    let lit: LitStr = meta.value()?.parse()?;
                    syn::parse_str::<syn::Ident>(&lit.value()).map_err(|_| {
                        syn::Error::new(lit.span(), "`kind` must be a Rust identifier, such as \"Widget\"")
                    })?;
                    set_once(&mut a.kind, lit, &meta)
                }
                "namespaced" => {
                    a.namespaced = true;
                    Ok(())
                }
                "status" => {
                    let lit: LitStr = meta.value()?.parse()?;
                    let ty = status_type(&lit)?;
                    set_once(&mut a.status, (ty, lit.span()), &meta)
                }
                "scale" => {
                    let json = if meta.input.peek(syn::Token![=]) {
                        Json::Text(meta.value()?.parse()?)
                    } else {
                        Json::Fields(keyed(
                            &meta,
                            &[
                                ("spec_replicas_path", "specReplicasPath", true),
                                ("status_replicas_path", "statusReplicasPath", true),
                                ("label_selector_path", "labelSelectorPath", false),
                            ],
                        )?)
                    };
                    set_once(&mut a.scale, json, &meta)
                }
                "printcolumn" => {
                    let json = if meta.input.peek(syn::Token![=]) {
                        Json::Text(meta.value()?.parse()?)
                    } else {
                        Json::Fields(keyed(
                            &meta,
                            &[
                                ("name", "name", true),
                                ("type_", "type", true),
                                ("json_path", "jsonPath", true),
                                ("description", "description", false),
                                ("format", "format", false),
                                ("priority", "priority", false),
                            ],
                        )?)
                    };
                    a.printcolumns.push(json);
                    Ok(())
                }
                "shortname" => {
                    a.shortnames.push(meta.value()?.parse()?);
                    Ok(())
                }
                "category" => {
                    a.categories.push(meta.value()?.parse()?);
                    Ok(())
                }
                "selectable" => {
                    a.selectable.push(meta.value()?.parse()?);
                    Ok(())
                }
                "plural" => set_once(&mut a.plural, meta.value()?.parse()?, &meta),
                "singular" => set_once(&mut a.singular, meta.value()?.parse()?, &meta),
                "validation" => {
                    if meta.input.peek(syn::Token![=]) {
                        a.validations.push((meta.value()?.parse()?, None));
                    } else {
                        let (mut rule, mut message) = (None, None);
                        meta.parse_nested_meta(|inner| match path_name(&inner.path).as_str() {
                            "rule" => set_once(&mut rule, inner.value()?.parse()?, &inner),
                            "message" => set_once(&mut message, inner.value()?.parse()?, &inner),
                            other => {
                                Err(inner
                                    .error(format!("unknown key `{other}` in validation(..); expected rule, message")))
                            }
                        })?;
                        let rule = rule.ok_or_else(|| meta.error("validation(..) needs rule = \"CEL rule\""))?;
                        a.validations.push((rule, message));
                    }
                    Ok(())
                }
                "deprecated" => {
                    let warning = if meta.input.peek(syn::Token![=]) { Some(meta.value()?.parse()?) } else { None };
                    set_once(&mut a.deprecated, warning, &meta)
                }
                "served" => set_once(&mut a.served, meta.value()?.parse()?, &meta),
                "storage" => set_once(&mut a.storage, meta.value()?.parse()?, &meta),
                "derive" => {
                    let lit: LitStr = meta.value()?.parse()?;
                    a.derives.push(lit.parse()?);
                    Ok(())
                }
                "doc" => set_once(&mut a.doc, meta.value()?.parse()?, &meta),
                "crate" => {
                    let lit: LitStr = meta.value()?.parse()?;
                    set_once(&mut a.krate, lit.parse()?, &meta)
                }
                other => Err(meta.error(format!("unknown #[kube] attribute `{other}`; expected one of: {KNOWN}"))),
            }
        })?;
    }
    Ok((
        a,
        span.unwrap_or_else(|| {
            let ident = &input.ident;
            quote!(#ident)
        }),
    ))
}

/// `key = value` pairs inside `name(...)`, renamed to their JSON keys; `required` ones must be there.
fn keyed(
    meta: &ParseNestedMeta,
    keys: &[(&str, &'static str, bool)],
) -> syn::Result<Vec<(&'static str, TokenStream2)>> {
    let mut out: Vec<(&'static str, TokenStream2)> = Vec::new();
    let outer = path_name(&meta.path);
    meta.parse_nested_meta(|inner| {
        let name = path_name(&inner.path);
        // `type` is a keyword; `type_` is the Rust spelling, both are taken.
        let name = if name == "type" { "type_".to_owned() } else { name };
        let Some((_, json, _)) = keys.iter().find(|(k, _, _)| *k == name) else {
            let expected: Vec<&str> = keys.iter().map(|(k, _, _)| *k).collect();
            return Err(inner.error(format!("unknown key `{name}` in {outer}(..); expected {}", expected.join(", "))));
        };
        if out.iter().any(|(k, _)| k == json) {
            return Err(inner.error(format!("`{name}` is given twice")));
        }
        let value = inner.value()?;
        let tokens = if value.peek(LitInt) {
            let n: LitInt = value.parse()?;
            quote!(#n)
        } else {
            let s: LitStr = value.parse()?;
            if *json == "priority" {
                let n: i32 = s.value().parse().map_err(|_| syn::Error::new(s.span(), "priority is a number"))?;
                quote!(#n)
            } else {
                quote!(#s)
            }
        };
        out.push((json, tokens));
        Ok(())
    })?;
    for (k, json, required) in keys {
        if *required && !out.iter().any(|(j, _)| j == json) {
            return Err(meta.error(format!("{outer}(..) needs `{k}`")));
        }
    }
    Ok(out)
}

/// The status type: a path to a struct, not a primitive, a string, an option or a collection.
fn status_type(lit: &LitStr) -> syn::Result<Type> {
    let not_struct =
        || syn::Error::new(lit.span(), "`status` must name a struct (the status type, such as \"WidgetStatus\")");
    let ty: Type = lit.parse().map_err(|_| not_struct())?;
    let Type::Path(p) = &ty else { return Err(not_struct()) };
    let last = p.path.segments.last().map(|s| s.ident.to_string()).unwrap_or_default();
    const NOT_STRUCTS: &[&str] = &[
        "bool", "char", "str", "String", "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128",
        "usize", "f32", "f64", "Option", "Vec", "Box", "HashMap", "BTreeMap", "HashSet", "BTreeSet", "Value",
    ];
    if p.qself.is_some() || NOT_STRUCTS.contains(&last.as_str()) {
        return Err(not_struct());
    }
    Ok(ty)
}

/// Kubernetes' guess of a plural from a kind (as `kube_proto::resource::guess_plural`).
fn guess_plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if lower.is_empty() || lower == "endpoints" {
        return lower;
    }
    if lower.ends_with('s')
        || lower.ends_with("ch")
        || lower.ends_with("sh")
        || lower.ends_with('x')
        || lower.ends_with('z')
    {
        return format!("{lower}es");
    }
    if let Some(stem) = lower.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
    {
        return format!("{stem}ies");
    }
    format!("{lower}s")
}

fn json_tokens(json: &Json, what: &str, krate: &TokenStream2) -> TokenStream2 {
    match json {
        Json::Text(s) => quote!(#krate::crd::parse_json(#what, #s)?),
        Json::Fields(fields) => {
            let keys = fields.iter().map(|(k, _)| *k);
            let values = fields.iter().map(|(_, v)| v);
            quote!(#krate::crd::__private::serde_json::json!({ #( #keys: #values ),* }))
        }
    }
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    match &input.data {
        Data::Struct(s) if matches!(s.fields, Fields::Named(_)) => {}
        _ => {
            return Err(syn::Error::new(
                input.ident.span(),
                "#[derive(CustomResource)] goes on the spec struct, a struct with named fields",
            ));
        }
    }
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new(input.generics.span(), "#[derive(CustomResource)] takes no generic spec struct"));
    }
    let (a, attr_tokens) = parse_attrs(input)?;
    let missing = |what: &str| syn::Error::new_spanned(&attr_tokens, format!("#[kube(...)] needs `{what} = \"...\"`"));
    let group = a.group.clone().ok_or_else(|| missing("group"))?;
    let version = a.version.clone().ok_or_else(|| missing("version"))?;
    let kind = a.kind.clone().ok_or_else(|| missing("kind"))?;
    if a.scale.is_some() && a.status.is_none() {
        return Err(syn::Error::new_spanned(
            &attr_tokens,
            "the scale subresource needs a status: add `status = \"...\"`",
        ));
    }

    let krate = match &a.krate {
        Some(p) => quote!(#p),
        None => quote!(::kube_proto),
    };
    let serde_path = format!("{}::crd::__private::serde", krate.to_string().replace(' ', ""));
    let private = quote!(#krate::crd::__private);
    let vis = &input.vis;
    let spec = &input.ident;
    let kind_str = kind.value();
    let kind_ident = syn::Ident::new(&kind_str, kind.span());
    let group_str = group.value();
    let version_str = version.value();
    let api_version = if group_str.is_empty() { version_str.clone() } else { format!("{group_str}/{version_str}") };
    let plural = a.plural.as_ref().map_or_else(|| guess_plural(&kind_str), LitStr::value);
    let singular = a.singular.as_ref().map_or_else(|| kind_str.to_ascii_lowercase(), LitStr::value);
    let crd_name = format!("{plural}.{group_str}");
    let namespaced = a.namespaced;
    let scope = if namespaced {
        quote!(#krate::resource::NamespaceResourceScope)
    } else {
        quote!(#krate::resource::ClusterResourceScope)
    };
    let description = a.doc.as_ref().map_or_else(
        || format!("Custom resource {kind_str}, derived from {spec} by #[derive(CustomResource)]"),
        LitStr::value,
    );
    let object_meta = quote!(#private::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta);
    let derives = &a.derives;
    let kind_doc = format!("The custom resource kind `{api_version}` `{kind_str}`, whose spec is [`{spec}`].");

    let (status_field, status_init, status_ser, status_ty, has_status, status_check) = match &a.status {
        Some((ty, span)) => {
            let check = quote_spanned! {*span=>
                const _: fn() = || {
                    fn status_is_usable<T: #private::schemars::JsonSchema + #private::serde::Serialize
                        + for<'de> #private::serde::Deserialize<'de> + ::core::clone::Clone + ::core::fmt::Debug>() {}
                    status_is_usable::<#ty>();
                };
            };
            (
                quote! {
                    /// The status, written by controllers; absent until then.
                    #[serde(default)]
                    pub status: ::core::option::Option<#ty>,
                },
                quote!(status: ::core::option::Option::None,),
                quote! {
                    match &self.status {
                        ::core::option::Option::Some(status) => state.serialize_field("status", status)?,
                        ::core::option::Option::None => state.skip_field("status")?,
                    }
                },
                quote!(#ty),
                true,
                check,
            )
        }
        None => (quote!(), quote!(), quote!(), quote!(()), false, quote!()),
    };
    let field_count = if has_status { quote!(4 + usize::from(self.status.is_some())) } else { quote!(4) };

    let shortnames: Vec<String> = a.shortnames.iter().map(LitStr::value).collect();
    let categories = a.categories.iter().map(LitStr::value);
    let selectable = a.selectable.iter().map(LitStr::value);
    let scale = a.scale.as_ref().map(|s| {
        let t = json_tokens(s, "scale", &krate);
        quote!(version.scale = ::core::option::Option::Some(#t);)
    });
    let printcolumns = a.printcolumns.iter().map(|p| json_tokens(p, "printcolumn", &krate));
    let validations = a.validations.iter().map(|(rule, message)| {
        let message = match message {
            Some(m) => quote!(::core::option::Option::Some(::std::string::String::from(#m))),
            None => quote!(::core::option::Option::None),
        };
        quote!((::std::string::String::from(#rule), #message))
    });
    let deprecated = a.deprecated.as_ref().map(|w| {
        let w = match w {
            Some(w) => quote!(::core::option::Option::Some(::std::string::String::from(#w))),
            None => quote!(::core::option::Option::None),
        };
        quote!(version.deprecated = ::core::option::Option::Some(#w);)
    });
    let served = a.served.as_ref().is_none_or(LitBool::value);
    let storage = a.storage.as_ref().is_none_or(LitBool::value);

    Ok(quote! {
        #[doc = #kind_doc]
        #[derive(#private::serde::Deserialize, ::core::clone::Clone, ::core::fmt::Debug #(, #derives)*)]
        #[serde(crate = #serde_path)]
        #vis struct #kind_ident {
            /// Standard object metadata.
            #[serde(default)]
            pub metadata: #object_meta,
            /// What the user wants.
            pub spec: #spec,
            #status_field
        }

        #status_check

        impl #kind_ident {
            /// An object of this kind named `name`, with this spec and no status.
            pub fn new(name: &str, spec: #spec) -> Self {
                Self {
                    metadata: #object_meta {
                        name: ::core::option::Option::Some(::std::string::String::from(name)),
                        ..::core::default::Default::default()
                    },
                    spec,
                    #status_init
                }
            }
        }

        impl #private::serde::Serialize for #kind_ident {
            fn serialize<S: #private::serde::Serializer>(&self, serializer: S) -> ::core::result::Result<S::Ok, S::Error> {
                use #private::serde::ser::SerializeStruct as _;
                let mut state = serializer.serialize_struct(#kind_str, #field_count)?;
                state.serialize_field("apiVersion", #api_version)?;
                state.serialize_field("kind", #kind_str)?;
                state.serialize_field("metadata", &self.metadata)?;
                state.serialize_field("spec", &self.spec)?;
                #status_ser
                state.end()
            }
        }

        impl #krate::Resource for #kind_ident {
            type DynamicType = ();
            type Scope = #scope;

            fn kind(_: &()) -> ::std::borrow::Cow<'_, str> {
                ::std::borrow::Cow::Borrowed(#kind_str)
            }
            fn group(_: &()) -> ::std::borrow::Cow<'_, str> {
                ::std::borrow::Cow::Borrowed(#group_str)
            }
            fn version(_: &()) -> ::std::borrow::Cow<'_, str> {
                ::std::borrow::Cow::Borrowed(#version_str)
            }
            fn api_version(_: &()) -> ::std::borrow::Cow<'_, str> {
                ::std::borrow::Cow::Borrowed(#api_version)
            }
            fn plural(_: &()) -> ::std::borrow::Cow<'_, str> {
                ::std::borrow::Cow::Borrowed(#plural)
            }
            fn is_namespaced(_: &()) -> bool {
                #namespaced
            }
            fn meta(&self) -> &#object_meta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut #object_meta {
                &mut self.metadata
            }
        }

        impl #krate::crd::CustomResourceExt for #kind_ident {
            fn crd() -> ::core::result::Result<
                #private::k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
                #krate::crd::CrdError,
            > {
                let schema = #krate::crd::kind_schema::<#spec, #status_ty>(#kind_str, #description, #has_status);
                let mut version = #krate::crd::CrdVersion::new(#group_str, #version_str, #kind_str, schema);
                version.plural = ::core::option::Option::Some(::std::string::String::from(#plural));
                version.singular = ::core::option::Option::Some(::std::string::String::from(#singular));
                version.namespaced = #namespaced;
                version.short_names = ::std::vec![#(::std::string::String::from(#shortnames)),*];
                version.categories = ::std::vec![#(::std::string::String::from(#categories)),*];
                version.status_subresource = #has_status;
                #scale
                version.printer_columns = ::std::vec![#(#printcolumns),*];
                version.selectable_fields = ::std::vec![#(::std::string::String::from(#selectable)),*];
                version.validations = ::std::vec![#(#validations),*];
                version.served = #served;
                version.storage = #storage;
                #deprecated
                version.to_crd()
            }
            fn crd_name() -> &'static str {
                #crd_name
            }
            fn api_resource() -> #krate::ApiResource {
                #krate::ApiResource::new(#group_str, #version_str, #kind_str, #plural, #namespaced)
            }
            fn shortnames() -> &'static [&'static str] {
                &[#(#shortnames),*]
            }
        }
    })
}
