//! The floor of #21's design: what the log would cost a call if it were an
//! append-only file with its own group commit, against the log as Bru has it
//! (SQLite: records and tree in one transaction), side by side in one process.
//!
//! Each call is what the statutory pipeline hands the log: a decision record
//! it waits for, then an outcome record it does not (`append_later`). The
//! callers stand for the calls in flight at the log; 12 and 62 give the
//! batches `bench/run` measures at 32 and 256 connections (0.080 and 0.016
//! fsyncs a call: about 25 and 125 records a commit).
//!
//! Cases, interleaved in rounds (order rotated each round):
//! - `handoff`: the writer answers without doing anything: the callers' and
//!   the channel's own cost, subtracted from every other case;
//! - `leaf`: the leaf and nothing else: scrub, RFC 8785 bytes, leaf hash, the
//!   frontier's nodes, all in memory;
//! - `file-nosync`: `leaf`, and the leaves with their new nodes written to an
//!   append-only file, one `write` a batch on the blocking pool;
//! - `file`: `file-nosync` with one `fdatasync` a batch: the design's log;
//! - `file-prealloc`: `file` on a file whose blocks were written and synced
//!   beforehand (64 MiB, written round and round), so the `fdatasync` has no
//!   size or extent to journal: the cheapest durable write this file system
//!   offers;
//! - `sqlite-leaves`: `leaf`, with the leaves written to SQLite (WAL,
//!   synchronous=FULL) as rows of (index, leaf bytes, leaf hash) and the
//!   batch's nodes as one blob, one transaction a batch: the log as an
//!   append-only table of leaves, with no column of the record;
//! - `sqlite-batch`: the same with the whole batch (leaves, hashes, nodes) as
//!   one row: the append-only file, kept in SQLite;
//! - `sqlite-columns`: `sqlite-leaves` with each record's 26 columns (as
//!   `audit_records` has them) in its row instead of its leaf bytes;
//! - `sqlite-noderows`: `sqlite-leaves` with the nodes as rows (size, level,
//!   hash), as `tree_nodes` has them, instead of one blob a batch;
//! - `sqlite`: `consent_db::AuditLog` on SQLite (WAL, synchronous=FULL),
//!   records and tree in one transaction a batch, nothing following the log.
//!
//! CPU is the process's user + system time (`/proc/self/stat`), over the calls
//! made; run it pinned to one core (`CPU=1 bash bench/log-floor`).
//!
//! `cargo run -p consent-db --release --example log_floor -- [callers,…] [seconds] [rounds]`

use std::io::{Seek, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use consent_db::merkle::{leaf_hash, Frontier};
use consent_db::{
    AuditConfig, AuditLog, AuditRecord, Basis, NewRecord, RecordKind, Store, Timestamp, Verdict,
};
use tokio::sync::{mpsc, oneshot};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    Handoff,
    Leaf,
    FileNoSync,
    File,
    FilePrealloc,
    SqliteLeaves,
    SqliteBatch,
    SqliteColumns,
    SqliteNodeRows,
    Sqlite,
}

const CASES: [Case; 10] = [
    Case::Handoff,
    Case::Leaf,
    Case::FileNoSync,
    Case::File,
    Case::FilePrealloc,
    Case::SqliteLeaves,
    Case::SqliteBatch,
    Case::SqliteColumns,
    Case::SqliteNodeRows,
    Case::Sqlite,
];

/// The preallocated file's size: written round and round.
const PREALLOC: u64 = 64 << 20;

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::Handoff => "handoff",
            Case::Leaf => "leaf",
            Case::FileNoSync => "file-nosync",
            Case::File => "file",
            Case::FilePrealloc => "file-prealloc",
            Case::SqliteLeaves => "sqlite-leaves",
            Case::SqliteBatch => "sqlite-batch",
            Case::SqliteColumns => "sqlite-columns",
            Case::SqliteNodeRows => "sqlite-noderows",
            Case::Sqlite => "sqlite",
        }
    }
}

