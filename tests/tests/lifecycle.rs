//! The ops listener, `bru demo`, and graceful shutdown.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bru_tests::*;
use serde_json::{json, Value};

/// Checks Prometheus / OpenMetrics text; returns the number of samples.
fn check_prometheus_text(text: &str) -> usize {
    let mut samples = 0;
    let mut types = 0;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix('#') {
            if comment.trim_start().starts_with("TYPE ") {
                types += 1;
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = &line[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in line {line:?}"
        );
        let rest = if line[name_end..].starts_with('{') {
            let close = line
                .rfind('}')
                .unwrap_or_else(|| panic!("unclosed labels: {line:?}"));
            &line[close + 1..]
        } else {
            &line[name_end..]
        };
        let value = rest
            .split_whitespace()
            .next()
            .unwrap_or_else(|| panic!("no value in line {line:?}"));
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "bad sample value {value:?} in line {line:?}"
        );
        samples += 1;
    }
    assert!(types > 0, "no `# TYPE` line in the metrics:\n{text}");
    samples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_listener_serves_health_readiness_and_metrics() {
    let world = TestWorld::new().await;
    let bru = world.start().await;
    let health = send(bru.ops_client.get(bru.ops_url("/healthz"))).await;
    health.expect_status(200, "GET /healthz");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ready = send(bru.ops_client.get(bru.ops_url("/readyz"))).await;
        if ready.status == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz never became 200: {} {}",
            ready.status,
            ready.text()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    send(world.nav_sosial(&bru, "", KARI))
        .await
        .expect_status(200, "a data call before reading metrics");
    let metrics = send(bru.ops_client.get(bru.ops_url("/metrics"))).await;
    metrics.expect_status(200, "GET /metrics");
    let ct = metrics.header("content-type").unwrap_or_default();
    assert!(
        ct.starts_with("text/plain") || ct.starts_with("application/openmetrics-text"),
        "metrics content-type {ct:?}"
    );
    let text = metrics.text();
    let samples = check_prometheus_text(&text);
    assert!(samples > 0, "no samples in the metrics:\n{text}");
    for p in PERSONS {
        assert!(
            !text.contains(p),
            "a person number is in the metrics:\n{text}"
        );
    }
}

fn org_token_request(org: &str, scope: &str) -> Value {
    json!({"org": org, "scope": scope})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_smoke_test() {
    // The demo's own SQLite, as a user's first `bru demo`.
    let (dir, bru) = bru_tests::demo::start_on_sqlite("bru-demo-").await;
    assert!(
        dir.path().join("bru.toml").is_file(),
        "DIR/bru.toml is missing"
    );

    let token = |org: &'static str, scope: &'static str| {
        let bru = &bru;
        async move {
            let r = send(
                bru.post("/demo/maskinporten/token")
                    .json(&org_token_request(org, scope)),
            )
            .await;
            r.expect_status(200, "POST /demo/maskinporten/token");
            let body = r.json();
            assert_eq!(body["token_type"], "Bearer", "{body}");
            assert!(body["expires_in"].is_number(), "{body}");
            body["access_token"]
                .as_str()
                .expect("access_token")
                .to_owned()
        }
    };

    let nav = token(NAV, SCOPE_SOSIAL).await;
    let sosial = |t: &str| {
        bru.get("/data/k429/sosialtjeneste")
            .bearer_auth(t)
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Nav-Personident", KARI)
    };
    let r = send(sosial(&nav)).await;
    r.expect_status(200, "NAV reads K429's social-service case");
    let _: Value = r.json();
    assert!(
        r.transfer_id().is_some(),
        "Bru-Transfer-Id on the demo response"
    );

    let snoop = token(SNOOP, SCOPE_SOSIAL).await;
    let r = send(sosial(&snoop)).await;
    assert_eq!(r.status, 403, "Snoop must be refused: {}", r.text());
    r.check_problem_shape("Snoop");

    let k429 = token(K429, SCOPE_INNTEKT).await;
    let r = send(
        bru.get("/data/nav/inntekt")
            .bearer_auth(&k429)
            .header("Bru-Purpose", PURPOSE_OMSORG)
            .header("Nav-Personident", KARI),
    )
    .await;
    r.expect_problem(
        403,
        "consent_required",
        "K429 on nav/inntekt without consent",
    );

    // A token minted by the test with the demo issuer's private key.
    let (header, claims) = peek(&nav);
    let key_pem = std::fs::read(dir.path().join("demo-maskinporten-key.pem"))
        .expect("DIR/demo-maskinporten-key.pem");
    let alg: jsonwebtoken::Algorithm = header["alg"]
        .as_str()
        .expect("alg")
        .parse()
        .expect("known alg");
    let key = match alg {
        jsonwebtoken::Algorithm::ES256 | jsonwebtoken::Algorithm::ES384 => {
            jsonwebtoken::EncodingKey::from_ec_pem(&key_pem)
        }
        jsonwebtoken::Algorithm::EdDSA => jsonwebtoken::EncodingKey::from_ed_pem(&key_pem),
        _ => jsonwebtoken::EncodingKey::from_rsa_pem(&key_pem),
    }
    .expect("the demo issuer key");
    let mut h = jsonwebtoken::Header::new(alg);
    h.kid = header["kid"].as_str().map(str::to_owned);
    let mut mine = claims.clone();
    let t = now();
    mine["iat"] = json!(t);
    mine["exp"] = json!(t + 120);
    mine["jti"] = json!(uuid::Uuid::new_v4().to_string());
    mine["consumer"] = json!({"authority": "iso6523-actorid-upis", "ID": format!("0192:{NAV}")});
    mine["scope"] = json!(SCOPE_SOSIAL);
    let minted = jsonwebtoken::encode(&h, &mine, &key).expect("sign");
    send(sosial(&minted)).await.expect_status(
        200,
        "a token the test minted with DIR/demo-maskinporten-key.pem",
    );

    let health = send(bru.ops_client.get(bru.ops_url("/healthz"))).await;
    health.expect_status(200, "demo /healthz");
    assert_eq!(
        health.header("strict-transport-security"),
        None,
        "the ops listener is plain HTTP: no HSTS"
    );

    // The portal's pages (and everything else on the HTTPS listener) tell
    // browsers to stay on HTTPS; not for subdomains unless configured.
    for page in [
        "/",
        "/samtykke",
        "/innsyn",
        "/static/portal.css",
        "/openapi.json",
    ] {
        let r = send(bru.get(page)).await;
        assert_eq!(
            r.header("strict-transport-security"),
            Some("max-age=31536000"),
            "{page} ({})",
            r.status
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_call_in_flight_finish() {
    let world = TestWorld::builder().shutdown_grace_ms(30_000).build().await;
    world.k429.set_delay(Duration::from_secs(4));
    let mut bru = world.start().await;
    let call = world.nav_sosial(&bru, "", KARI);
    let in_flight = tokio::spawn(send(call));
    world.k429.wait_for(1, Duration::from_secs(60)).await;
    bru.sigterm();
    let reply = in_flight.await.expect("join");
    reply.expect_status(200, "the call in flight at SIGTERM");
    let tid = reply.transfer_id().expect("Bru-Transfer-Id");
    assert_eq!(
        reply.json()["provider"],
        "k429",
        "the whole provider answer arrives: {}",
        reply.text()
    );
    let status = bru.wait_exit(Duration::from_secs(90)).await;
    assert_eq!(
        status.code(),
        Some(0),
        "bru must exit 0 after SIGTERM; output:\n{}",
        bru.logs()
    );
    let (records, raw) = world.export().await;
    let outcome = find_record(&records, &tid, "outcome")
        .unwrap_or_else(|| panic!("no outcome record for {tid} after shutdown:\n{raw}"));
    assert_eq!(outcome["status"], 200, "{outcome}");
}
