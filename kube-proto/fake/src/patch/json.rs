//! JSON patch (RFC 6902, `application/json-patch+json`), with JSON pointers (RFC 6901).

use serde_json::Value;

use super::PatchError;

/// Applies a JSON patch (RFC 6902): `add`, `remove`, `replace`, `move`, `copy` and `test`, with
/// JSON pointers (RFC 6901: `~0` is `~`, `~1` is `/`, `-` appends to an array).
///
/// Atomic: if any operation fails, `target` is left unchanged. Members other than `op`, `path`,
/// `from` and `value` are ignored. Numbers compare by value in `test` (`1` equals `1.0`).
pub fn json_patch(target: &mut Value, ops: &Value) -> Result<(), PatchError> {
    let ops = ops.as_array().ok_or(PatchError::NotAnArray)?;
    let mut doc = target.clone();
    for (index, op) in ops.iter().enumerate() {
        apply_json_op(&mut doc, index, op)?;
    }
    *target = doc;
    Ok(())
}

fn apply_json_op(doc: &mut Value, index: usize, op: &Value) -> Result<(), PatchError> {
    let invalid = |reason: &str| PatchError::InvalidOperation { index, reason: reason.into() };
    let obj = op.as_object().ok_or_else(|| invalid("an operation must be an object"))?;
    let name = obj.get("op").and_then(Value::as_str).ok_or_else(|| invalid("missing or non-string \"op\""))?;
    let path_str = obj.get("path").and_then(Value::as_str).ok_or_else(|| invalid("missing or non-string \"path\""))?;
    let path = parse_pointer(path_str).ok_or_else(|| PatchError::InvalidPointer { index, pointer: path_str.into() })?;
    let not_found = |p: &str| PatchError::PathNotFound { index, path: p.into() };
    let value = || obj.get("value").ok_or_else(|| invalid("missing \"value\""));
    let from = || -> Result<(&str, Vec<String>), PatchError> {
        let s = obj.get("from").and_then(Value::as_str).ok_or_else(|| invalid("missing or non-string \"from\""))?;
        let p = parse_pointer(s).ok_or_else(|| PatchError::InvalidPointer { index, pointer: s.into() })?;
        Ok((s, p))
    };
    match name {
        "add" => {
            let v = value()?.clone();
            pointer_add(doc, &path, v).ok_or_else(|| not_found(path_str))
        }
        "remove" => pointer_remove(doc, &path).map(drop).ok_or_else(|| not_found(path_str)),
        "replace" => {
            let v = value()?.clone();
            let slot = pointer_get_mut(doc, &path).ok_or_else(|| not_found(path_str))?;
            *slot = v;
            Ok(())
        }
        "move" => {
            let (from_str, from_path) = from()?;
            if from_path == path {
                return pointer_get(doc, &from_path).map(drop).ok_or_else(|| not_found(from_str));
            }
            if path.starts_with(&from_path) {
                return Err(invalid("cannot move a value into one of its own children"));
            }
            let v = pointer_remove(doc, &from_path).ok_or_else(|| not_found(from_str))?;
            pointer_add(doc, &path, v).ok_or_else(|| not_found(path_str))
        }
        "copy" => {
            let (from_str, from_path) = from()?;
            let v = pointer_get(doc, &from_path).ok_or_else(|| not_found(from_str))?.clone();
            pointer_add(doc, &path, v).ok_or_else(|| not_found(path_str))
        }
        "test" => {
            let expected = value()?;
            let failed = || PatchError::TestFailed { index, path: path_str.into() };
            // As the API server's JSON patch library has it: a member missing from an object that
            // is there tests equal to null (so `test /metadata/finalizers null` checks "none yet").
            let missing_member = path.split_last().is_some_and(
                |(last, parent)| matches!(pointer_get(doc, parent), Some(Value::Object(m)) if !m.contains_key(last)),
            );
            if missing_member && expected.is_null() {
                return Ok(());
            }
            let actual = pointer_get(doc, &path).ok_or_else(failed)?;
            if json_equal(actual, expected) {
                Ok(())
            } else {
                Err(PatchError::TestFailed { index, path: path_str.into() })
            }
        }
        other => Err(PatchError::UnknownOp { index, op: other.into() }),
    }
}

