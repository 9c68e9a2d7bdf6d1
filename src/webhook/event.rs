//! Event validation: which events we accept and what each needs.

use serde_json::{Map, Value};

/// `appointment.created`.
pub const APPOINTMENT_CREATED: &str = "appointment.created";
/// `appointment.updated`.
pub const APPOINTMENT_UPDATED: &str = "appointment.updated";
/// `prescription.created`.
pub const PRESCRIPTION_CREATED: &str = "prescription.created";
/// `prescription.updated`.
pub const PRESCRIPTION_UPDATED: &str = "prescription.updated";

/// The events enriched and persisted out of the box (Eka SDK's `SUPPORTED_EVENTS`).
pub const SUPPORTED_EVENTS: [&str; 4] = [
    APPOINTMENT_CREATED,
    APPOINTMENT_UPDATED,
    PRESCRIPTION_CREATED,
    PRESCRIPTION_UPDATED,
];
/// Events that always carry `data.appointment_id`.
pub const APPOINTMENT_EVENTS: [&str; 2] = [APPOINTMENT_CREATED, APPOINTMENT_UPDATED];

/// What to do with a valid event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// Fetch the appointment (and patient, doctor, clinic) before answering.
    Enrich {
        /// `data.appointment_id`.
        appointment_id: String,
    },
    /// Pass through unenriched: an allowed event outside the supported set, or a prescription
    /// event without `data.appointment_id` (Eka's documented prescription payload has none;
    /// the SDK wrongly answers 400).
    PassThrough,
}

/// A validated event.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent {
    /// `event`.
    pub event_type: String,
    /// The whole payload, untouched.
    pub payload: Map<String, Value>,
    /// What to do next.
    pub kind: EventKind,
}

impl WebhookEvent {
    /// `payload.data`, when it is an object.
    pub fn data(&self) -> Option<&Map<String, Value>> {
        self.payload.get("data").and_then(Value::as_object)
    }
}

/// Why an event was refused (all 400s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventError {
    /// `event` absent, empty or not a string.
    MissingEvent,
    /// Not in the allowed list.
    NotAllowed {
        /// The event as sent.
        event: String,
        /// The allowed list.
        allowed: Vec<String>,
    },
    /// An appointment event without a string `data.appointment_id`.
    MissingAppointmentId,
    /// `data.appointment_id` that cannot name a resource (`.` or `..`).
    InvalidAppointmentId,
}

impl std::fmt::Display for EventError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventError::MissingEvent => f.write_str("Missing 'event' field in webhook payload"),
            EventError::NotAllowed { event, allowed } => {
                // A JSON list (the SDK prints a Python repr).
                let list = serde_json::to_string(allowed).map_err(|_| std::fmt::Error)?;
                write!(
                    f,
                    "Event type '{event}' is not in the allowed events list. Allowed: {list}"
                )
            }
            EventError::MissingAppointmentId => {
                f.write_str("Missing 'appointment_id' in webhook payload data")
            }
            EventError::InvalidAppointmentId => {
                f.write_str("Invalid 'appointment_id' in webhook payload data")
            }
        }
    }
}

impl std::error::Error for EventError {}

/// The allowed list: `configured` if non-empty, else [`SUPPORTED_EVENTS`].
pub fn allowed_events(configured: &[String]) -> Vec<String> {
    if configured.iter().any(|e| !e.trim().is_empty()) {
        configured
            .iter()
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty())
            .collect()
    } else {
        SUPPORTED_EVENTS.iter().map(|e| (*e).to_owned()).collect()
    }
}

/// Validates a parsed payload against the allowed list.
pub fn validate(
    payload: Map<String, Value>,
    allowed: &[String],
) -> Result<WebhookEvent, EventError> {
    let event_type = match payload.get("event") {
        Some(Value::String(e)) if !e.is_empty() => e.clone(),
        _ => return Err(EventError::MissingEvent),
    };
    if !allowed.contains(&event_type) {
        return Err(EventError::NotAllowed {
            event: event_type,
            allowed: allowed.to_vec(),
        });
    }
    let appointment_id = payload
        .get("data")
        .and_then(|d| d.get("appointment_id"))
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty());
    let kind = if APPOINTMENT_EVENTS.contains(&event_type.as_str()) {
        let id = appointment_id.ok_or(EventError::MissingAppointmentId)?;
        EventKind::Enrich {
            appointment_id: checked_id(id)?,
        }
    } else if event_type == PRESCRIPTION_CREATED || event_type == PRESCRIPTION_UPDATED {
        match appointment_id {
            Some(id) => EventKind::Enrich {
                appointment_id: checked_id(id)?,
            },
            None => EventKind::PassThrough,
        }
    } else {
        EventKind::PassThrough
    };
    Ok(WebhookEvent {
        event_type,
        payload,
        kind,
    })
}

