//! `GET /catalog/v1/datasets`: the datasets Bru shares, generated from the
//! policy, as a DCAT-AP-NO catalog in JSON-LD, so that Felles datakatalog
//! (data.norge.no) can harvest it. Public: it says what can be asked for and
//! on which legal basis, never who asked.
//!
//! Beside the DCAT terms, each dataset says what Bru's policy says of it
//! under the `bru:` prefix: legal basis, whether consent is required, the
//! scope, where the subject goes, and per purpose the fields the consumer sees.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use policy::{Dataset, FieldMask, LegalBasis, OrgNumber, Policy, Text};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;
use crate::config::CatalogConfig;

pub const PATH: &str = "/catalog/v1/datasets";

const ACCESS_RIGHT: &str = "http://publications.europa.eu/resource/authority/access-right/";
const DATA_THEME: &str = "http://publications.europa.eu/resource/authority/data-theme/";
/// Organisations as Felles datakatalog names them.
const ORGANIZATION: &str =
    "https://organization-catalog.fellesdatakatalog.digdir.no/organizations/";

pub fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new().routes(routes!(datasets))
}

/// The datasets Bru shares, their providers, purposes and legal bases, as a
/// DCAT-AP-NO catalog. Public.
#[utoipa::path(
    get,
    path = "/catalog/v1/datasets",
    tag = "catalog",
    operation_id = "getCatalog",
    responses(
        (status = 200, description = "The catalog (DCAT-AP-NO in JSON-LD), generated from the policy",
            body = CatalogDocument, content_type = "application/ld+json"),
    )
)]
async fn datasets(State(app): State<Arc<App>>) -> Response {
    let doc = document(&app.policy, &app.config.catalog, &app.config.public_url);
    (
        [
            (header::CONTENT_TYPE, "application/ld+json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        format!("{doc}\n"),
    )
        .into_response()
}

// The catalog's schema in the OpenAPI document: the members `document` and
// `describe` always write (a unit test checks them against a document).

/// A DCAT-AP-NO catalog in JSON-LD.
#[derive(serde::Deserialize, ToSchema)]
#[allow(dead_code)] // a schema only
pub struct CatalogDocument {
    #[serde(rename = "@context")]
    #[schema(value_type = Object)]
    context: Value,
    #[serde(rename = "@id")]
    #[schema(format = "uri")]
    id: String,
    #[serde(rename = "@type")]
    #[schema(example = "dcat:Catalog")]
    kind: String,
    #[serde(rename = "dct:title")]
    title: LangText,
    #[serde(rename = "dct:description")]
    description: LangText,
    #[serde(rename = "dct:publisher")]
    #[schema(value_type = Object)]
    publisher: Value,
    #[serde(rename = "dcat:contactPoint")]
    #[schema(value_type = Object)]
    contact_point: Value,
    #[serde(rename = "dct:language")]
    #[schema(value_type = Vec<Object>)]
    language: Value,
    #[serde(rename = "dcat:dataset")]
    datasets: Vec<CatalogDataset>,
    #[serde(rename = "dcat:service")]
    #[schema(value_type = Vec<Object>)]
    services: Value,
}

/// A text in bokmål and English.
#[derive(serde::Deserialize, ToSchema)]
#[allow(dead_code)] // a schema only
pub struct LangText {
    nb: String,
    en: String,
}

/// One dataset, with what Bru's policy says of it under `bru:`.
#[derive(serde::Deserialize, ToSchema)]
#[allow(dead_code)] // a schema only
pub struct CatalogDataset {
    #[serde(rename = "@id")]
    #[schema(format = "uri")]
    id: String,
    #[serde(rename = "@type")]
    #[schema(example = "dcat:Dataset")]
    kind: String,
    /// `provider/dataset`, as in `/data/{provider}/{dataset}`.
    #[serde(rename = "dct:identifier")]
    identifier: String,
    #[serde(rename = "dct:title")]
    title: LangText,
    #[serde(rename = "dct:description")]
    description: LangText,
    #[serde(rename = "dct:publisher")]
    #[schema(value_type = Object)]
    publisher: Value,
    #[serde(rename = "dct:accessRights")]
    #[schema(value_type = Object)]
    access_rights: Value,
    #[serde(rename = "dcat:distribution")]
    #[schema(value_type = Vec<Object>)]
    distribution: Value,
    #[serde(rename = "bru:legalBasis")]
    #[schema(value_type = consent_db::Basis)]
    legal_basis: String,
    #[serde(rename = "bru:consentRequired")]
    consent_required: bool,
    #[serde(rename = "bru:personalData")]
    personal_data: bool,
    /// The Maskinporten scope a token needs.
    #[serde(rename = "bru:scope")]
    scope: String,
    /// Where the subject goes in a call (a header, a query parameter, …).
    #[serde(rename = "bru:subject")]
    #[schema(required = true)]
    subject: Option<String>,
    #[serde(rename = "bru:purposes")]
    purposes: Vec<CatalogPurpose>,
}

/// A purpose a dataset may be used for, and what it sees of the response.
#[derive(serde::Deserialize, ToSchema)]
#[allow(dead_code)] // a schema only
pub struct CatalogPurpose {
    #[serde(rename = "dct:identifier")]
    identifier: String,
    #[serde(rename = "dct:title")]
    #[schema(required = true)]
    title: Option<LangText>,
    #[serde(rename = "dct:description")]
    #[schema(required = true)]
    description: Option<LangText>,
    #[serde(rename = "bru:fields")]
    #[schema(value_type = Object)]
    fields: Value,
}

/// The whole catalog for `policy`, with URLs under `public_url`.
pub fn document(policy: &Policy, catalog: &CatalogConfig, public_url: &str) -> Value {
    let base = public_url.trim_end_matches('/');
    let catalog_id = format!("{base}{PATH}");
    let contact = contact_point(policy, catalog, base);
    let publisher = match &catalog.publisher {
        Some(org) => agent(policy, org),
        // Nobody named: the catalog is published by this Bru, known by its address.
        None => json!({"@type": "foaf:Agent", "foaf:name": format!("Bru ({base})")}),
    };
    let mut datasets = Vec::new();
    let mut services = Vec::new();
    for dataset in policy.datasets.values() {
        let (d, s) = describe(policy, catalog, dataset, base, &catalog_id, &contact);
        datasets.push(d);
        services.push(s);
    }
    json!({
        "@context": context(base),
        "@id": catalog_id,
        "@type": "dcat:Catalog",
        "dct:title": {
            "nb": "Datasett som deles gjennom Bru",
            "en": "Datasets shared through Bru",
        },
        "dct:description": {
            "nb": "Datasettene denne Bru-porten formidler mellom offentlige virksomheter: hvem som leverer dem, \
                   hjemmelen for utlevering, formålene de kan brukes til og hvilke opplysninger hvert formål får se.",
            "en": "The datasets this Bru gateway brokers between public organisations: who provides them, the legal \
                   basis for access, the purposes they may be used for and what each purpose gets to see.",
        },
        "dct:publisher": publisher,
        "dcat:contactPoint": contact,
        "dct:language": [{"@id": "http://publications.europa.eu/resource/authority/language/NOB"},
                         {"@id": "http://publications.europa.eu/resource/authority/language/ENG"}],
        "dcat:dataset": datasets,
        "dcat:service": services,
    })
}

fn context(base: &str) -> Value {
    let lang = |iri: &str| json!({"@id": iri, "@container": "@language"});
    json!({
        "dcat": "http://www.w3.org/ns/dcat#",
        "dct": "http://purl.org/dc/terms/",
        "dcatno": "https://data.norge.no/vocabulary/dcatno#",
        "cpsv": "http://purl.org/vocab/cpsv#",
        "cpsvno": "https://data.norge.no/vocabulary/cpsvno#",
        "eli": "http://data.europa.eu/eli/ontology#",
        "foaf": "http://xmlns.com/foaf/0.1/",
        "vcard": "http://www.w3.org/2006/vcard/ns#",
        "bru": format!("{base}{PATH}/vocabulary#"),
        "dct:title": lang("http://purl.org/dc/terms/title"),
        "dct:description": lang("http://purl.org/dc/terms/description"),
        "foaf:name": lang("http://xmlns.com/foaf/0.1/name"),
    })
}

fn text(t: &Text) -> Value {
    json!({"nb": t.nb, "en": t.en})
}

/// An organisation as a `foaf:Agent`, identified the way Felles datakatalog does.
fn agent(policy: &Policy, org: &OrgNumber) -> Value {
    let name = policy.organisation_name(org).unwrap_or(org.as_str());
    json!({
        "@id": format!("{ORGANIZATION}{}", org.as_str()),
        "@type": "foaf:Agent",
        "dct:identifier": org.as_str(),
        "foaf:name": {"nb": name},
    })
}

/// Whom to ask about data shared through this Bru: its operator.
fn contact_point(policy: &Policy, catalog: &CatalogConfig, base: &str) -> Value {
    let name = match &catalog.publisher {
        Some(org) => policy
            .organisation_name(org)
            .unwrap_or(org.as_str())
            .to_owned(),
        None => format!("Bru ({base})"),
    };
    let mut contact = Map::new();
    contact.insert("@type".into(), json!("vcard:Organization"));
    contact.insert("vcard:fn".into(), json!(name));
    if let Some(email) = &catalog.contact_email {
        contact.insert(
            "vcard:hasEmail".into(),
            json!({"@id": format!("mailto:{email}")}),
        );
    }
    // DCAT-AP-NO wants an e-mail or a page; Bru's own front page says what it is.
    let url = catalog
        .contact_url
        .clone()
        .unwrap_or_else(|| format!("{base}/"));
    if catalog.contact_email.is_none() || catalog.contact_url.is_some() {
        contact.insert("vcard:hasURL".into(), json!({"@id": url}));
    }
    Value::Object(contact)
}

/// One dataset and the data service that serves it.
fn describe(
    policy: &Policy,
    catalog: &CatalogConfig,
    dataset: &Dataset,
    base: &str,
    catalog_id: &str,
    contact: &Value,
) -> (Value, Value) {
    let id = dataset.id.to_string();
    let endpoint = format!("{base}/data/{}/{}", dataset.id.provider, dataset.id.dataset);
    let provider = policy.providers.get(&dataset.id.provider);
    let publisher = match provider {
        Some(p) => agent(policy, &p.org),
        None => json!({"@type": "foaf:Agent", "foaf:name": {"nb": dataset.id.provider}}),
    };
    let themes: Vec<Value> = catalog
        .themes
        .get(&id)
        .unwrap_or(&catalog.default_themes)
        .iter()
        .map(|t| json!({"@id": format!("{DATA_THEME}{t}")}))
        .collect();
    let access = if dataset.personal_data {
        "NON_PUBLIC"
    } else {
        "RESTRICTED"
    };
    let legal = legal_basis(dataset);
    let service_id = endpoint.clone();
    let purposes: Vec<Value> = dataset
        .purposes
        .iter()
        .map(|p| {
            let purpose = policy.purposes.get(&p.purpose);
            json!({
                "dct:identifier": p.purpose,
                "dct:title": purpose.map(|x| text(&x.title)),
                "dct:description": purpose.map(|x| text(&x.description)),
                "bru:fields": fields(&p.mask),
            })
        })
        .collect();
    let dataset_doc = json!({
        "@id": format!("{catalog_id}#{id}"),
        "@type": "dcat:Dataset",
        "dct:identifier": id,
        "dct:title": text(&dataset.title),
        "dct:description": text(&dataset.description),
        "dct:publisher": publisher,
        "dcat:contactPoint": contact,
        "dcat:theme": themes,
        "dct:accessRights": {"@id": format!("{ACCESS_RIGHT}{access}")},
        "dcatno:legalBasisForAccess": [legal.clone()],
        "cpsvno:hasLegalResource": [legal],
        "dcat:distribution": [{
            "@type": "dcat:Distribution",
            "dct:title": {"nb": "API gjennom Bru", "en": "API through Bru"},
            "dcat:accessURL": {"@id": endpoint},
            "dcat:accessService": {"@id": service_id},
        }],
        "bru:legalBasis": dataset.basis.as_str(),
        "bru:consentRequired": dataset.basis == LegalBasis::Consent,
        "bru:personalData": dataset.personal_data,
        "bru:scope": dataset.scope,
        "bru:subject": dataset.subject.as_ref().map(ToString::to_string),
        "bru:purposes": purposes,
    });
    let service_doc = json!({
        "@id": service_id,
        "@type": "dcat:DataService",
        "dct:title": {
            "nb": format!("{} (gjennom Bru)", dataset.title.nb),
            "en": format!("{} (through Bru)", dataset.title.en),
        },
        "dct:publisher": publisher,
        "dcat:contactPoint": contact,
        "dcat:endpointURL": {"@id": endpoint},
        "dcat:servesDataset": [{"@id": format!("{catalog_id}#{id}")}],
        "dct:accessRights": {"@id": format!("{ACCESS_RIGHT}{access}")},
    });
    (dataset_doc, service_doc)
}

/// The legal basis for access, as a rule with its reference.
fn legal_basis(dataset: &Dataset) -> Value {
    match dataset.basis {
        LegalBasis::Consent => json!({
            "@type": "eli:LegalResource",
            "dct:description": {
                "nb": "Samtykke fra den registrerte, gitt gjennom Bru (personvernforordningen artikkel 6 nr. 1 bokstav a)",
                "en": "Consent of the data subject, given through Bru (GDPR Article 6(1)(a))",
            },
        }),
        LegalBasis::Statutory => {
            let reference = dataset.legal_ref.as_deref().unwrap_or_default();
            json!({
                "@type": "eli:LegalResource",
                "dct:identifier": reference,
                "dct:description": {"nb": reference, "en": reference},
            })
        }
    }
}

/// What the consumer sees of the provider's response for one purpose.
fn fields(mask: &FieldMask) -> Value {
    match mask {
        FieldMask::None => json!({
            "bru:kind": "all",
            "dct:description": {
                "nb": "Hele svaret fra leverandøren",
                "en": "The provider's whole response",
            },
        }),
        FieldMask::JsonFields(names) => json!({
            "bru:kind": "json_fields",
            "bru:names": names,
            "dct:description": {
                "nb": format!("Bare JSON-stiene {} fra dokumentets rot", names.join(", ")),
                "en": format!("Only the JSON paths {} from the document's root", names.join(", ")),
            },
        }),
        FieldMask::FhirResourceTypes(types) => json!({
            "bru:kind": "fhir_resource_types",
            "bru:names": types,
            "dct:description": {
                "nb": format!("Bare FHIR-ressurser av typen {}", types.join(", ")),
                "en": format!("Only FHIR resources of type {}", types.join(", ")),
            },
        }),
    }
}

#[cfg(test)]
mod tests;
