//! The cost of snooping detection per record (SPEC 11), against appending
//! alone, in one run on one fresh SQLite file:
//!  1. N decision records appended by 64 concurrent appenders (group commit,
//!     the Merkle tree in the same transaction): µs per record;
//!  2. the snoop follower with every rule off (reading pages and advancing
//!     its position only), to separate the rules from the reading;
//!  3. the follower, back at the start, evaluating all of them in pages of
//!     256 with every rule on (50 consumers, 5,000 subjects, one dataset in
//!     ten marked for off hours): µs per record and the ratio to 1.
//!
//! `cargo run -p consent-db --release --example snoop_rate -- [records]`

use std::time::Instant;

use consent_db::{AuditConfig, AuditLog, NewRecord, RecordKind, Store, Verdict};
use policy::snoop::{OffHours, SnoopRules, SubjectsPerHour};

const PAGE: u32 = 256;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let records: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(50_000);
    let dir = tempfile::tempdir()?;
    let store = Store::open(&format!("sqlite://{}", dir.path().join("bru.db").display())).await?;
    store.migrate().await?;
    let log = AuditLog::start(store.clone(), AuditConfig::default())?;

    let appenders = 64u64;
    let start = Instant::now();
    let tasks: Vec<_> = (0..appenders)
        .map(|a| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut n = a;
                while n < records {
                    let mut r = NewRecord::new(
                        RecordKind::Decision,
                        format!("t-{n}"),
                        "GET",
                        "/data/k429/sosialtjeneste",
                    );
                    r.consumer = Some(format!("0192:9{:08}", n % 50));
                    r.provider = Some("k429".into());
                    r.dataset = Some(
                        if n % 10 == 0 {
                            "k429/sosialtjeneste"
                        } else {
                            "nav/inntekt"
                        }
                        .into(),
                    );
                    r.purpose = Some("sosialhjelp-saksbehandling".into());
                    r.subject_ref = Some(format!("pseudonym-{:06}", (n * 7919) % 5000));
                    r.decision = Some(if n % 20 == 0 {
                        Verdict::Deny
                    } else {
                        Verdict::Allow
                    });
                    r.break_glass = (n % 1000 == 0).then(|| "akutt".to_owned());
                    log.append(r).await?;
                    n += appenders;
                }
                Ok::<(), consent_db::AuditError>(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let append = start.elapsed().as_secs_f64();
    log.close().await?;

    let rules = SnoopRules {
        subjects_per_hour: Some(SubjectsPerHour::default()),
        off_hours: vec![OffHours {
            dataset: "k429/sosialtjeneste".parse()?,
            consumers: Vec::new(),
            // Every hour is off hours: the rule finds on each marked read.
            start_hour: 0,
            end_hour: 1,
            days: std::collections::BTreeSet::new(),
        }],
        break_glass: true,
        representation: true,
    };
    // Every rule off first (it writes no state), then the follower back at
    // the start of the log and every rule on.
    let off = SnoopRules {
        subjects_per_hour: None,
        off_hours: Vec::new(),
        break_glass: false,
        representation: false,
    };
    let (read_only, _) = follow(&store, &off).await?;
    reset(&dir.path().join("bru.db")).await?;
    let (evaluate, findings) = follow(&store, &rules).await?;

    let per = |s: f64| s * 1e6 / records as f64;
    println!("{records} records, SQLite, 64 appenders, follower pages of {PAGE}");
    println!("| step | µs/record | ratio to appending |");
    println!("| --- | ---: | ---: |");
    println!(
        "| append (group commit + Merkle tree) | {:.1} | 1.00 |",
        per(append)
    );
    println!(
        "| snoop follower, every rule on ({findings} findings) | {:.1} | {:.2} |",
        per(evaluate),
        evaluate / append
    );
    println!(
        "| snoop follower, every rule off (read + advance) | {:.1} | {:.2} |",
        per(read_only),
        read_only / append
    );
    Ok(())
}

async fn follow(
    store: &Store,
    rules: &SnoopRules,
) -> Result<(f64, usize), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let mut findings = 0;
    loop {
        let step = store.snoop_step(rules, PAGE).await?;
        findings += step.findings.len();
        if step.records < u64::from(PAGE) {
            break;
        }
    }
    Ok((start.elapsed().as_secs_f64(), findings))
}

/// Puts the copy's follower back at the start of the log.
async fn reset(db: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display())).await?;
    sqlx::query("UPDATE log_followers SET position = 0")
        .execute(&pool)
        .await?;
    pool.close().await;
    Ok(())
}
