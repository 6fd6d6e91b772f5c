//! Altinn system users and pid-restricted tokens (SPEC 9.2), black-box on
//! SQLite and (with `BRU_TEST_STORE=postgres`) PostgreSQL: Altinn's decision
//! point asked per call in its XACML JSON format, a cached Permit never
//! reused for another system user or party (Altinn/dialogporten#1363), a
//! decision point that cannot answer is 503, and a pid-restricted token
//! serves its person only.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bru_tests::altinn::*;
use bru_tests::consent::*;
use bru_tests::*;

const SU1: &str = "f950ddae-06c3-4b57-b940-702417a90df0";
const SU2: &str = "a6355a68-86b8-4344-8a81-0248cb461468";

async fn world(extra_altinn: &str) -> (ConsentWorld, FakeAltinn, Bru) {
    let cw = ConsentWorld::new().await;
    let altinn = FakeAltinn::start().await;
    altinn_world(&cw, &altinn, extra_altinn);
    let bru = cw.start().await;
    (cw, altinn, bru)
}

/// The vendor Omsorgsapp calls `nav/inntekt` as system user `su` of `org`.
async fn as_system_user(cw: &ConsentWorld, bru: &Bru, su: &str, org: &str, consent: &str) -> Reply {
    let token = system_user_token(cw, OMSORGSAPP, su, org, SCOPE_INNTEKT);
    inntekt(bru, &token, Some(consent), KARI, PURPOSE_OMSORG).await
}

#[tokio::test]
async fn a_permitted_system_user_calls_as_its_organisation_through_the_vendor() {
    let (cw, altinn, bru) = world("").await;
    let consent = granted(&cw, &bru, KARI, None).await;
    altinn.permit(SU1, RESOURCE_INNTEKT, K429);
    let reply = as_system_user(&cw, &bru, SU1, K429, &consent).await;
    reply.expect_status(200, "permitted system user");
    assert_eq!(
        altinn.asked(),
        vec![(
            SU1.to_owned(),
            RESOURCE_INNTEKT.to_owned(),
            "read".to_owned(),
            K429.to_owned()
        )]
    );
    let record = cw.record(&reply.transfer_id().unwrap(), "decision").await;
    assert_eq!(record["consumer"], format!("0192:{K429}"));
    assert_eq!(record["supplier"], format!("0192:{OMSORGSAPP}"));
    assert_eq!(record["system_user"], SU1);
    let outcome = cw.record(&reply.transfer_id().unwrap(), "outcome").await;
    assert_eq!(outcome["system_user"], SU1);
    // Any other call's record has no such member (its leaf is as before).
    let plain = inntekt(&bru, &cw.k429_token(), Some(&consent), KARI, PURPOSE_OMSORG).await;
    plain.expect_status(200, "K429 itself");
    let record = cw.record(&plain.transfer_id().unwrap(), "decision").await;
    assert!(record.get("system_user").is_none(), "{record}");
    let forwarded = cw.nav.requests().pop().unwrap();
    assert_eq!(
        forwarded.header("bru-consumer"),
        Some(&*format!("0192:{K429}"))
    );

    // A dataset without an Altinn resource permits no system user.
    let token = system_user_token(&cw, OMSORGSAPP, SU1, K429, SCOPE_SOSIAL);
    send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(token)
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", KARI),
    )
    .await
    .expect_problem(403, "system_user_not_authorized", "no resource");
}

#[tokio::test]
async fn a_cached_permit_is_never_another_system_users_or_partys() {
    // Dialogporten cached PDP decisions without the system user id and gave
    // one system user's Permit to another (Altinn/dialogporten#1363).
    let (cw, altinn, bru) = world("pdp_cache_seconds = 300\n").await;
    let consent = granted(&cw, &bru, KARI, None).await;
    altinn.permit(SU1, RESOURCE_INNTEKT, K429);
    as_system_user(&cw, &bru, SU1, K429, &consent)
        .await
        .expect_status(200, "su1 permitted");
    // Cached now: su1 again does not ask.
    as_system_user(&cw, &bru, SU1, K429, &consent)
        .await
        .expect_status(200, "su1 cached");
    assert_eq!(altinn.asked().len(), 1, "the second call used the cache");
    // Another system user of the same organisation, same resource and action.
    let reply = as_system_user(&cw, &bru, SU2, K429, &consent).await;
    reply.expect_problem(403, "system_user_not_authorized", "su2 not permitted");
    let record = cw.record(&reply.problem_transfer_id(), "decision").await;
    assert_eq!(record["code"], "system_user_not_authorized");
    // The same system user acting for another party.
    as_system_user(&cw, &bru, SU1, UNLISTED_ORG, &consent)
        .await
        .expect_problem(403, "system_user_not_authorized", "su1 for another party");
    let asked = altinn.asked();
    assert_eq!(asked.len(), 3, "{asked:?}");
    assert_eq!(asked[1].0, SU2);
    assert_eq!(asked[2].3, UNLISTED_ORG);
    assert_eq!(cw.nav.count(), 2, "only su1's calls reached the provider");
}

