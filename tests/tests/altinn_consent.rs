//! Altinn consent tokens as a consent basis (SPEC 9.1), black-box against
//! the real `bru` on SQLite and (with `BRU_TEST_STORE=postgres`) PostgreSQL:
//! the three token shapes, each validation rule refused with its code,
//! metadata narrowing the answer, one-time consents under concurrency, and
//! `consent_id` = `altinn:{id}` in the records.
#![allow(clippy::unwrap_used)]

use bru_tests::altinn::*;
use bru_tests::*;
use serde_json::json;

async fn world() -> (TestWorld, FakeAltinn, Bru) {
    let world = TestWorld::new().await;
    let altinn = FakeAltinn::start().await;
    altinn_world(&world, &altinn, "");
    let bru = world.start().await;
    (world, altinn, bru)
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn call(bru: &Bru, dataset: &str, token: &str, subject: &str) -> Reply {
    send(
        bru.get(&format!("/data/nav/{dataset}"))
            .bearer_auth(token)
            .header("Bru-Purpose", PURPOSE_OMSORG)
            .header("Nav-Personident", subject),
    )
    .await
}

#[tokio::test]
async fn an_altinn_3_consent_token_is_a_consent_basis_narrowed_by_its_metadata() {
    let (world, _altinn, bru) = world().await;
    world.nav.set_body(income_rows());
    let id = uuid();
    let token = token_with_details(
        &world,
        K429,
        SCOPE_INNTEKT,
        json!([consent_detail(
            &id,
            KARI,
            K429,
            RESOURCE_INNTEKT,
            &next_year(),
            json!({"inntektsaar": "2023"})
        )]),
    );
    let reply = call(&bru, "inntekt", &token, KARI).await;
    reply.expect_status(200, "altinn consent");
    // Only the consented year, and only aar and sum (the purpose's mask).
    assert_eq!(reply.json(), json!([{"aar": 2023, "sum": 430000}]));
    let forwarded = world.nav.requests().pop().unwrap();
    assert_eq!(forwarded.header("bru-legal-basis"), Some("consent"));
    let transfer = reply.transfer_id().unwrap();
    let decision = world.record(&transfer, "decision").await;
    assert_eq!(decision["consent_id"], format!("altinn:{id}"));
    assert_eq!(decision["decision"], "allow");
    assert_eq!(decision["consumer"], format!("0192:{K429}"));
    // The assertion tells the provider which consent.
    let (_, claims) = peek(forwarded.header("bru-assertion").unwrap());
    assert_eq!(claims["consent_id"], format!("altinn:{id}"));

    // Without the token's consent (a plain token), the dataset still needs one.
    let plain = world.mp_token(K429, SCOPE_INNTEKT);
    call(&bru, "inntekt", &plain, KARI).await.expect_problem(
        403,
        "consent_required",
        "no consent at all",
    );
}

#[tokio::test]
async fn a_migrated_consent_with_lower_cased_metadata_is_accepted() {
    // Migrated Altinn 2 consents: resource `{org}_{serviceCode}_{serviceEditionCode}`,
    // metadata lower-cased (Altinn, validate-concent, "Validation of converted consents").
    // The policy's filter names the key `INNTEKTSAAR`.
    let (world, _altinn, bru) = world().await;
    world.nav.set_body(income_rows());
    let token = token_with_details(
        &world,
        K429,
        SCOPE_INNTEKT,
        json!([consent_detail(
            &uuid(),
            KARI,
            K429,
            RESOURCE_MIGRATED,
            &next_year(),
            json!({"inntektsaar": "2024"})
        )]),
    );
    let reply = call(&bru, "inntekt-a2", &token, KARI).await;
    reply.expect_status(200, "migrated consent");
    assert_eq!(reply.json()[0]["aar"], 2024);
    assert_eq!(reply.json().as_array().unwrap().len(), 1);

    // `metaData` and `to` as a URN, as other pages of Altinn's write them.
    let mut detail = consent_detail(
        &uuid(),
        KARI,
        K429,
        RESOURCE_INNTEKT,
        &next_year(),
        json!(null),
    );
    detail["metaData"] = json!({"INNTEKTSAAR": "2022"});
    detail["consentRights"][0]
        .as_object_mut()
        .unwrap()
        .remove("metadata");
    detail["consentRights"][0]["metaData"] = json!({"INNTEKTSAAR": "2022"});
    detail["to"] = json!(format!("urn:altinn:organization:identifier-no:{K429}"));
    let token = token_with_details(&world, K429, SCOPE_INNTEKT, json!([detail]));
    let reply = call(&bru, "inntekt", &token, KARI).await;
    reply.expect_status(200, "metaData spelling");
    assert_eq!(reply.json(), json!([{"aar": 2022, "sum": 410000}]));
}

#[tokio::test]
async fn each_rule_of_an_altinn_consent_is_refused_with_its_code() {
    let (world, altinn, bru) = world().await;
    let yesterday = (time::OffsetDateTime::now_utc() - time::Duration::days(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let cases = [
        // `to` is another organisation than the token's consumer.
        (
            consent_detail(
                &uuid(),
                KARI,
                NAV,
                RESOURCE_INNTEKT,
                &next_year(),
                json!({}),
            ),
            KARI,
            403,
            "consent_mismatch",
        ),
        // `from` is another person than the call's subject.
        (
            consent_detail(
                &uuid(),
                OLA,
                K429,
                RESOURCE_INNTEKT,
                &next_year(),
                json!({}),
            ),
            KARI,
            403,
            "consent_subject_mismatch",
        ),
        // `validTo` has passed.
        (
            consent_detail(&uuid(), KARI, K429, RESOURCE_INNTEKT, &yesterday, json!({})),
            KARI,
            403,
            "consent_expired",
        ),
        // The dataset's resource is not among `consentRights`.
        (
            consent_detail(
                &uuid(),
                KARI,
                K429,
                "skd-skattegrunnlag",
                &next_year(),
                json!({}),
            ),
            KARI,
            403,
            "consent_not_found",
        ),
    ];
    for (detail, subject, status, code) in cases {
        let token = token_with_details(&world, K429, SCOPE_INNTEKT, json!([detail]));
        let reply = call(&bru, "inntekt", &token, subject).await;
        reply.expect_problem(status, code, code);
        assert_eq!(world.nav.count(), 0, "{code}: nothing forwarded");
        let record = world.record(&reply.problem_transfer_id(), "decision").await;
        assert_eq!(record["decision"], "deny");
        assert_eq!(record["code"], code);
        assert!(
            record["consent_id"]
                .as_str()
                .unwrap()
                .starts_with("altinn:"),
            "{record}"
        );
    }

    // `from` an organisation: no person consented.
    let mut detail = consent_detail(
        &uuid(),
        KARI,
        K429,
        RESOURCE_INNTEKT,
        &next_year(),
        json!({}),
    );
    detail["from"] = json!(format!("urn:altinn:organization:identifier-no:{K429}"));
    let token = token_with_details(&world, K429, SCOPE_INNTEKT, json!([detail]));
    call(&bru, "inntekt", &token, KARI).await.expect_problem(
        403,
        "consent_subject_mismatch",
        "organisation consent",
    );

    // Not as Maskinporten writes it: the token is not accepted.
    let mut detail = consent_detail(
        &uuid(),
        KARI,
        K429,
        RESOURCE_INNTEKT,
        &next_year(),
        json!({}),
    );
    detail["validTo"] = json!("next year");
    let token = token_with_details(&world, K429, SCOPE_INNTEKT, json!([detail]));
    call(&bru, "inntekt", &token, KARI).await.expect_problem(
        401,
        "invalid_token",
        "malformed consent",
    );

    // Revoked in Altinn: refused once the feed shows it.
    let id = uuid();
    let token = token_with_details(
        &world,
        K429,
        SCOPE_INNTEKT,
        json!([consent_detail(
            &id,
            KARI,
            K429,
            RESOURCE_INNTEKT,
            &next_year(),
            json!({"inntektsaar": "2024"})
        )]),
    );
    call(&bru, "inntekt", &token, KARI)
        .await
        .expect_status(200, "before revocation");
    altinn.publish(&id, "revoked");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let reply = call(&bru, "inntekt", &token, KARI).await;
        if reply.status == 403 {
            reply.expect_problem(403, "consent_revoked", "after revocation");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never refused after the feed showed the revocation"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn fifty_parallel_calls_on_a_one_time_consent_one_succeeds() {
    let (world, _altinn, bru) = world().await;
    let bru = std::sync::Arc::new(bru);
    let id = uuid();
    let token = token_with_details(
        &world,
        K429,
        SCOPE_INNTEKT,
        json!([consent_detail(
            &id,
            KARI,
            K429,
            RESOURCE_ONCE,
            &next_year(),
            json!({})
        )]),
    );
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let bru = bru.clone();
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            call(&bru, "inntekt-engang", &token, KARI).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let reply = t.await.unwrap();
        match reply.status {
            200 => ok += 1,
            _ => {
                reply.expect_problem(403, "consent_exhausted", "second use");
            }
        }
    }
    assert_eq!(ok, 1, "exactly one call uses a one-time consent");
    assert_eq!(
        world.nav.count(),
        1,
        "exactly one call reached the provider"
    );
    // And later: still used up.
    call(&bru, "inntekt-engang", &token, KARI)
        .await
        .expect_problem(403, "consent_exhausted", "later use");
}
