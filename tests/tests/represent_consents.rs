//! Issue 18 / SPEC 9.3: parents, guardians and fullmakt holders act for the
//! people they represent through the citizen API (`Bru-On-Behalf-Of`), and
//! everything they do is evidence the represented person sees.
#![allow(clippy::unwrap_used)]

use bru_tests::consent::*;
use bru_tests::represent::*;
use bru_tests::*;
use serde_json::Value;

fn events(reply: &Reply) -> Vec<(String, String)> {
    reply.json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["by"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn consent_ids(reply: &Reply) -> Vec<String> {
    let j = reply.json();
    ["active", "pending", "past"]
        .iter()
        .flat_map(|g| j[g].as_array().unwrap().clone())
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn kari_approves_for_emma_ola_sees_it_and_revokes_it() {
    let rw = RepresentWorld::new().await;
    let bru = rw.start().await;
    let kari = rw.citizen_token(KARI);
    let ola = rw.citizen_token(OLA);

    // Kari may act for Emma (12) as a parent; the party is no person number.
    let list = represented(&bru, &kari).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["name"], "Emma Nordmann");
    assert_eq!(list[0]["basis"], "parent");
    assert_eq!(list[0]["may"], serde_json::json!(["read", "decide"]));
    let party = list[0]["party"].as_str().unwrap().to_owned();
    assert!(
        !party.contains(EMMA)
            && !party
                .chars()
                .any(|c| c.is_ascii_digit() && party.len() == 11)
    );
    // The registry was asked with a Maskinporten token, numbers in the body only.
    let asked = rw.registry.requests();
    assert!(!asked.is_empty());
    for r in &asked {
        assert!(r
            .authorization
            .as_deref()
            .unwrap()
            .starts_with("Bearer access-token-"));
        for pid in PERSONS {
            assert!(
                !r.uri.contains(pid),
                "a person number in the registry URL {}",
                r.uri
            );
        }
    }
    assert!(
        !rw.token.grants().is_empty(),
        "a grant was sent for the registry"
    );

    // K429 asks for Emma's consent; Kari approves it for her.
    let id = create(&rw, &bru, &request_body(Some(EMMA), None)).await;
    let reply = act_for(&bru, &kari, &party, &id, "accept").await;
    reply.expect_status(200, "Kari accepts for Emma");
    assert_eq!(reply.json()["status"], "granted");
    assert_eq!(
        events(&reply),
        [
            ("created".into(), "self".into()),
            ("accepted".into(), "parent".into())
        ]
    );
    assert!(!reply.text().contains(KARI), "Kari's number in the answer");

    // The consent works for K429.
    inntekt(&bru, &rw.k429_token(), Some(&id), EMMA, PURPOSE_OMSORG)
        .await
        .expect_status(200, "K429 under the consent Kari gave");

    // Ola, Emma's other parent, sees it and revokes it.
    let ola_party = party_of(&bru, &ola, "Emma Nordmann").await;
    assert_eq!(ola_party, party, "one person, one party");
    let listed = get_for(&bru, &ola, Some(&ola_party), "/citizen/v1/consents").await;
    listed.expect_status(200, "Ola lists Emma's consents");
    assert_eq!(listed.json()["active"][0]["id"], id.as_str());
    let reply = act_for(&bru, &ola, &ola_party, &id, "revoke").await;
    reply.expect_status(200, "Ola revokes for Emma");
    assert_eq!(
        events(&reply).last().unwrap(),
        &("revoked".into(), "parent".into())
    );
    inntekt(&bru, &rw.k429_token(), Some(&id), EMMA, PURPOSE_OMSORG)
        .await
        .expect_problem(403, "consent_revoked", "after Ola revoked");

    // Emma sees what her parents did, with the basis.
    let own = get_for(
        &bru,
        &rw.citizen_token(EMMA),
        None,
        &format!("/citizen/v1/consents/{id}"),
    )
    .await;
    own.expect_status(200, "Emma's own view");
    let evs = own.json()["events"].as_array().unwrap().clone();
    let by = |kind: &str| evs.iter().find(|e| e["type"] == kind).unwrap().clone();
    assert_eq!(by("accepted")["by"], "parent");
    assert_eq!(by("accepted")["basis"], "folkeregisteret:foreldreansvar");
    assert_eq!(by("used")["by"], "self", "a use is K429's, not a decision");
    assert!(by("used").get("basis").is_none());
    assert_eq!(by("revoked")["by"], "parent");

    // Her receipt names a parent's role, never the parent's number.
    let receipt = send(
        bru.get(&format!("/citizen/v1/consents/{id}/receipt"))
            .bearer_auth(rw.citizen_token(EMMA))
            .header("Accept", "application/json"),
    )
    .await;
    receipt.expect_status(200, "Emma's receipt");
    let jws = receipt.json()["receipt"].as_str().unwrap().to_owned();
    let (_, claims) = peek(&jws);
    assert_eq!(claims["representative"]["role"], "parent");
    assert_eq!(claims["piiPrincipalId"], EMMA);
    assert!(!claims.to_string().contains(KARI));

    // Kari's own consents and access log hold nothing of Emma's.
    let karis = get_for(&bru, &kari, None, "/citizen/v1/consents").await;
    karis.expect_status(200, "Kari's own consents");
    assert!(!consent_ids(&karis).contains(&id));
    let karis_log = get_for(&bru, &kari, None, "/citizen/v1/transfers").await;
    karis_log.expect_status(200, "Kari's own log");
    assert_eq!(karis_log.json()["transfers"].as_array().unwrap().len(), 0);
    // Emma's log, reached through the switcher, holds K429's calls.
    let emmas_log = get_for(&bru, &kari, Some(&party), "/citizen/v1/transfers").await;
    emmas_log.expect_status(200, "Emma's log for Kari");
    let emmas = emmas_log.json()["transfers"].as_array().unwrap().clone();
    assert!(emmas.len() >= 2);
    // And the proof of one of them (the checkpoint comes within a second).
    let index = emmas[0]["index"].as_u64().unwrap();
    let proof_path = format!("/citizen/v1/transfers/{index}/proof");
    let mut proof = get_for(&bru, &kari, Some(&party), &proof_path).await;
    for _ in 0..50 {
        if proof.status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        proof = get_for(&bru, &kari, Some(&party), &proof_path).await;
    }
    proof.expect_status(200, "the proof of Emma's record, for Kari acting for her");
    assert_eq!(proof.json()["index"], index);
    // Without the header it is not Kari's.
    let own = get_for(&bru, &kari, None, &proof_path).await;
    assert_eq!(own.status, 404, "{}", own.text());
    expect_refused(
        &get_for(&bru, &kari, Some("p-AAAAAAAAAAAAAAAAAAAAAA"), &proof_path).await,
        403,
        "not_represented",
        "a made-up party for a proof",
    );
}

#[tokio::test]
async fn from_16_a_parent_cannot_decide_emmas_health_consent() {
    let rw = RepresentWorld::new().await;
    rw.registry.set_demo_family(birth_years_ago(16));
    let bru = rw.start().await;
    let kari = rw.citizen_token(KARI);
    let party = party_of(&bru, &kari, "Emma Nordmann").await;

    // Income and home care (health, from 16 her own): refused, with the reason.
    let both = create(&rw, &bru, &request_body(Some(EMMA), None)).await;
    let reply = act_for(&bru, &kari, &party, &both, "accept").await;
    let problem = expect_refused(
        &reply,
        403,
        "representation_not_allowed",
        "Kari for Emma (16), health",
    );
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("helsenorge/hjemmetjeneste") && detail.contains("16"),
        "{detail}"
    );
    // Nothing happened to the consent.
    let own = get_for(
        &bru,
        &rw.citizen_token(EMMA),
        None,
        &format!("/citizen/v1/consents/{both}"),
    )
    .await;
    assert_eq!(own.json()["status"], "pending");

    // Income alone: a parent decides until 18.
    let mut body = request_body(Some(EMMA), None);
    body["datasets"] = serde_json::json!(["nav/inntekt"]);
    let income = create(&rw, &bru, &body).await;
    act_for(&bru, &kari, &party, &income, "accept")
        .await
        .expect_status(200, "Kari for Emma (16), income");

    // Emma decides her health consent herself, and sees what Kari gave.
    citizen_action(&rw, &bru, EMMA, &both, "accept")
        .await
        .expect_status(200, "Emma accepts herself");
    let own = get_for(
        &bru,
        &rw.citizen_token(EMMA),
        None,
        &format!("/citizen/v1/consents/{income}"),
    )
    .await;
    assert_eq!(events(&own)[1], ("accepted".into(), "parent".into()));
    // And Kari cannot revoke Emma's own health consent.
    expect_refused(
        &act_for(&bru, &kari, &party, &both, "revoke").await,
        403,
        "representation_not_allowed",
        "Kari revoking Emma's own",
    );
}

#[tokio::test]
async fn aisha_approves_for_per_with_a_fullmakt_token() {
    let rw = RepresentWorld::new().await;
    let bru = rw.start().await;
    let aisha = rw.fullmakt_token(AISHA, PER, &["helse", "velferd"]);

    let list = represented(&bru, &aisha).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(
        list[0]["basis"], "guardian",
        "the registry names Aisha as Per's verge"
    );
    assert_eq!(list[0]["may"], serde_json::json!(["read", "decide"]));
    let party = list[0]["party"].as_str().unwrap().to_owned();

    let id = create(&rw, &bru, &request_body(Some(PER), None)).await;
    let reply = act_for(&bru, &aisha, &party, &id, "accept").await;
    reply.expect_status(200, "Aisha accepts for Per");
    let evs = reply.json()["events"].as_array().unwrap().clone();
    assert_eq!(evs[1]["by"], "guardian");
    assert_eq!(evs[1]["basis"], "idporten:fullmakt helse velferd");

    // Without the registry's guardianship, the same token is a fullmakt.
    let kari_for_per = rw.fullmakt_token(KARI, PER, &["helse", "velferd"]);
    let list = represented(&bru, &kari_for_per).await;
    let per = list.iter().find(|r| r["name"] == "PER HANSEN").unwrap();
    assert_eq!(per["basis"], "fullmakt");

    // Aisha's own token without the fullmakt acts for no one.
    assert!(represented(&bru, &rw.citizen_token(AISHA)).await.is_empty());
    expect_refused(
        &act_for(&bru, &rw.citizen_token(AISHA), &party, &id, "revoke").await,
        403,
        "not_represented",
        "Aisha without the fullmakt",
    );
}

#[tokio::test]
async fn a_fullmakt_without_the_needed_role_is_refused() {
    let rw = RepresentWorld::new().await;
    let bru = rw.start().await;
    // A fullmakt for tax matters only.
    let aisha = rw.fullmakt_token(AISHA, PER, &["skatt"]);
    let list = represented(&bru, &aisha).await;
    assert_eq!(list[0]["may"], serde_json::json!(["read"]));
    let party = list[0]["party"].as_str().unwrap().to_owned();
    let id = create(&rw, &bru, &request_body(Some(PER), None)).await;
    let problem = expect_refused(
        &act_for(&bru, &aisha, &party, &id, "accept").await,
        403,
        "representation_not_allowed",
        "a tax fullmakt",
    );
    assert!(problem["detail"].as_str().unwrap().contains("velferd"));
    // Health alone is not enough for income and home care together.
    let aisha = rw.fullmakt_token(AISHA, PER, &["helse"]);
    expect_refused(
        &act_for(&bru, &aisha, &party, &id, "accept").await,
        403,
        "representation_not_allowed",
        "a health fullmakt for income",
    );
    // Reading is allowed: the consent is there, still pending.
    let read = get_for(
        &bru,
        &aisha,
        Some(&party),
        &format!("/citizen/v1/consents/{id}"),
    )
    .await;
    read.expect_status(200, "Aisha reads Per's consent");
    assert_eq!(read.json()["status"], "pending");
}

#[tokio::test]
async fn a_forged_party_is_refused_alike() {
    let rw = RepresentWorld::new().await;
    let bru = rw.start().await;
    let kari = rw.citizen_token(KARI);
    let pers_party = party_of(
        &bru,
        &rw.fullmakt_token(AISHA, PER, &["helse"]),
        "PER HANSEN",
    )
    .await;
    let id = create(&rw, &bru, &request_body(Some(PER), None)).await;

    let mut answers: Vec<Value> = Vec::new();
    for forged in [
        pers_party.as_str(),        // another family's party
        "p-AAAAAAAAAAAAAAAAAAAAAA", // a made-up one
        PER,                        // a person number (existing)
        "15895013780",              // not a valid number
        EMMA,                       // her own child's number
        "",
    ] {
        for (method, path) in [
            ("GET", "/citizen/v1/consents".to_owned()),
            ("GET", format!("/citizen/v1/consents/{id}")),
            ("POST", format!("/citizen/v1/consents/{id}/accept")),
            ("GET", "/citizen/v1/transfers".to_owned()),
        ] {
            let rb = if method == "GET" {
                bru.get(&path)
            } else {
                bru.post(&path)
            };
            let reply = send(rb.bearer_auth(&kari).header("Bru-On-Behalf-Of", forged)).await;
            let mut p = expect_refused(
                &reply,
                403,
                "not_represented",
                &format!("{method} {path} for {forged:?}"),
            );
            p.as_object_mut().unwrap().remove("transfer_id");
            assert!(!reply.text().contains(PER));
            answers.push(p);
        }
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "the answers differ: {answers:?}"
    );
    // The consent was not touched.
    let own = get_for(
        &bru,
        &rw.citizen_token(PER),
        None,
        &format!("/citizen/v1/consents/{id}"),
    )
    .await;
    assert_eq!(own.json()["status"], "pending");

    // A fullmakt naming someone else as its holder is not Kari's.
    let stolen = rw.fullmakt_token_for(KARI, AISHA, PER, &["helse", "velferd"]);
    let list = represented(&bru, &stolen).await;
    assert!(list.iter().all(|r| r["name"] != "PER HANSEN"), "{list:?}");
}

#[tokio::test]
async fn an_ended_relation_ends_at_the_next_call() {
    let rw = RepresentWorld::new().await;
    let bru = rw.start().await;
    let kari = rw.citizen_token(KARI);
    let party = party_of(&bru, &kari, "Emma Nordmann").await;
    let id = create(&rw, &bru, &request_body(Some(EMMA), None)).await;
    act_for(&bru, &kari, &party, &id, "accept")
        .await
        .expect_status(200, "Kari accepts for Emma");

    // Responsibility moves to Ola alone: Kari's next decision is refused.
    rw.registry.end_karis_responsibility(birth_years_ago(12));
    expect_refused(
        &act_for(&bru, &kari, &party, &id, "revoke").await,
        403,
        "not_represented",
        "Kari after her responsibility ended",
    );
    // Ola still can.
    let ola = rw.citizen_token(OLA);
    act_for(&bru, &ola, &party, &id, "revoke")
        .await
        .expect_status(200, "Ola revokes");

    // Emma comes of age: no parent acts for her any more.
    rw.registry.set_demo_family(birth_years_ago(18));
    let id2 = create(&rw, &bru, &request_body(Some(EMMA), None)).await;
    expect_refused(
        &act_for(&bru, &ola, &party, &id2, "accept").await,
        403,
        "not_represented",
        "Ola after Emma turned 18",
    );
}
