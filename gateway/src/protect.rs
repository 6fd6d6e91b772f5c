//! Citizen protections in the data plane (SPEC 10): how a refusal that
//! depends on them becomes its `Failure`.

use policy::{ConsentFact, Dataset, DenyCode, SubjectBlock, SubjectFact};

use crate::app::App;
use crate::problem::Failure;

/// The subject's blocks, where the dataset lets them apply and the call is
/// about a person, and whether they came from the cache
/// ([`App::block_cache`]): `fresh` reads the store. A decision on cached
/// blocks is written only if no block covers it in its record's own
/// transaction, so a new block holds from the next call on at every replica.
/// A store that cannot answer refuses the call (503), its cause in the log.
pub async fn blocks(
    app: &App,
    dataset: &Dataset,
    subject: &SubjectFact,
    fresh: bool,
) -> Result<(Vec<SubjectBlock>, bool), Failure> {
    let SubjectFact::Valid(person) = subject else {
        return Ok((Vec::new(), false));
    };
    if !dataset.blockable {
        return Ok((Vec::new(), false));
    }
    let subject_ref = app.keys.pseudonym.subject_ref(person);
    let cached = if fresh {
        None
    } else {
        app.block_cache.get(&subject_ref)
    };
    let from_cache = cached.is_some();
    let stored = match cached {
        Some(blocks) => blocks,
        None => {
            let blocks = app.store.blocks(&subject_ref).await.map_err(|e| {
                tracing::error!(error = %crate::api_error::Chain(&e), "blocks could not be read; the call is refused");
                Failure::AuditUnavailable
            })?;
            app.block_cache.put(&subject_ref, blocks.clone());
            blocks
        }
    };
    // A stored block that does not read as one is a fault, not "no block":
    // the call is refused (fails closed), its cause in the log.
    let blocks = stored
        .into_iter()
        .map(|b| match (b.consumer, b.dataset) {
            (Some(c), _) => c
                .strip_prefix("0192:")
                .and_then(|n| policy::OrgNumber::parse(n).ok())
                .map(SubjectBlock::Consumer),
            (None, Some(d)) => d.parse().ok().map(SubjectBlock::Dataset),
            (None, None) => None,
        }
        .ok_or_else(|| {
            tracing::error!("a stored block names neither a known consumer nor a dataset; the call is refused");
            Failure::AuditUnavailable
        }))
        .collect::<Result<_, _>>()?;
    Ok((blocks, from_cache))
}

/// The failure of a refused call. A spent frequency is 429 with the seconds
/// until the oldest use in the period leaves it (at least 1: the period is
/// rolling, so the answer is never "now").
pub fn denied(code: DenyCode, consent: &ConsentFact, now: time::OffsetDateTime) -> Failure {
    if code != DenyCode::ConsentFrequencyExceeded {
        return Failure::Denied(code);
    }
    let frees_at = match consent {
        ConsentFact::Found(c) => c.frequency.and_then(|f| f.frees_at),
        _ => None,
    };
    let retry_after_s = frees_at
        .map(|t| (t - now).whole_seconds().max(1))
        .and_then(|s| u64::try_from(s).ok())
        .unwrap_or(1);
    Failure::ConsentFrequencyExceeded { retry_after_s }
}

/// `Bru-Break-Glass: <reason>` (SPEC 10): an emergency call passes a block
/// of the subject's, on a dataset whose policy has `break_glass = true`.
pub const BREAK_GLASS_HEADER: &str = "bru-break-glass";

/// The longest reason kept, in bytes: a sentence or two ("Akutt: pasienten
/// svarer ikke på døra, hjemmesykepleien går inn"), far below any header
/// limit. A longer one is refused rather than cut, so the caller knows what
/// was recorded.
pub const MAX_BREAK_GLASS_BYTES: usize = consent_db::MAX_REASON_BYTES;

