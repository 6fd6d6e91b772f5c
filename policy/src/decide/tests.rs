#![allow(clippy::unwrap_used)]

use std::sync::LazyLock;

use proptest::prelude::*;
use time::macros::datetime;
use time::Duration;

use super::*;
use crate::load::parse_policy;
use crate::model::SubjectLocation;

const DEMO: &str = include_str!("../../../demo/world/policy.toml");

static POLICY: LazyLock<Policy> =
    LazyLock::new(|| parse_policy("demo/world/policy.toml", DEMO).unwrap());

const K429: &str = "921429002";
const NAV: &str = "983440002";
const OMSORGSAPP: &str = "999000428";
const SNOOP: &str = "971000007";
const POLICE: &str = "974760002";
const KARI: &str = "12884513829";
const OLA: &str = "03839113713";
const NOW: OffsetDateTime = datetime!(2025-06-01 12:00 UTC);

fn org(s: &str) -> OrgNumber {
    OrgNumber::parse(s).unwrap()
}

fn person(s: &str) -> PersonNumber {
    PersonNumber::parse(s, true).unwrap()
}

fn dref(s: &str) -> DatasetRef {
    s.parse().unwrap()
}

/// One call, owned, so that a case can change any part of it.
#[derive(Debug, Clone)]
struct Call {
    consumer: &'static str,
    supplier: Option<&'static str>,
    scopes: Vec<&'static str>,
    dataset: &'static str,
    purpose: Option<&'static str>,
    subject: SubjectFact,
    consent: ConsentFact,
    blocks: Vec<SubjectBlock>,
    break_glass: Option<&'static str>,
    now: OffsetDateTime,
}

impl Call {
    /// K429 reads Kari's income under her granted consent: allowed.
    fn k429_inntekt() -> Self {
        Call {
            consumer: K429,
            supplier: None,
            scopes: vec!["nav:inntekt.read"],
            dataset: "nav/inntekt",
            purpose: Some("omsorgsbolig-soknad"),
            subject: SubjectFact::Valid(person(KARI)),
            consent: ConsentFact::Found(Consent {
                id: "c-1".into(),
                requester: org(K429),
                subject: Some(person(KARI)),
                datasets: vec![dref("nav/inntekt"), dref("helsenorge/hjemmetjeneste")],
                purpose: "omsorgsbolig-soknad".into(),
                status: ConsentStatus::Granted,
                valid_to: NOW + Duration::days(30),
                uses: 3,
                max_uses: Some(10),
                frequency: None,
            }),
            blocks: Vec::new(),
            break_glass: None,
            now: NOW,
        }
    }

    /// NAV reads K429's social-service case under statute: allowed.
    fn nav_sosialtjeneste() -> Self {
        Call {
            consumer: NAV,
            scopes: vec!["k429:sosialtjeneste.read"],
            dataset: "k429/sosialtjeneste",
            purpose: Some("sosialhjelp-saksbehandling"),
            consent: ConsentFact::NotGiven,
            ..Call::k429_inntekt()
        }
    }

    fn consent(&mut self) -> &mut Consent {
        match &mut self.consent {
            ConsentFact::Found(c) => c,
            _ => panic!("the case has no consent to change"),
        }
    }

    fn caller(&self) -> Caller {
        Caller {
            consumer: org(self.consumer),
            supplier: self.supplier.map(org),
            client_id: "client".into(),
            scopes: self.scopes.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn facts(&self) -> Facts<'_> {
        Facts {
            purpose: self.purpose,
            subject: self.subject.clone(),
            consent: self.consent.clone(),
            blocks: self.blocks.clone(),
            break_glass: self.break_glass,
            now: self.now,
        }
    }

    /// Decides against `policy`, checking that `explain` agrees with `decide`
    /// and that its last step is the one that decided.
    fn decide_in<'p>(&self, policy: &'p Policy) -> Decision<'p> {
        let (provider, dataset) = self.dataset.split_once('/').unwrap();
        let dataset = policy.dataset(provider, dataset).unwrap();
        let (caller, facts) = (self.caller(), self.facts());
        let decision = decide(policy, &caller, dataset, &facts);
        let (explained, steps) = explain(policy, &caller, dataset, &facts);
        assert_eq!(decision, explained);
        let allowed = matches!(decision, Decision::Allow { .. });
        assert!(!steps.is_empty());
        assert!(
            steps[..steps.len() - 1].iter().all(|s| s.passed),
            "{steps:#?}"
        );
        assert_eq!(steps.last().unwrap().passed, allowed, "{steps:#?}");
        decision
    }
}

