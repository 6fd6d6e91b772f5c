//! Several `bru serve` replicas on one PostgreSQL database (PostgreSQL pass
//! only: SQLite is one process per file). A revocation through one replica
//! is refused by the others on their next call; `max_uses` holds across
//! replicas; killing the checkpoint signer under load loses no acknowledged
//! transfer, another replica signs within seconds, and the log verifies.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bru_tests::consent::*;
use bru_tests::*;
use sqlx::Connection;

const REPLICAS: usize = 3;
const SIGNER_LINE: &str = "now signs checkpoints";

/// Statutory calls round-robin over `replicas` until `stop`; collects the
/// transfer ids of the 2xx answers.
fn load(
    cw: &ConsentWorld,
    replicas: &[Bru],
    stop: &Arc<AtomicBool>,
    acked: &Arc<Mutex<Vec<String>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let token = cw.mp_token(NAV, SCOPE_SOSIAL);
    (0..6)
        .map(|c| {
            let targets: Vec<(reqwest::Client, String)> = replicas
                .iter()
                .map(|b| (b.client.clone(), b.url("/data/k429/sosialtjeneste")))
                .collect();
            let (token, stop, acked) = (token.clone(), stop.clone(), acked.clone());
            tokio::spawn(async move {
                let mut i = c;
                while !stop.load(Ordering::Relaxed) {
                    let (client, url) = &targets[i % targets.len()];
                    i += 1;
                    let sent = client
                        .get(url)
                        .bearer_auth(&token)
                        .header("Bru-Purpose", PURPOSE_SOSIAL)
                        .header("Nav-Personident", PERSONS[i % 5])
                        .timeout(Duration::from_secs(20))
                        .send()
                        .await;
                    // A killed replica refuses connections: try the next one.
                    let Ok(resp) = sent else { continue };
                    if resp.status().is_success() {
                        if let Some(tid) = resp.headers().get("bru-transfer-id") {
                            acked.lock().unwrap().push(tid.to_str().unwrap().to_owned());
                        }
                    }
                }
            })
        })
        .collect()
}

