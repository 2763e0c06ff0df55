//! Errors of the request pipeline and their Kubernetes `Status` form.
//!
//! Every failure a client can see is an [`ApiError`]; [`ApiError::code`] gives the HTTP status
//! and [`ApiError::to_status`] the `meta.k8s.io/v1 Status` body with `reason`, `code` and,
//! for invalid objects, `details.causes` naming each offending field.

use serde_json::{Value, json};

use crate::storage::StorageError;

/// One offending field of an invalid object (`details.causes[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`, ...
    pub reason: &'static str,
    /// Field path, e.g. `spec.containers[0].image`.
    pub field: String,
    /// Human-readable explanation, including the bad value where there is one.
    pub message: String,
}

impl Cause {
    /// A required field is missing.
    pub fn required(field: impl Into<String>) -> Cause {
        Cause {
            reason: "FieldValueRequired",
            field: field.into(),
            message: "Required value".to_string(),
        }
    }

    /// A field has a bad value.
    pub fn invalid(field: impl Into<String>, value: impl std::fmt::Display, why: &str) -> Cause {
        Cause {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: format!("Invalid value: \"{value}\": {why}"),
        }
    }

    /// A field holds a value outside its enumeration.
    pub fn not_supported(field: impl Into<String>, value: &str, supported: &[&str]) -> Cause {
        let list: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
        Cause {
            reason: "FieldValueNotSupported",
            field: field.into(),
            message: format!(
                "Unsupported value: \"{value}\": supported values: {}",
                list.join(", ")
            ),
        }
    }

    /// A field may not be changed after creation.
    pub fn immutable(field: impl Into<String>) -> Cause {
        Cause {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: "field is immutable".to_string(),
        }
    }

    /// A field refers to something that does not exist (a volume mount's volume).
    pub fn not_found(field: impl Into<String>, value: &str) -> Cause {
        Cause {
            reason: "FieldValueNotFound",
            field: field.into(),
            message: format!("Not found: \"{value}\""),
        }
    }

    /// A field is duplicated in a list.
    pub fn duplicate(field: impl Into<String>, value: &str) -> Cause {
        Cause {
            reason: "FieldValueDuplicate",
            field: field.into(),
            message: format!("Duplicate value: \"{value}\""),
        }
    }
}

/// Names an object for error messages: `deployments.apps "web"`.
#[derive(Debug, Clone)]
pub struct ObjectRef {
    /// API group, empty for core.
    pub group: String,
    /// Plural resource name.
    pub resource: String,
    /// Kind, used in `details.kind` as Kubernetes does.
    pub kind: String,
    /// Object name.
    pub name: String,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            write!(f, "{} \"{}\"", self.resource, self.name)
        } else {
            write!(f, "{}.{} \"{}\"", self.resource, self.group, self.name)
        }
    }
}

