//! Language and the plain-language bits that depend on it: bokmål by
//! default, English when asked for (`?lang=en`, a cookie, or
//! `Accept-Language`); dates and times in Norwegian time.

use time::{Date, Month, OffsetDateTime, UtcOffset, Weekday};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Nb,
    En,
}

impl Lang {
    /// The BCP 47 tag for `lang` attributes.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Nb => "nb",
            Lang::En => "en",
        }
    }

    pub fn other(self) -> Lang {
        match self {
            Lang::Nb => Lang::En,
            Lang::En => Lang::Nb,
        }
    }

    /// This language's name in itself, for the language switch.
    pub fn own_name(self) -> &'static str {
        match self {
            Lang::Nb => "Norsk (bokmål)",
            Lang::En => "English",
        }
    }

    /// `nb`, `no` and `nn` read bokmål (the portal has no nynorsk yet).
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "nb" | "no" | "nn" => Some(Lang::Nb),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// One of two texts.
    pub fn t(self, nb: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Nb => nb,
            Lang::En => en,
        }
    }

    pub fn pick(self, text: &policy::Text) -> &str {
        match self {
            Lang::Nb => &text.nb,
            Lang::En => &text.en,
        }
    }
}

/// The language of a request: `?lang=` first, then the cookie, then the
/// browser's `Accept-Language` (by q-value), else bokmål.
pub fn negotiate(query: Option<&str>, cookie: Option<&str>, accept_language: Option<&str>) -> Lang {
    if let Some(lang) = query.and_then(Lang::from_tag) {
        return lang;
    }
    if let Some(lang) = cookie.and_then(Lang::from_tag) {
        return lang;
    }
    let mut best: Option<(u16, Lang)> = None;
    for item in accept_language.unwrap_or_default().split(',').take(20) {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or_default();
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .map(|q| (q.trim().parse::<f32>().unwrap_or(0.0).clamp(0.0, 1.0) * 1000.0) as u16)
            .unwrap_or(1000);
        if let Some(lang) = Lang::from_tag(tag) {
            if q > 0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
    }
    best.map(|(_, l)| l).unwrap_or(Lang::Nb)
}

/// Norwegian time: CET, or CEST from the last Sunday of March to the last
/// Sunday of October (01:00 UTC both), as the EU rules say.
pub fn oslo(t: OffsetDateTime) -> OffsetDateTime {
    let utc = t.to_offset(UtcOffset::UTC);
    let year = utc.year();
    let starts = last_sunday(year, Month::March).with_hms(1, 0, 0);
    let ends = last_sunday(year, Month::October).with_hms(1, 0, 0);
    let local = utc.date().with_time(utc.time());
    let summer = match (starts, ends) {
        (Ok(s), Ok(e)) => local >= s && local < e,
        _ => false,
    };
    let hours = if summer { 2 } else { 1 };
    UtcOffset::from_hms(hours, 0, 0)
        .map(|o| utc.to_offset(o))
        .unwrap_or(utc)
}

fn last_sunday(year: i32, month: Month) -> Date {
    let days = time::util::days_in_month(month, year);
    let last = Date::from_calendar_date(year, month, days).unwrap_or(Date::MIN);
    let back = last.weekday().number_days_from_sunday();
    last.checked_sub(time::Duration::days(i64::from(back)))
        .filter(|d| d.weekday() == Weekday::Sunday)
        .unwrap_or(last)
}

const MONTHS_NB: [&str; 12] = [
    "januar",
    "februar",
    "mars",
    "april",
    "mai",
    "juni",
    "juli",
    "august",
    "september",
    "oktober",
    "november",
    "desember",
];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// "23. desember 2026" / "23 December 2026", in Norwegian time.
pub fn date(lang: Lang, t: OffsetDateTime) -> String {
    let t = oslo(t);
    let month = usize::from(u8::from(t.month())).saturating_sub(1);
    match lang {
        Lang::Nb => format!("{}. {} {}", t.day(), MONTHS_NB[month % 12], t.year()),
        Lang::En => format!("{} {} {}", t.day(), MONTHS_EN[month % 12], t.year()),
    }
}

/// "23. desember 2026 kl. 14.05" / "23 December 2026 at 14:05".
pub fn date_time(lang: Lang, t: OffsetDateTime) -> String {
    let local = oslo(t);
    match lang {
        Lang::Nb => format!(
            "{} kl. {:02}.{:02}",
            date(lang, t),
            local.hour(),
            local.minute()
        ),
        Lang::En => format!(
            "{} at {:02}:{:02}",
            date(lang, t),
            local.hour(),
            local.minute()
        ),
    }
}

/// "921 429 002": how Norwegians write organisation numbers.
pub fn org_number(digits: &str) -> String {
    if digits.len() == 9 && digits.bytes().all(|b| b.is_ascii_digit()) {
        format!("{} {} {}", &digits[..3], &digits[3..6], &digits[6..])
    } else {
        digits.to_owned()
    }
}

/// A title in running text: "Søknad om omsorgsbolig" → "søknad om
/// omsorgsbolig", but "NAV-saker" stays as it is.
pub fn in_sentence(title: &str) -> String {
    let mut chars = title.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if first.is_uppercase() && second.is_lowercase() => {
            first.to_lowercase().chain(title.chars().skip(1)).collect()
        }
        _ => title.to_owned(),
    }
}

