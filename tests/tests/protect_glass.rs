//! Break-glass (SPEC 10): on a dataset whose policy has `break_glass = true`
//! a call with `Bru-Break-Glass: <reason>` passes the subject's block, and
//! nothing else; it is recorded with the reason (scrubbed of person numbers)
//! and counted in `bru_break_glass_total`. A header Bru cannot honour is a
//! 400, never silently passed. Both stores.
#![allow(clippy::unwrap_used)]

use bru_tests::bru::Reply;
use bru_tests::consent::*;
use bru_tests::*;
use serde_json::json;

/// The consent world with `break_glass = true` on `helsenorge/hjemmetjeneste`.
async fn glass_world() -> ConsentWorld {
    let cw = ConsentWorld::new().await;
    let path = cw.dir.path().join("policy.toml");
    let mut policy: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    let hjemme = policy["dataset"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|d| d["id"].as_str() == Some("hjemmetjeneste"))
        .unwrap()
        .as_table_mut()
        .unwrap();
    hjemme.insert("break_glass".into(), true.into());
    std::fs::write(&path, toml::to_string(&policy).unwrap()).unwrap();
    // A FHIR answer the home-care mask can minimise.
    cw.helsenorge.set_body(json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": {"resourceType": "CarePlan", "id": "cp1", "status": "active",
            "intent": "plan", "title": "Hjemmesykepleie"}}]
    }));
    cw
}

async fn block_k429(cw: &ConsentWorld, bru: &Bru, pid: &str) {
    send(
        bru.post("/citizen/v1/blocks")
            .bearer_auth(cw.citizen_token(pid))
            .json(&json!({"consumer": format!("0192:{K429}")})),
    )
    .await
    .expect_status(201, "block K429");
}

/// K429's home-care call about `subject`, with `Bru-Break-Glass: reason` when given.
async fn glass(
    bru: &Bru,
    token: &str,
    path: &str,
    consent: &str,
    purpose: &str,
    reason: Option<&[u8]>,
) -> Reply {
    let mut rb = bru
        .get(path)
        .bearer_auth(token)
        .header("Bru-Purpose", purpose)
        .header("Bru-Consent", consent);
    if let Some(r) = reason {
        rb = rb.header(
            "Bru-Break-Glass",
            reqwest::header::HeaderValue::from_bytes(r).unwrap(),
        );
    }
    send(rb).await
}

fn hjemme(subject: &str) -> String {
    format!("/data/helsenorge/hjemmetjeneste?patient={subject}")
}

async fn break_glass_count(bru: &Bru) -> Option<String> {
    let text = bru
        .ops_client
        .get(bru.ops_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("# HELP bru_break_glass"),
        "bru_break_glass_total is described"
    );
    text.lines()
        .find(|l| {
            l.starts_with("bru_break_glass_total{")
                && l.contains(&format!("consumer=\"0192:{K429}\""))
                && l.contains("dataset=\"helsenorge/hjemmetjeneste\"")
        })
        .map(|l| l.rsplit(' ').next().unwrap().to_owned())
}

#[tokio::test]
async fn break_glass_passes_a_block_and_is_recorded_with_its_scrubbed_reason() {
    let cw = glass_world().await;
    let bru = cw.start().await;
    let k429 = cw.k429_token();
    let kari = granted(&cw, &bru, KARI, None).await;
    block_k429(&cw, &bru, KARI).await;

    glass(&bru, &k429, &hjemme(KARI), &kari, PURPOSE_OMSORG, None)
        .await
        .expect_problem(403, "blocked_by_subject", "without break-glass");
    assert_eq!(break_glass_count(&bru).await, None, "nothing counted yet");

    // The nurse names Kari and a neighbour in the reason: neither number is kept.
    let reason = format!("Akutt: pasienten {KARI} svarer ikke på døra, naboen {OLA} ringte");
    let reply = glass(
        &bru,
        &k429,
        &hjemme(KARI),
        &kari,
        PURPOSE_OMSORG,
        Some(reason.as_bytes()),
    )
    .await;
    reply.expect_status(200, "break-glass passes the block");
    let id = reply.transfer_id().unwrap();
    let expected = "Akutt: pasienten {subject} svarer ikke på døra, naboen {person} ringte";
    for kind in ["decision", "outcome"] {
        let record = cw.record(&id, kind).await;
        assert_eq!(record["break_glass"], expected, "{kind}: {record}");
    }
    let (_, raw) = cw.export().await;
    assert!(
        !raw.contains(KARI) && !raw.contains(OLA),
        "a number in the log"
    );
    assert_eq!(break_glass_count(&bru).await.as_deref(), Some("1"));
    // The header never reaches the provider.
    assert!(
        cw.helsenorge
            .requests()
            .iter()
            .all(|r| r.header("bru-break-glass").is_none()),
        "the provider saw Bru-Break-Glass"
    );

    // The block still holds for the next call without the header.
    glass(&bru, &k429, &hjemme(KARI), &kari, PURPOSE_OMSORG, None)
        .await
        .expect_problem(403, "blocked_by_subject", "after break-glass");

    // Without a block there is nothing to pass: an ordinary call, no reason kept.
    let ola = granted(&cw, &bru, OLA, None).await;
    let reply = glass(
        &bru,
        &k429,
        &hjemme(OLA),
        &ola,
        PURPOSE_OMSORG,
        Some(b"Akutt"),
    )
    .await;
    reply.expect_status(200, "break-glass with no block to pass");
    let record = cw.record(&reply.transfer_id().unwrap(), "decision").await;
    assert!(record.get("break_glass").is_none(), "{record}");
    assert_eq!(break_glass_count(&bru).await.as_deref(), Some("1"));
}

