//! Snooping findings (SPEC 11; migration 0012): the "snoop" follower of the
//! log evaluates `policy::snoop`'s rules on each record after its position,
//! and writes the findings, the rules' state (per consumer: the hour being
//! counted, its distinct subjects, the usual count) and its new position in
//! one transaction. Each step reads one window of the log's indexes as one
//! row (its decisions and refusals), so the cost is a handful of indexed
//! statements a step, never a scan of the log.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};

use policy::snoop::{self, ConsumerHour, Rule, Seen, SnoopRules};
use serde::{Deserialize, Serialize};

use super::followers::{advance_follower, lock_follower, window};
use super::{Conn, Store};
use crate::error::StoreError;
use crate::record::{RecordKind, Timestamp, Verdict};

/// The follower's name in `log_followers`.
pub const SNOOP_FOLLOWER: &str = "snoop";
/// At most this many records behind one finding of `subjects_per_hour`
/// (its first record per subject in the hour).
const MAX_FINDING_RECORDS: i64 = 1000;
/// At most this many log indexes per step.
const MAX_PAGE: u32 = 4096;
/// Subjects looked up per statement: 256 × 3 parameters, far below either
/// database's limit.
const SUBJECT_CHUNK: usize = 256;

/// A finding as stored and as `GET /audit/v1/alerts` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredFinding {
    /// `{record index}-{rule}`: the record that triggered it and the rule.
    pub id: String,
    /// `subjects_per_hour`, `off_hours`, `break_glass` or `representation`.
    pub rule: String,
    /// The time of the record that triggered it.
    pub time: Timestamp,
    /// When the follower found it.
    pub found_at: Timestamp,
    pub consumer: Option<String>,
    pub dataset: Option<String>,
    /// The indexes of the records behind it (for `subjects_per_hour`, the
    /// first record of each subject in the hour, at most 1000).
    pub records: Vec<u64>,
    pub transfer_ids: Vec<String>,
    /// Written by Bru; pseudonyms only.
    pub summary: String,
    #[serde(skip)]
    pub seq: i64,
}

/// What one step of the follower did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnoopStep {
    /// Records evaluated (0: the follower is at the end of the log).
    pub records: u64,
    /// The follower's position after the step.
    pub position: u64,
    /// Findings of this step, by rule name.
    pub findings: Vec<String>,
}

/// Which findings to list, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindingFilter {
    /// Findings about records at or after this time.
    pub since: Option<Timestamp>,
    pub rule: Option<String>,
    /// The cursor: findings after this one's `seq`.
    pub after_seq: Option<i64>,
    pub limit: Option<u32>,
}

