//! Kubernetes resource glue shared by the API server and, later, the controllers and kubelet.
//!
//! # Layout
//! - [`labels`]: label selectors (`app=web,tier in (a,b),!canary`): parse once, match many.
//! - [`fields`]: field selectors (`spec.nodeName=n1,status.phase!=Running`) over flattened fields.
//! - [`validation`]: the name/label/annotation rules of Kubernetes (DNS-1123, qualified names),
//!   returning the same messages the reference API server returns, so clients see familiar text.
//!
//! The types here are transport-free: the API server maps their errors to `Status` objects.
#![warn(missing_docs)]

pub mod fields;
pub mod labels;
pub mod validation;
