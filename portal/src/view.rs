//! What a citizen is shown of consents and transfers, built once from the
//! store's rows and the policy: the portal's pages render these, and the
//! gateway's citizen JSON API (`/citizen/v1/…`) serialises them.

use consent_db::{
    AuditRecord, Basis, ConsentRow, ConsentStatus, RecordKind, Store, StoreError, Timestamp,
    Verdict,
};
use policy::{DatasetRef, OrgNumber, PersonNumber, Policy, Text};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TextView {
    pub nb: String,
    pub en: String,
}

impl From<&Text> for TextView {
    fn from(t: &Text) -> Self {
        TextView {
            nb: t.nb.clone(),
            en: t.en.clone(),
        }
    }
}

impl TextView {
    pub fn pick(&self, lang: crate::text::Lang) -> &str {
        match lang {
            crate::text::Lang::Nb => &self.nb,
            crate::text::Lang::En => &self.en,
        }
    }
}

/// `{"org": "921429002", "name": "K429 kommune"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrgView {
    pub org: String,
    pub name: Option<String>,
}

/// A dataset's provider: its id in `/data/{provider}/…`, its organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProviderView {
    pub id: Option<String>,
    pub org: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatasetView {
    pub id: String,
    pub title: Option<TextView>,
    pub description: Option<TextView>,
    pub provider: ProviderView,
}

/// A purpose by its policy title. A purpose the policy does not know is
/// "unknown purpose (stated by the organisation)", without the caller's
/// text: what a caller writes never reaches a citizen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PurposeView {
    /// The policy's id of the purpose; null when the policy does not know it.
    pub id: Option<String>,
    /// Whether the policy knows this purpose.
    pub known: bool,
    pub title: TextView,
    pub description: Option<TextView>,
}

/// The organisation from `0192:921429002` or `921429002`, with its name
/// where the policy has one.
pub fn organisation(policy: &Policy, iso6523_or_org: &str) -> OrgView {
    let digits = iso6523_or_org
        .strip_prefix("0192:")
        .unwrap_or(iso6523_or_org);
    let name = OrgNumber::parse(digits)
        .ok()
        .and_then(|o| policy.organisation_name(&o).map(str::to_owned));
    OrgView {
        org: digits.to_owned(),
        name,
    }
}

/// A dataset with its titles and its provider.
pub fn dataset(policy: &Policy, id: &str) -> DatasetView {
    let reference: Option<DatasetRef> = id.parse().ok();
    let found = reference
        .as_ref()
        .and_then(|r| policy.dataset(&r.provider, &r.dataset));
    let provider_id = reference.as_ref().map(|r| r.provider.clone());
    let provider = match provider_id.as_deref().and_then(|p| policy.providers.get(p)) {
        Some(p) => {
            let org = organisation(policy, p.org.as_str());
            ProviderView {
                id: Some(p.id.clone()),
                org: Some(org.org),
                name: org.name,
            }
        }
        None => ProviderView {
            id: provider_id,
            org: None,
            name: None,
        },
    };
    DatasetView {
        id: id.to_owned(),
        title: found.map(|d| TextView::from(&d.title)),
        description: found.map(|d| TextView::from(&d.description)),
        provider,
    }
}

pub fn purpose(policy: &Policy, id: &str) -> PurposeView {
    match policy.purposes.get(id) {
        Some(p) => PurposeView {
            id: Some(p.id.clone()),
            known: true,
            title: TextView::from(&p.title),
            description: Some(TextView::from(&p.description)),
        },
        None => PurposeView {
            id: None,
            known: false,
            title: TextView {
                nb: "ukjent formål (oppgitt av virksomheten)".to_owned(),
                en: "unknown purpose (stated by the organisation)".to_owned(),
            },
            description: None,
        },
    }
}

/// At most this many characters of a requester's message are shown (the
/// consent API takes 500).
pub const MAX_MESSAGE_CHARS: usize = 500;

