//! `urn:altinn:consent`: a citizen's (or an organisation's) consent, carried
//! in a Maskinporten token, as the data source must validate it.
//!
//! Sources: Digdir, "Samtykketoken i Maskinporten"
//! (felleslosninger/docs `_docs/Maskinporten/maskinporten_func_samtykke.md`:
//! the response claims `type`, `id`, `from`, `to`, `consented`, `validTo`,
//! `consentRights`; the provider must validate `id` and `from`/`to`, and `to`
//! equals `consumer`); Altinn, "Validate consent tokens"
//! (Altinn/altinn-studio-docs `…/resource-owner/consent/validate-concent`:
//! three kinds of token during the migration, migrated resource ids
//! `{org}_{serviceCode}_{serviceEditionCode}`, metadata lower-cased on
//! migration); Altinn 2, "Informasjon om token" (Altinn/docs
//! `content/utviklingsguider/samtykke/datakilde/bruk-av-token`: `Services`,
//! `AuthorizationCode`, `OfferedBy`, `CoveredBy`, `DelegatedDate`,
//! `ValidToDate`).

use serde_json::Value;
use time::OffsetDateTime;

use crate::FormatError;

pub const CONSENT_TYPE: &str = "urn:altinn:consent";
const PERSON_PREFIX: &str = "urn:altinn:person:identifier-no:";
const ORG_PREFIX: &str = "urn:altinn:organization:identifier-no:";

/// Which of the three kinds of consent token a data source must accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// Issued by Altinn 2 itself (`iss` `altinn.no`): service codes, `OfferedBy`, `CoveredBy`.
    Altinn2,
    /// Issued by Maskinporten for a consent resource made in Altinn 3.
    Altinn3,
    /// Issued by Maskinporten for an Altinn 2 consent Altinn converted: the
    /// resource id is `{org}_{serviceCode}_{serviceEditionCode}` and the
    /// metadata keys are lower-cased.
    Migrated,
}

impl Generation {
    pub fn as_str(self) -> &'static str {
        match self {
            Generation::Altinn2 => "altinn2",
            Generation::Altinn3 => "altinn3",
            Generation::Migrated => "migrated",
        }
    }
}

/// Who gave the consent (`from`).
#[derive(Clone, PartialEq, Eq)]
pub enum Party {
    /// 11 digits, as written in the token (the caller checks control digits).
    Person(String),
    Organisation(policy::OrgNumber),
}

impl std::fmt::Debug for Party {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // A person number never reaches a log through Debug.
            Party::Person(_) => f.write_str("Person(…)"),
            Party::Organisation(o) => write!(f, "Organisation({o})"),
        }
    }
}

impl Party {
    /// `urn:altinn:person:identifier-no:…` or `urn:altinn:organization:identifier-no:…`.
    fn parse(urn: &str) -> Result<Party, FormatError> {
        if let Some(n) = urn.strip_prefix(PERSON_PREFIX) {
            return person(n, "from");
        }
        if let Some(n) = urn.strip_prefix(ORG_PREFIX) {
            return policy::OrgNumber::parse(n)
                .map(Party::Organisation)
                .map_err(|_| FormatError::Invalid("from"));
        }
        Err(FormatError::Invalid("from"))
    }

    /// The URN form, as Altinn writes it.
    pub fn urn(&self) -> String {
        match self {
            Party::Person(p) => format!("{PERSON_PREFIX}{p}"),
            Party::Organisation(o) => format!("{ORG_PREFIX}{o}"),
        }
    }
}

fn person(n: &str, what: &'static str) -> Result<Party, FormatError> {
    if n.len() == 11 && n.bytes().all(|b| b.is_ascii_digit()) {
        Ok(Party::Person(n.to_owned()))
    } else {
        Err(FormatError::Invalid(what))
    }
}

/// One entry of `consentRights`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRight {
    pub actions: Vec<String>,
    /// The `value`s of the `urn:altinn:resource` entries.
    pub resources: Vec<String>,
    /// `metadata` (or `metaData`), in the token's order.
    pub metadata: Vec<(String, String)>,
}