/// "a", "a og b", "a, b og c" / "a and b".
pub fn list(lang: Lang, items: &[String]) -> String {
    let and = lang.t(" og ", " and ");
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{}{and}{last}", init.join(", ")),
    }
}

/// Why Bru refused a call, in one plain sentence per refusal code of SPEC
/// section 3 (bokmål, English). A code this list does not know gets the
/// general sentence.
pub fn refusal_reason(code: Option<&str>) -> (&'static str, &'static str) {
    match code.unwrap_or_default() {
        "purpose_required" => (
            "Virksomheten oppga ikke hva opplysningene skulle brukes til.",
            "The organisation did not say what the information was for.",
        ),
        "subject_missing" => (
            "Forespørselen sa ikke hvilken person den gjaldt.",
            "The request did not say which person it was about.",
        ),
        "invalid_subject" => (
            "Fødselsnummeret i forespørselen var ikke gyldig.",
            "The national identity number in the request was not valid.",
        ),
        "malformed_request" => (
            "Forespørselen var feil satt sammen.",
            "The request was not put together correctly.",
        ),
        "missing_token" | "invalid_token" | "untrusted_issuer" | "wrong_audience" => (
            "Virksomheten kunne ikke vise hvem den var.",
            "The organisation could not show who it was.",
        ),
        "token_expired" => (
            "Virksomhetens innlogging var utløpt.",
            "The organisation's login had expired.",
        ),
        "insufficient_scope" => (
            "Virksomheten manglet tilgangen som trengs for disse opplysningene.",
            "The organisation lacked the access needed for this information.",
        ),
        "consumer_not_allowed" => (
            "Virksomheten har ikke lov til å hente disse opplysningene.",
            "The organisation is not allowed to fetch this information.",
        ),
        "purpose_not_allowed" => (
            "Formålet virksomheten oppga, er ikke tillatt for disse opplysningene.",
            "The purpose the organisation gave is not allowed for this information.",
        ),
        "consent_required" => (
            "Det trengs ditt samtykke, og virksomheten viste ikke til noe.",
            "Your consent is needed, and the organisation referred to none.",
        ),
        "consent_not_found" => (
            "Samtykket virksomheten viste til, finnes ikke.",
            "The consent the organisation referred to does not exist.",
        ),
        "consent_revoked" => (
            "Samtykket var trukket tilbake.",
            "The consent had been withdrawn.",
        ),
        "consent_expired" => ("Samtykket var utløpt.", "The consent had expired."),
        "consent_exhausted" => ("Samtykket var brukt opp.", "The consent had been used up."),
        "consent_mismatch" => (
            "Samtykket gjaldt ikke disse opplysningene, dette formålet eller denne virksomheten.",
            "The consent did not cover this information, this purpose or this organisation.",
        ),
        "consent_subject_mismatch" => (
            "Samtykket gjaldt en annen person.",
            "The consent was about another person.",
        ),
        "unknown_dataset" => (
            "Opplysningene som ble bedt om, finnes ikke i Bru.",
            "The information asked for does not exist in Bru.",
        ),
        "request_too_large" | "headers_too_large" => {
            ("Forespørselen var for stor.", "The request was too large.")
        }
        "rate_limited" => (
            "Det kom for mange forespørsler på kort tid.",
            "There were too many requests in a short time.",
        ),
        "upstream_error" | "upstream_timeout" => (
            "Tjenesten som har opplysningene, svarte ikke som den skulle.",
            "The service that holds the information did not answer as it should.",
        ),
        "audit_unavailable" => (
            "Bru kunne ikke loggføre forespørselen, og sendte derfor ingenting videre.",
            "Bru could not log the request, and so passed nothing on.",
        ),
        _ => (
            "Reglene for deling tillot det ikke.",
            "The rules for sharing did not allow it.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn negotiates_language() {
        let check = |q: Option<&str>, c: Option<&str>, a: Option<&str>, want: Lang| {
            assert_eq!(negotiate(q, c, a), want, "{q:?} {c:?} {a:?}");
        };
        check(None, None, None, Lang::Nb);
        check(None, None, Some("en-GB,en;q=0.9"), Lang::En);
        check(None, None, Some("en;q=0.5, nb;q=0.8"), Lang::Nb);
        check(None, None, Some("de, en;q=0.3"), Lang::En);
        check(None, None, Some("en;q=0"), Lang::Nb);
        check(None, Some("en"), Some("nb"), Lang::En);
        check(Some("nb"), Some("en"), Some("en"), Lang::Nb);
        check(Some("xx"), None, Some("en"), Lang::En);
    }

    #[test]
    fn formats_dates_in_norwegian_time() {
        // 23:30 UTC in December is already the next day in Oslo (CET).
        let t = datetime!(2026-12-22 23:30 UTC);
        assert_eq!(date(Lang::Nb, t), "23. desember 2026");
        assert_eq!(date(Lang::En, t), "23 December 2026");
        // Summer time: UTC+2.
        assert_eq!(
            date_time(Lang::Nb, datetime!(2026-06-01 12:05 UTC)),
            "1. juni 2026 kl. 14.05"
        );
        assert_eq!(
            date_time(Lang::En, datetime!(2026-01-01 12:05 UTC)),
            "1 January 2026 at 13:05"
        );
        // The switch: last Sunday of March 2026 is the 29th.
        assert_eq!(
            oslo(datetime!(2026-03-29 00:59 UTC)).offset().whole_hours(),
            1
        );
        assert_eq!(
            oslo(datetime!(2026-03-29 01:00 UTC)).offset().whole_hours(),
            2
        );
        assert_eq!(
            oslo(datetime!(2026-10-25 00:59 UTC)).offset().whole_hours(),
            2
        );
        assert_eq!(
            oslo(datetime!(2026-10-25 01:00 UTC)).offset().whole_hours(),
            1
        );
    }

    #[test]
    fn writes_running_text() {
        assert_eq!(
            in_sentence("Søknad om omsorgsbolig"),
            "søknad om omsorgsbolig"
        );
        assert_eq!(in_sentence("NAV-saker"), "NAV-saker");
        assert_eq!(org_number("921429002"), "921 429 002");
        let items = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
        assert_eq!(list(Lang::Nb, &items), "a, b og c");
        assert_eq!(list(Lang::En, &items[..2]), "a and b");
    }

    #[test]
    fn every_refusal_code_has_its_own_reason() {
        // SPEC section 3: the codes a refusal of a call about a citizen can carry.
        let codes = [
            "purpose_required",
            "subject_missing",
            "invalid_subject",
            "malformed_request",
            "insufficient_scope",
            "consumer_not_allowed",
            "purpose_not_allowed",
            "consent_required",
            "consent_not_found",
            "consent_revoked",
            "consent_expired",
            "consent_exhausted",
            "consent_mismatch",
            "consent_subject_mismatch",
            "rate_limited",
        ];
        let general = refusal_reason(Some("no_such_code"));
        let mut seen = std::collections::BTreeSet::new();
        for code in codes {
            let reason = refusal_reason(Some(code));
            assert_ne!(reason, general, "{code} has no reason of its own");
            assert!(seen.insert(reason), "{code} shares its reason");
            assert!(reason.0.ends_with('.') && reason.1.ends_with('.'));
        }
        // A wrong purpose or a missing scope is not "not allowed".
        assert_ne!(
            refusal_reason(Some("purpose_not_allowed")),
            refusal_reason(Some("consumer_not_allowed"))
        );
        assert_eq!(refusal_reason(None), general);
    }
}
