//! Blocks (SPEC 10): a citizen blocks an organisation or a dataset; from
//! the next call on, a call about them that the block covers is 403
//! `blocked_by_subject` on every blockable dataset (consent datasets by
//! default; a statutory one only where its policy says so); lifting the
//! block lets calls through again. Blocks are stored under the person's
//! pseudonym, never the number. Both stores.
#![allow(clippy::unwrap_used)]

use bru_tests::bru::Reply;
use bru_tests::consent::*;
use bru_tests::*;
use serde_json::{json, Value};
use sqlx::Connection;

async fn block(cw: &ConsentWorld, bru: &Bru, pid: &str, body: Value) -> Reply {
    send(
        bru.post("/citizen/v1/blocks")
            .bearer_auth(cw.citizen_token(pid))
            .json(&body),
    )
    .await
}

async fn blocks(cw: &ConsentWorld, bru: &Bru, pid: &str) -> Value {
    let reply = send(
        bru.get("/citizen/v1/blocks")
            .bearer_auth(cw.citizen_token(pid)),
    )
    .await;
    reply.expect_status(200, "GET /citizen/v1/blocks");
    reply.json()["blocks"].clone()
}

async fn unblock(cw: &ConsentWorld, bru: &Bru, pid: &str, id: &str) -> Reply {
    send(
        bru.client
            .delete(bru.url(&format!("/citizen/v1/blocks/{id}")))
            .bearer_auth(cw.citizen_token(pid)),
    )
    .await
}

/// NAV reads `k429/sosialtjeneste` about `subject` under statute.
async fn sosialtjeneste(cw: &ConsentWorld, bru: &Bru, subject: &str) -> Reply {
    send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(cw.mp_token(NAV, SCOPE_SOSIAL))
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", subject),
    )
    .await
}

/// Two calls about Kari under her consent, each 403 `blocked_by_subject`.
async fn kari_is_refused_twice(bru: &Bru, k429: &str, kari: &str, when: &str) {
    for n in 0..2 {
        inntekt(bru, k429, Some(kari), KARI, PURPOSE_OMSORG)
            .await
            .expect_problem(403, "blocked_by_subject", &format!("call {n} {when}"));
    }
}

#[tokio::test]
async fn a_block_refuses_the_next_call_until_it_is_lifted() {
    let cw = ConsentWorld::new().await;
    let bru = cw.start().await;
    let k429 = cw.k429_token();
    let kari = granted(&cw, &bru, KARI, None).await;
    let ola = granted(&cw, &bru, OLA, None).await;
    inntekt(&bru, &k429, Some(&kari), KARI, PURPOSE_OMSORG)
        .await
        .expect_status(200, "before the block");

    // Kari blocks K429.
    let created = block(&cw, &bru, KARI, json!({"consumer": format!("0192:{K429}")})).await;
    created.expect_status(201, "block K429");
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let listed = blocks(&cw, &bru, KARI).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["consumer"], format!("0192:{K429}"));
    assert_eq!(blocks(&cw, &bru, OLA).await, json!([]), "Ola has no blocks");

    kari_is_refused_twice(&bru, &k429, &kari, "under the block").await;
    send(bru.get("/problems/blocked_by_subject"))
        .await
        .expect_status(200, "the problem's page");
    // Kari's block is hers: Ola's consent still works, and Ola cannot lift it.
    inntekt(&bru, &k429, Some(&ola), OLA, PURPOSE_OMSORG)
        .await
        .expect_status(200, "a call about Ola");
    unblock(&cw, &bru, OLA, &id)
        .await
        .expect_status(404, "Ola lifting Kari's block");

    // The refused calls used nothing.
    assert_eq!(get_request(&bru, &k429, &kari).await.json()["uses"], 1);

    unblock(&cw, &bru, KARI, &id)
        .await
        .expect_status(204, "lift the block");
    unblock(&cw, &bru, KARI, &id)
        .await
        .expect_status(404, "lift it again");
    assert_eq!(blocks(&cw, &bru, KARI).await, json!([]));
    inntekt(&bru, &k429, Some(&kari), KARI, PURPOSE_OMSORG)
        .await
        .expect_status(200, "after lifting the block");
}

/// K429's token and Kari's granted consent, after Kari blocked
/// `helsenorge/hjemmetjeneste`.
async fn kari_blocks_hjemmetjeneste(cw: &ConsentWorld, bru: &Bru) -> (String, String) {
    let k429 = cw.k429_token();
    let kari = granted(cw, bru, KARI, None).await;
    block(
        cw,
        bru,
        KARI,
        json!({"dataset": "helsenorge/hjemmetjeneste"}),
    )
    .await
    .expect_status(201, "block a dataset");
    (k429, kari)
}

