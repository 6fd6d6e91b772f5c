//! The transparency log against a real SQLite file: the tree the appends
//! build, proofs from stored nodes, reopening, catching up an old log, and
//! `verify` against every kind of tampering.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;
use std::time::Duration;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use consent_db::merkle::{self, Hash};
use consent_db::{
    note, AuditConfig, AuditLog, NewRecord, ProofQueryError, RecordFilter, RecordKind, Store,
    StoreConfig, Verdict, VerifyError,
};
use sqlx::Connection;
use tempfile::TempDir;

struct Fixture {
    _dir: TempDir,
    path: PathBuf,
    url: String,
    key: Ed25519KeyPair,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bru.db");
        let url = test_url(dir.path());
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        Fixture {
            _dir: dir,
            path,
            url,
            key,
        }
    }

    async fn store(&self) -> Store {
        let config = StoreConfig {
            busy_timeout: Duration::from_millis(500),
            ..StoreConfig::default()
        };
        let store = Store::open_with(&self.url, &config).await.unwrap();
        store.migrate().await.unwrap();
        store
    }

    fn public(&self) -> [u8; 32] {
        self.key.public_key().as_ref().try_into().unwrap()
    }

    /// Signs and stores a checkpoint of the current tree head.
    async fn checkpoint(&self, store: &Store) -> u64 {
        let head = store.tree_head().await.unwrap();
        let cp = note::Checkpoint {
            origin: "bru.test/bru-log".into(),
            size: head.size,
            root: head.root,
        };
        store
            .add_checkpoint(head.size, &head.root, &note::sign(&cp, &self.key).unwrap())
            .await
            .unwrap();
        head.size
    }

    /// A raw connection with the append-only triggers dropped, as an
    /// attacker with the file would have.
    async fn attacker(&self) -> sqlx::SqliteConnection {
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&self.path);
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .unwrap();
        for t in [
            "audit_records_no_update",
            "audit_records_no_delete",
            "tree_nodes_no_update",
            "tree_nodes_no_delete",
            "tree_heads_no_update",
            "tree_heads_no_delete",
            "checkpoints_no_update",
            "checkpoints_no_delete",
        ] {
            sqlx::query(&format!("DROP TRIGGER IF EXISTS {t}"))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        conn
    }

    async fn verify(&self, store: &Store) -> Result<consent_db::VerifySummary, VerifyError> {
        consent_db::verify(store, &self.public(), &mut |_| {}).await
    }
}

async fn exec(conn: &mut sqlx::SqliteConnection, sql: &str) {
    sqlx::query(sql).execute(&mut *conn).await.unwrap();
}

use support::test_url;

/// True (with the reason printed) when a test that needs the SQLite file
/// itself runs under PostgreSQL.
fn skip_on_postgres(url: &str, why: &str) -> bool {
    if url.starts_with("postgres") {
        eprintln!("skipped on PostgreSQL: {why}");
        return true;
    }
    false
}

fn record(i: usize) -> NewRecord {
    let mut r = NewRecord::new(
        RecordKind::Decision,
        format!("t-{i}"),
        "GET",
        "/data/k429/sosialtjeneste",
    );
    r.consumer = Some("0192:983440002".into());
    r.provider = Some("k429".into());
    r.dataset = Some("k429/sosialtjeneste".into());
    r.purpose = Some("sosialhjelp-saksbehandling".into());
    // Non-ASCII and a control character: the leaf bytes must be RFC 8785.
    r.legal_ref = Some(format!("sosialtjenesteloven § 43 ø\u{1}{i}"));
    r.subject_ref = Some(format!("s-{}", i % 3));
    r.decision = Some(Verdict::Allow);
    r
}

