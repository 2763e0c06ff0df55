//! `/openapi/v2` in protobuf, the form kubectl asks for
//! (`Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`) when it validates a
//! kind that OpenAPI v3 does not describe, and for `kubectl explain --output
//! plaintext-openapiv2`. kube-apiserver answers that form only; JSON or a 406 makes kubectl
//! fail with "unable to respond with a content type the client supports" instead of its own
//! "no matches for kind" error.
//!
//! The message layout is gnostic's `openapi.v2.Document` (OpenAPIv2.proto). The encoder walks
//! the Swagger JSON document this server already renders: `swagger`, `info` and every
//! definition (the schemas kubectl's validator and `explain` read, vendor extensions such as
//! `x-kubernetes-group-version-kind` included, their values as YAML text like gnostic's
//! `Any.yaml`). Paths are left out: kubectl's protobuf consumers use definitions only, and the
//! JSON form carries them.

use serde_json::{Map, Value};

/// The media type kubectl asks for (`@` is kube-openapi's deprecated spelling, which Go's
/// `mime` parser refuses in a response `Content-Type`).
pub const MEDIA_TYPES: [&str; 2] = [
    "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
];

/// The `Content-Type` of the protobuf answer, as kube-apiserver sends it.
pub const CONTENT_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// Encodes a Swagger 2.0 JSON document as `openapi.v2.Document`.
pub fn encode(doc: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    str_field(&mut out, 1, doc["swagger"].as_str().unwrap_or("2.0"));
    if let Some(info) = doc.get("info") {
        let mut m = Vec::new();
        str_field(&mut m, 1, info["title"].as_str().unwrap_or_default());
        str_field(&mut m, 2, info["version"].as_str().unwrap_or_default());
        bytes_field(&mut out, 2, &m);
    }
    if let Some(defs) = doc.get("definitions").and_then(Value::as_object) {
        let mut m = Vec::new();
        for (name, schema) in defs {
            bytes_field(&mut m, 1, &named_schema(name, schema));
        }
        bytes_field(&mut out, 9, &m);
    }
    out
}

fn named_schema(name: &str, schema: &Value) -> Vec<u8> {
    let mut m = Vec::new();
    str_field(&mut m, 1, name);
    bytes_field(&mut m, 2, &schema_message(schema));
    m
}

/// `openapi.v2.Schema`.
fn schema_message(schema: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let Some(s) = schema.as_object() else {
        return out;
    };
    let text = |k: &str| s.get(k).and_then(Value::as_str);
    // A described reference is `allOf: [{$ref}]` in the JSON form (JSON Schema ignores keys
    // beside `$ref`); Kubernetes' v2 document, and kubectl's reader of it, put the `$ref`
    // beside the description instead.
    let all_of = s.get("allOf").and_then(Value::as_array);
    let lone_ref = all_of
        .filter(|a| a.len() == 1)
        .and_then(|a| a[0].get("$ref"))
        .and_then(Value::as_str);
    if let Some(r) = text("$ref").or(lone_ref) {
        str_field(&mut out, 1, r);
    }
    for (key, tag) in [("format", 2), ("title", 3), ("description", 4)] {
        if let Some(v) = text(key) {
            str_field(&mut out, tag, v);
        }
    }
    if let Some(v) = s.get("default") {
        bytes_field(&mut out, 5, &any(v));
    }
    for (key, tag) in [("multipleOf", 6), ("maximum", 7), ("minimum", 9)] {
        if let Some(v) = s.get(key).and_then(Value::as_f64) {
            key_field(&mut out, tag, 1);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    for (key, tag) in [
        ("exclusiveMaximum", 8),
        ("exclusiveMinimum", 10),
        ("uniqueItems", 16),
        ("readOnly", 27),
    ] {
        if s.get(key).and_then(Value::as_bool) == Some(true) {
            varint_field(&mut out, tag, 1);
        }
    }
    for (key, tag) in [
        ("maxLength", 11),
        ("minLength", 12),
        ("maxItems", 14),
        ("minItems", 15),
        ("maxProperties", 17),
        ("minProperties", 18),
    ] {
        if let Some(v) = s.get(key).and_then(Value::as_i64) {
            varint_field(&mut out, tag, v as u64);
        }
    }
    if let Some(p) = text("pattern") {
        str_field(&mut out, 13, p);
    }
    for r in s
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(r) = r.as_str() {
            str_field(&mut out, 19, r);
        }
    }
    for e in s
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        bytes_field(&mut out, 20, &any(e));
    }
    match s.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut m = Vec::new();
            varint_field(&mut m, 2, u64::from(*b));
            bytes_field(&mut out, 21, &m);
        }
        Some(v @ Value::Object(_)) => {
            let mut m = Vec::new();
            bytes_field(&mut m, 1, &schema_message(v));
            bytes_field(&mut out, 21, &m);
        }
        _ => {}
    }
    let types: Vec<&str> = match s.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() {
        let mut m = Vec::new();
        for t in types {
            str_field(&mut m, 1, t);
        }
        bytes_field(&mut out, 22, &m);
    }
    let items: Vec<&Value> = match s.get("items") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        _ => Vec::new(),
    };
    if !items.is_empty() {
        let mut m = Vec::new();
        for i in items {
            bytes_field(&mut m, 1, &schema_message(i));
        }
        bytes_field(&mut out, 23, &m);
    }
    for a in all_of.filter(|_| lone_ref.is_none()).into_iter().flatten() {
        bytes_field(&mut out, 24, &schema_message(a));
    }
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        let mut m = Vec::new();
        for (name, p) in props {
            bytes_field(&mut m, 1, &named_schema(name, p));
        }
        bytes_field(&mut out, 25, &m);
    }
    if let Some(d) = text("discriminator") {
        str_field(&mut out, 26, d);
    }
    if let Some(v) = s.get("example") {
        bytes_field(&mut out, 30, &any(v));
    }
    vendor_extensions(&mut out, 31, s);
    out
}

