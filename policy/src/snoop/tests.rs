#![allow(clippy::unwrap_used)]

use time::macros::datetime;
use time::OffsetDateTime;

use super::*;
use crate::load::parse_policy;

const BASE: &str = r#"
[[organisation]]
org = "921429002"
name = "K429"

[[provider]]
id = "k429"
org = "921429002"

[[purpose]]
id = "p"
title = { nb = "p", en = "p" }
description = { nb = "p", en = "p" }

[[dataset]]
provider = "k429"
id = "sak"
title = { nb = "s", en = "s" }
description = { nb = "s", en = "s" }
basis = "statutory"
legal_ref = "lov"
scope = "k429:sak.read"
subject = { header = "Nav-Personident" }

  [[dataset.purpose]]
  id = "p"
"#;

fn seen(time: OffsetDateTime, subject: &'static str) -> Seen<'static> {
    Seen {
        index: 1,
        time,
        transfer_id: "t",
        data_decision: true,
        allowed: true,
        consumer: Some("0192:983440002"),
        dataset: Some("k429/sak"),
        subject_ref: Some(subject),
        code: None,
        break_glass: false,
    }
}

#[test]
fn a_policy_without_the_section_gets_the_defaults() {
    let p = parse_policy("p.toml", BASE).unwrap();
    assert_eq!(p.snooping, SnoopRules::default());
    assert!(p.snooping.break_glass && p.snooping.representation);
    assert_eq!(p.snooping.subjects_per_hour.unwrap().min_subjects, 100);
}

#[test]
fn the_section_is_read_and_checked_with_lines() {
    let text = format!(
        "{BASE}\n[snooping]\nbreak_glass = false\n[snooping.subjects_per_hour]\nfactor = 3\nmin_subjects = 5\n\
         [[snooping.off_hours]]\ndataset = \"k429/sak\"\nconsumers = [\"983440002\"]\nstart_hour = 8\nend_hour = 16\ndays = [\"mon\", \"sat\"]\n"
    );
    let p = parse_policy("p.toml", &text).unwrap();
    assert!(!p.snooping.break_glass);
    let s = p.snooping.subjects_per_hour.unwrap();
    assert_eq!((s.factor, s.min_subjects, s.baseline_hours), (3.0, 5, 168));
    let o = &p.snooping.off_hours[0];
    assert_eq!((o.start_hour, o.end_hour), (8, 16));
    assert_eq!(o.days.iter().copied().collect::<Vec<_>>(), vec![1, 6]);

    let bad = format!(
        "{BASE}\n[snooping.subjects_per_hour]\nfactor = 0.5\n[[snooping.off_hours]]\ndataset = \"k429/nope\"\n\
         [[snooping.off_hours]]\ndataset = \"k429/sak\"\nstart_hour = 18\nend_hour = 6\ndays = [\"someday\"]\n"
    );
    let errors = parse_policy("p.toml", &bad).unwrap_err();
    let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let all = text.join("\n");
    assert!(
        all.contains("factor must be a number of at least 1"),
        "{all}"
    );
    assert!(
        all.contains("names dataset k429/nope, which no [[dataset]] defines"),
        "{all}"
    );
    assert!(
        all.contains("end_hour 6 must come after start_hour 18"),
        "{all}"
    );
    assert!(all.contains("day \"someday\""), "{all}");
    assert!(errors.iter().all(|e| e.line > 27), "{all}");
}

#[test]
fn many_new_subjects_in_one_hour_alert_once_above_the_floor_and_the_baseline() {
    let rules = SnoopRules {
        subjects_per_hour: Some(SubjectsPerHour {
            factor: 3.0,
            min_subjects: 5,
            baseline_hours: 2,
        }),
        ..SnoopRules::default()
    };
    let t = datetime!(2026-12-01 10:00 UTC);
    let mut state = ConsumerHour::new(hour_of(t));
    // Four subjects: under the floor of five.
    for _ in 0..4 {
        let f = evaluate(&rules, &seen(t, "s"), Some((&mut state, true)));
        assert!(f.is_empty());
    }
    // A subject seen before in this hour counts nothing.
    assert!(evaluate(&rules, &seen(t, "s"), Some((&mut state, false))).is_empty());
    let f = evaluate(&rules, &seen(t, "s"), Some((&mut state, true)));
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].rule, Rule::SubjectsPerHour);
    assert_eq!(f[0].consumer_hour, Some(hour_of(t)));
    assert!(
        f[0].summary.contains("5 distinct subjects"),
        "{}",
        f[0].summary
    );
    // Once per consumer-hour.
    assert!(evaluate(&rules, &seen(t, "s"), Some((&mut state, true))).is_empty());

    // The next hour: the six of the last hour made the usual count 3, so 9 do not alert and 10 do.
    let t2 = datetime!(2026-12-01 11:00 UTC);
    for _ in 0..9 {
        assert!(evaluate(&rules, &seen(t2, "s"), Some((&mut state, true))).is_empty());
    }
    assert!((state.baseline - 3.0).abs() < 1e-9, "{}", state.baseline);
    assert_eq!(
        evaluate(&rules, &seen(t2, "s"), Some((&mut state, true))).len(),
        1
    );

    // Silent hours lower the usual count: two hours later it has halved twice more.
    let t3 = datetime!(2026-12-01 14:00 UTC);
    let _ = evaluate(&rules, &seen(t3, "s"), Some((&mut state, true)));
    let after_11 = 3.0 * 0.5 + 10.0 * 0.5;
    assert!(
        (state.baseline - after_11 * 0.25).abs() < 1e-9,
        "{}",
        state.baseline
    );
}