/// Applies `edit` to `base` and expects `expected` (`None` to allow).
fn check(base: fn() -> Call, edit: impl FnOnce(&mut Call), expected: Option<DenyCode>) {
    let mut call = base();
    edit(&mut call);
    let got = match call.decide_in(&POLICY) {
        Decision::Allow { .. } => None,
        Decision::Deny(code) => Some(code),
    };
    assert_eq!(got, expected, "{call:#?}");
}

use DenyCode::*;

#[test]
fn consent_call_allowed() {
    let call = Call::k429_inntekt();
    assert_eq!(
        call.decide_in(&POLICY),
        Decision::Allow {
            basis: LegalBasis::Consent,
            legal_ref: None,
            mask: &FieldMask::JsonFields(vec!["aar".into(), "sum".into()]),
            consent_id: Some("c-1".into()),
            subject: Some(person(KARI)),
            break_glass: false,
        }
    );
    // The same consent covers helsenorge, with its own mask.
    let call = Call {
        scopes: vec!["helsenorge:hjemmetjeneste.read"],
        dataset: "helsenorge/hjemmetjeneste",
        ..Call::k429_inntekt()
    };
    let Decision::Allow { mask, .. } = call.decide_in(&POLICY) else {
        panic!("denied");
    };
    assert_eq!(mask, &FieldMask::FhirResourceTypes(vec!["CarePlan".into()]));
}

#[test]
fn statutory_call_allowed_and_ignores_consent() {
    let expected = Decision::Allow {
        basis: LegalBasis::Statutory,
        legal_ref: Some("Sosialtjenesteloven § 45 og forvaltningsloven § 13 b (illustrativ)"),
        mask: &FieldMask::None,
        consent_id: None,
        subject: Some(person(KARI)),
        break_glass: false,
    };
    for consent in [
        ConsentFact::NotGiven,
        ConsentFact::NotFound,
        Call::k429_inntekt().consent,
    ] {
        let call = Call {
            consent,
            ..Call::nav_sosialtjeneste()
        };
        assert_eq!(call.decide_in(&POLICY), expected);
    }
}