/// A failed API request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The object does not exist.
    #[error("{0} not found")]
    NotFound(ObjectRef),
    /// The URL names no resource this server serves.
    #[error("the server could not find the requested resource")]
    UnknownResource,
    /// Create of a name that is taken.
    #[error("{0} already exists")]
    AlreadyExists(ObjectRef),
    /// Optimistic-concurrency failure or a precondition that does not hold.
    #[error("Operation cannot be fulfilled on {object}: {message}")]
    Conflict {
        /// The object.
        object: ObjectRef,
        /// Why, e.g. the object has been modified.
        message: String,
    },
    /// Server-side apply found fields owned by other managers.
    #[error("Apply failed with {} conflict(s): {}", .conflicts.len(), .conflicts.iter().map(|c| format!("{}: {}", c.message, c.field)).collect::<Vec<_>>().join("; "))]
    ApplyConflict {
        /// The object.
        object: ObjectRef,
        /// One cause per conflicting field.
        conflicts: Vec<Cause>,
    },
    /// The object fails validation.
    #[error("{kind} \"{name}\" is invalid: {}", .causes.iter().map(|c| format!("{}: {}", c.field, c.message)).collect::<Vec<_>>().join(", "))]
    Invalid {
        /// Kind of the object.
        kind: String,
        /// Group of the object.
        group: String,
        /// Its name (may be empty for generateName).
        name: String,
        /// One per offending field.
        causes: Vec<Cause>,
    },
    /// The request itself is malformed (bad JSON, bad query parameter).
    #[error("{0}")]
    BadRequest(String),
    /// No acceptable credentials.
    #[error("Unauthorized")]
    Unauthorized,
    /// The authorizer (or the RBAC escalation check) refused, worded as Kubernetes'
    /// `NewForbidden`: `pods "web" is forbidden: User "alice" cannot ...`.
    #[error("{}", forbidden_message(.group, .resource, .name, .message))]
    Forbidden {
        /// API group of the resource (empty for non-resource requests).
        group: String,
        /// Resource (empty for non-resource requests).
        resource: String,
        /// Object name, if the request named one.
        name: String,
        /// Why (`User "alice" cannot list resource ...`).
        message: String,
    },
    /// A verb the resource does not support.
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    /// The namespace is being deleted; no new objects may appear in it.
    #[error(
        "{object} is forbidden: unable to create new content in namespace {namespace} because it is being terminated"
    )]
    NamespaceTerminating {
        /// The object refused.
        object: ObjectRef,
        /// The namespace.
        namespace: String,
    },
    /// A resourceVersion or continue token older than the store's compaction.
    #[error("{0}")]
    Gone(String),
    /// A read asked for a resourceVersion the store did not reach within the wait
    /// (kube-apiserver's `NewTooLargeResourceVersionError`): 504, retry after a second.
    #[error("Timeout: Too large resource version: {requested}, current: {current}")]
    TooLargeResourceVersion {
        /// The resourceVersion asked for.
        requested: i64,
        /// The store's revision when the wait ended.
        current: i64,
    },
    /// The body exceeds the request size limit.
    #[error("the request body is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// No representation the client accepts.
    #[error(
        "only application/json, application/yaml, the Table form and PartialObjectMetadata(List) are served; asked for {0:?}"
    )]
    NotAcceptable(String),
    /// A body in a media type this endpoint does not read.
    #[error("the body of type {0:?} is not supported here")]
    UnsupportedMediaType(String),
    /// A feature of the API that this server refuses clearly rather than ignoring.
    #[error("{0}")]
    NotImplemented(String),
    /// A service allocation range is exhausted.
    #[error("{0}")]
    RangeFull(String),
    /// The store failed.
    #[error("storage error")]
    Storage(#[from] StorageError),
}

/// The `Retry-After` (header and `details.retryAfterSeconds`) of a too-large
/// resourceVersion, as kube-apiserver answers it.
pub const RETRY_AFTER_SECONDS: u64 = 1;

impl ApiError {
    /// Seconds a client should wait before retrying (`Retry-After`), for errors that have one.
    pub fn retry_after(&self) -> Option<u64> {
        matches!(self, ApiError::TooLargeResourceVersion { .. }).then_some(RETRY_AFTER_SECONDS)
    }

    /// The HTTP status code.
    pub fn code(&self) -> u16 {
        match self {
            ApiError::NotFound(_) | ApiError::UnknownResource => 404,
            ApiError::AlreadyExists(_) | ApiError::Conflict { .. } => 409,
            ApiError::ApplyConflict { .. } => 409,
            ApiError::Invalid { .. } | ApiError::RangeFull(_) => 422,
            ApiError::BadRequest(_) => 400,
            ApiError::MethodNotAllowed => 405,
            ApiError::Unauthorized => 401,
            ApiError::Forbidden { .. } => 403,
            ApiError::NamespaceTerminating { .. } => 403,
            ApiError::Gone(_) => 410,
            ApiError::TooLargeResourceVersion { .. } => 504,
            ApiError::TooLarge { .. } => 413,
            ApiError::NotAcceptable(_) => 406,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::NotImplemented(_) => 501,
            ApiError::Storage(StorageError::Compacted { .. }) => 410,
            ApiError::Storage(StorageError::Unavailable(..)) => 503,
            ApiError::Storage(StorageError::Etcd(e)) if store_unreachable(e) => 503,
            ApiError::Storage(StorageError::Etcd(e)) if store_too_large(e) => 413,
            ApiError::Storage(StorageError::FutureRevision(_)) => 504,
            ApiError::Storage(_) => 500,
        }
    }

