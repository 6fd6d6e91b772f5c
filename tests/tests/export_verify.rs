//! "Everything about me" (SPEC 10, issue 19): `GET /citizen/v1/export`
//! holds my consents with their events, every transfer about me (and only
//! mine) with its inclusion proof against one signed checkpoint, and the
//! keys; an independent verifier (tests/verify_export.py: Python's standard
//! library and the `cryptography` package, nothing of Bru's) verifies it, and
//! fails on a tampered record, proof or signature. The export is itself an
//! `audit_read` record about me. Both stores (`BRU_TEST_STORE=postgres`).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use bru_tests::consent::*;
use bru_tests::represent::*;
use bru_tests::*;
use serde_json::Value;

/// The pinned Ed25519 implementation the verifier uses (PyPI).
const CRYPTOGRAPHY: &str = "cryptography==48.0.0";

static VENV: Mutex<Option<Option<PathBuf>>> = Mutex::new(None);

/// The venv's python with `cryptography` pinned, made under target/ once
/// (like scripts/test-openapi's schemathesis); `None` only when python3 is
/// absent, which is said loudly.
fn python() -> Option<PathBuf> {
    let mut guard = VENV.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = guard.as_ref() {
        return found.clone();
    }
    let found = make_venv();
    *guard = Some(found.clone());
    found
}

fn make_venv() -> Option<PathBuf> {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!(
            "\n!!!!!!!! SKIPPING the independent export verifier: python3 is not installed !!!!!!!!\n"
        );
        return None;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let venv = target.join("export-verify-venv");
    let python = venv.join("bin/python");
    let stamp = venv.join(".bru-pinned");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(CRYPTOGRAPHY) {
        return Some(python);
    }
    let status = Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&venv)
        .status()
        .expect("python3 -m venv");
    assert!(
        status.success(),
        "python3 -m venv failed (Debian: python3-venv)"
    );
    let status = Command::new(venv.join("bin/pip"))
        .args(["install", "-q", CRYPTOGRAPHY])
        .status()
        .expect("pip");
    assert!(status.success(), "pip install {CRYPTOGRAPHY} failed");
    std::fs::write(&stamp, CRYPTOGRAPHY).expect("stamp");
    Some(python)
}

