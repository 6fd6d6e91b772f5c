//! Snooping detection (SPEC 11): rules over the log that point a security
//! team at the lookups that look wrong. Pure: the follower of the log in
//! `consent-db` hands in each record with the state the rules keep, and gets
//! findings back; nothing here reads a clock, a file or a database.
//!
//! The rules, configured in policy's `[snooping]` (docs/policy.md):
//! - `subjects_per_hour`: a consumer reading more distinct subjects in one
//!   hour than `factor` × its own usual hourly count (an exponentially
//!   weighted mean over about `baseline_hours`), and at least `min_subjects`
//!   so a quiet consumer's first calls never alert.
//! - `off_hours`: an allowed call outside working hours, Europe/Oslo local
//!   time, on a dataset so marked.
//! - `break_glass`: any call that passed a citizen's block with `Bru-Break-Glass`.
//! - `representation`: a citizen acting for someone they do not represent
//!   (a refusal with code `not_represented`).

use std::collections::BTreeSet;
use std::ops::Range;

use serde::Deserialize;
use time::{Date, Month, OffsetDateTime};
use toml::Spanned;

use crate::id::{DatasetRef, OrgNumber};

/// The rules of `[snooping]`; [`SnoopRules::default`] is what a policy
/// without the section gets.
#[derive(Debug, Clone, PartialEq)]
pub struct SnoopRules {
    /// `None`: the rule is off (`enabled = false`).
    pub subjects_per_hour: Option<SubjectsPerHour>,
    pub off_hours: Vec<OffHours>,
    pub break_glass: bool,
    pub representation: bool,
}

impl Default for SnoopRules {
    fn default() -> Self {
        SnoopRules {
            subjects_per_hour: Some(SubjectsPerHour::default()),
            off_hours: Vec::new(),
            break_glass: true,
            representation: true,
        }
    }
}

/// `[snooping.subjects_per_hour]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SubjectsPerHour {
    /// `k`: alert above this many times the consumer's usual hourly count.
    pub factor: f64,
    /// The floor: fewer distinct subjects in an hour never alert.
    pub min_subjects: u32,
    /// How many hours the usual count looks back (the weight of one hour is
    /// 1 / `baseline_hours`).
    pub baseline_hours: u32,
}

impl Default for SubjectsPerHour {
    fn default() -> Self {
        // A week of hours; 10× and 100 subjects keep a normal working day quiet.
        SubjectsPerHour {
            factor: 10.0,
            min_subjects: 100,
            baseline_hours: 168,
        }
    }
}

/// One `[[snooping.off_hours]]`: working hours for a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffHours {
    pub dataset: DatasetRef,
    /// Only calls by these consumers; empty: every consumer.
    pub consumers: Vec<OrgNumber>,
    /// Working hours, Europe/Oslo local time: `start_hour` ≤ hour < `end_hour`.
    pub start_hour: u8,
    pub end_hour: u8,
    /// Working days, Europe/Oslo.
    pub days: BTreeSet<u8>,
}

/// The names of the rules, as findings, the API and the metric label carry them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    SubjectsPerHour,
    OffHours,
    BreakGlass,
    Representation,
}

impl Rule {
    pub const ALL: [Rule; 4] = [
        Rule::SubjectsPerHour,
        Rule::OffHours,
        Rule::BreakGlass,
        Rule::Representation,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Rule::SubjectsPerHour => "subjects_per_hour",
            Rule::OffHours => "off_hours",
            Rule::BreakGlass => "break_glass",
            Rule::Representation => "representation",
        }
    }

    /// A small number per rule: with the record index it orders findings.
    pub fn ordinal(&self) -> u8 {
        match self {
            Rule::SubjectsPerHour => 0,
            Rule::OffHours => 1,
            Rule::BreakGlass => 2,
            Rule::Representation => 3,
        }
    }

    pub fn parse(s: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the rules see of a record (the store's `AuditRecord`, borrowed).
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    pub index: u64,
    pub time: OffsetDateTime,
    pub transfer_id: &'a str,
    /// A `/data/` decision (not an outcome, not an audit-API use).
    pub data_decision: bool,
    pub allowed: bool,
    /// `0192:{orgnr}`.
    pub consumer: Option<&'a str>,
    /// `provider/dataset`.
    pub dataset: Option<&'a str>,
    pub subject_ref: Option<&'a str>,
    pub code: Option<&'a str>,
    pub break_glass: bool,
}

/// Per consumer: the hour being counted and the usual count.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerHour {
    /// Hours since the Unix epoch.
    pub hour: i64,
    /// Distinct subjects so far in `hour`.
    pub subjects: u32,
    /// The usual distinct subjects per hour before `hour`.
    pub baseline: f64,
    /// A finding was made for `hour` already (one per consumer-hour).
    pub alerted: bool,
}

