//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`), decoded to the
//! same JSON the rest of the server works on.
//!
//! kubectl 1.31+ sends built-in objects from its typed clients (`kubectl create namespace`,
//! `create configmap`, ...) in this form. A body is the magic `k8s\0` followed by a
//! `runtime.Unknown` message (`typeMeta{apiVersion, kind}`, `raw` = the object's own message).
//! [`to_json`] finds the object's message layout in the generated [`messages`] table and walks
//! the wire format field by field. Go's protobuf encoding writes zero-valued fields that its
//! JSON encoding omits, so empty strings, `false` and zero timestamps are dropped as JSON would.
//! Well-known shapes become their JSON forms: `Time` → RFC 3339, `Quantity` → string,
//! `IntOrString` → int or string, `FieldsV1`/`RawExtension` → embedded JSON, bytes → base64,
//! `ExtraValue` (user extras of access reviews) → a list of strings.

pub mod messages;

use std::collections::HashMap;
use std::sync::LazyLock;

use base64::Engine;
use serde_json::{Map, Value, json};

/// The envelope prefix.
const MAGIC: &[u8] = b"k8s\x00";
/// Deepest message nesting accepted (bounds recursion on hostile input).
const MAX_DEPTH: usize = 64;

/// Why a protobuf body could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtobufError {
    /// The body does not start with `k8s\0`.
    #[error("protobuf body does not start with the Kubernetes magic prefix k8s\\0")]
    Magic,
    /// The wire format is broken (truncated varint, length past the end, bad wire type).
    #[error("malformed protobuf at byte {0}")]
    Malformed(usize),
    /// The envelope names a kind this server has no layout for.
    #[error("no protobuf layout for {0}; send this object as JSON")]
    UnknownKind(String),
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("protobuf message nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

static TABLE: LazyLock<HashMap<&'static str, &'static [messages::Field]>> =
    LazyLock::new(|| messages::MESSAGES.iter().map(|(n, f)| (*n, *f)).collect());

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    /// A 32-bit fixed value (no served field uses one; read past).
    Fixed32,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    fn err(&self) -> ProtobufError {
        ProtobufError::Malformed(self.base + self.pos)
    }

    fn varint(&mut self) -> Result<u64, ProtobufError> {
        let mut v: u64 = 0;
        for shift in (0..70).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or_else(|| self.err())?;
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(self.err());
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.err())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtobufError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| self.err())?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn field(&mut self) -> Result<Option<(u32, Wire<'a>, usize)>, ProtobufError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let tag = u32::try_from(key >> 3).map_err(|_| self.err())?;
        let at = self.base + self.pos;
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => Wire::Fixed64(u64::from_le_bytes(
                self.take(8)?.try_into().map_err(|_| self.err())?,
            )),
            2 => {
                let n = usize::try_from(self.varint()?).map_err(|_| self.err())?;
                Wire::Bytes(self.take(n)?)
            }
            5 => {
                self.take(4)?;
                Wire::Fixed32
            }
            _ => return Err(self.err()),
        };
        Ok(Some((tag, wire, at)))
    }
}

fn time(bytes: &[u8], base: usize, micro: bool) -> Result<Option<Value>, ProtobufError> {
    let mut r = Reader::new(bytes, base);
    let (mut secs, mut nanos) = (0i64, 0i64);
    while let Some((tag, w, _)) = r.field()? {
        match (tag, w) {
            (1, Wire::Varint(v)) => secs = v as i64,
            (2, Wire::Varint(v)) => nanos = i64::from(v as i32),
            _ => {}
        }
    }
    if secs <= 0 {
        return Ok(None);
    }
    let Ok(t) = jiff::Timestamp::new(
        secs,
        if micro {
            (nanos / 1000 * 1000) as i32
        } else {
            0
        },
    ) else {
        return Ok(None);
    };
    Ok(Some(Value::String(if micro {
        format!("{t:.6}")
    } else {
        t.to_string()
    })))
}

