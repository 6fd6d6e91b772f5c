//! SPEC section 11 from the outside: two `bru witness` processes cosign a
//! consistent log; a log an attacker with database access rewrote (rolled
//! back and grown again: a fork) is refused by both, `bru audit verify
//! --witnesses 2` fails on it, and a restarted witness keeps its state.
//!
//! The cosignatures are checked here with code written from C2SP
//! tlog-cosignature (Ed25519, key id SHA-256(name ‖ 0x0A ‖ 0x04 ‖ key)[:4],
//! message `cosignature/v1\ntime T\n<body>`), not with Bru's.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bru_tests::transparency::*;
use bru_tests::*;
use rustls_pki_types::pem::PemObject;

/// A `bru witness` child process.
struct WitnessProcess {
    child: Child,
    vkey: String,
    url: String,
}

impl Drop for WitnessProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_witness(dir: &Path, name: &str, log_vkey: &str, port: u16) -> WitnessProcess {
    let mut child = Command::new(bru_bin())
        .args(["witness", "--listen", &format!("127.0.0.1:{port}"), "--key"])
        .arg(dir.join(format!("{name}.key")))
        .args(["--log", log_vkey])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start bru witness");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let vkey = lines
        .next()
        .expect("a first line")
        .unwrap()
        .strip_prefix("witness vkey=")
        .expect("`witness vkey=` first")
        .to_owned();
    let listening = lines.next().expect("a second line").unwrap();
    let addr = listening
        .strip_prefix("witness listening on ")
        .expect("the address")
        .to_owned();
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    WitnessProcess {
        child,
        vkey,
        url: format!("http://{addr}"),
    }
}

/// A free port, so a restarted witness can listen where Bru's config points.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The C2SP signed-note verifier key of the world's checkpoint key
/// (`name+hex(SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[:4])+base64(0x01 ‖ key)`).
fn log_vkey(dir: &Path) -> String {
    let pem = std::fs::read(dir.join("keys/checkpoint.pem")).unwrap();
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(&pem).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der.secret_pkcs8_der()).unwrap();
    let pk = pair.public_key().as_ref().to_vec();
    let name = "localhost:8443/bru-log";
    let mut m = format!("{name}\n").into_bytes();
    m.push(0x01);
    m.extend_from_slice(&pk);
    let id = digest::digest(&digest::SHA256, &m);
    let mut typed = vec![0x01];
    typed.extend_from_slice(&pk);
    format!(
        "{name}+{}+{}",
        id.as_ref()[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
        STANDARD.encode(typed)
    )
}

/// Whether `note` carries a valid v1 cosignature by the witness `vkey`.
fn cosigned_by(note: &str, vkey: &str) -> bool {
    let mut parts = vkey.splitn(3, '+');
    let (name, id_hex, key) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let typed = STANDARD.decode(key).unwrap();
    assert_eq!(typed[0], 0x04, "a cosignature vkey has type 0x04: {vkey}");
    let pk = &typed[1..];
    let mut m = format!("{name}\n").into_bytes();
    m.push(0x04);
    m.extend_from_slice(pk);
    let id = digest::digest(&digest::SHA256, &m).as_ref()[..4].to_vec();
    let id_text: String = id.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(id_text, id_hex, "the vkey's key id");
    let split = note.find("\n\n").unwrap();
    let body = &note[..=split];
    note[split + 2..].lines().any(|line| {
        let Some(rest) = line.strip_prefix(&format!("\u{2014} {name} ")) else {
            return false;
        };
        let blob = STANDARD.decode(rest).unwrap();
        if blob.len() != 76 || blob[..4] != id[..] {
            return false;
        }
        let t = u64::from_be_bytes(blob[4..12].try_into().unwrap());
        let message = format!("cosignature/v1\ntime {t}\n{body}");
        UnparsedPublicKey::new(&ED25519, pk)
            .verify(message.as_bytes(), &blob[12..])
            .is_ok()
    })
}

async fn checkpoint(bru: &Bru, token: &str) -> String {
    let reply = send(bru.get("/audit/v1/checkpoint").bearer_auth(token)).await;
    reply.expect_status(200, "the checkpoint");
    reply.text()
}

fn size_of(note: &str) -> u64 {
    note.lines().nth(1).unwrap().parse().unwrap()
}

