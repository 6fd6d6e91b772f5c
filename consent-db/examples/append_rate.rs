//! Measures group commit: N concurrent appenders against a fresh SQLite file.
//!
//! `cargo run -p consent-db --release --example append_rate -- [appenders] [seconds]`

use std::time::{Duration, Instant};

use consent_db::{AuditConfig, AuditLog, NewRecord, RecordKind, Store, Verdict};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let appenders: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(256);
    let seconds: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(3);

    let dir = tempfile::tempdir()?;
    let store = Store::open(&format!("sqlite://{}", dir.path().join("bru.db").display())).await?;
    store.migrate().await?;
    let log = AuditLog::start(store.clone(), AuditConfig::default())?;

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let tasks: Vec<_> = (0..appenders)
        .map(|a| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let mut r = NewRecord::new(
                        RecordKind::Decision,
                        format!("t-{a}-{n}"),
                        "GET",
                        "/data/nav/inntekt/{subject}",
                    );
                    r.consumer = Some("0192:921429002".into());
                    r.provider = Some("nav".into());
                    r.dataset = Some("inntekt".into());
                    r.purpose = Some("omsorgsbolig-soknad".into());
                    r.subject_ref = Some("pseudonym-0123456789abcdef".into());
                    r.decision = Some(Verdict::Allow);
                    log.append(r).await?;
                    n += 1;
                }
                Ok::<u64, consent_db::AuditError>(n)
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let stats = log.stats();
    log.close().await?;
    println!(
        "{appenders} appenders: {total} records in {elapsed:.2} s = {:.0} records/s; {} batches, mean {:.1}, max {}",
        total as f64 / elapsed,
        stats.batches,
        stats.records as f64 / stats.batches.max(1) as f64,
        stats.max_batch_size
    );
    Ok(())
}
