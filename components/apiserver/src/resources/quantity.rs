//! Kubernetes resource quantities (`100m`, `1.5Gi`, `2e3`): k8s-openapi's `Quantity` is a
//! plain string, so the grammar of apimachinery's `resource.Quantity` is checked here before an
//! object is stored. An unparseable quantity in storage breaks `kubectl describe` and every
//! typed client that decodes the object.
//!
//! ```text
//! quantity ::= signedNumber suffix
//! number   ::= digits | digits "." digits | digits "." | "." digits
//! suffix   ::= binarySI (Ki Mi Gi Ti Pi Ei) | decimalSI (n u m "" k M G T P E)
//!            | ("e" | "E") signedInteger
//! ```

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::error::Cause;

/// Kubernetes' wording for an unparseable quantity.
const GRAMMAR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// A parsed quantity's sign: `Some(true)` when below zero; `None` when not a quantity.
pub fn parse(s: &str) -> Option<bool> {
    let b = s.as_bytes();
    let mut i = 0;
    let negative = match b.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };
    let (mut digits, mut dots, mut nonzero) = (0, 0, false);
    while let Some(&c) = b.get(i) {
        match c {
            b'0'..=b'9' => {
                digits += 1;
                nonzero |= c != b'0';
            }
            b'.' => dots += 1,
            _ => break,
        }
        i += 1;
    }
    if digits == 0 || dots > 1 {
        return None;
    }
    let suffix = &s[i..];
    let ok = match suffix {
        "" | "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E" => true,
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => true,
        _ => suffix
            .strip_prefix(['e', 'E'])
            .map(|exp| exp.strip_prefix(['+', '-']).unwrap_or(exp))
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit())),
    };
    ok.then_some(negative && nonzero)
}

/// A quantity's value as a float (for comparisons such as requests <= limits); `None` when
/// not a quantity.
pub fn value(s: &str) -> Option<f64> {
    parse(s)?;
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '+' | '-')))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let number: f64 = number.trim_end_matches('.').parse().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp => 10f64.powi(exp[1..].parse().ok()?),
    };
    Some(number * scale)
}

/// Validates a resource list (`requests`, `limits`) at field path `at`: each value a
/// quantity, none negative.
pub fn validate_list(list: Option<&BTreeMap<String, Quantity>>, at: &str, causes: &mut Vec<Cause>) {
    for (name, Quantity(q)) in list.into_iter().flatten() {
        let field = format!("{at}.{name}");
        match parse(q) {
            None => causes.push(Cause::invalid(field, q, GRAMMAR)),
            Some(true) => causes.push(Cause::invalid(
                field,
                q,
                "must be greater than or equal to 0",
            )),
            Some(false) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_compare_across_suffixes() {
        assert_eq!(value("500m"), Some(0.5));
        assert_eq!(value("1Gi"), Some(1024.0 * 1024.0 * 1024.0));
        assert_eq!(value("1e3"), Some(1000.0));
        assert_eq!(value("2E-3"), Some(0.002));
        assert_eq!(value(".5k"), Some(500.0));
        assert!(value("1G").unwrap() < value("1Gi").unwrap());
        assert_eq!(value("abc"), None);
    }

    #[test]
    fn accepts_the_kubernetes_forms() {
        for q in [
            "1", "0", "100m", "0.5", ".5", "5.", "1.5Gi", "128Mi", "2k", "1e3", "1E-3", "+1",
            "10n", "3u", "1Ei", "2E",
        ] {
            assert_eq!(parse(q), Some(false), "{q}");
        }
        assert_eq!(parse("-1"), Some(true));
        assert_eq!(parse("-0"), Some(false));
    }

    #[test]
    fn refuses_what_kubernetes_refuses() {
        for q in [
            "", "abc", "12XYZ", "1..2", ".", "m", "1Kb", "1ki", "1e", "1e+", "1 Gi", "--1",
            "1.5.Gi", "1mi",
        ] {
            assert_eq!(parse(q), None, "{q:?}");
        }
    }

    #[test]
    fn names_the_field() {
        let mut list = BTreeMap::new();
        list.insert("cpu".to_string(), Quantity("abc".into()));
        list.insert("memory".to_string(), Quantity("-1Gi".into()));
        let mut causes = Vec::new();
        validate_list(
            Some(&list),
            "spec.containers[0].resources.requests",
            &mut causes,
        );
        assert_eq!(causes.len(), 2);
        assert_eq!(causes[0].field, "spec.containers[0].resources.requests.cpu");
        assert!(causes[0].message.contains("quantities must match"));
        assert_eq!(
            causes[1].field,
            "spec.containers[0].resources.requests.memory"
        );
        assert!(causes[1].message.contains("greater than or equal to 0"));
    }
}
