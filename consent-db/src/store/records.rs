//! The audit records: their columns, the batch insert, and the queries that
//! read them back.

use std::sync::OnceLock;

use sqlx::QueryBuilder;

use super::{Conn, Store};
use crate::error::StoreError;
use crate::record::{AuditRecord, NewRecord, RecordFilter, Timestamp};

/// The columns of `audit_records` in spec order, as [`RecordRow`] reads them.
pub(super) const RECORD_COLUMNS: &str =
    "idx, time, transfer_id, kind, consumer, supplier, client_id, \
     provider, dataset, method, path, purpose, basis, legal_ref, consent_id, subject_ref, \
     decision, code, status, bytes, duration_ms, count, system_user, break_glass, \
     disclosure_delay_days";

/// A query on the derived index: `audit_index` (alias `i`, filtered and
/// ordered on) joined to the records it indexes (alias `r`, read) by the
/// primary key. Select [`indexed_columns`] with it.
pub(super) const INDEXED_FROM: &str = " FROM audit_index i JOIN audit_records r ON r.idx = i.idx";

/// [`RECORD_COLUMNS`] qualified with `r.`, for [`INDEXED_FROM`].
pub(super) fn indexed_columns() -> &'static str {
    static COLUMNS: OnceLock<String> = OnceLock::new();
    COLUMNS.get_or_init(|| {
        RECORD_COLUMNS
            .split(',')
            .map(|c| format!("r.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// The columns an insert writes: the record's, and `disclose_at` (derived:
/// `time` + `disclosure_delay_days`, for the citizen's views to compare with
/// now; not part of the record or its leaf).
const INSERT_COLUMNS: &str = "idx, time, transfer_id, kind, consumer, supplier, client_id, \
     provider, dataset, method, path, purpose, basis, legal_ref, consent_id, subject_ref, \
     decision, code, status, bytes, duration_ms, count, system_user, break_glass, \
     disclosure_delay_days, disclose_at";

/// Rows per multi-row INSERT: 256 × 26 parameters stays far below SQLite's
/// limit of 32766 and PostgreSQL's 65535.
pub(super) const MAX_ROWS_LOG2: u32 = 8;

/// `INSERT … VALUES (…), (…), …` with 2^k rows for k = 0..=MAX_ROWS_LOG2,
/// in the placeholders of `conn`'s dialect (see [`Conn::numbered_placeholders`]).
/// A batch is cut into chunks of these sizes, so there are only nine
/// statement texts per backend and each stays in the connection's
/// prepared-statement cache. One statement per row instead costs about 40 µs
/// a record in sqlx.
fn insert_sql(conn: &Conn<'_>, rows_log2: u32) -> &'static str {
    insert_sql_texts(conn.numbered_placeholders(), rows_log2)
}

fn insert_sql_texts(numbered_placeholders: bool, rows_log2: u32) -> &'static str {
    static SQL: OnceLock<[Vec<String>; 2]> = OnceLock::new();
    let texts = |numbered: bool| -> Vec<String> {
        let columns = INSERT_COLUMNS.split(',').count();
        (0..=MAX_ROWS_LOG2)
            .map(|k| {
                let rows: Vec<String> = (0..1usize << k)
                    .map(|row| {
                        let params: Vec<String> = (1..=columns)
                            .map(|c| match numbered {
                                true => format!("${}", row * columns + c),
                                false => "?".to_owned(),
                            })
                            .collect();
                        format!("({})", params.join(", "))
                    })
                    .collect();
                format!(
                    "INSERT INTO audit_records ({INSERT_COLUMNS}) VALUES {}",
                    rows.join(", ")
                )
            })
            .collect()
    };
    let [anonymous, numbered] = SQL.get_or_init(|| [texts(false), texts(true)]);
    let all = match numbered_placeholders {
        true => numbered,
        false => anonymous,
    };
    all.get(rows_log2 as usize).map_or("", String::as_str)
}

/// [`insert_sql`] in SQLite's anonymous placeholders.
pub(super) fn insert_sql_anonymous(rows_log2: u32) -> &'static str {
    insert_sql_texts(false, rows_log2)
}

/// The last record's index and time: a batch's first read.
pub(super) const LAST_RECORD: &str =
    "SELECT idx, time FROM audit_records ORDER BY idx DESC LIMIT 1";

/// The last record's index and time, inside the batch's transaction.
pub(super) async fn last_record(conn: &mut Conn<'_>) -> Result<Option<(i64, String)>, StoreError> {
    Ok(on_conn!(conn, c => sqlx::query_as(LAST_RECORD).fetch_optional(&mut **c).await?))
}

/// Binds the rows of `$chunk` (records at `$index..`, all at `$time`,
/// `$at` parsed) to `$query` in [`INSERT_COLUMNS`] order, advancing `$index`:
/// written once for both backends and for a batch's last text. The texts
/// are moved out of the records, which the batch does not read again:
/// sqlx-sqlite copies every text bound by reference before it runs the
/// statement (`into_static`), 25–34 allocations a statutory call (#21,
/// bench/README.md "#21, session 14").
macro_rules! bind_rows {
    ($query:ident, $chunk:expr, $index:ident, $time:expr, $at:expr) => {
        for r in $chunk {
            $query = $query
                .bind($index)
                .bind($time)
                .bind(std::mem::take(&mut r.transfer_id))
                .bind(r.kind.as_str())
                .bind(r.consumer.take())
                .bind(r.supplier.take())
                .bind(r.client_id.take())
                .bind(r.provider.take())
                .bind(r.dataset.take())
                .bind(std::mem::take(&mut r.method))
                .bind(std::mem::take(&mut r.path))
                .bind(r.purpose.take())
                .bind(r.basis.map(|b| b.as_str()))
                .bind(r.legal_ref.take())
                .bind(r.consent_id.take())
                .bind(r.subject_ref.take())
                .bind(r.decision.map(|d| d.as_str()))
                .bind(r.code.take())
                .bind(r.status.map(i64::from))
                .bind(r.bytes.map($crate::store::records::to_i64).transpose()?)
                .bind(
                    r.duration_ms
                        .map($crate::store::records::to_i64)
                        .transpose()?,
                )
                .bind(r.count.map($crate::store::records::to_i64).transpose()?)
                .bind(r.system_user.take())
                .bind(r.break_glass.take())
                .bind(r.disclosure_delay_days.map(i64::from))
                .bind($crate::store::records::disclose_at(
                    $at,
                    r.disclosure_delay_days,
                ));
            $index += 1;
        }
    };
}
pub(super) use bind_rows;

/// `records` cut into the power-of-two chunks [`insert_sql`] has texts for:
/// the largest that fits first, capped at 2^MAX_ROWS_LOG2. Each chunk with
/// its k.
pub(super) fn chunks(records: &mut [NewRecord]) -> impl Iterator<Item = (u32, &mut [NewRecord])> {
    let mut rest = records;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let k = rest.len().ilog2().min(MAX_ROWS_LOG2);
        let (chunk, tail) = std::mem::take(&mut rest).split_at_mut(1 << k);
        rest = tail;
        Some((k, chunk))
    })
}

pub(super) fn parse_time(time: &str) -> Result<Timestamp, StoreError> {
    Timestamp::parse(time).map_err(|e| StoreError::Db(format!("record time: {e}")))
}

/// Inserts `records` at `first_index..`, all at `time`, in as few
/// statements as the power-of-two chunks allow; their texts are moved into
/// the statements ([`bind_rows!`]).
pub(super) async fn insert_records(
    conn: &mut Conn<'_>,
    first_index: i64,
    time: &str,
    records: &mut [NewRecord],
) -> Result<(), StoreError> {
    let mut index = first_index;
    let at = parse_time(time)?;
    for (k, chunk) in chunks(records) {
        let sql = insert_sql(conn, k);
        on_conn!(&mut *conn, c => {
            let mut query = sqlx::query(sql);
            bind_rows!(query, chunk, index, time, &at);
            query.execute(&mut **c).await?;
        });
    }
    Ok(())
}

impl Store {
    /// Records matching `filter`, in index order. A filter on any column
    /// but the index reads `audit_index` (migration 0015), caught up to the
    /// log's end first so the caller sees its own writes; the cursor alone
    /// (the followers) reads `audit_records` by its primary key.
    pub async fn records(&self, filter: &RecordFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let indexed = filter.since.is_some()
            || filter.until.is_some()
            || filter.consumer.is_some()
            || filter.provider.is_some()
            || filter.dataset.is_some()
            || filter.kind.is_some()
            || filter.decision.is_some()
            || filter.subject_ref.is_some();
        if indexed {
            self.index_for_read().await?;
        }
        let rows: Vec<RecordRow> = on_pool!(self, pool => {
            let mut q = QueryBuilder::new("SELECT ");
            match indexed {
                true => q.push(indexed_columns()).push(INDEXED_FROM),
                false => q.push(RECORD_COLUMNS).push(" FROM audit_records r"),
            };
            q.push(" WHERE 1 = 1");
            // Time never goes backwards along the log (it is taken under the
            // sequencer's lock), so a time window is also an index range: the
            // first record at or after each bound, found on the time index,
            // bounds `idx`. Without this the planner may walk the primary key
            // from 0 filtering on time (seconds at 15M records; bench/README.md).
            const FIRST_AT: &str = "COALESCE((SELECT idx FROM audit_index WHERE time >= ";
            const FIRST_AT_END: &str = " ORDER BY time, idx LIMIT 1), 9223372036854775807)";
            if let Some(t) = filter.since {
                q.push(" AND i.time >= ").push_bind(t.to_string());
                q.push(" AND i.idx >= ")
                    .push(FIRST_AT)
                    .push_bind(t.to_string())
                    .push(FIRST_AT_END);
            }
            if let Some(t) = filter.until {
                q.push(" AND i.time < ").push_bind(t.to_string());
                q.push(" AND i.idx < ")
                    .push(FIRST_AT)
                    .push_bind(t.to_string())
                    .push(FIRST_AT_END);
            }
            if let Some(c) = &filter.consumer {
                q.push(" AND i.consumer = ").push_bind(c.clone());
            }
            if let Some(p) = &filter.provider {
                q.push(" AND i.provider = ").push_bind(p.clone());
            }
            if let Some(d) = &filter.dataset {
                q.push(" AND i.dataset = ").push_bind(d.clone());
            }
            if let Some(k) = filter.kind {
                q.push(" AND i.kind = ").push_bind(k.as_str());
            }
            if let Some(v) = filter.decision {
                q.push(" AND i.decision = ").push_bind(v.as_str());
            }
            if let Some(s) = &filter.subject_ref {
                q.push(" AND i.subject_ref = ").push_bind(s.clone());
            }
            let key = if indexed { "i.idx" } else { "r.idx" };
            if let Some(after) = filter.after_index {
                // Past i64::MAX there is nothing; saturate rather than fail.
                q.push(format_args!(" AND {key} > "))
                    .push_bind(i64::try_from(after).unwrap_or(i64::MAX));
            }
            q.push(format_args!(" ORDER BY {key}"));
            if let Some(limit) = filter.limit {
                q.push(" LIMIT ").push_bind(i64::from(limit));
            }
            q.build_query_as().fetch_all(pool).await?
        });
        rows.into_iter().map(AuditRecord::try_from).collect()
    }

    /// How many records the log holds; also the index the next record gets.
    pub async fn record_count(&self) -> Result<u64, StoreError> {
        // Indexes are dense from 0, so the count is the last index + 1: a
        // primary-key lookup instead of a table scan.
        const SQL: &str = "SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_records";
        let (next,): (i64,) = on_pool!(self, pool => sqlx::query_as(SQL).fetch_one(pool).await?);
        u64::try_from(next).map_err(|_| StoreError::Corrupt(format!("record count {next}")))
    }

    /// The records of one transfer (its decision, then its outcome), in index order.
    pub async fn records_by_transfer(
        &self,
        transfer_id: &str,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.index_for_read().await?;
        let sql = format!(
            "SELECT {}{INDEXED_FROM} WHERE i.transfer_id = $1 ORDER BY i.idx",
            indexed_columns()
        );
        let rows: Vec<RecordRow> = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(transfer_id).fetch_all(pool).await?
        });
        rows.into_iter().map(AuditRecord::try_from).collect()
    }

    /// One record by index.
    pub async fn record_at(&self, index: u64) -> Result<Option<AuditRecord>, StoreError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM audit_records WHERE idx = $1");
        let Ok(idx) = i64::try_from(index) else {
            return Ok(None);
        };
        let row: Option<RecordRow> = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(idx).fetch_optional(pool).await?
        });
        row.map(AuditRecord::try_from).transpose()
    }
}

