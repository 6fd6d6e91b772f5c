//! Pause and resume (SPEC 10): a citizen pauses a granted consent and the
//! next call under it is 403 `consent_paused` (also where the gateway had
//! the consent cached as granted); resuming lets calls through again with
//! the same consent; both are events in the consent's history; a paused
//! consent can still be revoked at once; and the database itself refuses any
//! other way into or out of `paused` (migration 0009). Both stores; the
//! replica case needs PostgreSQL.
#![allow(clippy::unwrap_used)]

use bru_tests::consent::*;
use bru_tests::*;
use sqlx::Connection;

#[tokio::test]
async fn a_paused_consent_is_refused_until_it_is_resumed() {
    let cw = ConsentWorld::new().await;
    let bru = cw.start().await;
    let k429 = cw.k429_token();
    let id = granted(&cw, &bru, KARI, None).await;

    // A use first, so the gateway has the consent cached as granted.
    inntekt(&bru, &k429, Some(&id), KARI, PURPOSE_OMSORG)
        .await
        .expect_status(200, "a call under the granted consent");

    let paused = citizen_action(&cw, &bru, KARI, &id, "pause").await;
    paused.expect_status(200, "pause");
    assert_eq!(paused.json()["status"], "paused");
    // Pausing twice answers with the consent as it is.
    let again = citizen_action(&cw, &bru, KARI, &id, "pause").await;
    again.expect_status(200, "pause again");
    assert_eq!(again.json()["status"], "paused");

    for n in 0..2 {
        inntekt(&bru, &k429, Some(&id), KARI, PURPOSE_OMSORG)
            .await
            .expect_problem(403, "consent_paused", &format!("call {n} while paused"));
    }
    let problem = inntekt(&bru, &k429, Some(&id), KARI, PURPOSE_OMSORG).await;
    assert!(
        problem.json()["type"]
            .as_str()
            .unwrap()
            .ends_with("/problems/consent_paused"),
        "{}",
        problem.text()
    );
    send(bru.get("/problems/consent_paused"))
        .await
        .expect_status(200, "the problem's page");

    // The citizen sees it as paused.
    let mine = send(
        bru.get(&format!("/citizen/v1/consents/{id}"))
            .bearer_auth(cw.citizen_token(KARI)),
    )
    .await;
    mine.expect_status(200, "GET my consent");
    assert_eq!(mine.json()["status"], "paused");

    let resumed = citizen_action(&cw, &bru, KARI, &id, "resume").await;
    resumed.expect_status(200, "resume");
    assert_eq!(resumed.json()["status"], "granted");
    inntekt(&bru, &k429, Some(&id), KARI, PURPOSE_OMSORG)
        .await
        .expect_status(200, "a call after resuming");

    assert_eq!(
        event_types(&bru, &k429, &id).await,
        ["created", "accepted", "used", "paused", "resumed", "used"]
    );
    let request = get_request(&bru, &k429, &id).await;
    assert_eq!(request.json()["status"], "granted");
    assert_eq!(request.json()["uses"], 2, "refused calls use nothing");
}

#[tokio::test]
async fn only_a_granted_consent_pauses_and_only_a_paused_one_resumes() {
    let cw = ConsentWorld::new().await;
    let bru = cw.start().await;
    let k429 = cw.k429_token();

    // Pending: neither pause nor resume.
    let pending = create(&cw, &bru, &request_body(Some(KARI), None)).await;
    for action in ["pause", "resume"] {
        let reply = citizen_action(&cw, &bru, KARI, &pending, action).await;
        conflict(&reply, "pending", &format!("{action} a pending consent"));
    }

    // Granted: resume is a no-op answer, not a change.
    let id = granted(&cw, &bru, KARI, None).await;
    let reply = citizen_action(&cw, &bru, KARI, &id, "resume").await;
    reply.expect_status(200, "resume a granted consent");
    assert_eq!(reply.json()["status"], "granted");

    // Another citizen cannot pause mine.
    citizen_action(&cw, &bru, OLA, &id, "pause")
        .await
        .expect_status(404, "another citizen's pause");

    // A paused consent can be revoked at once, and then neither resumes nor pauses.
    citizen_action(&cw, &bru, KARI, &id, "pause")
        .await
        .expect_status(200, "pause");
    let revoked = citizen_action(&cw, &bru, KARI, &id, "revoke").await;
    revoked.expect_status(200, "revoke a paused consent");
    assert_eq!(revoked.json()["status"], "revoked");
    for action in ["pause", "resume"] {
        let reply = citizen_action(&cw, &bru, KARI, &id, action).await;
        conflict(&reply, "revoked", &format!("{action} a revoked consent"));
    }
    inntekt(&bru, &k429, Some(&id), KARI, PURPOSE_OMSORG)
        .await
        .expect_problem(403, "consent_revoked", "a call after revoking");
    assert_eq!(
        event_types(&bru, &k429, &id).await,
        ["created", "accepted", "paused", "revoked"]
    );
}