#[tokio::test]
async fn a_deleted_system_user_is_refused_within_the_cache_ttl() {
    let (cw, altinn, bru) = world("pdp_cache_seconds = 1\n").await;
    let consent = granted(&cw, &bru, KARI, None).await;
    altinn.permit(SU1, RESOURCE_INNTEKT, K429);
    as_system_user(&cw, &bru, SU1, K429, &consent)
        .await
        .expect_status(200, "before deletion");
    altinn.delete_system_user(SU1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let reply = as_system_user(&cw, &bru, SU1, K429, &consent).await;
        if reply.status == 403 {
            reply.expect_problem(403, "system_user_not_authorized", "after deletion");
            break;
        }
        reply.expect_status(200, "cached permit");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the deleted system user was never refused"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_decision_point_that_cannot_answer_is_503_never_an_allow() {
    let (cw, altinn, bru) = world("").await;
    let consent = granted(&cw, &bru, KARI, None).await;
    altinn.permit(SU1, RESOURCE_INNTEKT, K429);
    altinn.set_pdp_down(true);
    let reply = as_system_user(&cw, &bru, SU1, K429, &consent).await;
    reply.expect_problem(503, "altinn_unavailable", "pdp down");
    assert!(reply.header("retry-after").is_some());
    assert_eq!(cw.nav.count(), 0);
    altinn.set_pdp_down(false);
    as_system_user(&cw, &bru, SU1, K429, &consent)
        .await
        .expect_status(200, "pdp back");

    // Nothing listens at the decision point at all.
    let cw = ConsentWorld::new().await;
    let altinn = FakeAltinn::start().await;
    altinn_world(&cw, &altinn, "");
    let config = std::fs::read_to_string(&cw.config_path).unwrap().replace(
        &altinn.url(AUTHORIZE_PATH),
        &format!(
            "http://127.0.0.1:{}/authorize",
            bru_tests::servers::closed_port()
        ),
    );
    std::fs::write(&cw.config_path, config).unwrap();
    let bru = cw.start().await;
    let consent = granted(&cw, &bru, KARI, None).await;
    as_system_user(&cw, &bru, SU1, K429, &consent)
        .await
        .expect_problem(503, "altinn_unavailable", "pdp unreachable");
    assert_eq!(cw.nav.count(), 0);
}

#[tokio::test]
async fn a_pid_restricted_token_serves_its_person_only() {
    // Maskinporten's pid-restricted tokens: the API must refuse a token
    // whose `pid` is not the call's subject (felleslosninger/docs
    // `maskinporten_func_pid_restricted_tokens.md`).
    let (cw, _altinn, bru) = world("").await;
    let token = cw
        .mp(NAV, SCOPE_SOSIAL)
        .claim("pid", KARI)
        .sign(&cw.mp_signer());
    let call = |subject: &'static str| {
        send(
            bru.get("/data/k429/sosialtjeneste")
                .bearer_auth(token.clone())
                .header("Bru-Purpose", PURPOSE_SOSIAL)
                .header("Nav-Personident", subject),
        )
    };
    call(KARI).await.expect_status(200, "its own person");
    let reply = call(OLA).await;
    reply.expect_problem(403, "subject_not_permitted", "another person");
    let record = cw.record(&reply.problem_transfer_id(), "decision").await;
    assert_eq!(record["code"], "subject_not_permitted");
    assert_eq!(cw.k429.count(), 1);
    // A pid that is not a person number: the token is not accepted.
    let bad = cw
        .mp(NAV, SCOPE_SOSIAL)
        .claim("pid", "123")
        .sign(&cw.mp_signer());
    send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(bad)
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", KARI),
    )
    .await
    .expect_problem(401, "invalid_token", "bad pid");
}
