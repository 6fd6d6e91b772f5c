//! The public read path (SPEC section 11) read by a THIRD-PARTY C2SP client:
//! Cloudflare's `tlog_tiles` and `signed_note` crates (crates.io, from the
//! azul project; ports of Go's golang.org/x/mod/sumdb/tlog and sumdb/note,
//! the code whose formats C2SP tlog-tiles and signed-note grew out of).
//! Bru's code and tests/read_tiles.py play no part in the checks: the crates
//! parse and verify the signed checkpoint with Bru's verifier key, decide
//! which tiles they need and check them against the checkpoint's root
//! (`TileHashReader`), recompute the root from every leaf hash (`tree_hash`;
//! `TileHashReader` 0.2.0 alone misses a changed full tile, see below), build
//! inclusion and consistency proofs from the tiles and verify them. The test
//! fetches what the crates ask for over HTTPS without credentials, and
//! supplies a record's leaf bytes: the audit API's record in RFC 8785 form
//! ([`jcs`]), which the crate hashes as an RFC 6962 leaf.
//!
//! One adaptation: `tlog_tiles` 0.2 names tiles as Go's sumdb does,
//! `tile/H/L/N[.p/W]`; C2SP tlog-tiles fixes the height H at 8 and leaves it
//! out of the path, so `tile/8/` becomes `/tile/` ([`c2sp_path`]).
#![allow(clippy::unwrap_used)]

use std::sync::Mutex;
use std::time::Duration;

use base64::prelude::{Engine, BASE64_STANDARD};
use serde_json::Value;
use signed_note::{Note, NoteError, Signer as _, StandardSigner, StandardVerifier, VerifierList};
use tlog_tiles::{
    check_record, check_tree, prove_record, prove_tree, record_hash, split_stored_hash_index,
    stored_hash_index, tree_hash, Checkpoint, Error as TlogError, Hash, HashReader, Tile,
    TileHashReader, TileReader,
};

use bru_tests::transparency::*;
use bru_tests::*;

/// C2SP tlog-tiles: every tile is 8 levels high (256 hashes).
const HEIGHT: u8 = 8;

/// The C2SP path of a tile: `tlog_tiles` 0.2 writes Go sumdb's
/// `tile/8/L/N[.p/W]`, C2SP's `/tile/L/N[.p/W]` has no height.
fn c2sp_path(tile: &Tile) -> String {
    let go = tile.path();
    let rest = go
        .strip_prefix("tile/8/")
        .unwrap_or_else(|| panic!("not a C2SP tile (height 8): {go}"));
    format!("/tile/{rest}")
}

/// Fetches the tiles `tlog_tiles` asks for from Bru, over HTTPS without
/// credentials. `tamper` names one C2SP tile path whose first byte is
/// flipped on its way, as a lying server or a man in the middle would.
struct HttpTiles {
    handle: tokio::runtime::Handle,
    client: reqwest::Client,
    base: String,
    tamper: Option<String>,
    fetched: Mutex<Vec<String>>,
}

impl HttpTiles {
    fn new(bru: &Bru, ca_pem: &str, tamper: Option<String>) -> HttpTiles {
        HttpTiles {
            handle: tokio::runtime::Handle::current(),
            client: bru_tests::bru::https_client(ca_pem),
            base: bru.url(""),
            tamper,
            fetched: Mutex::new(Vec::new()),
        }
    }

    fn fetched(&self) -> Vec<String> {
        self.fetched.lock().unwrap().clone()
    }
}

