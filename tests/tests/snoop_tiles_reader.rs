//! Bru's public tiles (SPEC 11) read by a third-party C2SP tlog-tiles
//! client: the `tlog_tiles` crate (Cloudflare's Rust port of Go's
//! `golang.org/x/mod/sumdb/tlog`), not Bru's code nor tests/read_tiles.py.
//! Over more than 256 records, so a full tile, a partial tile and a level-1
//! tile are read. The crate plans which tiles a tree needs, authenticates
//! them against the checkpoint's root hash (`TileHashReader`), and proves
//! records into that root; the records' leaf hashes come from the audit
//! API's JSON in RFC 8785 form. (The crate does not check note signatures;
//! tests/read_tiles.py and `bru audit verify` do.)
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use bru_tests::transparency::*;
use bru_tests::*;
use serde_json::Value;
use tlog_tiles::{
    check_record, prove_record, record_hash, tree_hash, Checkpoint, Tile, TileHashReader,
    TileReader,
};

/// C2SP tlog-tiles: tiles of height 8 (256 hashes).
const HEIGHT: u8 = 8;

/// Tiles fetched from Bru beforehand (the crate's reader is synchronous),
/// served to the crate by path; a tile it asks for that Bru did not serve
/// is an error.
struct Fetched(HashMap<String, Vec<u8>>);

impl TileReader for Fetched {
    fn height(&self) -> u8 {
        HEIGHT
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        tiles
            .iter()
            .map(|t| {
                self.0
                    .get(&t.path())
                    .cloned()
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }

    fn save_tiles(&self, _tiles: &[Tile], _data: &[Vec<u8>]) {}
}

/// The crate names tiles as Go's sumdb does, `tile/{H}/{L}/{N}`; C2SP
/// tlog-tiles fixes H = 8 and leaves it out of the path.
fn c2sp_path(t: &Tile) -> String {
    let path = t.path();
    let prefix = format!("tile/{HEIGHT}/");
    assert!(path.starts_with(&prefix), "{path}");
    format!("tile/{}", &path[prefix.len()..])
}

/// RFC 8785 for the audit records' JSON (strings, integers, null):
/// members sorted, no whitespace (serde_json's map is sorted).
fn canonical(record: &Value) -> Vec<u8> {
    serde_json::to_vec(record).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_party_tlog_tiles_client_verifies_bru_s_tiles() {
    let world = audit_world(TestWorld::builder(), None).await;
    let bru = world.start().await;
    // Two records a call (decision, outcome): 140 calls pass one full tile.
    for i in 0..140 {
        send(world.nav_sosial(&bru, "", PERSONS[i % PERSONS.len()]))
            .await
            .expect_status(200, "a statutory call");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let note = loop {
        let reply = send(bru.get("/checkpoint")).await;
        if reply.status == 200 {
            let size: u64 = reply.text().lines().nth(1).unwrap().parse().unwrap();
            if size >= 280 {
                break reply.text();
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no checkpoint of 280 records"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // The note's body (origin, size, root hash) ends at its blank line.
    let body = &note[..note.find("\n\n").unwrap() + 1];
    let checkpoint = Checkpoint::from_bytes(body.as_bytes()).unwrap();
    let size = checkpoint.size();
    let root = *checkpoint.hash();
    assert!(size >= 280);

    // Every tile the crate says a tree of this size has, from the public path.
    let mut fetched = HashMap::new();
    let tiles = Tile::new_tiles(HEIGHT, 0, size);
    for t in &tiles {
        let path = c2sp_path(t);
        let reply = send(bru.get(&format!("/{path}"))).await;
        assert_eq!(reply.status, 200, "GET /{path}: {}", reply.text());
        fetched.insert(t.path(), reply.body.clone());
    }
    let paths: Vec<String> = tiles.iter().map(c2sp_path).collect();
    assert!(
        paths.iter().any(|p| p == "tile/0/000"),
        "a full level-0 tile: {paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.starts_with("tile/0/001.p/")),
        "a partial level-0 tile: {paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.starts_with("tile/1/")),
        "a level-1 tile: {paths:?}"
    );
    let reader = Fetched(fetched);
    let hashes = TileHashReader::new(size, root, &reader);
    // The tiles recompute the checkpoint's root (the reader authenticates
    // every tile it hands out against it).
    assert_eq!(tree_hash(size, &hashes).unwrap(), root);

    // Records proved into that root from their leaf bytes.
    let token = audit_token(&world);
    let records = get_json(
        bru.get("/audit/v1/records?limit=1000").bearer_auth(&token),
        "the records",
    )
    .await;
    let records = records["records"].as_array().unwrap().clone();
    for index in [0, 1, 255, 256, 257, size - 1] {
        let record = records
            .iter()
            .find(|r| r["index"] == index)
            .unwrap_or_else(|| panic!("record {index}"));
        let leaf = record_hash(&canonical(record));
        let proof = prove_record(size, index, &hashes).unwrap();
        check_record(&proof, size, root, index, leaf)
            .unwrap_or_else(|e| panic!("record {index} is not in the tree: {e:?}"));
        // A changed record is not.
        let mut changed = record.clone();
        changed["purpose"] = Value::String("noe annet".into());
        assert!(
            check_record(&proof, size, root, index, record_hash(&canonical(&changed))).is_err(),
            "a changed record {index} must not prove"
        );
    }

    // A tile changed in transit does not authenticate.
    let mut bad = reader.0.clone();
    let tile = bad.get_mut(&format!("tile/{HEIGHT}/0/000")).unwrap();
    tile[0] ^= 1;
    let bad = Fetched(bad);
    let hashes = TileHashReader::new(size, root, &bad);
    let record = records.iter().find(|r| r["index"] == 3).unwrap();
    let leaf = record_hash(&canonical(record));
    let verified = prove_record(size, 3, &hashes)
        .ok()
        .is_some_and(|proof| check_record(&proof, size, root, 3, leaf).is_ok());
    assert!(!verified, "a tampered tile must not prove record 3");
    // The root is base64 in the note, as the crate reads it.
    assert_eq!(
        note.lines().nth(2).unwrap(),
        base64::engine::general_purpose::STANDARD.encode(root.0)
    );
}
