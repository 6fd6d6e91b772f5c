//! Issue 15, records: no person number reaches an audit record, wherever a
//! caller puts it (every subject location of SPEC section 3, anywhere in the
//! path, percent-encoded, in `Bru-Purpose`, `Bru-Consent`, a token's
//! `client_id`), for allowed and denied calls, before and after
//! authentication, in `bru audit export` as JSONL and CSV; tokenless floods
//! cost the log a bounded number of records that still count every call;
//! FHIR paging links carry an opaque token; a supplier reads the audit API
//! only where policy names it. Runs on SQLite and, with
//! `BRU_TEST_STORE=postgres`, on PostgreSQL.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};

use bru_tests::connectors::{ConnectorWorld, PURPOSE, SCOPE_FHIR};
use bru_tests::consent::{granted, ConsentWorld};
use bru_tests::transparency::{audit_token, audit_world};
use bru_tests::*;
use serde_json::{json, Value};

// `person_numbers` (bru_tests): the independent check for a person number.

#[test]
fn the_check_finds_what_it_must() {
    assert_eq!(person_numbers(&format!("x/{KARI}-y")), [KARI]);
    assert_eq!(person_numbers(&format!("0{OLA}")), [OLA]);
    assert!(person_numbers(BAD_CONTROL_DIGITS).is_empty());
    assert!(person_numbers("0192:921429002 2026-12-04T10:00:00.123Z").is_empty());
    // A consent id whose last group is all digits (one CI run's notification
    // event failed an any-11-digits check on it).
    assert!(person_numbers("f27335f5-6211-4795-bc46-193144998333").is_empty());
}

/// `bru audit export --format csv`.
async fn export_csv(world: &TestWorld) -> String {
    let config = world.config_path.clone();
    let cwd = world.dir.path().to_owned();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(bru_bin())
            .args(["audit", "export", "--config"])
            .arg(&config)
            .args(["--format", "csv"])
            .current_dir(&cwd)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .expect("run bru audit export");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8")
    })
    .await
    .expect("join")
}

/// Both exports hold no person number at all.
async fn assert_exports_clean(world: &TestWorld, context: &str) -> Vec<Value> {
    let (records, jsonl) = world.export().await;
    let csv = export_csv(world).await;
    for (format, text) in [("jsonl", &jsonl), ("csv", &csv)] {
        let found = person_numbers(text);
        assert!(
            found.is_empty(),
            "{context}: person numbers {found:?} in `bru audit export --format {format}`:\n{text}"
        );
    }
    records
}

fn percent_encoded(digits: &str) -> String {
    digits.bytes().map(|b| format!("%{b:02X}")).collect()
}

fn decision<'a>(records: &'a [Value], reply: &Reply) -> &'a Value {
    let tid = reply
        .transfer_id()
        .unwrap_or_else(|| reply.problem_transfer_id());
    find_record(records, &tid, "decision")
        .unwrap_or_else(|| panic!("no decision record for {tid}: {}", reply.text()))
}

