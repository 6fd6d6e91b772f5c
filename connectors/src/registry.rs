//! The registry of parental responsibility (SPEC 9.3): a
//! Folkeregisteret-style HTTP source, asked with the operator's credentials
//! (Maskinporten-style client credentials, as for a provider).
//!
//! Person numbers travel in the request body, never in a URL (proxies and
//! access logs keep URLs): `POST {url}/personer/bulkoppslag` with
//! `{"foedselsEllerDNummer": [...]}`, after Folkeregisteret's bulk lookup
//! (Skatteetaten, folkeregisteret-api-dokumentasjon: "bulkoppslag"). The
//! answer holds one person document per number, with the parts Bru reads in
//! Folkeregisteret's shape: `navn`, `foedsel`, `familierelasjon`
//! (`relatertPersonsRolle` "barn" lists a parent's children) and
//! `foreldreansvar` (on the child's document: `ansvarlig` holds the
//! responsibility, `erGjeldende` whether it is current).
//!
//! This module reads the registry; who may act for whom is decided in
//! `policy::represent`.

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use serde::Deserialize;

use crate::client::{Connector, Upstream, UpstreamError};
use crate::Credentials;

/// The parts of the person documents Bru asks for.
const PARTS: &str = "part=navn&part=foedsel&part=familierelasjon&part=foreldreansvar&part=vergemaalEllerFremtidsfullmakt";
/// A registry answer larger than this is refused (a family's documents are a few KiB).
const MAX_ANSWER_BYTES: u64 = 1024 * 1024;
/// At most this many persons in one lookup.
pub const MAX_LOOKUP: usize = 100;

/// What Bru knows of one person from the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryPerson {
    /// The person's number (as asked).
    pub number: String,
    /// "Fornavn Etternavn" of the current name.
    pub name: String,
    /// `foedselsdato`, `YYYY-MM-DD`, as the registry has it.
    pub born: Option<String>,
    /// The numbers of the person's children (current `familierelasjon` "barn").
    pub children: Vec<String>,
    /// Who has current parental responsibility for this person (`ansvarlig`).
    pub responsible: Vec<String>,
    /// This person's current guardians (verge; `vergemaalEllerFremtidsfullmakt`
    /// other than a confirmed lasting power of attorney).
    pub guardians: Vec<String>,
}