    /// The Kubernetes `reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound(_) | ApiError::UnknownResource => "NotFound",
            ApiError::AlreadyExists(_) => "AlreadyExists",
            ApiError::Conflict { .. } | ApiError::ApplyConflict { .. } => "Conflict",
            ApiError::Invalid { .. } | ApiError::RangeFull(_) => "Invalid",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::MethodNotAllowed => "MethodNotAllowed",
            ApiError::Unauthorized => "Unauthorized",
            ApiError::Forbidden { .. } => "Forbidden",
            ApiError::NamespaceTerminating { .. } => "Forbidden",
            ApiError::Gone(_) | ApiError::Storage(StorageError::Compacted { .. }) => "Expired",
            ApiError::TooLarge { .. } => "RequestEntityTooLarge",
            ApiError::TooLargeResourceVersion { .. } => "Timeout",
            ApiError::NotAcceptable(_) => "NotAcceptable",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::NotImplemented(_) => "NotImplemented",
            ApiError::Storage(StorageError::Unavailable(..)) => "ServiceUnavailable",
            ApiError::Storage(StorageError::Etcd(e)) if store_unreachable(e) => {
                "ServiceUnavailable"
            }
            ApiError::Storage(StorageError::Etcd(e)) if store_too_large(e) => {
                "RequestEntityTooLarge"
            }
            ApiError::Storage(StorageError::FutureRevision(_)) => "Timeout",
            ApiError::Storage(_) => "InternalError",
        }
    }

    /// The full message, including the source chain for storage errors.
    pub fn message(&self) -> String {
        let mut msg = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            source = s.source();
        }
        msg
    }

    /// The `Status` object for this error.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message(),
            "reason": self.reason(),
            "code": self.code(),
        });
        let details = match self {
            ApiError::NotFound(o)
            | ApiError::AlreadyExists(o)
            | ApiError::Conflict { object: o, .. } => {
                Some(json!({"name": o.name, "group": o.group, "kind": o.resource}))
            }
            ApiError::NamespaceTerminating { object, namespace } => Some(json!({
                "name": object.name, "group": object.group, "kind": object.resource,
                "causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {namespace} is being terminated"), "field": "metadata.namespace"}],
            })),
            ApiError::Invalid {
                kind,
                group,
                name,
                causes,
            } => Some(json!({
                "name": name, "group": group, "kind": kind,
                "causes": causes_json(causes),
            })),
            ApiError::Forbidden {
                group,
                resource,
                name,
                ..
            } => Some(json!({"name": name, "group": group, "kind": resource})),
            ApiError::ApplyConflict { object, conflicts } => Some(json!({
                "name": object.name, "group": object.group, "kind": object.resource,
                "causes": causes_json(conflicts),
            })),
            ApiError::TooLargeResourceVersion { .. } => Some(json!({
                "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                "retryAfterSeconds": RETRY_AFTER_SECONDS,
            })),
            _ => None,
        };
        if let Some(d) = details {
            status["details"] = d;
        } else if self.code() == 404 {
            // kube-apiserver's 404 for an unknown path carries empty details; `kubectl debug`
            // dereferences them.
            status["details"] = json!({});
        }
        status
    }
}

fn forbidden_message(group: &str, resource: &str, name: &str, message: &str) -> String {
    let qualified = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    match (qualified.is_empty(), name.is_empty()) {
        (true, _) => format!("forbidden: {message}"),
        (false, true) => format!("{qualified} is forbidden: {message}"),
        (false, false) => format!("{qualified} \"{name}\" is forbidden: {message}"),
    }
}

/// Whether the store refused a write as larger than its request limit (etcd's
/// `--max-request-bytes`): the client's object is too big (413), not a server fault.
fn store_too_large(e: &etcd_client::Error) -> bool {
    matches!(e, etcd_client::Error::GRpcStatus(s) if s.message().contains("request is too large"))
}

/// Whether a store error means "cannot reach the store" (503) rather than a failed request.
fn store_unreachable(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        etcd_client::Error::GRpcStatus(s) => {
            // gRPC status codes 14 (UNAVAILABLE) and 4 (DEADLINE_EXCEEDED); 1 (CANCELLED)
            // with a transport error as its source is the connection closing under the call
            // (the store went away), not a cancellation by the caller.
            let code: i32 = s.code().into();
            code == 14 || code == 4 || (code == 1 && std::error::Error::source(s).is_some())
        }
        _ => false,
    }
}

fn causes_json(causes: &[Cause]) -> Value {
    Value::Array(
        causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect(),
    )
}

/// A `Status` of success, as returned by delete of a gone object and deletecollection.
pub fn success_status(details: Option<Value>) -> Value {
    let mut s = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"});
    if let Some(d) = details {
        s["details"] = d;
    }
    s
}
