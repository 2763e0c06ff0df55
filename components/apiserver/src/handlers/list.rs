//! GET of a collection: selectors, pagination, consistent revision, Table form.
//!
//! Flow: query → [`ListOptions`] → a [`crate::storage::list::ListCursor`] at one revision → batches
//! of objects → encoded straight to JSON bytes (plain list or Table rows) → a
//! [`Reply::Encoded`] body, streamed batch by batch for lists without `limit`.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::meta::Filter;
use super::{Ctx, Format, Reply, Req};
use crate::error::ApiError;
use crate::registry::Resource;
use crate::storage::list::{self, ListCursor, ListOptions};
use crate::storage::{StorageError, Stored, keys};
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

/// The store cursor of a list request (its limit, continue token and resourceVersion, once
/// the store has reached that revision) over the request's collection; `filtered` when
/// selectors will drop items. Also whether the request continues an earlier page, which
/// [`list_error`] needs.
pub(crate) async fn open_cursor(
    ctx: &Ctx,
    req: &Req,
    filtered: bool,
) -> Result<(ListCursor, bool), ApiError> {
    let mut options = list_options(req)?;
    if req.format == Format::Table && !ctx.config.honor_table_limit {
        // Tables are streamed whole (`Config::honor_table_limit`): no page, no continue
        // token; a continue token from an earlier page still says where to start.
        options.limit = None;
    }
    super::fresh::wait_for_request(ctx, req).await?;
    let continued = options.continue_token.is_some();
    let prefix = keys::collection(req.resource.info().plural, req.namespace());
    let cursor = ctx
        .store
        .list_cursor(&prefix, &options, filtered)
        .map_err(|e| list_error(e, continued))?;
    Ok((cursor, continued))
}

pub(crate) fn list_error(e: StorageError, continued: bool) -> ApiError {
    match e {
        StorageError::InvalidContinue(t) => {
            ApiError::BadRequest(format!("invalid continue token {t:?}"))
        }
        StorageError::Compacted { .. } if continued => ApiError::Gone(
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.".into(),
        ),
        StorageError::Compacted { requested, .. } => {
            ApiError::Gone(format!("too old resource version: {requested}"))
        }
        other => other.into(),
    }
}

/// Lists a collection.
///
/// The first batch is read before answering, so a bad token, a compacted or future
/// revision or an unreachable store is a `Status`. A page (`limit`) is read whole (bounded
/// by its limit) and encoded at once; a list without `limit` is streamed: the head (with
/// the revision of the first read), then each further batch of [`crate::storage::list::BATCH`]
/// objects read at that revision and encoded as it arrives, so the server never holds the
/// whole collection. A store failure after the head aborts the response (the client sees
/// a truncated body, never a complete-looking list).
pub async fn list(ctx: &Ctx, req: &Req) -> Result<Reply, ApiError> {
    let info = req.resource.info();
    let filter = Arc::new(Filter::from_request(req)?);
    let (mut cursor, continued) = open_cursor(ctx, req, !filter.is_empty()).await?;
    let keep = {
        let filter = filter.clone();
        move |o: &Value| filter.matches(o)
    };
    let encoder = Arc::new(Encoder::new(req)?);
    let mode = match (req.format, encoder.table) {
        // A plain list without selectors needs no JSON tree per object (the common case of
        // informers and the bench): the stored bytes get their resourceVersion spliced in.
        (Format::Json, None) if filter.is_empty() => Mode::Raw,
        // kubectl's default rows: no tree of managedFields.
        (Format::Table, Some((IncludeObject::Metadata, _))) => Mode::MetadataRows,
        _ => Mode::Objects,
    };
    let first = next(&mut cursor, mode, &keep, &encoder)
        .await
        .map_err(|e| list_error(e, continued))?
        .unwrap_or_else(|| match mode {
            Mode::Objects => Batch::Objects(Vec::new()),
            Mode::Raw => Batch::Joined(Vec::new()),
            Mode::MetadataRows => Batch::Raw(Vec::new()),
        });
    let mut meta = Map::new();
    meta.insert(
        "resourceVersion".into(),
        Value::String(cursor.revision().to_string()),
    );
    if req.format == Format::Yaml {
        // YAML is rare for lists (kubectl decodes JSON): built as one document.
        let Batch::Objects(first) = first else {
            unreachable!("a YAML list is read as objects (Mode::Objects)")
        };
        let mut items: Vec<Value> = first.into_iter().map(|s| s.object).collect();
        while let Some(batch) = cursor
            .next_batch(&keep)
            .await
            .map_err(|e| list_error(e, continued))?
        {
            items.extend(batch.into_iter().map(|s| s.object));
        }
        page_meta(&mut meta, cursor.page_end());
        return Ok(Reply::ok(json!({
            "kind": info.list_kind,
            "apiVersion": info.api_version(),
            "metadata": meta,
            "items": items,
        })));
    }
    if cursor.is_done() {
        page_meta(&mut meta, cursor.page_end());
    }
    let mut head = encoder.head(&meta, first.encoded_len());
    encoder.items(&mut head, first, true);
    if cursor.is_done() {
        head.extend_from_slice(b"]}");
        return Ok(Reply::Encoded {
            head: head.into(),
            rest: None,
        });
    }
    let rest = futures::stream::unfold(Some((cursor, encoder, keep)), move |state| async move {
        let (mut cursor, encoder, keep) = state?;
        match next(&mut cursor, mode, &keep, &encoder).await {
            Ok(Some(batch)) => {
                let mut buf = Vec::new();
                encoder.items(&mut buf, batch, false);
                Some((Ok(Bytes::from(buf)), Some((cursor, encoder, keep))))
            }
            Ok(None) => Some((Ok(Bytes::from_static(b"]}")), None)),
            Err(e) => {
                tracing::warn!(error = %e, "list aborted after its head was sent");
                Some((Err(std::io::Error::other(e)), None))
            }
        }
    });
    Ok(Reply::Encoded {
        head: head.into(),
        rest: Some(Box::pin(rest)),
    })
}