/// Decodes one message to JSON; `None` when it is a zero value JSON would omit.
fn message(
    name: &str,
    bytes: &[u8],
    base: usize,
    depth: usize,
) -> Result<Option<Value>, ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::TooDeep);
    }
    match name {
        "apimachinery.pkg.apis.meta.v1.Time" => return time(bytes, base, false),
        "apimachinery.pkg.apis.meta.v1.MicroTime" => return time(bytes, base, true),
        "apimachinery.pkg.api.resource.Quantity"
        | "apimachinery.pkg.apis.meta.v1.FieldsV1"
        | "apimachinery.pkg.runtime.RawExtension" => {
            let mut r = Reader::new(bytes, base);
            while let Some((tag, w, at)) = r.field()? {
                if let (1, Wire::Bytes(b)) = (tag, w) {
                    return Ok(Some(if name.ends_with("Quantity") {
                        Value::String(String::from_utf8_lossy(b).into_owned())
                    } else {
                        serde_json::from_slice(b).map_err(|_| ProtobufError::Malformed(at))?
                    }));
                }
            }
            return Ok(None);
        }
        // `map<string, ExtraValue>`: JSON shows each value as a plain list of strings.
        "api.authentication.v1.ExtraValue" | "api.authorization.v1.ExtraValue" => {
            let mut r = Reader::new(bytes, base);
            let mut items = Vec::new();
            while let Some((tag, w, _)) = r.field()? {
                if let (1, Wire::Bytes(b)) = (tag, w) {
                    items.push(Value::String(String::from_utf8_lossy(b).into_owned()));
                }
            }
            return Ok(Some(Value::Array(items)));
        }
        "apimachinery.pkg.util.intstr.IntOrString" => {
            let mut r = Reader::new(bytes, base);
            let (mut ty, mut int, mut s) = (0u64, 0i64, String::new());
            while let Some((tag, w, _)) = r.field()? {
                match (tag, w) {
                    (1, Wire::Varint(v)) => ty = v,
                    (2, Wire::Varint(v)) => int = i64::from(v as i32),
                    (3, Wire::Bytes(b)) => s = String::from_utf8_lossy(b).into_owned(),
                    _ => {}
                }
            }
            return Ok(Some(if ty == 1 {
                Value::String(s)
            } else {
                json!(int)
            }));
        }
        _ => {}
    }
    let fields = TABLE
        .get(name)
        .ok_or_else(|| ProtobufError::UnknownKind(name.to_string()))?;
    let mut out = Map::new();
    let mut r = Reader::new(bytes, base);
    while let Some((tag, wire, at)) = r.field()? {
        let Some(&(_, json_name, kind, repeated)) = fields.iter().find(|f| f.0 == tag) else {
            continue; // Unknown field: skipped, as protobuf readers do.
        };
        if let Some(value_kind) = kind.strip_prefix("map:") {
            let Wire::Bytes(entry) = wire else {
                return Err(ProtobufError::Malformed(at));
            };
            let mut er = Reader::new(entry, at);
            let (mut key, mut val) = (String::new(), Value::Null);
            while let Some((t, w, a)) = er.field()? {
                match (t, w) {
                    (1, Wire::Bytes(b)) => key = String::from_utf8_lossy(b).into_owned(),
                    (2, w) => val = scalar(value_kind, w, a, depth, true)?.unwrap_or(Value::Null),
                    _ => {}
                }
            }
            let m = out.entry(json_name).or_insert_with(|| json!({}));
            if let Some(m) = m.as_object_mut() {
                m.insert(key, val);
            }
            continue;
        }
        if repeated {
            // Packed scalars arrive as one length-delimited run of varints.
            if let (Wire::Bytes(b), "int32" | "int64" | "bool") = (&wire, kind) {
                let mut pr = Reader::new(b, at);
                while pr.pos < b.len() {
                    let v = pr.varint()?;
                    let list = out.entry(json_name).or_insert_with(|| json!([]));
                    if let Some(l) = list.as_array_mut() {
                        l.push(
                            scalar(kind, Wire::Varint(v), at, depth, true)?.unwrap_or(Value::Null),
                        );
                    }
                }
                continue;
            }
            let v = scalar(kind, wire, at, depth, true)?.unwrap_or(json!({}));
            let list = out.entry(json_name).or_insert_with(|| json!([]));
            if let Some(l) = list.as_array_mut() {
                l.push(v);
            }
            continue;
        }
        if let Some(v) = scalar(kind, wire, at, depth, false)? {
            out.insert(json_name.to_string(), v);
        }
    }
    Ok(Some(Value::Object(out)))
}