impl ConsumerHour {
    pub fn new(hour: i64) -> Self {
        ConsumerHour {
            hour,
            subjects: 0,
            baseline: 0.0,
            alerted: false,
        }
    }
}

/// One finding, before the store gives it its id.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub rule: Rule,
    pub consumer: Option<String>,
    pub dataset: Option<String>,
    /// For `subjects_per_hour`: the consumer-hour, whose first record per
    /// subject the store adds to the finding; `None` for a finding about
    /// this one record.
    pub consumer_hour: Option<i64>,
    /// Written by Bru, pseudonyms only.
    pub summary: String,
}

/// Hours since the Unix epoch (UTC), the key of a consumer-hour.
pub fn hour_of(time: OffsetDateTime) -> i64 {
    time.unix_timestamp().div_euclid(3600)
}

/// Whether `seen` is a read that `subjects_per_hour` counts: an allowed
/// `/data/` decision about a subject, by a known consumer.
pub fn counts_subject<'a>(rules: &SnoopRules, seen: &Seen<'a>) -> Option<(&'a str, &'a str)> {
    rules.subjects_per_hour.as_ref()?;
    if !(seen.data_decision && seen.allowed) {
        return None;
    }
    Some((seen.consumer?, seen.subject_ref?))
}

/// Evaluates every rule on one record. `subjects`: for a record that
/// [`counts_subject`], the consumer's state and whether its subject is new
/// in the record's hour (the store keeps the distinct subjects); the state
/// is updated in place.
pub fn evaluate(
    rules: &SnoopRules,
    seen: &Seen<'_>,
    subjects: Option<(&mut ConsumerHour, bool)>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    // Owned only for a finding: most records make none (#21).
    let consumer = || seen.consumer.map(str::to_owned);
    let dataset = || seen.dataset.map(str::to_owned);
    let subject = seen.subject_ref.unwrap_or("-");
    if let (Some(rule), Some((state, new_subject))) = (&rules.subjects_per_hour, subjects) {
        roll(state, hour_of(seen.time), rule.baseline_hours);
        if new_subject {
            state.subjects = state.subjects.saturating_add(1);
        }
        let n = f64::from(state.subjects);
        if !state.alerted && state.subjects >= rule.min_subjects && n > rule.factor * state.baseline
        {
            state.alerted = true;
            findings.push(Finding {
                rule: Rule::SubjectsPerHour,
                consumer: consumer(),
                dataset: None,
                consumer_hour: Some(state.hour),
                summary: format!(
                    "{} read {} distinct subjects in the hour from {}, against a usual {:.1} an hour (alert at {}× and at least {})",
                    seen.consumer.unwrap_or("-"),
                    state.subjects,
                    hour_start(state.hour),
                    state.baseline,
                    rule.factor,
                    rule.min_subjects
                ),
            });
        }
    }
    if seen.data_decision && seen.allowed {
        if let Some(d) = seen.dataset {
            let local = oslo(seen.time);
            let marked = rules.off_hours.iter().find(|o| {
                o.dataset.is(d)
                    && (o.consumers.is_empty()
                        || seen
                            .consumer
                            .is_some_and(|c| o.consumers.iter().any(|k| k.is_iso6523(c))))
            });
            if let Some(o) = marked {
                let working = o.days.contains(&local.weekday().number_from_monday())
                    && (o.start_hour..o.end_hour).contains(&local.hour());
                if !working {
                    findings.push(Finding {
                        rule: Rule::OffHours,
                        consumer: consumer(),
                        dataset: dataset(),
                        consumer_hour: None,
                        summary: format!(
                            "{} read {d} about subject {subject} at {:02}:{:02} {} Europe/Oslo, outside working hours {:02}-{:02}",
                            seen.consumer.unwrap_or("-"),
                            local.hour(),
                            local.minute(),
                            local.weekday(),
                            o.start_hour,
                            o.end_hour
                        ),
                    });
                }
            }
        }
    }
    if rules.break_glass && seen.data_decision && seen.break_glass {
        findings.push(Finding {
            rule: Rule::BreakGlass,
            consumer: consumer(),
            dataset: dataset(),
            consumer_hour: None,
            summary: format!(
                "{} passed a block by subject {subject} on {} with Bru-Break-Glass",
                seen.consumer.unwrap_or("-"),
                seen.dataset.unwrap_or("-")
            ),
        });
    }
    if rules.representation && !seen.allowed && seen.code == Some("not_represented") {
        findings.push(Finding {
            rule: Rule::Representation,
            consumer: consumer(),
            dataset: dataset(),
            consumer_hour: None,
            summary: "a citizen asked to act for someone they do not represent (Bru-On-Behalf-Of refused: not_represented)".to_owned(),
        });
    }
    findings
}