/// A consent as its citizen sees it: who asked, for which data, what for,
/// until when, how often. The person number is not repeated back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsentView {
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = consent_db::ConsentState))]
    pub status: String,
    pub requester: OrgView,
    pub supplier: Option<OrgView>,
    pub datasets: Vec<DatasetView>,
    pub purpose: PurposeView,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub valid_to: String,
    pub uses: i64,
    pub max_uses: Option<i64>,
    /// The requester's own words to the citizen, as it wrote them (at most
    /// 500 characters, no control characters but line breaks): shown
    /// escaped and labelled as the organisation's message, never as Bru's.
    pub message: Option<String>,
    pub redirect_url: Option<String>,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub created_at: String,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub updated_at: String,
}

pub fn consent(policy: &Policy, row: &ConsentRow) -> ConsentView {
    ConsentView {
        id: row.id.clone(),
        status: row.status.to_string(),
        requester: organisation(policy, &row.requester),
        supplier: row.supplier.as_deref().map(|s| organisation(policy, s)),
        datasets: row
            .datasets
            .iter()
            .map(|d| dataset(policy, &d.to_string()))
            .collect(),
        purpose: purpose(policy, &row.purpose),
        valid_to: row.valid_to.to_string(),
        uses: row.uses.into(),
        max_uses: row.max_uses.map(i64::from),
        message: row
            .message
            .as_deref()
            .map(|m| m.chars().take(MAX_MESSAGE_CHARS).collect()),
        redirect_url: row.redirect_url.clone(),
        created_at: row.created_at.to_string(),
        updated_at: row.updated_at.to_string(),
    }
}

/// Whether `me` may see `row`: it is about me, or about nobody yet (then the
/// link is the invitation, and whoever answers it becomes its subject).
pub fn visible_to(row: &ConsentRow, me: &PersonNumber) -> bool {
    match &row.subject {
        Some(_) => row.is_subject(me),
        None => row.status == ConsentStatus::Pending,
    }
}

/// A citizen's consents in the three groups the pages and the API show.
#[derive(Debug, Default)]
pub struct Grouped<'a> {
    pub active: Vec<&'a ConsentRow>,
    pub pending: Vec<&'a ConsentRow>,
    pub past: Vec<&'a ConsentRow>,
}

pub fn group(rows: &[ConsentRow]) -> Grouped<'_> {
    let mut g = Grouped::default();
    for row in rows {
        match row.status {
            // A paused consent is still the citizen's to resume or revoke.
            ConsentStatus::Granted | ConsentStatus::Paused => g.active.push(row),
            ConsentStatus::Pending => g.pending.push(row),
            _ => g.past.push(row),
        }
    }
    g
}

/// Whose consent a transfer under consent was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConsentOwner {
    /// One of the citizen's own consents.
    Yours,
    /// A consent id the organisation sent that is not one of the citizen's
    /// consents (another person's, or none at all).
    NotYours,
    /// A consent the citizen gave in Altinn (`altinn:{id}`), which Bru
    /// checked against the call's subject: only on allowed calls.
    Altinn,
}

/// One decision about a citizen, as the access log shows it: only what Bru
/// and its policy vouch for, never text a caller wrote (its path, its
/// purpose text, an unknown consent id or method).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransferView {
    pub index: u64,
    pub time: Timestamp,
    pub transfer_id: String,
    pub organisation: Option<OrgView>,
    pub supplier: Option<OrgView>,
    /// The dataset, when the policy knows it.
    pub dataset: Option<DatasetView>,
    /// The purpose by its policy title; null when none was given.
    pub purpose: Option<PurposeView>,
    pub basis: Option<Basis>,
    pub legal_ref: Option<String>,
    /// The consent the call referred to, only when it is the citizen's own.
    pub consent_id: Option<String>,
    /// Whose consent the call referred to, when it referred to one.
    pub consent: Option<ConsentOwner>,
    pub decision: Option<Verdict>,
    pub code: Option<String>,
    /// Why Bru refused, in plain language, following `code`.
    pub reason: Option<TextView>,
    /// The HTTP method, when it is a standard one (else `OTHER`).
    pub method: String,
}

