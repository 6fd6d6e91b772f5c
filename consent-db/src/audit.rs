//! [`AuditLog`]: durable appends with group commit.
//!
//! Every handle feeds one bounded channel; one writer task takes whatever is
//! queued (at least one message, at most `max_batch`), writes it in one
//! transaction, commits, and only then answers each waiter with its index.
//! Records that arrive while a commit is in flight wait in the channel and
//! make up the next batch, so under load one fsync covers many records and
//! at rest a lone record commits at once.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::error::AuditError;
use crate::record::{NewRecord, Timestamp};
use crate::store::{BatchCommit, Store};

/// Tuning for the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// The most records in one transaction.
    pub max_batch: usize,
    /// How many appends may wait for the writer; beyond that `append` waits
    /// for room (back-pressure instead of unbounded memory).
    pub queue_capacity: usize,
    /// A batch that has not committed by then fails as unavailable, so a
    /// stuck database cannot hold the writer (and every later record) forever.
    pub commit_timeout: Duration,
    /// How long records nobody waits for ([`AuditLog::append_later`]: outcome
    /// records, whose caller has its answer) may wait for a record somebody
    /// does wait for, so they ride in its commit instead of costing an fsync
    /// of their own. A flush or close writes them at once.
    pub later_linger: Duration,
    /// Under load (more than one message was queued when the writer looked),
    /// a batch somebody waits for lets the other tasks run up to this many
    /// times to bring more records, until it holds as many as the last batch
    /// did, and stops as soon as a turn brings none. Each batch costs the
    /// writer a transaction and an fsync whatever its size, so fewer, larger
    /// batches cost less a record (#21, bench/README.md "session 10"). It
    /// never waits on a timer: with nothing else to run, a turn is over at
    /// once, so a lone record commits at once. Zero turns gathering off.
    pub gather_turns: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            max_batch: 4096,
            queue_capacity: 65_536,
            commit_timeout: Duration::from_secs(10),
            // At 1 % of the rate bench/run measures (about 60 calls/s) the
            // next decision comes within ~17 ms; 100 ms bounds what a crash
            // can take of the outcomes without an fsync per outcome.
            later_linger: Duration::from_millis(100),
            // A turn of 32 connections' calls brings a few records; the
            // bound only matters if records trickle in one per turn.
            gather_turns: 64,
        }
    }
}

/// A record is durable: it has this leaf index and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditReceipt {
    pub index: u64,
    pub time: Timestamp,
}

/// The upper bounds of [`BatchSizes`]' buckets: 1, 2, 4, … 4096 records.
pub const BATCH_SIZE_BOUNDS: [u64; 13] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];

/// Committed batches by their number of records: a histogram with fixed
/// buckets, kept in atomics by the writer (one `fetch_add` per batch).
///
/// `counts[i]` is the number of batches with more than `BATCH_SIZE_BOUNDS[i - 1]`
/// and at most `BATCH_SIZE_BOUNDS[i]` records (not cumulative); the last
/// count is for batches larger than every bound (`max_batch` above 4096).
/// Their sum is [`AuditStats::batches`]; the records in them,
/// [`AuditStats::records`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchSizes {
    pub counts: [u64; BATCH_SIZE_BOUNDS.len() + 1],
}

impl BatchSizes {
    /// The bucket a batch of `n` records falls in: the first bound `>= n`.
    pub fn bucket(n: u64) -> usize {
        let last = BATCH_SIZE_BOUNDS.len();
        n.checked_next_power_of_two()
            .map_or(last, |p| (p.trailing_zeros() as usize).min(last))
    }

    /// `(upper bound, batches)` per bucket, `None` for the last (no bound).
    pub fn buckets(&self) -> impl Iterator<Item = (Option<u64>, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .map(|(i, &n)| (BATCH_SIZE_BOUNDS.get(i).copied(), n))
    }

    /// Every batch counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// Counters since the log started, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Committed batches and the records in them.
    pub batches: u64,
    pub records: u64,
    /// The size of the most recent committed batch, and the largest so far.
    pub last_batch_size: u64,
    pub max_batch_size: u64,
    /// Batches that did not commit, and the records whose appends failed with them.
    pub failed_batches: u64,
    pub failed_records: u64,
    /// Of `failed_records`, those nobody waited for ([`AuditLog::append_later`]).
    pub failed_later_records: u64,
    /// Appends waiting for the writer right now.
    pub queued: u64,
    /// Records in the transaction being written right now.
    pub writing: u64,
    /// Committed batches by size.
    pub batch_sizes: BatchSizes,
    /// The record time of the latest committed batch, in Unix milliseconds.
    pub last_commit_unix_ms: Option<i64>,
}