/// Splits a JSON pointer into unescaped reference tokens; `None` if it is not a pointer.
fn parse_pointer(s: &str) -> Option<Vec<String>> {
    if s.is_empty() {
        return Some(Vec::new());
    }
    s.strip_prefix('/')?.split('/').map(unescape_token).collect()
}

fn unescape_token(tok: &str) -> Option<String> {
    let mut out = String::with_capacity(tok.len());
    let mut chars = tok.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// An array index token: `0` or digits without a leading zero.
fn array_index(tok: &str) -> Option<usize> {
    if tok == "0" {
        return Some(0);
    }
    if tok.is_empty() || tok.starts_with('0') || !tok.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    tok.parse().ok()
}

fn pointer_get<'a>(doc: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(doc, |v, tok| match v {
        Value::Object(m) => m.get(tok),
        Value::Array(a) => a.get(array_index(tok)?),
        _ => None,
    })
}

fn pointer_get_mut<'a>(doc: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(doc, |v, tok| match v {
        Value::Object(m) => m.get_mut(tok),
        Value::Array(a) => a.get_mut(array_index(tok)?),
        _ => None,
    })
}

fn pointer_add(doc: &mut Value, path: &[String], value: Value) -> Option<()> {
    let Some((last, parent)) = path.split_last() else {
        *doc = value;
        return Some(());
    };
    match pointer_get_mut(doc, parent)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
            Some(())
        }
        Value::Array(a) => {
            let i = if last == "-" { a.len() } else { array_index(last)? };
            if i > a.len() {
                return None;
            }
            a.insert(i, value);
            Some(())
        }
        _ => None,
    }
}

fn pointer_remove(doc: &mut Value, path: &[String]) -> Option<Value> {
    let (last, parent) = path.split_last()?;
    match pointer_get_mut(doc, parent)? {
        Value::Object(m) => m.remove(last),
        Value::Array(a) => {
            let i = array_index(last)?;
            (i < a.len()).then(|| a.remove(i))
        }
        _ => None,
    }
}