#[test]
fn each_rule() {
    let k = Call::k429_inntekt;
    let n = Call::nav_sosialtjeneste;
    check(k, |_| {}, None);
    check(n, |_| {}, None);

    // 1. Purpose required, before anything else.
    check(k, |c| c.purpose = None, Some(PurposeRequired));
    check(
        k,
        |c| (c.purpose, c.scopes, c.consumer) = (None, vec![], SNOOP),
        Some(PurposeRequired),
    );
    check(n, |c| c.purpose = None, Some(PurposeRequired));

    // 2. Scope.
    check(k, |c| c.scopes = vec![], Some(InsufficientScope));
    check(
        k,
        |c| c.scopes = vec!["nav:inntekt.write", "bru:consent"],
        Some(InsufficientScope),
    );
    check(
        k,
        |c| c.scopes = vec!["nav:inntekt.readx"],
        Some(InsufficientScope),
    );
    check(
        k,
        |c| c.scopes = vec!["bru:audit", "nav:inntekt.read"],
        None,
    );

    // 3. Consumer and supplier.
    check(k, |c| c.consumer = SNOOP, Some(ConsumerNotAllowed));
    check(k, |c| c.consumer = NAV, Some(ConsumerNotAllowed));
    check(n, |c| c.consumer = K429, Some(ConsumerNotAllowed));
    check(k, |c| c.consumer = OMSORGSAPP, Some(ConsumerNotAllowed));
    check(k, |c| c.supplier = Some(OMSORGSAPP), None);
    check(k, |c| c.supplier = Some(SNOOP), Some(ConsumerNotAllowed));
    check(k, |c| c.supplier = Some(K429), Some(ConsumerNotAllowed));
    check(
        n,
        |c| c.supplier = Some(OMSORGSAPP),
        Some(ConsumerNotAllowed),
    );

    // 4. Purpose allowed.
    check(
        k,
        |c| c.purpose = Some("sosialhjelp-saksbehandling"),
        Some(PurposeNotAllowed),
    );
    check(
        k,
        |c| c.purpose = Some("markedsføring"),
        Some(PurposeNotAllowed),
    );
    check(k, |c| c.purpose = Some(""), Some(PurposeNotAllowed));
    check(
        n,
        |c| c.purpose = Some("omsorgsbolig-soknad"),
        Some(PurposeNotAllowed),
    );

    // 5. Subject.
    check(
        k,
        |c| c.subject = SubjectFact::Missing,
        Some(SubjectMissing),
    );
    check(
        k,
        |c| c.subject = SubjectFact::NotApplicable,
        Some(SubjectMissing),
    );
    check(
        k,
        |c| c.subject = SubjectFact::Invalid,
        Some(InvalidSubject),
    );
    check(
        n,
        |c| c.subject = SubjectFact::Missing,
        Some(SubjectMissing),
    );
    check(
        n,
        |c| c.subject = SubjectFact::Invalid,
        Some(InvalidSubject),
    );
    check(
        k,
        |c| (c.subject, c.consent) = (SubjectFact::Missing, ConsentFact::NotGiven),
        Some(SubjectMissing),
    );

    // 6. Consent.
    check(
        k,
        |c| c.consent = ConsentFact::NotGiven,
        Some(ConsentRequired),
    );
    check(
        k,
        |c| c.consent = ConsentFact::NotFound,
        Some(ConsentNotFound),
    );
    check(
        k,
        |c| c.consent().requester = org(NAV),
        Some(ConsentMismatch),
    );
    check(
        k,
        |c| c.consent().datasets = vec![dref("helsenorge/hjemmetjeneste")],
        Some(ConsentMismatch),
    );
    check(k, |c| c.consent().datasets = vec![], Some(ConsentMismatch));
    check(
        k,
        |c| c.consent().purpose = "sosialhjelp-saksbehandling".into(),
        Some(ConsentMismatch),
    );
    check(
        k,
        |c| c.consent().status = ConsentStatus::Revoked,
        Some(ConsentRevoked),
    );
    check(
        k,
        |c| c.consent().status = ConsentStatus::Expired,
        Some(ConsentExpired),
    );
    check(
        k,
        |c| c.consent().status = ConsentStatus::Paused,
        Some(ConsentPaused),
    );
    let window = |used| {
        Some(FrequencyWindow {
            max: 2,
            used,
            frees_at: Some(NOW + Duration::hours(1)),
        })
    };
    check(
        k,
        |c| c.consent().frequency = window(2),
        Some(ConsentFrequencyExceeded),
    );
    check(k, |c| c.consent().frequency = window(1), None);

    // 7. Blocks (SPEC 10): a consent dataset is blockable by default, by
    // consumer or by dataset; another's block does not apply.
    check(
        k,
        |c| c.blocks = vec![SubjectBlock::Consumer(org(K429))],
        Some(BlockedBySubject),
    );
    check(
        k,
        |c| c.blocks = vec![SubjectBlock::Dataset(dref("nav/inntekt"))],
        Some(BlockedBySubject),
    );
    check(
        k,
        |c| {
            c.blocks = vec![
                SubjectBlock::Consumer(org(NAV)),
                SubjectBlock::Dataset(dref("helsenorge/hjemmetjeneste")),
            ]
        },
        None,
    );
    // A statutory dataset is not blockable unless its policy says so.
    check(
        Call::nav_sosialtjeneste,
        |c| c.blocks = vec![SubjectBlock::Consumer(org(NAV))],
        None,
    );
    check(
        k,
        |c| c.consent().status = ConsentStatus::Pending,
        Some(ConsentRequired),
    );
    check(
        k,
        |c| c.consent().status = ConsentStatus::Rejected,
        Some(ConsentNotFound),
    );
    check(k, |c| c.now = c.consent().valid_to, Some(ConsentExpired));
    check(
        k,
        |c| c.now = c.consent().valid_to + Duration::days(1),
        Some(ConsentExpired),
    );
    check(
        k,
        |c| c.now = c.consent().valid_to - Duration::seconds(1),
        None,
    );
    check(k, |c| c.consent().uses = 10, Some(ConsentExhausted));
    check(k, |c| c.consent().uses = 11, Some(ConsentExhausted));
    check(k, |c| c.consent().uses = 9, None);
    check(
        k,
        |c| c.consent().max_uses = Some(0),
        Some(ConsentExhausted),
    );
    check(
        k,
        |c| (c.consent().max_uses, c.consent().uses) = (None, u32::MAX),
        None,
    );
    check(
        k,
        |c| c.consent().subject = Some(person(OLA)),
        Some(ConsentSubjectMismatch),
    );
    check(
        k,
        |c| c.consent().subject = None,
        Some(ConsentSubjectMismatch),
    );
    check(
        k,
        |c| c.subject = SubjectFact::Valid(person(OLA)),
        Some(ConsentSubjectMismatch),
    );

    // Which consent problem wins when there are several.
    check(
        k,
        |c| (c.consent().requester, c.consent().status) = (org(NAV), ConsentStatus::Revoked),
        Some(ConsentMismatch),
    );
    check(
        k,
        |c| {
            c.consent().status = ConsentStatus::Revoked;
            c.now = c.consent().valid_to;
        },
        Some(ConsentRevoked),
    );
    check(
        k,
        |c| {
            c.consent().status = ConsentStatus::Pending;
            c.now = c.consent().valid_to;
        },
        Some(ConsentExpired),
    );
    check(
        k,
        |c| (c.consent().status, c.consent().uses) = (ConsentStatus::Rejected, 10),
        Some(ConsentNotFound),
    );
    check(
        k,
        |c| (c.consent().uses, c.consent().subject) = (10, None),
        Some(ConsentExhausted),
    );
}