/// Methods shown as they are; any other token a caller sent is `OTHER`.
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// `own_consents`: the ids of the citizen's own consents (their subject is
/// the citizen), which alone are shown as "your consent".
pub fn transfer(
    policy: &Policy,
    r: &AuditRecord,
    own_consents: &std::collections::HashSet<String>,
) -> TransferView {
    let dataset_id = match (&r.provider, &r.dataset) {
        (_, Some(d)) if d.contains('/') => Some(d.clone()),
        (Some(p), Some(d)) => Some(format!("{p}/{d}")),
        _ => None,
    };
    let known_dataset = dataset_id.filter(|id| {
        id.parse::<DatasetRef>()
            .ok()
            .and_then(|d| policy.dataset(&d.provider, &d.dataset))
            .is_some()
    });
    // An Altinn consent was checked to be the subject's only where allowed.
    let altinn = r
        .consent_id
        .as_ref()
        .filter(|id| id.starts_with("altinn:") && r.decision != Some(Verdict::Deny));
    let yours = r
        .consent_id
        .as_ref()
        .filter(|id| own_consents.contains(id.as_str()))
        .or(altinn);
    let reason = (r.decision == Some(Verdict::Deny)).then(|| {
        let (nb, en) = crate::text::refusal_reason(r.code.as_deref());
        TextView {
            nb: nb.to_owned(),
            en: en.to_owned(),
        }
    });
    TransferView {
        index: r.index,
        time: r.time,
        transfer_id: r.transfer_id.clone(),
        organisation: r.consumer.as_deref().map(|c| organisation(policy, c)),
        supplier: r.supplier.as_deref().map(|s| organisation(policy, s)),
        dataset: known_dataset.as_deref().map(|d| dataset(policy, d)),
        purpose: r.purpose.as_deref().map(|p| purpose(policy, p)),
        basis: r.basis,
        legal_ref: r.legal_ref.clone(),
        consent_id: yours.cloned(),
        consent: r.consent_id.as_ref().map(|_| match (yours, altinn) {
            (_, Some(_)) => ConsentOwner::Altinn,
            (Some(_), None) => ConsentOwner::Yours,
            (None, None) => ConsentOwner::NotYours,
        }),
        decision: r.decision,
        code: r.code.clone(),
        reason,
        method: METHODS
            .iter()
            .find(|m| **m == r.method)
            .map_or("OTHER", |m| *m)
            .to_owned(),
    }
}

/// The ids of the citizen's own consents, for [`transfer`].
pub async fn own_consent_ids(
    store: &Store,
    me: &PersonNumber,
) -> Result<std::collections::HashSet<String>, StoreError> {
    Ok(store
        .consents_by_subject(me, Timestamp::now())
        .await?
        .into_iter()
        .map(|row| row.id)
        .collect())
}

/// One page of a citizen's decision records, oldest first.
pub struct TransferPage {
    pub records: Vec<AuditRecord>,
    /// The cursor of the next page, when there is one.
    pub next: Option<u64>,
}

/// The decision records whose `subject_ref` is this citizen's pseudonym,
/// after the cursor, at most `limit`, as `Store::citizen_records` shows them
/// (delayed disclosure left out until its time).
pub async fn transfers(
    store: &Store,
    subject_ref: String,
    after: Option<u64>,
    limit: u32,
) -> Result<TransferPage, StoreError> {
    // The citizen's view: a record of delayed disclosure (SPEC 10) only once
    // its delay has passed. One more than asked tells whether there is a
    // next page.
    let mut records = store
        .citizen_records(
            &subject_ref,
            Some(RecordKind::Decision),
            after,
            limit.saturating_add(1),
        )
        .await?;
    let more = records.len() > limit as usize;
    records.truncate(limit as usize);
    let next = if more {
        records.last().map(|r| r.index)
    } else {
        None
    };
    Ok(TransferPage { records, next })
}
