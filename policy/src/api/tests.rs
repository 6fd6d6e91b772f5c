#![allow(clippy::unwrap_used)]

use std::sync::LazyLock;

use time::macros::datetime;

use super::*;
use crate::load::parse_policy;

const DEMO: &str = include_str!("../../../demo/world/policy.toml");

static POLICY: LazyLock<Policy> =
    LazyLock::new(|| parse_policy("demo/world/policy.toml", DEMO).unwrap());

const K429: &str = "921429002";
const NAV: &str = "983440002";
const OMSORGSAPP: &str = "999000428";
const SNOOP: &str = "971000007";
const NOW: OffsetDateTime = datetime!(2025-06-01 12:00 UTC);

fn org(s: &str) -> OrgNumber {
    OrgNumber::parse(s).unwrap()
}

fn check_api(
    consumer: &str,
    supplier: Option<&str>,
    scopes: &str,
    api: Api,
    expected: Result<(), DenyCode>,
) {
    let caller = Caller {
        consumer: org(consumer),
        supplier: supplier.map(org),
        client_id: "client".into(),
        scopes: scopes.split_whitespace().map(str::to_owned).collect(),
    };
    assert_eq!(
        authorize_api(&POLICY, &caller, api),
        expected,
        "{consumer} {supplier:?} {scopes:?} {api:?}"
    );
}

#[test]
fn who_may_use_the_apis() {
    use Api::*;
    use DenyCode::*;
    for api in [ConsentRequester, Audit] {
        let scope = api.scope();
        check_api(K429, None, scope, api, Ok(()));
        // A supplier may ask for consents, but reads the log only where
        // the consumer names it in audit_suppliers (the demo does not).
        check_api(
            K429,
            Some(OMSORGSAPP),
            &format!("nav:inntekt.read {scope}"),
            api,
            if api == Audit {
                Err(ConsumerNotAllowed)
            } else {
                Ok(())
            },
        );
        check_api(K429, Some(SNOOP), scope, api, Err(ConsumerNotAllowed));
        check_api(K429, None, "nav:inntekt.read", api, Err(InsufficientScope));
        check_api(NAV, None, scope, api, Err(ConsumerNotAllowed));
        check_api(SNOOP, None, scope, api, Err(ConsumerNotAllowed));
        check_api(OMSORGSAPP, None, scope, api, Err(ConsumerNotAllowed));
        check_api(SNOOP, None, "", api, Err(InsufficientScope));
    }
    check_api(
        K429,
        None,
        "bru:audit",
        ConsentRequester,
        Err(InsufficientScope),
    );
    check_api(K429, None, "bru:consent", Audit, Err(InsufficientScope));
}

#[test]
fn a_supplier_reads_the_log_only_where_the_consumer_names_it() {
    let named = DEMO.replacen(
        "audit_reader = true",
        "audit_reader = true\naudit_suppliers = [\"999000428\"]",
        1,
    );
    assert_ne!(named, DEMO, "the demo policy has no audit_reader line");
    let named = parse_policy("policy.toml", &named).unwrap();
    let vendor = Caller {
        consumer: org(K429),
        supplier: Some(org(OMSORGSAPP)),
        client_id: "client".into(),
        scopes: vec!["bru:audit".into()],
    };
    assert_eq!(authorize_api(&named, &vendor, Api::Audit), Ok(()));
    assert!(!supplier_refused(&named, &vendor, Api::Audit));
    assert_eq!(
        authorize_api(&POLICY, &vendor, Api::Audit),
        Err(DenyCode::ConsumerNotAllowed)
    );
    assert!(supplier_refused(&POLICY, &vendor, Api::Audit));
    // Snoop is refused for itself, not for acting as a supplier.
    let snoop = Caller {
        consumer: org(SNOOP),
        ..vendor
    };
    assert!(!supplier_refused(&POLICY, &snoop, Api::Audit));
}

#[test]
fn empty_policy_grants_no_api() {
    let empty = parse_policy("empty.toml", "").unwrap();
    let caller = Caller {
        consumer: org(K429),
        supplier: None,
        client_id: "client".into(),
        scopes: vec!["bru:consent".into(), "bru:audit".into()],
    };
    for api in [Api::ConsentRequester, Api::Audit] {
        assert_eq!(
            authorize_api(&empty, &caller, api),
            Err(DenyCode::ConsumerNotAllowed)
        );
    }
}