/// A policy with a restricted consumer purpose and a dataset without personal data.
fn other_policy() -> Policy {
    let text = format!(
        "{DEMO}{}",
        r#"
[[purpose]]
id = "statistikk"
title = { nb = "Statistikk", en = "Statistics" }
description = { nb = "Statistikk.", en = "Statistics." }

[[dataset]]
provider = "nav"
id = "satser"
title = { nb = "Satser", en = "Rates" }
description = { nb = "Satser.", en = "Rates." }
basis = "statutory"
legal_ref = "Offentleglova"
scope = "nav:satser.read"
personal_data = false
  [[dataset.purpose]]
  id = "statistikk"
  minimise = { json_fields = ["sats"] }
  [[dataset.purpose]]
  id = "sosialhjelp-saksbehandling"

[[consumer]]
org = "971000007"
  [[consumer.dataset]]
  id = "nav/satser"
  purposes = ["statistikk"]
"#
    );
    parse_policy("other.toml", &text).unwrap()
}

#[test]
fn consumer_purposes_and_datasets_without_personal_data() {
    let policy = other_policy();
    let base = Call {
        consumer: SNOOP,
        scopes: vec!["nav:satser.read"],
        dataset: "nav/satser",
        purpose: Some("statistikk"),
        subject: SubjectFact::NotApplicable,
        consent: ConsentFact::NotGiven,
        ..Call::k429_inntekt()
    };
    let decide = |edit: fn(&mut Call)| {
        let mut call = base.clone();
        edit(&mut call);
        call.decide_in(&policy)
    };
    let Decision::Allow { mask, subject, .. } = decide(|_| {}) else {
        panic!("denied");
    };
    assert_eq!(mask, &FieldMask::JsonFields(vec!["sats".into()]));
    assert_eq!(subject, None);
    // No purpose is needed, and then nothing is masked.
    let Decision::Allow { mask, .. } = decide(|c| c.purpose = None) else {
        panic!("denied");
    };
    assert_eq!(mask, &FieldMask::None);
    // The dataset allows this purpose, the consumer rule does not.
    assert_eq!(
        decide(|c| c.purpose = Some("sosialhjelp-saksbehandling")),
        Decision::Deny(PurposeNotAllowed)
    );
    assert_eq!(
        decide(|c| c.subject = SubjectFact::Missing),
        Decision::Deny(SubjectMissing)
    );
}