/// `audit_records` as either database returns it; checked into an [`AuditRecord`].
#[derive(sqlx::FromRow)]
pub(super) struct RecordRow {
    idx: i64,
    time: String,
    transfer_id: String,
    kind: String,
    consumer: Option<String>,
    supplier: Option<String>,
    client_id: Option<String>,
    provider: Option<String>,
    dataset: Option<String>,
    method: String,
    path: String,
    purpose: Option<String>,
    basis: Option<String>,
    legal_ref: Option<String>,
    consent_id: Option<String>,
    subject_ref: Option<String>,
    decision: Option<String>,
    code: Option<String>,
    status: Option<i64>,
    bytes: Option<i64>,
    duration_ms: Option<i64>,
    count: Option<i64>,
    system_user: Option<String>,
    break_glass: Option<String>,
    disclosure_delay_days: Option<i64>,
}

impl TryFrom<RecordRow> for AuditRecord {
    type Error = StoreError;

    fn try_from(r: RecordRow) -> Result<Self, StoreError> {
        let idx = r.idx;
        let bad = |field: &str, e: &dyn std::fmt::Display| {
            StoreError::Corrupt(format!("record {idx}: {field}: {e}"))
        };
        fn num<T: TryFrom<i64>>(v: Option<i64>) -> Result<Option<T>, i64> {
            v.map(|n| T::try_from(n).map_err(|_| n)).transpose()
        }
        Ok(AuditRecord {
            index: u64::try_from(idx).map_err(|e| bad("index", &e))?,
            time: Timestamp::parse(&r.time).map_err(|e| bad("time", &e))?,
            transfer_id: r.transfer_id,
            kind: r.kind.parse().map_err(|e| bad("kind", &e))?,
            consumer: r.consumer,
            supplier: r.supplier,
            client_id: r.client_id,
            provider: r.provider,
            dataset: r.dataset,
            method: r.method,
            path: r.path,
            purpose: r.purpose,
            basis: r
                .basis
                .map(|b| b.parse())
                .transpose()
                .map_err(|e| bad("basis", &e))?,
            legal_ref: r.legal_ref,
            consent_id: r.consent_id,
            subject_ref: r.subject_ref,
            decision: r
                .decision
                .map(|d| d.parse())
                .transpose()
                .map_err(|e| bad("decision", &e))?,
            code: r.code,
            status: num(r.status).map_err(|n| bad("status", &n))?,
            bytes: num(r.bytes).map_err(|n| bad("bytes", &n))?,
            duration_ms: num(r.duration_ms).map_err(|n| bad("duration_ms", &n))?,
            count: num(r.count).map_err(|n| bad("count", &n))?,
            system_user: r.system_user,
            break_glass: r.break_glass,
            disclosure_delay_days: num(r.disclosure_delay_days)
                .map_err(|n| bad("disclosure_delay_days", &n))?,
        })
    }
}

/// When a delayed record becomes visible to its citizen: `time` + `days`,
/// spelt as `time` is so the two compare as text; `None` without a delay.
pub(super) fn disclose_at(time: &Timestamp, days: Option<u32>) -> Option<String> {
    let days = days?;
    let at = time
        .as_datetime()
        .checked_add(time::Duration::days(i64::from(days)))
        // Past year 9999: never disclosed is the safe reading of the rule.
        .map_or_else(
            || "9999-12-31T23:59:59.999Z".to_owned(),
            |t| Timestamp::from_datetime(t).to_string(),
        );
    Some(at)
}

pub(super) fn to_i64(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Db(format!("{n} is too large to store")))
}