#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    records: AtomicU64,
    last_batch_size: AtomicU64,
    max_batch_size: AtomicU64,
    failed_batches: AtomicU64,
    failed_records: AtomicU64,
    failed_later_records: AtomicU64,
    writing: AtomicU64,
    batch_sizes: [AtomicU64; BATCH_SIZE_BOUNDS.len() + 1],
    /// 0: nothing committed yet.
    last_commit_unix_ms: AtomicI64,
}

impl Counters {
    /// One committed batch of `n` records at `time`: atomics only, no lock.
    fn committed(&self, n: u64, time: Timestamp) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.records.fetch_add(n, Ordering::Relaxed);
        self.last_batch_size.store(n, Ordering::Relaxed);
        self.max_batch_size.fetch_max(n, Ordering::Relaxed);
        if let Some(bucket) = self.batch_sizes.get(BatchSizes::bucket(n)) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        let ms = i64::try_from(time.unix_millis()).unwrap_or(i64::MAX);
        self.last_commit_unix_ms.fetch_max(ms, Ordering::Relaxed);
    }

    fn batch_sizes(&self) -> BatchSizes {
        let mut sizes = BatchSizes::default();
        for (to, from) in sizes.counts.iter_mut().zip(&self.batch_sizes) {
            *to = from.load(Ordering::Relaxed);
        }
        sizes
    }
}

type Reply<T> = oneshot::Sender<Result<T, AuditError>>;

// Nearly every message is an `Append`: boxing the record would only add an
// allocation per record.
#[allow(clippy::large_enum_variant)]
enum Msg {
    /// A record, and what must still hold when its batch commits.
    Append(NewRecord, Reply<AuditReceipt>, Conditions),
    /// A record nobody waits for: written with the next batch somebody waits
    /// for, or after `later_linger`.
    Later(NewRecord),
    /// Answered after everything queued before it has been written.
    Flush(Reply<()>),
    /// Like `Flush`, then the writer stops and refuses everything after it.
    Close(Reply<()>),
}

/// What must hold in a record's own transaction for it to be written: what
/// the caller decided on may have changed since it was read (by this process
/// or by another replica), and the batch is where a change is seen for sure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Conditions {
    /// Take one use of the record's `consent_id`
    /// ([`AuditError::ConsentNotUsable`] when it cannot give one).
    pub consent_use: bool,
    /// No block of the record's `subject_ref` covers its `consumer` or its
    /// `dataset` ([`AuditError::SubjectBlocked`] otherwise): a decision made
    /// on cached blocks is written only if they still let it through.
    pub unblocked: bool,
}

/// A cloneable handle to the audit writer. The writer stops when the log is
/// closed or when every handle is dropped (after writing what is queued).
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Msg>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("stats", &self.stats())
            .finish()
    }
}

