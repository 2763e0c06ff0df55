//! core/v1 Events.

use k8s_openapi::api::core::v1::Event;
use serde_json::{Value, json};

use crate::registry::Kind;
use crate::table::Column;

/// Events.
pub struct Events;

impl Kind for Events {
    type Obj = Event;
    const SINGULAR: &'static str = "event";
    const NAMESPACED: bool = true;
    const SHORT_NAMES: &'static [&'static str] = &["ev"];
    const HAS_SPEC: bool = false;
    const FIELD_LABELS: &'static [&'static str] = &[
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ];

    fn columns() -> Vec<Column> {
        vec![
            Column::new("Last Seen", "string", "Time since the event was last seen"),
            Column::new("Type", "string", "Type of this event"),
            Column::new("Reason", "string", "Why the event happened"),
            Column::new("Object", "string", "The object this event is about"),
            Column::new("Message", "string", "A description of the event"),
        ]
    }

    fn cells(ev: &Event, _age: &str) -> Vec<Value> {
        let last = ev
            .last_timestamp
            .as_ref()
            .map(|t| t.0)
            .or_else(|| ev.event_time.as_ref().map(|t| t.0))
            .or_else(|| ev.metadata.creation_timestamp.as_ref().map(|t| t.0))
            .map(|t| {
                crate::table::human_duration(jiff::Timestamp::now().as_second() - t.as_second())
            })
            .unwrap_or("<unknown>".into());
        let obj = format!(
            "{}/{}",
            ev.involved_object
                .kind
                .clone()
                .unwrap_or_default()
                .to_lowercase(),
            ev.involved_object.name.clone().unwrap_or_default()
        );
        vec![
            json!(last),
            json!(ev.type_.clone().unwrap_or_default()),
            json!(ev.reason.clone().unwrap_or_default()),
            json!(obj),
            json!(ev.message.clone().unwrap_or_default()),
        ]
    }
}