impl Store {
    /// One step of the snoop follower: up to `page` records after its
    /// position, evaluated and committed with their findings and its new
    /// position. Replicas take turns on the follower's row lock. A page
    /// costs a handful of statements whatever its size: the subjects already
    /// seen and the consumers' state are read for the whole page at once,
    /// and the new subjects written at once.
    pub async fn snoop_step(&self, rules: &SnoopRules, page: u32) -> Result<SnoopStep, StoreError> {
        let mut tx = self.begin_derived().await?;
        let mut conn = tx.conn();
        let position = lock_follower(&mut conn, SNOOP_FOLLOWER).await?;
        // A window of the log, not a page of rows: outcome records, about
        // half the log, can give no finding (every rule looks at a decision
        // or at a refusal's code), so they are not read at all (#21: this
        // follower was a tenth of Bru's CPU under load).
        let Some((from, to)) = window(&mut conn, position, page.min(MAX_PAGE)).await? else {
            return Ok(SnoopStep {
                records: 0,
                position,
                findings: Vec::new(),
            });
        };
        // One row out of the database for the whole window: sqlx hands each
        // row of SQLite's across a thread (two switches a record), which
        // made reading the window most of this follower's cost.
        let sql = conn.json_rows(
            "SELECT idx, time, transfer_id, kind, decision, consumer, dataset, subject_ref, \
             code, CASE WHEN break_glass IS NULL THEN 0 ELSE 1 END AS glass \
             FROM audit_records WHERE idx >= $1 AND idx < $2 AND kind <> 'outcome'",
            "idx, time, transfer_id, kind, decision, consumer, dataset, subject_ref, code, glass",
        );
        let json: String = on_conn!(&mut conn, c => {
            sqlx::query_scalar(&sql)
                .bind(from)
                .bind(to)
                .fetch_one(&mut **c)
                .await?
        });
        let mut records = window_rows(&json)?;
        records.sort_unstable_by_key(|r| r.index);
        let seen: Vec<Seen<'_>> = records.iter().map(seen).collect();

        // What subjects_per_hour needs for the whole page, read at once.
        let counted: Vec<Option<SubjectKey>> = seen
            .iter()
            .map(|s| {
                snoop::counts_subject(rules, s).map(|(consumer, subject)| SubjectKey {
                    consumer: consumer.to_owned(),
                    hour: snoop::hour_of(s.time),
                    subject: subject.to_owned(),
                })
            })
            .collect();
        let keys: Vec<&SubjectKey> = counted.iter().flatten().collect();
        let mut known = known_subjects(&mut conn, &keys).await?;
        let mut states = load_consumers(&mut conn, &keys).await?;
        let mut pending: Vec<(SubjectKey, u64, String)> = Vec::new();
        // Written at the end of the step, many rows a statement: a rule such
        // as `off_hours` finds one per call, and a statement each (one hop
        // across sqlx's thread) made this follower the dearest of the three
        // at night (#21's ladder: 11–17 µs a call).
        let mut found: Vec<(StoredFinding, u64)> = Vec::new();

        let found_at = Timestamp::now();
        let mut step = SnoopStep::default();
        for ((r, seen), key) in records.iter().zip(&seen).zip(counted) {
            let findings = match key {
                Some(key) => {
                    // Looked up before cloned: a consumer is nearly always
                    // known already, and a subject often is (three
                    // allocations a record when both are).
                    let new_subject = !known.contains(&key);
                    if new_subject {
                        known.insert(key.clone());
                    }
                    if !states.contains_key(&key.consumer) {
                        states.insert(key.consumer.clone(), ConsumerHour::new(key.hour));
                    }
                    let state = states.get_mut(&key.consumer).ok_or_else(|| {
                        StoreError::Corrupt(format!("record {}: its consumer's hour", r.index))
                    })?;
                    if new_subject {
                        pending.push((key, r.index, r.transfer_id.to_string()));
                    }
                    snoop::evaluate(rules, seen, Some((state, new_subject)))
                }
                None => snoop::evaluate(rules, seen, None),
            };
            for f in findings {
                let (indexes, transfer_ids) = match (&f.consumer, f.consumer_hour) {
                    (Some(consumer), Some(hour)) => {
                        // The hour's subjects so far, this page's too.
                        insert_subjects(&mut conn, &pending).await?;
                        pending.clear();
                        hour_records(&mut conn, consumer, hour).await?
                    }
                    _ => (vec![r.index], vec![r.transfer_id.to_string()]),
                };
                let finding = StoredFinding {
                    id: format!("{}-{}", r.index, f.rule),
                    rule: f.rule.as_str().to_owned(),
                    time: r.time,
                    found_at,
                    consumer: f.consumer,
                    dataset: f.dataset,
                    records: indexes,
                    transfer_ids,
                    summary: f.summary,
                    seq: seq(r.index, f.rule)?,
                };
                step.findings.push(finding.rule.clone());
                found.push((finding, r.index));
            }
        }
        insert_subjects(&mut conn, &pending).await?;
        insert_findings(&mut conn, found).await?;
        for (consumer, state) in &states {
            save_consumer(&mut conn, consumer, state).await?;
        }
        let next = u64::try_from(to).map_err(|_| StoreError::Corrupt(format!("log size {to}")))?;
        advance_follower(&mut conn, SNOOP_FOLLOWER, next).await?;
        tx.commit().await?;
        step.records = next - position;
        step.position = next;
        Ok(step)
    }

    /// Findings matching `filter`, oldest first.
    pub async fn snoop_findings(
        &self,
        filter: &FindingFilter,
    ) -> Result<Vec<StoredFinding>, StoreError> {
        let rows: Vec<FindingRow> = on_pool!(self, pool => {
            let mut q = sqlx::QueryBuilder::new(
                "SELECT id, seq, rule, time, found_at, consumer, dataset, records, transfer_ids, summary \
                 FROM snoop_findings WHERE 1 = 1",
            );
            if let Some(t) = filter.since {
                q.push(" AND time >= ").push_bind(t.to_string());
            }
            if let Some(rule) = &filter.rule {
                q.push(" AND rule = ").push_bind(rule.clone());
            }
            if let Some(after) = filter.after_seq {
                q.push(" AND seq > ").push_bind(after);
            }
            q.push(" ORDER BY seq");
            if let Some(limit) = filter.limit {
                q.push(" LIMIT ").push_bind(i64::from(limit));
            }
            q.build_query_as().fetch_all(pool).await?
        });
        rows.into_iter().map(StoredFinding::try_from).collect()
    }
}