// ---- (1) every subject location, allowed and denied ----------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_person_number_reaches_a_record_from_any_subject_location() {
    let cw = ConsentWorld::new().await;
    let bru = cw.start().await;
    let nav = cw.mp_token(NAV, SCOPE_SAK);
    let sosial = cw.mp_token(NAV, SCOPE_SOSIAL);
    let snoop = cw.mp_token(SNOOP, SCOPE_SAK);
    let mut replies: Vec<(&str, Reply, u16)> = Vec::new();

    // Header: Kari in the header, Kari and Ola in the path (issue 15's reproduction).
    let r = send(
        bru.get(&format!("/data/k429/sosialtjeneste/{KARI}/sak/{OLA}"))
            .bearer_auth(&sosial)
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", KARI),
    )
    .await;
    replies.push(("header, allowed", r, 200));
    // Query: Kari in the query, Per embedded in a path segment, Ola percent-encoded.
    let r = send(
        bru.get(&format!(
            "/data/k429/sak-query/{PER}-WWWW/{}?fnr={KARI}",
            percent_encoded(OLA)
        ))
        .bearer_auth(&nav)
        .header("Bru-Purpose", PURPOSE_SOSIAL),
    )
    .await;
    replies.push(("query, allowed", r, 200));
    // Path segment: Emma is the subject, Aisha further on.
    let r = send(
        bru.get(&format!("/data/k429/sak-path/{EMMA}/vedtak/{AISHA}"))
            .bearer_auth(&nav)
            .header("Bru-Purpose", PURPOSE_SOSIAL),
    )
    .await;
    replies.push(("path segment, allowed", r, 200));
    // JSON body: Per in the body, Kari in the path as DDMMYY NNNNN.
    let r = send(
        bru.post("/data/k429/sak-json/128845%2013829")
            .bearer_auth(&nav)
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Content-Type", "application/json")
            .body(json!({"person": {"id": PER}}).to_string()),
    )
    .await;
    replies.push(("JSON body, allowed", r, 200));
    // Denied: Snoop, for each location.
    let r = send(
        bru.get(&format!("/data/k429/sak-path/{AISHA}/x/{OLA}"))
            .bearer_auth(&snoop)
            .header("Bru-Purpose", PURPOSE_SOSIAL),
    )
    .await;
    replies.push(("path segment, denied", r, 403));
    let r = send(
        bru.get(&format!("/data/k429/sak-query/{OLA}?fnr={KARI}"))
            .bearer_auth(&snoop)
            .header("Bru-Purpose", PURPOSE_SOSIAL),
    )
    .await;
    replies.push(("query, denied", r, 403));
    let r = send(
        bru.post(&format!("/data/k429/sak-json/{OLA}"))
            .bearer_auth(&snoop)
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Content-Type", "application/json")
            .body(json!({"person": {"id": PER}}).to_string()),
    )
    .await;
    replies.push(("JSON body, denied", r, 403));
    // Denied with a number in the purpose, and with an invalid subject.
    let r = send(
        bru.get(&format!("/data/k429/sosialtjeneste/{PER}"))
            .bearer_auth(&sosial)
            .header(
                "Bru-Purpose",
                format!("Ring-{OLA}-for-aa-stoppe-innkreving"),
            )
            .header("Nav-Personident", KARI),
    )
    .await;
    replies.push(("purpose with a number, denied", r, 403));
    let r = send(
        bru.get(&format!("/data/k429/sak-path/{BAD_CONTROL_DIGITS}/{KARI}"))
            .bearer_auth(&nav)
            .header("Bru-Purpose", PURPOSE_SOSIAL),
    )
    .await;
    replies.push(("invalid subject, denied", r, 400));
    // Before authentication: no token, a number everywhere.
    let r = send(
        bru.get(&format!("/data/k429/sosialtjeneste/{PER}-WWWW"))
            .header("Nav-Personident", KARI)
            .header("Bru-Purpose", format!("x{OLA}")),
    )
    .await;
    replies.push(("no token", r, 401));
    // A token whose client_id is a person number.
    let odd = cw
        .mp(NAV, SCOPE_SOSIAL)
        .claim("client_id", format!("client-{AISHA}"))
        .sign(&cw.mp_signer());
    let r = send(
        bru.get(&format!("/data/k429/sosialtjeneste/{EMMA}"))
            .bearer_auth(&odd)
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", KARI),
    )
    .await;
    replies.push(("client_id with a number, allowed", r, 200));

    // Consent datasets: allowed under Kari's consent, Ola's number in the
    // path; denied with a made-up consent id that holds Ola's number.
    let consent = granted(&cw, &bru, KARI, None).await;
    let k429 = cw.k429_token();
    let r = send(
        bru.get(&format!("/data/nav/inntekt/{OLA}"))
            .bearer_auth(&k429)
            .header("Bru-Purpose", PURPOSE_OMSORG)
            .header("Bru-Consent", &consent)
            .header("Nav-Personident", KARI),
    )
    .await;
    replies.push(("consent, allowed", r, 200));
    let r = send(
        bru.get(&format!("/data/nav/inntekt/{KARI}"))
            .bearer_auth(&k429)
            .header("Bru-Purpose", PURPOSE_OMSORG)
            .header("Bru-Consent", format!("00000000-0000-4000-8000-0{OLA}"))
            .header("Nav-Personident", KARI),
    )
    .await;
    replies.push(("consent, denied", r, 403));

    for (what, reply, status) in &replies {
        assert_eq!(reply.status, *status, "{what}: {}", reply.text());
    }
    let tids: Vec<String> = replies
        .iter()
        .map(|(_, r, _)| r.transfer_id().unwrap_or_else(|| r.problem_transfer_id()))
        .collect();
    let records = cw
        .wait_records("every call's decision", |recs| {
            tids.iter()
                .all(|t| find_record(recs, t, "decision").is_some())
        })
        .await;
    let records_all = assert_exports_clean(&cw, "every subject location").await;

    // The subject reads {subject}, everyone else {person}, wherever they were.
    let path = |i: usize| {
        decision(&records, &replies[i].1)["path"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(path(0), "/data/k429/sosialtjeneste/{subject}/sak/{person}");
    assert_eq!(path(1), "/data/k429/sak-query/{person}-WWWW/{person}");
    assert_eq!(path(2), "/data/k429/sak-path/{subject}/vedtak/{person}");
    assert_eq!(path(3), "/data/k429/sak-json/{person}");
    assert_eq!(path(4), "/data/k429/sak-path/{subject}/x/{person}");
    assert_eq!(path(7), "/data/k429/sosialtjeneste/{person}");
    // Before authentication, no more than the dataset.
    assert_eq!(path(9), "/data/k429/sosialtjeneste");
    assert_eq!(path(11), "/data/nav/inntekt/{person}");
    let purpose = &decision(&records, &replies[7].1)["purpose"];
    assert_eq!(purpose, "Ring-{person}-for-aa-stoppe-innkreving");
    let client = &decision(&records, &replies[10].1)["client_id"];
    assert_eq!(client, "client-{person}");
    let consent_denied = decision(&records, &replies[12].1);
    assert_eq!(consent_denied["decision"], "deny", "{consent_denied}");
    assert_eq!(
        consent_denied["consent_id"], "00000000-0000-4000-8000-{person}",
        "{consent_denied}"
    );
    // The allowed consent call keeps its consent's id.
    assert_eq!(
        decision(&records, &replies[11].1)["consent_id"],
        consent.as_str()
    );
    // And no query string in any path.
    assert!(records_all
        .iter()
        .all(|r| r["path"].as_str().is_some_and(|p| !p.contains('?'))));
}

// ---- (2) floods without a token ------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tokenless_flood_costs_a_bounded_number_of_records_that_count_every_call() {
    // A burst of 50 failed authentications, then one a second: most calls
    // are refused by the address limit, the rest for the missing token.
    let world = TestWorld::builder()
        .unauthenticated_rate(1, 50)
        .build()
        .await;
    let bru = world.start().await;
    let long = "W".repeat(8000);
    const CALLS: u64 = 300;
    let mut codes = std::collections::BTreeMap::<String, u64>::new();
    let started = std::time::Instant::now();
    for i in 0..CALLS {
        // Known and unknown datasets, a person number and 8 KB of text each.
        let path = if i % 3 == 0 {
            format!("/data/nosuch/thing/{PER}-{long}")
        } else {
            format!("/data/k429/sosialtjeneste/{PER}-{long}")
        };
        let reply = send(bru.get(&path)).await;
        assert!(
            [401, 429].contains(&reply.status),
            "{}: {}",
            reply.status,
            reply.text()
        );
        assert!(reply.header("bru-transfer-id").is_some());
        *codes.entry(reply.code().unwrap_or_default()).or_default() += 1;
    }
    assert!(codes.len() == 2, "both refusals happened: {codes:?}");
    // Refusals are counted per source, code and recorded path (here 2 × 2
    // keys); each key costs a record of its first call, then at most one
    // counted record per 5 s interval while calls keep coming, and one more
    // for the calls after the last one.
    let intervals = started.elapsed().as_secs() / 5 + 2;
    let bound = 4 * (1 + intervals) as usize;
    // Counted records are written at the end of their interval: wait until
    // the log accounts for every call.
    let refused = |records: &[Value]| -> u64 {
        records
            .iter()
            .filter(|r| r["decision"] == "deny" && r["consumer"].is_null())
            .map(|r| r["count"].as_u64().unwrap_or(1))
            .sum()
    };
    let records = world
        .wait_records(&format!("{CALLS} refusals counted"), |r| {
            refused(r) >= CALLS
        })
        .await;
    let (_, raw) = world.export().await;
    assert_eq!(refused(&records), CALLS, "every call counted once:\n{raw}");
    let refusals: Vec<&Value> = records
        .iter()
        .filter(|r| r["decision"] == "deny" && r["consumer"].is_null())
        .collect();
    assert!(
        refusals.len() <= bound,
        "{} records (more than {bound}) for {CALLS} refusals:\n{raw}",
        refusals.len()
    );
    let bytes: usize = refusals.iter().map(|r| r.to_string().len()).sum();
    assert!(
        bytes < refusals.len() * 1024,
        "records stay small ({bytes} bytes):\n{raw}"
    );
    for r in &refusals {
        let path = r["path"].as_str().unwrap_or_default();
        assert!(
            path == "/data/k429/sosialtjeneste" || path == "/data/",
            "before authentication a record holds the dataset at most: {r}"
        );
    }
    assert!(
        refusals
            .iter()
            .any(|r| r["count"].as_u64().is_some_and(|n| n > 1)),
        "repeated refusals are counted into one record:\n{raw}"
    );
    // Each code's counts add up to what the callers were told.
    for (code, n) in &codes {
        let counted: u64 = refusals
            .iter()
            .filter(|r| r["code"] == code.as_str())
            .map(|r| r["count"].as_u64().unwrap_or(1))
            .sum();
        assert_eq!(counted, *n, "{code}:\n{raw}");
    }
    assert!(person_numbers(&raw).is_empty(), "{raw}");
    // The log still verifies, with the counted records in it.
    let status = Command::new(bru_bin())
        .args(["audit", "verify", "--config"])
        .arg(&world.config_path)
        .current_dir(world.dir.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "bru audit verify");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokenless_calls_to_the_audit_api_are_counted_too() {
    let world = audit_world(TestWorld::builder(), None).await;
    let bru = world.start().await;
    const CALLS: u64 = 100;
    let started = std::time::Instant::now();
    for _ in 0..CALLS {
        send(bru.get("/audit/v1/records"))
            .await
            .expect_problem(401, "missing_token", "no token");
    }
    let intervals = started.elapsed().as_secs() / 5 + 2;
    let refusals = |records: &[Value]| -> Vec<Value> {
        records
            .iter()
            .filter(|r| r["kind"] == "audit_read" && r["code"] == "missing_token")
            .cloned()
            .collect()
    };
    let counted = |records: &[Value]| -> u64 {
        refusals(records)
            .iter()
            .map(|r| r["count"].as_u64().unwrap_or(1))
            .sum()
    };
    let records = world
        .wait_records(&format!("{CALLS} refused reads counted"), |r| {
            counted(r) >= CALLS
        })
        .await;
    assert_eq!(counted(&records), CALLS, "every call counted once");
    let n = refusals(&records).len() as u64;
    assert!(
        n <= 1 + intervals,
        "{n} records for {CALLS} refused reads in {intervals} intervals"
    );
}

// ---- (3) FHIR paging links ----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fhir_next_links_carry_no_person_number_and_work_only_for_their_caller() {
    let cw = ConnectorWorld::new(0).await;
    let bru = cw.world.start().await;
    let token = cw.token(SCOPE_FHIR);
    let first = send(
        bru.get(&format!("/data/fhir/careplan?patient={KARI}"))
            .bearer_auth(&token)
            .header("Bru-Purpose", PURPOSE),
    )
    .await;
    first.expect_status(200, "first page");
    let doc = first.json();
    let body = first.text();
    assert!(person_numbers(&body).is_empty(), "{body}");
    let next = doc["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .and_then(|l| l["url"].as_str())
        .unwrap()
        .to_owned();
    assert!(next.contains("?bru_page="), "{next}");

    // Another caller, another dataset, an altered token: refused, and the
    // provider is not asked.
    let other = cw.world.mp_token(NAV, SCOPE_FHIR);
    let reply = send(
        bru.client
            .get(&next)
            .bearer_auth(&other)
            .header("Bru-Purpose", PURPOSE),
    )
    .await;
    assert_eq!(reply.status, 400, "another caller: {}", reply.text());
    let plain = next.replace("/data/fhir/careplan?", "/data/fhir/plain?");
    let reply = send(
        bru.client
            .get(&plain)
            .bearer_auth(&token)
            .header("Bru-Purpose", PURPOSE),
    )
    .await;
    reply.expect_problem(400, "malformed_request", "a page link for another dataset");
    let altered = format!("{}A", &next[..next.len() - 1]);
    let altered = if altered == next {
        format!("{}B", &next[..next.len() - 1])
    } else {
        altered
    };
    let reply = send(
        bru.client
            .get(&altered)
            .bearer_auth(&token)
            .header("Bru-Purpose", PURPOSE),
    )
    .await;
    reply.expect_problem(400, "malformed_request", "an altered page link");
    assert_eq!(cw.fhir.requests().len(), 1, "{:?}", cw.fhir.requests());

    // Its caller follows it: the provider gets the original query back.
    let second = send(
        bru.client
            .get(&next)
            .bearer_auth(&token)
            .header("Bru-Purpose", PURPOSE),
    )
    .await;
    second.expect_status(200, "the next page");
    assert_eq!(
        cw.fhir.requests().last().cloned(),
        Some(format!("/careplan?patient={KARI}&_page=2"))
    );
    // Recorded about the same person, with the subject found in the restored query.
    let d1 = cw
        .world
        .record(&first.transfer_id().unwrap(), "decision")
        .await;
    let d2 = cw
        .world
        .record(&second.transfer_id().unwrap(), "decision")
        .await;
    assert_eq!(d2["decision"], "allow", "{d2}");
    assert_eq!(d2["path"], "/data/fhir/careplan", "{d2}");
    assert!(d2["subject_ref"].is_string(), "{d2}");
    assert_eq!(d1["subject_ref"], d2["subject_ref"]);
    assert_exports_clean(&cw.world, "FHIR paging").await;
}

// ---- (4) a supplier and the audit API ------------------------------------

fn supplier_audit_token(world: &TestWorld) -> String {
    world
        .mp(K429, "bru:audit")
        .claim(
            "supplier",
            json!({"authority": "iso6523-actorid-upis", "ID": format!("0192:{OMSORGSAPP}")}),
        )
        .sign(&world.mp_signer())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supplier_reads_the_audit_api_only_where_policy_names_it() {
    // By default: the consumer alone.
    let world = audit_world(TestWorld::builder(), None).await;
    let bru = world.start().await;
    send(
        bru.get("/audit/v1/records")
            .bearer_auth(audit_token(&world)),
    )
    .await
    .expect_status(200, "K429 itself");
    let vendor = supplier_audit_token(&world);
    for path in [
        format!("/audit/v1/records?subject={KARI}"),
        "/audit/v1/checkpoint".to_owned(),
    ] {
        let reply = send(bru.get(&path).bearer_auth(&vendor)).await;
        let body = reply.expect_problem(403, "consumer_not_allowed", "K429's supplier");
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("audit_suppliers")),
            "the detail says what would allow it: {body}"
        );
    }
    let records = world
        .wait_records("the refused reads", |r| {
            r.iter()
                .filter(|r| r["kind"] == "audit_read" && r["code"] == "consumer_not_allowed")
                .count()
                == 2
        })
        .await;
    assert!(records
        .iter()
        .filter(|r| r["code"] == "consumer_not_allowed")
        .all(|r| r["supplier"] == format!("0192:{OMSORGSAPP}")));
    drop(bru);

    // Named in audit_suppliers: allowed.
    let world = audit_world(TestWorld::builder(), None).await;
    let policy_path = world.dir.path().join("policy.toml");
    let policy = std::fs::read_to_string(&policy_path).unwrap();
    let marker = "audit_reader = true\n";
    assert!(policy.contains(marker));
    std::fs::write(
        &policy_path,
        policy.replacen(
            marker,
            &format!("{marker}audit_suppliers = [\"{OMSORGSAPP}\"]\n"),
            1,
        ),
    )
    .unwrap();
    let bru = world.start().await;
    let reply = send(
        bru.get("/audit/v1/records")
            .bearer_auth(supplier_audit_token(&world)),
    )
    .await;
    reply.expect_status(200, "a supplier the policy names");
    // Another supplier is still refused.
    let snoop = world
        .mp(K429, "bru:audit")
        .claim(
            "supplier",
            json!({"authority": "iso6523-actorid-upis", "ID": format!("0192:{SNOOP}")}),
        )
        .sign(&world.mp_signer());
    assert_eq!(
        send(bru.get("/audit/v1/records").bearer_auth(snoop))
            .await
            .status,
        403
    );
}