async fn checkpoints(db: &str) -> (i64, i64) {
    let mut conn = sqlx::PgConnection::connect(db).await.unwrap();
    let row: (i64, Option<i64>) = sqlx::query_as("SELECT count(*), max(size) FROM checkpoints")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let _ = conn.close().await;
    (row.0, row.1.unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_on_one_postgres_database() {
    if world::postgres_url().is_none() {
        eprintln!(
            "SKIPPED: replicas share a PostgreSQL database; run with BRU_TEST_STORE=postgres \
             (scripts/test-all does). SQLite is one process per file."
        );
        return;
    }
    let cw = ConsentWorld::new().await;
    let mut replicas = Vec::new();
    for _ in 0..REPLICAS {
        replicas.push(cw.start().await);
    }
    let db = std::fs::read_to_string(cw.dir.path().join("store.url")).unwrap();
    let k429 = cw.k429_token();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let workers = load(&cw, &replicas, &stop, &acked);

    // 1. Revocation through one replica, seen by the others on their next call.
    let mut worst = Duration::ZERO;
    for round in 0..5 {
        let via = round % REPLICAS;
        let id = granted(&cw, &replicas[via], KARI, None).await;
        for (n, bru) in replicas.iter().enumerate() {
            inntekt(bru, &k429, Some(&id), KARI, PURPOSE_OMSORG)
                .await
                .expect_status(200, &format!("round {round}: use via replica {n}"));
        }
        citizen_action(&cw, &replicas[via], KARI, &id, "revoke")
            .await
            .expect_status(200, "revoke");
        let revoked_at = Instant::now();
        for (n, bru) in replicas.iter().enumerate().filter(|(n, _)| *n != via) {
            inntekt(bru, &k429, Some(&id), KARI, PURPOSE_OMSORG)
                .await
                .expect_problem(
                    403,
                    "consent_revoked",
                    &format!(
                        "round {round}: the next call via replica {n} after revoking via {via}"
                    ),
                );
        }
        worst = worst.max(revoked_at.elapsed());
    }
    println!(
        "revocation seen by every other replica (revoke reply -> each refused call) within {worst:?} (worst of 5 rounds)"
    );

    // 2. 50 parallel uses of a max_uses = 10 consent spread over the replicas.
    let id = granted(&cw, &replicas[0], KARI, Some(10)).await;
    let calls: Vec<_> = (0..50)
        .map(|i| {
            let rb = replicas[i % REPLICAS]
                .get("/data/nav/inntekt")
                .bearer_auth(&k429)
                .header("Bru-Purpose", PURPOSE_OMSORG)
                .header("Nav-Personident", KARI)
                .header("Bru-Consent", &id);
            tokio::spawn(send(rb))
        })
        .collect();
    let (mut allowed, mut exhausted) = (0, 0);
    for call in calls {
        let reply = call.await.unwrap();
        match (reply.status, reply.code().as_deref()) {
            (200, _) => allowed += 1,
            (403, Some("consent_exhausted")) => exhausted += 1,
            (status, code) => panic!("unexpected {status} {code:?}: {}", reply.text()),
        }
    }
    assert_eq!((allowed, exhausted), (10, 40));
    assert_eq!(
        get_request(&replicas[1], &k429, &id).await.json()["uses"],
        10
    );

    // 3. Kill -9 the checkpoint signer under load.
    let deadline = Instant::now() + Duration::from_secs(60);
    let holder = loop {
        let holders: Vec<usize> = (0..REPLICAS)
            .filter(|&n| replicas[n].logs().contains(SIGNER_LINE))
            .collect();
        if let [one] = holders[..] {
            break one;
        }
        assert!(
            holders.len() <= 1,
            "more than one replica signs checkpoints: {holders:?}"
        );
        assert!(Instant::now() < deadline, "no replica signs checkpoints");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    while acked.lock().unwrap().len() < 200 {
        assert!(Instant::now() < deadline, "the load never got going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = Command::new("kill")
        .args(["-KILL", &replicas[holder].pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    replicas[holder].wait_exit(Duration::from_secs(30)).await;
    let killed_at = Instant::now();
    let (_, size_at_kill) = checkpoints(&db).await;
    // Records committed after the kill must get a checkpoint from a survivor.
    let target = {
        let mut conn = sqlx::PgConnection::connect(&db).await.unwrap();
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM audit_records")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        n.max(size_at_kill + 1)
    };
    let takeover = loop {
        let (_, size) = checkpoints(&db).await;
        if size >= target {
            break killed_at.elapsed();
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(60),
            "no surviving replica signed a checkpoint of size {target} (largest {size})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let new_signers = (0..REPLICAS)
        .filter(|&n| n != holder && replicas[n].logs().contains(SIGNER_LINE))
        .count();
    assert_eq!(new_signers, 1, "exactly one survivor took over signing");
    println!("another replica signed a checkpoint {takeover:?} after the signer was killed");

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let acked: HashSet<String> = acked.lock().unwrap().iter().cloned().collect();
    let (records, _) = cw.export().await;
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
        "{} of {} acknowledged transfers have no decision record: {lost:?}",
        lost.len(),
        acked.len()
    );
    let indexes: Vec<u64> = records
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(
        indexes,
        (0..records.len() as u64).collect::<Vec<_>>(),
        "one dense log"
    );

    // The survivors sign the final head on shutdown; the whole log verifies.
    for (n, bru) in replicas.iter_mut().enumerate() {
        if n != holder {
            bru.sigterm();
            bru.wait_exit(Duration::from_secs(30)).await;
        }
    }
    let out = Command::new(bru_bin())
        .args(["audit", "verify", "--config"])
        .arg(&cw.config_path)
        .current_dir(cw.dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bru audit verify failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "{} acknowledged transfers, all recorded; {}",
        acked.len(),
        String::from_utf8_lossy(&out.stdout).trim()
    );
}