/// For `bru explain`: the rules that would look at `consumer`'s calls to
/// `dataset`, one line each.
pub fn explain(rules: &SnoopRules, dataset: &DatasetRef, consumer: &OrgNumber) -> Vec<String> {
    let mut lines = Vec::new();
    match &rules.subjects_per_hour {
        Some(r) => lines.push(format!(
            "subjects_per_hour: a finding when {} reads at least {} distinct people in an hour and more than {}× its usual hourly count (over about {} hours)",
            consumer.iso6523(),
            r.min_subjects,
            r.factor,
            r.baseline_hours
        )),
        None => lines.push("subjects_per_hour: off".to_owned()),
    }
    let marked = rules.off_hours.iter().find(|o| {
        &o.dataset == dataset && (o.consumers.is_empty() || o.consumers.contains(consumer))
    });
    match marked {
        Some(o) => {
            let days: Vec<&str> = o
                .days
                .iter()
                .filter_map(|d| DAYS.get(usize::from(*d).saturating_sub(1)).copied())
                .collect();
            lines.push(format!(
                "off_hours: a finding for each allowed call outside {:02}-{:02} on {} (Europe/Oslo)",
                o.start_hour,
                o.end_hour,
                if days.is_empty() { "no day".to_owned() } else { days.join(", ") }
            ));
        }
        None => lines.push(format!(
            "off_hours: {dataset} is not marked for this consumer"
        )),
    }
    lines.push(format!(
        "break_glass: {}",
        if rules.break_glass {
            "a finding for each call that passes a block"
        } else {
            "off"
        }
    ));
    lines
}

/// Moves `state` to `hour`: the hour it counted joins the usual count, and
/// every silent hour between counts as 0.
fn roll(state: &mut ConsumerHour, hour: i64, baseline_hours: u32) {
    if hour <= state.hour {
        // Time never goes backwards along the log; if it did, count it here.
        return;
    }
    let weight = 1.0 / f64::from(baseline_hours.max(1));
    let keep = 1.0 - weight;
    let mut baseline = state.baseline * keep + weight * f64::from(state.subjects);
    // Past ~40 × baseline_hours silent hours the weight left is below 1e-17.
    let silent = (hour - state.hour - 1).clamp(0, 100_000);
    baseline *= keep.powi(i32::try_from(silent).unwrap_or(i32::MAX));
    *state = ConsumerHour {
        hour,
        subjects: 0,
        baseline,
        alerted: false,
    };
}

fn hour_start(hour: i64) -> String {
    match OffsetDateTime::from_unix_timestamp(hour.saturating_mul(3600)) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:00Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour()
        ),
        Err(_) => format!("hour {hour}"),
    }
}

/// Europe/Oslo local time: CET (UTC+1), and CEST (UTC+2) from 01:00 UTC on
/// the last Sunday of March to 01:00 UTC on the last Sunday of October (the
/// EU rule Norway has followed since 1996).
pub fn oslo(t: OffsetDateTime) -> OffsetDateTime {
    let year = t.year();
    let summer = match (
        last_sunday(year, Month::March),
        last_sunday(year, Month::October),
    ) {
        (Some(start), Some(end)) => {
            let at_one = |d: Date| d.with_hms(1, 0, 0).map(|p| p.assume_utc());
            match (at_one(start), at_one(end)) {
                (Ok(s), Ok(e)) => t >= s && t < e,
                _ => false,
            }
        }
        _ => false,
    };
    let hours = if summer { 2 } else { 1 };
    t.checked_add(time::Duration::hours(hours)).unwrap_or(t)
}

fn last_sunday(year: i32, month: Month) -> Option<Date> {
    let last = Date::from_calendar_date(year, month, month.length(year)).ok()?;
    let back = last.weekday().number_days_from_sunday();
    last.checked_sub(time::Duration::days(i64::from(back)))
}