/// Orders findings: by record, then by rule.
fn seq(index: u64, rule: Rule) -> Result<i64, StoreError> {
    i64::try_from(index)
        .ok()
        .and_then(|i| i.checked_mul(8))
        .and_then(|i| i.checked_add(i64::from(rule.ordinal())))
        .ok_or_else(|| StoreError::Corrupt(format!("record index {index}")))
}

/// What the rules look at of one record. Its texts borrow from the
/// window's JSON where they can (they are Bru's own, with nothing to
/// unescape): owned, they were seven allocations a statutory call (#21).
struct SnoopRow<'j> {
    index: u64,
    time: Timestamp,
    transfer_id: Cow<'j, str>,
    kind: RecordKind,
    decision: Option<Verdict>,
    consumer: Option<Cow<'j, str>>,
    dataset: Option<Cow<'j, str>>,
    subject_ref: Option<Cow<'j, str>>,
    code: Option<Cow<'j, str>>,
    break_glass: bool,
}

/// One row of [`super::Conn::json_rows`]' array of arrays, as SQLite and
/// PostgreSQL write it (a struct reads a JSON array in field order).
#[derive(Deserialize)]
struct WindowRow<'j> {
    idx: i64,
    #[serde(borrow)]
    time: Cow<'j, str>,
    #[serde(borrow)]
    transfer_id: Cow<'j, str>,
    #[serde(borrow)]
    kind: Cow<'j, str>,
    #[serde(borrow, deserialize_with = "optional_text")]
    decision: Option<Cow<'j, str>>,
    #[serde(borrow, deserialize_with = "optional_text")]
    consumer: Option<Cow<'j, str>>,
    #[serde(borrow, deserialize_with = "optional_text")]
    dataset: Option<Cow<'j, str>>,
    #[serde(borrow, deserialize_with = "optional_text")]
    subject_ref: Option<Cow<'j, str>>,
    #[serde(borrow, deserialize_with = "optional_text")]
    code: Option<Cow<'j, str>>,
    glass: i64,
}

/// A text or `null`, borrowed from the JSON unless it has escapes. serde's
/// `borrow` borrows a `Cow<str>` field but not an `Option<Cow<str>>` one
/// (it deserializes the `String` inside): the newtype carries the borrow
/// through the `Option`.
fn optional_text<'de, D>(d: D) -> Result<Option<Cow<'de, str>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    struct Text<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Text<'de>>::deserialize(d)?.map(|t| t.0))
}

/// The window's rows, from [`super::Conn::json_rows`]' array of arrays.
fn window_rows(json: &str) -> Result<Vec<SnoopRow<'_>>, StoreError> {
    let rows: Vec<WindowRow<'_>> = serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("the snoop window: {e}")))?;
    rows.into_iter()
        .map(|row| {
            let idx = row.idx;
            let bad = |what: &str, e: &dyn std::fmt::Display| {
                StoreError::Corrupt(format!("record {idx}: {what}: {e}"))
            };
            Ok(SnoopRow {
                index: u64::try_from(idx).map_err(|e| bad("index", &e))?,
                time: Timestamp::parse(&row.time).map_err(|e| bad("time", &e))?,
                transfer_id: row.transfer_id,
                kind: row.kind.parse().map_err(|e| bad("kind", &e))?,
                decision: row
                    .decision
                    .map(|d| d.parse())
                    .transpose()
                    .map_err(|e| bad("decision", &e))?,
                consumer: row.consumer,
                dataset: row.dataset,
                subject_ref: row.subject_ref,
                code: row.code,
                break_glass: row.glass != 0,
            })
        })
        .collect()
}

/// What the rules see of a record.
fn seen<'r>(r: &'r SnoopRow<'_>) -> Seen<'r> {
    Seen {
        index: r.index,
        time: r.time.as_datetime(),
        transfer_id: &r.transfer_id,
        data_decision: r.kind == RecordKind::Decision,
        allowed: r.decision == Some(Verdict::Allow),
        consumer: r.consumer.as_deref(),
        dataset: r.dataset.as_deref(),
        subject_ref: r.subject_ref.as_deref(),
        code: r.code.as_deref(),
        break_glass: r.break_glass,
    }
}

