//! The resource registry: one generic request handler, many resource descriptions.
//!
//! Each served resource is a [`Kind`] (one file under `resources/`): its k8s-openapi type,
//! discovery facts ([`Info`]), defaults, validation, table columns, and hooks for the few
//! resource-specific behaviours (graceful deletion of pods, Service address allocation).
//! [`Typed`] adapts a `Kind` to the object-safe [`Resource`] trait that the handlers use; the
//! handlers work on `serde_json::Value` and call the typed hooks through it:
//!
//! 1. The handler does the generic metadata work on the request JSON.
//! 2. [`Resource::admit`] decodes it into the k8s-openapi type **once** (type errors become
//!    400 naming the field path, missing required fields 422, and every field the type does
//!    not know is reported so `fieldValidation=Strict|Warn` can act on it), applies defaults,
//!    runs validation (causes, 422 with one per field) and encodes the result **once**.
//! 3. The handler records managedFields and writes through `storage`.
//!
//! [`Resource::decode`] (decode and re-encode, no defaults) serves the paths that need the
//! typed view of a body before it becomes an object (server-side apply, subresource writes).

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ApiError, Cause};

mod decode;

use crate::table::Column;
pub use decode::{decode_object, decode_typed, to_typed, unknown_fields};

/// A subresource a resource serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sub {
    /// `/status`: status-only updates; the main resource ignores status changes.
    Status,
    /// `/scale`: autoscaling/v1 Scale view of `spec.replicas`.
    Scale,
    /// `/binding` (pods): assign a node.
    Binding,
    /// `/log` (pods): served by the kubelet; refused clearly until one exists.
    Log,
    /// `/exec`, `/attach`, `/portforward` (pods): streams to a container, served by the
    /// kubelet; refused clearly until one exists.
    Exec,
    /// See [`Sub::Exec`].
    Attach,
    /// See [`Sub::Exec`].
    PortForward,
    /// `/finalize` (namespaces): update `spec.finalizers`.
    Finalize,
    /// `/token` (serviceaccounts): create a token (authentication.k8s.io/v1 TokenRequest).
    Token,
}

impl Sub {
    /// Path segment.
    pub fn name(self) -> &'static str {
        match self {
            Sub::Status => "status",
            Sub::Scale => "scale",
            Sub::Binding => "binding",
            Sub::Log => "log",
            Sub::Exec => "exec",
            Sub::Attach => "attach",
            Sub::PortForward => "portforward",
            Sub::Finalize => "finalize",
            Sub::Token => "token",
        }
    }
}

/// Static facts about a resource, used for routing, discovery and storage.
#[derive(Debug, Clone)]
pub struct Info {
    /// API group (`""` for core).
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Kind of the list.
    pub list_kind: &'static str,
    /// Plural (URL segment and storage prefix).
    pub plural: &'static str,
    /// Singular name.
    pub singular: &'static str,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// `kubectl` short names.
    pub short_names: &'static [&'static str],
    /// Categories (`all`).
    pub categories: &'static [&'static str],
    /// Subresources served.
    pub subresources: &'static [Sub],
    /// Field selector fields beyond `metadata.name` and `metadata.namespace`.
    pub field_labels: &'static [&'static str],
    /// Whether the object has a spec whose changes bump `metadata.generation`.
    pub has_spec: bool,
    /// Stored objects, or answers computed per request (access reviews).
    pub storage: Storage,
}

/// Whether a resource's objects live in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// Stored: every verb.
    Stored,
    /// Computed from the request and never stored (SubjectAccessReview and friends): the only
    /// verb is `create`, which answers with the object and its computed status.
    Computed,
}

/// Every verb of a stored resource, as discovery lists them.
pub const STORED_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl Info {
    /// `group/version`, or `version` for core.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether a subresource is served.
    pub fn has(&self, sub: Sub) -> bool {
        self.subresources.contains(&sub)
    }

    /// The verbs served on the resource itself.
    pub fn verbs(&self) -> &'static [&'static str] {
        match self.storage {
            Storage::Stored => STORED_VERBS,
            Storage::Computed => &["create"],
        }
    }
}

/// A value pool the API server allocates from (Service ClusterIPs and NodePorts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pool {
    /// Service ClusterIPs from `--service-cluster-ip-range`.
    ServiceIp,
    /// Service NodePorts from `--service-node-port-range`.
    NodePort,
}

/// One value an object needs from a pool: either the value it asked for, or any free one
/// to be written at `pointer` (a JSON pointer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The pool.
    pub pool: Pool,
    /// Where the value lives in the object.
    pub pointer: String,
    /// The value the user asked for, if any.
    pub requested: Option<String>,
}