impl AuditLog {
    /// Spawns the writer on the current Tokio runtime.
    pub fn start(store: Store, config: AuditConfig) -> Result<AuditLog, AuditError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|e| AuditError::Start(e.to_string()))?;
        Ok(Self::start_on(store, config, &runtime))
    }

    /// Spawns the writer on `writer`, a runtime of the tasks that append,
    /// and its WAL checkpoints on the current runtime (or `writer`'s outside
    /// one). The writer gathers a batch by letting the other tasks of its
    /// runtime run ([`AuditConfig::gather_turns`]); on a runtime of its own
    /// those turns bring nothing, and batches stay small (#21: on the
    /// per-core runtime, 0.12 fsyncs a call against 0.07).
    pub fn start_on(
        store: Store,
        config: AuditConfig,
        writer: &tokio::runtime::Handle,
    ) -> AuditLog {
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let counters = Arc::new(Counters::default());
        let checkpoints = checkpoint_loop(store.clone(), tx.downgrade());
        match tokio::runtime::Handle::try_current() {
            Ok(current) => current.spawn(checkpoints),
            Err(_) => writer.spawn(checkpoints),
        };
        writer.spawn(write_loop(store, config, rx, counters.clone()));
        AuditLog { tx, counters }
    }

    /// Appends a record; resolves once the transaction holding it has
    /// committed durably, with the record's index and time.
    ///
    /// Never hangs once the writer is gone: a closed log or a vanished writer
    /// is [`AuditError::Closed`]. While the writer lives, each batch is bounded
    /// by the commit timeout, but waiting for room in a full queue is not:
    /// callers that need an answer in bounded time wrap this in a timeout.
    ///
    /// Cancelling after the record was queued does not take it back: it is
    /// still written, and the log then holds a record nobody was told about —
    /// the safe side for evidence.
    pub async fn append(&self, record: NewRecord) -> Result<AuditReceipt, AuditError> {
        self.send(record, Conditions::default()).await
    }

    /// [`AuditLog::append`] with `conditions` checked in the record's own
    /// transaction; a record whose conditions fail is not written, and
    /// this is the error that says which.
    pub async fn append_on(
        &self,
        record: NewRecord,
        conditions: Conditions,
    ) -> Result<AuditReceipt, AuditError> {
        if conditions.consent_use && record.consent_id.is_none() {
            return Err(AuditError::ConsentNotUsable);
        }
        self.send(record, conditions).await
    }

    /// Appends a decision under consent and takes one use of its
    /// `consent_id` in the same transaction, or neither: when the consent
    /// cannot give a use (revoked, expired, used up since it was read), the
    /// record is not written and this is [`AuditError::ConsentNotUsable`].
    /// The use costs no commit of its own: it rides in the batch.
    pub async fn append_using_consent(
        &self,
        record: NewRecord,
    ) -> Result<AuditReceipt, AuditError> {
        let conditions = Conditions {
            consent_use: true,
            unblocked: false,
        };
        self.append_on(record, conditions).await
    }

    /// Queues a record nobody waits for (an outcome record: the caller has
    /// its answer). It needs no commit of its own: it is written with the
    /// next batch somebody waits for, or after [`AuditConfig::later_linger`],
    /// and a flush or close writes it at once. A failed batch is counted in
    /// [`AuditStats::failed_records`] and logged by the writer.
    ///
    /// Never waits: when the queue is full the record comes back, for the
    /// caller to [`AuditLog::append_later_when_room`] it.
    pub fn append_later(&self, record: NewRecord) -> Result<(), LaterError> {
        match self.tx.try_send(Msg::Later(prepare(record))) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(Msg::Later(record))) => {
                Err(LaterError::Full(Box::new(record)))
            }
            Err(_) => Err(LaterError::Closed),
        }
    }

    /// [`AuditLog::append_later`] for a full queue: waits for room
    /// (back-pressure), not for the commit.
    pub async fn append_later_when_room(&self, record: NewRecord) -> Result<(), AuditError> {
        self.tx
            .send(Msg::Later(prepare(record)))
            .await
            .map_err(|_| AuditError::Closed)
    }

    async fn send(
        &self,
        record: NewRecord,
        conditions: Conditions,
    ) -> Result<AuditReceipt, AuditError> {
        let record = prepare(record);
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Msg::Append(record, reply, conditions))
            .await
            .map_err(|_| AuditError::Closed)?;
        answer.await.map_err(|_| AuditError::Closed)?
    }

    /// Waits until every record appended before this call has been handled.
    /// Returns the error of the batch that ended with this flush, if it failed
    /// (earlier batches answered their own appends).
    pub async fn flush(&self) -> Result<(), AuditError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Msg::Flush(reply))
            .await
            .map_err(|_| AuditError::Closed)?;
        answer.await.map_err(|_| AuditError::Closed)?
    }

    /// Graceful shutdown: writes everything queued before this call, then
    /// stops the writer; later appends (from any handle) get
    /// [`AuditError::Closed`]. Closing a closed log is `Ok`.
    pub async fn close(&self) -> Result<(), AuditError> {
        let (reply, answer) = oneshot::channel();
        if self.tx.send(Msg::Close(reply)).await.is_err() {
            return Ok(());
        }
        // No answer means another close got there first: closed all the same.
        answer.await.unwrap_or(Ok(()))
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    pub fn stats(&self) -> AuditStats {
        let c = &self.counters;
        let queued = self.tx.max_capacity() - self.tx.capacity();
        AuditStats {
            batches: c.batches.load(Ordering::Relaxed),
            records: c.records.load(Ordering::Relaxed),
            last_batch_size: c.last_batch_size.load(Ordering::Relaxed),
            max_batch_size: c.max_batch_size.load(Ordering::Relaxed),
            failed_batches: c.failed_batches.load(Ordering::Relaxed),
            failed_records: c.failed_records.load(Ordering::Relaxed),
            failed_later_records: c.failed_later_records.load(Ordering::Relaxed),
            queued: u64::try_from(queued).unwrap_or(u64::MAX),
            writing: c.writing.load(Ordering::Relaxed),
            batch_sizes: c.batch_sizes(),
            last_commit_unix_ms: Some(c.last_commit_unix_ms.load(Ordering::Relaxed))
                .filter(|&ms| ms != 0),
        }
    }
}

