//! The demo world's synthetic people, organisations and records (SPEC section 8).
//!
//! Everything here is invented. The person numbers are Tenor-style synthetic
//! numbers (month + 80), valid only where synthetic ids are allowed; the
//! organisation numbers other than the five of the SPEC are fictive but carry
//! valid mod-11 control digits, so that any code validating them accepts them.
//!
//! The records are deliberately richer than what a consumer may see after
//! minimisation, so that the demo shows minimisation doing something: NAV's
//! income records carry employers, benefits and tax, of which the
//! `omsorgsbolig-soknad` purpose keeps only `aar` and `sum`; helsenorge's
//! bundle carries the patient, practitioners and observations besides the
//! care plans the purpose keeps.

use serde_json::{json, Value};

/// One of the five demo persons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoPerson {
    /// The synthetic fødselsnummer (month + 80).
    pub pid: &'static str,
    pub given_name: &'static str,
    pub family_name: &'static str,
    /// ISO 8601 date, as encoded in the person number.
    pub birth_date: &'static str,
    /// FHIR administrative gender: `female` or `male`.
    pub gender: &'static str,
    pub street: &'static str,
    pub postal_code: &'static str,
    pub city: &'static str,
}

impl DemoPerson {
    /// "Given Family", as shown in the portal's demo login.
    pub fn name(&self) -> String {
        format!("{} {}", self.given_name, self.family_name)
    }
}

/// The demo persons of SPEC section 8, in the order the SPEC lists them.
pub const DEMO_PERSONS: [DemoPerson; 5] = [
    DemoPerson {
        pid: "12884513829",
        given_name: "Kari",
        family_name: "Nordmann",
        birth_date: "1945-08-12",
        gender: "female",
        street: "Fjordveien 12",
        postal_code: "4290",
        city: "Fjordby",
    },
    DemoPerson {
        pid: "03839113713",
        given_name: "Ola",
        family_name: "Nordmann",
        birth_date: "1991-03-03",
        gender: "male",
        street: "Storgata 3B",
        postal_code: "4291",
        city: "Fjordby",
    },
    DemoPerson {
        pid: "24916214088",
        given_name: "Aisha",
        family_name: "Berg",
        birth_date: "1962-11-24",
        gender: "female",
        street: "Lyngbakken 24",
        postal_code: "4293",
        city: "Fjordby",
    },
    DemoPerson {
        pid: "07831453839",
        given_name: "Emma",
        family_name: "Nordmann",
        birth_date: "2014-03-07",
        gender: "female",
        street: "Storgata 3B",
        postal_code: "4291",
        city: "Fjordby",
    },
    DemoPerson {
        pid: "15895013789",
        given_name: "Per",
        family_name: "Hansen",
        birth_date: "1950-09-15",
        gender: "male",
        street: "Kaigata 15",
        postal_code: "4290",
        city: "Fjordby",
    },
];

/// The demo person with this number, if any.
pub fn demo_person(pid: &str) -> Option<&'static DemoPerson> {
    DEMO_PERSONS.iter().find(|p| p.pid == pid)
}

/// An organisation of the demo world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoOrganisation {
    pub org: &'static str,
    pub name: &'static str,
}

pub const K429: DemoOrganisation = DemoOrganisation {
    org: "921429002",
    name: "K429 kommune",
};
pub const NAV: DemoOrganisation = DemoOrganisation {
    org: "983440002",
    name: "NAV (demo)",
};
pub const HELSENORGE: DemoOrganisation = DemoOrganisation {
    org: "916542003",
    name: "Helsenorge (demo)",
};
pub const OMSORGSAPP: DemoOrganisation = DemoOrganisation {
    org: "999000428",
    name: "Omsorgsapp AS",
};
pub const SNOOP: DemoOrganisation = DemoOrganisation {
    org: "971000007",
    name: "Snoop AS",
};

