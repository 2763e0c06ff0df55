//! Putting `metadata.resourceVersion` into a stored object's JSON by splicing bytes, for
//! plain JSON lists (informers, `kubectl get -o json`, the bench's pages of 50).
//!
//! A list answers with the stored bytes of each object plus its resourceVersion (the key's
//! mod revision, not stored in the value). [`append_with_revision`] copies the value into the
//! page being built with `"resourceVersion":"<rev>"` inserted, in one of two ways:
//!
//! - **Fast path** (every value this server writes, unless it holds the guards' byte
//!   sequences): the member goes right after `"metadata":{`. Only the prefix up to there is
//!   scanned (for a pod: `"apiVersion"` and `"kind"`), plus three substring searches
//!   (SIMD `memchr::memmem`) over the rest. Key order is not part of the JSON contract
//!   (kubectl, client-go and kube-rs decode into maps/structs), so the first key of
//!   `metadata` being `resourceVersion` changes nothing for a client.
//! - **Full scan** (the fallback, exact): the value is scanned once with a small byte
//!   scanner that finds the spans of the top-level members and of `metadata`'s members, and
//!   the member goes where a sorted encoder would put it (or replaces one already there).
//!   For compact sorted values this is byte-identical to decoding, setting the field and
//!   re-encoding. `None`/`false` when the value is not that simple, and the caller decodes
//!   it (and reports a corrupt value).
//!
//! What the fast path checks: the value is an object (`{` … `}`, surrounding whitespace
//! allowed) whose members before `metadata` are well-formed with unescaped keys, and whose
//! `metadata` is an object. Its guards send a value to the full scan when the bytes after
//! `"metadata":{` contain `"resourceVersion"` (an existing member to replace — values this
//! server stores never have one: `storage::encode` strips it — or a look-alike), `"metadata"`
//! (a second top-level `metadata`, or a nested one such as a pod template's, where the scan
//! must know which is which) or `\u` (an escaped key could spell either name; serde_json
//! writes `\u` only for control characters). What it no longer checks, and the full scan
//! does: that the rest of the value is well-formed (terminated strings, no raw control
//! characters, balanced brackets, member syntax). That is acceptable because the store's
//! values are written only through this server, which encodes them with serde_json, and
//! every client decodes every object of a list: a value broken by some other writer makes the
//! client's decode fail loudly, it cannot be mistaken for a different object. (kube-apiserver
//! decodes every object it lists; this server decodes none on the fast path — that is the
//! CPU it saves.)

use std::sync::LazyLock;

use memchr::memmem::Finder;

/// Deepest nesting accepted (serde_json's own recursion limit).
const MAX_DEPTH: usize = 128;

/// A member of a JSON object: where its key starts (the opening quote), the key's raw bytes
/// (unescaped: keys with escapes are refused), and its value's span.
struct Member<'a> {
    start: usize,
    key: &'a [u8],
    value: (usize, usize),
}

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    /// A string starting at `self.i` (the quote); returns its raw content and whether it
    /// holds escapes.
    fn string(&mut self) -> Option<(&'a [u8], bool)> {
        if self.b.get(self.i) != Some(&b'"') {
            return None;
        }
        let start = self.i + 1;
        let mut i = start;
        let mut escaped = false;
        loop {
            match *self.b.get(i)? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    i += 2;
                }
                c if c < 0x20 => return None,
                _ => i += 1,
            }
        }
        self.i = i + 1;
        Some((&self.b[start..i], escaped))
    }

    /// Skips one value (after whitespace); returns its span.
    fn value(&mut self) -> Option<(usize, usize)> {
        self.ws();
        let start = self.i;
        match *self.b.get(self.i)? {
            b'"' => {
                self.string()?;
            }
            b'{' | b'[' => self.nested()?,
            _ => {
                while let Some(c) = self.b.get(self.i)
                    && (c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
                {
                    self.i += 1;
                }
                if self.i == start {
                    return None;
                }
            }
        }
        Some((start, self.i))
    }

    /// Skips an object or array, checking strings and bracket balance.
    fn nested(&mut self) -> Option<()> {
        let mut stack: Vec<u8> = Vec::with_capacity(8);
        loop {
            match *self.b.get(self.i)? {
                b'"' => {
                    self.string()?;
                    continue;
                }
                c @ (b'{' | b'[') => {
                    if stack.len() == MAX_DEPTH {
                        return None;
                    }
                    stack.push(if c == b'{' { b'}' } else { b']' });
                }
                c @ (b'}' | b']') => {
                    if stack.pop()? != c {
                        return None;
                    }
                    if stack.is_empty() {
                        self.i += 1;
                        return Some(());
                    }
                }
                c if c < 0x20 && !matches!(c, b'\t' | b'\n' | b'\r') => return None,
                _ => {}
            }
            self.i += 1;
        }
    }

    /// The members of the object at `self.i` (after whitespace), leaving `self.i` after its
    /// closing brace. `None` for anything but an object, or a key with escapes.
    fn members(&mut self) -> Option<Vec<Member<'a>>> {
        self.eat(b'{')?;
        let mut out = Vec::new();
        if self.eat(b'}').is_some() {
            return Some(out);
        }
        loop {
            self.ws();
            let start = self.i;
            let (key, escaped) = self.string()?;
            if escaped {
                return None;
            }
            self.eat(b':')?;
            let value = self.value()?;
            out.push(Member { start, key, value });
            if self.eat(b',').is_none() {
                self.eat(b'}')?;
                return Some(out);
            }
        }
    }
}

