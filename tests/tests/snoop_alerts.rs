//! Snooping detection in the demo world (SPEC 11): the normal demo story
//! triggers no rule; a scripted scenario triggers each rule it can reach
//! from outside (a bulk read of many people, an off-hours read of a marked
//! dataset, a representative asking for someone they do not represent),
//! found by the follower as records arrive and shown at
//! `GET /audit/v1/alerts`, in `bru_audit_alerts_total{rule}` and by
//! `bru audit alerts`.
//!
//! The demo's working hours (07-17 on weekdays, Europe/Oslo) would make the
//! result depend on the clock; each test writes DIR/policy.toml first (the
//! demo keeps a policy it finds) with the hours pinned: the whole week for
//! the normal story, a one-hour window hours away from now for the scenario.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use bru_tests::demo;
use bru_tests::*;
use serde_json::{json, Value};

/// The demo's providers listen on fixed ports: one demo at a time.
static ONE_DEMO: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const DEMO_POLICY: &str = include_str!("../../demo/world/policy.toml");
const HOURS: &str =
    "start_hour = 7\nend_hour = 17\ndays = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]";

/// The demo's policy with its off-hours window replaced.
fn policy_with_hours(start: u32, end: u32) -> String {
    assert!(
        DEMO_POLICY.contains(HOURS),
        "the demo policy marks k429/sosialtjeneste 07-17"
    );
    DEMO_POLICY.replace(
        HOURS,
        &format!(
            "start_hour = {start}\nend_hour = {end}\ndays = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\", \"sun\"]"
        ),
    )
}

async fn start_demo(dir: &Path, policy: &str) -> Bru {
    std::fs::write(dir.join("policy.toml"), policy).unwrap();
    demo::start_in(dir).await
}

async fn sosial(bru: &Bru, token: &str, subject: &str) -> Reply {
    send(
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(token)
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", subject),
    )
    .await
}

/// `GET /audit/v1/alerts` as K429's security team, every page.
async fn api_alerts(bru: &Bru, token: &str, query: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("/audit/v1/alerts?limit=2{query}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let r = send(bru.get(&url).bearer_auth(token)).await;
        r.expect_status(200, "GET /audit/v1/alerts");
        let page = r.json();
        all.extend(page["alerts"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return all,
        }
    }
}

/// `bru audit alerts --config DIR/bru.toml`: its findings (it catches the
/// follower up itself, so nothing the log holds is missed).
fn cli_alerts(dir: &Path, extra: &[&str]) -> Vec<Value> {
    let out = Command::new(bru_bin())
        .args(["audit", "alerts", "--config"])
        .arg(dir.join("bru.toml"))
        .args(extra)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "bru audit alerts failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn rules_of(alerts: &[Value]) -> std::collections::BTreeSet<String> {
    alerts
        .iter()
        .map(|a| a["rule"].as_str().unwrap().to_owned())
        .collect()
}

/// Synthetic D-style test numbers (month + 80) with valid control digits,
/// none of them a demo person.
fn synthetic_people(n: usize) -> Vec<String> {
    let mut out = Vec::new();
    'all: for month in 81..=92u32 {
        for day in 1..=28u32 {
            for individual in 500..=599u32 {
                let base = format!("{day:02}{month:02}90{individual:03}");
                let d: Vec<u32> = base.chars().map(|c| c.to_digit(10).unwrap()).collect();
                let w1 = [3, 7, 6, 1, 8, 9, 4, 5, 2];
                let k1 = (11 - d.iter().zip(w1).map(|(a, b)| a * b).sum::<u32>() % 11) % 11;
                if k1 == 10 {
                    continue;
                }
                let w2 = [5, 4, 3, 2, 7, 6, 5, 4, 3, 2];
                let with_k1: Vec<u32> = d.iter().copied().chain([k1]).collect();
                let k2 = (11 - with_k1.iter().zip(w2).map(|(a, b)| a * b).sum::<u32>() % 11) % 11;
                if k2 == 10 {
                    continue;
                }
                out.push(format!("{base}{k1}{k2}"));
                if out.len() == n {
                    break 'all;
                }
                // One number per day and month is plenty.
                break;
            }
        }
    }
    out
}

