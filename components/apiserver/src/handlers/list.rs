//! GET of a collection: selectors, pagination, consistent revision, Table form.

use serde_json::{Map, Value, json};

use super::meta::Filter;
use super::{Ctx, Format, Reply, Req};
use crate::error::ApiError;
use crate::storage::keys;
use crate::storage::list::ListOptions;
use crate::table::{self, IncludeObject};

/// Converts objects to a Table response.
pub fn to_table(req: &Req, items: &[Value], list_meta: Value) -> Result<Value, ApiError> {
    let include =
        IncludeObject::parse(req.query.get("includeObject")).map_err(ApiError::BadRequest)?;
    let now = jiff::Timestamp::now();
    let rows = items
        .iter()
        .map(|o| table::row(req.resource.as_ref(), o, include, now))
        .collect();
    Ok(table::table(req.resource.as_ref(), rows, list_meta))
}

/// Parses the list's read options.
pub fn list_options(req: &Req) -> Result<ListOptions, ApiError> {
    let limit = req
        .query
        .int("limit")?
        .filter(|l| *l > 0)
        .map(|l| l as usize);
    let continue_token = req.query.get("continue").map(str::to_string);
    let rv = req.query.get("resourceVersion");
    let revision = match (rv, req.query.get("resourceVersionMatch")) {
        (_, Some(m)) if !matches!(m, "Exact" | "NotOlderThan") => {
            return Err(ApiError::BadRequest(format!(
                "resourceVersionMatch={m:?}: must be Exact or NotOlderThan"
            )));
        }
        (None, Some(m)) => {
            return Err(ApiError::BadRequest(format!(
                "resourceVersionMatch={m} is forbidden unless resourceVersion is provided"
            )));
        }
        (Some(v), Some("Exact")) => Some(parse_rv(v)?),
        (Some(v), _) => {
            parse_rv(v)?;
            None
        }
        (None, None) => None,
    };
    if continue_token.is_some() && rv.is_some_and(|v| v != "0") {
        return Err(ApiError::BadRequest(
            "specifying resourceVersion is not allowed when using continue".into(),
        ));
    }
    Ok(ListOptions {
        revision: revision.filter(|r| *r > 0),
        limit,
        continue_token,
    })
}

/// Parses a resourceVersion.
pub fn parse_rv(v: &str) -> Result<i64, ApiError> {
    v.parse::<i64>().ok().filter(|r| *r >= 0).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "resourceVersion {v:?} is not a valid resource version"
        ))
    })
}

/// Lists a collection.
pub async fn list(ctx: &Ctx, req: &Req) -> Result<Reply, ApiError> {
    let info = req.resource.info();
    let filter = Filter::from_request(req)?;
    let options = list_options(req)?;
    let prefix = keys::collection(info.plural, req.namespace());
    let page = ctx
        .store
        .list(&prefix, &options, !filter.is_empty(), |o| filter.matches(o))
        .await
        .map_err(|e| match e {
            crate::storage::StorageError::InvalidContinue(t) => {
                ApiError::BadRequest(format!("invalid continue token {t:?}"))
            }
            crate::storage::StorageError::Compacted { .. } if options.continue_token.is_some() => {
                ApiError::Gone("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.".into())
            }
            crate::storage::StorageError::Compacted { requested, .. } => {
                ApiError::Gone(format!("too old resource version: {requested}"))
            }
            other => other.into(),
        })?;
    let mut meta = Map::new();
    meta.insert(
        "resourceVersion".into(),
        Value::String(page.revision.to_string()),
    );
    if let Some(c) = &page.continue_token {
        meta.insert("continue".into(), Value::String(c.clone()));
    }
    if let Some(r) = page.remaining {
        meta.insert("remainingItemCount".into(), json!(r));
    }
    let items: Vec<Value> = page.items.into_iter().map(|s| s.object).collect();
    if req.format == Format::Table {
        return Ok(Reply::ok(to_table(req, &items, Value::Object(meta))?));
    }
    Ok(Reply::ok(json!({
        "kind": info.list_kind,
        "apiVersion": info.api_version(),
        "metadata": meta,
        "items": items,
    })))
}