/// A police district (SPEC 10): reads K429's social-service case for an
/// investigation; the citizen sees it 30 days later (delayed disclosure).
pub const POLICE: DemoOrganisation = DemoOrganisation {
    org: "974760002",
    name: "Politiet (demo)",
};

/// The organisations of SPEC sections 8 and 10.
pub const DEMO_ORGANISATIONS: [DemoOrganisation; 6] =
    [K429, NAV, HELSENORGE, OMSORGSAPP, SNOOP, POLICE];

// ---- NAV: income ------------------------------------------------------------

/// A payer in a-ordningen (employer or pension fund): orgnr, name, amount.
type Payer = (&'static str, &'static str, u32);
/// A NAV benefit: type, amount.
type Benefit = (&'static str, u32);

struct IncomeYear {
    year: u16,
    payers: &'static [Payer],
    benefits: &'static [Benefit],
    tax_withheld: u32,
}

// Fictive payers with valid control digits.
const FJORDHEIM: (&str, &str) = ("910000012", "K429 kommune, Fjordheim sykehjem");
const BAKERI: (&str, &str) = ("910000020", "Fjordby Bakeri AS");
const NORDLYS: (&str, &str) = ("910000039", "Nordlys Transport AS");
const PENSJONSKASSE: (&str, &str) = ("910000047", "K429 kommunale pensjonskasse");
const OMSORGSAPP_EMPLOYER: (&str, &str) = (OMSORGSAPP.org, OMSORGSAPP.name);

macro_rules! payer {
    ($who:expr, $amount:expr) => {
        ($who.0, $who.1, $amount)
    };
}

fn income_years(pid: &str) -> Option<&'static [IncomeYear]> {
    // 2025 covers January to October: the year is not over yet.
    const KARI: &[IncomeYear] = &[
        IncomeYear {
            year: 2022,
            payers: &[payer!(PENSJONSKASSE, 46_800)],
            benefits: &[("alderspensjon", 251_400)],
            tax_withheld: 47_900,
        },
        IncomeYear {
            year: 2023,
            payers: &[payer!(PENSJONSKASSE, 48_200)],
            benefits: &[("alderspensjon", 266_900)],
            tax_withheld: 51_300,
        },
        IncomeYear {
            year: 2024,
            payers: &[payer!(PENSJONSKASSE, 49_900)],
            benefits: &[("alderspensjon", 281_200)],
            tax_withheld: 54_600,
        },
        IncomeYear {
            year: 2025,
            payers: &[payer!(PENSJONSKASSE, 42_100)],
            benefits: &[("alderspensjon", 241_300)],
            tax_withheld: 46_700,
        },
    ];
    const OLA: &[IncomeYear] = &[
        IncomeYear {
            year: 2022,
            payers: &[payer!(OMSORGSAPP_EMPLOYER, 598_000), payer!(BAKERI, 38_500)],
            benefits: &[],
            tax_withheld: 181_200,
        },
        IncomeYear {
            year: 2023,
            payers: &[payer!(OMSORGSAPP_EMPLOYER, 541_000)],
            benefits: &[("foreldrepenger", 96_400)],
            tax_withheld: 178_900,
        },
        IncomeYear {
            year: 2024,
            payers: &[payer!(OMSORGSAPP_EMPLOYER, 672_500)],
            benefits: &[],
            tax_withheld: 197_300,
        },
        IncomeYear {
            year: 2025,
            payers: &[payer!(OMSORGSAPP_EMPLOYER, 574_200)],
            benefits: &[],
            tax_withheld: 166_800,
        },
    ];
    const AISHA: &[IncomeYear] = &[
        IncomeYear {
            year: 2022,
            payers: &[payer!(FJORDHEIM, 489_300)],
            benefits: &[],
            tax_withheld: 128_700,
        },
        IncomeYear {
            year: 2023,
            payers: &[payer!(FJORDHEIM, 503_800)],
            benefits: &[],
            tax_withheld: 133_100,
        },
        IncomeYear {
            year: 2024,
            payers: &[payer!(FJORDHEIM, 312_400)],
            benefits: &[("sykepenger", 187_600)],
            tax_withheld: 131_900,
        },
        IncomeYear {
            year: 2025,
            payers: &[payer!(FJORDHEIM, 421_900)],
            benefits: &[],
            tax_withheld: 112_400,
        },
    ];
    // A child: no wages, but a survivor's pension (barnepensjon) paid to her.
    const EMMA: &[IncomeYear] = &[
        IncomeYear {
            year: 2022,
            payers: &[],
            benefits: &[("barnepensjon", 111_500)],
            tax_withheld: 0,
        },
        IncomeYear {
            year: 2023,
            payers: &[],
            benefits: &[("barnepensjon", 118_600)],
            tax_withheld: 0,
        },
        IncomeYear {
            year: 2024,
            payers: &[],
            benefits: &[("barnepensjon", 124_000)],
            tax_withheld: 0,
        },
        IncomeYear {
            year: 2025,
            payers: &[],
            benefits: &[("barnepensjon", 107_900)],
            tax_withheld: 0,
        },
    ];
    const PER: &[IncomeYear] = &[
        IncomeYear {
            year: 2022,
            payers: &[payer!(NORDLYS, 62_000)],
            benefits: &[("alderspensjon", 302_100)],
            tax_withheld: 72_800,
        },
        IncomeYear {
            year: 2023,
            payers: &[payer!(NORDLYS, 63_500)],
            benefits: &[("alderspensjon", 320_400)],
            tax_withheld: 77_000,
        },
        IncomeYear {
            year: 2024,
            payers: &[payer!(NORDLYS, 65_100)],
            benefits: &[("alderspensjon", 337_800)],
            tax_withheld: 81_100,
        },
        IncomeYear {
            year: 2025,
            payers: &[payer!(NORDLYS, 55_400)],
            benefits: &[("alderspensjon", 289_600)],
            tax_withheld: 69_300,
        },
    ];
    match pid {
        "12884513829" => Some(KARI),
        "03839113713" => Some(OLA),
        "24916214088" => Some(AISHA),
        "07831453839" => Some(EMMA),
        "15895013789" => Some(PER),
        _ => None,
    }
}