/// The full scan (see the module header): the member at its sorted position, replacing an
/// existing one; `None` when the value is not that simple.
fn sorted_splice(value: &[u8], revision: i64) -> Option<Vec<u8>> {
    let mut top = Scan { b: value, i: 0 };
    let members = top.members()?;
    top.ws();
    if top.i != value.len() {
        return None;
    }
    let mut metas = members.iter().filter(|m| m.key == b"metadata");
    let meta = metas.next()?;
    if metas.next().is_some() {
        return None;
    }
    let mut inner = Scan {
        b: value,
        i: meta.value.0,
    };
    let fields = inner.members()?;
    let rv = format!("\"{revision}\"");
    let mut out = Vec::with_capacity(value.len() + rv.len() + 20);
    let mut existing = fields.iter().filter(|f| f.key == b"resourceVersion");
    match (existing.next(), existing.next()) {
        (Some(_), Some(_)) => return None,
        (Some(f), None) => {
            out.extend_from_slice(&value[..f.value.0]);
            out.extend_from_slice(rv.as_bytes());
            out.extend_from_slice(&value[f.value.1..]);
        }
        (None, _) => {
            let member = format!("\"resourceVersion\":{rv}");
            match fields.iter().find(|f| f.key > &b"resourceVersion"[..]) {
                Some(next) => {
                    out.extend_from_slice(&value[..next.start]);
                    out.extend_from_slice(member.as_bytes());
                    out.push(b',');
                    out.extend_from_slice(&value[next.start..]);
                }
                None => {
                    // After the last member, or right after `{` of an empty metadata.
                    let at = fields.last().map_or(meta.value.0 + 1, |f| f.value.1);
                    out.extend_from_slice(&value[..at]);
                    if !fields.is_empty() {
                        out.push(b',');
                    }
                    out.extend_from_slice(member.as_bytes());
                    out.extend_from_slice(&value[at..]);
                }
            }
        }
    }
    Some(out)
}

/// A stored object's JSON with `"resourceVersion":"<revision>"` in its metadata (see the
/// module header): `None` when the value is not that simple, and the caller decodes it.
pub fn with_revision_raw(value: &[u8], revision: i64) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    append_with_revision(&mut out, value, revision).then_some(out)
}

/// Appends the stored object's JSON with `"resourceVersion":"<revision>"` in its metadata to
/// `out` (the fast path, else the full scan: see the module header). `false`, with `out`
/// unchanged, when the value is not that simple, and the caller decodes it.
pub fn append_with_revision(out: &mut Vec<u8>, value: &[u8], revision: i64) -> bool {
    match fast_insert_point(value) {
        Some(at) => {
            out.reserve(value.len() + 40);
            out.extend_from_slice(&value[..at]);
            out.extend_from_slice(b"\"resourceVersion\":\"");
            push_int(out, revision);
            out.push(b'"');
            let mut rest = Scan { b: value, i: at };
            rest.ws();
            if value.get(rest.i) != Some(&b'}') {
                out.push(b',');
            }
            out.extend_from_slice(&value[at..]);
            true
        }
        None => match sorted_splice(value, revision) {
            Some(spliced) => {
                out.extend_from_slice(&spliced);
                true
            }
            None => false,
        },
    }
}

/// Where the fast path inserts: just after `"metadata":{`, if the value passes its checks and
/// guards (module header).
fn fast_insert_point(value: &[u8]) -> Option<usize> {
    static GUARDS: LazyLock<[Finder<'static>; 3]> = LazyLock::new(|| {
        [
            Finder::new(b"\"resourceVersion\""),
            Finder::new(b"\"metadata\""),
            Finder::new(b"\\u"),
        ]
    });
    let end = value
        .iter()
        .rposition(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r'))?;
    if value[end] != b'}' {
        return None;
    }
    let mut s = Scan { b: value, i: 0 };
    s.eat(b'{')?;
    loop {
        s.ws();
        let (key, escaped) = s.string()?;
        if escaped {
            return None;
        }
        s.eat(b':')?;
        if key == b"metadata" {
            s.ws();
            if value.get(s.i) != Some(&b'{') {
                return None;
            }
            let at = s.i + 1;
            // The closing `}` of the object must come after metadata's `{`.
            if at > end {
                return None;
            }
            let rest = &value[at..];
            if GUARDS.iter().any(|g| g.find(rest).is_some()) {
                return None;
            }
            return Some(at);
        }
        s.value()?;
        s.eat(b',')?;
    }
}