/// A 409 `invalid_transition` (an API problem: no transfer) from `state`.
fn conflict(reply: &bru::Reply, state: &str, context: &str) {
    reply.expect_status(409, context);
    let problem = reply.json();
    assert_eq!(problem["code"], "invalid_transition", "{context}");
    assert_eq!(problem["consent_status"], state, "{context}");
}

/// Runs `sql` on the world's database; whether the database accepted it.
async fn database_accepts(cw: &ConsentWorld, sql: &str) -> bool {
    match world::postgres_url() {
        Some(_) => {
            let url = std::fs::read_to_string(cw.dir.path().join("store.url")).unwrap();
            let mut conn = sqlx::PgConnection::connect(url.trim()).await.unwrap();
            let done = sqlx::query(sql).execute(&mut conn).await.is_ok();
            let _ = conn.close().await;
            done
        }
        None => {
            let url = format!("sqlite://{}", cw.dir.path().join("bru.db").display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            let done = sqlx::query(sql).execute(&mut conn).await.is_ok();
            let _ = conn.close().await;
            done
        }
    }
}

#[tokio::test]
async fn the_database_refuses_any_other_way_into_or_out_of_paused() {
    let cw = ConsentWorld::new().await;
    let bru = cw.start().await;
    let pending = create(&cw, &bru, &request_body(Some(KARI), None)).await;
    let paused = granted(&cw, &bru, KARI, None).await;
    citizen_action(&cw, &bru, KARI, &paused, "pause")
        .await
        .expect_status(200, "pause");
    let revoked = granted(&cw, &bru, KARI, None).await;
    citizen_action(&cw, &bru, KARI, &revoked, "revoke")
        .await
        .expect_status(200, "revoke");

    let set = |id: &str, status: &str| {
        format!("UPDATE consents SET status = '{status}' WHERE id = '{id}'")
    };
    for (id, to) in [
        (&pending, "paused"),
        (&revoked, "paused"),
        (&paused, "pending"),
        (&paused, "rejected"),
    ] {
        assert!(
            !database_accepts(&cw, &set(id, to)).await,
            "the database let a consent become {to} by another way"
        );
    }
    // A paused consent is not used, even by a writer that skips the store.
    assert!(
        !database_accepts(
            &cw,
            &format!("UPDATE consents SET uses = uses + 1 WHERE id = '{paused}'")
        )
        .await,
        "the database counted a use of a paused consent"
    );
    // A `paused` event needs a paused consent, a `resumed` one a granted consent.
    let event = |id: &str, kind: &str| {
        format!(
            "INSERT INTO consent_events (consent_id, seq, type, at) \
             VALUES ('{id}', 99, '{kind}', '2026-01-01T00:00:00Z')"
        )
    };
    assert!(!database_accepts(&cw, &event(&pending, "paused")).await);
    assert!(!database_accepts(&cw, &event(&paused, "resumed")).await);
    // The allowed ways still work under the triggers: resume, then pause.
    assert!(database_accepts(&cw, &set(&paused, "granted")).await);
    assert!(database_accepts(&cw, &set(&paused, "paused")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pause_through_one_replica_holds_at_the_others_on_their_next_call() {
    if world::postgres_url().is_none() {
        eprintln!(
            "SKIPPED: replicas share a PostgreSQL database; run with BRU_TEST_STORE=postgres"
        );
        return;
    }
    let cw = ConsentWorld::new().await;
    let replicas = [cw.start().await, cw.start().await, cw.start().await];
    let k429 = cw.k429_token();
    for via in 0..replicas.len() {
        let id = granted(&cw, &replicas[via], KARI, None).await;
        // Every replica has the consent cached as granted.
        for bru in &replicas {
            inntekt(bru, &k429, Some(&id), KARI, PURPOSE_OMSORG)
                .await
                .expect_status(200, "a call before the pause");
        }
        citizen_action(&cw, &replicas[via], KARI, &id, "pause")
            .await
            .expect_status(200, "pause");
        for (n, bru) in replicas.iter().enumerate() {
            inntekt(bru, &k429, Some(&id), KARI, PURPOSE_OMSORG)
                .await
                .expect_problem(
                    403,
                    "consent_paused",
                    &format!("the next call via replica {n} after pausing via {via}"),
                );
        }
        citizen_action(&cw, &replicas[(via + 1) % 3], KARI, &id, "resume")
            .await
            .expect_status(200, "resume");
        for bru in &replicas {
            inntekt(bru, &k429, Some(&id), KARI, PURPOSE_OMSORG)
                .await
                .expect_status(200, "a call after resuming");
        }
    }
}