/// A statutory call's decision record, as the pipeline writes it.
fn decision(n: u64) -> NewRecord {
    let mut r = NewRecord::new(
        RecordKind::Decision,
        format!("0d8a52d4-7f0e-4c55-9a1e-{n:012x}"),
        "GET",
        "/data/k429/sosialtjeneste/1k",
    );
    r.consumer = Some("0192:974760673".into());
    r.client_id = Some("bench-k429".into());
    r.provider = Some("k429".into());
    r.dataset = Some("sosialtjeneste".into());
    r.purpose = Some("sosialtjeneste-saksbehandling".into());
    r.basis = Some(Basis::Statutory);
    r.legal_ref = Some("sosialtjenesteloven § 43".into());
    r.subject_ref = Some("sR8lq2yJ0pXU0v6Lw3m8uQ".into());
    r.decision = Some(Verdict::Allow);
    r
}

/// Its outcome record.
fn outcome(n: u64) -> NewRecord {
    let mut r = decision(n);
    r.kind = RecordKind::Outcome;
    r.decision = None;
    r.status = Some(200);
    r.bytes = Some(1024);
    r.duration_ms = Some(1);
    r
}

/// User + system CPU of this process so far, in seconds.
fn cpu_seconds() -> Result<f64, Error> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command's closing parenthesis; utime and stime are
    // fields 14 and 15 of the whole line, in clock ticks (100 a second here).
    let rest = stat.rsplit_once(')').ok_or("no ')' in /proc/self/stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> Result<f64, Error> {
        Ok(fields
            .get(i)
            .ok_or("short /proc/self/stat")?
            .parse::<f64>()?)
    };
    Ok((tick(11)? + tick(12)?) / 100.0)
}

enum Msg {
    Wait(NewRecord, oneshot::Sender<u64>),
    Later(NewRecord),
}

impl Msg {
    /// The record, and whom to answer with its index (if anyone waits).
    fn split(self) -> (NewRecord, Option<oneshot::Sender<u64>>) {
        match self {
            Msg::Wait(r, reply) => (r, Some(reply)),
            Msg::Later(r) => (r, None),
        }
    }
}

/// The design's writer: takes what is queued, makes the leaves, writes them
/// (and fsyncs) in one go, then answers.
async fn file_writer(
    mut rx: mpsc::Receiver<Msg>,
    case: Case,
    mut file: Option<std::fs::File>,
) -> Result<u64, Error> {
    let mut frontier = Frontier::new();
    let mut msgs = Vec::with_capacity(4096);
    let mut waiters = Vec::with_capacity(4096);
    let mut batches = 0;
    while rx.recv_many(&mut msgs, 4096).await > 0 {
        let time = Timestamp::now();
        let mut buf = Vec::with_capacity(msgs.len() * 700);
        for msg in msgs.drain(..) {
            let (mut record, reply) = msg.split();
            let index = frontier.size();
            if case != Case::Handoff {
                record.scrub();
                let leaf = AuditRecord::from_new(index, time, record).leaf_bytes()?;
                let hash = leaf_hash(&leaf);
                let len = u32::try_from(leaf.len())?;
                buf.extend_from_slice(&len.to_be_bytes());
                buf.extend_from_slice(&leaf);
                buf.extend_from_slice(&hash);
                frontier.push(hash, |id, node| {
                    buf.push(id.level);
                    buf.extend_from_slice(&id.index.to_be_bytes());
                    buf.extend_from_slice(node);
                });
            } else {
                frontier.push([0; 32], |_, _| {});
            }
            waiters.push((index, reply));
        }
        if let Some(f) = file.take() {
            let sync = matches!(case, Case::File | Case::FilePrealloc);
            let wrap = case == Case::FilePrealloc;
            let f = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
                let mut f = f;
                if wrap && f.stream_position()? + buf.len() as u64 > PREALLOC {
                    f.rewind()?;
                }
                f.write_all(&buf)?;
                if sync {
                    f.sync_data()?;
                }
                Ok(f)
            })
            .await??;
            file = Some(f);
        }
        batches += 1;
        for (index, reply) in waiters.drain(..) {
            if let Some(reply) = reply {
                let _ = reply.send(index);
            }
        }
    }
    Ok(batches)
}