/// Why [`AuditLog::append_later`] did not queue a record.
#[derive(Debug, thiserror::Error)]
pub enum LaterError {
    /// The queue is full: the record, to send again when there is room.
    #[error("the audit queue is full")]
    Full(Box<NewRecord>),
    #[error("the audit log is closed")]
    Closed,
}

/// What every record goes through before it is queued.
fn prepare(mut record: NewRecord) -> NewRecord {
    // The leaf bytes are RFC 8785 JSON, whose numbers are exact only up
    // to 2^53 − 1; no byte count or duration gets there, and clamping
    // keeps one absurd value from failing the whole batch it lands in.
    let cap = |n: Option<u64>| n.map(|n| n.min(crate::canonical::MAX_SAFE_INTEGER));
    record.bytes = cap(record.bytes);
    record.duration_ms = cap(record.duration_ms);
    // Every record passes here: nothing a caller wrote reaches a leaf
    // with a person number in it, or unbounded.
    record.scrub();
    record
}

/// How often the WAL is checkpointed beside the appender. At 5,000 calls
/// a second and about 16 KB of WAL a call (bench/README.md) that is about
/// 20 MB, the size SQLite's own 1,000-page trigger reaches every 13 ms.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Checkpoints the WAL off the appender's path (SQLite; nothing on
/// PostgreSQL) until the log's writer is gone.
async fn checkpoint_loop(store: Store, log: mpsc::WeakSender<Msg>) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match log.upgrade() {
            Some(tx) if !tx.is_closed() => {}
            _ => return,
        }
        if let Err(e) = store.checkpoint_wal().await {
            // A busy database only postpones it; the next tick tries again.
            tracing::debug!(error = %e, "WAL checkpoint did not run");
        }
    }
}

