//! Loading and validating policy files (TOML), every error with `file:line`.
//!
//! The file is read into plain `Raw*` structs that keep the position of every
//! value worth pointing at, then checked and turned into the [`Policy`] model
//! in one pass that collects all errors rather than stopping at the first.
//! The format is documented in `docs/policy.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use thiserror::Error;
use toml::Spanned;

use crate::id::OrgNumber;
use crate::model::{
    AltinnResource, ConsumerDataset, ConsumerRule, Dataset, DatasetPurpose, DatasetRef, FieldMask,
    JsonPath, LegalBasis, Organisation, Policy, Provider, Purpose, RateLimit, SubjectLocation,
    Text,
};

/// One problem in a policy file, reported as `file:line: message`.
///
/// `line` is 1-based; 0 when the problem has no place in the file (it could not be read).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{file}:{line}: {message}")]
pub struct PolicyError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Reads and validates the policy file at `path`.
pub fn load_policy(path: &Path) -> Result<Policy, Vec<PolicyError>> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![PolicyError {
            file: file.clone(),
            line: 0,
            message: format!("cannot read: {e}"),
        }]
    })?;
    parse_policy(&file, &text)
}

/// Parses and validates policy text; `file` names it in errors.
///
/// Returns every error found, sorted by line.
pub fn parse_policy(file: &str, text: &str) -> Result<Policy, Vec<PolicyError>> {
    let lines = LineIndex::new(text);
    let raw: RawPolicy = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let line = e.span().map_or(0, |s| lines.line(s.start));
            // One line, as `bru check` prints `file:line: message`.
            let mut message = one_line(e.message().trim().replace('\n', "; "));
            if message.is_empty() {
                // toml has no message for some errors, e.g. a control
                // character in a comment (found by fuzzing): name the character.
                message = match e.span().and_then(|s| text.get(s.start..)?.chars().next()) {
                    Some(c) => format!("not valid TOML at character {c:?}"),
                    None => "not valid TOML".to_owned(),
                };
            }
            return Err(vec![PolicyError {
                file: file.to_owned(),
                line,
                message,
            }]);
        }
    };
    let mut v = Validator {
        file,
        lines,
        errors: Vec::new(),
    };
    let policy = v.policy(raw);
    if v.errors.is_empty() {
        Ok(policy)
    } else {
        // Stable sort: errors on one line keep the order they were found in.
        v.errors.sort_by_key(|e| e.line);
        Err(v.errors)
    }
}