impl ConsentRight {
    /// The consented value of metadata `key`. Keys compare without case:
    /// migrated consents have theirs lower-cased, and Altinn's own examples
    /// write `INNTEKTSAAR` and `inntektsaar` for the same key.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

/// A consent as the token states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AltinnConsent {
    /// The consent request's UUID (`id`; Altinn 2: `AuthorizationCode`).
    pub id: String,
    pub from: Party,
    /// The organisation the consent was given to (`to`; Altinn 2: `CoveredBy`).
    pub to: policy::OrgNumber,
    pub consented: Option<OffsetDateTime>,
    pub valid_to: OffsetDateTime,
    pub rights: Vec<ConsentRight>,
    pub generation: Generation,
}

impl AltinnConsent {
    /// One `authorization_details` entry of type `urn:altinn:consent`.
    pub fn from_authorization_detail(item: &Value) -> Result<AltinnConsent, FormatError> {
        let id = item
            .get("id")
            .and_then(Value::as_str)
            .ok_or(FormatError::Missing("id"))?;
        if !is_uuid(id) {
            return Err(FormatError::Invalid("id"));
        }
        let from = Party::parse(
            item.get("from")
                .and_then(Value::as_str)
                .ok_or(FormatError::Missing("from"))?,
        )?;
        let to = crate::org_of(item.get("to").ok_or(FormatError::Missing("to"))?, "to")?;
        let consented = item
            .get("consented")
            .and_then(Value::as_str)
            .map(|s| rfc3339(s, "consented"))
            .transpose()?;
        let valid_to = rfc3339(
            item.get("validTo")
                .and_then(Value::as_str)
                .ok_or(FormatError::Missing("validTo"))?,
            "validTo",
        )?;
        let rights = item
            .get("consentRights")
            .and_then(Value::as_array)
            .ok_or(FormatError::Missing("consentRights"))?
            .iter()
            .map(right)
            .collect::<Result<Vec<_>, _>>()?;
        let generation = if rights
            .iter()
            .flat_map(|r| &r.resources)
            .any(|r| is_migrated_resource(r))
        {
            Generation::Migrated
        } else {
            Generation::Altinn3
        };
        Ok(AltinnConsent {
            id: id.to_ascii_lowercase(),
            from,
            to,
            consented,
            valid_to,
            rights,
            generation,
        })
    }

    /// The claims of an Altinn 2 consent token (`iss` `altinn.no`). Its
    /// services (`"4629_2"`) are matched against migrated resource ids
    /// (`{org}_4629_2`), its parameters (`"4629_2_inntektsaar=2016"`, or with
    /// a comma) become the right's metadata. Times are Unix seconds, or
    /// `YYYY-MM-DD HH:MM:SS` read as UTC (Altinn 2's examples show both).
    pub fn from_altinn2_claims(claims: &Value) -> Result<AltinnConsent, FormatError> {
        let id = claims
            .get("AuthorizationCode")
            .and_then(Value::as_str)
            .ok_or(FormatError::Missing("AuthorizationCode"))?;
        if !is_uuid(id) {
            return Err(FormatError::Invalid("AuthorizationCode"));
        }
        let offered = claims
            .get("OfferedBy")
            .and_then(Value::as_str)
            .ok_or(FormatError::Missing("OfferedBy"))?;
        let from = match offered.len() {
            11 => person(offered, "OfferedBy")?,
            _ => Party::Organisation(
                policy::OrgNumber::parse(offered).map_err(|_| FormatError::Invalid("OfferedBy"))?,
            ),
        };
        let to = policy::OrgNumber::parse(
            claims
                .get("CoveredBy")
                .and_then(Value::as_str)
                .ok_or(FormatError::Missing("CoveredBy"))?,
        )
        .map_err(|_| FormatError::Invalid("CoveredBy"))?;
        let valid_to = altinn2_time(
            claims
                .get("ValidToDate")
                .ok_or(FormatError::Missing("ValidToDate"))?,
            "ValidToDate",
        )?;
        let consented = claims
            .get("DelegatedDate")
            .map(|v| altinn2_time(v, "DelegatedDate"))
            .transpose()?;
        let services: Vec<&str> = match claims
            .get("Services")
            .or_else(|| claims.get("ServiceCodes"))
        {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => return Err(FormatError::Missing("Services")),
        };
        let mut rights: Vec<ConsentRight> = Vec::new();
        for entry in services {
            let (service, parameter) =
                split_service(entry).ok_or(FormatError::Invalid("Services"))?;
            let at = match rights.iter().position(|r| r.resources[0] == service) {
                Some(i) => i,
                None => {
                    rights.push(ConsentRight {
                        actions: vec!["consent".into()],
                        resources: vec![service.to_owned()],
                        metadata: Vec::new(),
                    });
                    rights.len() - 1
                }
            };
            if let Some((k, v)) = parameter {
                rights[at].metadata.push((k.to_owned(), v.to_owned()));
            }
        }
        Ok(AltinnConsent {
            id: id.to_ascii_lowercase(),
            from,
            to,
            consented,
            valid_to,
            rights,
            generation: Generation::Altinn2,
        })
    }