/// Appends the decimal digits of `n` (what `format!("{n}")` gives, without the formatter).
fn push_int(out: &mut Vec<u8>, n: i64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// What decoding, setting the field and re-encoding gives (as a tree: key order aside).
    fn decoded(value: &str, revision: i64) -> Value {
        crate::storage::with_revision(serde_json::from_str(value).unwrap(), revision)
    }

    #[test]
    fn fast_path_puts_the_member_first_and_decodes_to_the_same_object() {
        let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"creationTimestamp":"2026-11-24T00:00:00Z","labels":{"app":"bench"},"managedFields":[{"apiVersion":"v1","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:containers":{"k:{\"name\":\"c\"}":{}}}},"manager":"m"}],"name":"p","namespace":"n","uid":"u"},"spec":{"containers":[{"image":"nginx","name":"c"}]},"status":{}}"#;
        for (value, revision) in [
            (pod, 42),
            (pod, i64::MAX),
            (r#"{"metadata":{}}"#, 7),
            (" { \"kind\" : \"X\" ,\n \"metadata\" : {\t} } \n", 7),
            (
                r#" { "apiVersion" : [1, {"a": "b"}], "metadata" : { "name" : "spaced" } , "z" : null } "#,
                9,
            ),
            (
                r#"{"metadata":{"name":"élan","a":"}{\"x"},"data":{"k":"v"}}"#,
                3,
            ),
        ] {
            let at = fast_insert_point(value.as_bytes()).expect(value);
            let raw = with_revision_raw(value.as_bytes(), revision).unwrap();
            let text = String::from_utf8(raw.clone()).unwrap();
            assert!(
                text[at..].starts_with(&format!("\"resourceVersion\":\"{revision}\"")),
                "{text}"
            );
            let got: Value = serde_json::from_slice(&raw).unwrap();
            assert_eq!(got, decoded(value, revision), "{value}");
        }
    }

    #[test]
    fn guarded_values_take_the_full_scan() {
        // An existing resourceVersion (replaced in place), a nested `metadata` (a pod
        // template), a look-alike in a string, an escape: the sorted splice, byte-identical
        // to re-encoding for compact sorted values.
        for value in [
            r#"{"metadata":{"name":"p","resourceVersion":"3","uid":"u"}}"#,
            r#"{"kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"metadata":{"labels":{"a":"b"}}}}}"#,
            r#"{"metadata":{"annotations":{"resourceVersion":"x"},"name":"p"}}"#,
            r#"{"metadata":{"annotations":{"k":"\u0001"},"name":"p"}}"#,
        ] {
            assert!(fast_insert_point(value.as_bytes()).is_none(), "{value}");
            let raw = with_revision_raw(value.as_bytes(), 5).expect(value);
            let want = decoded(value, 5);
            assert_eq!(raw, serde_json::to_vec(&want).unwrap(), "{value}");
            assert_eq!(
                String::from_utf8(raw)
                    .unwrap()
                    .matches("resourceVersion\":\"5")
                    .count(),
                1
            );
        }
    }

    #[test]
    fn values_it_cannot_place_safely_are_refused() {
        for value in [
            r#"{"metadata":null}"#,
            r#"{"metadata":"x"}"#,
            r#"{"metadata":[]}"#,
            r#"{"kind":"X"}"#,
            r#"{"meta\u0064ata":{}}"#,
            r#"{"metadata":{"resource\u0056ersion":"1"}}"#,
            r#"{"metadata":{"a\u0062":1}}"#,
            r#"{"metadata":{},"metadata":{}}"#,
            r#"{"metadata":{"resourceVersion":"1","resourceVersion":"2"}}"#,
            r#"{"kind":"X" "metadata":{}}"#,
            r#"{"metadata":{}} x"#,
            "",
        ] {
            let mut out = b"kept".to_vec();
            assert!(
                !append_with_revision(&mut out, value.as_bytes(), 1),
                "{value}"
            );
            assert_eq!(out, b"kept", "{value}: a refused value appends nothing");
        }
    }

    #[test]
    fn fast_path_leaves_the_rest_of_the_value_unchecked() {
        // Documented trade-off (module header): after `"metadata":{` only the guards are
        // looked at, so these malformed values — which only another writer could store —
        // are spliced and the client's decode reports them; the full scan refused them.
        for value in [
            r#"{"metadata":{"a":[1,2}}"#,
            r#"{"metadata":{"a":"unterminated}}"#,
            r#"{"metadata":{"a":1,}}"#,
            "{\"metadata\":{\"a\":\"raw\u{1}control\"}}",
            r#"{"metadata":{}"#,
        ] {
            assert!(sorted_splice(value.as_bytes(), 1).is_none(), "{value}");
            let raw = with_revision_raw(value.as_bytes(), 1).expect(value);
            assert!(serde_json::from_slice::<Value>(&raw).is_err(), "{value}");
        }
    }

    #[test]
    fn integers_as_format_writes_them() {
        for n in [0, 1, 9, 10, 42, 1_000_007, -1, -90, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            push_int(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }
}