impl TileReader for HttpTiles {
    fn height(&self) -> u8 {
        HEIGHT
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TlogError> {
        tiles
            .iter()
            .map(|tile| {
                let path = c2sp_path(tile);
                let url = format!("{}{path}", self.base.trim_end_matches('/'));
                let (status, mut body) = self
                    .handle
                    .block_on(async {
                        let resp = self.client.get(&url).send().await?;
                        let status = resp.status().as_u16();
                        Ok::<_, reqwest::Error>((status, resp.bytes().await?.to_vec()))
                    })
                    .map_err(|e| TlogError::InvalidInput(format!("GET {path}: {e}")))?;
                if status != 200 {
                    return Err(TlogError::InvalidInput(format!("GET {path}: {status}")));
                }
                self.fetched.lock().unwrap().push(path.clone());
                if self.tamper.as_deref() == Some(path.as_str()) {
                    body[0] ^= 1;
                }
                Ok(body)
            })
            .collect()
    }

    fn save_tiles(&self, _tiles: &[Tile], _data: &[Vec<u8>]) {}
}

/// Every hash of the tree, from its leaf hashes, with the crate's own
/// subtree hashing: a second way to the root, independent of the tiles above
/// level 0.
struct FromLeaves(Vec<Hash>);

impl HashReader for FromLeaves {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TlogError> {
        indexes
            .iter()
            .map(|&x| {
                let (level, n) = split_stored_hash_index(x);
                let width = 1usize << level;
                let start = usize::try_from(n).unwrap() * width;
                let leaves = self.0.get(start..start + width).ok_or(TlogError::BadMath)?;
                let data: Vec<u8> = leaves.iter().flat_map(|h| h.0).collect();
                Ok(Tile::subtree_hash(&data))
            })
            .collect()
    }
}

/// The public checkpoint, once it covers `at_least` records: its bytes and
/// what `signed_note` and `tlog_tiles` read from it with Bru's key.
async fn signed_checkpoint(bru: &Bru, vkey: &str, at_least: u64) -> (Vec<u8>, Checkpoint) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let reply = send(bru.get("/checkpoint")).await;
        if reply.status == 200 {
            let (note, checkpoint) = open_checkpoint(&reply.body, vkey).unwrap_or_else(|e| {
                panic!(
                    "the third-party reader refused /checkpoint: {e}\n{}",
                    reply.text()
                )
            });
            assert_eq!(checkpoint.origin(), vkey.split('+').next().unwrap());
            if checkpoint.size() >= at_least {
                return (note, checkpoint);
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no checkpoint of {at_least} records"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// signed-note: verify `bytes` with the one key `vkey`, then parse the
/// text as a tlog-checkpoint.
fn open_checkpoint(bytes: &[u8], vkey: &str) -> Result<(Vec<u8>, Checkpoint), String> {
    let verifier = StandardVerifier::new(vkey).map_err(|e| format!("verifier key: {e}"))?;
    let note = Note::from_bytes(bytes).map_err(|e| format!("note: {e}"))?;
    note.verify(&VerifierList::new(vec![Box::new(verifier)]))
        .map_err(|e| format!("signature: {e}"))?;
    let checkpoint = Checkpoint::from_bytes(note.text()).map_err(|e| format!("checkpoint: {e}"))?;
    Ok((bytes.to_vec(), checkpoint))
}

/// RFC 8785 for the values a record holds (strings, integers, null): the
/// leaf bytes (docs/audit-log.md). serde_json escapes strings as JCS does;
/// members are sorted by UTF-16 code units.
fn jcs(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            let members: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::String((*k).clone()), jcs(&map[*k])))
                .collect();
            format!("{{{}}}", members.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(jcs).collect();
            format!("[{}]", items.join(","))
        }
        Value::Number(n) => {
            assert!(n.is_i64() || n.is_u64(), "records hold no fractions: {n}");
            n.to_string()
        }
        other => other.to_string(),
    }
}

/// NAV's statutory call about one of the test persons; its transfer id.
async fn statutory_call(world: &TestWorld, bru: &Bru, i: usize) -> String {
    let reply = send(world.nav_sosial(bru, "", PERSONS[i % PERSONS.len()])).await;
    reply.expect_status(200, "a statutory call");
    reply.transfer_id().unwrap()
}

/// Record `index` from the audit API (K429's audit token).
async fn record_at(world: &TestWorld, bru: &Bru, index: u64) -> Value {
    let query = match index.checked_sub(1) {
        Some(before) => format!("cursor={before}&limit=1"),
        None => "limit=1".to_owned(),
    };
    let page = get_json(
        bru.get(&format!("/audit/v1/records?{query}"))
            .bearer_auth(audit_token(world)),
        "a record from the audit API",
    )
    .await;
    let record = page["records"][0].clone();
    assert_eq!(record["index"], index, "{page}");
    record
}

