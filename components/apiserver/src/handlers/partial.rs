//! Metadata-only responses: `Accept: application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1`
//! (or `v1beta1`), and `as=PartialObjectMetadataList` for lists — what client-go's metadata
//! client, the garbage collector and the namespace controller ask for.
//!
//! The server negotiates the form (`server::negotiate`) into [`Format::Metadata`]; a single
//! object reply (get, and the result of a write) is turned into a `PartialObjectMetadata`
//! by [`object`] where the server encodes it; watch events by the watch encoder; lists are
//! read here by [`list`]: the same consistent, paged read as a plain list (selectors,
//! `limit`/`continue`, resourceVersion), each item reduced to its metadata.

use serde_json::{Map, Value, json};

use super::meta::Filter;
use super::{Ctx, Format, Reply, Req};
use crate::error::ApiError;

/// `meta.k8s.io/<version>`.
fn api_version(version: &str) -> String {
    format!("meta.k8s.io/{version}")
}

/// The `PartialObjectMetadata` of an object; `Status` objects (a delete's answer) and
/// objects without metadata pass unchanged.
pub fn object(mut full: Value, version: &str) -> Value {
    if full.get("kind").and_then(Value::as_str) == Some("Status") {
        return full;
    }
    match full.get_mut("metadata").map(Value::take) {
        Some(metadata) => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": api_version(version),
            "metadata": metadata,
        }),
        None => full,
    }
}

/// A `PartialObjectMetadataList` of the collection, read as a plain list is.
pub async fn list(ctx: &Ctx, req: &Req) -> Result<Reply, ApiError> {
    let Format::Metadata { version, .. } = req.format else {
        return super::list::list(ctx, req).await;
    };
    let filter = Filter::from_request(req)?;
    let (mut cursor, continued) = super::list::open_cursor(ctx, req, !filter.is_empty()).await?;
    let mut items = Vec::new();
    while let Some(batch) = cursor
        .next_batch(&|o: &Value| filter.matches(o))
        .await
        .map_err(|e| super::list::list_error(e, continued))?
    {
        items.extend(batch.into_iter().map(|s| object(s.object, version)));
    }
    let mut meta = Map::new();
    meta.insert(
        "resourceVersion".into(),
        cursor.revision().to_string().into(),
    );
    let (token, remaining) = cursor.page_end();
    if let Some(token) = token {
        meta.insert("continue".into(), token.into());
    }
    if let Some(remaining) = remaining {
        meta.insert("remainingItemCount".into(), remaining.into());
    }
    Ok(Reply::ok(json!({
        "kind": "PartialObjectMetadataList",
        "apiVersion": api_version(version),
        "metadata": meta,
        "items": items,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_metadata() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"a": "b"}}, "spec": {"containers": []}});
        assert_eq!(
            object(pod, "v1beta1"),
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1beta1",
                "metadata": {"name": "p", "labels": {"a": "b"}}})
        );
        let status = json!({"kind": "Status", "status": "Success"});
        assert_eq!(object(status.clone(), "v1"), status);
    }
}