#[test]
fn explain_tells_every_rule() {
    let call = Call::k429_inntekt();
    let (provider, dataset) = call.dataset.split_once('/').unwrap();
    let dataset = POLICY.dataset(provider, dataset).unwrap();
    let (_, steps) = explain(&POLICY, &call.caller(), dataset, &call.facts());
    let rules: Vec<&str> = steps.iter().map(|s| s.rule.as_str()).collect();
    assert_eq!(
        rules,
        [
            "nav/inntekt holds personal data, so the call must name a purpose (Bru-Purpose)",
            "the token carries scope nav:inntekt.read",
            "policy lets 921429002 (K429 kommune) use nav/inntekt",
            "nav/inntekt may be used for purpose omsorgsbolig-soknad",
            "the request names its subject in header Nav-Personident, a valid person number",
            "consent c-1 was requested by 921429002 (K429 kommune)",
            "consent c-1 covers nav/inntekt",
            "consent c-1 is for purpose omsorgsbolig-soknad, the call's",
            "consent c-1 is granted and in force",
            "consent c-1 has uses left (3 of 10 used)",
            "the call's subject is the person who gave consent c-1",
        ]
    );

    let call = Call {
        supplier: Some(SNOOP),
        ..Call::k429_inntekt()
    };
    let (decision, steps) = explain(&POLICY, &call.caller(), dataset, &call.facts());
    assert_eq!(decision, Decision::Deny(ConsumerNotAllowed));
    let last = steps.last().unwrap();
    assert_eq!(
        last,
        &Step {
            rule: "policy lets supplier 971000007 (Snoop AS) act for 921429002 (K429 kommune)"
                .into(),
            passed: false
        }
    );
    // Person numbers never reach the sentences (they may end up in logs).
    assert!(steps.iter().all(|s| !s.rule.contains(KARI)));
}

#[test]
fn subject_locations_read_well() {
    let cases = [
        (
            SubjectLocation::Header("Nav-Personident".into()),
            "header Nav-Personident",
        ),
        (
            SubjectLocation::Query("patient".into()),
            "query parameter patient",
        ),
        (SubjectLocation::PathSegment(1), "path segment 1"),
        (
            SubjectLocation::JsonBody("/person/id".into()),
            "JSON body field /person/id",
        ),
    ];
    for (location, text) in cases {
        assert_eq!(location.to_string(), text);
    }
}

// --- Properties ---------------------------------------------------------------

const ORGS: [&str; 6] = [K429, NAV, OMSORGSAPP, SNOOP, "916542003", POLICE];
const PERSONS: [&str; 3] = [KARI, OLA, "24916214088"];
const DATASETS: [&str; 3] = [
    "nav/inntekt",
    "helsenorge/hjemmetjeneste",
    "k429/sosialtjeneste",
];
const PURPOSES: [&str; 4] = [
    "omsorgsbolig-soknad",
    "sosialhjelp-saksbehandling",
    "etterforskning",
    "annet",
];
const SCOPES: [&str; 6] = [
    "nav:inntekt.read",
    "helsenorge:hjemmetjeneste.read",
    "k429:sosialtjeneste.read",
    "bru:consent",
    "bru:audit",
    "nav:inntekt.write",
];

fn any_org() -> impl Strategy<Value = &'static str> {
    prop::sample::select(&ORGS[..])
}

fn any_subject() -> impl Strategy<Value = SubjectFact> {
    prop_oneof![
        Just(SubjectFact::NotApplicable),
        Just(SubjectFact::Missing),
        Just(SubjectFact::Invalid),
        prop::sample::select(&PERSONS[..]).prop_map(|p| SubjectFact::Valid(person(p))),
    ]
}

/// Sometimes a random value in place of what a call had; mostly not, so that
/// the calls stay near the allowed ones and every rule gets to decide.
fn maybe<T: std::fmt::Debug>(s: impl Strategy<Value = T>) -> impl Strategy<Value = Option<T>> {
    prop::option::weighted(0.2, s)
}

/// Parts of a consent to replace; `None` keeps the part.
#[derive(Debug, Clone)]
struct ConsentChange {
    requester: Option<&'static str>,
    subject: Option<Option<&'static str>>,
    datasets: Option<Vec<&'static str>>,
    purpose: Option<&'static str>,
    status: Option<ConsentStatus>,
    days: Option<i64>,
    uses: Option<u32>,
    max_uses: Option<Option<u32>>,
}

