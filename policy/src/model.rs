//! The domain model: what a policy file says once it is loaded and validated.
//!
//! Everything here is plain data; loading lives in `load`, deciding in `decide`.

use std::collections::BTreeMap;

use crate::id::OrgNumber;
// Defined with the other identifiers (so `snoop.rs` can name a dataset
// without the model); the model is where callers look for it.
pub use crate::id::{DatasetRef, DatasetRefError};

/// A validated policy: the organisations, purposes, providers, datasets and
/// consumer rules. Deny by default: what is not named here is refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Display names of organisations, for the citizen's access log and `explain`.
    pub organisations: BTreeMap<OrgNumber, Organisation>,
    pub purposes: BTreeMap<String, Purpose>,
    /// Keyed by provider id (the first path segment after `/data/`).
    pub providers: BTreeMap<String, Provider>,
    /// Keyed by `DatasetRef` (provider id, dataset id).
    pub datasets: BTreeMap<DatasetRef, Dataset>,
    pub consumers: Vec<ConsumerRule>,
    /// `[snooping]`: the rules that point the security team at lookups
    /// that look wrong (SPEC 11; `crate::snoop`).
    pub snooping: crate::snoop::SnoopRules,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    pub org: OrgNumber,
    pub name: String,
}

/// Text in bokmål and English.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text {
    pub nb: String,
    pub en: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purpose {
    pub id: String,
    pub title: Text,
    pub description: Text,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// The id used in `/data/{provider}/…`, e.g. `nav`.
    pub id: String,
    /// The organisation that supplies the data.
    pub org: OrgNumber,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegalBasis {
    /// The citizen's consent, given through the consent broker.
    Consent,
    /// A law allows the transfer; `legal_ref` on the dataset names it.
    Statutory,
}

impl LegalBasis {
    /// The wire name (`Bru-Legal-Basis`, audit `basis`).
    pub fn as_str(&self) -> &'static str {
        match self {
            LegalBasis::Consent => "consent",
            LegalBasis::Statutory => "statutory",
        }
    }
}

/// Where the provider's API carries the person the call is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectLocation {
    /// A request header, e.g. `Nav-Personident` (matched case-insensitively).
    Header(String),
    /// A query parameter, e.g. `patient`.
    Query(String),
    /// A segment of the rest of the path after `/data/{provider}/{dataset}/`, 0-based.
    PathSegment(usize),
    /// A top-level or nested field of a JSON request body, as a JSON pointer (`/person/id`).
    JsonBody(String),
}

/// In words, for messages: `header Nav-Personident`, `query parameter patient`, …
impl std::fmt::Display for SubjectLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubjectLocation::Header(h) => write!(f, "header {h}"),
            SubjectLocation::Query(q) => write!(f, "query parameter {q}"),
            SubjectLocation::PathSegment(n) => write!(f, "path segment {n}"),
            SubjectLocation::JsonBody(p) => write!(f, "JSON body field {p}"),
        }
    }
}

/// What the consumer may see of the provider's response for one purpose.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum FieldMask {
    /// The response passes as the provider sent it (streamed).
    #[default]
    None,
    /// Only these paths from the document's root are kept ([`JsonPath`]:
    /// `aar`, `inntekt.sum`, `inntekter[].sum`). The value at the end of a
    /// path is kept whole; the members on the way keep only what the paths
    /// name, and a container left empty is removed. A name matches only
    /// where its path puts it: `sum` keeps the root's `sum`, not one nested
    /// under another member. Arrays at the root are crossed implicitly (a
    /// provider answering with an array of rows needs `aar`, not `[].aar`);
    /// an array below the root only through `[]` in the path.
    JsonFields(Vec<String>),
    /// A FHIR `Bundle` keeps only entries whose `resource.resourceType` is listed.
    FhirResourceTypes(Vec<String>),
}

/// One step of a [`JsonPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    /// The object member of this name.
    Member(String),
    /// Every element of an array (`[]`).
    Each,
}

/// A path of a `json_fields` mask: member names separated by `.`, each
/// followed by `[]` for every element of the array it holds (`[][]` for an
/// array of arrays). Grammar: `name ("[]")* ("." name ("[]")*)*`, where a
/// name is any text without `.`, `[`, `]`, `*`, whitespace or control
/// characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath(pub Vec<PathStep>);

/// Why a `json_fields` entry is not a [`JsonPath`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonPathError {
    #[error("is empty")]
    Empty,
    #[error(
        "looks like a JSON pointer; write member names separated by dots (e.g. inntekter[].sum)"
    )]
    Pointer,
    #[error("has an empty member name (a leading, trailing or doubled `.`)")]
    EmptyName,
    #[error("has `[]` without a member name before it (arrays at the root need none)")]
    EachWithoutName,
    #[error("has `[` or `]` other than as `[]` at the end of a member name")]
    Brackets,
    #[error("holds whitespace or a control character")]
    Whitespace,
    #[error("holds `*`: a mask names its paths, it has no wildcards")]
    Wildcard,
}

impl std::str::FromStr for JsonPath {
    type Err = JsonPathError;

