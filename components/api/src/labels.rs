//! Label selectors: the string syntax of `?labelSelector=` and `kubectl -l`, and the structured
//! `LabelSelector` of workload specs (`matchLabels` + `matchExpressions`), both compiled to one
//! [`Selector`] that matches a label map.
//!
//! Grammar (as in Kubernetes `labels.Parse`): requirements separated by `,`; each is `k`, `!k`,
//! `k=v`, `k==v`, `k!=v`, `k in (v1,v2)`, `k notin (v1,v2)`.

use std::collections::BTreeMap;

/// Why a selector string could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectorError {
    /// The selector text does not follow the grammar; names the offending part.
    #[error("unable to parse requirement {requirement:?}: {reason}")]
    Syntax {
        /// The requirement text that failed.
        requirement: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An operator of a structured selector is not one of In, NotIn, Exists, DoesNotExist.
    #[error("{operator:?} is not a valid label selector operator")]
    Operator {
        /// The operator given.
        operator: String,
    },
}

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `k=v`, `k==v`, or `k in (v...)`.
    In(String, Vec<String>),
    /// `k!=v` or `k notin (v...)`: also true when the label is absent.
    NotIn(String, Vec<String>),
    /// `k`.
    Exists(String),
    /// `!k`.
    DoesNotExist(String),
}

impl Requirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        }
    }
}

/// A compiled label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// Parses the string form (`?labelSelector=`).
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        let mut requirements = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            requirements.push(parse_requirement(part)?);
        }
        Ok(Selector { requirements })
    }

    /// Builds a selector from a structured `LabelSelector` given as its parts.
    pub fn from_parts<'a>(
        match_labels: impl IntoIterator<Item = (&'a String, &'a String)>,
        match_expressions: impl IntoIterator<Item = (&'a str, &'a str, Vec<String>)>,
    ) -> Result<Selector, SelectorError> {
        let mut requirements: Vec<Requirement> = match_labels
            .into_iter()
            .map(|(k, v)| Requirement::In(k.clone(), vec![v.clone()]))
            .collect();
        for (key, op, values) in match_expressions {
            requirements.push(match op {
                "In" => Requirement::In(key.to_string(), values),
                "NotIn" => Requirement::NotIn(key.to_string(), values),
                "Exists" => Requirement::Exists(key.to_string()),
                "DoesNotExist" => Requirement::DoesNotExist(key.to_string()),
                other => {
                    return Err(SelectorError::Operator {
                        operator: other.to_string(),
                    });
                }
            });
        }
        Ok(Selector { requirements })
    }

    /// True when this selector has no requirement (matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements, in order.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether a label map satisfies every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .requirements
            .iter()
            .map(|r| match r {
                Requirement::In(k, vs) if vs.len() == 1 => format!("{k}={}", vs[0]),
                Requirement::In(k, vs) => format!("{k} in ({})", vs.join(",")),
                Requirement::NotIn(k, vs) if vs.len() == 1 => format!("{k}!={}", vs[0]),
                Requirement::NotIn(k, vs) => format!("{k} notin ({})", vs.join(",")),
                Requirement::Exists(k) => k.clone(),
                Requirement::DoesNotExist(k) => format!("!{k}"),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn syntax(requirement: &str, reason: &str) -> SelectorError {
    SelectorError::Syntax {
        requirement: requirement.to_string(),
        reason: reason.to_string(),
    }
}

fn check_key(req: &str, key: &str) -> Result<String, SelectorError> {
    let key = key.trim();
    if key.is_empty() {
        return Err(syntax(req, "missing label key"));
    }
    let errs = crate::validation::qualified_name(key);
    if let Some(e) = errs.first() {
        return Err(syntax(req, e));
    }
    Ok(key.to_string())
}

fn check_value(req: &str, value: &str) -> Result<String, SelectorError> {
    let value = value.trim();
    if let Some(e) = crate::validation::label_value(value).first() {
        return Err(syntax(req, e));
    }
    Ok(value.to_string())
}

fn parse_requirement(req: &str) -> Result<Requirement, SelectorError> {
    if let Some(key) = req.strip_prefix('!') {
        return Ok(Requirement::DoesNotExist(check_key(req, key)?));
    }
    if let Some((k, v)) = req.split_once("!=") {
        return Ok(Requirement::NotIn(
            check_key(req, k)?,
            vec![check_value(req, v)?],
        ));
    }
    if let Some((k, v)) = req.split_once("==").or_else(|| req.split_once('=')) {
        return Ok(Requirement::In(
            check_key(req, k)?,
            vec![check_value(req, v)?],
        ));
    }
    // Set-based: `key in (a,b)` / `key notin (a,b)`.
    let mut words = req.splitn(2, char::is_whitespace);
    let key = words.next().unwrap_or_default();
    let rest = words.next().unwrap_or_default().trim_start();
    if rest.is_empty() {
        return Ok(Requirement::Exists(check_key(req, key)?));
    }
    let (op, list) = if let Some(l) = rest.strip_prefix("notin") {
        ("notin", l)
    } else if let Some(l) = rest.strip_prefix("in") {
        ("in", l)
    } else {
        return Err(syntax(
            req,
            "expected one of '=', '==', '!=', 'in', 'notin'",
        ));
    };
    let list = list.trim();
    let inner = list
        .strip_prefix('(')
        .and_then(|l| l.strip_suffix(')'))
        .ok_or_else(|| syntax(req, "expected a parenthesised value list"))?;
    let values = inner
        .split(',')
        .map(|v| check_value(req, v))
        .collect::<Result<Vec<_>, _>>()?;
    let key = check_key(req, key)?;
    Ok(if op == "in" {
        Requirement::In(key, values)
    } else {
        Requirement::NotIn(key, values)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn equality_and_sets() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        assert!(Selector::parse("app=web").unwrap().matches(&l));
        assert!(Selector::parse("app==web,tier").unwrap().matches(&l));
        assert!(!Selector::parse("app!=web").unwrap().matches(&l));
        assert!(
            Selector::parse("tier in (front, back)")
                .unwrap()
                .matches(&l)
        );
        assert!(!Selector::parse("tier notin (front)").unwrap().matches(&l));
        assert!(Selector::parse("!canary").unwrap().matches(&l));
        assert!(!Selector::parse("canary").unwrap().matches(&l));
        assert!(Selector::parse("").unwrap().matches(&l));
        assert!(Selector::parse("x!=y").unwrap().matches(&l));
    }

    #[test]
    fn bad_syntax_is_an_error_naming_the_part() {
        let err = Selector::parse("app=web,tier in front").unwrap_err();
        assert!(err.to_string().contains("tier in front"), "{err}");
        assert!(Selector::parse("a b c").is_err());
        assert!(Selector::parse("=x").is_err());
        assert!(Selector::parse("app=has space").is_err());
    }

    #[test]
    fn display_round_trips() {
        let s = Selector::parse("a=b,c in (d,e),!f,g").unwrap();
        assert_eq!(Selector::parse(&s.to_string()).unwrap(), s);
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(text in ".{0,64}") {
            let _ = Selector::parse(&text);
        }
    }
}