/// Rows per multi-row insert of `sqlite-leaves`: 2^0..=2^8, as Bru's records.
const LEAF_ROWS_LOG2: u32 = 8;

/// `rows` cut into chunks of 2^k rows (k ≤ `max_log2`), largest first, as
/// Bru's record insert cuts a batch (one statement text for each k).
fn pow2_chunks<T>(mut rows: &[T], max_log2: u32) -> impl Iterator<Item = (usize, &[T])> {
    std::iter::from_fn(move || {
        if rows.is_empty() {
            return None;
        }
        let k = rows.len().ilog2().min(max_log2);
        let (chunk, tail) = rows.split_at(1 << k);
        rows = tail;
        Some((k as usize, chunk))
    })
}

/// The log as an append-only table in SQLite: the leaves (or the whole
/// batch) and the batch's nodes, one transaction a batch.
async fn sqlite_writer(
    mut rx: mpsc::Receiver<Msg>,
    case: Case,
    mut conn: sqlx::SqliteConnection,
) -> Result<u64, Error> {
    use sqlx::Connection;
    let texts: Vec<String> = (0..=LEAF_ROWS_LOG2)
        .map(|k| {
            let rows = vec!["(?, ?, ?)"; 1 << k].join(", ");
            format!("INSERT INTO leaves (idx, leaf, hash) VALUES {rows}")
        })
        .collect();
    let column_texts: Vec<String> = (0..=LEAF_ROWS_LOG2)
        .map(|k| {
            let row = format!("({})", vec!["?"; 26].join(", "));
            let rows = vec![row.as_str(); 1 << k].join(", ");
            format!("INSERT INTO records VALUES {rows}")
        })
        .collect();
    let node_texts: Vec<String> = (0..=LEAF_ROWS_LOG2 + 1)
        .map(|k| {
            let rows = vec!["(?, ?, ?)"; 1 << k].join(", ");
            format!("INSERT INTO nodes (size, level, hash) VALUES {rows}")
        })
        .collect();
    let mut frontier = Frontier::new();
    let mut msgs = Vec::with_capacity(4096);
    let mut waiters = Vec::with_capacity(4096);
    let mut batches = 0;
    while rx.recv_many(&mut msgs, 4096).await > 0 {
        let time = Timestamp::now();
        let stamp = time.to_string();
        let first = frontier.size();
        let mut rows: Vec<(u64, NewRecord)> = Vec::new();
        let mut node_rows: Vec<(i64, i64, [u8; 32])> = Vec::new();
        let mut leaves: Vec<(u64, Vec<u8>, [u8; 32])> = Vec::with_capacity(msgs.len());
        let mut nodes = Vec::with_capacity(msgs.len() * 80);
        let mut all = Vec::with_capacity(msgs.len() * 700);
        for msg in msgs.drain(..) {
            let (mut record, reply) = msg.split();
            let index = frontier.size();
            record.scrub();
            if case == Case::SqliteColumns {
                rows.push((index, record.clone()));
            }
            let leaf = AuditRecord::from_new(index, time, record).leaf_bytes()?;
            let hash = leaf_hash(&leaf);
            frontier.push(hash, |id, node| {
                nodes.push(id.level);
                nodes.extend_from_slice(&id.index.to_be_bytes());
                nodes.extend_from_slice(node);
                let size = (id.index + 1) << id.level;
                node_rows.push((size as i64, i64::from(id.level), *node));
            });
            if case == Case::SqliteBatch {
                all.extend_from_slice(&u32::try_from(leaf.len())?.to_be_bytes());
                all.extend_from_slice(&leaf);
                all.extend_from_slice(&hash);
            } else {
                leaves.push((index, leaf, hash));
            }
            waiters.push((index, reply));
        }
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        if case == Case::SqliteBatch {
            all.extend_from_slice(&nodes);
            sqlx::query("INSERT INTO batches (first, bytes) VALUES (?, ?)")
                .bind(i64::try_from(first)?)
                .bind(all)
                .execute(&mut *tx)
                .await?;
        } else if case == Case::SqliteColumns {
            for (k, chunk) in pow2_chunks(rows.as_slice(), LEAF_ROWS_LOG2) {
                let mut query = sqlx::query(column_texts[k].as_str());
                for (index, r) in chunk {
                    query = query
                        .bind(i64::try_from(*index)?)
                        .bind(stamp.as_str())
                        .bind(r.transfer_id.as_str())
                        .bind(r.kind.as_str())
                        .bind(r.consumer.as_deref())
                        .bind(r.supplier.as_deref())
                        .bind(r.client_id.as_deref())
                        .bind(r.provider.as_deref())
                        .bind(r.dataset.as_deref())
                        .bind(r.method.as_str())
                        .bind(r.path.as_str())
                        .bind(r.purpose.as_deref())
                        .bind(r.basis.map(|b| b.as_str()))
                        .bind(r.legal_ref.as_deref())
                        .bind(r.consent_id.as_deref())
                        .bind(r.subject_ref.as_deref())
                        .bind(r.decision.map(|d| d.as_str()))
                        .bind(r.code.as_deref())
                        .bind(r.status.map(i64::from))
                        .bind(r.bytes.map(|b| b as i64))
                        .bind(r.duration_ms.map(|b| b as i64))
                        .bind(r.count.map(|b| b as i64))
                        .bind(r.system_user.as_deref())
                        .bind(r.break_glass.as_deref())
                        .bind(r.disclosure_delay_days.map(i64::from))
                        .bind(Option::<&str>::None);
                }
                query.execute(&mut *tx).await?;
            }
            sqlx::query("INSERT INTO batches (first, bytes) VALUES (?, ?)")
                .bind(i64::try_from(first)?)
                .bind(nodes)
                .execute(&mut *tx)
                .await?;
        } else {
            for (k, chunk) in pow2_chunks(leaves.as_slice(), LEAF_ROWS_LOG2) {
                let mut query = sqlx::query(texts[k].as_str());
                for (index, leaf, hash) in chunk {
                    query = query
                        .bind(i64::try_from(*index)?)
                        .bind(leaf.as_slice())
                        .bind(hash.as_slice());
                }
                query.execute(&mut *tx).await?;
            }
            if case == Case::SqliteNodeRows {
                for (k, chunk) in pow2_chunks(node_rows.as_slice(), LEAF_ROWS_LOG2 + 1) {
                    let mut query = sqlx::query(node_texts[k].as_str());
                    for (size, level, hash) in chunk {
                        query = query.bind(*size).bind(*level).bind(hash.as_slice());
                    }
                    query.execute(&mut *tx).await?;
                }
            } else {
                sqlx::query("INSERT INTO batches (first, bytes) VALUES (?, ?)")
                    .bind(i64::try_from(first)?)
                    .bind(nodes)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        batches += 1;
        for (index, reply) in waiters.drain(..) {
            if let Some(reply) = reply {
                let _ = reply.send(index);
            }
        }
    }
    Ok(batches)
}

/// One call's records through either log.
#[derive(Clone)]
enum Log {
    Channel(mpsc::Sender<Msg>),
    Sqlite(AuditLog),
}

impl Log {
    async fn call(&self, n: u64) -> Result<(), Error> {
        match self {
            Log::Channel(tx) => {
                let (reply, answer) = oneshot::channel();
                tx.send(Msg::Wait(decision(n), reply))
                    .await
                    .map_err(|_| "writer gone")?;
                answer.await?;
                tx.send(Msg::Later(outcome(n)))
                    .await
                    .map_err(|_| "writer gone")?;
            }
            Log::Sqlite(log) => {
                log.append(decision(n)).await?;
                if let Err(consent_db::LaterError::Full(r)) = log.append_later(outcome(n)) {
                    log.append_later_when_room(*r).await?;
                }
            }
        }
        Ok(())
    }
}

struct Run {
    calls: u64,
    cpu: f64,
    wall: f64,
    batches: u64,
}

async fn run_case(
    case: Case,
    callers: usize,
    seconds: f64,
    dir: &std::path::Path,
) -> Result<Run, Error> {
    let stamp = format!(
        "{}-{}",
        case.name(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos()
    );
    let (log, writer, store) = match case {
        Case::Sqlite => {
            let url = format!("sqlite://{}", dir.join(format!("{stamp}.db")).display());
            let store = Store::open(&url).await?;
            store.migrate().await?;
            let log = AuditLog::start(store.clone(), AuditConfig::default())?;
            (Log::Sqlite(log), None, Some(store))
        }
        Case::SqliteLeaves | Case::SqliteBatch | Case::SqliteColumns | Case::SqliteNodeRows => {
            use sqlx::{ConnectOptions, Connection};
            let path = dir.join(format!("{stamp}.db"));
            let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
                .connect()
                .await?;
            sqlx::query(
                "CREATE TABLE leaves (idx INTEGER PRIMARY KEY, leaf BLOB NOT NULL, hash BLOB NOT NULL) STRICT",
            )
            .execute(&mut conn)
            .await?;
            sqlx::query(
                "CREATE TABLE batches (first INTEGER PRIMARY KEY, bytes BLOB NOT NULL) STRICT",
            )
            .execute(&mut conn)
            .await?;
            sqlx::query(
                "CREATE TABLE records (idx INTEGER PRIMARY KEY, time TEXT NOT NULL, transfer_id TEXT NOT NULL, \
                 kind TEXT NOT NULL, consumer TEXT, supplier TEXT, client_id TEXT, provider TEXT, dataset TEXT, \
                 method TEXT NOT NULL, path TEXT NOT NULL, purpose TEXT, basis TEXT, legal_ref TEXT, \
                 consent_id TEXT, subject_ref TEXT, decision TEXT, code TEXT, status INTEGER, bytes INTEGER, \
                 duration_ms INTEGER, count INTEGER, system_user TEXT, break_glass TEXT, \
                 disclosure_delay_days INTEGER, disclose_at TEXT) STRICT",
            )
            .execute(&mut conn)
            .await?;
            sqlx::query(
                "CREATE TABLE nodes (size INTEGER NOT NULL, level INTEGER NOT NULL, hash BLOB NOT NULL, \
                 PRIMARY KEY (size, level)) STRICT, WITHOUT ROWID",
            )
            .execute(&mut conn)
            .await?;
            conn.ping().await?;
            let (tx, rx) = mpsc::channel(65_536);
            let writer = tokio::spawn(sqlite_writer(rx, case, conn));
            (Log::Channel(tx), Some(writer), None)
        }
        _ => {
            let path = dir.join(format!("{stamp}.log"));
            let file = match case {
                Case::FileNoSync | Case::File => Some(
                    std::fs::OpenOptions::new()
                        .create_new(true)
                        .append(true)
                        .open(&path)?,
                ),
                Case::FilePrealloc => {
                    let mut f = std::fs::OpenOptions::new()
                        .create_new(true)
                        .write(true)
                        .open(&path)?;
                    let zeros = vec![0u8; 1 << 20];
                    for _ in 0..PREALLOC >> 20 {
                        f.write_all(&zeros)?;
                    }
                    f.sync_all()?;
                    f.rewind()?;
                    Some(f)
                }
                _ => None,
            };
            let (tx, rx) = mpsc::channel(65_536);
            let writer = tokio::spawn(file_writer(rx, case, file));
            (Log::Channel(tx), Some(writer), None)
        }
    };
    // Warm up: the first batches open files and fill caches.
    for n in 0..200 {
        log.call(u64::MAX - n).await?;
    }
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let cpu0 = cpu_seconds()?;
    let start = Instant::now();
    let log = Arc::new(log);
    let tasks: Vec<_> = (0..callers as u64)
        .map(|c| {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    log.call(c << 40 | n).await?;
                    n += 1;
                }
                Ok::<u64, Error>(n)
            })
        })
        .collect();
    let mut calls = 0;
    for t in tasks {
        calls += t.await??;
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds()? - cpu0;
    let log = Arc::try_unwrap(log).map_err(|_| "log still shared")?;
    let batches = match log {
        Log::Channel(tx) => {
            drop(tx);
            match writer {
                Some(w) => w.await??,
                None => 0,
            }
        }
        Log::Sqlite(log) => {
            log.close().await?;
            let stats = log.stats();
            if let Some(store) = store {
                store.close().await;
            }
            stats.batches
        }
    };
    // Each case's files go at once: a file case writes hundreds of MB.
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(&stamp) {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(Run {
        calls,
        cpu,
        wall,
        batches,
    })
}

/// `LOG_FLOOR_CASES=handoff,sqlite,…` runs only those cases (all by default).
fn wanted(case: Case) -> bool {
    match std::env::var("LOG_FLOOR_CASES") {
        Ok(list) => case == Case::Handoff || list.split(',').any(|c| c == case.name()),
        Err(_) => true,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let callers: Vec<usize> = args
        .next()
        .unwrap_or_else(|| "12,62".into())
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let seconds: f64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(3.0);
    let rounds: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5);
    // As `bru serve` on the core bench/run gives it: tokio's multi-thread
    // runtime with one worker (one CPU allowed).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let dir = tempfile::Builder::new()
        .prefix("bru-log-floor-")
        .tempdir_in(std::env::var_os("LOG_FLOOR_DIR").unwrap_or_else(|| "target".into()))?;
    runtime.block_on(async {
        for &c in &callers {
            let mut per_call: Vec<Vec<f64>> = vec![Vec::new(); CASES.len()];
            let mut rates: Vec<Vec<f64>> = vec![Vec::new(); CASES.len()];
            let mut per_batch: Vec<Vec<f64>> = vec![Vec::new(); CASES.len()];
            for round in 0..rounds {
                for k in 0..CASES.len() {
                    let i = (k + round) % CASES.len();
                    if !wanted(CASES[i]) {
                        continue;
                    }
                    let run = run_case(CASES[i], c, seconds, dir.path()).await?;
                    per_call[i].push(run.cpu * 1e6 / run.calls.max(1) as f64);
                    rates[i].push(run.calls as f64 / run.wall);
                    per_batch[i].push(2.0 * run.calls as f64 / run.batches.max(1) as f64);
                }
            }
            let handoff = median(per_call[0].clone());
            println!();
            println!("### {c} callers ({rounds} rounds of {seconds} s, medians)");
            println!();
            println!("| case | calls/s | CPU µs/call | spread | over handoff µs/call | records a batch |");
            println!("| --- | --- | --- | --- | --- | --- |");
            for (i, case) in CASES.iter().enumerate() {
                if per_call[i].is_empty() {
                    continue;
                }
                let m = median(per_call[i].clone());
                let lo = per_call[i].iter().copied().fold(f64::INFINITY, f64::min);
                let hi = per_call[i].iter().copied().fold(0.0, f64::max);
                println!(
                    "| {} | {:.0} | {:.1} | {:.1}–{:.1} | {:.1} | {:.1} |",
                    case.name(),
                    median(rates[i].clone()),
                    m,
                    lo,
                    hi,
                    m - handoff,
                    median(per_batch[i].clone()),
                );
            }
        }
        Ok::<(), Error>(())
    })
}
