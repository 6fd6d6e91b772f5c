//! The demo's registry of parental responsibility and guardianship (SPEC
//! 9.3, 9.4): a Folkeregisteret-style bulk person lookup with the demo
//! relations, served beside K429's demo provider at `/folkeregisteret`
//! (`[registry] url` in the demo's `bru.toml`).
//!
//! - Kari Nordmann and Ola Nordmann have parental responsibility for Emma
//!   Nordmann (12).
//! - Aisha Berg is Per Hansen's guardian (verge) for health and welfare.
//!
//! `POST /folkeregisteret/personer/bulkoppslag` `{"foedselsEllerDNummer": [...]}`
//! → `{"oppslag": [{"foedselsEllerDNummer", "person": {navn, foedsel,
//! familierelasjon, foreldreansvar, vergemaalEllerFremtidsfullmakt}}]}`, in
//! the element names of Skatteetaten's person document.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

use crate::world::{demo_person, DEMO_PERSONS};

const KARI: &str = "12884513829";
const OLA: &str = "03839113713";
const AISHA: &str = "24916214088";
const EMMA: &str = "07831453839";
const PER: &str = "15895013789";

/// The registry's routes, merged into K429's demo provider.
pub fn registry_router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/folkeregisteret/personer/bulkoppslag", post(bulkoppslag))
}

async fn bulkoppslag(body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            "send {\"foedselsEllerDNummer\": [...]}",
        )
            .into_response();
    };
    let numbers = request
        .get("foedselsEllerDNummer")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let oppslag: Vec<Value> = numbers
        .iter()
        .filter_map(Value::as_str)
        .filter_map(|n| Some(json!({ "foedselsEllerDNummer": n, "person": document(n)? })))
        .collect();
    tracing::info!(persons = oppslag.len(), "demo registry lookup");
    axum::Json(json!({ "oppslag": oppslag })).into_response()
}

/// One demo person's document in Folkeregisteret's shape.
pub fn document(pid: &str) -> Option<Value> {
    let p = demo_person(pid)?;
    let relation = |other: &str, rolle: &str, min_rolle: &str| {
        json!({
            "relatertPerson": other,
            "relatertPersonsRolle": rolle,
            "minRolleForPerson": min_rolle,
            "erGjeldende": true,
        })
    };
    let mut doc = json!({
        "identifikasjonsnummer": [{ "foedselsEllerDNummer": pid, "identifikatortype": "foedselsnummer", "status": "iBruk", "erGjeldende": true }],
        "navn": [{ "fornavn": p.given_name, "etternavn": p.family_name, "erGjeldende": true }],
        "foedsel": [{ "foedselsdato": p.birth_date, "erGjeldende": true }],
        "familierelasjon": [],
        "foreldreansvar": [],
        "vergemaalEllerFremtidsfullmakt": [],
    });
    match pid {
        KARI => doc["familierelasjon"] = json!([relation(EMMA, "barn", "mor")]),
        OLA => doc["familierelasjon"] = json!([relation(EMMA, "barn", "far")]),
        EMMA => {
            doc["familierelasjon"] =
                json!([relation(KARI, "mor", "barn"), relation(OLA, "far", "barn")]);
            doc["foreldreansvar"] = json!([
                { "ansvar": "felles", "ansvarlig": KARI, "ansvarssubjekt": EMMA, "erGjeldende": true },
                { "ansvar": "felles", "ansvarlig": OLA, "ansvarssubjekt": EMMA, "erGjeldende": true },
            ]);
        }
        PER => {
            doc["vergemaalEllerFremtidsfullmakt"] = json!([{
                "type": "voksen",
                "embete": "Statsforvalteren (demo)",
                "vergeEllerFullmektig": {
                    "motpartsPersonidentifikator": AISHA,
                    "omfang": "personligeOgOekonomiskeInteresser",
                    "tjenesteomraade": [
                        { "tjenestevirksomhet": "helse", "tjenesteoppgave": "helse" },
                        { "tjenestevirksomhet": "nav", "tjenesteoppgave": "velferd" },
                    ],
                },
                "erGjeldende": true,
            }]);
        }
        _ => {}
    }
    debug_assert!(DEMO_PERSONS.iter().any(|p| p.pid == pid));
    Some(doc)
}