/// NAV's income answer for a person: one JSON object per year, newest last.
///
/// The document is a top-level array on purpose. The policy minimises it with
/// `json_fields = ["aar", "sum"]`, paths from the root that cross root arrays
/// (docs/policy.md): had the years sat under an `inntekt` member of a
/// top-level object, minimisation would leave `{}`. As an array,
/// minimisation leaves exactly `[{"aar": …, "sum": …}, …]`.
pub fn nav_inntekt(pid: &str) -> Option<Value> {
    let person = demo_person(pid)?;
    let years = income_years(pid)?;
    let years: Vec<Value> = years
        .iter()
        .map(|y| {
            let wages: u32 = y.payers.iter().map(|p| p.2).sum();
            let benefits: u32 = y.benefits.iter().map(|b| b.1).sum();
            // The current year is reported up to the last closed month.
            let last_month = if y.year == 2025 { 10 } else { 12 };
            json!({
                "aar": y.year,
                "sum": wages + benefits,
                "periode": {
                    "fra": format!("{}-01", y.year),
                    "til": format!("{}-{last_month:02}", y.year),
                },
                "inntektsmottaker": { "personident": person.pid, "navn": person.name() },
                "arbeidsgivere": y.payers.iter().map(|(orgnr, navn, beloep)| json!({
                    "orgnr": orgnr, "navn": navn, "beloep": beloep,
                })).collect::<Vec<_>>(),
                "ytelser": y.benefits.iter().map(|(kind, beloep)| json!({
                    "type": kind, "utbetaler": NAV.name, "beloep": beloep,
                })).collect::<Vec<_>>(),
                "skattetrekk": y.tax_withheld,
            })
        })
        .collect();
    Some(Value::Array(years))
}

