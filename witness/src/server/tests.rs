use super::*;
use consent_db::merkle::{consistency_spans, leaf_hash, root_of};
use consent_db::note::{sign, verifier_key};

struct Log {
    key: Ed25519KeyPair,
    origin: String,
    leaves: Vec<Hash>,
}

impl Log {
    fn new(origin: &str) -> Log {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("key");
        Log {
            key: Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key"),
            origin: origin.into(),
            leaves: Vec::new(),
        }
    }
    fn vkey(&self) -> String {
        verifier_key(&self.origin, self.key.public_key().as_ref())
    }
    fn grow(&mut self, n: usize, tag: &str) {
        for i in 0..n {
            let at = self.leaves.len();
            self.leaves
                .push(leaf_hash(format!("{tag}{at}-{i}").as_bytes()));
        }
    }
    fn checkpoint(&self) -> String {
        sign(
            &Checkpoint {
                origin: self.origin.clone(),
                size: self.leaves.len() as u64,
                root: root_of(&self.leaves),
            },
            &self.key,
        )
        .expect("sign")
    }
    fn proof(&self, from: u64) -> Vec<Hash> {
        consistency_spans(from, self.leaves.len() as u64)
            .expect("spans")
            .iter()
            .map(|s| root_of(&self.leaves[s.begin as usize..s.end as usize]))
            .collect()
    }
    fn request(&self, from: u64) -> String {
        AddCheckpoint {
            old_size: from,
            proof: if from == 0 { vec![] } else { self.proof(from) },
            checkpoint: self.checkpoint(),
        }
        .encode()
    }
}

fn witness(dir: &Path, log: &Log) -> Witness {
    Witness::open(&dir.join("w.key"), &[log.vkey()], None, None).expect("open")
}

#[test]
fn a_consistent_log_is_cosigned_and_the_state_survives_a_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let mut log = Log::new("bru.example/bru-log");
    log.grow(5, "a");
    let w = witness(dir.path(), &log);
    let a = w.add_checkpoint(&log.request(0), 1_700_000_000);
    assert_eq!(a.status, 200, "{a:?}");
    let cp = log.checkpoint();
    let (text, _) = note_text(&cp).expect("note");
    assert_eq!(w.cosigner().verify(text, &a.body), Ok(1_700_000_000));

    log.grow(8, "b");
    let a = w.add_checkpoint(&log.request(5), 1_700_000_001);
    assert_eq!(a.status, 200, "{a:?}");
    drop(w);

    // Same key, same name, same state after a restart.
    let w = witness(dir.path(), &log);
    assert_eq!(w.known_size("bru.example/bru-log"), 13);
    let stale = w.add_checkpoint(&log.request(5), 1_700_000_002);
    assert_eq!(stale.status, 409);
    assert_eq!(stale.content_type, "text/x.tlog.size");
    assert_eq!(stale.body, "13\n");
}

#[test]
fn a_fork_is_never_cosigned() {
    let dir = tempfile::tempdir().expect("dir");
    let mut log = Log::new("bru.example/bru-log");
    log.grow(6, "a");
    let w = witness(dir.path(), &log);
    assert_eq!(w.add_checkpoint(&log.request(0), 1).status, 200);

    // The operator rewrites record 2 and grows on: its proof from 6 is
    // computed from the rewritten tree, so it cannot lead from the root the
    // witness holds.
    log.leaves[2] = leaf_hash(b"rewritten");
    log.grow(4, "c");
    assert_eq!(w.add_checkpoint(&log.request(6), 2).status, 422);
    // Same size, other root: 409.
    log.leaves.truncate(6);
    assert_eq!(w.add_checkpoint(&log.request(6), 3).status, 409);
    // Starting over from 0 is a conflict too.
    assert_eq!(w.add_checkpoint(&log.request(0), 4).status, 409);
    assert_eq!(w.known_size("bru.example/bru-log"), 6);
}

#[test]
fn unknown_logs_bad_signatures_and_bad_sizes_are_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let mut log = Log::new("bru.example/bru-log");
    log.grow(3, "a");
    let w = witness(dir.path(), &log);
    let mut stranger = Log::new("other.example/log");
    stranger.grow(3, "a");
    assert_eq!(w.add_checkpoint(&stranger.request(0), 1).status, 404);
    // The right origin, signed by another key: 403.
    let mut impostor = Log::new("bru.example/bru-log");
    impostor.grow(3, "a");
    assert_eq!(w.add_checkpoint(&impostor.request(0), 1).status, 403);
    // old > size: 400.
    let mut body = log.request(0);
    body = body.replacen("old 0", "old 9", 1);
    assert_eq!(w.add_checkpoint(&body, 1).status, 400);
    assert_eq!(w.known_size("bru.example/bru-log"), 0);
}