/// A subject in one consumer's hour.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SubjectKey {
    consumer: String,
    hour: i64,
    subject: String,
}

/// Of `keys`, those already in `snoop_subject_hours`: one statement per
/// 256 keys (768 parameters, far below either database's limit).
async fn known_subjects(
    conn: &mut Conn<'_>,
    keys: &[&SubjectKey],
) -> Result<HashSet<SubjectKey>, StoreError> {
    let mut known = HashSet::new();
    for chunk in keys.chunks(SUBJECT_CHUNK) {
        let rows: Vec<(String, i64, String)> = on_conn!(&mut *conn, c => {
            let mut q = sqlx::QueryBuilder::new(
                "SELECT consumer, hour, subject_ref FROM snoop_subject_hours \
                 WHERE (consumer, hour, subject_ref) IN (VALUES ",
            );
            let mut values = q.separated(", ");
            for k in chunk {
                values.push("(");
                values.push_bind_unseparated(k.consumer.clone());
                values.push_unseparated(", ");
                values.push_bind_unseparated(k.hour);
                values.push_unseparated(", ");
                values.push_bind_unseparated(k.subject.clone());
                values.push_unseparated(")");
            }
            q.push(")");
            q.build_query_as().fetch_all(&mut **c).await?
        });
        known.extend(
            rows.into_iter()
                .map(|(consumer, hour, subject)| SubjectKey {
                    consumer,
                    hour,
                    subject,
                }),
        );
    }
    Ok(known)
}

/// The state of the consumers among `keys`, in one statement.
async fn load_consumers(
    conn: &mut Conn<'_>,
    keys: &[&SubjectKey],
) -> Result<HashMap<String, ConsumerHour>, StoreError> {
    let consumers: BTreeSet<&str> = keys.iter().map(|k| k.consumer.as_str()).collect();
    if consumers.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, i64, i64, f64, i64)> = on_conn!(conn, c => {
        let mut q = sqlx::QueryBuilder::new(
            "SELECT consumer, hour, subjects, baseline, alerted FROM snoop_consumers WHERE consumer IN (",
        );
        let mut values = q.separated(", ");
        for consumer in &consumers {
            values.push_bind(consumer.to_string());
        }
        q.push(")");
        q.build_query_as().fetch_all(&mut **c).await?
    });
    Ok(rows
        .into_iter()
        .map(|(consumer, hour, subjects, baseline, alerted)| {
            let state = ConsumerHour {
                hour,
                subjects: u32::try_from(subjects).unwrap_or(u32::MAX),
                baseline,
                alerted: alerted != 0,
            };
            (consumer, state)
        })
        .collect())
}

/// Writes the subjects new in their consumer's hour, with the record that
/// first read each; one statement per 100 rows.
async fn insert_subjects(
    conn: &mut Conn<'_>,
    rows: &[(SubjectKey, u64, String)],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(100) {
        let mut indexes = Vec::with_capacity(chunk.len());
        for (_, index, _) in chunk {
            indexes.push(
                i64::try_from(*index)
                    .map_err(|_| StoreError::Corrupt(format!("record index {index}")))?,
            );
        }
        on_conn!(&mut *conn, c => {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO snoop_subject_hours (consumer, hour, subject_ref, first_index, transfer_id) ",
            );
            q.push_values(chunk.iter().zip(&indexes), |mut b, ((key, _, transfer), index)| {
                b.push_bind(key.consumer.clone())
                    .push_bind(key.hour)
                    .push_bind(key.subject.clone())
                    .push_bind(*index)
                    .push_bind(transfer.clone());
            });
            q.push(" ON CONFLICT (consumer, hour, subject_ref) DO NOTHING");
            q.build().execute(&mut **c).await?;
        });
    }
    Ok(())
}

