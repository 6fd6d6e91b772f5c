//! Citizen protections in the data plane (SPEC 10): how a refusal that
//! depends on them becomes its `Failure`.

use policy::{ConsentFact, Dataset, DenyCode, SubjectBlock, SubjectFact};

use crate::app::App;
use crate::problem::Failure;

/// The subject's blocks, where the dataset lets them apply and the call is
/// about a person; read from the store on every such call, so a new block
/// holds from the next call on at every replica. A store that cannot answer
/// refuses the call (503), its cause in the log.
pub async fn blocks(
    app: &App,
    dataset: &Dataset,
    subject: &SubjectFact,
) -> Result<Vec<SubjectBlock>, Failure> {
    let SubjectFact::Valid(person) = subject else {
        return Ok(Vec::new());
    };
    if !dataset.blockable {
        return Ok(Vec::new());
    }
    let stored = app
        .store
        .blocks(&app.keys.pseudonym.subject_ref(person))
        .await
        .map_err(|e| {
            tracing::error!(error = %crate::api_error::Chain(&e), "blocks could not be read; the call is refused");
            Failure::AuditUnavailable
        })?;
    // A stored block that does not read as one is a fault, not "no block":
    // the call is refused (fails closed), its cause in the log.
    stored
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
        .collect()
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