// ---- helsenorge: home care (FHIR R4) ------------------------------------------

struct Practitioner {
    id: &'static str,
    hpr: &'static str,
    given: &'static str,
    family: &'static str,
    qualification: &'static str,
}

struct CarePlan {
    id: &'static str,
    /// `hjemmesykepleie` or `praktisk bistand`, as the municipality names the service.
    category: &'static str,
    title: &'static str,
    description: &'static str,
    status: &'static str,
    start: &'static str,
    end: Option<&'static str>,
    /// What is done and when.
    activities: &'static [(&'static str, &'static str)],
}

struct Observation {
    id: &'static str,
    code: &'static str,
    date: &'static str,
    value: f64,
    unit: &'static str,
}

struct HomeCare {
    patient_id: &'static str,
    practitioners: &'static [Practitioner],
    care_plans: &'static [CarePlan],
    observations: &'static [Observation],
}

const SYKEPLEIER_LIV: Practitioner = Practitioner {
    id: "hpr-9144889",
    hpr: "9144889",
    given: "Liv",
    family: "Solberg",
    qualification: "Sykepleier",
};
const HELSEFAG_JONAS: Practitioner = Practitioner {
    id: "hpr-9275312",
    hpr: "9275312",
    given: "Jonas",
    family: "Eide",
    qualification: "Helsefagarbeider",
};
const ERGO_SIRI: Practitioner = Practitioner {
    id: "hpr-9381207",
    hpr: "9381207",
    given: "Siri",
    family: "Haugen",
    qualification: "Ergoterapeut",
};