/// Typed description of one resource; implemented once per file under `resources/`.
pub trait Kind: Send + Sync + 'static {
    /// The k8s-openapi type.
    type Obj: k8s_openapi::Resource
        + k8s_openapi::ListableResource
        + Serialize
        + DeserializeOwned
        + k8s_openapi::schemars::JsonSchema
        + Send;
    /// Singular name.
    const SINGULAR: &'static str;
    /// Namespaced or cluster-scoped.
    const NAMESPACED: bool;
    /// Short names.
    const SHORT_NAMES: &'static [&'static str] = &[];
    /// Categories.
    const CATEGORIES: &'static [&'static str] = &[];
    /// Subresources.
    const SUBRESOURCES: &'static [Sub] = &[];
    /// Extra field selector fields.
    const FIELD_LABELS: &'static [&'static str] = &[];
    /// Whether the object has a spec (generation tracking).
    const HAS_SPEC: bool = true;
    /// Whether the table starts with NAME (events print it last, in `-o wide`, instead).
    const NAME_COLUMN: bool = true;

    /// Fills in defaults.
    fn defaults(_obj: &mut Self::Obj) {}
    /// Validates an object (create and update).
    fn validate(_obj: &Self::Obj, _causes: &mut Vec<Cause>) {}
    /// Validates an update against the stored object (immutable fields).
    fn validate_update(_new: &Self::Obj, _old: &Self::Obj, _causes: &mut Vec<Cause>) {}
    /// Extra table columns after NAME (the handler adds NAME first).
    fn columns() -> Vec<Column> {
        vec![Column::new("Age", "date", "CreationTimestamp")]
    }
    /// The cells for [`Kind::columns`].
    fn cells(_obj: &Self::Obj, meta_age: &str) -> Vec<Value> {
        vec![Value::String(meta_age.to_string())]
    }
    /// The status a new object starts with (status set by a client on create is dropped for
    /// resources with a status subresource).
    fn initial_status(_obj: &Self::Obj) -> Option<Value> {
        None
    }
    /// Pool values the object needs (Services).
    fn claims(_obj: &Value) -> Vec<Claim> {
        Vec::new()
    }
    /// Graceful deletion period, if deleting this object must wait for an agent (pods bound
    /// to a node).
    fn grace_period(_obj: &Value, _requested: Option<i64>) -> Option<i64> {
        None
    }
}

/// The outcome of decoding a request body into a resource.
#[derive(Debug)]
pub struct Decoded {
    /// The object as the typed model sees it.
    pub object: Value,
    /// Paths of fields the typed model does not know (dropped from `object`).
    pub unknown_fields: Vec<String>,
}

/// The outcome of [`Resource::admit`].
#[derive(Debug)]
pub struct Admitted {
    /// The object as the typed model encodes it, with defaults (and the initial status, when
    /// asked for).
    pub object: Value,
    /// Paths of fields the typed model does not know (dropped from `object`).
    pub unknown_fields: Vec<String>,
    /// Validation failures (empty: valid).
    pub causes: Vec<Cause>,
}

/// Object-safe view of a [`Kind`], used by the generic handlers.
pub trait Resource: Send + Sync {
    /// Static facts.
    fn info(&self) -> &Info;
    /// Decodes JSON into the typed model and back; see the module doc.
    fn decode(&self, value: Value) -> Result<Decoded, ApiError>;
    /// Decodes once, sets the initial status (`initial_status`: a create), applies defaults,
    /// validates (against `old` on an update) and encodes once; see the module doc. Type
    /// errors are `Err`; validation failures are [`Admitted::causes`], so the caller can put
    /// strict field validation (400) before them (422), as Kubernetes does.
    fn admit(
        &self,
        value: Value,
        old: Option<&Value>,
        initial_status: bool,
    ) -> Result<Admitted, ApiError>;
    /// Table columns (after NAME).
    fn columns(&self) -> Vec<Column>;
    /// Table cells (after NAME).
    fn cells(&self, object: &Value, age: &str) -> Vec<Value>;
    /// Whether the table starts with NAME ([`Kind::NAME_COLUMN`]).
    fn name_column(&self) -> bool {
        true
    }
    /// Pool values needed.
    fn claims(&self, object: &Value) -> Vec<Claim>;
    /// Graceful deletion period.
    fn grace_period(&self, object: &Value, requested: Option<i64>) -> Option<i64>;
    /// JSON schema of the object type, registered in the generator (OpenAPI).
    fn schema(
        &self,
        generator: &mut k8s_openapi::schemars::SchemaGenerator,
    ) -> k8s_openapi::schemars::Schema;
    /// Schema name (`io.k8s.api.core.v1.Pod`).
    fn schema_name(&self) -> String;
}

/// Adapter from a [`Kind`] to [`Resource`].
pub struct Typed<K: Kind> {
    info: Info,
    _kind: PhantomData<K>,
}

