//! Tree nodes keyed by the tree size at which they complete (migration
//! 0014): a store made by migrations up to 0013 upgrades in place and keeps
//! its root and proofs, and each committed batch's nodes are one contiguous
//! run of the key.
#![allow(clippy::unwrap_used)]

mod support;

use std::borrow::Cow;
use std::time::Duration;

use consent_db::merkle::{self, Frontier, Hash, NodeId};
use consent_db::{AuditConfig, AuditLog, NewRecord, RecordFilter, RecordKind, Store, StoreConfig};
use sqlx::Connection;

use support::test_url;

/// A raw connection to the test's database, either backend.
enum Raw {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Raw {
    async fn connect(url: &str) -> Raw {
        if url.starts_with("postgres") {
            Raw::Postgres(sqlx::PgConnection::connect(url).await.unwrap())
        } else {
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(url.trim_start_matches("sqlite://"))
                .create_if_missing(true);
            Raw::Sqlite(
                sqlx::SqliteConnection::connect_with(&options)
                    .await
                    .unwrap(),
            )
        }
    }

    /// Applies the store's own migrations up to `version` only.
    async fn migrate_until(&mut self, version: i64) {
        let folder = match self {
            Raw::Sqlite(_) => "sqlite",
            Raw::Postgres(_) => "postgres",
        };
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(folder);
        let mut migrator = sqlx::migrate::Migrator::new(dir).await.unwrap();
        let older: Vec<_> = migrator
            .migrations
            .iter()
            .filter(|m| m.version <= version)
            .cloned()
            .collect();
        assert_eq!(older.len() as i64, version, "migrations 1..={version}");
        migrator.migrations = Cow::Owned(older);
        match self {
            Raw::Sqlite(c) => migrator.run(c).await.unwrap(),
            Raw::Postgres(c) => migrator.run(c).await.unwrap(),
        }
    }