/// `.` and `..` cannot be sent as a path segment: URL parsers resolve them (even encoded).
fn checked_id(id: &str) -> Result<String, EventError> {
    if is_dot_segment(id) {
        Err(EventError::InvalidAppointmentId)
    } else {
        Ok(id.to_owned())
    }
}

/// True for ids that URL normalisation would treat as `.` or `..`.
pub fn is_dot_segment(id: &str) -> bool {
    let lower = id.to_ascii_lowercase().replace("%2e", ".");
    lower == "." || lower == ".."
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn default_allowed() -> Vec<String> {
        allowed_events(&[])
    }

    #[test]
    fn appointment_event_with_id_is_enriched() {
        let e = validate(
            obj(json!({"event":"appointment.created","data":{"appointment_id":"a1"}})),
            &default_allowed(),
        )
        .unwrap();
        assert_eq!(
            e.kind,
            EventKind::Enrich {
                appointment_id: "a1".into()
            }
        );
    }

    #[test]
    fn appointment_event_without_string_id_is_refused() {
        for data in [
            json!({}),
            json!({"appointment_id": 12}),
            json!({"appointment_id": ""}),
            json!("x"),
        ] {
            let err = validate(
                obj(json!({"event":"appointment.updated","data":data})),
                &default_allowed(),
            )
            .unwrap_err();
            assert_eq!(err, EventError::MissingAppointmentId);
            assert_eq!(
                err.to_string(),
                "Missing 'appointment_id' in webhook payload data"
            );
        }
    }

    #[test]
    fn prescription_without_appointment_id_passes_through() {
        let e = validate(
            obj(json!({"event":"prescription.created","data":{"prescription_id":"p"}})),
            &default_allowed(),
        )
        .unwrap();
        assert_eq!(e.kind, EventKind::PassThrough);
    }

    #[test]
    fn prescription_with_appointment_id_is_enriched() {
        let e = validate(
            obj(json!({"event":"prescription.updated","data":{"appointment_id":"a9"}})),
            &default_allowed(),
        )
        .unwrap();
        assert_eq!(
            e.kind,
            EventKind::Enrich {
                appointment_id: "a9".into()
            }
        );
    }

    #[test]
    fn missing_or_empty_or_non_string_event_is_refused() {
        for p in [
            json!({}),
            json!({"event": ""}),
            json!({"event": 5}),
            json!({"event_type": "appointment.created"}),
        ] {
            let err = validate(obj(p), &default_allowed()).unwrap_err();
            assert_eq!(err.to_string(), "Missing 'event' field in webhook payload");
        }
    }

    #[test]
    fn event_outside_the_list_names_the_allowed_ones_as_json() {
        let err = validate(
            obj(json!({"event":"appointment.statuschange"})),
            &default_allowed(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Event type 'appointment.statuschange' is not in the allowed events list. Allowed: \
             [\"appointment.created\",\"appointment.updated\",\"prescription.created\",\"prescription.updated\"]"
        );
    }

    #[test]
    fn extra_allowed_event_passes_through_unenriched() {
        let allowed = allowed_events(&["appointment.statuschange".into(), " ".into()]);
        assert_eq!(allowed, vec!["appointment.statuschange".to_string()]);
        let e = validate(
            obj(json!({"event":"appointment.statuschange","data":{"appointment_id":"a"}})),
            &allowed,
        )
        .unwrap();
        assert_eq!(e.kind, EventKind::PassThrough);
    }

    #[test]
    fn dot_segment_ids_are_refused() {
        for id in [".", "..", "%2e%2E", ".%2e"] {
            let err = validate(
                obj(json!({"event":"appointment.created","data":{"appointment_id":id}})),
                &default_allowed(),
            )
            .unwrap_err();
            assert_eq!(err, EventError::InvalidAppointmentId, "id {id}");
        }
    }
}