fn alert_count(metrics: &str, rule: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with(&format!("bru_audit_alerts_total{{rule=\"{rule}\"}}")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no bru_audit_alerts_total for {rule}:\n{metrics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_normal_demo_story_triggers_no_snooping_rule() {
    init();
    let _one = ONE_DEMO.lock().await;
    let dir = tempfile::Builder::new()
        .prefix("bru-snoop-")
        .tempdir()
        .unwrap();
    let mut bru = start_demo(dir.path(), &policy_with_hours(0, 24)).await;

    // The walkthrough: NAV reads Kari's case under statute; Snoop AS is refused.
    let nav = demo::machine_token(&bru, NAV, SCOPE_SOSIAL).await;
    sosial(&bru, &nav, KARI)
        .await
        .expect_status(200, "NAV reads Kari's case");
    let snoop = demo::machine_token(&bru, SNOOP, SCOPE_SOSIAL).await;
    sosial(&bru, &snoop, KARI)
        .await
        .expect_problem(403, "consumer_not_allowed", "Snoop AS");
    // K429 asks Kari for consent, she accepts, K429 reads income and home care.
    let k429 = demo::machine_token(
        &bru,
        K429,
        "nav:inntekt.read helsenorge:hjemmetjeneste.read bru:consent bru:audit",
    )
    .await;
    let until = (time::OffsetDateTime::now_utc() + time::Duration::days(30))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let r = send(
        bru.post("/consent/v1/requests")
            .bearer_auth(&k429)
            .json(&json!({
                "subject": KARI,
                "datasets": ["nav/inntekt", "helsenorge/hjemmetjeneste"],
                "purpose": PURPOSE_OMSORG,
                "valid_to": until,
                "max_uses": 10,
                "message": "K429 fyller ut søknaden din om omsorgsbolig.",
            })),
    )
    .await;
    r.expect_status(201, "K429's consent request");
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let kari = demo::citizen_token(&bru, json!({"pid": KARI})).await;
    send(
        bru.post(&format!("/citizen/v1/consents/{id}/accept"))
            .bearer_auth(&kari),
    )
    .await
    .expect_status(200, "Kari accepts");
    send(
        bru.get("/data/nav/inntekt")
            .bearer_auth(&k429)
            .header("Bru-Purpose", PURPOSE_OMSORG)
            .header("Bru-Consent", &id)
            .header("Nav-Personident", KARI),
    )
    .await
    .expect_status(200, "K429 reads Kari's income");
    send(
        bru.get(&format!("/data/helsenorge/hjemmetjeneste?patient={KARI}"))
            .bearer_auth(&k429)
            .header("Bru-Purpose", PURPOSE_OMSORG)
            .header("Bru-Consent", &id),
    )
    .await
    .expect_status(200, "K429 reads Kari's home care");
    // Kari reads her access log; Aisha, Per's guardian, lists whom she represents.
    send(bru.get("/citizen/v1/transfers").bearer_auth(&kari))
        .await
        .expect_status(200, "Kari's access log");
    let aisha = demo::citizen_token(
        &bru,
        json!({"pid": AISHA, "fullmakt": {"owner": PER, "roles": ["helse", "velferd"]}}),
    )
    .await;
    send(bru.get("/citizen/v1/represented").bearer_auth(&aisha))
        .await
        .expect_status(200, "Aisha's represented");
    send(
        bru.get("/audit/v1/records?kind=decision")
            .bearer_auth(&k429),
    )
    .await
    .expect_status(200, "K429's security team reads the log");

    // Every record evaluated (the CLI catches the follower up): nothing found.
    let found = cli_alerts(dir.path(), &[]);
    assert!(
        found.is_empty(),
        "the normal story is no snooping: {found:#?}"
    );
    assert!(api_alerts(&bru, &k429, "").await.is_empty());
    let metrics = send(bru.ops_client.get(bru.ops_url("/metrics")))
        .await
        .text();
    for rule in [
        "subjects_per_hour",
        "off_hours",
        "break_glass",
        "representation",
    ] {
        assert_eq!(alert_count(&metrics, rule), 0, "{rule}");
    }
    bru.sigterm();
    bru.wait_exit(Duration::from_secs(30)).await;

    // `bru explain` says which rules look at NAV's reads of the marked dataset.
    let out = Command::new(bru_bin())
        .args(["explain", "--config"])
        .arg(dir.path().join("bru.toml"))
        .args([
            "--consumer",
            &format!("0192:{NAV}"),
            "--dataset",
            "k429/sosialtjeneste",
            "--purpose",
            PURPOSE_SOSIAL,
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("off_hours: a finding for each allowed call outside 00-24 on mon, tue, wed, thu, fri, sat, sun (Europe/Oslo)"),
        "{text}"
    );
    assert!(text.contains("at least 20 distinct people"), "{text}");

    // `bru check` names a bad [snooping] with its line.
    let bad = DEMO_POLICY.replace(
        "start_hour = 7\nend_hour = 17",
        "start_hour = 17\nend_hour = 7",
    );
    std::fs::write(dir.path().join("policy.toml"), &bad).unwrap();
    let out = Command::new(bru_bin())
        .args(["check", "--config"])
        .arg(dir.path().join("bru.toml"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let line = bad.lines().position(|l| l == "end_hour = 7").unwrap() + 1;
    assert!(
        text.contains(&format!(
            "policy.toml:{line}: [[snooping.off_hours]] end_hour 7 must come after start_hour 17"
        )),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snooping_scenario_triggers_each_rule_with_its_records() {
    init();
    let _one = ONE_DEMO.lock().await;
    let dir = tempfile::Builder::new()
        .prefix("bru-snoop-")
        .tempdir()
        .unwrap();
    // A one-hour working window six hours after the UTC hour: Oslo (UTC+1
    // or +2) is outside it for the next four hours whatever the day.
    let start = (time::OffsetDateTime::now_utc().hour() as u32 + 6) % 24;
    let mut bru = start_demo(dir.path(), &policy_with_hours(start, start + 1)).await;
    let k429 = demo::machine_token(&bru, K429, "bru:audit").await;

    // 1. NAV's bulk integration reads 25 people's cases in one hour: above
    //    the demo's floor of 20, and NAV has no usual count yet.
    let nav = demo::machine_token(&bru, NAV, SCOPE_SOSIAL).await;
    let people = synthetic_people(25);
    assert_eq!(people.len(), 25);
    let mut transfers = Vec::new();
    for p in &people {
        // Allowed; the demo provider knows only the demo persons (404).
        let r = sosial(&bru, &nav, p).await;
        assert_eq!(r.status, 404, "NAV's read is forwarded: {}", r.text());
        transfers.push(r.transfer_id().unwrap());
    }
    // The same person again is no new subject.
    assert_eq!(sosial(&bru, &nav, &people[0]).await.status, 404, "again");

    // 2. Every one of those reads is outside the pinned working hours.
    // 3. A representative probes: Kari asks for a proof on behalf of a
    //    party she does not represent.
    let kari = demo::citizen_token(&bru, json!({"pid": KARI})).await;
    send(
        bru.get("/citizen/v1/transfers/0/proof")
            .bearer_auth(&kari)
            .header("Bru-On-Behalf-Of", "not-one-of-mine"),
    )
    .await
    .expect_problem(403, "not_represented", "a party Kari does not represent");

    // The follower finds them as the records arrive (woken on append).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let alerts = loop {
        let alerts = api_alerts(&bru, &k429, "").await;
        let rules = rules_of(&alerts);
        if ["subjects_per_hour", "off_hours", "representation"]
            .iter()
            .all(|r| rules.contains(*r))
            || tokio::time::Instant::now() > deadline
        {
            break alerts;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let rules = rules_of(&alerts);
    for rule in ["subjects_per_hour", "off_hours", "representation"] {
        assert!(rules.contains(rule), "{rule} not found: {alerts:#?}");
    }
    assert!(!rules.contains("break_glass"), "{alerts:#?}");

    // One bulk finding, holding the first read of each of the 20 people
    // that crossed the floor, by transfer id.
    let bulk: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["rule"] == "subjects_per_hour")
        .collect();
    assert_eq!(bulk.len(), 1, "{bulk:#?}");
    assert_eq!(bulk[0]["consumer"], format!("0192:{NAV}"));
    let ids: Vec<&str> = bulk[0]["transfer_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        transfers[..20]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    assert_eq!(bulk[0]["records"].as_array().unwrap().len(), 20);
    // Each of the 26 reads was off hours.
    let off: Vec<&Value> = alerts.iter().filter(|a| a["rule"] == "off_hours").collect();
    assert_eq!(off.len(), 26, "{off:#?}");
    assert_eq!(off[0]["dataset"], "k429/sosialtjeneste");
    // Pseudonyms only: no person number in any finding.
    let text = serde_json::to_string(&alerts).unwrap();
    for p in people.iter().chain([KARI.to_owned()].iter()) {
        assert!(
            !text.contains(p.as_str()),
            "a person number in the findings"
        );
    }
    // Filtered by rule and time.
    let only = api_alerts(&bru, &k429, "&rule=representation").await;
    assert_eq!(
        rules_of(&only).into_iter().collect::<Vec<_>>(),
        ["representation"]
    );
    assert!(api_alerts(&bru, &k429, "&since=2999-01-01T00:00:00Z")
        .await
        .is_empty());
    send(bru.get("/audit/v1/alerts?rule=peeking").bearer_auth(&k429))
        .await
        .expect_problem(400, "malformed_request", "an unknown rule");
    // Snoop AS may not read them.
    let snoop = demo::machine_token(&bru, SNOOP, "bru:audit").await;
    let r = send(bru.get("/audit/v1/alerts").bearer_auth(&snoop)).await;
    assert_eq!(r.status, 403, "{}", r.text());

    // The metric counts what this process found.
    let metrics = send(bru.ops_client.get(bru.ops_url("/metrics")))
        .await
        .text();
    assert_eq!(alert_count(&metrics, "subjects_per_hour"), 1);
    assert_eq!(alert_count(&metrics, "off_hours"), 26);
    assert!(alert_count(&metrics, "representation") >= 1);
    assert_eq!(alert_count(&metrics, "break_glass"), 0);

    // `bru audit alerts` lists the same findings.
    let cli = cli_alerts(dir.path(), &[]);
    let cli_ids: Vec<&Value> = cli.iter().map(|a| &a["id"]).collect();
    let api_ids: Vec<&Value> = alerts.iter().map(|a| &a["id"]).collect();
    assert_eq!(cli_ids, api_ids);
    let only = cli_alerts(dir.path(), &["--rule", "subjects_per_hour"]);
    assert_eq!(only.len(), 1);
    bru.sigterm();
    bru.wait_exit(Duration::from_secs(30)).await;
}

/// The break-glass rule end to end: Kari blocks K429, and K429's home-care
/// nurse passes the block with `Bru-Break-Glass` (SPEC 10). The rule itself
/// is tested on the store with real break-glass records
/// (consent-db `store::snoop::tests`). Kari is told at once, in her inbox,
/// in Bru's words (SPEC 10), whatever her notification settings; the
/// nurse's reason stays in the audit record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_break_glass_read_in_the_demo_is_a_finding() {
    init();
    let _one = ONE_DEMO.lock().await;
    let dir = tempfile::Builder::new()
        .prefix("bru-snoop-")
        .tempdir()
        .unwrap();
    let mut bru = start_demo(dir.path(), &policy_with_hours(0, 24)).await;
    let k429 = demo::machine_token(
        &bru,
        K429,
        "helsenorge:hjemmetjeneste.read bru:consent bru:audit",
    )
    .await;
    let until = (time::OffsetDateTime::now_utc() + time::Duration::days(30))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let r = send(
        bru.post("/consent/v1/requests")
            .bearer_auth(&k429)
            .json(&json!({
                "subject": KARI,
                "datasets": ["helsenorge/hjemmetjeneste"],
                "purpose": PURPOSE_OMSORG,
                "valid_to": until,
                "message": "K429 fyller ut søknaden din om omsorgsbolig.",
            })),
    )
    .await;
    r.expect_status(201, "K429's consent request");
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let kari = demo::citizen_token(&bru, json!({"pid": KARI})).await;
    send(
        bru.post(&format!("/citizen/v1/consents/{id}/accept"))
            .bearer_auth(&kari),
    )
    .await
    .expect_status(200, "Kari accepts");
    send(
        bru.post("/citizen/v1/blocks")
            .bearer_auth(&kari)
            .json(&json!({"consumer": format!("0192:{K429}")})),
    )
    .await
    .expect_status(201, "Kari blocks K429");
    let read = |glass: Option<&'static str>| {
        let mut rb = bru
            .get(&format!("/data/helsenorge/hjemmetjeneste?patient={KARI}"))
            .bearer_auth(&k429)
            .header("Bru-Purpose", PURPOSE_OMSORG)
            .header("Bru-Consent", &id);
        if let Some(reason) = glass {
            rb = rb.header("Bru-Break-Glass", reason);
        }
        send(rb)
    };
    read(None)
        .await
        .expect_problem(403, "blocked_by_subject", "the block holds");
    let r = read(Some("akutt: pasienten svarer ikke")).await;
    r.expect_status(200, "break-glass passes the block");
    let transfer = r.transfer_id().unwrap();
    let found = cli_alerts(dir.path(), &["--rule", "break_glass"]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["transfer_ids"], json!([transfer]));
    assert_eq!(found[0]["dataset"], "helsenorge/hjemmetjeneste");
    // The reason is the caller's text; the finding names the record, not the person.
    assert!(!serde_json::to_string(&found).unwrap().contains(KARI));

    // Kari switched transfer notices off; a break-glass reaches her anyway.
    send(
        bru.client
            .put(bru.url("/citizen/v1/notifications/settings"))
            .bearer_auth(&kari)
            .json(&json!({"transfers": "none", "consent_events": false})),
    )
    .await
    .expect_status(200, "Kari turns notices off");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let notice = loop {
        let inbox = send(bru.get("/citizen/v1/notifications").bearer_auth(&kari)).await;
        inbox.expect_status(200, "Kari's inbox");
        let found = inbox.json()["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["kind"] == "break_glass")
            .cloned();
        if let Some(n) = found {
            break n;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no break-glass notice in Kari's inbox: {}",
            inbox.json()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The reason is the caller's text: never in what Kari is shown.
    assert!(
        !notice.to_string().contains("pasienten svarer ikke"),
        "{notice}"
    );
    assert!(
        notice["text"]["nb"]
            .as_str()
            .unwrap()
            .contains("nødtilgang"),
        "{notice}"
    );
    assert!(!notice.to_string().contains(KARI), "{notice}");
    bru.sigterm();
    bru.wait_exit(Duration::from_secs(30)).await;
}