/// Why the registry could not answer.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("the registry is unreachable: {0}")]
    Upstream(#[from] UpstreamError),
    #[error("the registry answered {0}")]
    Status(StatusCode),
    #[error("the registry's answer is not a person lookup: {0}")]
    Malformed(String),
    #[error("too many persons in one lookup")]
    TooMany,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    oppslag: Vec<Lookup>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Lookup {
    foedsels_eller_d_nummer: String,
    person: Option<Document>,
}

#[derive(Deserialize, Default)]
struct Document {
    #[serde(default)]
    navn: Vec<Navn>,
    #[serde(default)]
    foedsel: Vec<Foedsel>,
    #[serde(default)]
    familierelasjon: Vec<Familierelasjon>,
    #[serde(default)]
    foreldreansvar: Vec<Foreldreansvar>,
    #[serde(default, rename = "vergemaalEllerFremtidsfullmakt")]
    vergemaal: Vec<Vergemaal>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Vergemaal {
    #[serde(rename = "type")]
    kind: Option<String>,
    verge_eller_fullmektig: Option<VergeEllerFullmektig>,
    #[serde(default = "current")]
    er_gjeldende: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VergeEllerFullmektig {
    motparts_personidentifikator: Option<String>,
}

fn current() -> bool {
    true
}

#[derive(Deserialize)]
struct Navn {
    fornavn: Option<String>,
    mellomnavn: Option<String>,
    etternavn: Option<String>,
    #[serde(default = "current", rename = "erGjeldende")]
    er_gjeldende: bool,
}

#[derive(Deserialize)]
struct Foedsel {
    foedselsdato: Option<String>,
    #[serde(default = "current", rename = "erGjeldende")]
    er_gjeldende: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Familierelasjon {
    relatert_person: Option<String>,
    relatert_persons_rolle: Option<String>,
    #[serde(default = "current")]
    er_gjeldende: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Foreldreansvar {
    ansvarlig: Option<String>,
    #[serde(default = "current")]
    er_gjeldende: bool,
}

impl Document {
    fn into_person(self, number: String) -> RegistryPerson {
        let name = self
            .navn
            .iter()
            .find(|n| n.er_gjeldende)
            .map(|n| {
                [&n.fornavn, &n.mellomnavn, &n.etternavn]
                    .into_iter()
                    .flatten()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        RegistryPerson {
            number,
            name,
            born: self
                .foedsel
                .into_iter()
                .find(|f| f.er_gjeldende)
                .and_then(|f| f.foedselsdato),
            children: self
                .familierelasjon
                .into_iter()
                .filter(|r| r.er_gjeldende && r.relatert_persons_rolle.as_deref() == Some("barn"))
                .filter_map(|r| r.relatert_person)
                .collect(),
            responsible: self
                .foreldreansvar
                .into_iter()
                .filter(|a| a.er_gjeldende)
                .filter_map(|a| a.ansvarlig)
                .collect(),
            guardians: self
                .vergemaal
                .into_iter()
                .filter(|v| {
                    v.er_gjeldende && v.kind.as_deref() != Some("stadfestetFremtidsfullmakt")
                })
                .filter_map(|v| v.verge_eller_fullmektig?.motparts_personidentifikator)
                .collect(),
        }
    }
}

impl Connector {
    /// Looks `numbers` up in the registry at `upstream` (its `base_url` is
    /// the registry's `url`); persons the registry does not know are left out.
    pub async fn registry_lookup(
        &self,
        upstream: &Upstream,
        numbers: &[&str],
    ) -> Result<Vec<RegistryPerson>, RegistryError> {
        if numbers.is_empty() {
            return Ok(Vec::new());
        }
        if numbers.len() > MAX_LOOKUP {
            return Err(RegistryError::TooMany);
        }
        let body = serde_json::json!({ "foedselsEllerDNummer": numbers }).to_string();
        let base = upstream.base_url.to_string();
        let uri: Uri = format!(
            "{}/personer/bulkoppslag?{PARTS}",
            base.trim_end_matches('/')
        )
        .parse()
        .map_err(|_| UpstreamError::InvalidRequest("invalid registry url"))?;
        let mut headers = HeaderMap::new();
        upstream.credentials.apply(&mut headers);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        if let Credentials::OAuth2(oauth2) = &upstream.credentials {
            let token_client = self.client(upstream.connect_timeout, None);
            let value = oauth2
                .authorization(&token_client, upstream.request_timeout)
                .await
                .map_err(UpstreamError::Credentials)?;
            headers.insert(header::AUTHORIZATION, value);
        }
        let client = self.client(upstream.connect_timeout, upstream.credentials.identity());
        let mut request = Request::new(
            Full::new(Bytes::from(body))
                .map_err(|never| match never {})
                .boxed_unsync(),
        );
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        let response =
            match tokio::time::timeout(upstream.request_timeout, client.request(request)).await {
                Err(_) => return Err(UpstreamError::Timeout(upstream.request_timeout).into()),
                Ok(Err(e)) => return Err(UpstreamError::Connect(e.to_string()).into()),
                Ok(Ok(r)) => r,
            };
        if response.status() != StatusCode::OK {
            return Err(RegistryError::Status(response.status()));
        }
        let limit = upstream.max_response_bytes.min(MAX_ANSWER_BYTES);
        let bytes = crate::collect_limited(response.into_body(), limit)
            .await
            .map_err(|e| RegistryError::Malformed(e.to_string()))?;
        let answer: Answer =
            serde_json::from_slice(&bytes).map_err(|e| RegistryError::Malformed(e.to_string()))?;
        Ok(answer
            .oppslag
            .into_iter()
            .filter(|l| numbers.contains(&l.foedsels_eller_d_nummer.as_str()))
            .filter_map(|l| l.person.map(|p| p.into_person(l.foedsels_eller_d_nummer)))
            .collect())
    }
}