/// One batch as read: decoded objects, or items already encoded (objects or rows).
enum Batch {
    Objects(Vec<Stored>),
    Raw(Vec<Vec<u8>>),
    /// Encoded items already comma-separated in one buffer (plain JSON lists).
    Joined(Vec<u8>),
}

impl Batch {
    /// The bytes the batch's items take encoded, when already encoded in one buffer.
    fn encoded_len(&self) -> Option<usize> {
        match self {
            Batch::Joined(items) => Some(items.len()),
            _ => None,
        }
    }
}

/// How a list reads its objects.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Decoded objects (selectors, YAML, Table rows with the whole object or none).
    Objects,
    /// Stored bytes with the resourceVersion spliced in (plain unfiltered JSON).
    Raw,
    /// Table rows with `PartialObjectMetadata`, encoded as read.
    MetadataRows,
}

async fn next(
    cursor: &mut ListCursor,
    mode: Mode,
    keep: &(dyn Fn(&Value) -> bool + Sync),
    encoder: &Encoder,
) -> Result<Option<Batch>, StorageError> {
    Ok(match mode {
        Mode::Objects => cursor.next_batch(keep).await?.map(Batch::Objects),
        Mode::Raw => cursor.next_raw_joined().await?.map(Batch::Joined),
        Mode::MetadataRows => cursor
            .next_with(|key, value, revision| {
                let (object, meta) = match list::split_for_row(value, revision) {
                    Some(split) => split,
                    None => {
                        // The object keeps its metadata (cells read the name from it);
                        // the row's copy drops managedFields, as `split_for_row`'s does.
                        let s = list::decode_stored(key, value, revision)?;
                        let mut meta = s.object.get("metadata").cloned().unwrap_or(json!({}));
                        if let Some(m) = meta.as_object_mut() {
                            m.remove("managedFields");
                        }
                        (s.object, serde_json::to_string(&meta).unwrap_or_default())
                    }
                };
                Ok(keep(&object).then(|| encoder.metadata_row(&object, &meta)))
            })
            .await?
            .map(Batch::Raw),
    })
}