#[tokio::test]
async fn break_glass_passes_nothing_but_a_block() {
    let cw = glass_world().await;
    let bru = cw.start().await;
    let k429 = cw.k429_token();
    let kari = granted(&cw, &bru, KARI, None).await;
    block_k429(&cw, &bru, KARI).await;
    let reason = Some(&b"Akutt: pasienten svarer ikke"[..]);

    // Not consent: an unknown consent, another person's, a revoked one.
    glass(
        &bru,
        &k429,
        &hjemme(KARI),
        "no-such-consent",
        PURPOSE_OMSORG,
        reason,
    )
    .await
    .expect_problem(403, "consent_not_found", "an unknown consent");
    let ola = granted(&cw, &bru, OLA, None).await;
    glass(&bru, &k429, &hjemme(KARI), &ola, PURPOSE_OMSORG, reason)
        .await
        .expect_problem(403, "consent_subject_mismatch", "Ola's consent");
    // Not purpose.
    glass(&bru, &k429, &hjemme(KARI), &kari, PURPOSE_TILSYN, reason)
        .await
        .expect_problem(403, "purpose_not_allowed", "another purpose");
    // Not scope or consumer.
    let no_scope = cw.mp_token(K429, SCOPE_INNTEKT);
    glass(
        &bru,
        &no_scope,
        &hjemme(KARI),
        &kari,
        PURPOSE_OMSORG,
        reason,
    )
    .await
    .expect_problem(403, "insufficient_scope", "no home-care scope");
    let nav = cw.mp_token(NAV, SCOPE_HJEMME);
    glass(&bru, &nav, &hjemme(KARI), &kari, PURPOSE_OMSORG, reason)
        .await
        .expect_problem(403, "consumer_not_allowed", "NAV");
    citizen_action(&cw, &bru, KARI, &kari, "revoke")
        .await
        .expect_status(200, "revoke");
    glass(&bru, &k429, &hjemme(KARI), &kari, PURPOSE_OMSORG, reason)
        .await
        .expect_problem(403, "consent_revoked", "a revoked consent");
    assert_eq!(break_glass_count(&bru).await, None, "nothing passed");
}

#[tokio::test]
async fn a_break_glass_header_bru_cannot_honour_is_refused() {
    let cw = glass_world().await;
    let bru = cw.start().await;
    let k429 = cw.k429_token();
    let kari = granted(&cw, &bru, KARI, None).await;
    block_k429(&cw, &bru, KARI).await;

    // nav/inntekt has no break_glass: the header is refused, not ignored.
    let reply = send(
        bru.get("/data/nav/inntekt")
            .bearer_auth(&k429)
            .header("Bru-Purpose", PURPOSE_OMSORG)
            .header("Nav-Personident", KARI)
            .header("Bru-Consent", &kari)
            .header("Bru-Break-Glass", "Akutt"),
    )
    .await;
    let problem = reply.expect_problem(400, "malformed_request", "no break_glass in policy");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("does not allow break-glass"),
        "{problem}"
    );

    let long = "a".repeat(257);
    for (reason, says) in [
        (&b"   "[..], "needs a reason"),
        (long.as_bytes(), "longer than 256 bytes"),
        (b"Akutt\tn\xc3\xa5", "control"),
        ("Akutt \u{202E}tgnet".as_bytes(), "direction-changing"),
        (b"Akutt \xff", "not UTF-8"),
    ] {
        let reply = glass(
            &bru,
            &k429,
            &hjemme(KARI),
            &kari,
            PURPOSE_OMSORG,
            Some(reason),
        )
        .await;
        let problem = reply.expect_problem(400, "malformed_request", says);
        assert!(
            problem["detail"].as_str().unwrap().contains(says),
            "{says}: {problem}"
        );
    }
    // Twice.
    let reply = send(
        bru.get(&hjemme(KARI))
            .bearer_auth(&k429)
            .header("Bru-Purpose", PURPOSE_OMSORG)
            .header("Bru-Consent", &kari)
            .header("Bru-Break-Glass", "Akutt")
            .header("Bru-Break-Glass", "Akutt igjen"),
    )
    .await;
    reply.expect_problem(400, "malformed_request", "two reasons");
    // A reason within its bound passes (256 bytes of å is 128 characters).
    let ok = "å".repeat(128);
    glass(
        &bru,
        &k429,
        &hjemme(KARI),
        &kari,
        PURPOSE_OMSORG,
        Some(ok.as_bytes()),
    )
    .await
    .expect_status(200, "a reason of 256 bytes");
}

/// `bru explain` says whether a dataset allows break-glass, and names a
/// consumer's delayed disclosure.
#[tokio::test]
async fn bru_explain_names_break_glass_and_the_delay() {
    let cw = glass_world().await;
    let explain = |consumer: &str, dataset: &str| {
        let out = std::process::Command::new(bru_bin())
            .args([
                "explain",
                "--consumer",
                &format!("0192:{consumer}"),
                "--dataset",
                dataset,
                "--purpose",
                PURPOSE_OMSORG,
                "--config",
            ])
            .arg(&cw.config_path)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = explain(K429, "helsenorge/hjemmetjeneste");
    assert!(
        out.contains("allows break-glass") && out.contains("Bru-Break-Glass"),
        "{out}"
    );
    assert!(out.contains("no disclosure_delay_days"), "{out}");
    let out = explain(K429, "nav/inntekt");
    assert!(out.contains("break-glass is not allowed"), "{out}");
}
