//! Notifications as a citizen is shown them (SPEC 10): built once from a
//! stored notification and the policy, so the citizen API, the portal's
//! inbox page and the event sent to the operator's notification service say
//! the same thing. Only what Bru vouches for: organisation names and dataset
//! titles from the policy, the event and the time; never text a caller
//! wrote. A break-glass call's reason is such text: it stays in the audit
//! record for the security team (`/audit/v1/records`), and the citizen is
//! told in Bru's words that emergency access was used, by whom, to what,
//! when, and that it is logged (and reviewed, where the policy's snooping
//! rule for break-glass is on), as hospitals' access logs do (the
//! "beslutningsmal" is shown, never the free text).

use consent_db::{Notification, NotificationKind, Verdict};
use policy::Policy;
use serde::Serialize;

use crate::text::{self, Lang};
use crate::view::{self, DatasetView, OrgView, TextView};

/// "About to expire" (SPEC 10): a granted consent that ends within this.
pub const EXPIRING_WITHIN: time::Duration = time::Duration::days(7);

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationView {
    /// Stable: the same notification always has the same id.
    pub id: String,
    /// `transfer`, `break_glass`, `consent_event` or `consent_expiring`.
    pub kind: String,
    /// When it happened (a delayed transfer: its original time).
    pub time: consent_db::Timestamp,
    /// The organisation that fetched, asked, or holds the consent.
    pub organisation: Option<OrgView>,
    pub datasets: Vec<DatasetView>,
    /// A transfer's decision.
    pub decision: Option<Verdict>,
    /// A consent event's type (`created`, `accepted`, `revoked`, …).
    pub event: Option<String>,
    /// A consent notification's consent.
    pub consent_id: Option<String>,
    /// What happened, in Bru's words.
    pub text: TextView,
}

/// The view of `n`.
pub fn notification(policy: &Policy, n: &Notification) -> NotificationView {
    let organisation = n.consumer.as_deref().map(|c| view::organisation(policy, c));
    let datasets: Vec<DatasetView> = n
        .datasets
        .iter()
        .map(|d| view::dataset(policy, d))
        .collect();
    // A break-glass call is reviewed where the policy's snooping rule for
    // it is on (the default): each one is a finding for the security team.
    let reviewed = policy.snooping.break_glass;
    let text = TextView {
        nb: sentence(Lang::Nb, n, organisation.as_ref(), &datasets, reviewed),
        en: sentence(Lang::En, n, organisation.as_ref(), &datasets, reviewed),
    };
    NotificationView {
        id: n.id.clone(),
        kind: n.kind.as_str().to_owned(),
        time: n.at,
        organisation,
        datasets,
        decision: n.decision,
        event: n.event.clone(),
        consent_id: n.consent_id.clone(),
        text,
    }
}

fn org_name(lang: Lang, org: Option<&OrgView>) -> String {
    match org {
        Some(OrgView {
            name: Some(name), ..
        }) => name.clone(),
        Some(o) => format!(
            "{} {}",
            lang.t("organisasjonen", "the organisation"),
            text::org_number(&o.org)
        ),
        None => lang
            .t("en ukjent organisasjon", "an unknown organisation")
            .to_owned(),
    }
}

fn dataset_names(lang: Lang, datasets: &[DatasetView]) -> String {
    let names: Vec<String> = datasets
        .iter()
        .map(|d| match &d.title {
            Some(t) => text::in_sentence(t.pick(lang)),
            None => d.id.clone(),
        })
        .collect();
    if names.is_empty() {
        lang.t("opplysninger", "information").to_owned()
    } else {
        text::list(lang, &names)
    }
}