// ---------------------------------------------------------------------------
// The file as written. Only what `deny_unknown_fields` and serde can check is
// checked here; numbers are read as i64 so that range errors get our wording.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    organisation: Vec<RawOrganisation>,
    #[serde(default)]
    purpose: Vec<RawPurpose>,
    #[serde(default)]
    provider: Vec<RawProvider>,
    #[serde(default)]
    dataset: Vec<RawDataset>,
    #[serde(default)]
    consumer: Vec<RawConsumer>,
    /// SPEC 11 (`crate::snoop`).
    snooping: Option<crate::snoop::RawSnooping>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrganisation {
    org: Spanned<String>,
    name: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawText {
    nb: String,
    en: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPurpose {
    id: Spanned<String>,
    title: Spanned<RawText>,
    description: Spanned<RawText>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    id: Spanned<String>,
    org: Spanned<String>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RawBasis {
    Consent,
    Statutory,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum RawSubject {
    Header(String),
    Query(String),
    PathSegment(i64),
    JsonBody(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum RawMask {
    JsonFields(Vec<String>),
    FhirResourceTypes(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDataset {
    provider: Spanned<String>,
    id: Spanned<String>,
    title: Spanned<RawText>,
    description: Spanned<RawText>,
    basis: Spanned<RawBasis>,
    legal_ref: Option<Spanned<String>>,
    scope: Spanned<String>,
    personal_data: Option<Spanned<bool>>,
    subject: Option<Spanned<RawSubject>>,
    max_consent_days: Option<Spanned<i64>>,
    altinn_resource: Option<Spanned<String>>,
    altinn_one_time: Option<Spanned<bool>>,
    /// SPEC 10: whether the subject's blocks apply (default: consent datasets).
    blockable: Option<Spanned<bool>>,
    /// SPEC 10: whether `Bru-Break-Glass` may pass a block (default false).
    break_glass: Option<Spanned<bool>>,
    #[serde(default)]
    purpose: Vec<RawDatasetPurpose>,
    health: Option<bool>,
    representation: Option<Spanned<RawRepresentation>>,
}

/// `[dataset.representation]` (SPEC 9.3).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRepresentation {
    parent_until_age: Option<Spanned<i64>>,
    #[serde(default)]
    fullmakt_roles: Vec<Spanned<String>>,
    #[serde(default = "yes")]
    guardianship: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatasetPurpose {
    id: Spanned<String>,
    minimise: Option<Spanned<RawMask>>,
    metadata_filter: Option<Spanned<BTreeMap<String, String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConsumer {
    org: Spanned<String>,
    #[serde(default)]
    suppliers: Vec<Spanned<String>>,
    #[serde(default)]
    consent_requester: bool,
    #[serde(default)]
    audit_reader: bool,
    #[serde(default)]
    audit_suppliers: Vec<Spanned<String>>,
    rate_limit: Option<Spanned<RawRateLimit>>,
    /// SPEC 10: the citizen's views show this rule's calls only after N days.
    disclosure_delay_days: Option<Spanned<i64>>,
    #[serde(default)]
    dataset: Vec<RawConsumerDataset>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    per_second: i64,
    burst: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConsumerDataset {
    id: Spanned<String>,
    #[serde(default)]
    purposes: Vec<Spanned<String>>,
}

// ---------------------------------------------------------------------------
// Validation.

const DEFAULT_MAX_CONSENT_DAYS: u32 = 365;
const MAX_CONSENT_DAYS_LIMIT: u32 = 3650;
/// The longest delayed disclosure a consumer rule may ask for: ten years
/// (an investigation the law keeps hidden longer is not a delay but a
/// secret, which policy cannot express).
const MAX_DISCLOSURE_DELAY_DAYS: u32 = 3650;
/// Scopes of Bru's own APIs; a dataset using one would mix up two kinds of rights.
const RESERVED_SCOPES: [&str; 2] = ["bru:consent", "bru:audit"];

/// Byte offsets to 1-based line numbers.
struct LineIndex {
    /// Byte offset where each line starts.
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { starts }
    }

    fn line(&self, offset: usize) -> usize {
        // The number of lines starting at or before `offset`; never 0, as line 1 starts at 0.
        self.starts.partition_point(|&s| s <= offset)
    }
}

struct Validator<'a> {
    file: &'a str,
    lines: LineIndex,
    errors: Vec<PolicyError>,
}

/// What later sections need to know about a dataset, even one with errors,
/// so that one mistake does not cascade into many.
struct KnownDataset {
    line: usize,
    purposes: Vec<String>,
}

impl Validator<'_> {
    fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.errors.push(PolicyError {
            file: self.file.to_owned(),
            line: self.lines.line(span.start),
            message: one_line(message.into()),
        });
    }

    fn policy(&mut self, raw: RawPolicy) -> Policy {
        let organisations = self.organisations(raw.organisation);
        let purposes = self.purposes(raw.purpose);
        let (providers, provider_ids) = self.providers(raw.provider, &organisations);
        let (datasets, known) = self.datasets(raw.dataset, &provider_ids, &purposes);
        let consumers = self.consumers(raw.consumer, &organisations, &known);
        let snooping =
            crate::snoop::rules(raw.snooping, &|d| known.contains_key(d), &mut |span, m| {
                self.error(span, m)
            });
        Policy {
            organisations,
            purposes,
            providers,
            datasets,
            consumers,
            snooping,
        }
    }

    fn organisations(&mut self, raw: Vec<RawOrganisation>) -> BTreeMap<OrgNumber, Organisation> {
        let mut out = BTreeMap::new();
        let mut seen = BTreeMap::new();
        for o in raw {
            if o.name.get_ref().trim().is_empty() {
                let org = o.org.get_ref();
                self.error(
                    o.name.span(),
                    format!("organisation {org} has an empty name"),
                );
            }
            let Some(org) = self.org_number(&o.org, "an [[organisation]] has org") else {
                continue;
            };
            let line = self.lines.line(o.org.span().start);
            if let Some(first) = first_seen(&mut seen, &org, line) {
                self.error(
                    o.org.span(),
                    format!("organisation {org} is listed twice (first on line {first})"),
                );
                continue;
            }
            let name = o.name.into_inner();
            out.insert(org.clone(), Organisation { org, name });
        }
        out
    }

    fn purposes(&mut self, raw: Vec<RawPurpose>) -> BTreeMap<String, Purpose> {
        let mut out = BTreeMap::new();
        let mut seen = BTreeMap::new();
        for p in raw {
            let Some(id) = self.id(&p.id, "purpose") else {
                continue;
            };
            let line = self.lines.line(p.id.span().start);
            if let Some(first) = first_seen(&mut seen, &id, line) {
                self.error(
                    p.id.span(),
                    format!("purpose \"{id}\" is defined twice (first on line {first})"),
                );
                continue;
            }
            let title = self.text(&p.title, &format!("purpose {id}"), "title");
            let description = self.text(&p.description, &format!("purpose {id}"), "description");
            out.insert(
                id.clone(),
                Purpose {
                    id,
                    title,
                    description,
                },
            );
        }
        out
    }

    /// The valid providers, and the ids of all, valid or not, for references.
    fn providers(
        &mut self,
        raw: Vec<RawProvider>,
        organisations: &BTreeMap<OrgNumber, Organisation>,
    ) -> (BTreeMap<String, Provider>, BTreeSet<String>) {
        let mut out = BTreeMap::new();
        let mut seen = BTreeMap::new();
        for p in raw {
            let id = self.id(&p.id, "provider");
            let what = format!("provider {} names organisation", p.id.get_ref());
            let org = self.listed_org(&p.org, organisations, &what);
            let Some(id) = id else {
                continue;
            };
            let line = self.lines.line(p.id.span().start);
            if let Some(first) = first_seen(&mut seen, &id, line) {
                self.error(
                    p.id.span(),
                    format!("provider \"{id}\" is defined twice (first on line {first})"),
                );
                continue;
            }
            if let Some(org) = org {
                out.insert(id.clone(), Provider { id, org });
            }
        }
        let known = seen.into_keys().collect();
        (out, known)
    }

    fn datasets(
        &mut self,
        raw: Vec<RawDataset>,
        providers: &BTreeSet<String>,
        purposes: &BTreeMap<String, Purpose>,
    ) -> (
        BTreeMap<DatasetRef, Dataset>,
        BTreeMap<DatasetRef, KnownDataset>,
    ) {
        let mut out = BTreeMap::new();
        let mut known = BTreeMap::new();
        for d in raw {
            let errors_before = self.errors.len();
            let provider_ok = self.id(&d.provider, "provider").is_some();
            let id_ok = self.id(&d.id, "dataset").is_some();
            let id = DatasetRef {
                provider: d.provider.get_ref().clone(),
                dataset: d.id.get_ref().clone(),
            };
            if provider_ok && !providers.contains(&id.provider) {
                self.error(
                    d.provider.span(),
                    format!(
                        "dataset {id} names provider \"{}\", which no [[provider]] defines",
                        id.provider
                    ),
                );
            }
            let line = self.lines.line(d.id.span().start);
            if let Some(first) = known.get(&id).map(|k: &KnownDataset| k.line) {
                self.error(
                    d.id.span(),
                    format!("dataset {id} is defined twice (first on line {first})"),
                );
                continue;
            }

            let what = format!("dataset {id}");
            let title = self.text(&d.title, &what, "title");
            let description = self.text(&d.description, &what, "description");

            let basis = match d.basis.get_ref() {
                RawBasis::Consent => LegalBasis::Consent,
                RawBasis::Statutory => LegalBasis::Statutory,
            };
            let legal_ref = d.legal_ref.as_ref().map(|r| r.get_ref().clone());
            if let Some(r) = d
                .legal_ref
                .as_ref()
                .filter(|r| r.get_ref().trim().is_empty())
            {
                self.error(r.span(), format!("dataset {id} has an empty legal_ref"));
            }
            if basis == LegalBasis::Statutory && d.legal_ref.is_none() {
                self.error(
                    d.basis.span(),
                    format!(
                        "dataset {id} is statutory but has no legal_ref naming the law that allows it"
                    ),
                );
            }

            let scope = self.scope(&d.scope, &id);

            let personal_data = d.personal_data.as_ref().is_none_or(|p| *p.get_ref());
            let subject = d.subject.as_ref().and_then(|s| self.subject(s, &id));
            match (&d.subject, personal_data) {
                (None, true) => self.error(
                    d.personal_data
                        .as_ref()
                        .map_or_else(|| d.id.span(), |p| p.span()),
                    format!(
                        "dataset {id} holds personal data but names no subject \
                         (where the provider's API carries the person)"
                    ),
                ),
                (Some(s), false) => self.error(
                    s.span(),
                    format!("dataset {id} has personal_data = false but names a subject"),
                ),
                _ => {}
            }
            if basis == LegalBasis::Consent && !personal_data {
                self.error(
                    d.basis.span(),
                    format!(
                        "dataset {id} is consent-based but has personal_data = false; \
                         only a person can consent"
                    ),
                );
            }

            let max_consent_days = self.max_consent_days(d.max_consent_days.as_ref(), &id);
            let altinn = self.altinn_resource(&d, &id, &basis);
            let representation = self.representation(d.representation.as_ref(), &id);

            let dataset_purposes = self.dataset_purposes(&d.purpose, &id, purposes);
            if d.altinn_resource.is_none() {
                for f in d.purpose.iter().filter_map(|p| p.metadata_filter.as_ref()) {
                    self.error(
                        f.span(),
                        format!(
                            "dataset {id} has a metadata_filter but no altinn_resource; \
                             metadata comes only with an Altinn consent"
                        ),
                    );
                }
            }
            if personal_data && d.purpose.is_empty() {
                self.error(
                    d.id.span(),
                    format!(
                        "dataset {id} holds personal data but lists no [[dataset.purpose]], \
                         so no call to it could be allowed"
                    ),
                );
            }

            known.insert(
                id.clone(),
                KnownDataset {
                    line,
                    purposes: dataset_purposes.iter().map(|p| p.purpose.clone()).collect(),
                },
            );
            // Only a dataset without errors becomes part of the model; the
            // model's types cannot hold the broken parts anyway.
            if provider_ok && id_ok && self.errors.len() == errors_before {
                let blockable = d
                    .blockable
                    .as_ref()
                    .map_or(basis == LegalBasis::Consent, |b| *b.get_ref());
                // Break-glass passes a block: without blocks it says nothing.
                if let Some(b) = d.break_glass.as_ref().filter(|b| *b.get_ref()) {
                    if !blockable {
                        self.error(
                            b.span(),
                            format!("dataset {id} has break_glass but is not blockable"),
                        );
                    }
                }
                out.insert(
                    id.clone(),
                    Dataset {
                        name: id.to_string(),
                        id,
                        title,
                        description,
                        basis,
                        legal_ref,
                        scope,
                        personal_data,
                        subject,
                        purposes: dataset_purposes,
                        max_consent_days,
                        altinn,
                        health: d.health,
                        representation,
                        blockable,
                        break_glass: d.break_glass.as_ref().is_some_and(|b| *b.get_ref()),
                    },
                );
            }
        }
        (out, known)
    }

    fn scope(&mut self, scope: &Spanned<String>, id: &DatasetRef) -> String {
        let s = scope.get_ref();
        // Tokens carry scopes space separated, so a scope cannot hold a space.
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_graphic()) {
            self.error(
                scope.span(),
                format!(
                    "dataset {id} has scope \"{s}\"; a scope is printable ASCII without spaces"
                ),
            );
        } else if RESERVED_SCOPES.contains(&s.as_str()) {
            self.error(
                scope.span(),
                format!("dataset {id} uses scope {s}, which is reserved for Bru's own API"),
            );
        }
        s.clone()
    }

    /// `altinn_resource` / `altinn_one_time` (SPEC 9.1): only on consent
    /// datasets, a resource id as Altinn's registry writes them.
    fn altinn_resource(
        &mut self,
        d: &RawDataset,
        id: &DatasetRef,
        basis: &LegalBasis,
    ) -> Option<AltinnResource> {
        let one_time = d.altinn_one_time.as_ref().is_some_and(|o| *o.get_ref());
        let Some(resource) = &d.altinn_resource else {
            if let Some(o) = &d.altinn_one_time {
                self.error(
                    o.span(),
                    format!("dataset {id} has altinn_one_time but no altinn_resource"),
                );
            }
            return None;
        };
        let r = resource.get_ref();
        if *basis != LegalBasis::Consent {
            self.error(
                resource.span(),
                format!("dataset {id} has altinn_resource but is not consent-based"),
            );
        }
        let valid = !r.is_empty()
            && r.len() <= 128
            && r.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            self.error(
                resource.span(),
                format!(
                    "dataset {id} has altinn_resource \"{r}\"; a resource id is letters, \
                     digits, '-' and '_' (at most 128)"
                ),
            );
        }
        Some(AltinnResource {
            id: r.clone(),
            one_time,
        })
    }

    /// `metadata_filter = { inntektsaar = "aar" }`: metadata keys to top-level row fields.
    fn metadata_filter(
        &mut self,
        p: &RawDatasetPurpose,
        id: &DatasetRef,
        purpose: &str,
    ) -> Vec<(String, String)> {
        let Some(filter) = &p.metadata_filter else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (key, field) in filter.get_ref() {
            let name_ok = |s: &str| {
                !s.is_empty()
                    && s.len() <= 64
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            };
            if !name_ok(key) || !name_ok(field) {
                self.error(
                    filter.span(),
                    format!(
                        "dataset {id} purpose {purpose} has metadata_filter {key} = \"{field}\"; \
                         both are names (letters, digits, '_' and '-')"
                    ),
                );
                continue;
            }
            out.push((key.clone(), field.clone()));
        }
        out
    }

    fn representation(
        &mut self,
        raw: Option<&Spanned<RawRepresentation>>,
        id: &DatasetRef,
    ) -> crate::represent::Representation {
        let Some(raw) = raw else {
            return crate::represent::Representation {
                guardianship: true,
                ..Default::default()
            };
        };
        let r = raw.get_ref();
        let parent_until_age = match &r.parent_until_age {
            None => None,
            Some(age) => match u8::try_from(*age.get_ref()) {
                Ok(a) if (1..=crate::represent::MAJORITY).contains(&a) => Some(a),
                _ => {
                    self.error(
                        age.span(),
                        format!(
                            "dataset {id} has representation.parent_until_age = {}; \
                             it must be between 1 and 18 (parental responsibility ends at 18)",
                            age.get_ref()
                        ),
                    );
                    None
                }
            },
        };
        let mut fullmakt_roles = Vec::new();
        for role in &r.fullmakt_roles {
            let s = role.get_ref();
            if s.is_empty()
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                self.error(
                    role.span(),
                    format!(
                        "dataset {id} has representation.fullmakt_roles {s:?}; \
                         a role is a code such as \"helse\" (letters, digits, - and _)"
                    ),
                );
            } else if fullmakt_roles.contains(s) {
                self.error(
                    role.span(),
                    format!("dataset {id} names fullmakt role {s:?} twice"),
                );
            } else {
                fullmakt_roles.push(s.clone());
            }
        }
        crate::represent::Representation {
            parent_until_age,
            fullmakt_roles,
            guardianship: r.guardianship,
        }
    }

    fn max_consent_days(&mut self, days: Option<&Spanned<i64>>, id: &DatasetRef) -> u32 {
        let Some(days) = days else {
            return DEFAULT_MAX_CONSENT_DAYS;
        };
        let n = *days.get_ref();
        match u32::try_from(n) {
            Ok(n) if (1..=MAX_CONSENT_DAYS_LIMIT).contains(&n) => n,
            _ => {
                self.error(
                    days.span(),
                    format!(
                        "dataset {id} has max_consent_days = {n}; \
                         it must be between 1 and {MAX_CONSENT_DAYS_LIMIT}"
                    ),
                );
                DEFAULT_MAX_CONSENT_DAYS
            }
        }
    }

    fn subject(&mut self, s: &Spanned<RawSubject>, id: &DatasetRef) -> Option<SubjectLocation> {
        let (ok, location, problem) = match s.get_ref() {
            RawSubject::Header(h) => (
                is_header_name(h),
                SubjectLocation::Header(h.clone()),
                format!("header \"{h}\", which is not a valid HTTP header name"),
            ),
            RawSubject::Query(q) => (
                is_query_name(q),
                SubjectLocation::Query(q.clone()),
                format!("query \"{q}\", which is empty or holds spaces, '&', '=' or '#'"),
            ),
            RawSubject::PathSegment(n) => match usize::try_from(*n) {
                Ok(n) => (true, SubjectLocation::PathSegment(n), String::new()),
                Err(_) => (
                    false,
                    SubjectLocation::PathSegment(0),
                    format!("path_segment {n}, which is negative; segments count from 0"),
                ),
            },
            RawSubject::JsonBody(p) => (
                is_json_pointer(p),
                SubjectLocation::JsonBody(p.clone()),
                format!("json_body \"{p}\", which is not a JSON pointer (like \"/person/id\")"),
            ),
        };
        if ok {
            Some(location)
        } else {
            self.error(s.span(), format!("dataset {id} has subject {problem}"));
            None
        }
    }

    fn dataset_purposes(
        &mut self,
        raw: &[RawDatasetPurpose],
        id: &DatasetRef,
        purposes: &BTreeMap<String, Purpose>,
    ) -> Vec<DatasetPurpose> {
        let mut out: Vec<DatasetPurpose> = Vec::new();
        for p in raw {
            let name = p.id.get_ref();
            if !purposes.contains_key(name) {
                self.error(
                    p.id.span(),
                    format!("dataset {id} names purpose \"{name}\", which no [[purpose]] defines"),
                );
            }
            if out.iter().any(|q| &q.purpose == name) {
                self.error(
                    p.id.span(),
                    format!("dataset {id} lists purpose \"{name}\" twice"),
                );
                continue;
            }
            let mask = match &p.minimise {
                Some(m) => self.mask(m, id, name),
                None => FieldMask::None,
            };
            let metadata_filter = self.metadata_filter(p, id, name);
            out.push(DatasetPurpose {
                purpose: name.clone(),
                mask,
                metadata_filter,
            });
        }
        out
    }

    fn mask(&mut self, m: &Spanned<RawMask>, id: &DatasetRef, purpose: &str) -> FieldMask {
        // Why an entry is not valid, if it is not.
        type Check = fn(&str) -> Result<(), String>;
        let (what, list, valid): (_, _, Check) = match m.get_ref() {
            RawMask::JsonFields(f) => ("json_fields", f, |s| {
                s.parse::<JsonPath>()
                    .map(|_| ())
                    .map_err(|e| format!("is not a path from the document's root: it {e}"))
            }),
            RawMask::FhirResourceTypes(t) => ("fhir_resource_types", t, |s| {
                if is_fhir_resource_type(s) {
                    Ok(())
                } else {
                    Err("is not a FHIR resource type".into())
                }
            }),
        };
        if list.is_empty() {
            self.error(
                m.span(),
                format!(
                    "dataset {id} minimises purpose \"{purpose}\" with an empty {what} list, \
                     which would remove everything; leave minimise out to keep everything"
                ),
            );
        }
        for (item, why) in list.iter().filter_map(|s| valid(s).err().map(|e| (s, e))) {
            self.error(
                m.span(),
                format!("dataset {id} minimises purpose \"{purpose}\": \"{item}\" is not a valid entry of {what}: it {why}"),
            );
        }
        match m.get_ref() {
            RawMask::JsonFields(f) => FieldMask::JsonFields(f.clone()),
            RawMask::FhirResourceTypes(t) => FieldMask::FhirResourceTypes(t.clone()),
        }
    }

    fn consumers(
        &mut self,
        raw: Vec<RawConsumer>,
        organisations: &BTreeMap<OrgNumber, Organisation>,
        datasets: &BTreeMap<DatasetRef, KnownDataset>,
    ) -> Vec<ConsumerRule> {
        let mut out = Vec::new();
        let mut seen = BTreeMap::new();
        for c in raw {
            let errors_before = self.errors.len();
            let consumer =
                self.listed_org(&c.org, organisations, "a [[consumer]] names organisation");
            let name = c.org.get_ref();
            if let Some(org) = &consumer {
                let line = self.lines.line(c.org.span().start);
                if let Some(first) = first_seen(&mut seen, org, line) {
                    self.error(
                        c.org.span(),
                        format!(
                            "consumer {org} is listed twice (first on line {first}); merge the two"
                        ),
                    );
                }
            }

            let mut suppliers: Vec<OrgNumber> = Vec::new();
            for s in &c.suppliers {
                let what = format!("consumer {name} names supplier");
                if let Some(org) = self.listed_org(s, organisations, &what) {
                    if suppliers.contains(&org) {
                        self.error(
                            s.span(),
                            format!("consumer {name} lists supplier {org} twice"),
                        );
                    } else {
                        suppliers.push(org);
                    }
                }
            }

            let mut audit_suppliers: Vec<OrgNumber> = Vec::new();
            for s in &c.audit_suppliers {
                let what = format!("consumer {name} names audit supplier");
                let Some(org) = self.listed_org(s, organisations, &what) else {
                    continue;
                };
                if !c.audit_reader {
                    self.error(
                        s.span(),
                        format!(
                            "consumer {name} names audit supplier {org} but is no audit_reader; \
                             set audit_reader = true or remove audit_suppliers"
                        ),
                    );
                } else if !suppliers.contains(&org) {
                    self.error(
                        s.span(),
                        format!(
                            "consumer {name} names audit supplier {org}, which is not among its \
                             suppliers; add it to suppliers first"
                        ),
                    );
                } else if audit_suppliers.contains(&org) {
                    self.error(
                        s.span(),
                        format!("consumer {name} lists audit supplier {org} twice"),
                    );
                } else {
                    audit_suppliers.push(org);
                }
            }

            let rate_limit = c.rate_limit.as_ref().and_then(|r| {
                let RawRateLimit { per_second, burst } = *r.get_ref();
                let in_range = |n: i64| n > 0 && u32::try_from(n).is_ok();
                if in_range(per_second) && in_range(burst) {
                    Some(RateLimit {
                        per_second: u32::try_from(per_second).ok()?,
                        burst: u32::try_from(burst).ok()?,
                    })
                } else {
                    self.error(
                        r.span(),
                        format!(
                            "consumer {name} has rate_limit per_second = {per_second}, burst = {burst}; \
                             both must be at least 1 (leave rate_limit out for no limit)"
                        ),
                    );
                    None
                }
            });

            let disclosure_delay_days = c.disclosure_delay_days.as_ref().and_then(|d| {
                let days = *d.get_ref();
                let days_ok = u32::try_from(days)
                    .ok()
                    .filter(|n| (1..=MAX_DISCLOSURE_DELAY_DAYS).contains(n));
                if days_ok.is_none() {
                    self.error(
                        d.span(),
                        format!(
                            "consumer {name} has disclosure_delay_days = {days}; it must be \
                             1 to {MAX_DISCLOSURE_DELAY_DAYS} (leave it out for no delay)"
                        ),
                    );
                }
                days_ok
            });

            let mut rule_datasets: Vec<ConsumerDataset> = Vec::new();
            for d in &c.dataset {
                if let Some(cd) = self.consumer_dataset(d, name, datasets) {
                    if rule_datasets.iter().any(|x| x.dataset == cd.dataset) {
                        self.error(
                            d.id.span(),
                            format!("consumer {name} lists dataset {} twice", cd.dataset),
                        );
                    } else {
                        rule_datasets.push(cd);
                    }
                }
            }

            if let (Some(consumer), true) = (consumer, self.errors.len() == errors_before) {
                out.push(ConsumerRule {
                    consumer,
                    suppliers,
                    datasets: rule_datasets,
                    consent_requester: c.consent_requester,
                    audit_reader: c.audit_reader,
                    audit_suppliers,
                    rate_limit,
                    disclosure_delay_days,
                });
            }
        }
        out
    }

    fn consumer_dataset(
        &mut self,
        d: &RawConsumerDataset,
        consumer: &str,
        datasets: &BTreeMap<DatasetRef, KnownDataset>,
    ) -> Option<ConsumerDataset> {
        let text = d.id.get_ref();
        let Ok(id) = text.parse::<DatasetRef>() else {
            self.error(
                d.id.span(),
                format!(
                    "consumer {consumer} names dataset \"{text}\"; a dataset is written provider/dataset"
                ),
            );
            return None;
        };
        let Some(known) = datasets.get(&id) else {
            self.error(
                d.id.span(),
                format!("consumer {consumer} names dataset {id}, which no [[dataset]] defines"),
            );
            return None;
        };
        let mut purposes: Vec<String> = Vec::new();
        for p in &d.purposes {
            let p_name = p.get_ref();
            if !known.purposes.contains(p_name) {
                self.error(
                    p.span(),
                    format!(
                        "consumer {consumer} may use dataset {id} for purpose \"{p_name}\", \
                         which the dataset does not allow"
                    ),
                );
            } else if purposes.contains(p_name) {
                self.error(
                    p.span(),
                    format!(
                        "consumer {consumer} lists purpose \"{p_name}\" for dataset {id} twice"
                    ),
                );
            } else {
                purposes.push(p_name.clone());
            }
        }
        Some(ConsumerDataset {
            dataset: id,
            purposes,
        })
    }

    // --- small checks -----------------------------------------------------

    /// An id of the `[a-z0-9-]+` kind; `what` names it in the error.
    fn id(&mut self, id: &Spanned<String>, what: &str) -> Option<String> {
        let s = id.get_ref();
        if is_id(s) {
            Some(s.clone())
        } else {
            self.error(
                id.span(),
                format!(
                    "{what} id \"{s}\" may hold only lowercase letters a-z, digits and '-', \
                     and must not be empty"
                ),
            );
            None
        }
    }

    fn org_number(&mut self, org: &Spanned<String>, what: &str) -> Option<OrgNumber> {
        match OrgNumber::parse(org.get_ref()) {
            Ok(o) => Some(o),
            Err(e) => {
                self.error(
                    org.span(),
                    format!(
                        "{what} \"{}\", which is not a valid organisation number ({e})",
                        org.get_ref()
                    ),
                );
                None
            }
        }
    }

    /// A valid organisation number that an `[[organisation]]` lists.
    fn listed_org(
        &mut self,
        org: &Spanned<String>,
        organisations: &BTreeMap<OrgNumber, Organisation>,
        what: &str,
    ) -> Option<OrgNumber> {
        let o = self.org_number(org, what)?;
        if organisations.contains_key(&o) {
            Some(o)
        } else {
            self.error(
                org.span(),
                format!("{what} {o}, which no [[organisation]] lists"),
            );
            None
        }
    }

    /// Both languages must be filled in: the citizen portal shows either.
    fn text(&mut self, t: &Spanned<RawText>, owner: &str, field: &str) -> Text {
        let RawText { nb, en } = t.get_ref();
        for (lang, s) in [("bokmål (nb)", nb), ("English (en)", en)] {
            if s.trim().is_empty() {
                self.error(t.span(), format!("{owner} has an empty {lang} {field}"));
            }
        }
        Text {
            nb: nb.clone(),
            en: en.clone(),
        }
    }
}

/// Messages quote values from the file, and a TOML string may hold control
/// characters (`"a\nb"`): escape them, so that `file:line: message` stays one
/// line (found by fuzzing).
fn one_line(message: String) -> String {
    if !message.contains(char::is_control) {
        return message;
    }
    message
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Remembers where `key` was first seen; `Some(that line)` if this is not the first time.
fn first_seen<K: Ord + Clone>(
    seen: &mut BTreeMap<K, usize>,
    key: &K,
    line: usize,
) -> Option<usize> {
    match seen.get(key) {
        Some(first) => Some(*first),
        None => {
            seen.insert(key.clone(), line);
            None
        }
    }
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// RFC 9110 `token`: the characters an HTTP field name may hold.
fn is_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_query_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !b"&=#".contains(&b))
}

/// RFC 6901: empty or `/`-prefixed, `~` only as `~0` or `~1`. The empty
/// pointer (the whole body) cannot hold a person number, so it is refused.
fn is_json_pointer(s: &str) -> bool {
    s.starts_with('/')
        && s.split('~')
            .skip(1)
            .all(|rest| rest.starts_with('0') || rest.starts_with('1'))
}

/// FHIR resource type names are PascalCase ASCII, e.g. `CarePlan`.
fn is_fhir_resource_type(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_uppercase()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod altinn_tests;
#[cfg(test)]
mod protect_tests;
#[cfg(test)]
mod tests;