#[tokio::test]
async fn a_dataset_block_covers_that_dataset_only_and_statutory_ones_are_not_blockable() {
    let cw = ConsentWorld::new().await;
    let bru = cw.start().await;
    let (k429, kari) = kari_blocks_hjemmetjeneste(&cw, &bru).await;
    hjemmetjeneste(&bru, &k429, &kari, KARI)
        .await
        .expect_problem(403, "blocked_by_subject", "the blocked dataset");
    inntekt(&bru, &k429, Some(&kari), KARI, PURPOSE_OMSORG)
        .await
        .expect_status(200, "another dataset under the same consent");

    // k429/sosialtjeneste is statutory and its policy does not make it blockable.
    block(&cw, &bru, KARI, json!({"consumer": format!("0192:{NAV}")}))
        .await
        .expect_status(201, "block NAV");
    block(&cw, &bru, KARI, json!({"dataset": "k429/sosialtjeneste"}))
        .await
        .expect_status(201, "block the statutory dataset");
    sosialtjeneste(&cw, &bru, KARI)
        .await
        .expect_status(200, "a statutory call the law does not let Kari block");
}

#[tokio::test]
async fn a_block_must_name_one_known_organisation_or_dataset() {
    let cw = ConsentWorld::new().await;
    let bru = cw.start().await;
    for (body, field) in [
        (json!({}), "consumer"),
        (json!({"consumer": "921429002"}), "consumer"),
        (json!({"consumer": "0192:123"}), "consumer"),
        (json!({"consumer": 921429002}), "consumer"),
        (json!({"dataset": "nav"}), "dataset"),
        (json!({"dataset": "nav/no-such-dataset"}), "dataset"),
        (
            json!({"consumer": format!("0192:{K429}"), "dataset": "nav/inntekt"}),
            "consumer",
        ),
        (json!({"person": KARI}), "person"),
    ] {
        let reply = block(&cw, &bru, KARI, body.clone()).await;
        reply.expect_status(400, &format!("block {body}"));
        assert_eq!(reply.json()["field"], field, "{body}: {}", reply.text());
        assert!(
            !reply.text().contains(KARI),
            "the answer repeats a person number"
        );
    }
    send(bru.get("/citizen/v1/blocks"))
        .await
        .expect_status(401, "without a citizen token");
}

#[tokio::test]
async fn blocks_are_kept_under_a_pseudonym_not_the_person_number() {
    let cw = ConsentWorld::new().await;
    let bru = cw.start().await;
    block(&cw, &bru, KARI, json!({"consumer": format!("0192:{K429}")}))
        .await
        .expect_status(201, "block K429");
    let refs = on_store(&cw, "SELECT subject_ref FROM subject_blocks").await;
    assert_eq!(refs.len(), 1);
    assert!(!refs[0].0.contains(KARI), "{}", refs[0].0);
    assert!(
        refs[0].0.len() >= 16,
        "a pseudonym, not an empty key: {}",
        refs[0].0
    );
}

/// Runs `sql` on the store Bru uses (as another replica's write would land)
/// and returns its rows of one text column.
async fn on_store(cw: &ConsentWorld, sql: &str) -> Vec<(String,)> {
    match world::postgres_url() {
        Some(_) => {
            let url = std::fs::read_to_string(cw.dir.path().join("store.url")).unwrap();
            let mut conn = sqlx::PgConnection::connect(url.trim()).await.unwrap();
            sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap()
        }
        None => {
            let url = format!("sqlite://{}", cw.dir.path().join("bru.db").display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap()
        }
    }
}

#[tokio::test]
async fn a_block_written_by_another_replica_refuses_the_next_call_here() {
    let cw = ConsentWorld::new().await;
    let bru = cw.start().await;
    // A block of another dataset, through the API: it tells the test Kari's
    // pseudonym, and this replica now knows her blocks.
    let (k429, kari) = kari_blocks_hjemmetjeneste(&cw, &bru).await;
    let subject_ref = on_store(&cw, "SELECT subject_ref FROM subject_blocks").await[0]
        .0
        .clone();
    inntekt(&bru, &k429, Some(&kari), KARI, PURPOSE_OMSORG)
        .await
        .expect_status(200, "not covered by the dataset block");

    // Another replica stores Kari's block of K429: no word reaches this one.
    on_store(
        &cw,
        &format!(
            "INSERT INTO subject_blocks (id, subject_ref, consumer, dataset, created_at) \
             VALUES ('c0ffee00-0000-4000-8000-00000000b10c', '{subject_ref}', '0192:{K429}', NULL, \
             '2026-01-01T00:00:00.000Z') RETURNING id"
        ),
    )
    .await;
    kari_is_refused_twice(&bru, &k429, &kari, "after the block").await;
    // Only the allowed call took a use.
    assert_eq!(get_request(&bru, &k429, &kari).await.json()["uses"], 1);

    // Lifted at the other replica: the next call here goes through again.
    on_store(
        &cw,
        "DELETE FROM subject_blocks WHERE id = 'c0ffee00-0000-4000-8000-00000000b10c' RETURNING id",
    )
    .await;
    inntekt(&bru, &k429, Some(&kari), KARI, PURPOSE_OMSORG)
        .await
        .expect_status(200, "after the block was lifted elsewhere");
    assert_eq!(get_request(&bru, &k429, &kari).await.json()["uses"], 2);
}
