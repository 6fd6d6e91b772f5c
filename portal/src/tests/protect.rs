//! The protection pages (protect.rs) in process: pause and resume after a
//! confirmation, blocks only from the lists and only with the form's token,
//! and the access log's filters.

use super::*;

fn kari_ref() -> String {
    Pseudonymiser::new(&[3u8; 32])
        .unwrap()
        .subject_ref(&PersonNumber::parse(KARI, true).unwrap())
}

#[tokio::test]
async fn pause_and_resume_need_a_confirmation_and_the_token() {
    let w = world().await;
    let id = w.request(Some(KARI)).await;
    let kari = PersonNumber::parse(KARI, true).unwrap();
    w.store
        .citizen_action(&id, &kari, CitizenAction::Accept, Timestamp::now())
        .await
        .unwrap();
    let session = w.login(KARI).await;
    let page = w.get(&format!("/samtykke/{id}"), &[&session]).await;
    assert!(page
        .body
        .contains(&format!("href=\"/samtykke/{id}/pause\"")));
    let confirm = w.get(&format!("/samtykke/{id}/pause"), &[&session]).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains("Sette samtykket på pause?"));
    // Without the form's token nothing changes.
    let r = w
        .post(
            &format!("/samtykke/{id}"),
            &[&session],
            "action=pause",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(w.status(&id).await, "granted");
    let form = format!("csrf={}&action=pause", confirm.csrf());
    let r = w
        .post(&format!("/samtykke/{id}"), &[&session], &form, None)
        .await;
    assert_eq!(r.header("location"), format!("/samtykke/{id}?utfort=pause"));
    assert_eq!(w.status(&id).await, "paused");
    // A paused consent is not paused again; it offers resuming.
    let r = w.get(&format!("/samtykke/{id}/pause"), &[&session]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let confirm = w
        .get(&format!("/samtykke/{id}/gjenoppta?lang=en"), &[&session])
        .await;
    assert!(confirm.body.contains("Resume the consent?"));
    let form = format!("csrf={}&action=resume", confirm.csrf());
    w.post(&format!("/samtykke/{id}"), &[&session], &form, None)
        .await;
    assert_eq!(w.status(&id).await, "granted");
    // Ola cannot confirm anything about Kari's consent.
    let ola = w.login(OLA).await;
    let r = w.get(&format!("/samtykke/{id}/pause"), &[&ola]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn blocks_come_from_the_lists_and_need_the_token() {
    let w = world().await;
    let session = w.login(KARI).await;
    let page = w.get("/sperringer", &[&session]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Du har ingen sperringer."));
    assert!(page.body.contains("value=\"org:921429002\""));
    let csrf = page.csrf();

    let r = w
        .post("/sperringer", &[&session], "hva=org:921429002", None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no token");
    // Only what the lists offer.
    let r = w
        .post(
            "/sperringer",
            &[&session],
            &format!("csrf={csrf}&hva=org:974760002"),
            None,
        )
        .await;
    assert_eq!(r.header("location"), "/sperringer?utfort=ugyldig");
    assert!(w.store.blocks(&kari_ref()).await.unwrap().is_empty());

    let r = w
        .post(
            "/sperringer",
            &[&session],
            &format!("csrf={csrf}&hva=org:921429002"),
            None,
        )
        .await;
    assert_eq!(r.header("location"), "/sperringer?utfort=lagt-til");
    let blocks = w.store.blocks(&kari_ref()).await.unwrap();
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].consumer.as_deref(), Some("0192:921429002"));
    let page = w.get("/sperringer", &[&session]).await;
    assert!(page.body.contains("K429 kommune"));

    // Ola cannot lift Kari's block, even with his own token.
    let ola = w.login(OLA).await;
    let olas = w.get("/sperringer", &[&ola]).await;
    let path = format!("/sperringer/{}/fjern", blocks[0].id);
    w.post(&path, &[&ola], &format!("csrf={}", olas.csrf()), None)
        .await;
    assert_eq!(w.store.blocks(&kari_ref()).await.unwrap().len(), 1);
    let r = w.post(&path, &[&session], "csrf=wrong", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = w
        .post(&path, &[&session], &format!("csrf={csrf}"), None)
        .await;
    assert_eq!(r.header("location"), "/sperringer?utfort=fjernet");
    assert!(w.store.blocks(&kari_ref()).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_access_log_is_grouped_by_month_and_filtered() {
    let w = world().await;
    decisions(
        &w,
        KARI,
        &[
            (Some("omsorgsbolig-soknad"), None, None),
            (Some("omsorgsbolig-soknad"), None, Some("consent_required")),
            (Some("omsorgsbolig-soknad"), None, Some("consent_required")),
        ],
    )
    .await;
    let session = w.login(KARI).await;
    let r = w.get("/innsyn", &[&session]).await;
    assert!(r.body.contains("Viser 1–3 av 3"), "{}", r.body);
    assert!(r.body.contains("<section class=\"month\""));
    assert!(r.body.contains("href=\"/citizen/v1/export\""));
    let r = w.get("/innsyn?utfall=avvist", &[&session]).await;
    assert!(r.body.contains("Viser 1–2 av 2"), "{}", r.body);
    assert!(!r.body.contains("/innsyn/0/bevis"));
    let r = w
        .get("/innsyn?utfall=tillatt&org=921429002", &[&session])
        .await;
    assert!(r.body.contains("Viser 1–1 av 1"), "{}", r.body);
    let r = w.get("/innsyn?org=983440002", &[&session]).await;
    assert!(r.body.contains("Ingen hendelser passer med filtrene."));
    let r = w.get("/innsyn?datasett=nav%2Finntekt", &[&session]).await;
    assert!(r.body.contains("Viser 1–3 av 3"), "{}", r.body);
}
