//! Key layout: `/registry/<resource>/<namespace>/<name>` for namespaced objects,
//! `/registry/<resource>/<name>` for cluster-scoped ones, and allocator markers under
//! `/registry/ranges/<pool>/<value>`.

/// Root of every key the API server writes.
pub const ROOT: &str = "/registry";

/// A full object key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key(String);

impl Key {
    /// The key of one object.
    pub fn object(resource: &str, namespace: Option<&str>, name: &str) -> Key {
        match namespace {
            Some(ns) => Key(format!("{ROOT}/{resource}/{ns}/{name}")),
            None => Key(format!("{ROOT}/{resource}/{name}")),
        }
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The prefix holding a collection: all of a resource (`namespace: None`) or one namespace's.
/// Always ends with `/` so `pods/a` never matches `pods/ab`.
pub fn collection(resource: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("{ROOT}/{resource}/{ns}/"),
        None => format!("{ROOT}/{resource}/"),
    }
}

/// The marker key holding one allocated value of a pool (`serviceips`, `servicenodeports`).
pub fn marker(pool: &str, value: &str) -> String {
    format!("{ROOT}/ranges/{pool}/{value}")
}

/// The prefix of a pool's markers.
pub fn marker_prefix(pool: &str) -> String {
    format!("{ROOT}/ranges/{pool}/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        assert_eq!(
            Key::object("pods", Some("ns"), "p").as_str(),
            "/registry/pods/ns/p"
        );
        assert_eq!(
            Key::object("nodes", None, "n1").as_str(),
            "/registry/nodes/n1"
        );
        assert_eq!(collection("pods", Some("ns")), "/registry/pods/ns/");
        assert_eq!(collection("pods", None), "/registry/pods/");
        assert_eq!(
            marker("serviceips", "10.96.0.1"),
            "/registry/ranges/serviceips/10.96.0.1"
        );
    }
}