    /// The right that grants `resource` (the data source's resource id), if
    /// any. An Altinn 2 service `{code}_{edition}` grants the migrated
    /// resource `{org}_{code}_{edition}`.
    pub fn right_for(&self, resource: &str) -> Option<&ConsentRight> {
        self.rights.iter().find(|r| {
            r.resources.iter().any(|granted| match self.generation {
                Generation::Altinn2 => {
                    resource
                        .strip_suffix(granted.as_str())
                        .is_some_and(|org| org.len() > 1 && org.ends_with('_'))
                        || granted == resource
                }
                _ => granted == resource,
            })
        })
    }

    /// The person who gave the consent, when a person did.
    pub fn person(&self) -> Option<&str> {
        match &self.from {
            Party::Person(p) => Some(p),
            Party::Organisation(_) => None,
        }
    }
}

fn right(v: &Value) -> Result<ConsentRight, FormatError> {
    let actions = v
        .get("action")
        .and_then(Value::as_array)
        .ok_or(FormatError::Missing("consentRights[].action"))?
        .iter()
        .map(|a| a.as_str().map(str::to_owned))
        .collect::<Option<Vec<_>>>()
        .ok_or(FormatError::Invalid("consentRights[].action"))?;
    let resources = v
        .get("resource")
        .and_then(Value::as_array)
        .ok_or(FormatError::Missing("consentRights[].resource"))?
        .iter()
        .map(|r| {
            // Altinn's pages write the attribute's name as `type`, one older page as `id`.
            let kind = r
                .get("type")
                .or_else(|| r.get("id"))
                .and_then(Value::as_str);
            match (kind, r.get("value").and_then(Value::as_str)) {
                (Some("urn:altinn:resource"), Some(value)) => Ok(Some(value.to_owned())),
                (Some(_), Some(_)) => Ok(None),
                _ => Err(FormatError::Invalid("consentRights[].resource")),
            }
        })
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    // `metadata` in Digdir's examples, `metaData` in Altinn's consent request.
    let metadata = match v.get("metadata").or_else(|| v.get("metaData")) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Number(n) => Ok((k.clone(), n.to_string())),
                _ => Err(FormatError::Invalid("consentRights[].metadata")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(FormatError::Invalid("consentRights[].metadata")),
    };
    Ok(ConsentRight {
        actions,
        resources,
        metadata,
    })
}

/// `{org}_{serviceCode}_{serviceEditionCode}`: a resource Altinn made from an Altinn 2 service.
pub fn is_migrated_resource(id: &str) -> bool {
    let mut parts = id.rsplitn(3, '_');
    let edition = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    let org = parts.next().unwrap_or_default();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(edition)
        && digits(code)
        && !org.is_empty()
        && org.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `4629_2`, `4629_2_inntektsaar=2016` or `4629_2,inntektsaar=2016`.
fn split_service(entry: &str) -> Option<(&str, Option<(&str, &str)>)> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (code, rest) = entry.split_once('_')?;
    let edition_end = rest.find(['_', ',']).unwrap_or(rest.len());
    let edition = &rest[..edition_end];
    if !digits(code) || !digits(edition) {
        return None;
    }
    let service = &entry[..code.len() + 1 + edition.len()];
    let parameter = match rest[edition_end..].get(1..) {
        None | Some("") => None,
        Some(p) => Some(p.split_once('=')?),
    };
    Some((service, parameter))
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

fn rfc3339(s: &str, what: &'static str) -> Result<OffsetDateTime, FormatError> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| FormatError::Invalid(what))
}

fn altinn2_time(v: &Value, what: &'static str) -> Result<OffsetDateTime, FormatError> {
    if let Some(secs) = v.as_i64() {
        return OffsetDateTime::from_unix_timestamp(secs).map_err(|_| FormatError::Invalid(what));
    }
    let s = v.as_str().ok_or(FormatError::Invalid(what))?;
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(s, format)
        .map(|t| t.assume_utc())
        .map_err(|_| FormatError::Invalid(what))
}

#[cfg(test)]
mod tests;
