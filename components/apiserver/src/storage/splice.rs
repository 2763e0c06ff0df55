//! Putting `metadata.resourceVersion` into a stored object's JSON by splicing bytes, for
//! plain JSON lists (informers, `kubectl get -o json`, the bench's pages of 50).
//!
//! A list answers with the stored bytes of each object plus its resourceVersion (the key's
//! mod revision, not stored in the value). [`with_revision_raw`] scans the value once with a
//! small byte scanner: it finds the spans of the top-level members and of `metadata`'s
//! members, and copies the value with `"resourceVersion":"<rev>"` inserted where a sorted
//! encoder would put it (or replacing one already there) — no JSON tree, no per-member
//! allocation. Stored values are compact with sorted keys (`serde_json::to_vec` of a
//! `Value`), so for them the result is byte-identical to decoding, setting the field and
//! re-encoding (tested against that in `storage::list`).
//!
//! How much is checked: strings are terminated and free of raw control characters, brackets
//! balance, members are `"key": value` separated by commas, scalars are made of
//! number/literal characters. Values the server did not write itself (escaped keys, a
//! non-object `metadata`, a duplicate `metadata` or `resourceVersion` key, anything that
//! fails those checks) give `None`, and the caller decodes (and reports a corrupt value).
//! Inside members' values only string and bracket structure is checked, not the full grammar
//! (e.g. a missing comma between two array elements passes); the client decoding the list
//! would report such a value, which only a store written by something else could hold.

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

/// A stored object's JSON with `"resourceVersion":"<revision>"` in its metadata (see the
/// module header): `None` when the value is not that simple, and the caller decodes it.
pub fn with_revision_raw(value: &[u8], revision: i64) -> Option<Vec<u8>> {
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
