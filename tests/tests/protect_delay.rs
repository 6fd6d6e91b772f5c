//! Delayed disclosure (SPEC 10): a consumer rule with
//! `disclosure_delay_days = 30` (a police district). Its transfer is
//! recorded at once and the audit API shows it at once; the citizen's
//! access log leaves it out, and its proof is 404 as if it did not exist,
//! until its time + 30 days; then both show it with its original time.
//!
//! The clock: a debug build of `bru` moves the clock of delayed disclosure
//! only (tokens, consents and records keep the real time) by
//! `BRU_TEST_DISCLOSURE_SKEW_DAYS`; a release build never reads it. The
//! test restarts `bru` on the same store with the clock 29 and then 31 days
//! on. Both stores.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bru_tests::consent::*;
use bru_tests::*;
use serde_json::Value;

const POLICE: &str = "974760002";
const PURPOSE_POLICE: &str = "etterforskning";

/// The consent world with a police district that may read
/// `k429/sosialtjeneste` for `etterforskning`, its calls disclosed 30 days
/// late; K429 reads the audit API.
async fn delay_world() -> ConsentWorld {
    let cw = ConsentWorld::new().await;
    let path = cw.dir.path().join("policy.toml");
    let mut policy: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    let add = |policy: &mut toml::Table, key: &str, value: &str| {
        let table: toml::Table = value.parse().unwrap();
        policy
            .get_mut(key)
            .unwrap()
            .as_array_mut()
            .unwrap()
            .push(toml::Value::Table(table));
    };
    add(
        &mut policy,
        "organisation",
        &format!("org = \"{POLICE}\"\nname = \"Politiet (test)\""),
    );
    add(
        &mut policy,
        "purpose",
        &format!(
            "id = \"{PURPOSE_POLICE}\"\ntitle = {{ nb = \"Etterforskning\", en = \"Investigation\" }}\n\
             description = {{ nb = \"Etterforskning.\", en = \"An investigation.\" }}"
        ),
    );
    add(
        &mut policy,
        "consumer",
        &format!(
            "org = \"{POLICE}\"\ndisclosure_delay_days = 30\n\
             [[dataset]]\nid = \"k429/sosialtjeneste\"\npurposes = [\"{PURPOSE_POLICE}\"]"
        ),
    );
    for d in policy["dataset"].as_array_mut().unwrap() {
        if d["id"].as_str() == Some("sosialtjeneste") {
            let purposes = d["purpose"].as_array_mut().unwrap();
            let mut p = toml::Table::new();
            p.insert("id".into(), PURPOSE_POLICE.into());
            purposes.push(toml::Value::Table(p));
        }
    }
    for c in policy["consumer"].as_array_mut().unwrap() {
        if c["org"].as_str() == Some(K429) {
            c.as_table_mut()
                .unwrap()
                .insert("audit_reader".into(), true.into());
        }
    }
    std::fs::write(&path, toml::to_string(&policy).unwrap()).unwrap();
    cw
}

/// `consumer` reads `k429/sosialtjeneste` about Kari for `purpose`; the transfer id.
async fn sosialtjeneste(cw: &ConsentWorld, bru: &Bru, consumer: &str, purpose: &str) -> String {
    let reply = send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(cw.mp_token(consumer, SCOPE_SOSIAL))
            .header("Bru-Purpose", purpose)
            .header("Nav-Personident", KARI),
    )
    .await;
    reply.expect_status(200, &format!("{consumer} reads the case"));
    reply.transfer_id().unwrap()
}

