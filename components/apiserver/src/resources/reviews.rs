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
use crate::registry::{Admitted, Claim, Decoded, Info, Registry, Resource, Storage, decode_object};
use crate::table::Column;

/// What a k8s-openapi review type must be to serve as a [`Review`].
pub trait ReviewType:
    k8s_openapi::Resource
    + Serialize
    + DeserializeOwned
    + k8s_openapi::schemars::JsonSchema
    + Send
    + 'static
{
}

impl<T> ReviewType for T where
    T: k8s_openapi::Resource
        + Serialize
        + DeserializeOwned
        + k8s_openapi::schemars::JsonSchema
        + Send
        + 'static
{
}

/// A create-only computed resource over the k8s-openapi type `T`.
pub struct Review<T> {
    info: Info,
    _t: PhantomData<fn() -> T>,
}

impl<T: ReviewType> Review<T> {
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

impl<T: ReviewType> Resource for Review<T> {
    fn info(&self) -> &Info {
        &self.info
    }

    fn decode(&self, value: Value) -> Result<Decoded, ApiError> {
        decode_object::<T>(&self.info, &value)
    }

    fn admit(
        &self,
        value: Value,
        _old: Option<&Value>,
        _initial_status: bool,
    ) -> Result<Admitted, ApiError> {
        // Nothing to default or validate: the review's status is computed on create.
        let Decoded {
            object,
            unknown_fields,
        } = self.decode(value)?;
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
    add::<TokenReview>(r, "tokenreview", false);
    add::<SelfSubjectReview>(r, "selfsubjectreview", false);
    add::<LocalSubjectAccessReview>(r, "localsubjectaccessreview", true);
    add::<SelfSubjectAccessReview>(r, "selfsubjectaccessreview", false);
    add::<SelfSubjectRulesReview>(r, "selfsubjectrulesreview", false);
    add::<SubjectAccessReview>(r, "subjectaccessreview", false);
}

/// Adds the review over `T`; `singular` and scope as discovery shows them.
fn add<T: ReviewType>(r: &mut Registry, singular: &'static str, namespaced: bool) {
    r.add_resource(std::sync::Arc::new(Review::<T>::new(singular, namespaced)));
}