#[test]
fn off_hours_follow_oslo_time_with_summer_time() {
    assert_eq!(oslo(datetime!(2026-01-15 06:30 UTC)).hour(), 7);
    assert_eq!(oslo(datetime!(2026-07-15 06:30 UTC)).hour(), 8);
    // 2026: summer time from 29 March 01:00 UTC to 25 October 01:00 UTC.
    assert_eq!(oslo(datetime!(2026-03-29 00:59 UTC)).hour(), 1);
    assert_eq!(oslo(datetime!(2026-03-29 01:00 UTC)).hour(), 3);
    assert_eq!(oslo(datetime!(2026-10-25 00:59 UTC)).hour(), 2);
    assert_eq!(oslo(datetime!(2026-10-25 01:00 UTC)).hour(), 2);

    let rules = SnoopRules {
        off_hours: vec![OffHours {
            dataset: "k429/sak".parse().unwrap(),
            consumers: Vec::new(),
            start_hour: 7,
            end_hour: 17,
            days: (1..=5).collect(),
        }],
        subjects_per_hour: None,
        ..SnoopRules::default()
    };
    // Tuesday 1 December 2026, 16:59 and 17:00 in Oslo (UTC+1).
    assert!(evaluate(&rules, &seen(datetime!(2026-12-01 15:59 UTC), "s"), None).is_empty());
    let f = evaluate(&rules, &seen(datetime!(2026-12-01 16:00 UTC), "s"), None);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].rule, Rule::OffHours);
    assert!(f[0].summary.contains("17:00"), "{}", f[0].summary);
    // Saturday noon.
    assert_eq!(
        evaluate(&rules, &seen(datetime!(2026-12-05 11:00 UTC), "s"), None).len(),
        1
    );
    // A refused call read nothing.
    let mut denied = seen(datetime!(2026-12-05 11:00 UTC), "s");
    denied.allowed = false;
    assert!(evaluate(&rules, &denied, None).is_empty());
    // Another dataset is not marked.
    let mut other = seen(datetime!(2026-12-05 11:00 UTC), "s");
    other.dataset = Some("k429/annet");
    assert!(evaluate(&rules, &other, None).is_empty());
}

#[test]
fn break_glass_and_refused_representation_alert_each_time() {
    let rules = SnoopRules {
        subjects_per_hour: None,
        ..SnoopRules::default()
    };
    let t = datetime!(2026-12-01 10:00 UTC);
    let mut glass = seen(t, "s");
    glass.break_glass = true;
    let f = evaluate(&rules, &glass, None);
    assert_eq!(
        f.iter().map(|f| f.rule).collect::<Vec<_>>(),
        [Rule::BreakGlass]
    );
    let mut probe = seen(t, "s");
    probe.data_decision = false;
    probe.allowed = false;
    probe.consumer = None;
    probe.code = Some("not_represented");
    let f = evaluate(&rules, &probe, None);
    assert_eq!(
        f.iter().map(|f| f.rule).collect::<Vec<_>>(),
        [Rule::Representation]
    );
    // Off: nothing.
    let off = SnoopRules {
        break_glass: false,
        representation: false,
        ..rules
    };
    assert!(evaluate(&off, &glass, None).is_empty());
    assert!(evaluate(&off, &probe, None).is_empty());
}

#[test]
fn explain_names_the_rules_that_look_at_a_consumer_s_calls() {
    let text = format!(
        "{BASE}\n[[snooping.off_hours]]\ndataset = \"k429/sak\"\nconsumers = [\"983440002\"]\n"
    );
    let p = parse_policy("p.toml", &text).unwrap();
    let nav = crate::id::OrgNumber::parse("983440002").unwrap();
    let k429 = crate::id::OrgNumber::parse("921429002").unwrap();
    let dataset: DatasetRef = "k429/sak".parse().unwrap();
    let lines = explain(&p.snooping, &dataset, &nav).join("\n");
    assert!(lines.contains("at least 100 distinct people"), "{lines}");
    assert!(
        lines.contains("outside 07-17 on mon, tue, wed, thu, fri"),
        "{lines}"
    );
    let lines = explain(&p.snooping, &dataset, &k429).join("\n");
    assert!(
        lines.contains("k429/sak is not marked for this consumer"),
        "{lines}"
    );
}