/// Waits until the newest checkpoint covers `min_size` records and carries
/// both witnesses' cosignatures.
async fn wait_cosigned(bru: &Bru, token: &str, min_size: u64, vkeys: &[&str]) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let note = checkpoint(bru, token).await;
        if size_of(&note) >= min_size && vkeys.iter().all(|v| cosigned_by(&note, v)) {
            return note;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no cosigned checkpoint of size {min_size}; last:\n{note}\nbru:\n{}",
            bru.logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn calls(world: &TestWorld, bru: &Bru, n: usize) {
    for i in 0..n {
        send(world.nav_sosial(bru, "", PERSONS[i % PERSONS.len()]))
            .await
            .expect_status(200, "a statutory call");
    }
}

async fn verify_witnesses(config: &Path, n: usize) -> (Option<i32>, String) {
    let config: PathBuf = config.to_owned();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(bru_bin())
            .args(["audit", "verify", "--witnesses", &n.to_string(), "--config"])
            .arg(&config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    })
    .await
    .unwrap()
}

/// Rolls the log back to the newest tree head at or below `keep` records,
/// as an operator with the database would before writing another history.
async fn roll_back(world: &TestWorld, keep: u64) -> u64 {
    use sqlx::Connection;
    let keep = i64::try_from(keep).unwrap();
    match world::postgres_url() {
        None => {
            let url = format!("sqlite://{}", world.dir.path().join("bru.db").display());
            let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
            for t in [
                "audit_records_no_update",
                "audit_records_no_delete",
                "tree_nodes_no_delete",
                "tree_heads_no_delete",
                "checkpoints_no_delete",
            ] {
                sqlx::raw_sql(&format!("DROP TRIGGER {t}"))
                    .execute(&mut db)
                    .await
                    .unwrap();
            }
            let k: i64 = sqlx::query_scalar("SELECT MAX(size) FROM tree_heads WHERE size <= $1")
                .bind(keep)
                .fetch_one(&mut db)
                .await
                .unwrap();
            for sql in [
                "DELETE FROM audit_records WHERE idx >= $1",
                "DELETE FROM tree_nodes WHERE size > $1",
                "DELETE FROM tree_heads WHERE size > $1",
                "DELETE FROM checkpoints WHERE size > $1",
                "DELETE FROM witness_cosignatures",
            ] {
                sqlx::query(sql).bind(k).execute(&mut db).await.unwrap();
            }
            db.close().await.unwrap();
            u64::try_from(k).unwrap()
        }
        Some(_) => {
            let url = std::fs::read_to_string(world.dir.path().join("store.url")).unwrap();
            let mut db = sqlx::PgConnection::connect(url.trim()).await.unwrap();
            for t in ["audit_records", "tree_nodes", "tree_heads", "checkpoints"] {
                sqlx::raw_sql(&format!("ALTER TABLE {t} DISABLE TRIGGER USER"))
                    .execute(&mut db)
                    .await
                    .unwrap();
            }
            let k: i64 = sqlx::query_scalar("SELECT MAX(size) FROM tree_heads WHERE size <= $1")
                .bind(keep)
                .fetch_one(&mut db)
                .await
                .unwrap();
            for sql in [
                "DELETE FROM audit_records WHERE idx >= $1",
                "DELETE FROM tree_nodes WHERE size > $1",
                "DELETE FROM tree_heads WHERE size > $1",
                "DELETE FROM checkpoints WHERE size > $1",
                "DELETE FROM witness_cosignatures WHERE size >= 0 OR $1 < 0",
            ] {
                sqlx::query(sql).bind(k).execute(&mut db).await.unwrap();
            }
            for t in ["audit_records", "tree_nodes", "tree_heads", "checkpoints"] {
                sqlx::raw_sql(&format!("ALTER TABLE {t} ENABLE TRIGGER USER"))
                    .execute(&mut db)
                    .await
                    .unwrap();
            }
            db.close().await.unwrap();
            u64::try_from(k).unwrap()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_witnesses_cosign_a_consistent_log_and_refuse_a_fork() {
    let world = audit_world(TestWorld::builder(), None).await;
    let dir = world.dir.path();
    let log = log_vkey(dir);
    let ports = [free_port(), free_port()];
    let w1 = start_witness(dir, "w1", &log, ports[0]);
    let mut w2 = start_witness(dir, "w2", &log, ports[1]);
    assert_ne!(w1.vkey, w2.vkey, "each witness has its own key");
    let mut config = std::fs::read_to_string(&world.config_path).unwrap();
    for w in [&w1, &w2] {
        config.push_str(&format!(
            "\n[[witness]]\nurl = \"{}\"\nkey = \"{}\"\n",
            w.url, w.vkey
        ));
    }
    std::fs::write(&world.config_path, config).unwrap();

    // A consistent log: both cosign, and again after it grows (the second
    // time with a consistency proof from the first).
    let mut bru = world.start().await;
    let token = audit_token(&world);
    calls(&world, &bru, 4).await;
    let first = wait_cosigned(&bru, &token, 4, &[&w1.vkey, &w2.vkey]).await;
    calls(&world, &bru, 6).await;
    let grown = wait_cosigned(&bru, &token, size_of(&first) + 6, &[&w1.vkey, &w2.vkey]).await;
    // The citizen's proof carries the cosigned checkpoint too.
    let found = get_json(
        bru.get(&format!("/audit/v1/records?kind=decision&subject={KARI}"))
            .bearer_auth(&token),
        "Kari's records",
    )
    .await;
    let index = found["records"][0]["index"].as_u64().unwrap();
    let citizen = citizen_token(&world, KARI);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let proof = get_json(
            bru.get(&format!("/citizen/v1/transfers/{index}/proof"))
                .bearer_auth(&citizen),
            "Kari's proof",
        )
        .await;
        let note = proof["checkpoint"].as_str().unwrap();
        if cosigned_by(note, &w1.vkey) && cosigned_by(note, &w2.vkey) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the citizen's proof never carried both cosignatures: {proof}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bru.sigterm();
    bru.wait_exit(Duration::from_secs(60)).await;
    let (code, out) = verify_witnesses(&world.config_path, 2).await;
    assert_eq!(code, Some(0), "a witnessed log verifies:\n{out}");
    assert!(out.contains("2 valid cosignatures"), "{out}");
    let (code, out) = verify_witnesses(&world.config_path, 3).await;
    assert_eq!(code, Some(1), "three cosignatures cannot be there:\n{out}");

    // A witness restart keeps its state: same key, and it still knows the
    // size it cosigned (a request from 0 is a conflict naming that size).
    let cosigned = size_of(&grown);
    drop(w2);
    w2 = start_witness(dir, "w2", &log, ports[1]);
    let stale = reqwest::Client::new()
        .post(format!("{}/add-checkpoint", w2.url))
        .body(format!("old 0\n\n{}", first))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status().as_u16(), 409);
    assert_eq!(
        stale
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/x.tlog.size")
    );
    let known: u64 = stale.text().await.unwrap().trim().parse().unwrap();
    assert!(
        known >= cosigned,
        "the restarted witness knows {known} ≥ {cosigned}"
    );

    // The fork: the operator rolls the log back to half and writes another
    // history on top, larger than the one the witnesses saw.
    let kept = roll_back(&world, cosigned / 2).await;
    assert!(kept < cosigned, "rolled back to {kept} of {cosigned}");
    let bru = world.start().await;
    calls(&world, &bru, 12).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let note = loop {
        let note = checkpoint(&bru, &token).await;
        let metrics = send(bru.ops_client.get(bru.ops_url("/metrics")))
            .await
            .text();
        let failing = metrics
            .lines()
            .filter(|l| l.starts_with("bru_witness_failures_total{") && !l.ends_with(" 0"))
            .count();
        // Both answered 422 to a proof from the size they cosigned.
        let ready = send(bru.ops_client.get(bru.ops_url("/readyz")))
            .await
            .text();
        let refused = ready
            .matches("last error: the witness refused the consistency proof")
            .count();
        if size_of(&note) > known && failing == 2 && refused == 2 {
            break note;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "both witnesses should refuse the fork; checkpoint:\n{note}\nmetrics:\n{metrics}\nreadyz:\n{ready}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(
        !cosigned_by(&note, &w1.vkey) && !cosigned_by(&note, &w2.vkey),
        "no witness cosigns a fork:\n{note}"
    );
    let ready = send(bru.ops_client.get(bru.ops_url("/readyz"))).await;
    assert_eq!(ready.status, 200, "witnesses never make Bru unready");
    assert!(ready.text().contains("last error:"), "{}", ready.text());
    drop(bru);
    let (code, out) = verify_witnesses(&world.config_path, 2).await;
    assert_eq!(code, Some(1), "a forked log fails --witnesses 2:\n{out}");
    assert!(out.contains("NOT WITNESSED"), "{out}");
}