/// The reason of a `Bru-Break-Glass` header, checked and scrubbed for the
/// record (the subject's number reads `{subject}`, anyone else's
/// `{person}`); `None` without the header. Refused (400) when it is sent
/// twice, empty, longer than [`MAX_BREAK_GLASS_BYTES`], not UTF-8, holds a
/// control or bidirectional-override character, or the dataset does not
/// allow break-glass: a caller who means to break the glass is told at once
/// that it cannot, instead of being answered as if it had.
pub fn break_glass_reason(
    headers: &http::HeaderMap,
    dataset: &Dataset,
    subject: &SubjectFact,
) -> Result<Option<String>, Failure> {
    let mut values = headers.get_all(BREAK_GLASS_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Failure::MalformedRequest(
            "Bru-Break-Glass is given more than once; send one reason",
        ));
    }
    if !dataset.break_glass {
        return Err(Failure::MalformedRequest(
            "this dataset does not allow break-glass: its policy has no break_glass = true, so \
             Bru-Break-Glass passes nothing here; send the call without it",
        ));
    }
    let reason = std::str::from_utf8(value.as_bytes())
        .map_err(|_| Failure::MalformedRequest("the Bru-Break-Glass reason is not UTF-8 text"))?
        .trim();
    if reason.is_empty() {
        return Err(Failure::MalformedRequest(
            "Bru-Break-Glass needs a reason: say why the emergency lets the call pass the \
             person's block",
        ));
    }
    if reason.len() > MAX_BREAK_GLASS_BYTES {
        return Err(Failure::MalformedRequest(
            "the Bru-Break-Glass reason is longer than 256 bytes; say it shorter",
        ));
    }
    if reason.chars().any(hidden_char) {
        return Err(Failure::MalformedRequest(
            "the Bru-Break-Glass reason holds a control or direction-changing character",
        ));
    }
    let number = match subject {
        SubjectFact::Valid(p) => Some(p.expose()),
        _ => None,
    };
    Ok(Some(consent_db::scrub_text(reason, number).into_owned()))
}

/// A character a reader of the reason would not see as written: controls
/// (C0, DEL, C1) and the bidirectional overrides and isolates that reorder
/// what is shown (Unicode TR 9; "Trojan Source", CVE-2021-42574).
fn hidden_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// What an allowed call's records carry of break-glass: the reason, where
/// the decision passed a block with it (counted in `bru_break_glass_total`
/// once the decision record is written); nothing otherwise, also when the
/// header came with no block to pass.
pub fn passed_block(passed: bool, reason: Option<&str>) -> Option<String> {
    reason.filter(|_| passed).map(str::to_owned)
}

/// `bru explain`'s lines about SPEC 10 for `consumer` on `dataset`.
pub fn explain(
    policy: &policy::Policy,
    consumer: &policy::OrgNumber,
    dataset: &Dataset,
) -> Vec<String> {
    let id = &dataset.id;
    let mut lines = vec![match (dataset.blockable, dataset.break_glass) {
        (false, _) => format!("{id} is not blockable: a person's blocks do not apply to it"),
        (true, false) => format!(
            "{id} is blockable: a person who blocked the consumer or {id} is refused \
             (blocked_by_subject); break-glass is not allowed"
        ),
        (true, true) => format!(
            "{id} is blockable, and allows break-glass: a call with Bru-Break-Glass: <reason> \
             passes a person's block (and nothing else), is recorded with the reason, counted \
             in bru_break_glass_total and told to the person at once"
        ),
    }];
    let rule = policy.consumer(consumer);
    lines.push(match rule.and_then(|r| r.disclosure_delay_days) {
        Some(days) => format!(
            "delayed disclosure: the person's access log shows calls by {consumer} only \
                 {days} days after their time (disclosure_delay_days = {days}); the audit API \
                 shows them at once"
        ),
        None => "the person's access log shows calls at once (no disclosure_delay_days)".to_owned(),
    });
    lines
}

/// Counts a break-glass call whose decision record is written, in
/// `bru_break_glass_total{consumer, dataset}`: organisation and dataset,
/// never the person or the reason.
pub fn count_break_glass(app: &App, caller: &policy::Caller, dataset: &Dataset) {
    app.metrics
        .observe_break_glass(&caller.consumer.iso6523(), &dataset.name);
    tracing::warn!(
        consumer = %caller.consumer.iso6523(),
        dataset = %dataset.id,
        "a call passed a person's block with Bru-Break-Glass"
    );
}