    fn from_str(s: &str) -> Result<JsonPath, JsonPathError> {
        if s.is_empty() {
            return Err(JsonPathError::Empty);
        }
        if s.starts_with('/') {
            return Err(JsonPathError::Pointer);
        }
        let mut steps = Vec::new();
        for segment in s.split('.') {
            let name_end = segment.find(['[', ']']).unwrap_or(segment.len());
            let (name, mut each) = segment.split_at(name_end);
            if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(JsonPathError::Whitespace);
            }
            if name.contains('*') {
                return Err(JsonPathError::Wildcard);
            }
            match (name.is_empty(), each.is_empty()) {
                (true, true) => return Err(JsonPathError::EmptyName),
                (true, false) if each.starts_with("[]") => {
                    return Err(JsonPathError::EachWithoutName)
                }
                (true, false) => return Err(JsonPathError::Brackets),
                _ => {}
            }
            steps.push(PathStep::Member(name.to_owned()));
            while let Some(rest) = each.strip_prefix("[]") {
                steps.push(PathStep::Each);
                each = rest;
            }
            if !each.is_empty() {
                return Err(JsonPathError::Brackets);
            }
        }
        Ok(JsonPath(steps))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetPurpose {
    pub purpose: String,
    pub mask: FieldMask,
    /// Altinn consent metadata that narrows the answer (SPEC 9.1): for each
    /// `(metadata key, field)`, only rows whose `field` equals the value the
    /// citizen consented to are kept. Empty: no filter.
    pub metadata_filter: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    pub id: DatasetRef,
    /// `provider/dataset` (the `id` written out), built once at load: records,
    /// metrics and assertions name the dataset on every call.
    pub name: String,
    pub title: Text,
    pub description: Text,
    pub basis: LegalBasis,
    /// The law or regulation behind the transfer; required for statutory datasets.
    pub legal_ref: Option<String>,
    /// The Maskinporten scope a caller's token must carry.
    pub scope: String,
    /// Whether the dataset holds personal data (then a purpose is required).
    pub personal_data: bool,
    /// `None` only for datasets without personal data.
    pub subject: Option<SubjectLocation>,
    /// The purposes this dataset may be used for, each with its mask.
    pub purposes: Vec<DatasetPurpose>,
    /// Longest validity a consent for this dataset may be given for.
    pub max_consent_days: u32,
    /// Health data, as policy marks it (`health = true`); see [`Dataset::is_health`].
    pub health: Option<bool>,
    /// Who may decide for someone else (SPEC 9.3; `crate::represent`).
    pub representation: Representation,
    /// The Altinn consent resource whose consent tokens are a basis for this
    /// dataset (SPEC 9.1), and whether it is a one-time consent.
    pub altinn: Option<AltinnResource>,
    /// SPEC 10: a call about a person who blocked its consumer or this
    /// dataset is refused (`blocked_by_subject`). Default: true for consent
    /// datasets, false for statutory ones (only where their law allows).
    pub blockable: bool,
    /// SPEC 10: a caller may pass a block with `Bru-Break-Glass: <reason>`.
    pub break_glass: bool,
}

/// `altinn_resource` and `altinn_one_time` of a consent dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AltinnResource {
    /// The resource id in Altinn's resource registry (e.g. `nav-inntekt`, or
    /// a migrated `{org}_{serviceCode}_{serviceEditionCode}`).
    pub id: String,
    /// A one-time consent: the data may be fetched once, whatever the period.
    pub one_time: bool,
}

impl Dataset {
    pub fn purpose(&self, purpose: &str) -> Option<&DatasetPurpose> {
        self.purposes.iter().find(|p| p.purpose == purpose)
    }
}

/// Calls per second with a burst, for a token bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

/// What one consumer organisation may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRule {
    pub consumer: OrgNumber,
    /// Vendors that may call on this consumer's behalf (the token's `supplier`).
    pub suppliers: Vec<OrgNumber>,
    pub datasets: Vec<ConsumerDataset>,
    /// May create consent requests (scope `bru:consent`).
    pub consent_requester: bool,
    /// May read the audit API (scope `bru:audit`).
    pub audit_reader: bool,
    /// Suppliers that may read the audit API for this consumer; a supplier
    /// is not the consumer's security team, so none unless named here.
    pub audit_suppliers: Vec<OrgNumber>,
    /// Per dataset; `None` means no limit from policy.
    pub rate_limit: Option<RateLimit>,
    /// SPEC 10 delayed disclosure: the rule's calls (allowed or refused) are
    /// recorded at once, but the citizen's views leave them out until this
    /// many days after their time (police, child welfare). `None`: no delay.
    pub disclosure_delay_days: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerDataset {
    pub dataset: DatasetRef,
    /// A subset of the dataset's purposes; empty means all of them.
    pub purposes: Vec<String>,
}

impl Policy {
    pub fn dataset(&self, provider: &str, dataset: &str) -> Option<&Dataset> {
        // BTreeMap lookup by a borrowed pair would need a custom Borrow; datasets are few.
        self.datasets
            .iter()
            .find(|(k, _)| k.provider == provider && k.dataset == dataset)
            .map(|(_, v)| v)
    }

    pub fn consumer(&self, org: &OrgNumber) -> Option<&ConsumerRule> {
        self.consumers.iter().find(|c| &c.consumer == org)
    }

    pub fn organisation_name(&self, org: &OrgNumber) -> Option<&str> {
        self.organisations.get(org).map(|o| o.name.as_str())
    }
}

/// A dataset's representation rules, as its policy states them (all
/// optional; `Dataset::parent_until_age` resolves the default (`represent.rs`)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Representation {
    /// Below this age a parent may decide; `None`: 16 for health data, 18 otherwise.
    pub parent_until_age: Option<u8>,
    /// The `idporten:fullmakt` roles with which a guardian or fullmakt holder may decide.
    pub fullmakt_roles: Vec<String>,
    /// Whether a guardian (verge) may decide at all (within `fullmakt_roles`).
    pub guardianship: bool,
}
