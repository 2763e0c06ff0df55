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
    const NAME_COLUMN: bool = false;
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
        // kube-apiserver's event columns, in its order; kubectl shows the priority-0 ones
        // (LAST SEEN, TYPE, REASON, OBJECT, MESSAGE) and all with `-o wide`.
        vec![
            Column::new(
                "Last Seen",
                "string",
                "The time at which the most recent occurrence of this event was recorded.",
            ),
            Column::new(
                "Type",
                "string",
                "Type of this event (Normal, Warning), new types could be added in the future",
            ),
            Column::new(
                "Reason",
                "string",
                "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
            ),
            Column::new("Object", "string", "The object that this event is about."),
            Column::wide(
                "Subobject",
                "string",
                "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2].",
            ),
            Column::wide(
                "Source",
                "string",
                "The component reporting this event. Should be a short machine understandable string.",
            ),
            Column::new(
                "Message",
                "string",
                "A human-readable description of the status of this operation.",
            ),
            Column::wide(
                "First Seen",
                "string",
                "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
            ),
            Column::wide(
                "Count",
                "string",
                "The number of times this event has occurred.",
            ),
            Column::wide("Name", "string", "Name must be unique within a namespace."),
        ]
    }

    fn cells(ev: &Event, _age: &str) -> Vec<Value> {
        // As kube's printEvent: first seen falls back to eventTime, last seen to first seen;
        // an event series gives its own last time and count; a singleton counts 1.
        let now = jiff::Timestamp::now().as_second();
        let since = |t: Option<jiff::Timestamp>| {
            t.map(|t| crate::table::human_duration(now - t.as_second()))
                .unwrap_or_else(|| "<unknown>".into())
        };
        let first_time = ev
            .first_timestamp
            .as_ref()
            .map(|t| t.0)
            .or_else(|| ev.event_time.as_ref().map(|t| t.0));
        let first = since(first_time);
        let mut last = match &ev.last_timestamp {
            Some(t) => since(Some(t.0)),
            None => first.clone(),
        };
        let mut count = ev.count.unwrap_or(0);
        if let Some(series) = &ev.series {
            last = since(series.last_observed_time.as_ref().map(|t| t.0));
            count = series.count.unwrap_or(0);
        } else if count == 0 {
            count = 1;
        }
        let kind = ev
            .involved_object
            .kind
            .clone()
            .unwrap_or_default()
            .to_lowercase();
        let object = match ev.involved_object.name.as_deref().unwrap_or_default() {
            "" => kind,
            name => format!("{kind}/{name}"),
        };
        let nonempty = |a: Option<&String>, b: Option<&String>| {
            a.filter(|s| !s.is_empty())
                .or(b)
                .cloned()
                .unwrap_or_default()
        };
        let source = ev.source.as_ref();
        let component = nonempty(
            source.and_then(|s| s.component.as_ref()),
            ev.reporting_component.as_ref(),
        );
        let instance = nonempty(
            source.and_then(|s| s.host.as_ref()),
            ev.reporting_instance.as_ref(),
        );
        let source = match (component.is_empty(), instance.is_empty()) {
            (_, true) => component,
            _ => format!("{component}, {instance}"),
        };
        vec![
            json!(last),
            json!(ev.type_.clone().unwrap_or_default()),
            json!(ev.reason.clone().unwrap_or_default()),
            json!(object),
            json!(ev.involved_object.field_path.clone().unwrap_or_default()),
            json!(source),
            json!(ev.message.as_deref().unwrap_or_default().trim()),
            json!(first),
            json!(count),
            json!(ev.metadata.name.clone().unwrap_or_default()),
        ]
    }
}
