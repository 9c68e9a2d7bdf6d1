//! find_appointments_between: range, split, order, enrichment, failures, connection bound.

mod common;

use common::*;
use eka_webhook_edge::eka::find::find_appointments_between;
use eka_webhook_edge::schedule::{ScheduleRecord, ScheduleStore, ScheduleWrite};
use futures::executor::block_on;
use serde_json::json;

fn upsert(id: &str, start: i64, status: &str, visit: &str) -> ScheduleWrite {
    ScheduleWrite::Upsert(ScheduleRecord {
        appointment_id: id.into(),
        start_time: start,
        end_time: start + 900,
        status: status.into(),
        visit_type: visit.into(),
        created_at: 1,
        p_aid: None,
    })
}

/// The documented API with bookings for `ids`, a client and an empty store.
fn world(ids: &[String]) -> (std::rc::Rc<FakeEka>, Client, MemoryStore) {
    let fake = FakeEka::documented();
    let client = client(&fake, &ManualClock::at(NOW_MS));
    let template = fake.routes.borrow()["/dr/v1/appointment/apt-1"]
        .body
        .clone();
    for id in ids {
        let mut a = template.clone();
        a["appointment_id"] = json!(id);
        fake.set(&format!("/dr/v1/appointment/{id}"), 200, a);
    }
    (fake, client, MemoryStore::default())
}

#[test]
fn rows_in_range_are_split_ordered_enriched_and_failures_listed() {
    let ids: Vec<String> = ["b1", "b2", "f1"].iter().map(|s| s.to_string()).collect();
    let (_fake, client, store) = world(&ids);
    block_on(store.apply(&[
        upsert("b2", 300, "BK", "REG"),
        upsert("b1", 100, "BK", ""),
        upsert("f1", 200, "IN", "FLW"),
        upsert("gone", 150, "BK", ""),  // no such appointment upstream
        upsert("x", 250, "IN", "REG"),  // neither booking nor follow-up
        upsert("late", 1000, "BK", ""), // outside the range
        upsert("edge", 400, "CN", ""),  // cancelled
    ]))
    .unwrap();
    let found = block_on(find_appointments_between(&client, &store, 100, 400, 6)).unwrap();
    let ids = |v: &[serde_json::Value]| {
        v.iter()
            .map(|e| e["appointmentId"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&found.appointments), ["b1", "b2"]);
    assert_eq!(ids(&found.followup_appointments), ["f1"]);
    assert_eq!(found.failed, ["gone"]);
    let first = &found.appointments[0];
    assert_eq!(first["appointmentDetails"]["appointment_id"], json!("b1"));
    assert_eq!(first["patientDetails"]["first_name"], json!("Raj"));
    assert!(first.get("doctorDetails").is_some() && first.get("clinicDetails").is_some());
    let j = found.to_json();
    assert_eq!(j["followupAppointments"].as_array().unwrap().len(), 1);
}

#[test]
fn open_connections_never_exceed_the_bound() {
    for bound in [1usize, 2, 6] {
        let ids: Vec<String> = (0..30).map(|i| format!("a{i:02}")).collect();
        let (fake, client, store) = world(&ids);
        let writes: Vec<ScheduleWrite> = ids
            .iter()
            .zip(100..)
            .map(|(id, start)| upsert(id, start, "BK", ""))
            .collect();
        block_on(store.apply(&writes)).unwrap();
        let found = block_on(find_appointments_between(&client, &store, 0, 1000, bound)).unwrap();
        assert_eq!(found.appointments.len(), 30);
        assert_eq!(fake.max_in_flight.get() as usize, bound, "bound {bound}");
        // 30 rows x (appointment + 3 details) + 1 login.
        assert_eq!(fake.requests.borrow().len(), 121);
    }
}