// ---------------------------------------------------------------------------
// The section as written, and its checks (called from `load`).

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSnooping {
    #[serde(default = "yes")]
    break_glass: bool,
    #[serde(default = "yes")]
    representation: bool,
    subjects_per_hour: Option<Spanned<RawSubjectsPerHour>>,
    #[serde(default)]
    off_hours: Vec<Spanned<RawOffHours>>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubjectsPerHour {
    #[serde(default = "yes")]
    enabled: bool,
    factor: Option<Spanned<f64>>,
    min_subjects: Option<Spanned<i64>>,
    baseline_hours: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOffHours {
    dataset: Spanned<String>,
    #[serde(default)]
    consumers: Vec<Spanned<String>>,
    start_hour: Option<Spanned<i64>>,
    end_hour: Option<Spanned<i64>>,
    days: Option<Spanned<Vec<String>>>,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Checks `[snooping]`; `dataset_known` says whether a `[[dataset]]` defines
/// a dataset; each problem goes to `error` with its place in the file.
pub(crate) fn rules(
    raw: Option<RawSnooping>,
    dataset_known: &dyn Fn(&DatasetRef) -> bool,
    error: &mut dyn FnMut(Range<usize>, String),
) -> SnoopRules {
    let Some(raw) = raw else {
        return SnoopRules::default();
    };
    let subjects_per_hour = match raw.subjects_per_hour {
        None => Some(SubjectsPerHour::default()),
        Some(s) => {
            let span = s.span();
            let s = s.into_inner();
            let d = SubjectsPerHour::default();
            let factor = match s.factor {
                None => d.factor,
                Some(f) if f.get_ref().is_finite() && *f.get_ref() >= 1.0 => *f.get_ref(),
                Some(f) => {
                    error(
                        f.span(),
                        "[snooping.subjects_per_hour] factor must be a number of at least 1".into(),
                    );
                    d.factor
                }
            };
            let mut count = |v: Option<Spanned<i64>>, name: &str, default: u32, max: i64| match v {
                None => default,
                Some(n) => {
                    match u32::try_from(*n.get_ref()) {
                        Ok(n) if n >= 1 && i64::from(n) <= max => n,
                        _ => {
                            error(
                            n.span(),
                            format!("[snooping.subjects_per_hour] {name} must be between 1 and {max}"),
                        );
                            default
                        }
                    }
                }
            };
            let min_subjects = count(s.min_subjects, "min_subjects", d.min_subjects, 10_000_000);
            // Ten years of hours.
            let baseline_hours =
                count(s.baseline_hours, "baseline_hours", d.baseline_hours, 87_600);
            let _ = span;
            s.enabled.then_some(SubjectsPerHour {
                factor,
                min_subjects,
                baseline_hours,
            })
        }
    };
    let mut off_hours = Vec::new();
    let mut seen = BTreeSet::new();
    for o in raw.off_hours {
        let span = o.span();
        let o = o.into_inner();
        let dataset = match o.dataset.get_ref().parse::<DatasetRef>() {
            Ok(d) if dataset_known(&d) => Some(d),
            Ok(d) => {
                error(
                    o.dataset.span(),
                    format!(
                        "[[snooping.off_hours]] names dataset {d}, which no [[dataset]] defines"
                    ),
                );
                None
            }
            Err(e) => {
                error(
                    o.dataset.span(),
                    format!("[[snooping.off_hours]] dataset: {e}"),
                );
                None
            }
        };
        let mut consumers = Vec::new();
        for c in &o.consumers {
            match OrgNumber::parse(c.get_ref()) {
                Ok(org) => consumers.push(org),
                Err(e) => error(
                    c.span(),
                    format!(
                        "[[snooping.off_hours]] consumer \"{}\" is not a valid organisation number ({e})",
                        c.get_ref()
                    ),
                ),
            }
        }
        let mut hour = |v: &Option<Spanned<i64>>, name: &str, default: u8| match v {
            None => Some(default),
            Some(h) => match u8::try_from(*h.get_ref()) {
                Ok(n) if n <= 24 => Some(n),
                _ => {
                    error(
                        h.span(),
                        format!("[[snooping.off_hours]] {name} must be an hour from 0 to 24"),
                    );
                    None
                }
            },
        };
        // 07-17 on weekdays: a normal Norwegian working day with some margin.
        let start_hour = hour(&o.start_hour, "start_hour", 7);
        let end_hour = hour(&o.end_hour, "end_hour", 17);
        if let (Some(s), Some(e)) = (start_hour, end_hour) {
            if s >= e {
                error(
                    o.end_hour.as_ref().map_or(span.clone(), Spanned::span),
                    format!("[[snooping.off_hours]] end_hour {e} must come after start_hour {s} (hours do not wrap past midnight)"),
                );
            }
        }
        let mut days = BTreeSet::new();
        match &o.days {
            None => days.extend(1..=5),
            Some(list) => {
                for d in list.get_ref() {
                    match DAYS.iter().position(|n| n == d) {
                        Some(i) => {
                            days.insert(u8::try_from(i + 1).unwrap_or(1));
                        }
                        None => error(
                            list.span(),
                            format!(
                                "[[snooping.off_hours]] day \"{d}\" is not one of {}",
                                DAYS.join(", ")
                            ),
                        ),
                    }
                }
            }
        }
        if let (Some(dataset), Some(start_hour), Some(end_hour)) = (dataset, start_hour, end_hour) {
            if !seen.insert(dataset.clone()) {
                error(
                    span,
                    format!("[[snooping.off_hours]] for {dataset} is given twice"),
                );
                continue;
            }
            off_hours.push(OffHours {
                dataset,
                consumers,
                start_hour,
                end_hour,
                days,
            });
        }
    }
    SnoopRules {
        subjects_per_hour,
        off_hours,
        break_glass: raw.break_glass,
        representation: raw.representation,
    }
}

#[cfg(test)]
mod tests;