/// Runs the independent verifier on `doc`: (exit code, output).
fn verify(python: &Path, doc: &Value, extra: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.json");
    std::fs::write(&file, serde_json::to_vec(doc).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("verify_export.py");
    let out = Command::new(python)
        .arg(&script)
        .arg(&file)
        .args(extra)
        .output()
        .expect("run the verifier");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

async fn export(bru: &Bru, token: &str) -> Reply {
    send(bru.get("/citizen/v1/export").bearer_auth(token)).await
}

/// Kari's and Ola's calls, a refusal, and Kari pausing and resuming.
async fn some_history(cw: &ConsentWorld, bru: &Bru) -> String {
    let k429 = cw.k429_token();
    let id = granted(cw, bru, KARI, None).await;
    inntekt(bru, &k429, Some(&id), KARI, PURPOSE_OMSORG)
        .await
        .expect_status(200, "Kari's data under her consent");
    inntekt(bru, &k429, None, KARI, PURPOSE_OMSORG)
        .await
        .expect_status(403, "no consent given");
    citizen_action(cw, bru, KARI, &id, "pause")
        .await
        .expect_status(200, "pause");
    citizen_action(cw, bru, KARI, &id, "resume")
        .await
        .expect_status(200, "resume");
    inntekt(bru, &k429, Some(&id), KARI, PURPOSE_OMSORG)
        .await
        .expect_status(200, "again after resuming");
    let olas = granted(cw, bru, OLA, None).await;
    inntekt(bru, &k429, Some(&olas), OLA, PURPOSE_OMSORG)
        .await
        .expect_status(200, "Ola's data");
    id
}

#[tokio::test]
async fn the_export_holds_everything_about_me_and_verifies_independently() {
    let cw = ConsentWorld::new().await;
    // K429 may also read the audit log here, to see the export recorded.
    let policy_path = cw.dir.path().join("policy.toml");
    let policy = std::fs::read_to_string(&policy_path).unwrap();
    std::fs::write(
        &policy_path,
        policy.replacen(
            "consent_requester = true\n",
            "consent_requester = true\naudit_reader = true\n",
            1,
        ),
    )
    .unwrap();
    let bru = cw.start().await;
    let id = some_history(&cw, &bru).await;
    let kari = cw.citizen_token(KARI);

    let reply = export(&bru, &kari).await;
    reply.expect_status(200, "GET /citizen/v1/export");
    assert!(
        reply
            .header("content-disposition")
            .unwrap()
            .starts_with("attachment; filename=\"bru-everything-about-me-"),
        "{:?}",
        reply.header("content-disposition")
    );
    assert!(reply
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let transfer_id = reply.transfer_id().expect("the export's audit_read record");
    let doc = reply.json();
    assert_eq!(doc["format"], "bru-export/1");
    assert!(doc["how_to_verify"].as_str().unwrap().contains("RFC 9162"));
    // No person number anywhere in it.
    let text = reply.text();
    assert!(!text.contains(KARI) && !text.contains(OLA));

    // My consent with its whole history, and who took each event.
    let consents = doc["consents"].as_array().unwrap();
    let mine = consents.iter().find(|c| c["id"] == id.as_str()).unwrap();
    let events: Vec<(&str, &str)> = mine["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["type"].as_str().unwrap(), e["by"].as_str().unwrap()))
        .collect();
    assert_eq!(
        events,
        [
            ("created", "self"),
            ("accepted", "self"),
            ("used", "self"),
            ("paused", "self"),
            ("resumed", "self"),
            ("used", "self"),
        ]
    );
    assert_eq!(consents.len(), 1, "only Kari's consents: {consents:?}");

    // Exactly the transfers my access log shows, each with its proof.
    let log = send(bru.get("/citizen/v1/transfers").bearer_auth(&kari)).await;
    log.expect_status(200, "my access log");
    let shown: Vec<u64> = log.json()["transfers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["index"].as_u64().unwrap())
        .collect();
    let transfers = doc["transfers"].as_array().unwrap();
    let exported: Vec<u64> = transfers
        .iter()
        .map(|t| t["leaf_index"].as_u64().unwrap())
        .collect();
    assert_eq!(exported, shown);
    assert_eq!(exported.len(), 3, "two allowed calls and one refusal");
    let me = doc["subject_ref"].as_str().unwrap();
    for t in transfers {
        assert_eq!(t["record"]["subject_ref"], me);
        assert_eq!(t["record"]["kind"], "decision");
        assert!(t["record"]["index"].as_u64().unwrap() < doc["checkpoint_size"].as_u64().unwrap());
    }
    assert!(transfers
        .iter()
        .any(|t| t["record"]["decision"] == "deny" && t["record"]["code"] == "consent_required"));
    // The log's key as Bru publishes it.
    let key = send(bru.get("/audit/v1/checkpoint/key")).await;
    assert_eq!(
        key.text().trim(),
        doc["verifier_keys"]["log"].as_str().unwrap()
    );

    // The export is an audit_read record about me.
    let audit = send(
        bru.get("/audit/v1/records?kind=audit_read&limit=1000")
            .bearer_auth(cw.mp_token(K429, "bru:audit")),
    )
    .await;
    audit.expect_status(200, "audit records");
    let recorded = audit.json()["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["transfer_id"] == transfer_id.as_str())
        .cloned()
        .expect("the export's record");
    assert_eq!(recorded["path"], "/citizen/v1/export");
    assert_eq!(recorded["subject_ref"], me);
    assert_eq!(recorded["decision"], "allow");

    let Some(python) = python() else { return };
    let (code, out) = verify(&python, &doc, &["--log-key", key.text().trim()]);
    assert_eq!(code, 0, "the independent verifier: {out}");
    assert!(out.starts_with("OK: 3 transfers"), "{out}");

    // Tampered: a record (its purpose), its proof, the checkpoint's signature,
    // its root, or a record that is not mine; each fails.
    let mut tampered = doc.clone();
    tampered["transfers"][0]["record"]["purpose"] = "tilsyn".into();
    let (code, out) = verify(&python, &tampered, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("does not hash to leaf_hash"), "{out}");

    let mut tampered = doc.clone();
    let record = tampered["transfers"][1]["record"].clone();
    let mut changed = record.clone();
    changed["decision"] = "allow".into();
    changed["code"] = Value::Null;
    tampered["transfers"][1]["record"] = changed;
    // Even with a leaf hash that fits the changed record, the proof fails.
    tampered["transfers"][1]["leaf_hash"] =
        leaf_hash_b64(&tampered["transfers"][1]["record"]).into();
    let (code, out) = verify(&python, &tampered, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("does not lead to the checkpoint's root"),
        "{out}"
    );

    let mut tampered = doc.clone();
    let note = doc["checkpoint"].as_str().unwrap();
    tampered["checkpoint"] = flip_signature(note).into();
    let (code, out) = verify(&python, &tampered, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("signature does not verify"), "{out}");

    // A forged checkpoint signed by another key: the pinned key refuses it.
    let mut tampered = doc.clone();
    tampered["verifier_keys"]["log"] = "other+00000000+AQ==".into();
    let (code, out) = verify(&python, &tampered, &["--log-key", key.text().trim()]);
    assert_eq!(code, 0, "the pinned key wins over the file's: {out}");
    let (code, out) = verify(&python, &tampered, &[]);
    assert_eq!(code, 1, "{out}");

    let mut tampered = doc.clone();
    tampered["subject_ref"] = "someone-else".into();
    let (code, out) = verify(&python, &tampered, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not about the export's subject"), "{out}");
}

/// SHA-256(0x00 || RFC 8785 of `record`) for the simple records here
/// (strings, integers, null: sorted keys, no spaces).
fn leaf_hash_b64(record: &Value) -> String {
    use base64::Engine;
    let sorted: std::collections::BTreeMap<String, Value> =
        serde_json::from_value(record.clone()).unwrap();
    let mut bytes = vec![0u8];
    bytes.extend(serde_json::to_vec(&sorted).unwrap());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// The note with one bit of the log's signature flipped.
fn flip_signature(note: &str) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let origin = note.lines().next().unwrap();
    note.lines()
        .map(
            |line| match line.strip_prefix(&format!("\u{2014} {origin} ")) {
                Some(sig) => {
                    let mut blob = b64.decode(sig).unwrap();
                    let last = blob.len() - 1;
                    blob[last] ^= 1;
                    format!("\u{2014} {origin} {}", b64.encode(blob))
                }
                None => line.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[tokio::test]
async fn the_export_needs_a_citizen_and_is_about_whom_i_act_for() {
    let rw = RepresentWorld::new().await;
    let bru = rw.start().await;
    send(bru.get("/citizen/v1/export"))
        .await
        .expect_status(401, "no token");
    let k429 = rw.k429_token();
    send(bru.get("/citizen/v1/export").bearer_auth(&k429))
        .await
        .expect_status(401, "a machine token");

    // Kari acts for Emma: the export is Emma's, not Kari's.
    let kari = rw.citizen_token(KARI);
    let party = party_of(&bru, &kari, "Emma Nordmann").await;
    let emmas = create(&rw, &bru, &request_body(Some(EMMA), None)).await;
    act_for(&bru, &kari, &party, &emmas, "accept")
        .await
        .expect_status(200, "Kari accepts for Emma");
    let karis = granted(&rw, &bru, KARI, None).await;
    inntekt(&bru, &k429, Some(&emmas), EMMA, PURPOSE_OMSORG)
        .await
        .expect_status(200, "Emma's data");

    let reply = send(
        bru.get("/citizen/v1/export")
            .bearer_auth(&kari)
            .header("Bru-On-Behalf-Of", &party),
    )
    .await;
    reply.expect_status(200, "Kari's export for Emma");
    let doc = reply.json();
    let ids: Vec<&str> = doc["consents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [emmas.as_str()]);
    let accepted = &doc["consents"][0]["events"][1];
    assert_eq!(accepted["type"], "accepted");
    assert_eq!(accepted["by"], "parent");
    assert_eq!(doc["transfers"].as_array().unwrap().len(), 1);

    // Kari's own export has her consent, not Emma's.
    let own = export(&bru, &kari).await;
    own.expect_status(200, "Kari's own export");
    let ids: Vec<String> = own.json()["consents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, [karis]);
    assert!(own.json()["transfers"].as_array().unwrap().is_empty());

    // Someone Kari may not act for is refused, and never exported.
    let reply = send(
        bru.get("/citizen/v1/export")
            .bearer_auth(&kari)
            .header("Bru-On-Behalf-Of", "not-a-party"),
    )
    .await;
    expect_refused(&reply, 403, "not_represented", "an unknown party");
}

/// Many transfers come out whole (the stream crosses pages) and still verify.
#[tokio::test]
async fn a_long_history_is_streamed_across_pages_and_verifies() {
    let cw = ConsentWorld::new().await;
    let bru = cw.start().await;
    let k429 = cw.k429_token();
    // 450 refusals about Kari: more than two of the export's pages (200).
    for n in 0..450 {
        inntekt(&bru, &k429, None, KARI, PURPOSE_OMSORG)
            .await
            .expect_status(403, &format!("call {n} without consent"));
    }
    let reply = export(&bru, &cw.citizen_token(KARI)).await;
    reply.expect_status(200, "export");
    let doc = reply.json();
    let indexes: Vec<u64> = doc["transfers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["leaf_index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes.len(), 450);
    assert!(
        indexes.windows(2).all(|w| w[0] < w[1]),
        "oldest first, once each"
    );
    let Some(python) = python() else { return };
    let (code, out) = verify(&python, &doc, &[]);
    assert_eq!(code, 0, "{out}");
}
