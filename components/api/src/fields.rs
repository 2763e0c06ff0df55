//! Field selectors (`?fieldSelector=spec.nodeName=n1,status.phase!=Running`).
//!
//! Kubernetes supports only `=`, `==` and `!=` on a fixed set of fields per resource; the caller
//! checks the field names against its resource's list and supplies the field values.

/// Why a field selector could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FieldSelectorError {
    /// A requirement is not `field=value`, `field==value` or `field!=value`.
    #[error("invalid field selector requirement {0:?}: expected field=value or field!=value")]
    Syntax(String),
}

/// One `field op value` requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    /// Dotted field path, e.g. `spec.nodeName`.
    pub field: String,
    /// The value compared against.
    pub value: String,
    /// True for `!=`.
    pub negated: bool,
}

/// A parsed field selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    /// The requirements, all of which must hold.
    pub requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses the string form.
    pub fn parse(text: &str) -> Result<FieldSelector, FieldSelectorError> {
        let mut requirements = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, value, negated) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, true)
            } else if let Some((f, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (f, v, false)
            } else {
                return Err(FieldSelectorError::Syntax(part.to_string()));
            };
            let field = field.trim();
            if field.is_empty() {
                return Err(FieldSelectorError::Syntax(part.to_string()));
            }
            requirements.push(FieldRequirement {
                field: field.to_string(),
                value: value.trim().to_string(),
                negated,
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// True when there is no requirement.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether the object matches, given a lookup from field path to its string value
    /// (`""` for an absent field, as Kubernetes does).
    pub fn matches(&self, lookup: impl Fn(&str) -> String) -> bool {
        self.requirements
            .iter()
            .all(|r| (lookup(&r.field) == r.value) != r.negated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches() {
        let s = FieldSelector::parse("spec.nodeName=n1,status.phase!=Running").unwrap();
        assert_eq!(s.requirements.len(), 2);
        let lookup = |f: &str| match f {
            "spec.nodeName" => "n1".to_string(),
            "status.phase" => "Pending".to_string(),
            _ => String::new(),
        };
        assert!(s.matches(lookup));
        let s = FieldSelector::parse("spec.nodeName==n2").unwrap();
        assert!(!s.matches(lookup));
        assert!(FieldSelector::parse("nonsense").is_err());
        assert!(FieldSelector::parse("=x").is_err());
    }
}
