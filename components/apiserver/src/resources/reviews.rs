//! The computed, create-only resources of authorization.k8s.io/v1 (SelfSubjectAccessReview,
//! SubjectAccessReview, LocalSubjectAccessReview, SelfSubjectRulesReview) and
//! authentication.k8s.io/v1 (SelfSubjectReview, TokenReview). They are never stored: `create`
//! answers with the request object and its computed status (`handlers::reviews`).
//!
//! [`Review`] adapts such a k8s-openapi type to [`Resource`] so routing, discovery, OpenAPI
//! and body decoding treat them like any other resource.

use std::marker::PhantomData;

use k8s_openapi::api::authentication::v1::{SelfSubjectReview, TokenReview};
use k8s_openapi::api::authorization::v1::{
    LocalSubjectAccessReview, SelfSubjectAccessReview, SelfSubjectRulesReview, SubjectAccessReview,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;
use crate::registry::{Admitted, Claim, Decoded, Info, Registry, Resource, Storage, decode_typed};
use crate::table::Column;

/// A create-only computed resource over the k8s-openapi type `T`.
pub struct Review<T> {
    info: Info,
    _t: PhantomData<fn() -> T>,
}

impl<T> Review<T>
where
    T: k8s_openapi::Resource
        + Serialize
        + DeserializeOwned
        + k8s_openapi::schemars::JsonSchema
        + Send
        + 'static,
{
    /// The adapter; `singular` and scope as discovery shows them.
    pub fn new(singular: &'static str, namespaced: bool) -> Review<T> {
        Review {
            info: Info {
                group: T::GROUP,
                version: T::VERSION,
                kind: T::KIND,
                list_kind: "",
                plural: T::URL_PATH_SEGMENT,
                singular,
                namespaced,
                short_names: &[],
                categories: &[],
                subresources: &[],
                field_labels: &[],
                has_spec: false,
                storage: Storage::Computed,
            },
            _t: PhantomData,
        }
    }
}

impl<T> Resource for Review<T>
where
    T: k8s_openapi::Resource
        + Serialize
        + DeserializeOwned
        + k8s_openapi::schemars::JsonSchema
        + Send
        + 'static,
{
    fn info(&self) -> &Info {
        &self.info
    }

    fn decode(&self, value: Value) -> Result<Decoded, ApiError> {
        let (typed, unknown_fields) = decode_typed::<T>(&self.info, &value)?;
        let object =
            serde_json::to_value(&typed).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        Ok(Decoded {
            object,
            unknown_fields,
        })
    }

    fn admit(
        &self,
        value: Value,
        _old: Option<&Value>,
        _initial_status: bool,
    ) -> Result<Admitted, ApiError> {
        let (typed, unknown_fields) = decode_typed::<T>(&self.info, &value)?;
        let object =
            serde_json::to_value(&typed).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        Ok(Admitted {
            object,
            unknown_fields,
            causes: Vec::new(),
        })
    }

    fn columns(&self) -> Vec<Column> {
        Vec::new()
    }

    fn cells(&self, _object: &Value, _age: &str) -> Vec<Value> {
        Vec::new()
    }

    fn claims(&self, _object: &Value) -> Vec<Claim> {
        Vec::new()
    }

    fn grace_period(&self, _object: &Value, _requested: Option<i64>) -> Option<i64> {
        None
    }

    fn schema(
        &self,
        generator: &mut k8s_openapi::schemars::SchemaGenerator,
    ) -> k8s_openapi::schemars::Schema {
        generator.subschema_for::<T>()
    }

    fn schema_name(&self) -> String {
        <T as k8s_openapi::schemars::JsonSchema>::schema_name().into_owned()
    }
}

/// Adds every review resource.
pub fn register(r: &mut Registry) {
    use std::sync::Arc;
    r.add_resource(Arc::new(Review::<TokenReview>::new("tokenreview", false)));
    r.add_resource(Arc::new(Review::<SelfSubjectReview>::new(
        "selfsubjectreview",
        false,
    )));
    r.add_resource(Arc::new(Review::<LocalSubjectAccessReview>::new(
        "localsubjectaccessreview",
        true,
    )));
    r.add_resource(Arc::new(Review::<SelfSubjectAccessReview>::new(
        "selfsubjectaccessreview",
        false,
    )));
    r.add_resource(Arc::new(Review::<SelfSubjectRulesReview>::new(
        "selfsubjectrulesreview",
        false,
    )));
    r.add_resource(Arc::new(Review::<SubjectAccessReview>::new(
        "subjectaccessreview",
        false,
    )));
}