/// Keeps `state`, and forgets the subjects of the consumer's earlier hours.
async fn save_consumer(
    conn: &mut Conn<'_>,
    consumer: &str,
    state: &ConsumerHour,
) -> Result<(), StoreError> {
    const SAVE: &str = "INSERT INTO snoop_consumers (consumer, hour, subjects, baseline, alerted) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (consumer) DO UPDATE SET \
         hour = excluded.hour, subjects = excluded.subjects, baseline = excluded.baseline, \
         alerted = excluded.alerted";
    const FORGET: &str = "DELETE FROM snoop_subject_hours WHERE consumer = $1 AND hour < $2";
    on_conn!(conn, c => {
        sqlx::query(SAVE)
            .bind(consumer)
            .bind(state.hour)
            .bind(i64::from(state.subjects))
            .bind(state.baseline)
            .bind(i64::from(state.alerted))
            .execute(&mut **c)
            .await?;
        sqlx::query(FORGET).bind(consumer).bind(state.hour).execute(&mut **c).await?;
    });
    Ok(())
}

/// The first record of each subject in `consumer`'s `hour`.
async fn hour_records(
    conn: &mut Conn<'_>,
    consumer: &str,
    hour: i64,
) -> Result<(Vec<u64>, Vec<String>), StoreError> {
    const SQL: &str = "SELECT first_index, transfer_id FROM snoop_subject_hours \
         WHERE consumer = $1 AND hour = $2 ORDER BY first_index LIMIT $3";
    let rows: Vec<(i64, String)> = on_conn!(conn, c => {
        sqlx::query_as(SQL)
            .bind(consumer)
            .bind(hour)
            .bind(MAX_FINDING_RECORDS)
            .fetch_all(&mut **c)
            .await?
    });
    let mut indexes = Vec::with_capacity(rows.len());
    let mut transfers = Vec::with_capacity(rows.len());
    for (i, t) in rows {
        indexes.push(u64::try_from(i).map_err(|_| StoreError::Corrupt(format!("index {i}")))?);
        transfers.push(t);
    }
    Ok((indexes, transfers))
}

/// Findings per statement: 64 × 11 parameters, far below either database's
/// limit (SQLite 32,766, PostgreSQL 65,535).
const FINDING_CHUNK: usize = 64;