    /// One statement with i64 and blob parameters, in `$n` form (both).
    async fn exec(&mut self, sql: &str, args: &[Arg<'_>]) {
        match self {
            Raw::Sqlite(c) => {
                let mut q = sqlx::query(sql);
                for a in args {
                    q = match a {
                        Arg::Int(i) => q.bind(*i),
                        Arg::Text(t) => q.bind(t.to_string()),
                        Arg::Blob(b) => q.bind(b.to_vec()),
                    };
                }
                q.execute(c).await.unwrap();
            }
            Raw::Postgres(c) => {
                let mut q = sqlx::query(sql);
                for a in args {
                    q = match a {
                        Arg::Int(i) => q.bind(*i),
                        Arg::Text(t) => q.bind(t.to_string()),
                        Arg::Blob(b) => q.bind(b.to_vec()),
                    };
                }
                q.execute(c).await.unwrap();
            }
        }
    }

    /// The stored nodes with a size in `(after, upto]`, in key order.
    async fn nodes_by_size(&mut self, after: i64, upto: i64) -> Vec<(i64, i64, Vec<u8>)> {
        const SQL: &str = "SELECT size, level, hash FROM tree_nodes \
             WHERE size > $1 AND size <= $2 ORDER BY size, level";
        match self {
            Raw::Sqlite(c) => sqlx::query_as(SQL)
                .bind(after)
                .bind(upto)
                .fetch_all(c)
                .await
                .unwrap(),
            Raw::Postgres(c) => sqlx::query_as(SQL)
                .bind(after)
                .bind(upto)
                .fetch_all(c)
                .await
                .unwrap(),
        }
    }

    async fn heads(&mut self) -> Vec<i64> {
        const SQL: &str = "SELECT size FROM tree_heads ORDER BY size";
        match self {
            Raw::Sqlite(c) => sqlx::query_scalar(SQL).fetch_all(c).await.unwrap(),
            Raw::Postgres(c) => sqlx::query_scalar(SQL).fetch_all(c).await.unwrap(),
        }
    }
}

enum Arg<'a> {
    Int(i64),
    Text(&'a str),
    Blob(&'a [u8]),
}

async fn open(url: &str) -> Store {
    let config = StoreConfig {
        busy_timeout: Duration::from_millis(500),
        ..StoreConfig::default()
    };
    Store::open_with(url, &config).await.unwrap()
}

fn record(i: usize) -> NewRecord {
    let mut r = NewRecord::new(
        RecordKind::Decision,
        format!("t-{i}"),
        "GET",
        "/data/k429/sosialtjeneste",
    );
    r.consumer = Some("0192:983440002".into());
    r.dataset = Some("k429/sosialtjeneste".into());
    r
}

async fn leaves(store: &Store) -> Vec<Hash> {
    store
        .records(&RecordFilter {
            limit: Some(10_000),
            ..RecordFilter::default()
        })
        .await
        .unwrap()
        .iter()
        .map(|r| r.leaf_hash().unwrap())
        .collect()
}

/// Every node the tree of `leaves` holds, with the size it completes at.
fn all_nodes(leaves: &[Hash]) -> Vec<(NodeId, Hash)> {
    let mut f = Frontier::new();
    let mut nodes = Vec::new();
    for leaf in leaves {
        f.push(*leaf, |id, h| nodes.push((id, *h)));
    }
    nodes
}

fn assert_proofs(leaves: &[Hash], root: &Hash, proofs: &[(u64, Vec<Hash>)]) {
    let size = leaves.len() as u64;
    for (index, proof) in proofs {
        merkle::verify_inclusion(
            *index,
            size,
            &leaves[usize::try_from(*index).unwrap()],
            proof,
            root,
        )
        .unwrap();
    }
}

async fn inclusion_proofs(store: &Store, size: u64) -> Vec<(u64, Vec<Hash>)> {
    let mut out = Vec::new();
    for index in [0, 1, 2, 127, 128, 200, size - 2, size - 1] {
        out.push((index, store.inclusion_proof(index, size).await.unwrap()));
    }
    out
}

/// A store made by migrations 0001..0013, holding records and the tree in
/// the old (level, idx) key, is upgraded by `migrate` to the (size, level)
/// key with the same nodes, so its root and every proof stay the same, and
/// it grows on from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_keyed_by_level_and_index_upgrades_with_the_same_root_and_proofs() {
    const RECORDS: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let url = test_url(dir.path());
    let mut raw = Raw::connect(&url).await;
    raw.migrate_until(13).await;

    // Records as the old build wrote them; their leaves are computed from
    // the rows they read back as (the canonical bytes cover every column).
    for i in 0..RECORDS {
        raw.exec(
            "INSERT INTO audit_records (idx, time, transfer_id, kind, method, path) \
             VALUES ($1, '2026-01-01T00:00:00.000Z', $2, 'decision', 'GET', '/data/')",
            &[Arg::Int(i as i64), Arg::Text(&format!("old-{i}"))],
        )
        .await;
    }
    let store = open(&url).await;
    let leaves = leaves(&store).await;
    assert_eq!(leaves.len(), RECORDS);
    let nodes = all_nodes(&leaves);
    for (id, h) in &nodes {
        raw.exec(
            "INSERT INTO tree_nodes (level, idx, hash) VALUES ($1, $2, $3)",
            &[
                Arg::Int(i64::from(id.level)),
                Arg::Int(id.index as i64),
                Arg::Blob(h),
            ],
        )
        .await;
    }
    for size in [100, RECORDS] {
        let root = merkle::root_of(&leaves[..size]);
        raw.exec(
            "INSERT INTO tree_heads (size, root, time) VALUES ($1, $2, '2026-01-01T00:00:00.000Z')",
            &[Arg::Int(size as i64), Arg::Blob(&root)],
        )
        .await;
    }
    // The old schema answers the old proofs.
    let root = merkle::root_of(&leaves);
    let head = store.tree_head().await.unwrap();
    assert_eq!((head.size, head.root), (RECORDS as u64, root));

    store.migrate().await.unwrap();

    // Every node is still there, now under the size it completes at.
    let stored = raw.nodes_by_size(0, i64::MAX).await;
    let expected: Vec<(i64, i64, Vec<u8>)> = {
        let mut v: Vec<_> = nodes
            .iter()
            .map(|(id, h)| (id.end() as i64, i64::from(id.level), h.to_vec()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(stored, expected);
    let head = store.tree_head().await.unwrap();
    assert_eq!((head.size, head.root), (RECORDS as u64, root));
    assert_eq!(
        store.root_at(100).await.unwrap(),
        merkle::root_of(&leaves[..100])
    );
    assert_proofs(
        &leaves,
        &root,
        &inclusion_proofs(&store, RECORDS as u64).await,
    );
    let consistency = store.consistency_proof(100, RECORDS as u64).await.unwrap();
    merkle::verify_consistency(
        100,
        RECORDS as u64,
        &consistency,
        &merkle::root_of(&leaves[..100]),
        &root,
    )
    .unwrap();
    // The tiles' reads: a level's nodes in index order.
    let level_1: Vec<Hash> = nodes
        .iter()
        .filter(|(id, _)| id.level == 1)
        .map(|(_, h)| *h)
        .collect();
    assert_eq!(
        store
            .subtree_hashes(1, 0, level_1.len() as u64)
            .await
            .unwrap(),
        level_1
    );

    // The upgraded tree grows on.
    let log = AuditLog::start(store.clone(), AuditConfig::default()).unwrap();
    for i in 0..20 {
        log.append(record(i)).await.unwrap();
    }
    log.close().await.unwrap();
    let leaves = self::leaves(&store).await;
    assert_eq!(leaves.len(), RECORDS + 20);
    let head = store.tree_head().await.unwrap();
    assert_eq!(head.root, merkle::root_of(&leaves));
    assert_proofs(
        &leaves,
        &head.root,
        &inclusion_proofs(&store, head.size).await,
    );

    // Still append-only.
    let refused = match &mut raw {
        Raw::Sqlite(c) => sqlx::query("DELETE FROM tree_nodes WHERE size = 1")
            .execute(c)
            .await
            .is_err(),
        Raw::Postgres(c) => sqlx::query("DELETE FROM tree_nodes WHERE size = 1")
            .execute(c)
            .await
            .is_err(),
    };
    assert!(refused, "tree nodes must stay append-only after 0014");
}

/// Each committed batch (one tree head) wrote exactly the nodes that
/// complete between the previous head and its own: the rows with a size in
/// (previous size, its size], one contiguous run of the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batchs_nodes_are_one_contiguous_run_of_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_url(dir.path());
    let store = open(&url).await;
    store.migrate().await.unwrap();
    let log = AuditLog::start(store.clone(), AuditConfig::default()).unwrap();
    // Concurrent appends, so batches of several records form.
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move { log.append(record(i)).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    log.close().await.unwrap();

    let leaves = leaves(&store).await;
    assert_eq!(leaves.len(), 200);
    let mut raw = Raw::connect(&url).await;
    let heads = raw.heads().await;
    assert_eq!(heads.last(), Some(&200));
    let mut f = Frontier::new();
    let mut previous = 0i64;
    for size in heads {
        let mut batch = Vec::new();
        for leaf in &leaves[previous as usize..size as usize] {
            f.push(*leaf, |id, h| {
                batch.push((id.end() as i64, i64::from(id.level), h.to_vec()))
            });
        }
        assert_eq!(
            raw.nodes_by_size(previous, size).await,
            batch,
            "the batch ({previous}, {size}]"
        );
        previous = size;
    }
    // Nothing beyond the last head.
    assert!(raw.nodes_by_size(previous, i64::MAX).await.is_empty());
}