/// JSON equality with numbers compared by value.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
            (Some(i), Some(j), _, _) => i == j,
            (_, _, Some(i), Some(j)) => i == j,
            _ => x.as_f64().zip(y.as_f64()).is_some_and(|(f, g)| f == g),
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::test_support::{body, fixture};
    use serde_json::json;

    fn jp(doc: Value, ops: Value) -> Result<Value, PatchError> {
        let mut d = doc;
        json_patch(&mut d, &ops).map(|()| d)
    }

    #[test]
    fn json_patch_rfc6902_a1_to_a8() {
        // A.1 adding an object member
        assert_eq!(
            jp(json!({"foo": "bar"}), json!([{"op": "add", "path": "/baz", "value": "qux"}])).unwrap(),
            json!({"baz": "qux", "foo": "bar"})
        );
        // A.2 adding an array element
        assert_eq!(
            jp(json!({"foo": ["bar", "baz"]}), json!([{"op": "add", "path": "/foo/1", "value": "qux"}])).unwrap(),
            json!({"foo": ["bar", "qux", "baz"]})
        );
        // A.3 removing an object member
        assert_eq!(
            jp(json!({"baz": "qux", "foo": "bar"}), json!([{"op": "remove", "path": "/baz"}])).unwrap(),
            json!({"foo": "bar"})
        );
        // A.4 removing an array element
        assert_eq!(
            jp(json!({"foo": ["bar", "qux", "baz"]}), json!([{"op": "remove", "path": "/foo/1"}])).unwrap(),
            json!({"foo": ["bar", "baz"]})
        );
        // A.5 replacing a value
        assert_eq!(
            jp(json!({"baz": "qux", "foo": "bar"}), json!([{"op": "replace", "path": "/baz", "value": "boo"}]))
                .unwrap(),
            json!({"baz": "boo", "foo": "bar"})
        );
        // A.6 moving a value
        assert_eq!(
            jp(
                json!({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}),
                json!([{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}])
            )
            .unwrap(),
            json!({"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}})
        );
        // A.7 moving an array element
        assert_eq!(
            jp(
                json!({"foo": ["all", "grass", "cows", "eat"]}),
                json!([{"op": "move", "from": "/foo/1", "path": "/foo/3"}])
            )
            .unwrap(),
            json!({"foo": ["all", "cows", "eat", "grass"]})
        );
        // A.8 testing a value: success
        let doc = json!({"baz": "qux", "foo": ["a", 2, "c"]});
        assert_eq!(
            jp(
                doc.clone(),
                json!([{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}])
            )
            .unwrap(),
            doc
        );
    }

    #[test]
    fn json_patch_rfc6902_a9_to_a16() {
        // A.9 testing a value: error
        assert_eq!(
            jp(json!({"baz": "qux"}), json!([{"op": "test", "path": "/baz", "value": "bar"}])),
            Err(PatchError::TestFailed { index: 0, path: "/baz".into() })
        );
        // A.10 adding a nested member object
        assert_eq!(
            jp(json!({"foo": "bar"}), json!([{"op": "add", "path": "/child", "value": {"grandchild": {}}}])).unwrap(),
            json!({"foo": "bar", "child": {"grandchild": {}}})
        );
        // A.11 ignoring unrecognized elements
        assert_eq!(
            jp(json!({"foo": "bar"}), json!([{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}])).unwrap(),
            json!({"foo": "bar", "baz": "qux"})
        );
        // A.12 adding to a nonexistent target
        assert_eq!(
            jp(json!({"foo": "bar"}), json!([{"op": "add", "path": "/baz/bat", "value": "qux"}])),
            Err(PatchError::PathNotFound { index: 0, path: "/baz/bat".into() })
        );
        // A.14 ~ escape ordering
        let doc = json!({"/": 9, "~1": 10});
        assert_eq!(jp(doc.clone(), json!([{"op": "test", "path": "/~01", "value": 10}])).unwrap(), doc);
        // A.15 comparing strings and numbers
        assert_eq!(
            jp(doc, json!([{"op": "test", "path": "/~01", "value": "10"}])),
            Err(PatchError::TestFailed { index: 0, path: "/~01".into() })
        );
        // A.16 adding an array value
        assert_eq!(
            jp(json!({"foo": ["bar"]}), json!([{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}])).unwrap(),
            json!({"foo": ["bar", ["abc", "def"]]})
        );
    }

    #[test]
    fn json_patch_fixture_sequence() {
        let fx = fixture!("patch-configmap-jsonpatch");
        let mut cm = json!({"data": {"a": "1", "c": "3", "d": "4", "e": "5"}});
        json_patch(&mut cm, &body(&fx)).unwrap();
        assert_eq!(cm["data"], fx["response"]["body"]["data"]);

        // A failing test op first: nothing changes.
        let fx = fixture!("patch-configmap-jsonpatch-test-failed");
        let before = cm.clone();
        let err = json_patch(&mut cm, &body(&fx)).unwrap_err();
        assert_eq!(err, PatchError::TestFailed { index: 0, path: "/data/a".into() });
        assert_eq!(cm, before);

        let fx = fixture!("patch-configmap-jsonpatch-remove-missing");
        let err = json_patch(&mut cm, &body(&fx)).unwrap_err();
        assert_eq!(err, PatchError::PathNotFound { index: 0, path: "/data/zzz".into() });
        assert_eq!(cm, before);
    }

    #[test]
    fn json_patch_is_atomic_when_a_later_op_fails() {
        let mut doc = json!({"a": 1, "list": [1, 2]});
        let before = doc.clone();
        let ops = json!([
            {"op": "add", "path": "/b", "value": 2},
            {"op": "remove", "path": "/list/0"},
            {"op": "replace", "path": "/missing", "value": 3}
        ]);
        assert_eq!(json_patch(&mut doc, &ops), Err(PatchError::PathNotFound { index: 2, path: "/missing".into() }));
        assert_eq!(doc, before);
    }

    #[test]
    fn json_patch_pointers_and_bounds() {
        let doc = json!({"a/b": {"m~n": [10, 20]}, "arr": [0, 1, 2]});
        assert_eq!(jp(doc.clone(), json!([{"op": "test", "path": "/a~1b/m~0n/1", "value": 20}])).unwrap(), doc);
        // Append with '-', insert at len, out of bounds.
        let v = jp(doc.clone(), json!([{"op": "add", "path": "/arr/3", "value": 3}])).unwrap();
        assert_eq!(v["arr"], json!([0, 1, 2, 3]));
        assert!(matches!(
            jp(doc.clone(), json!([{"op": "add", "path": "/arr/5", "value": 3}])),
            Err(PatchError::PathNotFound { index: 0, .. })
        ));
        assert!(matches!(
            jp(doc.clone(), json!([{"op": "remove", "path": "/arr/3"}])),
            Err(PatchError::PathNotFound { .. })
        ));
        assert!(matches!(
            jp(doc.clone(), json!([{"op": "replace", "path": "/arr/-", "value": 1}])),
            Err(PatchError::PathNotFound { .. })
        ));
        // Leading zeros are not indices.
        assert!(matches!(
            jp(doc.clone(), json!([{"op": "remove", "path": "/arr/01"}])),
            Err(PatchError::PathNotFound { .. })
        ));
        // Bad pointers.
        assert_eq!(
            jp(doc.clone(), json!([{"op": "remove", "path": "arr"}])),
            Err(PatchError::InvalidPointer { index: 0, pointer: "arr".into() })
        );
        assert_eq!(
            jp(doc.clone(), json!([{"op": "remove", "path": "/a~2"}])),
            Err(PatchError::InvalidPointer { index: 0, pointer: "/a~2".into() })
        );
        // The whole document.
        assert_eq!(jp(doc.clone(), json!([{"op": "replace", "path": "", "value": [1]}])).unwrap(), json!([1]));
        assert_eq!(jp(doc.clone(), json!([{"op": "add", "path": "", "value": {"x": 1}}])).unwrap(), json!({"x": 1}));
        assert!(jp(doc, json!([{"op": "remove", "path": ""}])).is_err());
    }

    #[test]
    fn json_patch_malformed_operations() {
        let doc = json!({"a": {"b": 1}});
        assert_eq!(jp(doc.clone(), json!({"op": "add"})), Err(PatchError::NotAnArray));
        assert_eq!(
            jp(doc.clone(), json!([{"op": "frobnicate", "path": "/a"}])),
            Err(PatchError::UnknownOp { index: 0, op: "frobnicate".into() })
        );
        assert!(matches!(
            jp(doc.clone(), json!([{"op": "add", "path": "/x"}])),
            Err(PatchError::InvalidOperation { index: 0, .. })
        ));
        assert!(matches!(jp(doc.clone(), json!([{"path": "/x"}])), Err(PatchError::InvalidOperation { .. })));
        assert!(matches!(jp(doc.clone(), json!(["add"])), Err(PatchError::InvalidOperation { .. })));
        assert!(matches!(
            jp(doc.clone(), json!([{"op": "move", "from": "/a", "path": "/a/b/c"}])),
            Err(PatchError::InvalidOperation { .. })
        ));
        assert!(matches!(
            jp(doc.clone(), json!([{"op": "copy", "path": "/c"}])),
            Err(PatchError::InvalidOperation { .. })
        ));
        // Moving onto itself is a no-op; copy copies; numbers compare by value.
        assert_eq!(jp(doc.clone(), json!([{"op": "move", "from": "/a", "path": "/a"}])).unwrap(), doc);
        let v = jp(doc.clone(), json!([{"op": "copy", "from": "/a", "path": "/c"}])).unwrap();
        assert_eq!(v, json!({"a": {"b": 1}, "c": {"b": 1}}));
        assert!(jp(doc.clone(), json!([{"op": "test", "path": "/a/b", "value": 1.0}])).is_ok());
        // A member missing from an object tests equal to null, as in the server's library; a
        // missing parent does not.
        assert!(jp(doc.clone(), json!([{"op": "test", "path": "/a/c", "value": null}])).is_ok());
        assert!(jp(doc.clone(), json!([{"op": "test", "path": "/a/c", "value": 1}])).is_err());
        assert!(jp(doc, json!([{"op": "test", "path": "/x/c", "value": null}])).is_err());
        assert_eq!(
            PatchError::TestFailed { index: 3, path: "/a".into() }.to_string(),
            "operation 3: test failed at \"/a\""
        );
    }
}
