//! The provider side through the real `bru` binary: FHIR paging through Bru
//! with every page recorded, provider credentials (mutual TLS, OAuth2
//! JWT-bearer grants) against real counterparts, the circuit breaker and
//! the attempt counter, and the DCAT-AP-NO catalog.
#![allow(clippy::unwrap_used)]

use bru_tests::connectors::*;
use bru_tests::*;
use serde_json::Value;

/// The log without terminal colour codes.
fn plain_logs(bru: &Bru) -> String {
    let raw = bru.logs();
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ … m
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn links(doc: &Value) -> Vec<(String, String)> {
    doc["link"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|l| {
            (
                l["relation"].as_str().unwrap_or_default().to_owned(),
                l["url"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn link(doc: &Value, relation: &str) -> Option<String> {
    links(doc)
        .into_iter()
        .find(|(r, _)| r == relation)
        .map(|(_, u)| u)
}

fn resource_types(doc: &Value) -> Vec<String> {
    doc["entry"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            e["resource"]["resourceType"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fhir_paging_goes_through_bru_and_every_page_is_recorded() {
    let cw = ConnectorWorld::new(0).await;
    let bru = cw.world.start().await;
    assert_eq!(bru.public.port(), cw.port);
    let token = cw.token(SCOPE_FHIR);
    let bru_base = format!("https://localhost:{}/data/fhir/careplan", cw.port);
    let provider_addr = cw.fhir.addr.to_string();

    let first = send(
        bru.get(&format!("/data/fhir/careplan?patient={KARI}"))
            .bearer_auth(&token)
            .header("Bru-Purpose", PURPOSE),
    )
    .await;
    first.expect_status(200, "first page");
    let doc = first.json();
    assert_eq!(
        resource_types(&doc),
        ["CarePlan"],
        "the mask keeps CarePlan only: {doc}"
    );
    // Bru's links carry an opaque page token, never the provider's query
    // (which names the patient).
    let page_link = |url: &Option<String>| {
        url.as_deref().is_some_and(|u| {
            u.strip_prefix(&format!("{bru_base}?bru_page="))
                .is_some_and(|t| !t.is_empty() && !t.contains(['&', '=']))
                && !u.contains(KARI)
        })
    };
    assert!(page_link(&link(&doc, "self")), "{doc}");
    let next = link(&doc, "next").unwrap_or_else(|| panic!("no next link in {doc}"));
    assert!(page_link(&Some(next.clone())), "{next}");
    assert!(
        links(&doc).iter().all(|(_, u)| !u.contains(&provider_addr)),
        "no link may name the provider: {doc}"
    );
    assert!(
        link(&doc, "related").is_none(),
        "a link outside the dataset is removed: {doc}"
    );

    // Follow the next link exactly as Bru wrote it.
    let second = send(
        bru.client
            .get(&next)
            .bearer_auth(&token)
            .header("Bru-Purpose", PURPOSE),
    )
    .await;
    second.expect_status(200, "second page, through the rewritten link");
    let doc2 = second.json();
    for relation in ["self", "previous", "next"] {
        assert!(page_link(&link(&doc2, relation)), "{relation}: {doc2}");
    }

    assert_eq!(
        cw.fhir.requests(),
        [
            format!("/careplan?patient={KARI}"),
            format!("/careplan?patient={KARI}&_page=2")
        ],
        "both pages were fetched from the provider by Bru"
    );
    let (t1, t2) = (first.transfer_id().unwrap(), second.transfer_id().unwrap());
    assert_ne!(t1, t2);
    for tid in [&t1, &t2] {
        let decision = cw.world.record(tid, "decision").await;
        assert_eq!(decision["decision"], "allow", "{decision}");
        assert_eq!(decision["dataset"], "fhir/careplan");
        assert_eq!(decision["consumer"], format!("0192:{CALLER}"));
        let outcome = cw.world.record(tid, "outcome").await;
        assert_eq!(outcome["status"], 200, "{outcome}");
    }
    let (records, raw) = cw.world.export().await;
    let decisions = records
        .iter()
        .filter(|r| r["kind"] == "decision" && r["dataset"] == "fhir/careplan")
        .count();
    assert_eq!(decisions, 2, "two calls, two decision records:\n{raw}");
    assert!(!raw.contains(KARI), "records never hold the person number");

    // Without a mask the Bundle is passed whole, its links rewritten all the same.
    let plain = send(
        bru.get(&format!("/data/fhir/plain?patient={KARI}&_page=2"))
            .bearer_auth(&token)
            .header("Bru-Purpose", PURPOSE),
    )
    .await;
    plain.expect_status(200, "unmasked FHIR dataset");
    let doc = plain.json();
    assert_eq!(resource_types(&doc), ["CarePlan", "Observation"]);
    let plain_base = format!("https://localhost:{}/data/fhir/plain", cw.port);
    assert!(
        link(&doc, "next").is_some_and(|u| u.starts_with(&format!("{plain_base}?bru_page="))
            && !u.contains(KARI)),
        "{doc}"
    );
    assert!(
        links(&doc).iter().all(|(_, u)| !u.contains(&provider_addr)),
        "{doc}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_credentials_work_and_their_failures_are_clear_502s() {
    let cw = ConnectorWorld::new(0).await;
    let bru = cw.world.start().await;
    let token = cw.token(SCOPE_SECURE);
    let call = |provider: &str| {
        bru.get(&format!("/data/{provider}/data"))
            .bearer_auth(&token)
            .header("Bru-Purpose", PURPOSE)
    };

    // Mutual TLS with the enterprise certificate, the provider's CA pinned.
    let ok = send(call("secure")).await;
    ok.expect_status(200, "mutual TLS");
    assert_eq!(ok.json(), serde_json::json!({"mtls": true}));
    assert_eq!(cw.mtls.requests(), 1);

    let mut failures = Vec::new();
    for (provider, reason, phrase) in [
        ("secure-expired", "CertificateExpired", "TLS handshake"),
        ("secure-wrongca", "UnknownIssuer", "TLS handshake"),
        (
            "oauth-refused",
            "invalid_client",
            "the token endpoint refused the grant",
        ),
    ] {
        let r = send(call(provider)).await;
        let problem = r.expect_problem(502, "upstream_error", provider);
        let detail = problem["detail"].as_str().unwrap_or_default().to_owned();
        assert!(
            detail.contains(reason) && detail.contains(phrase),
            "{provider}: the detail names the reason: {detail}"
        );
        failures.push((provider, reason, r.problem_transfer_id()));
    }
    assert_eq!(
        cw.mtls.requests(),
        1,
        "no request got through a failed handshake"
    );
    assert_eq!(cw.oauth.count(), 0, "nothing is forwarded without a token");

    // OAuth2: a grant the endpoint verifies buys the token the provider sees; it is cached.
    for _ in 0..2 {
        send(call("oauth")).await.expect_status(200, "oauth2");
    }
    let seen: Vec<String> = cw
        .oauth
        .requests()
        .iter()
        .map(|r| r.header("authorization").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(seen, ["Bearer access-token-1", "Bearer access-token-1"]);
    let grants = cw.token.grants();
    assert_eq!(
        grants.len(),
        1,
        "one grant for two calls; refusals: {:?}",
        cw.token.refusals()
    );
    assert_eq!(grants[0]["aud"], GRANT_AUDIENCE);
    assert_eq!(grants[0]["iss"], GRANT_CLIENT);
    assert_eq!(grants[0]["scope"], GRANT_SCOPE);
    assert!(cw
        .token
        .refusals()
        .iter()
        .any(|r| r.contains("Unknown client")));

    // The outcome record says who failed; the log says why.
    for (provider, reason, tid) in &failures {
        let outcome = cw.world.record(tid, "outcome").await;
        assert_eq!(outcome["status"], 502, "{provider}: {outcome}");
        assert_eq!(outcome["code"], "upstream_error", "{provider}: {outcome}");
        let logs = plain_logs(&bru);
        assert!(
            logs.lines().any(|l| l.contains("provider call failed")
                && l.contains(tid.as_str())
                && l.contains(reason)),
            "{provider}: a log line with the transfer id and {reason}:\n{logs}"
        );
    }
    let logs = bru.logs();
    for secret in ["access-token-1", "PRIVATE KEY", token.as_str()] {
        assert!(!logs.contains(secret), "the log must not hold {secret:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_and_every_attempt_is_counted() {
    let cw = ConnectorWorld::new(0).await;
    let bru = cw.world.start().await;
    let token = cw.token(SCOPE_SECURE);
    let call = || {
        bru.get("/data/flaky/data")
            .bearer_auth(&token)
            .header("Bru-Purpose", PURPOSE)
    };
    // retries = 1, breaker_failures = 2: the first call makes two attempts
    // (a GET after a connect error is retried) and opens the breaker.
    let first = send(call()).await;
    let p = first.expect_problem(502, "upstream_error", "nothing listens");
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("could not connect"),
        "{p}"
    );
    let second = send(call()).await;
    let p = second.expect_problem(502, "upstream_error", "the breaker is open");
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("the provider is failing"),
        "{p}"
    );

    let metrics = send(bru.ops_client.get(bru.ops_url("/metrics"))).await;
    metrics.expect_status(200, "/metrics");
    let text = metrics.text();
    let value = |outcome: &str| {
        let prefix =
            format!("bru_provider_attempts_total{{provider=\"flaky\",outcome=\"{outcome}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    assert_eq!(
        value("connect_error"),
        Some(2.0),
        "two attempts on the first call:\n{text}"
    );
    assert_eq!(
        value("circuit_open"),
        Some(1.0),
        "the second call was refused at once:\n{text}"
    );

    for r in [&first, &second] {
        let tid = r.problem_transfer_id();
        let outcome = cw.world.record(&tid, "outcome").await;
        assert_eq!(outcome["code"], "upstream_error", "{outcome}");
        assert_eq!(outcome["status"], 502);
    }
    let logs = plain_logs(&bru);
    let line = logs
        .lines()
        .find(|l| l.contains("provider call failed") && l.contains(&first.problem_transfer_id()))
        .unwrap_or_else(|| panic!("no log line for the first call:\n{logs}"));
    assert!(
        line.contains(r#"attempts=["connect_error", "connect_error"]"#),
        "both attempts in the log line: {line}"
    );
    assert!(line.contains(r#"breaker="open""#), "{line}");
}

/// DCAT-AP-NO's mandatory properties per class (sh:minCount 1 in the
/// DCAT-AP-NO 3 SHACL shapes, dcatapno3-core-shapes.ttl).
const CATALOG_REQUIRED: [&str; 4] = [
    "dct:title",
    "dct:description",
    "dct:publisher",
    "dcat:contactPoint",
];
const DATASET_REQUIRED: [&str; 5] = [
    "dct:title",
    "dct:description",
    "dct:publisher",
    "dcat:contactPoint",
    "dcat:theme",
];
const DATA_SERVICE_REQUIRED: [&str; 4] = [
    "dcat:endpointURL",
    "dcat:contactPoint",
    "dct:title",
    "dct:publisher",
];
const DISTRIBUTION_REQUIRED: [&str; 1] = ["dcat:accessURL"];
/// What this catalog promises beyond the mandatory set.
const DATASET_PROMISED: [&str; 5] = [
    "dct:identifier",
    "dct:accessRights",
    "dcatno:legalBasisForAccess",
    "dcat:distribution",
    "bru:purposes",
];

fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.trim().is_empty(),
        Value::Array(a) => !a.is_empty() && a.iter().all(present),
        Value::Object(o) => !o.is_empty() && o.values().all(present),
        _ => true,
    }
}

fn require(missing: &mut Vec<String>, what: &str, node: &Value, props: &[&str]) {
    for p in props {
        if !node.get(*p).is_some_and(present) {
            missing.push(format!("{what}: {p}"));
        }
    }
    // A publisher is a foaf:Agent with a name; a contact point a vcard:Kind
    // with a name and an e-mail or a URL.
    if let Some(publisher) = node.get("dct:publisher") {
        if !publisher.get("foaf:name").is_some_and(present) {
            missing.push(format!("{what}: dct:publisher foaf:name"));
        }
    }
    if let Some(contact) = node.get("dcat:contactPoint") {
        if !contact.get("vcard:fn").is_some_and(present)
            || !(contact.get("vcard:hasEmail").is_some_and(present)
                || contact.get("vcard:hasURL").is_some_and(present))
        {
            missing.push(format!(
                "{what}: dcat:contactPoint vcard:fn and vcard:hasEmail/hasURL"
            ));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_is_public_and_has_every_mandatory_dcat_ap_no_property() {
    let cw = ConnectorWorld::new(0).await;
    let bru = cw.world.start().await;
    let r = send(bru.get("/catalog/v1/datasets")).await;
    r.expect_status(200, "the catalog needs no token");
    assert!(r
        .header("content-type")
        .unwrap_or_default()
        .starts_with("application/ld+json"));
    let doc = r.json();
    assert_eq!(doc["@type"], "dcat:Catalog");
    assert!(doc["@context"]["dcat"].is_string());

    let mut missing = Vec::new();
    require(&mut missing, "catalog", &doc, &CATALOG_REQUIRED);
    let datasets = doc["dcat:dataset"].as_array().cloned().unwrap_or_default();
    let services = doc["dcat:service"].as_array().cloned().unwrap_or_default();
    for d in &datasets {
        let id = d["dct:identifier"].as_str().unwrap_or("?").to_owned();
        require(&mut missing, &format!("dataset {id}"), d, &DATASET_REQUIRED);
        require(&mut missing, &format!("dataset {id}"), d, &DATASET_PROMISED);
        for dist in d["dcat:distribution"].as_array().into_iter().flatten() {
            require(
                &mut missing,
                &format!("distribution of {id}"),
                dist,
                &DISTRIBUTION_REQUIRED,
            );
        }
    }
    for s in &services {
        require(
            &mut missing,
            &format!("service {}", s["@id"]),
            s,
            &DATA_SERVICE_REQUIRED,
        );
    }
    assert_eq!(
        missing,
        Vec::<String>::new(),
        "mandatory properties missing in:\n{doc:#}"
    );

    // Every dataset of the policy, each with its endpoint through Bru.
    let ids: Vec<&str> = datasets
        .iter()
        .filter_map(|d| d["dct:identifier"].as_str())
        .collect();
    for expected in [
        "k429/sosialtjeneste",
        "nav/inntekt",
        "fhir/careplan",
        "bulk/download",
        "oauth/data",
    ] {
        assert!(ids.contains(&expected), "{expected} missing from {ids:?}");
    }
    assert_eq!(services.len(), datasets.len());
    let public = format!("https://localhost:{}", cw.port);
    for d in &datasets {
        let id = d["dct:identifier"].as_str().unwrap_or_default();
        let endpoint = format!("{public}/data/{id}");
        assert_eq!(
            d["dcat:distribution"][0]["dcat:accessURL"]["@id"],
            endpoint.as_str()
        );
        assert!(
            services
                .iter()
                .any(|s| s["dcat:endpointURL"]["@id"] == endpoint.as_str()),
            "{id}"
        );
    }
    let find = |id: &str| {
        datasets
            .iter()
            .find(|d| d["dct:identifier"] == id)
            .cloned()
            .unwrap()
    };
    let inntekt = find("nav/inntekt");
    assert_eq!(inntekt["bru:consentRequired"], true);
    assert_eq!(inntekt["dct:publisher"]["dct:identifier"], NAV);
    assert!(inntekt["dct:accessRights"]["@id"]
        .as_str()
        .unwrap()
        .ends_with("/NON_PUBLIC"));
    assert_eq!(
        inntekt["bru:purposes"][0]["bru:fields"]["bru:names"],
        serde_json::json!(["aar", "sum"])
    );
    let bulk = find("bulk/download");
    assert!(bulk["dct:accessRights"]["@id"]
        .as_str()
        .unwrap()
        .ends_with("/RESTRICTED"));
    assert!(find("fhir/careplan")["dcat:theme"][0]["@id"]
        .as_str()
        .unwrap()
        .ends_with("/HEAL"));
    assert_eq!(doc["dct:publisher"]["dct:identifier"], K429);
}
