//! GET of one object (JSON, YAML or a one-row Table).

use serde_json::json;

use super::meta::must_get;
use super::{Ctx, Format, Reply, Req};
use crate::error::ApiError;

/// Reads one object.
pub async fn get(ctx: &Ctx, req: &Req) -> Result<Reply, ApiError> {
    let name = req.name()?;
    super::fresh::wait_for_request(ctx, req).await?;
    let stored = must_get(ctx, req.resource.as_ref(), &req.key(name), name).await?;
    if req.format == Format::Table {
        let meta = json!({"resourceVersion": stored.revision.to_string()});
        return Ok(Reply::ok(super::list::to_table(
            req,
            &[stored.object],
            meta,
        )?));
    }
    Ok(Reply::ok(stored.object))
}
