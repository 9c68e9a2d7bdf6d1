//! Enrichment: the appointment first (fatal on failure), then patient, doctor and clinic
//! concurrently (each best effort). Two round trips, where the SDK makes up to five.

use serde_json::{Map, Value};

use crate::eka::api::{ApiError, EkaApi, Resource};

/// What enrichment found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Enrichment {
    /// The appointment (always present on success).
    pub appointment: Map<String, Value>,
    /// The patient, when its fetch succeeded.
    pub patient: Option<Value>,
    /// The doctor, when its fetch succeeded.
    pub doctor: Option<Value>,
    /// The clinic, when its fetch succeeded.
    pub clinic: Option<Value>,
    /// One line per best-effort fetch that failed (no ids, no upstream bodies).
    pub warnings: Vec<String>,
}

/// Fetches the appointment `appointment_id`, then its patient, doctor and clinic. Their ids
/// come from the appointment, falling back to `data.patient_id` (etc.) of the payload.
pub async fn enrich<A: EkaApi>(
    client: &A,
    appointment_id: &str,
    payload_data: Option<&Map<String, Value>>,
    partner_id: bool,
) -> Result<Enrichment, ApiError> {
    let appointment = client.appointment(appointment_id, partner_id).await?;
    let id_of = |key: &str| -> Option<String> {
        [Some(&appointment), payload_data]
            .into_iter()
            .flatten()
            .find_map(|m| m.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()))
            .map(str::to_owned)
    };
    let (patient_id, doctor_id, clinic_id) =
        (id_of("patient_id"), id_of("doctor_id"), id_of("clinic_id"));
    let (patient, doctor, clinic) = futures::join!(
        fetch_optional(client, Resource::Patient, patient_id.as_deref()),
        fetch_optional(client, Resource::Doctor, doctor_id.as_deref()),
        fetch_optional(client, Resource::Clinic, clinic_id.as_deref()),
    );
    let mut warnings = Vec::new();
    let mut keep = |resource: Resource, result: Result<Option<Value>, ApiError>| match result {
        Ok(value) => value,
        Err(e) => {
            warnings.push(format!("Failed to fetch {} details: {e}", resource.name()));
            None
        }
    };
    let patient = keep(Resource::Patient, patient);
    let doctor = keep(Resource::Doctor, doctor);
    let clinic = keep(Resource::Clinic, clinic);
    Ok(Enrichment {
        appointment,
        patient,
        doctor,
        clinic,
        warnings,
    })
}

async fn fetch_optional<A: EkaApi>(
    client: &A,
    resource: Resource,
    id: Option<&str>,
) -> Result<Option<Value>, ApiError> {
    match id {
        Some(id) => client.get(resource, id).await.map(Some),
        None => Ok(None),
    }
}