/// Kari's access log: (transfer id, time) of every entry.
async fn access_log(cw: &ConsentWorld, bru: &Bru) -> Vec<(String, String)> {
    let reply = send(
        bru.get("/citizen/v1/transfers")
            .bearer_auth(cw.citizen_token(KARI)),
    )
    .await;
    reply.expect_status(200, "GET /citizen/v1/transfers");
    reply.json()["transfers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["transfer_id"].as_str().unwrap().to_owned(),
                t["time"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The audit API's decision record of `transfer_id`.
async fn audited(cw: &ConsentWorld, bru: &Bru, transfer_id: &str) -> Value {
    let reply = send(
        bru.get("/audit/v1/records?kind=decision&limit=500")
            .bearer_auth(cw.mp_token(K429, "bru:audit")),
    )
    .await;
    reply.expect_status(200, "GET /audit/v1/records");
    reply.json()["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["transfer_id"] == transfer_id)
        .cloned()
        .unwrap_or_else(|| panic!("the audit API lacks {transfer_id}"))
}

/// Kari's proof of the record at `index`: its status, waiting while the
/// record is not under a checkpoint yet.
async fn proof_status(cw: &ConsentWorld, bru: &Bru, index: u64) -> (u16, String) {
    for _ in 0..40 {
        let reply = send(
            bru.get(&format!("/citizen/v1/transfers/{index}/proof"))
                .bearer_auth(cw.citizen_token(KARI)),
        )
        .await;
        if !(reply.status == 404 && reply.text().contains("checkpoint")) {
            return (reply.status, reply.text());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("record {index} never came under a checkpoint");
}

async fn restart(cw: &mut ConsentWorld, bru: &mut Bru, skew_days: &str) {
    bru.sigterm();
    bru.wait_exit(Duration::from_secs(30)).await;
    cw.world
        .env
        .retain(|(k, _)| k != "BRU_TEST_DISCLOSURE_SKEW_DAYS");
    cw.world
        .env
        .push(("BRU_TEST_DISCLOSURE_SKEW_DAYS".into(), skew_days.into()));
    *bru = cw.start().await;
}

#[tokio::test]
async fn a_delayed_transfer_reaches_the_citizen_only_after_its_delay() {
    let mut cw = delay_world().await;
    let mut bru = cw.start().await;

    let police = sosialtjeneste(&cw, &bru, POLICE, PURPOSE_POLICE).await;
    let nav = sosialtjeneste(&cw, &bru, NAV, PURPOSE_SOSIAL).await;

    // The audit API shows both at once, the police's with its delay.
    let police_record = audited(&cw, &bru, &police).await;
    assert_eq!(
        police_record["disclosure_delay_days"], 30,
        "{police_record}"
    );
    let nav_record = audited(&cw, &bru, &nav).await;
    assert!(nav_record.get("disclosure_delay_days").is_none());
    let police_index = police_record["index"].as_u64().unwrap();
    let police_time = police_record["time"].as_str().unwrap().to_owned();
    // Its outcome record carries the delay too.
    assert_eq!(
        cw.record(&police, "outcome").await["disclosure_delay_days"],
        30
    );

    // Kari sees NAV's transfer, not the police's; the police's proof is 404
    // although the checkpoint that proves NAV's (a later record) covers it.
    let log = access_log(&cw, &bru).await;
    assert!(log.iter().any(|(id, _)| *id == nav), "{log:?}");
    assert!(!log.iter().any(|(id, _)| *id == police), "{log:?}");
    let nav_index = nav_record["index"].as_u64().unwrap();
    assert!(nav_index > police_index);
    assert_eq!(proof_status(&cw, &bru, nav_index).await.0, 200);
    let (status, body) = proof_status(&cw, &bru, police_index).await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("no transfer record with this index"),
        "{body}"
    );

    // 29 days on: still hidden.
    restart(&mut cw, &mut bru, "29").await;
    let log = access_log(&cw, &bru).await;
    assert!(!log.iter().any(|(id, _)| *id == police), "{log:?}");
    assert_eq!(proof_status(&cw, &bru, police_index).await.0, 404);

    // 31 days on: shown, with its original time, and provable.
    restart(&mut cw, &mut bru, "31").await;
    let log = access_log(&cw, &bru).await;
    let shown = log.iter().find(|(id, _)| *id == police);
    assert_eq!(
        shown.map(|(_, time)| time.as_str()),
        Some(police_time.as_str()),
        "{log:?}"
    );
    let (status, body) = proof_status(&cw, &bru, police_index).await;
    assert_eq!(status, 200, "{body}");
}