impl ConsentChange {
    fn apply(&self, c: &mut Consent) {
        if let Some(r) = self.requester {
            c.requester = org(r);
        }
        if let Some(s) = self.subject {
            c.subject = s.map(person);
        }
        if let Some(d) = &self.datasets {
            c.datasets = d.iter().copied().map(dref).collect();
        }
        if let Some(p) = self.purpose {
            c.purpose = p.into();
        }
        if let Some(s) = self.status {
            c.status = s;
        }
        if let Some(d) = self.days {
            c.valid_to = NOW + Duration::days(d);
        }
        if let Some(u) = self.uses {
            c.uses = u;
        }
        if let Some(m) = self.max_uses {
            c.max_uses = m;
        }
    }
}

prop_compose! {
    fn any_consent_change()(
        requester in maybe(any_org()),
        subject in maybe(prop::option::of(prop::sample::select(&PERSONS[..]))),
        datasets in maybe(prop::sample::subsequence(&DATASETS[..], 0..=3)),
        purpose in maybe(prop::sample::select(&PURPOSES[..])),
        status in maybe(prop::sample::select(&[
            ConsentStatus::Pending,
            ConsentStatus::Granted,
            ConsentStatus::Paused,
            ConsentStatus::Rejected,
            ConsentStatus::Revoked,
            ConsentStatus::Expired,
        ][..])),
        days in maybe(-3i64..3),
        uses in maybe(0u32..12),
        max_uses in maybe(prop::option::of(0u32..12)),
    ) -> ConsentChange {
        ConsentChange { requester, subject, datasets, purpose, status, days, uses, max_uses }
    }
}

prop_compose! {
    /// One of the allowed demo calls with some of its parts changed.
    fn any_call()(
        base in prop::sample::select(&[0, 1, 2][..]),
        consumer in maybe(any_org()),
        supplier in maybe(prop::option::of(any_org())),
        scopes in maybe(prop::sample::subsequence(&SCOPES[..], 0..=6)),
        dataset in maybe(prop::sample::select(&DATASETS[..])),
        purpose in maybe(prop::option::of(prop::sample::select(&PURPOSES[..]))),
        subject in maybe(any_subject()),
        consent in maybe(prop::sample::select(&[ConsentFact::NotGiven, ConsentFact::NotFound][..])),
        change_consent in any_consent_change(),
    ) -> Call {
        let mut call = match base {
            0 => Call::k429_inntekt(),
            1 => Call {
                supplier: Some(OMSORGSAPP),
                scopes: vec!["helsenorge:hjemmetjeneste.read", "bru:consent"],
                dataset: "helsenorge/hjemmetjeneste",
                ..Call::k429_inntekt()
            },
            _ => Call::nav_sosialtjeneste(),
        };
        if let Some(x) = consumer { call.consumer = x }
        if let Some(x) = supplier { call.supplier = x }
        if let Some(x) = scopes { call.scopes = x }
        if let Some(x) = dataset { call.dataset = x }
        if let Some(x) = purpose { call.purpose = x }
        if let Some(x) = subject { call.subject = x }
        if let Some(x) = consent { call.consent = x }
        if let ConsentFact::Found(c) = &mut call.consent { change_consent.apply(c) }
        call
    }
}

