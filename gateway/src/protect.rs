//! Citizen protections in the data plane (SPEC 10): how a refusal that
//! depends on them becomes its `Failure`.

use policy::{ConsentFact, DenyCode};

use crate::problem::Failure;

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