async fn insert_findings(
    conn: &mut Conn<'_>,
    found: Vec<(StoredFinding, u64)>,
) -> Result<(), StoreError> {
    // The findings are spent here, and their texts move into the
    // statement: sqlx-sqlite copies a text bound by reference before it
    // runs (nine a finding; `off_hours` finds one a call at night).
    let mut found = found.into_iter().peekable();
    while found.peek().is_some() {
        let mut rows = Vec::with_capacity(found.len().min(FINDING_CHUNK));
        for (f, index) in found.by_ref().take(FINDING_CHUNK) {
            let records = serde_json::to_string(&f.records)
                .map_err(|e| StoreError::Db(format!("finding records: {e}")))?;
            let transfers = serde_json::to_string(&f.transfer_ids)
                .map_err(|e| StoreError::Db(format!("finding transfers: {e}")))?;
            let index = i64::try_from(index)
                .map_err(|_| StoreError::Corrupt(format!("record index {index}")))?;
            rows.push((f, index, records, transfers));
        }
        on_conn!(&mut *conn, c => {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO snoop_findings \
                 (id, seq, rule, time, found_at, consumer, dataset, record_index, records, transfer_ids, summary) ",
            );
            q.push_values(rows, |mut b, (f, index, records, transfers)| {
                b.push_bind(f.id)
                    .push_bind(f.seq)
                    .push_bind(f.rule)
                    .push_bind(f.time.to_rfc3339())
                    .push_bind(f.found_at.to_rfc3339())
                    .push_bind(f.consumer)
                    .push_bind(f.dataset)
                    .push_bind(index)
                    .push_bind(records)
                    .push_bind(transfers)
                    .push_bind(f.summary);
            });
            q.push(" ON CONFLICT (id) DO NOTHING");
            q.build().execute(&mut **c).await?;
        });
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct FindingRow {
    id: String,
    seq: i64,
    rule: String,
    time: String,
    found_at: String,
    consumer: Option<String>,
    dataset: Option<String>,
    records: String,
    transfer_ids: String,
    summary: String,
}

impl TryFrom<FindingRow> for StoredFinding {
    type Error = StoreError;

    fn try_from(r: FindingRow) -> Result<Self, StoreError> {
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            StoreError::Corrupt(format!("finding {}: {what}: {e}", r.id))
        };
        Ok(StoredFinding {
            time: Timestamp::parse(&r.time).map_err(|e| bad("time", &e))?,
            found_at: Timestamp::parse(&r.found_at).map_err(|e| bad("found_at", &e))?,
            records: serde_json::from_str(&r.records).map_err(|e| bad("records", &e))?,
            transfer_ids: serde_json::from_str(&r.transfer_ids)
                .map_err(|e| bad("transfer_ids", &e))?,
            id: r.id,
            seq: r.seq,
            rule: r.rule,
            consumer: r.consumer,
            dataset: r.dataset,
            summary: r.summary,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use policy::snoop::{SnoopRules, SubjectsPerHour};

    use crate::record::{NewRecord, RecordKind, Verdict};
    use crate::store::{Store, StoreConfig};
    use crate::{AuditConfig, AuditLog};

    use super::FindingFilter;

    #[test]
    fn a_window_borrows_its_texts_and_unescapes_where_it_must() {
        let json = r#"[[3,"2026-12-05T22:00:00.000Z","t-1","decision","allow","0192:983440002","nav/inntekt","ps_1",null,0],
                       [4,"2026-12-05T22:00:01.000Z","t-\u0032","audit_read",null,null,null,null,"c\"d",1]]"#;
        let rows = super::window_rows(json).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].index, 3);
        assert!(matches!(
            rows[0].transfer_id,
            std::borrow::Cow::Borrowed("t-1")
        ));
        // Every text without an escape is borrowed, those in an `Option` too.
        for text in [&rows[0].consumer, &rows[0].dataset, &rows[0].subject_ref] {
            assert!(
                matches!(text, Some(std::borrow::Cow::Borrowed(_))),
                "{text:?}"
            );
        }
        assert_eq!(rows[0].consumer.as_deref(), Some("0192:983440002"));
        assert_eq!(rows[0].dataset.as_deref(), Some("nav/inntekt"));
        assert_eq!(rows[0].subject_ref.as_deref(), Some("ps_1"));
        assert_eq!(rows[0].code, None);
        assert_eq!(rows[0].decision, Some(Verdict::Allow));
        assert!(!rows[0].break_glass);
        assert_eq!(rows[1].transfer_id, "t-2");
        assert_eq!(rows[1].code.as_deref(), Some("c\"d"));
        assert!(matches!(rows[1].code, Some(std::borrow::Cow::Owned(_))));
        assert_eq!(rows[1].consumer, None);
        assert_eq!(rows[1].kind, RecordKind::AuditRead);
        assert!(rows[1].break_glass);
        // A broken window is an error, not a panic.
        assert!(super::window_rows(
            r#"[[-1,"2026-12-05T22:00:00.000Z","t","decision",null,null,null,null,null,0]]"#
        )
        .is_err());
        assert!(super::window_rows(
            r#"[[1,"yesterday","t","decision",null,null,null,null,null,0]]"#
        )
        .is_err());
    }

    async fn store(dir: &std::path::Path) -> Store {
        let url = match std::env::var("BRU_TEST_STORE").as_deref() {
            Ok("postgres") => crate::test_support::fresh_postgres_database().await,
            _ => format!("sqlite://{}", dir.join("bru.db").display()),
        };
        let store = Store::open_with(&url, &StoreConfig::default())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        store
    }

    fn read(n: usize, glass: bool) -> NewRecord {
        let mut r = NewRecord::new(RecordKind::Decision, format!("t{n}"), "GET", "/data/k/s");
        r.consumer = Some("0192:983440002".into());
        r.dataset = Some("k/s".into());
        r.subject_ref = Some(format!("subject-{n}"));
        r.decision = Some(Verdict::Allow);
        r.break_glass = glass.then(|| "akutt".to_owned());
        r
    }

    #[tokio::test]
    async fn the_follower_finds_each_rule_once_in_pages_and_keeps_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let log = AuditLog::start(store.clone(), AuditConfig::default()).unwrap();
        for n in 0..7 {
            log.append(read(n, n == 3)).await.unwrap();
        }
        let rules = SnoopRules {
            subjects_per_hour: Some(SubjectsPerHour {
                factor: 2.0,
                min_subjects: 5,
                baseline_hours: 24,
            }),
            ..SnoopRules::default()
        };
        // Pages of three: 3 + 3 + 1 records, then nothing.
        let mut steps = Vec::new();
        loop {
            let step = store.snoop_step(&rules, 3).await.unwrap();
            if step.records == 0 {
                break;
            }
            steps.push(step);
        }
        assert_eq!(
            steps.iter().map(|s| s.records).collect::<Vec<_>>(),
            [3, 3, 1]
        );
        assert_eq!(store.follower_position("snoop").await.unwrap(), 7);
        let all = store
            .snoop_findings(&FindingFilter::default())
            .await
            .unwrap();
        let rules_found: Vec<&str> = all.iter().map(|f| f.rule.as_str()).collect();
        assert_eq!(rules_found, ["break_glass", "subjects_per_hour"], "{all:?}");
        assert_eq!(all[0].records, [3]);
        assert_eq!(all[0].transfer_ids, ["t3"]);
        // The fifth distinct subject crossed the floor; the finding holds all five.
        assert_eq!(all[1].id, "4-subjects_per_hour");
        assert_eq!(all[1].records, [0, 1, 2, 3, 4]);
        // Paged and filtered.
        let page = store
            .snoop_findings(&FindingFilter {
                after_seq: Some(all[0].seq),
                ..FindingFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(page, all[1..]);
        let glass = store
            .snoop_findings(&FindingFilter {
                rule: Some("break_glass".into()),
                ..FindingFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(glass.len(), 1);
        log.close().await.unwrap();
    }

    #[tokio::test]
    async fn outcome_records_are_stepped_over_and_the_window_ends_at_the_head() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let log = AuditLog::start(store.clone(), AuditConfig::default()).unwrap();
        // decision, outcome, decision (break-glass), outcome, outcome
        for n in 0..5 {
            let mut r = read(n, n == 2);
            if n % 2 == 1 || n == 4 {
                r.kind = RecordKind::Outcome;
                r.decision = None;
                // An outcome can carry a code; only a decision's counts.
                r.code = Some("not_represented".into());
                r.break_glass = Some("akutt".into());
            }
            log.append(r).await.unwrap();
        }
        let rules = SnoopRules {
            break_glass: true,
            representation: true,
            ..SnoopRules::default()
        };
        // Windows of two indexes, whatever they hold; the last ends at the head.
        let windows: Vec<u64> = [
            store.snoop_step(&rules, 2).await.unwrap(),
            store.snoop_step(&rules, 2).await.unwrap(),
            store.snoop_step(&rules, 2).await.unwrap(),
            store.snoop_step(&rules, 2).await.unwrap(),
        ]
        .iter()
        .map(|s| s.records)
        .collect();
        assert_eq!(windows, [2, 2, 1, 0]);
        assert_eq!(store.follower_position("snoop").await.unwrap(), 5);
        let found = store
            .snoop_findings(&FindingFilter::default())
            .await
            .unwrap();
        let ids: Vec<&str> = found.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["2-break_glass"], "{found:?}");
        log.close().await.unwrap();
    }

    #[tokio::test]
    async fn a_step_with_more_findings_than_one_statement_stores_each_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let log = AuditLog::start(store.clone(), AuditConfig::default()).unwrap();
        // 150 break-glass reads of as many subjects: three statements' worth
        // (64 a statement); the subjects rule is off, so one finding each.
        let n = 150;
        let appends: Vec<_> = (0..n).map(|i| log.append(read(i, true))).collect();
        for a in appends {
            a.await.unwrap();
        }
        let rules = SnoopRules {
            break_glass: true,
            subjects_per_hour: None,
            ..SnoopRules::default()
        };
        let step = store.snoop_step(&rules, 1000).await.unwrap();
        assert_eq!(step.records, store.record_count().await.unwrap());
        assert_eq!(step.findings.len(), n);
        let mut found = Vec::new();
        let mut after_seq = None;
        loop {
            let page = store
                .snoop_findings(&FindingFilter {
                    after_seq,
                    limit: Some(100),
                    ..FindingFilter::default()
                })
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after_seq = Some(last.seq);
            found.extend(page);
        }
        let ids: Vec<String> = found.iter().map(|f| f.id.clone()).collect();
        let want: Vec<String> = (0..n).map(|i| format!("{i}-break_glass")).collect();
        assert_eq!(ids, want);
        // Each with its own record and transfer, as written one at a time before.
        for (i, f) in found.iter().enumerate() {
            assert_eq!(f.records, [i as u64]);
            assert_eq!(f.transfer_ids, [format!("t{i}")]);
        }
        // Nothing more to find, nothing written twice.
        assert_eq!(store.snoop_step(&rules, 1000).await.unwrap().records, 0);
        log.close().await.unwrap();
    }
}