/// Hashes of a proof from the audit API, as `tlog_tiles` hashes.
fn proof_hashes(proof: &Value) -> Vec<Hash> {
    proof["hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| Hash::parse_hash(h.as_str().unwrap()).unwrap())
        .collect()
}

/// An Ed25519 key that is not Bru's, named as Bru's log: its C2SP signer and
/// verifier keys (made with aws-lc-rs; `signed_note` checks the key id).
fn impostor_keys(origin: &str) -> (String, String) {
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
    let seed = [7u8; 32];
    let pair = Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
    let public = [&[1u8][..], pair.public_key().as_ref()].concat();
    let id = signed_note::key_id(origin, &public);
    let private = [&[1u8][..], &seed[..]].concat();
    (
        format!(
            "PRIVATE+KEY+{origin}+{id:08x}+{}",
            BASE64_STANDARD.encode(private)
        ),
        format!("{origin}+{id:08x}+{}", BASE64_STANDARD.encode(public)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_party_tlog_tiles_client_verifies_the_public_tiles() {
    let world = audit_world(TestWorld::builder(), None).await;
    let bru = world.start().await;
    let ca_pem = std::fs::read_to_string(world.dir.path().join("tls/ca.pem")).unwrap();
    let vkey = send(bru.get("/audit/v1/checkpoint/key"))
        .await
        .text()
        .trim()
        .to_owned();
    let origin = vkey.split('+').next().unwrap().to_owned();

    // Two records a call (decision, outcome). 40 calls: a tree within one
    // partial tile (checkpoint A); 100 more pass the first full tile of 256
    // and leave a partial one beside it (checkpoint B).
    let mut transfers = Vec::new();
    for i in 0..40 {
        transfers.push(statutory_call(&world, &bru, i).await);
    }
    let (_, a) = signed_checkpoint(&bru, &vkey, 80).await;
    for i in 40..140 {
        transfers.push(statutory_call(&world, &bru, i).await);
    }
    let (b_note, b) = signed_checkpoint(&bru, &vkey, 280).await;
    assert!(a.size() < 256 && b.size() > 256 && b.size() % 256 != 0);

    // Known records, one in the full tile and one in the partial tile, from
    // the audit API; and Bru's own proofs of them, for the crate to check.
    let mut known = Vec::new();
    for index in [3, 270] {
        let record = record_at(&world, &bru, index).await;
        let transfer = record["transfer_id"].as_str().unwrap().to_owned();
        assert!(transfers.contains(&transfer), "{record}");
        let proof = get_json(
            bru.get(&format!(
                "/audit/v1/proof/inclusion?index={index}&size={}",
                b.size()
            ))
            .bearer_auth(audit_token(&world)),
            "Bru's inclusion proof",
        )
        .await;
        known.push((index, record, proof_hashes(&proof)));
    }
    let bru_consistency = proof_hashes(
        &get_json(
            bru.get(&format!(
                "/audit/v1/proof/consistency?from={}&to={}",
                a.size(),
                b.size()
            ))
            .bearer_auth(audit_token(&world)),
            "Bru's consistency proof",
        )
        .await,
    );

    // Everything below is the third-party crates' work.
    let honest = HttpTiles::new(&bru, &ca_pem, None);
    let b_tiles = tokio::task::block_in_place(|| {
        let reader = TileHashReader::new(b.size(), *b.hash(), &honest);
        // Every leaf hash: each level-0 tile is checked against the root.
        let indexes: Vec<u64> = (0..b.size()).map(|i| stored_hash_index(0, i)).collect();
        let leaves = reader
            .read_hashes(&indexes)
            .expect("the tiles hash to checkpoint B's root");
        // The root again, from the leaves alone.
        assert_eq!(
            tree_hash(b.size(), &FromLeaves(leaves.clone())).unwrap(),
            *b.hash(),
            "the level-0 tiles do not hash to checkpoint B's root"
        );

        for (index, record, bru_proof) in &known {
            let leaf = record_hash(jcs(record).as_bytes());
            assert_eq!(leaves[*index as usize], leaf, "record {index}'s leaf");
            let proof = prove_record(b.size(), *index, &reader).unwrap();
            check_record(&proof, b.size(), *b.hash(), *index, leaf)
                .unwrap_or_else(|e| panic!("inclusion of record {index} from the tiles: {e}"));
            check_record(bru_proof, b.size(), *b.hash(), *index, leaf)
                .unwrap_or_else(|e| panic!("Bru's inclusion proof of record {index}: {e}"));
            // A record changed after the fact is not in the log.
            let mut changed = record.clone();
            changed["status"] = Value::from(403);
            let forged = record_hash(jcs(&changed).as_bytes());
            assert!(matches!(
                check_record(&proof, b.size(), *b.hash(), *index, forged),
                Err(TlogError::InvalidProof)
            ));
        }

        // Checkpoint A's tree is a prefix of B's.
        let proof = prove_tree(b.size(), a.size(), &reader).unwrap();
        check_tree(&proof, b.size(), *b.hash(), a.size(), *a.hash())
            .expect("consistency A -> B from the tiles");
        check_tree(&bru_consistency, b.size(), *b.hash(), a.size(), *a.hash())
            .expect("Bru's consistency proof A -> B");
        let a_reader = TileHashReader::new(a.size(), *a.hash(), &honest);
        let a_leaves = a_reader
            .read_hashes(
                &(0..a.size())
                    .map(|i| stored_hash_index(0, i))
                    .collect::<Vec<_>>(),
            )
            .expect("the tiles hash to checkpoint A's root");
        assert_eq!(a_leaves[..], leaves[..a_leaves.len()]);
        honest.fetched()
    });
    // The crate asked for a full tile, a partial one and a level-1 tile.
    let full = "/tile/0/000".to_owned();
    let partial = format!("/tile/0/001.p/{}", b.size() % 256);
    for path in [&full, &partial, &"/tile/1/000.p/1".to_owned()] {
        assert!(b_tiles.contains(path), "{path} not read: {b_tiles:?}");
    }

    // A tile changed on its way, full or partial, is caught. The partial
    // tile and the level-1 tile hash to the root, so `TileHashReader` refuses
    // them itself. A full level-0 tile it should check against its level-1
    // parent, but tlog_tiles 0.2.0 (the same loop as the Go code) skips that
    // check for the first non-root tiles when two of the root's subtrees
    // share a tile (here 256..272 and 272..280): it hands out the changed
    // hashes, and what catches them is the root recomputed from the leaves
    // and an inclusion proof built from them.
    for tampered in [full, partial, "/tile/1/000.p/1".to_owned()] {
        let lying = HttpTiles::new(&bru, &ca_pem, Some(tampered.clone()));
        let caught = tokio::task::block_in_place(|| {
            let reader = TileHashReader::new(b.size(), *b.hash(), &lying);
            let all: Vec<u64> = (0..b.size()).map(|i| stored_hash_index(0, i)).collect();
            match reader.read_hashes(&all) {
                Err(TlogError::InconsistentTile) => true,
                Ok(leaves) => {
                    let root = tree_hash(b.size(), &FromLeaves(leaves.clone())).unwrap();
                    let (index, _, _) = &known[0];
                    let proof = prove_record(b.size(), *index, &reader).unwrap();
                    let included =
                        check_record(&proof, b.size(), *b.hash(), *index, leaves[*index as usize]);
                    assert!(included.is_err(), "{tampered}: {included:?}");
                    root != *b.hash()
                }
                Err(e) => panic!("{tampered}: {e}"),
            }
        });
        assert!(caught, "{tampered} changed on its way was not caught");
        assert!(lying.fetched().contains(&tampered));
    }

    // Checkpoint B's text changed under Bru's signature: refused.
    let b_text = String::from_utf8(b_note.clone()).unwrap();
    let size_line = format!("\n{}\n", b.size());
    assert!(b_text.contains(&size_line));
    let altered = b_text.replacen(&size_line, &format!("\n{}\n", b.size() + 1), 1);
    let refused = open_checkpoint(altered.as_bytes(), &vkey);
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.starts_with("signature: invalid signature")),
        "{:?}",
        refused.map(|(_, c)| c)
    );
    // Bru's real checkpoint under another key of the same name: refused.
    let (impostor_skey, impostor_vkey) = impostor_keys(&origin);
    let refused = open_checkpoint(&b_note, &impostor_vkey);
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.starts_with("signature: ")),
        "{:?}",
        refused.map(|(_, c)| c)
    );
    // A checkpoint forged by that key (B's size, A's root): refused with
    // Bru's key, and the tiles refuse its root even for whoever trusts it.
    let signer = StandardSigner::new(&impostor_skey).unwrap();
    assert_eq!(signer.name(), origin);
    let forged_text = format!("{origin}\n{}\n{}\n", b.size(), a.hash());
    let mut forged = Note::new(forged_text.as_bytes(), &[]).unwrap();
    forged.add_sigs(&[&signer]).unwrap();
    let forged = forged.to_bytes();
    let verifier = StandardVerifier::new(&vkey).unwrap();
    assert!(matches!(
        Note::from_bytes(&forged)
            .unwrap()
            .verify(&VerifierList::new(vec![Box::new(verifier)])),
        Err(NoteError::UnverifiedNote)
    ));
    let (_, fake) = open_checkpoint(&forged, &impostor_vkey).unwrap();
    let result = tokio::task::block_in_place(|| {
        let honest = HttpTiles::new(&bru, &ca_pem, None);
        TileHashReader::new(fake.size(), *fake.hash(), &honest).read_hashes(&[0])
    });
    assert!(
        matches!(result, Err(TlogError::InconsistentTile)),
        "{result:?}"
    );
}