/// What happened, in one or two short sentences (a break-glass call: a few
/// more, all Bru's; `reviewed`: the policy has security review it).
pub fn sentence(
    lang: Lang,
    n: &Notification,
    org: Option<&OrgView>,
    datasets: &[DatasetView],
    reviewed: bool,
) -> String {
    let who = org_name(lang, org);
    let what = dataset_names(lang, datasets);
    match n.kind {
        NotificationKind::Transfer => match n.decision {
            Some(Verdict::Deny) => match lang {
                Lang::Nb => format!("{who} ba om {what} om deg, men fikk nei."),
                Lang::En => format!("{who} asked for {what} about you and was refused."),
            },
            _ => match lang {
                Lang::Nb => format!("{who} hentet {what} om deg."),
                Lang::En => format!("{who} fetched {what} about you."),
            },
        },
        NotificationKind::BreakGlass => {
            let when = text::date_time(lang, n.at.as_datetime());
            match lang {
                Lang::Nb => format!(
                    "{who} brukte nødtilgang og hentet {what} om deg den {when}, selv om du har sperret det. \
                     Nødtilgang kan bare brukes i en nødsituasjon, på opplysninger der reglene tillater det. {} \
                     Du kan be {who} om en forklaring.",
                    if reviewed {
                        "Bruken er logget og blir kontrollert."
                    } else {
                        "Bruken er logget."
                    }
                ),
                Lang::En => format!(
                    "{who} used emergency access (break-glass) and fetched {what} about you on {when}, although you have blocked it. \
                     Emergency access may only be used in an emergency, for information where the rules allow it. {} \
                     You can ask {who} for an explanation.",
                    if reviewed {
                        "This use is logged and will be reviewed."
                    } else {
                        "This use is logged."
                    }
                ),
            }
        }
        NotificationKind::ConsentExpiring => match lang {
            Lang::Nb => format!("Samtykket ditt til {who} for {what} utløper innen 7 dager."),
            Lang::En => format!("Your consent for {who} to fetch {what} ends within 7 days."),
        },
        NotificationKind::ConsentEvent => {
            let event = n.event.as_deref().unwrap_or_default();
            match (lang, event) {
                (Lang::Nb, "created") => format!(
                    "{who} ber om samtykke til å hente {what}. Forespørselen venter på svar fra deg."
                ),
                (Lang::En, "created") => format!(
                    "{who} asks for your consent to fetch {what}. The request is waiting for your answer."
                ),
                (Lang::Nb, "accepted") => format!("Du ga {who} samtykke til å hente {what}."),
                (Lang::En, "accepted") => format!("You gave {who} consent to fetch {what}."),
                (Lang::Nb, "rejected") => format!("Du sa nei til at {who} kan hente {what}."),
                (Lang::En, "rejected") => format!("You said no to {who} fetching {what}."),
                (Lang::Nb, "revoked") => format!("Samtykket til {who} for {what} er trukket tilbake."),
                (Lang::En, "revoked") => format!("The consent for {who} to fetch {what} was withdrawn."),
                (Lang::Nb, "expired") => format!("Samtykket til {who} for {what} har utløpt."),
                (Lang::En, "expired") => format!("The consent for {who} to fetch {what} has ended."),
                (Lang::Nb, "paused") => format!("Samtykket til {who} for {what} er satt på pause."),
                (Lang::En, "paused") => format!("The consent for {who} to fetch {what} is paused."),
                (Lang::Nb, "resumed") => format!("Samtykket til {who} for {what} gjelder igjen."),
                (Lang::En, "resumed") => format!("The consent for {who} to fetch {what} applies again."),
                (Lang::Nb, _) => format!("Samtykket til {who} for {what} er endret."),
                (Lang::En, _) => format!("The consent for {who} to fetch {what} changed."),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use consent_db::Timestamp;

    fn break_glass() -> Notification {
        Notification {
            id: "transfer-7".into(),
            kind: NotificationKind::BreakGlass,
            subject_ref: Some("ref".into()),
            consent_id: None,
            consent_subject: None,
            event: None,
            record_index: Some(7),
            consumer: Some("0192:921429002".into()),
            datasets: vec!["helsenorge/hjemmetjeneste".into()],
            decision: Some(Verdict::Allow),
            code: None,
            at: Timestamp::parse("2026-12-04T10:00:00.000Z").unwrap(),
            visible_at: Timestamp::parse("2026-12-04T10:00:00.000Z").unwrap(),
            attempts: 0,
        }
    }

    #[test]
    fn a_break_glass_call_is_told_in_bru_s_words_in_both_languages() {
        let policy = policy::parse_policy("policy.toml", "").unwrap();
        let v = notification(&policy, &break_glass());
        assert_eq!(v.kind, "break_glass");
        assert!(v.text.nb.contains("nødtilgang"), "{}", v.text.nb);
        assert!(v.text.en.contains("emergency access"), "{}", v.text.en);
        // When, in Norwegian time, and that it is reviewed (the policy's
        // snooping rule for break-glass is on by default).
        assert!(
            v.text.nb.contains("4. desember 2026 kl. 11.00"),
            "{}",
            v.text.nb
        );
        assert!(
            v.text.en.contains("4 December 2026 at 11:00"),
            "{}",
            v.text.en
        );
        assert!(v.text.nb.contains("blir kontrollert"), "{}", v.text.nb);
        assert!(v.text.en.contains("will be reviewed"), "{}", v.text.en);
        // An organisation the policy does not name is shown by its number.
        assert!(v.text.en.contains("921 429 002"), "{}", v.text.en);
    }

    #[test]
    fn a_break_glass_notice_never_holds_the_caller_s_reason() {
        let policy = policy::parse_policy("policy.toml", "").unwrap();
        // The reason is in the audit record only; nothing the notice is
        // built from carries it, and the view serialises no such member.
        let v = notification(&policy, &break_glass());
        let json = serde_json::to_value(&v).unwrap();
        assert!(json.get("reason").is_none(), "{json}");
        for lang in [&v.text.nb, &v.text.en] {
            assert!(
                !lang.contains('«') && !lang.contains('“'),
                "quotes a caller: {lang}"
            );
        }
    }

    #[test]
    fn without_the_snooping_rule_the_notice_does_not_promise_a_review() {
        let policy =
            policy::parse_policy("policy.toml", "[snooping]\nbreak_glass = false\n").unwrap();
        assert!(!policy.snooping.break_glass);
        let v = notification(&policy, &break_glass());
        assert!(v.text.nb.contains("Bruken er logget."), "{}", v.text.nb);
        assert!(!v.text.nb.contains("kontrollert"), "{}", v.text.nb);
        assert!(!v.text.en.contains("reviewed"), "{}", v.text.en);
    }
}
