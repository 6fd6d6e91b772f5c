//! What the log's followers cost a record on SQLite (issue #21), each alone,
//! in one run on one fresh file: the statutory call's two records (a
//! decision about a person and its outcome) appended by 64 concurrent
//! appenders, then the indexer (`Store::index_step`, pages of 500) and the
//! notification follower (`Store::follow_log_for_notifications`, pages of
//! 4,096) run over the whole log from its start, `rounds` times each,
//! interleaved; before each run the follower's derived rows are deleted and
//! its position set back to 0. Wall time and the process's CPU time (the
//! work is SQLite's, on sqlx's worker thread; nothing else runs).
//!
//! The calls are about `SUBJECTS` people (default 5,000) from `CONSUMERS`
//! consumers (default 50); a third argument is SQL run once before the
//! rounds, a schema variant to compare (`bench/followers` runs three).
//!
//! `cargo run -p consent-db --release --example follower_cost -- [calls] [rounds] [sql]`

use std::time::Instant;

use consent_db::{AuditConfig, AuditLog, Basis, NewRecord, RecordKind, Store, Verdict};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let calls: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(20_000);
    let rounds: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(5)
        .max(1);
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("bru.db");
    let store = Store::open(&format!("sqlite://{}", db.display())).await?;
    store.migrate().await?;
    let log = AuditLog::start(store.clone(), AuditConfig::default())?;
    let appenders = 64u64;
    let tasks: Vec<_> = (0..appenders)
        .map(|a| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut n = a;
                while n < calls {
                    let decision = call(n);
                    let mut outcome = decision.clone();
                    outcome.kind = RecordKind::Outcome;
                    outcome.decision = None;
                    outcome.status = Some(200);
                    outcome.bytes = Some(1024);
                    outcome.duration_ms = Some(1);
                    log.append(decision).await?;
                    log.append(outcome).await?;
                    n += appenders;
                }
                Ok::<(), consent_db::AuditError>(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    log.close().await?;
    let records = store.record_count().await?;

    let raw = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display())).await?;
    // A schema variant to measure against (a third argument: SQL run once here).
    if let Some(sql) = args.next() {
        sqlx::raw_sql(&sql).execute(&raw).await?;
    }
    let mut index = Vec::new();
    let mut notify = Vec::new();
    for _ in 0..rounds {
        reset(&raw, "indexer", "DELETE FROM audit_index").await?;
        index.push(
            timed(|| async {
                while store.index_step(consent_db::INDEX_STEP).await?
                    >= u64::from(consent_db::INDEX_STEP)
                {}
                Ok(())
            })
            .await?,
        );
        reset(&raw, "notify", "DELETE FROM notifications").await?;
        notify.push(
            timed(|| async {
                while store.follow_log_for_notifications(4096).await? >= 4096 {}
                Ok(())
            })
            .await?,
        );
    }
    let per = |v: &mut Vec<(f64, f64)>| {
        v.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (wall, cpu) = v[v.len() / 2];
        let (lo, hi) = (v[0].1, v[v.len() - 1].1);
        let r = records as f64;
        format!(
            "{:.2} | {:.2} ({:.2}–{:.2})",
            wall * 1e6 / r,
            cpu * 1e6 / r,
            lo * 1e6 / r,
            hi * 1e6 / r
        )
    };
    println!("{records} records ({calls} calls), SQLite, {rounds} rounds, medians by CPU");
    println!("| follower | wall µs a record | CPU µs a record (range) |");
    println!("| --- | --- | --- |");
    println!("| indexer (audit_index) | {} |", per(&mut index));
    println!("| notifications | {} |", per(&mut notify));
    Ok(())
}

/// Call `n`'s decision record, as the statutory pipeline writes it.
fn call(n: u64) -> NewRecord {
    let mut r = NewRecord::new(
        RecordKind::Decision,
        format!("0b6f3c1e-5d7a-4e8b-9c2d-{n:012}"),
        "GET",
        "/data/nav/inntekt",
    );
    r.consumer = Some(format!("0192:9{:08}", n % spread("CONSUMERS", 50)));
    r.client_id = Some("c0ffee00-1111-2222-3333-444455556666".into());
    r.provider = Some("nav".into());
    r.dataset = Some("inntekt".into());
    r.purpose = Some("sosialhjelp-saksbehandling".into());
    r.basis = Some(Basis::Statutory);
    r.legal_ref = Some("sosialtjenesteloven § 43".into());
    r.subject_ref = Some(format!("{:064x}", (n * 7919) % spread("SUBJECTS", 5000)));
    r.decision = Some(Verdict::Allow);
    r
}

async fn reset(
    raw: &sqlx::SqlitePool,
    follower: &str,
    delete: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    sqlx::query(delete).execute(raw).await?;
    sqlx::query("UPDATE log_followers SET position = 0 WHERE name = $1")
        .bind(follower)
        .execute(raw)
        .await?;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(raw)
        .await?;
    Ok(())
}

/// Wall and process CPU seconds of `f`.
async fn timed<F, Fut>(f: F) -> Result<(f64, f64), Box<dyn std::error::Error>>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), consent_db::StoreError>>,
{
    let (wall, cpu) = (Instant::now(), cpu_seconds()?);
    f().await?;
    Ok((wall.elapsed().as_secs_f64(), cpu_seconds()? - cpu))
}

/// The process's user and system CPU time, from /proc/self/schedstat's
/// nanoseconds per thread summed over /proc/self/task.
fn cpu_seconds() -> Result<f64, Box<dyn std::error::Error>> {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task")? {
        let path = task?.path().join("schedstat");
        // A thread that ended meanwhile has no file any more.
        if let Ok(text) = std::fs::read_to_string(path) {
            ns += text
                .split_whitespace()
                .next()
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Ok(ns as f64 / 1e9)
}

/// How many consumers or subjects the calls spread over (environment
/// `CONSUMERS`, `SUBJECTS`; at least 1).
fn spread(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .max(1)
}