fn home_care(pid: &str) -> Option<&'static HomeCare> {
    const KARI: HomeCare = HomeCare {
        patient_id: "pas-kari-nordmann",
        practitioners: &[SYKEPLEIER_LIV, HELSEFAG_JONAS],
        care_plans: &[
            CarePlan {
                id: "cp-kari-hjemmesykepleie",
                category: "Hjemmesykepleie",
                title: "Hjemmesykepleie: medisiner og tilsyn",
                description: "Hjelp til medisiner og tilsyn morgen og kveld etter fall i hjemmet.",
                status: "active",
                start: "2024-02-01",
                end: None,
                activities: &[
                    ("Medisinhåndtering", "Daglig kl. 08 og kl. 20"),
                    ("Tilsyn og fallforebygging", "Daglig kl. 08 og kl. 20"),
                ],
            },
            CarePlan {
                id: "cp-kari-praktisk-bistand",
                category: "Praktisk bistand",
                title: "Praktisk bistand: rengjøring og innkjøp",
                description: "Rengjøring annenhver uke og ukentlig handling av dagligvarer.",
                status: "active",
                start: "2024-03-15",
                end: None,
                activities: &[
                    ("Rengjøring", "Annenhver tirsdag"),
                    ("Innkjøp av dagligvarer", "Hver fredag"),
                ],
            },
        ],
        observations: &[
            Observation {
                id: "obs-kari-iplos",
                code: "IPLOS funksjonsvurdering, snittskår",
                date: "2025-09-15",
                value: 2.8,
                unit: "skår",
            },
            Observation {
                id: "obs-kari-vekt",
                code: "Kroppsvekt",
                date: "2025-10-02",
                value: 58.4,
                unit: "kg",
            },
        ],
    };
    const OLA: HomeCare = HomeCare {
        patient_id: "pas-ola-nordmann",
        practitioners: &[SYKEPLEIER_LIV],
        care_plans: &[CarePlan {
            id: "cp-ola-hjemmesykepleie",
            category: "Hjemmesykepleie",
            title: "Hjemmesykepleie: sårstell etter kneoperasjon",
            description: "Sårstell og oppfølging i seks uker etter operasjon i kneet.",
            status: "completed",
            start: "2025-04-22",
            end: Some("2025-06-03"),
            activities: &[("Sårstell", "Mandag, onsdag og fredag")],
        }],
        observations: &[Observation {
            id: "obs-ola-smerte",
            code: "Smerteskår (NRS)",
            date: "2025-06-02",
            value: 1.0,
            unit: "skår",
        }],
    };
    const AISHA: HomeCare = HomeCare {
        patient_id: "pas-aisha-berg",
        practitioners: &[HELSEFAG_JONAS, ERGO_SIRI],
        care_plans: &[CarePlan {
            id: "cp-aisha-praktisk-bistand",
            category: "Praktisk bistand",
            title: "Praktisk bistand etter skulderskade",
            description: "Hjelp til tyngre husarbeid mens skulderen er i opptrening.",
            status: "active",
            start: "2025-08-11",
            end: Some("2026-02-28"),
            activities: &[
                ("Tyngre husarbeid", "Hver onsdag"),
                ("Hjelp med klesvask", "Hver onsdag"),
            ],
        }],
        observations: &[Observation {
            id: "obs-aisha-iplos",
            code: "IPLOS funksjonsvurdering, snittskår",
            date: "2025-08-05",
            value: 1.6,
            unit: "skår",
        }],
    };
    const EMMA: HomeCare = HomeCare {
        patient_id: "pas-emma-nordmann",
        practitioners: &[SYKEPLEIER_LIV],
        care_plans: &[CarePlan {
            id: "cp-emma-hjemmesykepleie",
            category: "Hjemmesykepleie",
            title: "Hjemmesykepleie: oppfølging av diabetes type 1",
            description: "Opplæring og oppfølging av insulinbehandling sammen med foresatte.",
            status: "active",
            start: "2025-01-06",
            end: None,
            activities: &[("Oppfølging av blodsukker og insulin", "Hver mandag")],
        }],
        observations: &[Observation {
            id: "obs-emma-hba1c",
            code: "HbA1c",
            date: "2025-10-13",
            value: 54.0,
            unit: "mmol/mol",
        }],
    };
    const PER: HomeCare = HomeCare {
        patient_id: "pas-per-hansen",
        practitioners: &[SYKEPLEIER_LIV, HELSEFAG_JONAS],
        care_plans: &[
            CarePlan {
                id: "cp-per-hjemmesykepleie",
                category: "Hjemmesykepleie",
                title: "Hjemmesykepleie: sårstell av fotsår",
                description: "Sårstell av diabetisk fotsår og kontroll av blodsukker.",
                status: "active",
                start: "2025-05-19",
                end: None,
                activities: &[
                    ("Sårstell", "Mandag, onsdag og fredag"),
                    ("Blodsukkerkontroll", "Mandag, onsdag og fredag"),
                ],
            },
            CarePlan {
                id: "cp-per-praktisk-bistand",
                category: "Praktisk bistand",
                title: "Praktisk bistand: innkjøp",
                description: "Ukentlig handling av dagligvarer.",
                status: "active",
                start: "2025-05-19",
                end: None,
                activities: &[("Innkjøp av dagligvarer", "Hver torsdag")],
            },
        ],
        observations: &[Observation {
            id: "obs-per-glukose",
            code: "Glukose i blod",
            date: "2025-10-20",
            value: 8.9,
            unit: "mmol/L",
        }],
    };
    match pid {
        "12884513829" => Some(&KARI),
        "03839113713" => Some(&OLA),
        "24916214088" => Some(&AISHA),
        "07831453839" => Some(&EMMA),
        "15895013789" => Some(&PER),
        _ => None,
    }
}

/// The OID of the fødselsnummer identifier system in Norwegian FHIR profiles.
const FNR_SYSTEM: &str = "urn:oid:2.16.578.1.12.4.1.4.1";
/// The OID of the health personnel register (HPR) number.
const HPR_SYSTEM: &str = "urn:oid:2.16.578.1.12.4.1.4.4";