/// `x-...` keys as `NamedAny` entries.
fn vendor_extensions(out: &mut Vec<u8>, tag: u32, s: &Map<String, Value>) {
    for (k, v) in s.iter().filter(|(k, _)| k.starts_with("x-")) {
        let mut m = Vec::new();
        str_field(&mut m, 1, k);
        bytes_field(&mut m, 2, &any(v));
        bytes_field(out, tag, &m);
    }
}

/// `openapi.v2.Any` holding a value as YAML text (JSON is YAML).
fn any(v: &Value) -> Vec<u8> {
    let mut m = Vec::new();
    str_field(&mut m, 2, &v.to_string());
    m
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key_field(out: &mut Vec<u8>, tag: u32, wire: u8) {
    varint(out, (u64::from(tag) << 3) | u64::from(wire));
}

fn varint_field(out: &mut Vec<u8>, tag: u32, v: u64) {
    key_field(out, tag, 0);
    varint(out, v);
}

fn bytes_field(out: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    key_field(out, tag, 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn str_field(out: &mut Vec<u8>, tag: u32, s: &str) {
    bytes_field(out, tag, s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A minimal reader for the test: the length-delimited fields of one message.
    fn fields(mut b: &[u8]) -> Vec<(u32, Vec<u8>)> {
        let mut out = Vec::new();
        let read_varint = |b: &mut &[u8]| {
            let (mut v, mut shift) = (0u64, 0);
            loop {
                let byte = b[0];
                *b = &b[1..];
                v |= u64::from(byte & 0x7f) << shift;
                shift += 7;
                if byte < 0x80 {
                    return v;
                }
            }
        };
        while !b.is_empty() {
            let key = read_varint(&mut b);
            let (tag, wire) = ((key >> 3) as u32, key & 7);
            match wire {
                0 => out.push((tag, read_varint(&mut b).to_le_bytes().to_vec())),
                1 => {
                    out.push((tag, b[..8].to_vec()));
                    b = &b[8..];
                }
                2 => {
                    let n = read_varint(&mut b) as usize;
                    out.push((tag, b[..n].to_vec()));
                    b = &b[n..];
                }
                w => panic!("unexpected wire type {w}"),
            }
        }
        out
    }

    fn text(f: &[(u32, Vec<u8>)], tag: u32) -> Vec<String> {
        f.iter()
            .filter(|(t, _)| *t == tag)
            .map(|(_, b)| String::from_utf8(b.clone()).unwrap())
            .collect()
    }

    #[test]
    fn documents_carry_definitions_with_their_extensions() {
        let doc = json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.33.0"},
            "paths": {"/api/v1/pods": {}},
            "definitions": {"io.k8s.api.apps.v1.Deployment": {
                "description": "D", "type": "object", "required": ["spec"],
                "properties": {"spec": {"description": "the spec", "allOf": [{"$ref": "#/definitions/S"}]},
                               "replicas": {"type": "integer", "format": "int32", "minimum": 0}},
                "x-kubernetes-group-version-kind": [{"group": "apps", "kind": "Deployment", "version": "v1"}]}}});
        let top = fields(&encode(&doc));
        assert_eq!(text(&top, 1), ["2.0"]);
        let info = fields(&top.iter().find(|(t, _)| *t == 2).unwrap().1);
        assert_eq!(text(&info, 2), ["v1.33.0"]);
        let defs = fields(&top.iter().find(|(t, _)| *t == 9).unwrap().1);
        assert_eq!(defs.len(), 1);
        let named = fields(&defs[0].1);
        assert_eq!(text(&named, 1), ["io.k8s.api.apps.v1.Deployment"]);
        let schema = fields(&named.iter().find(|(t, _)| *t == 2).unwrap().1);
        assert_eq!(text(&schema, 4), ["D"]);
        assert_eq!(text(&schema, 19), ["spec"]);
        let ty = fields(&schema.iter().find(|(t, _)| *t == 22).unwrap().1);
        assert_eq!(text(&ty, 1), ["object"]);
        let props = fields(&schema.iter().find(|(t, _)| *t == 25).unwrap().1);
        assert_eq!(props.len(), 2);
        // `allOf: [{$ref}]` becomes a `$ref` beside the description.
        let spec = props
            .iter()
            .map(|(_, b)| fields(b))
            .find(|named| text(named, 1) == ["spec"])
            .unwrap();
        let spec = fields(&spec.iter().find(|(t, _)| *t == 2).unwrap().1);
        assert_eq!(text(&spec, 1), ["#/definitions/S"]);
        assert_eq!(text(&spec, 4), ["the spec"]);
        assert!(spec.iter().all(|(t, _)| *t != 24));
        let ext = fields(&schema.iter().find(|(t, _)| *t == 31).unwrap().1);
        assert_eq!(text(&ext, 1), ["x-kubernetes-group-version-kind"]);
        let value = fields(&ext.iter().find(|(t, _)| *t == 2).unwrap().1);
        let yaml: Value = serde_json::from_str(&text(&value, 2)[0]).unwrap();
        assert_eq!(yaml[0]["kind"], "Deployment");
        // Paths are not encoded.
        assert!(top.iter().all(|(t, _)| *t != 8));
    }
}
