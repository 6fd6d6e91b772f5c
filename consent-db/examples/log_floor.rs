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
    Sqlite,
}

const CASES: [Case; 6] = [
    Case::Handoff,
    Case::Leaf,
    Case::FileNoSync,
    Case::File,
    Case::FilePrealloc,
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
            let (mut record, reply) = match msg {
                Msg::Wait(r, reply) => (r, Some(reply)),
                Msg::Later(r) => (r, None),
            };
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
