//! The transparency log from the outside: the audit API, checkpoints and
//! proofs checked by an independent verifier (tests/verify_log.py),
//! `bru audit verify` against a tampered database, restarts, a full disk,
//! and a crash under load.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use bru_tests::transparency::*;
use bru_tests::*;
use serde_json::Value;

// ---- helpers ----------------------------------------------------------------

/// The latest checkpoint note once it covers at least `min_size` records.
async fn wait_checkpoint(bru: &Bru, token: &str, min_size: u64) -> (String, u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let reply = send(bru.get("/audit/v1/checkpoint").bearer_auth(token)).await;
        if reply.status == 200 {
            assert!(
                reply
                    .header("content-type")
                    .unwrap_or_default()
                    .starts_with("text/plain"),
                "{:?}",
                reply.headers
            );
            let note = reply.text();
            let size: u64 = note.lines().nth(1).unwrap().parse().unwrap();
            if size >= min_size {
                return (note, size);
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no checkpoint of size {min_size} in time; last answer {} {}",
            reply.status,
            reply.text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_ready(bru: &Bru, want: u16) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let reply = send(bru.ops_client.get(bru.ops_url("/readyz"))).await;
        if reply.status == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz never answered {want}; last {} {}; bru's output:\n{}",
            reply.status,
            reply.text(),
            bru.logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Flips one bit in the middle hash of a proof.
fn flip(proof: &Value) -> Value {
    let mut bad = proof.clone();
    let hashes = bad["hashes"].as_array_mut().unwrap();
    assert!(
        !hashes.is_empty(),
        "a proof to tamper with needs hashes: {proof}"
    );
    let i = hashes.len() / 2;
    let mut bytes = b64_std_decode(hashes[i].as_str().unwrap());
    bytes[7] ^= 0x10;
    hashes[i] = Value::String(b64_std_encode(&bytes));
    bad
}

fn b64_std_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn b64_std_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

async fn statutory_calls(world: &TestWorld, bru: &Bru, n: usize) {
    for i in 0..n {
        send(world.nav_sosial(bru, "", PERSONS[i % PERSONS.len()]))
            .await
            .expect_status(200, "a statutory call");
    }
}

/// Exports until every transfer in the log has its outcome (outcomes are
/// written just after the answer) and returns the record count.
async fn settled_count(world: &TestWorld) -> u64 {
    let records = world
        .wait_records("an outcome for every allowed decision", |r| {
            let allowed = r
                .iter()
                .filter(|x| x["kind"] == "decision" && x["decision"] == "allow")
                .count();
            let outcomes = r.iter().filter(|x| x["kind"] == "outcome").count();
            outcomes >= allowed
        })
        .await;
    records.len() as u64
}

// ---- the audit API and the independent verifier ------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_verifier_accepts_the_logs_proofs_and_rejects_tampered_ones() {
    let world = audit_world(TestWorld::builder(), None).await;
    let bru = world.start().await;
    let token = audit_token(&world);
    statutory_calls(&world, &bru, 5).await;
    send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(world.mp_token(SNOOP, SCOPE_SOSIAL))
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", KARI),
    )
    .await
    .expect_problem(403, "consumer_not_allowed", "Snoop");
    let (old_note, old_size) = wait_checkpoint(&bru, &token, settled_count(&world).await).await;
    statutory_calls(&world, &bru, 6).await;
    let (note, size) = wait_checkpoint(&bru, &token, settled_count(&world).await).await;
    assert!(size > old_size, "{old_size} → {size}");
    assert_eq!(
        note.lines().next(),
        Some("localhost:8443/bru-log"),
        "{note}"
    );

    let key = send(bru.get("/audit/v1/checkpoint/key")).await;
    key.expect_status(200, "the verifier key");
    let vkey = key.text().trim().to_owned();
    assert!(vkey.starts_with("localhost:8443/bru-log+"), "{vkey}");

    let dir = world.dir.path();
    let mut args = Vec::new();
    let mut proofs = Vec::new();
    for index in [0, size / 2, size - 1] {
        let proof = get_json(
            bru.get(&format!(
                "/audit/v1/proof/inclusion?index={index}&size={size}"
            ))
            .bearer_auth(&token),
            "inclusion proof",
        )
        .await;
        assert_eq!(
            (proof["index"].as_u64(), proof["size"].as_u64()),
            (Some(index), Some(size)),
            "{proof}"
        );
        args.extend([
            "--inclusion".to_owned(),
            write(dir, &format!("incl-{index}.json"), &proof.to_string()),
        ]);
        proofs.push(proof);
    }
    let consistency = get_json(
        bru.get(&format!(
            "/audit/v1/proof/consistency?from={old_size}&to={size}"
        ))
        .bearer_auth(&token),
        "consistency proof",
    )
    .await;
    assert_eq!(
        (consistency["from"].as_u64(), consistency["to"].as_u64()),
        (Some(old_size), Some(size))
    );
    let old_path = write(dir, "old-checkpoint.txt", &old_note);
    args.extend([
        "--consistency".to_owned(),
        write(dir, "consistency.json", &consistency.to_string()),
        old_path.clone(),
    ]);

    let (_, raw) = world.export().await;
    let records = write(dir, "records.jsonl", &raw);
    let checkpoint = write(dir, "checkpoint.txt", &note);
    let base = [
        records.clone(),
        checkpoint.clone(),
        "--key".to_owned(),
        vkey.clone(),
    ];

    let ok = python_verifier(base.iter().cloned().chain(args.iter().cloned()).collect()).await;
    assert_eq!(ok.code, Some(0), "{}", ok.text());
    assert!(
        ok.stdout.starts_with("OK:") && ok.stdout.contains("3 inclusion and 1 consistency"),
        "{}",
        ok.text()
    );

    // A tampered inclusion proof fails.
    let bad = write(dir, "incl-bad.json", &flip(&proofs[1]).to_string());
    let out = python_verifier(vec![
        records.clone(),
        checkpoint.clone(),
        "--inclusion".into(),
        bad,
    ])
    .await;
    assert_eq!(
        out.code,
        Some(1),
        "a tampered inclusion proof must fail: {}",
        out.text()
    );
    assert!(out.stdout.starts_with("FAIL:"), "{}", out.text());
    // A tampered consistency proof fails.
    let bad = write(dir, "consistency-bad.json", &flip(&consistency).to_string());
    let out = python_verifier(vec![
        records.clone(),
        checkpoint.clone(),
        "--consistency".into(),
        bad,
        old_path,
    ])
    .await;
    assert_eq!(
        out.code,
        Some(1),
        "a tampered consistency proof must fail: {}",
        out.text()
    );
    // A changed record fails against the signed root.
    let changed = raw.replacen("\"decision\":\"allow\"", "\"decision\":\"deny\"", 1);
    assert_ne!(changed, raw);
    let changed = write(dir, "records-changed.jsonl", &changed);
    let out = python_verifier(vec![changed, checkpoint.clone()]).await;
    assert_eq!(
        out.code,
        Some(1),
        "a changed record must fail: {}",
        out.text()
    );
    // A checkpoint with another size fails (its root no longer matches, and its signature).
    let forged = note.replacen(&format!("\n{size}\n"), &format!("\n{}\n", size - 1), 1);
    let forged = write(dir, "checkpoint-forged.txt", &forged);
    let out = python_verifier(vec![records, forged, "--key".into(), vkey]).await;
    assert_eq!(
        out.code,
        Some(1),
        "a forged checkpoint must fail: {}",
        out.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_verifier_passes_the_rfc_vectors() {
    let out = python_verifier(vec!["--self-test".into()]).await;
    assert_eq!(out.code, Some(0), "{}", out.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_api_checks_callers_and_parameters_and_records_every_use() {
    let world = audit_world(TestWorld::builder(), None).await;
    let bru = world.start().await;
    let token = audit_token(&world);
    for p in [KARI, KARI, OLA] {
        send(world.nav_sosial(&bru, "", p))
            .await
            .expect_status(200, "a statutory call");
    }
    settled_count(&world).await;

    let mut refused_tids = Vec::new();
    let mut check = |reply: Reply, status: u16, code: &str, context: &str| {
        let body = reply.expect_problem(status, code, context);
        refused_tids.push(body["transfer_id"].as_str().unwrap().to_owned());
        body
    };
    check(
        send(bru.get("/audit/v1/records")).await,
        401,
        "missing_token",
        "no token",
    );
    check(
        send(
            bru.get("/audit/v1/records")
                .bearer_auth(world.mp_token(NAV, "bru:audit")),
        )
        .await,
        403,
        "consumer_not_allowed",
        "NAV is no audit reader",
    );
    check(
        send(
            bru.get("/audit/v1/records")
                .bearer_auth(world.mp_token(K429, SCOPE_INNTEKT)),
        )
        .await,
        403,
        "insufficient_scope",
        "no bru:audit scope",
    );
    for (query, param) in [
        ("limit=0", "`limit`"),
        ("limit=1001", "`limit`"),
        ("since=yesterday", "`since`"),
        ("until=2026-13-01T00:00:00Z", "`until`"),
        ("consumer=983440002", "`consumer`"),
        ("dataset=k429", "`dataset`"),
        ("decision=maybe", "`decision`"),
        ("cursor=-1", "`cursor`"),
    ] {
        let body = check(
            send(
                bru.get(&format!("/audit/v1/records?{query}"))
                    .bearer_auth(&token),
            )
            .await,
            400,
            "malformed_request",
            query,
        );
        assert!(
            body["detail"].as_str().unwrap().contains(param),
            "{query}: {body}"
        );
    }
    check(
        send(bru.get("/audit/v1/records?subjekt=1").bearer_auth(&token)).await,
        400,
        "malformed_request",
        "unknown parameter",
    );
    let body = check(
        send(
            bru.get(&format!("/audit/v1/records?subject={BAD_CONTROL_DIGITS}"))
                .bearer_auth(&token),
        )
        .await,
        400,
        "invalid_subject",
        "a bad person number",
    );
    assert!(!body.to_string().contains(BAD_CONTROL_DIGITS), "{body}");
    let tree = wait_checkpoint(&bru, &token, 1).await.1;
    for (path, param) in [
        (
            format!("/audit/v1/proof/inclusion?index=0&size={}", tree + 1000),
            "`size`",
        ),
        (
            "/audit/v1/proof/inclusion?index=3&size=3".to_owned(),
            "`index`",
        ),
        ("/audit/v1/proof/inclusion?size=3".to_owned(), "`index`"),
        (
            "/audit/v1/proof/consistency?from=3&to=2".to_owned(),
            "`from`",
        ),
        (
            "/audit/v1/proof/consistency?from=0&to=2".to_owned(),
            "`from`",
        ),
        (
            format!("/audit/v1/proof/consistency?from=1&to={}", tree + 1000),
            "`to`",
        ),
    ] {
        let body = check(
            send(bru.get(&path).bearer_auth(&token)).await,
            400,
            "malformed_request",
            &path,
        );
        assert!(
            body["detail"].as_str().unwrap().contains(param),
            "{path}: {body}"
        );
    }

    // The subject is pseudonymised before the search.
    let kari = get_json(
        bru.get(&format!("/audit/v1/records?subject={KARI}"))
            .bearer_auth(&token),
        "by subject",
    )
    .await;
    let kari = kari["records"].as_array().unwrap().clone();
    assert_eq!(
        kari.iter().filter(|r| r["kind"] == "decision").count(),
        2,
        "{kari:?}"
    );
    let kari_ref = kari[0]["subject_ref"].as_str().unwrap().to_owned();
    assert!(kari.iter().all(|r| r["subject_ref"] == kari_ref.as_str()));
    let ola = get_json(
        bru.get(&format!("/audit/v1/records?subject={OLA}"))
            .bearer_auth(&token),
        "by subject",
    )
    .await;
    assert!(ola["records"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["subject_ref"] != kari_ref.as_str()));

    // Filters narrow; a cursor pages through the same set.
    let nav = get_json(
        bru.get("/audit/v1/records?consumer=0192:983440002&dataset=k429/sosialtjeneste&decision=allow&limit=1000")
            .bearer_auth(&token),
        "filtered",
    )
    .await;
    let all = nav["records"].as_array().unwrap().clone();
    assert_eq!(all.len(), 3, "{nav}");
    assert!(nav["next_cursor"].is_null());
    assert!(all
        .iter()
        .all(|r| r["consumer"] == "0192:983440002" && r["decision"] == "allow"));
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let q = match &cursor {
            Some(c) => format!("&cursor={c}"),
            None => String::new(),
        };
        let page = get_json(
            bru.get(&format!(
                "/audit/v1/records?dataset=k429/sosialtjeneste&limit=2{q}"
            ))
            .bearer_auth(&token),
            "a page",
        )
        .await;
        paged.extend(page["records"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let every = get_json(
        bru.get("/audit/v1/records?dataset=k429/sosialtjeneste")
            .bearer_auth(&token),
        "all",
    )
    .await;
    assert_eq!(&paged, every["records"].as_array().unwrap());
    assert!(
        paged.len() >= 6,
        "decisions and outcomes of three calls: {paged:?}"
    );
    // `bru audit export` writes exactly the API's record objects.
    let (exported, _) = world.export().await;
    for r in &paged {
        let same = exported.iter().find(|e| e["index"] == r["index"]);
        assert_eq!(
            same,
            Some(r),
            "export and API differ for record {}",
            r["index"]
        );
    }

    // Every use is an audit_read record, the refusals with their codes, and
    // no record holds a person number.
    let (records, raw) = world.export().await;
    let reads: Vec<&Value> = records
        .iter()
        .filter(|r| r["kind"] == "audit_read")
        .collect();
    for tid in &refused_tids {
        let r = reads.iter().find(|r| r["transfer_id"] == tid.as_str());
        let r = r.unwrap_or_else(|| panic!("no audit_read record for refused use {tid}"));
        assert_eq!(r["decision"], "deny", "{r}");
        assert!(
            r["code"].is_string() && r["status"].as_u64().unwrap() >= 400,
            "{r}"
        );
    }
    let by_subject = reads
        .iter()
        .find(|r| r["path"] == "/audit/v1/records" && r["subject_ref"] == kari_ref.as_str())
        .expect("the read by subject is recorded with the subject's pseudonym");
    assert_eq!(by_subject["decision"], "allow");
    assert_eq!(by_subject["consumer"], format!("0192:{K429}"));
    for p in PERSONS.iter().chain([&BAD_CONTROL_DIGITS]) {
        assert!(!raw.contains(p), "a person number in the audit log");
    }
    assert!(reads
        .iter()
        .all(|r| r["path"].as_str().is_some_and(|p| !p.contains('?'))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_citizen_gets_the_proof_of_their_own_records_only() {
    let world = audit_world(TestWorld::builder(), None).await;
    let bru = world.start().await;
    let token = audit_token(&world);
    statutory_calls(&world, &bru, 3).await;
    let kari = get_json(
        bru.get(&format!(
            "/audit/v1/records?subject={KARI}&dataset=k429/sosialtjeneste"
        ))
        .bearer_auth(&token),
        "Kari's records",
    )
    .await;
    let index = kari["records"][0]["index"].as_u64().unwrap();
    wait_checkpoint(&bru, &token, index + 1).await;

    let url = format!("/citizen/v1/transfers/{index}/proof");
    let proof = get_json(
        bru.get(&url).bearer_auth(citizen_token(&world, KARI)),
        "Kari's proof",
    )
    .await;
    assert_eq!(proof["index"].as_u64(), Some(index));
    assert_eq!(proof["record"]["index"].as_u64(), Some(index));
    assert!(proof["size"].as_u64().unwrap() > index);
    let dir = world.dir.path();
    let (_, raw) = world.export().await;
    let out = python_verifier(vec![
        write(dir, "records.jsonl", &raw),
        write(dir, "checkpoint.txt", proof["checkpoint"].as_str().unwrap()),
        "--key".into(),
        proof["checkpoint_key"].as_str().unwrap().to_owned(),
        "--inclusion".into(),
        write(dir, "citizen-proof.json", &proof.to_string()),
    ])
    .await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    let bad = write(dir, "citizen-proof-bad.json", &flip(&proof).to_string());
    let out = python_verifier(vec![
        write(dir, "records.jsonl", &raw),
        write(dir, "checkpoint.txt", proof["checkpoint"].as_str().unwrap()),
        "--inclusion".into(),
        bad,
    ])
    .await;
    assert_eq!(out.code, Some(1), "{}", out.text());

    // Someone else's record, a record that does not exist, a non-index: 404.
    for (path, pid) in [
        (url.clone(), OLA),
        ("/citizen/v1/transfers/999999/proof".to_owned(), KARI),
        ("/citizen/v1/transfers/abc/proof".to_owned(), KARI),
    ] {
        let reply = send(bru.get(&path).bearer_auth(citizen_token(&world, pid))).await;
        assert_eq!(
            (reply.status, reply.code().as_deref()),
            (404, Some("not_found")),
            "{path}: {}",
            reply.text()
        );
    }
    send(bru.get(&url))
        .await
        .expect_problem(401, "missing_token", "no token");
    // A machine token is no citizen token.
    let reply = send(bru.get(&url).bearer_auth(&token)).await;
    assert_eq!(reply.status, 401, "{}", reply.text());

    let (records, raw) = world.export().await;
    assert!(records.iter().any(|r| r["kind"] == "audit_read"
        && r["path"] == url.as_str()
        && r["decision"] == "allow"));
    assert!(!raw.contains(KARI) && !raw.contains(OLA));
}

// ---- bru audit verify -----------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bru_audit_verify_finds_every_kind_of_tampering() {
    if world::skip_on_postgres("tampers with the SQLite file directly (python sqlite3)") {
        return;
    }
    let world = audit_world(TestWorld::builder(), None).await;
    let mut bru = world.start().await;
    let token = audit_token(&world);
    statutory_calls(&world, &bru, 8).await;
    wait_checkpoint(&bru, &token, settled_count(&world).await).await;
    statutory_calls(&world, &bru, 4).await;
    settled_count(&world).await;
    bru.sigterm();
    assert!(
        bru.wait_exit(Duration::from_secs(60)).await.success(),
        "{}",
        bru.logs()
    );

    let intact = audit_verify(&world.config_path).await;
    assert_eq!(intact.code, Some(0), "{}", intact.text());
    assert!(
        intact.stdout.starts_with("intact: ") && intact.stdout.lines().count() == 1,
        "{}",
        intact.text()
    );
    assert!(
        intact.stderr.is_empty(),
        "no progress bar off a terminal: {}",
        intact.text()
    );
    let records: u64 = intact.stdout["intact: ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // Shutdown signed the last records: the newest checkpoint covers them all.
    assert!(
        intact
            .stdout
            .contains(&format!("(the latest at size {records})")),
        "{}",
        intact.text()
    );
    assert!(records >= 24, "{}", intact.text());

    let cases: [(&str, &str, &[&str]); 6] = [
        ("changed", "db.execute(\"UPDATE audit_records SET decision = 'deny' WHERE idx = 5\")", &["first bad index 5:", "changed"]),
        ("deleted", "db.execute('DELETE FROM audit_records WHERE idx = 7')", &["first bad index 7:", "missing", "deleted"]),
        (
            "inserted",
            "db.execute('UPDATE audit_records SET idx = idx + 100000 WHERE idx >= 4')\n\
             db.execute('UPDATE audit_records SET idx = idx - 99999 WHERE idx >= 100000')\n\
             db.execute(\"INSERT INTO audit_records (idx, time, transfer_id, kind, method, path) \
             SELECT 4, time, 'forged', 'decision', 'GET', '/data/' FROM audit_records WHERE idx = 3\")",
            &["first bad index 4:", "inserted"],
        ),
        (
            "reordered",
            "db.execute('UPDATE audit_records SET idx = 100000 WHERE idx = 2')\n\
             db.execute('UPDATE audit_records SET idx = 2 WHERE idx = 9')\n\
             db.execute('UPDATE audit_records SET idx = 9 WHERE idx = 100000')",
            &["first bad index 2:", "reordered", "now at index 9"],
        ),
        (
            "truncated",
            "n = db.execute('SELECT MAX(size) FROM checkpoints').fetchone()[0] - 3\n\
             db.execute('DELETE FROM audit_records WHERE idx >= ?', (n,))\n\
             db.execute('DELETE FROM tree_nodes WHERE size > ?', (n,))\n\
             db.execute('DELETE FROM tree_heads WHERE size > ?', (n,))",
            &[&format!("first bad index {}:", records - 3), "truncated", "checkpoint"],
        ),
        (
            "forged-signature",
            "(i, note) = db.execute('SELECT id, note FROM checkpoints ORDER BY size DESC, id DESC LIMIT 1').fetchone()\n\
             head, sig = note.rstrip('\\n').rsplit(' ', 1)\n\
             sig = ('B' if sig[10] == 'A' else 'A').join([sig[:10], sig[11:]])\n\
             db.execute('UPDATE checkpoints SET note = ? WHERE id = ?', (head + ' ' + sig + '\\n', i))",
            &["checkpoint", "not signed by the checkpoint key"],
        ),
    ];
    let scratch = tempfile::tempdir().unwrap();
    for (name, script, expected) in cases {
        let config = copy_world(world.dir.path(), &scratch.path().join(name));
        tamper(&config.with_file_name("bru.db"), script);
        let out = audit_verify(&config).await;
        assert_eq!(
            out.code,
            Some(1),
            "{name}: verify must fail: {}",
            out.text()
        );
        assert!(
            out.stdout.starts_with("TAMPERED: "),
            "{name}: {}",
            out.text()
        );
        for word in expected {
            assert!(
                out.stdout.contains(word),
                "{name}: {word:?} not in {}",
                out.text()
            );
        }
    }
    // The copies were independent: the original still verifies.
    assert_eq!(audit_verify(&world.config_path).await.code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_continues_the_same_tree_from_the_same_head() {
    let world = audit_world(TestWorld::builder(), None).await;
    let token = audit_token(&world);
    let mut bru = world.start().await;
    statutory_calls(&world, &bru, 4).await;
    let (first, first_size) = wait_checkpoint(&bru, &token, settled_count(&world).await).await;
    bru.sigterm();
    assert!(
        bru.wait_exit(Duration::from_secs(60)).await.success(),
        "{}",
        bru.logs()
    );

    let mut bru = world.start().await;
    statutory_calls(&world, &bru, 4).await;
    let (second, second_size) = wait_checkpoint(&bru, &token, settled_count(&world).await).await;
    assert!(second_size > first_size, "{first_size} → {second_size}");
    let consistency = get_json(
        bru.get(&format!(
            "/audit/v1/proof/consistency?from={first_size}&to={second_size}"
        ))
        .bearer_auth(&token),
        "consistency across the restart",
    )
    .await;
    let vkey = send(bru.get("/audit/v1/checkpoint/key"))
        .await
        .text()
        .trim()
        .to_owned();
    let dir = world.dir.path();
    let (_, raw) = world.export().await;
    let out = python_verifier(vec![
        write(dir, "records.jsonl", &raw),
        write(dir, "second.txt", &second),
        "--key".into(),
        vkey,
        "--consistency".into(),
        write(dir, "restart-consistency.json", &consistency.to_string()),
        write(dir, "first.txt", &first),
    ])
    .await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    bru.sigterm();
    assert!(bru.wait_exit(Duration::from_secs(60)).await.success());
    let verified = audit_verify(&world.config_path).await;
    assert_eq!(verified.code, Some(0), "{}", verified.text());
}

// ---- fail closed --------------------------------------------------------------

/// A tmpfs of `size`, unmounted (lazily) on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "this test needs to mount a tmpfs (root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes zeros into `path` until the file system is full.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 4096];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_closed_and_readiness_follows_the_store() {
    if world::skip_on_postgres("fills a tmpfs under the SQLite file") {
        return;
    }
    let disk = Tmpfs::mount("4m");
    let url = format!("sqlite://{}", disk.path().join("bru.db").display());
    let world = audit_world(TestWorld::builder().env("RUST_LOG", "warn"), Some(&url)).await;
    let bru = world.start().await;
    statutory_calls(&world, &bru, 3).await;
    wait_ready(&bru, 200).await;
    let forwarded_before = world.k429.count();

    let filler = disk.path().join("filler");
    fill(&filler);
    let (mut ok, mut refused) = (0usize, 0usize);
    for i in 0..400 {
        let reply = send(world.nav_sosial(&bru, "", PERSONS[i % 5])).await;
        match reply.status {
            200 => ok += 1,
            503 => {
                reply.expect_problem(503, "audit_unavailable", "a full disk");
                refused += 1;
                if refused >= 5 {
                    break;
                }
            }
            other => panic!("a call on a full disk answered {other}: {}", reply.text()),
        }
        assert_eq!(
            world.k429.count(),
            forwarded_before + ok,
            "only recorded calls are forwarded ({ok} answered 200, {refused} refused)"
        );
    }
    assert!(
        refused >= 5,
        "a full disk never refused a call ({ok} went through)"
    );
    assert_eq!(
        world.k429.count(),
        forwarded_before + ok,
        "nothing refused was forwarded"
    );
    wait_ready(&bru, 503).await;

    std::fs::remove_file(&filler).unwrap();
    wait_ready(&bru, 200).await;
    send(world.nav_sosial(&bru, "", KARI))
        .await
        .expect_status(200, "after space is freed");
    assert_eq!(world.k429.count(), forwarded_before + ok + 1);
    drop(bru);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_under_load_loses_no_acknowledged_transfer() {
    let world = audit_world(TestWorld::builder(), None).await;
    let mut bru = world.start().await;
    let token = world.mp_token(NAV, SCOPE_SOSIAL);
    let url = bru.url("/data/k429/sosialtjeneste");
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let client = bru.client.clone();
            let (url, token, acked) = (url.clone(), token.clone(), acked.clone());
            tokio::spawn(async move {
                for i in 0..100_000 {
                    let sent = client
                        .get(&url)
                        .bearer_auth(&token)
                        .header("Bru-Purpose", PURPOSE_SOSIAL)
                        .header("Nav-Personident", PERSONS[(c + i) % 5])
                        .timeout(Duration::from_secs(20))
                        .send()
                        .await;
                    let Ok(resp) = sent else { return };
                    if resp.status().is_success() {
                        if let Some(tid) = resp.headers().get("bru-transfer-id") {
                            acked.lock().unwrap().push(tid.to_str().unwrap().to_owned());
                        }
                    }
                }
            })
        })
        .collect();
    // Kill mid-load, once a good number of calls went through.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while acked.lock().unwrap().len() < 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the load never got going"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = std::process::Command::new("kill")
        .args(["-KILL", &bru.pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    bru.wait_exit(Duration::from_secs(30)).await;
    for c in clients {
        c.await.unwrap();
    }
    let acked: HashSet<String> = acked.lock().unwrap().iter().cloned().collect();
    assert!(acked.len() >= 200);

    // Restart on the same store: every acknowledged transfer has its decision.
    let mut bru = world.start().await;
    wait_ready(&bru, 200).await;
    let (records, _) = world.export().await;
    let decided: HashSet<&str> = records
        .iter()
        .filter(|r| r["kind"] == "decision" && r["decision"] == "allow")
        .filter_map(|r| r["transfer_id"].as_str())
        .collect();
    let lost: Vec<&String> = acked
        .iter()
        .filter(|t| !decided.contains(t.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged transfers have no decision record: {lost:?}",
        lost.len()
    );
    bru.sigterm();
    assert!(bru.wait_exit(Duration::from_secs(60)).await.success());
    let verified = audit_verify(&world.config_path).await;
    assert_eq!(verified.code, Some(0), "{}", verified.text());
}