/// A request for `datasets` and `purpose`, valid for `days` days; `expected`
/// is `Ok` or the field at fault with words from its message.
fn check_request(
    requester: &str,
    datasets: &[&str],
    purpose: &str,
    days: i64,
    max_uses: Option<u32>,
    expected: Result<(), (&str, &str)>,
) {
    let requester = org(requester);
    let datasets: Vec<DatasetRef> = datasets.iter().map(|d| d.parse().unwrap()).collect();
    let request = ConsentRequest {
        requester: &requester,
        datasets: &datasets,
        purpose,
        valid_to: NOW + Duration::days(days),
        max_uses,
    };
    let got = check_consent_request(&POLICY, &request, NOW);
    match (&got, expected) {
        (Ok(()), Ok(())) => {}
        (Err(e), Err((field, words))) if e.field == field && e.message.contains(words) => {}
        _ => panic!("expected {expected:?}, got {got:?} for {request:?}"),
    }
}

#[test]
fn consent_requests() {
    let both = ["nav/inntekt", "helsenorge/hjemmetjeneste"];
    let p = "omsorgsbolig-soknad";
    check_request(K429, &both, p, 30, Some(10), Ok(()));
    check_request(K429, &both[..1], p, 365, None, Ok(()));
    check_request(
        K429,
        &both,
        p,
        366,
        None,
        Err(("valid_to", "at most 365 days")),
    );
    check_request(K429, &both, p, 0, None, Err(("valid_to", "past")));
    check_request(K429, &both, p, -1, None, Err(("valid_to", "past")));
    check_request(K429, &both, p, 30, Some(0), Err(("max_uses", "at least 1")));
    check_request(K429, &[], p, 30, None, Err(("datasets", "at least one")));
    check_request(
        K429,
        &["nav/skatt"],
        p,
        30,
        None,
        Err(("datasets", "no dataset nav/skatt")),
    );
    check_request(
        K429,
        &["k429/sosialtjeneste"],
        "sosialhjelp-saksbehandling",
        30,
        None,
        Err(("datasets", "statute")),
    );
    check_request(
        K429,
        &both,
        "sosialhjelp-saksbehandling",
        30,
        None,
        Err(("purpose", "may not be used for purpose")),
    );
    check_request(
        K429,
        &both,
        "reklame",
        30,
        None,
        Err(("purpose", "no purpose \"reklame\"")),
    );
    check_request(
        NAV,
        &both,
        p,
        30,
        None,
        Err(("datasets", "983440002 may not use nav/inntekt")),
    );
    check_request(SNOOP, &both, p, 30, None, Err(("datasets", "may not use")));
}

#[test]
fn consent_request_respects_consumer_purposes_and_the_shortest_limit() {
    let text = DEMO
        .replace(
            "  [[consumer.dataset]]\n  id = \"nav/inntekt\"\n",
            "  [[consumer.dataset]]\n  id = \"nav/inntekt\"\n  purposes = [\"omsorgsbolig-soknad\"]\n",
        )
        .replace(
            "  minimise = { json_fields = [\"aar\", \"sum\"] }\n",
            "  minimise = { json_fields = [\"aar\", \"sum\"] }\n  [[dataset.purpose]]\n  id = \"sosialhjelp-saksbehandling\"\n",
        )
        .replace(
            "subject = { query = \"patient\" }\n",
            "subject = { query = \"patient\" }\nmax_consent_days = 30\n",
        );
    let policy = parse_policy("p", &text).unwrap();
    let requester = org(K429);
    let datasets: Vec<DatasetRef> = ["nav/inntekt", "helsenorge/hjemmetjeneste"]
        .iter()
        .map(|d| d.parse().unwrap())
        .collect();
    let request = |days| ConsentRequest {
        requester: &requester,
        datasets: &datasets,
        purpose: "omsorgsbolig-soknad",
        valid_to: NOW + Duration::days(days),
        max_uses: None,
    };
    assert_eq!(check_consent_request(&policy, &request(30), NOW), Ok(()));
    let e = check_consent_request(&policy, &request(31), NOW).unwrap_err();
    assert_eq!(e.field, "valid_to");
    assert_eq!(
        e.to_string(),
        "valid_to: may lie at most 30 days ahead for these datasets"
    );

    // nav/inntekt allows the purpose, K429's rule for it does not.
    let request = ConsentRequest {
        datasets: &datasets[..1],
        purpose: "sosialhjelp-saksbehandling",
        ..request(30)
    };
    assert_eq!(
        check_consent_request(&policy, &request, NOW)
            .unwrap_err()
            .to_string(),
        "purpose: 921429002 may not use nav/inntekt for purpose sosialhjelp-saksbehandling"
    );
}