async fn write_loop(
    store: Store,
    config: AuditConfig,
    mut rx: mpsc::Receiver<Msg>,
    counters: Arc<Counters>,
) {
    let max_batch = config.max_batch.max(1);
    let mut msgs = Vec::with_capacity(max_batch);
    let mut records = Vec::with_capacity(max_batch);
    let mut waiters = Vec::with_capacity(max_batch);
    let mut flushes = Vec::new();
    let mut consent_uses = Vec::new();
    let mut block_checks = Vec::new();
    // How many records the last batch had.
    let mut last_batch = 0;
    loop {
        // Waits for one message, then takes whatever else is already queued.
        let queued = rx.recv_many(&mut msgs, max_batch).await;
        if queued == 0 {
            return; // every handle dropped and nothing left to write
        }
        let mut gather = Gather::new(&config, queued, last_batch);
        let mut close = None;
        let mut waited = false;
        loop {
            for msg in msgs.drain(..) {
                match msg {
                    _ if close.is_some() => {} // after a close: dropped, its sender sees Closed
                    Msg::Append(record, reply, conditions) => {
                        if conditions.consent_use {
                            consent_uses.push(records.len());
                        }
                        if conditions.unblocked {
                            block_checks.push(records.len());
                        }
                        records.push(record);
                        waiters.push(Some(reply));
                        waited = true;
                    }
                    Msg::Later(record) => {
                        records.push(record);
                        waiters.push(None);
                    }
                    Msg::Flush(reply) => {
                        flushes.push(reply);
                        waited = true;
                    }
                    Msg::Close(reply) => {
                        close = Some(reply);
                        waited = true;
                    }
                }
            }
            let room = max_batch.saturating_sub(records.len());
            if room == 0 || close.is_some() || !flushes.is_empty() {
                break;
            }
            if waited {
                // Somebody waits: gather, under load, else commit now.
                if !gather.another_turn(records.len()) {
                    break;
                }
                tokio::task::yield_now().await;
                while msgs.len() < room {
                    match rx.try_recv() {
                        Ok(msg) => msgs.push(msg),
                        Err(_) => break,
                    }
                }
                if msgs.is_empty() {
                    break; // the turn brought nothing: commit
                }
                continue;
            }
            // Only records nobody waits for: give a record somebody waits
            // for the chance to take them along in its commit.
            match tokio::time::timeout(config.later_linger, rx.recv_many(&mut msgs, room)).await {
                Ok(0) | Err(_) => break, // every handle dropped, or lingered long enough
                Ok(_) => {}
            }
        }

        let n = records.len() as u64;
        last_batch = records.len();
        counters.writing.store(n, Ordering::Relaxed);
        let result = if records.is_empty() {
            Ok(None)
        } else {
            commit(
                &store,
                &mut records,
                &consent_uses,
                &block_checks,
                config.commit_timeout,
            )
            .await
            .map(Some)
        };
        counters.writing.store(0, Ordering::Relaxed);
        records.clear();
        consent_uses.clear();
        block_checks.clear();
        match &result {
            Ok(Some(done)) => {
                let n = n - done.refused.len() as u64 - done.blocked.len() as u64;
                // A batch whose every consent refused its use wrote nothing.
                if n > 0 {
                    counters.committed(n, done.time);
                }
                let mut index = done.first_index;
                for (position, reply) in waiters.drain(..).enumerate() {
                    // A waiter that gave up is no error: its record is written.
                    if done.refused.contains(&position) {
                        if let Some(reply) = reply {
                            let _ = reply.send(Err(AuditError::ConsentNotUsable));
                        }
                        continue;
                    }
                    if done.blocked.contains(&position) {
                        if let Some(reply) = reply {
                            let _ = reply.send(Err(AuditError::SubjectBlocked));
                        }
                        continue;
                    }
                    if let Some(reply) = reply {
                        let _ = reply.send(Ok(AuditReceipt {
                            index,
                            time: done.time,
                        }));
                    }
                    index += 1;
                }
            }
            Ok(None) => {}
            Err(e) => {
                counters.failed_batches.fetch_add(1, Ordering::Relaxed);
                counters.failed_records.fetch_add(n, Ordering::Relaxed);
                let later = waiters.iter().filter(|w| w.is_none()).count() as u64;
                counters
                    .failed_later_records
                    .fetch_add(later, Ordering::Relaxed);
                tracing::warn!(error = %e, records = n, lost_later = later, "audit batch did not commit");
                // Records nobody waits for are lost with the batch: counted
                // above and in this warning, which says how many.
                for reply in waiters.drain(..).flatten() {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
        let done = result.map(|_| ());
        for reply in flushes.drain(..) {
            let _ = reply.send(done.clone());
        }
        if let Some(reply) = close {
            // Refuse new sends; dropping `rx` on return drops whatever is
            // still queued, and each of those appends then sees Closed.
            rx.close();
            let _ = reply.send(done);
            return;
        }
    }
}

/// Whether a batch somebody waits for may still gather records.
struct Gather {
    /// As many records as the last batch had; 0 when not under load.
    target: usize,
    turns_left: u32,
}

impl Gather {
    /// Gathers only under load: more than one message was queued when the
    /// writer looked, so records arrive faster than batches commit.
    fn new(config: &AuditConfig, queued: usize, last_batch: usize) -> Self {
        Gather {
            target: if queued > 1 { last_batch } else { 0 },
            turns_left: config.gather_turns,
        }
    }

    /// Whether to let the other tasks run once more, holding `have` records.
    fn another_turn(&mut self, have: usize) -> bool {
        if have >= self.target || self.turns_left == 0 {
            return false;
        }
        self.turns_left -= 1;
        true
    }
}

async fn commit(
    store: &Store,
    records: &mut [NewRecord],
    consent_uses: &[usize],
    block_checks: &[usize],
    timeout: Duration,
) -> Result<BatchCommit, AuditError> {
    let batch = store.append_batch(records, consent_uses, block_checks);
    match tokio::time::timeout(timeout, batch).await {
        Ok(result) => result.map_err(AuditError::from),
        // The transaction is dropped unfinished and rolls back; if the
        // commit itself was under way it may still land, so the records may
        // exist although their appends failed — never the other way round.
        Err(_) => Err(AuditError::Unavailable(format!(
            "commit did not finish within {timeout:?}"
        ))),
    }
}

#[cfg(test)]
mod tests;