/// Adds a finished page's continue token and remaining-item count to its list metadata.
fn page_meta(meta: &mut Map<String, Value>, (token, remaining): (Option<String>, Option<i64>)) {
    if let Some(c) = token {
        meta.insert("continue".into(), Value::String(c));
    }
    if let Some(r) = remaining {
        meta.insert("remainingItemCount".into(), json!(r));
    }
}

/// Encodes a list response piece by piece: the head (kind, apiVersion, metadata, and for a
/// Table its columns) and the items or rows, comma-separated, as the batches come.
struct Encoder {
    resource: Arc<dyn Resource>,
    /// `Some` for a Table.
    table: Option<(IncludeObject, jiff::Timestamp)>,
    kind: &'static str,
    api_version: String,
}

impl Encoder {
    fn new(req: &Req) -> Result<Encoder, ApiError> {
        let info = req.resource.info();
        let table = match req.format {
            Format::Table => Some((
                IncludeObject::parse(req.query.get("includeObject"))
                    .map_err(ApiError::BadRequest)?,
                jiff::Timestamp::now(),
            )),
            _ => None,
        };
        Ok(Encoder {
            resource: req.resource.clone(),
            table,
            kind: info.list_kind,
            api_version: info.api_version(),
        })
    }

    /// `{"kind":...,"metadata":{...},"items":[` (or a Table's `...,"rows":[`).
    /// `items_len`: the bytes of the items to follow in the same buffer, when known.
    fn head(&self, meta: &Map<String, Value>, items_len: Option<usize>) -> Vec<u8> {
        let mut out = Vec::with_capacity(items_len.map_or(64 * 1024, |n| n + 1024));
        let (kind, api_version) = match self.table {
            Some(_) => ("Table", "meta.k8s.io/v1"),
            None => (self.kind, self.api_version.as_str()),
        };
        out.extend_from_slice(b"{\"kind\":");
        write_json(&mut out, &kind);
        out.extend_from_slice(b",\"apiVersion\":");
        write_json(&mut out, &api_version);
        out.extend_from_slice(b",\"metadata\":");
        write_json(&mut out, meta);
        match self.table {
            Some(_) => {
                out.extend_from_slice(b",\"columnDefinitions\":");
                write_json(&mut out, &table::column_definitions(self.resource.as_ref()));
                out.extend_from_slice(b",\"rows\":[");
            }
            None => out.extend_from_slice(b",\"items\":["),
        }
        out
    }

    /// Appends the batch's items (rows), each preceded by a comma unless it is the very
    /// first of the list.
    fn items(&self, out: &mut Vec<u8>, batch: Batch, mut first: bool) {
        let batch = match batch {
            Batch::Joined(items) => {
                if !first && !items.is_empty() {
                    out.push(b',');
                }
                out.extend_from_slice(&items);
                return;
            }
            Batch::Raw(items) => {
                for item in items {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    out.extend_from_slice(&item);
                }
                return;
            }
            Batch::Objects(batch) => batch,
        };
        for stored in batch {
            if !first {
                out.push(b',');
            }
            first = false;
            match self.table {
                Some((include, now)) => write_json(
                    out,
                    &table::row_owned(self.resource.as_ref(), stored.object, include, now),
                ),
                None => write_json(out, &stored.object),
            }
        }
    }
}

impl Encoder {
    /// A Table row with `PartialObjectMetadata` from the object's tree (cells) and its
    /// metadata JSON (without managedFields) — the bytes [`table::row`] gives encoded.
    fn metadata_row(&self, object: &Value, meta_json: &str) -> Vec<u8> {
        let now = self.table.map(|t| t.1).unwrap_or_else(jiff::Timestamp::now);
        let mut out = Vec::with_capacity(meta_json.len() + 256);
        out.extend_from_slice(b"{\"cells\":");
        write_json(&mut out, &table::cells(self.resource.as_ref(), object, now));
        out.extend_from_slice(
            b",\"object\":{\"apiVersion\":\"meta.k8s.io/v1\",\"kind\":\"PartialObjectMetadata\",\"metadata\":",
        );
        out.extend_from_slice(meta_json.as_bytes());
        out.extend_from_slice(b"}}");
        out
    }
}

fn write_json(out: &mut Vec<u8>, v: &(impl serde::Serialize + ?Sized)) {
    // Serializing a serde_json::Value or a str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
}