/// What the demo policy allows, written out independently of `decide`.
fn demo_allows(call: &Call) -> bool {
    let scope = match call.dataset {
        "nav/inntekt" => "nav:inntekt.read",
        "helsenorge/hjemmetjeneste" => "helsenorge:hjemmetjeneste.read",
        _ => "k429:sosialtjeneste.read",
    };
    let statutory = call.dataset == "k429/sosialtjeneste";
    let consumer_ok = if statutory {
        matches!(call.consumer, NAV | POLICE) && call.supplier.is_none()
    } else {
        call.consumer == K429 && matches!(call.supplier, None | Some(OMSORGSAPP))
    };
    // NAV reads the case for social assistance, the police for an investigation.
    let purpose_ok = call.purpose
        == Some(match (statutory, call.consumer) {
            (true, POLICE) => "etterforskning",
            (true, _) => "sosialhjelp-saksbehandling",
            (false, _) => "omsorgsbolig-soknad",
        });
    let SubjectFact::Valid(subject) = &call.subject else {
        return false;
    };
    let consent_ok = statutory
        || matches!(&call.consent, ConsentFact::Found(c)
            if c.status == ConsentStatus::Granted
            && call.now < c.valid_to
            && c.max_uses.is_none_or(|m| c.uses < m)
            && c.requester == org(call.consumer)
            && c.datasets.contains(&dref(call.dataset))
            && Some(c.purpose.as_str()) == call.purpose
            && c.subject.as_ref() == Some(subject));
    call.scopes.contains(&scope) && consumer_ok && purpose_ok && consent_ok
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn demo_policy_allows_exactly_what_it_says(call in any_call()) {
        let decision = call.decide_in(&POLICY);
        prop_assert_eq!(matches!(decision, Decision::Allow { .. }), demo_allows(&call), "{:?}", decision);
        if let Decision::Allow { basis, consent_id, subject, .. } = decision {
            prop_assert_eq!(consent_id.is_some(), basis == LegalBasis::Consent);
            prop_assert!(matches!(&call.subject, SubjectFact::Valid(p) if Some(p) == subject.as_ref()));
        }
    }

    #[test]
    fn empty_policy_allows_nothing(call in any_call()) {
        let empty = Policy {
            organisations: Default::default(),
            purposes: Default::default(),
            providers: Default::default(),
            datasets: Default::default(),
            consumers: Vec::new(),
            snooping: Default::default(),
        };
        let (provider, dataset) = call.dataset.split_once('/').unwrap();
        // The dataset has to come from somewhere; the rules are what is empty.
        let dataset = POLICY.dataset(provider, dataset).unwrap();
        let decision = decide(&empty, &call.caller(), dataset, &call.facts());
        prop_assert!(matches!(decision, Decision::Deny(_)));
    }
}

/// SPEC 10 break-glass: on a dataset whose policy allows it (the demo's
/// `helsenorge/hjemmetjeneste`), `Bru-Break-Glass` passes the subject's
/// block and nothing else; elsewhere it passes nothing.
#[test]
fn break_glass_passes_a_block_and_nothing_else() {
    let hjemme = || Call {
        scopes: vec!["helsenorge:hjemmetjeneste.read"],
        dataset: "helsenorge/hjemmetjeneste",
        break_glass: Some("Akutt: pasienten svarer ikke"),
        ..Call::k429_inntekt()
    };
    let blocked = |c: &mut Call| c.blocks = vec![SubjectBlock::Consumer(org(K429))];
    // A block passed: allowed, and the decision says so.
    let mut call = hjemme();
    blocked(&mut call);
    let Decision::Allow { break_glass, .. } = call.decide_in(&POLICY) else {
        panic!("break-glass did not pass the block");
    };
    assert!(break_glass);
    let (_, steps) = explain(
        &POLICY,
        &call.caller(),
        POLICY.dataset("helsenorge", "hjemmetjeneste").unwrap(),
        &call.facts(),
    );
    assert!(
        steps.last().unwrap().rule.contains("Bru-Break-Glass"),
        "{steps:#?}"
    );
    // Without a block there is nothing to pass: an ordinary allowed call.
    let Decision::Allow { break_glass, .. } = hjemme().decide_in(&POLICY) else {
        panic!("denied");
    };
    assert!(!break_glass);
    // Without the header, the block holds.
    check(
        hjemme,
        |c| {
            blocked(c);
            c.break_glass = None;
        },
        Some(BlockedBySubject),
    );
    // On a dataset without break_glass (nav/inntekt), the block holds.
    check(
        Call::k429_inntekt,
        |c| {
            blocked(c);
            c.break_glass = Some("Akutt");
        },
        Some(BlockedBySubject),
    );
    // It never passes consent, scope, purpose or consumer.
    for (edit, code) in [
        (
            (|c: &mut Call| c.consent = ConsentFact::NotGiven) as fn(&mut Call),
            ConsentRequired,
        ),
        (
            |c| c.consent().status = ConsentStatus::Revoked,
            ConsentRevoked,
        ),
        (
            |c| c.consent().status = ConsentStatus::Paused,
            ConsentPaused,
        ),
        (|c| c.scopes = vec!["nav:inntekt.read"], InsufficientScope),
        (|c| c.purpose = Some("annet"), PurposeNotAllowed),
        (|c| c.consumer = NAV, ConsumerNotAllowed),
        (|c| c.subject = SubjectFact::Missing, SubjectMissing),
    ] {
        check(
            hjemme,
            |c| {
                blocked(c);
                edit(c);
            },
            Some(code),
        );
        check(hjemme, edit, Some(code));
    }
}