/// One field value. `keep_zero` for list items and map values, where zero values are data.
fn scalar(
    kind: &str,
    wire: Wire<'_>,
    at: usize,
    depth: usize,
    keep_zero: bool,
) -> Result<Option<Value>, ProtobufError> {
    let bad = || ProtobufError::Malformed(at);
    Ok(match (kind, wire) {
        ("string", Wire::Bytes(b)) => {
            let s = String::from_utf8_lossy(b).into_owned();
            (keep_zero || !s.is_empty()).then_some(Value::String(s))
        }
        ("bytes", Wire::Bytes(b)) => Some(Value::String(
            base64::engine::general_purpose::STANDARD.encode(b),
        )),
        ("bool", Wire::Varint(v)) => (keep_zero || v != 0).then_some(Value::Bool(v != 0)),
        ("int32", Wire::Varint(v)) => Some(json!(v as i32)),
        ("int64", Wire::Varint(v)) => Some(json!(v as i64)),
        ("double", Wire::Fixed64(v)) => Some(json!(f64::from_bits(v))),
        (k, Wire::Bytes(b)) if k.starts_with("msg:") => message(&k[4..], b, at, depth + 1)?,
        _ => return Err(bad()),
    })
}

fn message_for(api_version: &str, kind: &str) -> String {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    if matches!(
        kind,
        "DeleteOptions"
            | "Status"
            | "WatchEvent"
            | "ListOptions"
            | "PatchOptions"
            | "CreateOptions"
            | "UpdateOptions"
    ) {
        return format!("apimachinery.pkg.apis.meta.v1.{kind}");
    }
    let short = if group.is_empty() {
        "core"
    } else {
        group.split('.').next().unwrap_or(group)
    };
    format!("api.{short}.{version}.{kind}")
}

/// Decodes a Kubernetes protobuf body to the object's JSON (with `apiVersion` and `kind`).
pub fn to_json(body: &[u8]) -> Result<Value, ProtobufError> {
    let rest = body.strip_prefix(MAGIC).ok_or(ProtobufError::Magic)?;
    let base = MAGIC.len();
    let mut r = Reader::new(rest, base);
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), (&[][..], 0));
    while let Some((tag, w, at)) = r.field()? {
        match (tag, w) {
            (1, Wire::Bytes(tm)) => {
                let mut tr = Reader::new(tm, at);
                while let Some((t, w, _)) = tr.field()? {
                    match (t, w) {
                        (1, Wire::Bytes(b)) => {
                            api_version = String::from_utf8_lossy(b).into_owned()
                        }
                        (2, Wire::Bytes(b)) => kind = String::from_utf8_lossy(b).into_owned(),
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(b)) => raw = (b, at),
            _ => {}
        }
    }
    let name = message_for(&api_version, &kind);
    if !TABLE.contains_key(name.as_str()) {
        return Err(ProtobufError::UnknownKind(format!("{api_version} {kind}")));
    }
    let mut object = message(&name, raw.0, raw.1, 0)?.unwrap_or(json!({}));
    if let Some(m) = object.as_object_mut() {
        m.insert("apiVersion".into(), Value::String(api_version));
        m.insert("kind".into(), Value::String(kind));
    }
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(tag: u32, wire: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![((tag << 3) | u32::from(wire)) as u8];
        if wire == 2 {
            v.push(payload.len() as u8);
        }
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn decodes_a_namespace_envelope() {
        // metadata{name:"demo", generateName:"", labels{a:b}}, spec{}, status{}
        let label = [field(1, 2, b"a"), field(2, 2, b"b")].concat();
        let meta = [field(1, 2, b"demo"), field(2, 2, b""), field(11, 2, &label)].concat();
        let ns = [field(1, 2, &meta), field(2, 2, &[]), field(3, 2, &[])].concat();
        let type_meta = [field(1, 2, b"v1"), field(2, 2, b"Namespace")].concat();
        let body = [MAGIC.to_vec(), field(1, 2, &type_meta), field(2, 2, &ns)].concat();
        let v = to_json(&body).unwrap();
        assert_eq!(v["kind"], "Namespace");
        assert_eq!(v["apiVersion"], "v1");
        assert_eq!(v["metadata"]["name"], "demo");
        assert!(v["metadata"].get("generateName").is_none());
        assert_eq!(v["metadata"]["labels"]["a"], "b");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert_eq!(to_json(b"nope"), Err(ProtobufError::Magic));
        assert!(to_json(b"k8s\x00\x0a\x7f").is_err());
        let tm = [field(1, 2, b"v9"), field(2, 2, b"Nope")].concat();
        let body = [MAGIC.to_vec(), field(1, 2, &tm)].concat();
        assert!(matches!(to_json(&body), Err(ProtobufError::UnknownKind(_))));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let mut body = MAGIC.to_vec();
            body.extend(tail);
            let _ = to_json(&body);
        }
    }
}
