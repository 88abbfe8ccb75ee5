//! `status.conditions` kept as apimachinery's `meta.SetStatusCondition` keeps them: one per
//! type, `lastTransitionTime` moved only by a change of status, everything else following the
//! latest update, and nothing reported changed when nothing did.

use std::time::{Duration, SystemTime};

use kube_proto::conditions::{ConditionStatus, ConditionUpdate, find, is_true, remove, set, status_patch};

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn transition(conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition], t: &str) -> i64 {
    find(conditions, t).unwrap().last_transition_time.0.as_second() - 1_800_000_000
}

#[test]
fn a_new_type_is_added_with_the_transition_at_now() {
    let mut c = Vec::new();
    assert!(set(&mut c, ConditionUpdate::new("Ready", true).reason("Done").observed_generation(3), at(5)));
    let ready = find(&c, "Ready").unwrap();
    assert_eq!((ready.status.as_str(), ready.reason.as_str(), ready.observed_generation), ("True", "Done", Some(3)));
    assert_eq!(transition(&c, "Ready"), 5);
    assert!(is_true(&c, "Ready") && !is_true(&c, "Degraded"));
}

#[test]
fn the_transition_time_moves_only_when_the_status_changes() {
    let mut c = Vec::new();
    set(&mut c, ConditionUpdate::new("Ready", false).reason("Creating"), at(0));
    assert!(set(&mut c, ConditionUpdate::new("Ready", false).reason("Waiting").message("1 of 2"), at(60)));
    assert_eq!(transition(&c, "Ready"), 0, "same status: no transition");
    assert!(set(&mut c, ConditionUpdate::new("Ready", true).reason("Done"), at(120)));
    assert_eq!(transition(&c, "Ready"), 120);
    assert!(set(&mut c, ConditionUpdate::new("Ready", ConditionStatus::Unknown).reason("Lost"), at(180)));
    assert_eq!(transition(&c, "Ready"), 180);
    assert_eq!(c.len(), 1, "one condition per type");
}

#[test]
fn an_update_that_changes_nothing_reports_no_change() {
    let mut c = Vec::new();
    let update = ConditionUpdate::new("Ready", true).reason("Done").message("ok").observed_generation(2);
    set(&mut c, update.clone(), at(0));
    let before = c.clone();
    assert!(!set(&mut c, update.clone(), at(99)));
    assert_eq!(c, before);
    assert!(set(&mut c, update.observed_generation(3), at(99)), "a new generation observed is a change");
    assert_eq!(transition(&c, "Ready"), 0);
}

#[test]
fn other_types_are_kept_and_an_empty_reason_is_written_as_unknown() {
    let mut c = Vec::new();
    set(&mut c, ConditionUpdate::new("Ready", true).reason("Done"), at(0));
    set(&mut c, ConditionUpdate::new("Progressing", false), at(1));
    assert_eq!(find(&c, "Progressing").unwrap().reason, "Unknown", "the API refuses an empty reason");
    assert!(remove(&mut c, "Progressing"));
    assert!(!remove(&mut c, "Progressing"));
    assert_eq!(c.len(), 1);
    let patch = status_patch(&c);
    assert_eq!(patch["status"]["conditions"][0]["type"], "Ready");
    assert_eq!(patch["status"]["conditions"][0]["lastTransitionTime"], "2027-01-15T08:00:00Z");
}
