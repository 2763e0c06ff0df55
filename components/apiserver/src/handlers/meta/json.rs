//! Request bodies as JSON: one pass that builds the [`Value`] and notes duplicate keys
//! (serde_json keeps the last of duplicates silently; Kubernetes' strict decoding reports
//! them). Paths are rendered only for the duplicates found, not for every key.

use serde_json::{Map, Value};

/// Paths of keys that appear twice in one JSON object of `bytes` (`spec.containers[0].name`);
/// empty when `bytes` is not JSON. See [`parse_json`].
pub fn duplicate_fields(bytes: &[u8]) -> Vec<String> {
    parse_json(bytes).map(|(_, d)| d).unwrap_or_default()
}

/// Where a JSON value sits in the document, rendered only when a duplicate is found.
enum At<'a> {
    Root,
    Key(&'a At<'a>, &'a str),
    Index(&'a At<'a>, usize),
}

impl At<'_> {
    fn render(&self, out: &mut String) {
        match self {
            At::Root => {}
            At::Key(parent, key) => {
                parent.render(out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            At::Index(parent, i) => {
                parent.render(out);
                out.push_str(&format!("[{i}]"));
            }
        }
    }
}

/// Builds a [`Value`] as serde_json does, noting duplicate keys (see [`parse_json`]).
struct Node<'a> {
    at: &'a At<'a>,
    dups: &'a std::cell::RefCell<Vec<String>>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Node<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Node<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        serde::de::DeserializeSeed::deserialize(self, d)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        loop {
            let at = At::Index(self.at, out.len());
            match seq.next_element_seed(Node {
                at: &at,
                dups: self.dups,
            })? {
                Some(v) => out.push(v),
                None => return Ok(Value::Array(out)),
            }
        }
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let at = At::Key(self.at, &key);
            let value = map.next_value_seed(Node {
                at: &at,
                dups: self.dups,
            })?;
            if out.contains_key(&key) {
                let mut path = String::new();
                at.render(&mut path);
                self.dups.borrow_mut().push(path);
            }
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// Parses JSON into a [`Value`] and, in the same pass, lists the paths of keys that appear
/// twice in one object (`spec.containers[0].name`): serde_json keeps the last of duplicates
/// silently; Kubernetes' strict decoding reports them. One pass over the body instead of a
/// parse plus a second walk that formatted a path for every key.
pub fn parse_json(bytes: &[u8]) -> Result<(Value, Vec<String>), serde_json::Error> {
    let dups = std::cell::RefCell::new(Vec::new());
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde::de::DeserializeSeed::deserialize(
        Node {
            at: &At::Root,
            dups: &dups,
        },
        &mut de,
    )?;
    de.end()?;
    Ok((value, dups.into_inner()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn duplicate_keys_are_found_with_paths() {
        let body = br#"{"metadata":{"name":"a","name":"b"},"spec":{"containers":[{"image":"x","image":"y"}]}}"#;
        assert_eq!(
            duplicate_fields(body),
            ["metadata.name", "spec.containers[0].image"]
        );
        assert!(duplicate_fields(br#"{"a":1,"b":{"a":2}}"#).is_empty());
        assert!(duplicate_fields(b"{broken").is_empty());
    }

    #[test]
    fn one_pass_parse_equals_serde_json() {
        let body = br#"{"a":[1,-2,3.5,18446744073709551615,{"b":null,"c":"x\u00e9\"y"}],"t":true,"e":{},"l":[]}"#;
        let (value, dups) = parse_json(body).unwrap();
        assert_eq!(value, serde_json::from_slice::<Value>(body).unwrap());
        assert!(dups.is_empty());
        // The last of duplicates wins, as serde_json has it; every duplicate is named.
        let (value, dups) = parse_json(br#"{"a":1,"a":2,"l":[{"k":1,"k":2}]}"#).unwrap();
        assert_eq!(value, json!({"a": 2, "l": [{"k": 2}]}));
        assert_eq!(dups, ["a", "l[0].k"]);
        assert!(parse_json(b"{} trailing").is_err());
        assert!(parse_json(b"{\"a\":").is_err());
    }
}