impl<K: Kind> Typed<K> {
    /// Builds the adapter, deriving the facts k8s-openapi already knows.
    pub fn new() -> Typed<K> {
        use k8s_openapi::{ListableResource, Resource as _};
        Typed {
            info: Info {
                group: K::Obj::GROUP,
                version: K::Obj::VERSION,
                kind: K::Obj::KIND,
                list_kind: <K::Obj as ListableResource>::LIST_KIND,
                plural: K::Obj::URL_PATH_SEGMENT,
                singular: K::SINGULAR,
                namespaced: K::NAMESPACED,
                short_names: K::SHORT_NAMES,
                categories: K::CATEGORIES,
                subresources: K::SUBRESOURCES,
                field_labels: K::FIELD_LABELS,
                has_spec: K::HAS_SPEC,
                storage: Storage::Stored,
            },
            _kind: PhantomData,
        }
    }

    /// Deserializes from a borrowed value (no copy of the object).
    fn to_typed(&self, value: &Value) -> Result<K::Obj, ApiError> {
        to_typed(&self.info, value)
    }
}

impl<K: Kind> Default for Typed<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Kind> Resource for Typed<K> {
    fn info(&self) -> &Info {
        &self.info
    }

    fn decode(&self, value: Value) -> Result<Decoded, ApiError> {
        decode_object::<K::Obj>(&self.info, &value)
    }

    fn admit(
        &self,
        value: Value,
        old: Option<&Value>,
        initial_status: bool,
    ) -> Result<Admitted, ApiError> {
        let (mut typed, unknown_fields) = decode_typed::<K::Obj>(&self.info, &value)?;
        drop(value);
        // From the object as sent, before defaults (as the status was computed before).
        let status = initial_status.then(|| K::initial_status(&typed)).flatten();
        K::defaults(&mut typed);
        let mut causes = Vec::new();
        K::validate(&typed, &mut causes);
        if let Some(old) = old {
            let old = self.to_typed(old)?;
            K::validate_update(&typed, &old, &mut causes);
        }
        let mut object =
            serde_json::to_value(&typed).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        if let (Some(status), Some(map)) = (status, object.as_object_mut()) {
            map.insert("status".into(), status);
        }
        Ok(Admitted {
            object,
            unknown_fields,
            causes,
        })
    }

    fn columns(&self) -> Vec<Column> {
        K::columns()
    }

    fn name_column(&self) -> bool {
        K::NAME_COLUMN
    }

    fn cells(&self, object: &Value, age: &str) -> Vec<Value> {
        // Deserialize from the borrowed value: a table of thousands of rows clones nothing.
        match <K::Obj as serde::Deserialize>::deserialize(object) {
            Ok(typed) => K::cells(&typed, age),
            Err(_) => vec![Value::String(age.to_string())],
        }
    }

    fn claims(&self, object: &Value) -> Vec<Claim> {
        K::claims(object)
    }

    fn grace_period(&self, object: &Value, requested: Option<i64>) -> Option<i64> {
        K::grace_period(object, requested)
    }

    fn schema(
        &self,
        generator: &mut k8s_openapi::schemars::SchemaGenerator,
    ) -> k8s_openapi::schemars::Schema {
        generator.subschema_for::<K::Obj>()
    }

    fn schema_name(&self) -> String {
        <K::Obj as k8s_openapi::schemars::JsonSchema>::schema_name().into_owned()
    }
}

/// Every served resource, looked up by group/version/plural.
#[derive(Clone, Default)]
pub struct Registry {
    by_path: BTreeMap<(String, String, String), Arc<dyn Resource>>,
    order: Vec<Arc<dyn Resource>>,
}

impl Registry {
    /// Adds a resource.
    pub fn add<K: Kind>(&mut self) {
        self.add_resource(Arc::new(Typed::<K>::new()));
    }

    /// Adds a resource given as its object-safe adapter.
    pub fn add_resource(&mut self, r: Arc<dyn Resource>) {
        let i = r.info();
        self.by_path.insert(
            (
                i.group.to_string(),
                i.version.to_string(),
                i.plural.to_string(),
            ),
            r.clone(),
        );
        self.order.push(r);
    }

    /// Finds a resource.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<&Arc<dyn Resource>> {
        self.by_path
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
    }

    /// All resources, in registration order.
    pub fn all(&self) -> &[Arc<dyn Resource>] {
        &self.order
    }

    /// The group/versions served, in order of first registration (`""` for core).
    pub fn group_versions(&self) -> Vec<(&'static str, &'static str)> {
        let mut out: Vec<(&'static str, &'static str)> = Vec::new();
        for r in &self.order {
            let gv = (r.info().group, r.info().version);
            if !out.contains(&gv) {
                out.push(gv);
            }
        }
        out
    }
}