/// Appends `batches[k]` records concurrently per batch, so batches of
/// several records form.
async fn append(log: &AuditLog, from: usize, n: usize) {
    let tasks: Vec<_> = (from..from + n)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move { log.append(record(i)).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

async fn leaves(store: &Store) -> Vec<Hash> {
    store
        .records(&RecordFilter::default())
        .await
        .unwrap()
        .iter()
        .map(|r| r.leaf_hash().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_build_the_rfc9162_tree_and_its_proofs_verify() {
    let fx = Fixture::new();
    let store = fx.store().await;
    assert_eq!(store.tree_head().await.unwrap().size, 0);
    assert_eq!(store.tree_head().await.unwrap().root, merkle::empty_root());
    let log = AuditLog::start(store.clone(), AuditConfig::default()).unwrap();
    append(&log, 0, 45).await;
    append(&log, 45, 1).await;
    append(&log, 46, 30).await;

    let leaves = leaves(&store).await;
    assert_eq!(leaves.len(), 76);
    let head = store.tree_head().await.unwrap();
    assert_eq!(head.size, 76);
    assert_eq!(head.root, merkle::root_of(&leaves));

    for size in 1..=76u64 {
        let root = store.root_at(size).await.unwrap();
        assert_eq!(
            root,
            merkle::root_of(&leaves[..size as usize]),
            "root at {size}"
        );
        for index in (0..size).step_by(7) {
            let proof = store.inclusion_proof(index, size).await.unwrap();
            merkle::verify_inclusion(index, size, &leaves[index as usize], &proof, &root).unwrap();
        }
        for from in (1..=size).step_by(5) {
            let proof = store.consistency_proof(from, size).await.unwrap();
            let old = merkle::root_of(&leaves[..from as usize]);
            merkle::verify_consistency(from, size, &proof, &old, &root).unwrap();
        }
    }

    // Out of range: beyond the tree, index not below size, from > to, from 0.
    for result in [
        store.inclusion_proof(0, 77).await,
        store.inclusion_proof(76, 76).await,
        store.inclusion_proof(0, 0).await,
        store.consistency_proof(5, 4).await,
        store.consistency_proof(0, 4).await,
        store.consistency_proof(1, 77).await,
    ] {
        assert!(
            matches!(result, Err(ProofQueryError::OutOfRange(_))),
            "{result:?}"
        );
    }
    let record = store.record_at(3).await.unwrap().unwrap();
    assert_eq!(record.index, 3);
    assert!(store.record_at(76).await.unwrap().is_none());
    let summary = fx.verify(&store).await.unwrap();
    assert_eq!(summary.records, 76);
    assert_eq!(summary.root, head.root);
}

/// Two handles on one store (two processes on one SQLite file, two replicas
/// on one PostgreSQL database) append in turns: each handle's remembered
/// right edge of the tree goes stale when the other appends, and the tree
/// must still cover every record exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_on_one_store_grow_one_tree() {
    let fx = Fixture::new();
    let a = fx.store().await;
    let b = fx.store().await;
    let log_a = AuditLog::start(a.clone(), AuditConfig::default()).unwrap();
    let log_b = AuditLog::start(b.clone(), AuditConfig::default()).unwrap();
    let mut next = 0;
    for (log, n) in [
        (&log_a, 10),
        (&log_b, 7),
        (&log_a, 5),
        (&log_a, 1),
        (&log_b, 3),
        (&log_a, 4),
    ] {
        append(log, next, n).await;
        next += n;
    }
    // Quotes, backslashes and a slash survive the store's JSON path exactly.
    let mut odd = record(next);
    odd.path = "/data/k429/sosialtjeneste/\"q\"\\x\u{7f}".into();
    odd.code = Some("a\tb".into());
    log_b.append(odd.clone()).await.unwrap();
    next += 1;
    for store in [&a, &b] {
        let records = store.records(&RecordFilter::default()).await.unwrap();
        assert_eq!(records.len(), next);
        assert!(records.iter().enumerate().all(|(i, r)| r.index == i as u64));
        let last = records.last().unwrap();
        assert_eq!(
            (last.path.as_str(), last.code.as_deref()),
            (odd.path.as_str(), odd.code.as_deref())
        );
        let head = store.tree_head().await.unwrap();
        assert_eq!(head.size, next as u64);
        assert_eq!(head.root, merkle::root_of(&leaves(store).await));
        assert_eq!(fx.verify(store).await.unwrap().records, next as u64);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_continues_the_same_tree_from_the_same_head() {
    let fx = Fixture::new();
    let first = {
        let store = fx.store().await;
        let log = AuditLog::start(store.clone(), AuditConfig::default()).unwrap();
        append(&log, 0, 13).await;
        log.close().await.unwrap();
        fx.checkpoint(&store).await;
        let head = store.tree_head().await.unwrap();
        store.close().await;
        head
    };
    let store = fx.store().await;
    assert_eq!(store.tree_head().await.unwrap(), first);
    let log = AuditLog::start(store.clone(), AuditConfig::default()).unwrap();
    append(&log, 13, 20).await;
    fx.checkpoint(&store).await;
    let second = store.tree_head().await.unwrap();
    assert_eq!(second.size, 33);
    assert_eq!(second.root, merkle::root_of(&leaves(&store).await));
    let proof = store
        .consistency_proof(first.size, second.size)
        .await
        .unwrap();
    merkle::verify_consistency(first.size, second.size, &proof, &first.root, &second.root).unwrap();
    let checkpoint = store.latest_checkpoint().await.unwrap().unwrap();
    assert_eq!(note::open(&checkpoint.note, &fx.public()).unwrap().size, 33);
    assert_eq!(fx.verify(&store).await.unwrap().checkpoints, 2);
}

#[tokio::test]
async fn a_log_without_a_tree_is_caught_up_when_migrating() {
    let fx = Fixture::new();
    if skip_on_postgres(&fx.url, "edits the SQLite file as an attacker would") {
        return;
    }
    let store = fx.store().await;
    let log = AuditLog::start(store.clone(), AuditConfig::default()).unwrap();
    append(&log, 0, 3).await;
    log.close().await.unwrap();
    // Records written behind the tree's back, as by a build before 0002.
    let mut conn = fx.attacker().await;
    for i in 3..2100i64 {
        sqlx::query(
            "INSERT INTO audit_records (idx, time, transfer_id, kind, method, path) \
             VALUES (?, '2026-01-01T00:00:00.000Z', ?, 'decision', 'GET', '/data/')",
        )
        .bind(i)
        .bind(format!("old-{i}"))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    conn.close().await.unwrap();
    assert_eq!(store.tree_head().await.unwrap().size, 3);
    store.migrate().await.unwrap();
    let head = store.tree_head().await.unwrap();
    assert_eq!(head.size, 2100);
    assert_eq!(head.root, merkle::root_of(&leaves(&store).await));
    fx.verify(&store).await.unwrap();
}

#[tokio::test]
async fn the_heartbeat_writes_and_fails_while_the_store_is_locked() {
    let fx = Fixture::new();
    if skip_on_postgres(&fx.url, "locks the SQLite file from outside") {
        return;
    }
    let store = fx.store().await;
    store.heartbeat().await.unwrap();
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&fx.path);
    let mut lock = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    exec(&mut lock, "BEGIN EXCLUSIVE").await;
    assert!(store.heartbeat().await.is_err());
    exec(&mut lock, "ROLLBACK").await;
    store.heartbeat().await.unwrap();
}

// ---- tampering ---------------------------------------------------------

/// 40 records in several batches, checkpoints at 20 and 40.
async fn signed_log(fx: &Fixture) -> Store {
    let store = fx.store().await;
    let log = AuditLog::start(store.clone(), AuditConfig::default()).unwrap();
    append(&log, 0, 20).await;
    fx.checkpoint(&store).await;
    append(&log, 20, 20).await;
    log.close().await.unwrap();
    fx.checkpoint(&store).await;
    let summary = fx.verify(&store).await.unwrap();
    assert_eq!((summary.records, summary.checkpoints), (40, 2));
    store
}

async fn expect_tampered(fx: &Fixture, store: &Store, index: Option<u64>, words: &[&str]) {
    match fx.verify(store).await {
        Err(VerifyError::Tampered(t)) => {
            assert_eq!(t.index, index, "{t}");
            for w in words {
                assert!(t.reason.contains(w), "{w:?} not in {t}");
            }
        }
        other => panic!("expected tampering at {index:?}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_record_is_found_at_its_index() {
    let fx = Fixture::new();
    if skip_on_postgres(&fx.url, "edits the SQLite file as an attacker would") {
        return;
    }
    let store = signed_log(&fx).await;
    let mut db = fx.attacker().await;
    exec(
        &mut db,
        "UPDATE audit_records SET decision = 'deny' WHERE idx = 17",
    )
    .await;
    expect_tampered(&fx, &store, Some(17), &["changed"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_record_is_found_at_its_index() {
    let fx = Fixture::new();
    if skip_on_postgres(&fx.url, "edits the SQLite file as an attacker would") {
        return;
    }
    let store = signed_log(&fx).await;
    let mut db = fx.attacker().await;
    exec(&mut db, "DELETE FROM audit_records WHERE idx = 9").await;
    expect_tampered(&fx, &store, Some(9), &["missing", "deleted"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_and_renumbered_record_is_found_at_its_index() {
    let fx = Fixture::new();
    if skip_on_postgres(&fx.url, "edits the SQLite file as an attacker would") {
        return;
    }
    let store = signed_log(&fx).await;
    let mut db = fx.attacker().await;
    exec(&mut db, "DELETE FROM audit_records WHERE idx = 9").await;
    exec(
        &mut db,
        "UPDATE audit_records SET idx = idx + 1000 WHERE idx > 9",
    )
    .await;
    exec(
        &mut db,
        "UPDATE audit_records SET idx = idx - 1001 WHERE idx > 1000",
    )
    .await;
    expect_tampered(&fx, &store, Some(9), &["removed"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inserted_record_is_found_at_its_index() {
    let fx = Fixture::new();
    if skip_on_postgres(&fx.url, "edits the SQLite file as an attacker would") {
        return;
    }
    let store = signed_log(&fx).await;
    let mut db = fx.attacker().await;
    exec(
        &mut db,
        "UPDATE audit_records SET idx = idx + 1000 WHERE idx >= 5",
    )
    .await;
    exec(
        &mut db,
        "UPDATE audit_records SET idx = idx - 999 WHERE idx >= 1000",
    )
    .await;
    exec(
        &mut db,
        "INSERT INTO audit_records (idx, time, transfer_id, kind, method, path) \
         SELECT 5, time, 'forged', 'decision', 'GET', '/data/' FROM audit_records WHERE idx = 4",
    )
    .await;
    expect_tampered(&fx, &store, Some(5), &["inserted"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_appended_record_behind_the_logs_back_is_found() {
    let fx = Fixture::new();
    if skip_on_postgres(&fx.url, "edits the SQLite file as an attacker would") {
        return;
    }
    let store = signed_log(&fx).await;
    let mut db = fx.attacker().await;
    exec(
        &mut db,
        "INSERT INTO audit_records (idx, time, transfer_id, kind, method, path) \
         SELECT 40, time, 'forged', 'decision', 'GET', '/data/' FROM audit_records WHERE idx = 39",
    )
    .await;
    expect_tampered(&fx, &store, Some(40), &["inserted"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordered_records_are_found_at_the_first_index() {
    let fx = Fixture::new();
    if skip_on_postgres(&fx.url, "edits the SQLite file as an attacker would") {
        return;
    }
    let store = signed_log(&fx).await;
    let mut db = fx.attacker().await;
    exec(
        &mut db,
        "UPDATE audit_records SET idx = 1000 WHERE idx = 12",
    )
    .await;
    exec(&mut db, "UPDATE audit_records SET idx = 12 WHERE idx = 30").await;
    exec(
        &mut db,
        "UPDATE audit_records SET idx = 30 WHERE idx = 1000",
    )
    .await;
    expect_tampered(
        &fx,
        &store,
        Some(12),
        &["reordered", "now at index 30", "swapped"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_tail_below_a_checkpoint_is_found() {
    let fx = Fixture::new();
    if skip_on_postgres(&fx.url, "edits the SQLite file as an attacker would") {
        return;
    }
    let store = signed_log(&fx).await;
    let mut db = fx.attacker().await;
    // The attacker removes the records and the tree state, but cannot
    // unsign the checkpoint at 40 that others may hold.
    exec(&mut db, "DELETE FROM audit_records WHERE idx >= 33").await;
    exec(&mut db, "DELETE FROM tree_nodes WHERE size > 33").await;
    exec(&mut db, "DELETE FROM tree_heads WHERE size > 33").await;
    expect_tampered(&fx, &store, Some(33), &["truncated", "checkpoint"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_checkpoint_signature_is_found() {
    let fx = Fixture::new();
    if skip_on_postgres(&fx.url, "edits the SQLite file as an attacker would") {
        return;
    }
    let store = signed_log(&fx).await;
    let mut db = fx.attacker().await;
    // Re-signed by another key, over the same tree head.
    let other = Fixture::new();
    let head = store.tree_head().await.unwrap();
    let cp = note::Checkpoint {
        origin: "bru.test/bru-log".into(),
        size: head.size,
        root: head.root,
    };
    let forged = note::sign(&cp, &other.key).unwrap();
    sqlx::query("UPDATE checkpoints SET note = ? WHERE size = 40")
        .bind(forged)
        .execute(&mut db)
        .await
        .unwrap();
    expect_tampered(
        &fx,
        &store,
        None,
        &[
            "checkpoint",
            "not signed by the checkpoint key",
            "tree size 40",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_with_the_tree_state_rewritten_to_match_is_caught_by_the_checkpoint() {
    let fx = Fixture::new();
    if skip_on_postgres(&fx.url, "edits the SQLite file as an attacker would") {
        return;
    }
    let store = signed_log(&fx).await;
    let mut db = fx.attacker().await;
    exec(
        &mut db,
        "UPDATE audit_records SET decision = 'deny' WHERE idx = 25",
    )
    .await;
    // Rewrite the whole tree state from the altered records.
    let leaves = leaves(&store).await;
    exec(&mut db, "DELETE FROM tree_nodes").await;
    exec(&mut db, "DELETE FROM tree_heads").await;
    let mut f = merkle::Frontier::new();
    let mut nodes = Vec::new();
    for leaf in &leaves {
        f.push(*leaf, |id, h| nodes.push((id, *h)));
    }
    for (id, h) in nodes {
        sqlx::query("INSERT INTO tree_nodes (size, level, hash) VALUES (?, ?, ?)")
            .bind(id.end() as i64)
            .bind(i64::from(id.level))
            .bind(h.to_vec())
            .execute(&mut db)
            .await
            .unwrap();
    }
    sqlx::query(
        "INSERT INTO tree_heads (size, root, time) VALUES (40, ?, '2026-01-01T00:00:00.000Z')",
    )
    .bind(f.root().to_vec())
    .execute(&mut db)
    .await
    .unwrap();
    expect_tampered(&fx, &store, None, &["checkpoint", "20..39"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_altered_interior_node_is_found() {
    let fx = Fixture::new();
    if skip_on_postgres(&fx.url, "edits the SQLite file as an attacker would") {
        return;
    }
    let store = signed_log(&fx).await;
    let mut db = fx.attacker().await;
    exec(
        &mut db,
        "UPDATE tree_nodes SET hash = zeroblob(32) WHERE level = 2 AND size = 16",
    )
    .await;
    expect_tampered(&fx, &store, Some(12), &["tree node (level 2, index 3)"]).await;
}

#[tokio::test]
async fn an_empty_log_verifies() {
    let fx = Fixture::new();
    let store = fx.store().await;
    let summary = fx.verify(&store).await.unwrap();
    assert_eq!(summary.records, 0);
    assert_eq!(summary.root, merkle::empty_root());
}

/// Two store handles on one database stand for two gateway replicas: their
/// appends interleave, yet the log stays dense in commit order, every
/// record is a leaf, and the whole log verifies. Only one signs checkpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_writers_on_one_database_keep_one_dense_verifiable_log() {
    let fx = Fixture::new();
    let a = fx.store().await;
    let b = fx.store().await;
    let log_a = AuditLog::start(a.clone(), AuditConfig::default()).unwrap();
    let log_b = AuditLog::start(b.clone(), AuditConfig::default()).unwrap();
    tokio::join!(append(&log_a, 0, 150), append(&log_b, 150, 150));
    let records = a.records(&Default::default()).await.unwrap();
    let indexes: Vec<u64> = records.iter().map(|r| r.index).collect();
    assert_eq!(indexes, (0..300).collect::<Vec<u64>>());
    let mut ids: Vec<&str> = records.iter().map(|r| r.transfer_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 300, "every record once");
    assert_eq!(b.tree_head().await.unwrap().size, 300);
    fx.checkpoint(&b).await;
    let summary = fx.verify(&a).await.unwrap();
    assert_eq!(summary.records, 300, "{summary:?}");

    log_a.close().await.unwrap();
    log_b.close().await.unwrap();

    let first = a.try_become_checkpointer().await.unwrap();
    let second = b.try_become_checkpointer().await.unwrap();
    if fx.url.starts_with("postgres") {
        assert!(first && !second, "one signer at a time: {first} {second}");
        assert!(
            a.try_become_checkpointer().await.unwrap(),
            "the holder keeps it"
        );
        // The holder goes away (its session ends): the other takes over.
        a.close().await;
        assert!(b.try_become_checkpointer().await.unwrap());
    } else {
        eprintln!("SQLite: one process per file, every handle may sign");
        assert!(first && second);
    }
}
