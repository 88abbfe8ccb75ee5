//! The shape of the descriptor table in [`schema`](super::schema): messages, their fields and
//! the Kubernetes types whose JSON form is not a plain object.

/// A protobuf message of the Kubernetes API.
pub(crate) struct Message {
    /// The full protobuf name, such as `k8s.io.api.core.v1.Pod` (for errors).
    pub name: &'static str,
    /// How its JSON form differs from an object of its fields.
    pub special: Special,
    /// Its fields, sorted by number.
    pub fields: &'static [Field],
}

/// Its name only: messages refer to each other in cycles (`JSONSchemaProps`), which a derived
/// `Debug` would follow forever.
impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl Message {
    /// The field with this number, if the table knows it.
    pub(crate) fn field(&self, number: u32) -> Option<&'static Field> {
        let fields: &'static [Field] = self.fields;
        fields.binary_search_by_key(&number, |f| f.number).ok().map(|i| &fields[i])
    }
}

/// One field of a message.
#[derive(Debug)]
pub(crate) struct Field {
    /// The protobuf field number.
    pub number: u32,
    /// The JSON name (empty for an inlined message).
    pub name: &'static str,
    /// The type of the value (of a map: the value's; keys are strings).
    pub ty: Ty,
    /// How many values.
    pub rep: Rep,
}

/// The type of a field's value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ty {
    /// A UTF-8 string.
    String,
    /// Bytes: base64 in JSON.
    Bytes,
    /// A varint boolean.
    Bool,
    /// A varint `int32`.
    Int32,
    /// A varint `int64`.
    Int64,
    /// A fixed64 double.
    Double,
    /// A nested message.
    Message(&'static Message),
}

/// How many values a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rep {
    /// At most one.
    Single,
    /// A list (a JSON array).
    Repeated,
    /// A map with string keys (a JSON object), as repeated entries `{1: key, 2: value}`.
    Map,
    /// A Go struct embedded with `json:",inline"`: a message on the wire whose fields are the
    /// parent's in JSON.
    Inline,
}

/// Messages whose JSON form is not an object of their fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Special {
    /// An object of its fields.
    None,
    /// `meta.v1.Time` `{seconds, nanos}`: an RFC 3339 string with seconds (`null` when zero).
    Time,
    /// `meta.v1.MicroTime`: an RFC 3339 string with microseconds.
    MicroTime,
    /// `resource.Quantity` `{string}`: the string.
    Quantity,
    /// `intstr.IntOrString` `{type, intVal, strVal}`: a number or a string.
    IntOrString,
    /// A message whose field 1 holds JSON bytes (`runtime.RawExtension`, `meta.v1.FieldsV1`,
    /// apiextensions' `JSON`): that JSON.
    RawJson,
    /// apiextensions' `JSONSchemaPropsOrArray` `{schema, jSONSchemas}`: an object or an array.
    SchemaOrArray,
    /// apiextensions' `JSONSchemaPropsOrBool` `{allows, schema}`: a bool or an object.
    SchemaOrBool,
    /// apiextensions' `JSONSchemaPropsOrStringArray` `{schema, property}`: an object or an array.
    SchemaOrStringArray,
    /// A message wrapping `repeated string items = 1` (`ExtraValue`): the array.
    Items,
}

/// The message of a kind (or list kind) by `apiVersion` and `kind`.
pub(crate) fn message_of(api_version: &str, kind: &str) -> Option<&'static Message> {
    let kinds = super::schema::KINDS;
    kinds.binary_search_by(|(av, k, _)| (*av, *k).cmp(&(api_version, kind))).ok().map(|i| kinds[i].2)
}