/// helsenorge's answer to a home-care search: a FHIR R4 `searchset` Bundle with
/// the patient, their care plans, observations and the practitioners involved.
pub fn helsenorge_hjemmetjeneste(pid: &str) -> Option<Value> {
    let person = demo_person(pid)?;
    let care = home_care(pid)?;
    let patient_ref = format!("Patient/{}", care.patient_id);
    let author = care
        .practitioners
        .first()
        .map(|p| format!("Practitioner/{}", p.id));

    let mut entries = Vec::new();
    entries.push(entry(
        "Patient",
        care.patient_id,
        "include",
        json!({
            "resourceType": "Patient",
            "id": care.patient_id,
            "identifier": [{ "system": FNR_SYSTEM, "value": person.pid }],
            "name": [{ "use": "official", "family": person.family_name, "given": [person.given_name] }],
            "gender": person.gender,
            "birthDate": person.birth_date,
            "address": [{
                "use": "home",
                "line": [person.street],
                "postalCode": person.postal_code,
                "city": person.city,
                "country": "NO",
            }],
        }),
    ));
    for plan in care.care_plans {
        let mut period = json!({ "start": plan.start });
        if let Some(end) = plan.end {
            period["end"] = json!(end);
        }
        let activity_status = if plan.status == "completed" {
            "completed"
        } else {
            "in-progress"
        };
        entries.push(entry(
            "CarePlan",
            plan.id,
            "match",
            json!({
                "resourceType": "CarePlan",
                "id": plan.id,
                "status": plan.status,
                "intent": "plan",
                "category": [{ "text": plan.category }],
                "title": plan.title,
                "description": plan.description,
                "subject": { "reference": patient_ref, "display": person.name() },
                "period": period,
                "author": author.as_ref().map(|a| json!({ "reference": a })),
                "activity": plan.activities.iter().map(|(what, when)| json!({
                    "detail": {
                        "kind": "Task",
                        "code": { "text": what },
                        "status": activity_status,
                        "scheduledString": when,
                    }
                })).collect::<Vec<_>>(),
            }),
        ));
    }
    for obs in care.observations {
        entries.push(entry(
            "Observation",
            obs.id,
            "include",
            json!({
                "resourceType": "Observation",
                "id": obs.id,
                "status": "final",
                "code": { "text": obs.code },
                "subject": { "reference": patient_ref },
                "effectiveDateTime": obs.date,
                "performer": author.as_ref().map(|a| vec![json!({ "reference": a })]),
                "valueQuantity": { "value": obs.value, "unit": obs.unit },
            }),
        ));
    }
    for p in care.practitioners {
        entries.push(entry(
            "Practitioner",
            p.id,
            "include",
            json!({
                "resourceType": "Practitioner",
                "id": p.id,
                "identifier": [{ "system": HPR_SYSTEM, "value": p.hpr }],
                "name": [{ "family": p.family, "given": [p.given] }],
                "qualification": [{ "code": { "text": p.qualification } }],
            }),
        ));
    }

    Some(json!({
        "resourceType": "Bundle",
        "id": format!("hjemmetjeneste-{}", care.patient_id),
        "meta": { "lastUpdated": "2025-10-31T12:00:00+01:00" },
        "type": "searchset",
        // FHIR counts only the matches (the care plans), not the included resources.
        "total": care.care_plans.len(),
        "entry": entries,
    }))
}

fn entry(resource_type: &str, id: &str, mode: &str, resource: Value) -> Value {
    json!({
        "fullUrl": format!("https://helsenorge.demo.invalid/fhir/{resource_type}/{id}"),
        "resource": resource,
        "search": { "mode": mode },
    })
}

// ---- K429: social services case --------------------------------------------

struct Decision {
    date: &'static str,
    outcome: &'static str,
    benefit: &'static str,
    amount: Option<u32>,
    from: &'static str,
    to: &'static str,
    legal_basis: &'static str,
}

struct Case {
    number: &'static str,
    service: &'static str,
    status: &'static str,
    opened: &'static str,
    caseworker: &'static str,
    decisions: &'static [Decision],
    household: u8,
}

fn case(pid: &str) -> Option<&'static Case> {
    const KARI: Case = Case {
        number: "2025/0412",
        service: "Økonomisk stønad",
        status: "under_behandling",
        opened: "2025-09-02",
        caseworker: "Lise Dahl",
        decisions: &[Decision {
            date: "2025-09-20",
            outcome: "innvilget",
            benefit: "Stønad til husleie (midlertidig)",
            amount: Some(4_500),
            from: "2025-10-01",
            to: "2025-12-31",
            legal_basis: "Sosialtjenesteloven § 18",
        }],
        household: 1,
    };
    const OLA: Case = Case {
        number: "2023/1187",
        service: "Økonomisk rådgivning",
        status: "avsluttet",
        opened: "2023-05-10",
        caseworker: "Thomas Vik",
        decisions: &[],
        household: 2,
    };
    const AISHA: Case = Case {
        number: "2024/0733",
        service: "Økonomisk stønad",
        status: "vedtak_fattet",
        opened: "2024-06-18",
        caseworker: "Lise Dahl",
        decisions: &[
            Decision {
                date: "2024-07-01",
                outcome: "innvilget",
                benefit: "Stønad til livsopphold",
                amount: Some(7_950),
                from: "2024-07-01",
                to: "2024-09-30",
                legal_basis: "Sosialtjenesteloven § 18",
            },
            Decision {
                date: "2024-10-03",
                outcome: "avslag",
                benefit: "Stønad til livsopphold",
                amount: None,
                from: "2024-10-01",
                to: "2024-12-31",
                legal_basis: "Sosialtjenesteloven § 18",
            },
        ],
        household: 1,
    };
    // A child's case is about her needs in the household.
    const EMMA: Case = Case {
        number: "2025/0098",
        service: "Økonomisk stønad til barns fritidsaktiviteter",
        status: "vedtak_fattet",
        opened: "2025-01-14",
        caseworker: "Thomas Vik",
        decisions: &[Decision {
            date: "2025-02-03",
            outcome: "innvilget",
            benefit: "Kontingent og utstyr, fotball",
            amount: Some(3_200),
            from: "2025-02-01",
            to: "2025-12-31",
            legal_basis: "Sosialtjenesteloven § 18",
        }],
        household: 2,
    };
    const PER: Case = Case {
        number: "2025/0256",
        service: "Økonomisk stønad",
        status: "klage_til_behandling",
        opened: "2025-04-07",
        caseworker: "Lise Dahl",
        decisions: &[Decision {
            date: "2025-04-28",
            outcome: "avslag",
            benefit: "Stønad til tannbehandling",
            amount: None,
            from: "2025-05-01",
            to: "2025-05-31",
            legal_basis: "Sosialtjenesteloven § 18",
        }],
        household: 1,
    };
    match pid {
        "12884513829" => Some(&KARI),
        "03839113713" => Some(&OLA),
        "24916214088" => Some(&AISHA),
        "07831453839" => Some(&EMMA),
        "15895013789" => Some(&PER),
        _ => None,
    }
}

/// K429's social-service case for a person.
pub fn k429_sosialtjeneste(pid: &str) -> Option<Value> {
    let person = demo_person(pid)?;
    let case = case(pid)?;
    Some(json!({
        "saksnummer": case.number,
        "personident": person.pid,
        "navn": person.name(),
        "tjeneste": case.service,
        "status": case.status,
        "opprettet": case.opened,
        "antall_i_husstand": case.household,
        "saksbehandler": { "navn": case.caseworker, "enhet": "K429 kommune, sosialtjenesten" },
        "vedtak": case.decisions.iter().map(|d| json!({
            "vedtaksdato": d.date,
            "resultat": d.outcome,
            "ytelse": d.benefit,
            "beloep_per_maaned": d.amount,
            "periode": { "fra": d.from, "til": d.to },
            "hjemmel": d.legal_basis,
        })).collect::<Vec<_>>(),
    }))
}
