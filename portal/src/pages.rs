//! The portal's pages, server-rendered with maud (every value escaped),
//! with no script and no inline style: the CSS is `/static/portal.css`.
//!
//! Written for a citizen who may be 79 and on a phone: one main heading,
//! short sentences, large buttons, every action one button.

use consent_db::{Basis, ConsentEvent, EventType, Timestamp, Verdict};
use maud::{html, Markup, DOCTYPE};
use time::OffsetDateTime;

use crate::text::{self, Lang};
use crate::view::{ConsentOwner, ConsentView, DatasetView, OrgView, TransferView};

/// Which menu item the page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Home,
    Consents,
    Transfers,
    Represent,
    Blocks,
    Notifications,
    None,
}

/// What every page needs to know about the request.
pub struct Ctx<'a> {
    pub lang: Lang,
    /// The path of this page, for the language switch.
    pub path: &'a str,
    pub nav: Nav,
    /// The session's CSRF token, when someone is logged in (for "log out").
    pub csrf: Option<&'a str>,
    /// Whom the page acts for, when not the citizen themself (SPEC 9.3).
    pub acting: Option<crate::acting::Acting>,
}

pub fn layout(ctx: &Ctx<'_>, title: &str, body: Markup) -> Markup {
    layout_with(ctx, title, None, body)
}

/// The layout, with the page going on to `refresh_to` by itself (a meta
/// refresh: no script).
fn layout_with(ctx: &Ctx<'_>, title: &str, refresh_to: Option<&str>, body: Markup) -> Markup {
    let l = ctx.lang;
    let other = l.other();
    html! {
        (DOCTYPE)
        html lang=(l.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " – Bru" }
                @if let Some(url) = refresh_to {
                    meta http-equiv="refresh" content={ "0; url=" (url) };
                }
                link rel="stylesheet" href="/static/portal.css";
            }
            body {
                a.skip href="#main" { (l.t("Hopp til hovedinnholdet", "Skip to main content")) }
                header.site {
                    div.wrap.bar {
                        a.brand href="/" {
                            span.logo { "Bru" }
                            span.tagline { (l.t("Samtykke og innsyn", "Consent and access log")) }
                        }
                        a.lang href={ (ctx.path) "?lang=" (other.code()) } lang=(other.code()) hreflang=(other.code()) {
                            (other.own_name())
                        }
                    }
                    @if ctx.csrf.is_some() {
                        nav.wrap aria-label=(l.t("Hovedmeny", "Main menu")) {
                            ul.menu {
                                li { a href="/samtykke" aria-current=[(ctx.nav == Nav::Consents).then_some("page")] {
                                    (l.t("Mine samtykker", "My consents")) } }
                                li { a href="/innsyn" aria-current=[(ctx.nav == Nav::Transfers).then_some("page")] {
                                    (l.t("Hvem har hentet opplysninger om meg", "Who has fetched my data")) } }
                                li { a href="/sperringer" aria-current=[(ctx.nav == Nav::Blocks).then_some("page")] {
                                    (l.t("Sperringer", "Blocks")) } }
                                li { a href="/varsler" aria-current=[(ctx.nav == Nav::Notifications).then_some("page")] {
                                    (l.t("Varsler", "Notifications")) } }
                                li { a href="/representer" aria-current=[(ctx.nav == Nav::Represent).then_some("page")] {
                                    (l.t("Representer noen andre", "Act for someone else")) } }
                                li {
                                    form.inline method="post" action="/logg-ut" {
                                        input type="hidden" name="csrf" value=(ctx.csrf.unwrap_or_default());
                                        button.link type="submit" { (l.t("Logg ut", "Log out")) }
                                    }
                                }
                            }
                        }
                    }
                }
                main #main tabindex="-1" {
                    div.wrap {
                        @if let Some(a) = &ctx.acting {
                            // On every page, before anything else: whose data this is.
                            div.acting role="region" aria-label=(l.t("Du representerer", "You are acting for")) {
                                p {
                                    (l.t("Du handler nå på vegne av ", "You are now acting for "))
                                    strong { (a.name) }
                                    " (" (basis_label(l, a.basis)) "). "
                                    a href="/representer" { (l.t("Bytt person", "Change person")) }
                                }
                            }
                        }
                        (body)
                    }
                }
                footer.site {
                    div.wrap {
                        p { (l.t(
                            "Bru er tjenesten som kommunen og statlige etater bruker når de deler opplysninger om deg. Alt som hentes, blir loggført.",
                            "Bru is the service that the municipality and state agencies use when they share information about you. Everything fetched is logged."
                        )) }
                    }
                }
            }
        }
    }
}

/// A message at the top of a page: what just happened, or why.
pub enum Notice {
    Info(String),
    Error(String),
}

fn notice(n: Option<&Notice>) -> Markup {
    html! {
        @match n {
            Some(Notice::Info(text)) => div.notice.info role="status" { p { (text) } },
            Some(Notice::Error(text)) => div.notice.error role="alert" { p { (text) } },
            None => {},
        }
    }
}

// ---- home ---------------------------------------------------------------------

pub fn home(ctx: &Ctx<'_>, note: Option<&Notice>, login_path: Option<&str>) -> Markup {
    let l = ctx.lang;
    let title = l.t("Samtykke og innsyn", "Consent and access log");
    let body = html! {
        h1 { (title) }
        (notice(note))
        p.lead { (l.t(
            "Kommunen, NAV og helsetjenesten deler noen ganger opplysninger om deg med hverandre. De gjør det gjennom Bru.",
            "The municipality, NAV and the health services sometimes share information about you with each other. They do it through Bru."
        )) }
        h2 { (l.t("Her kan du", "Here you can")) }
        ul.plain {
            li { (l.t("svare ja eller nei når noen ber om å få hente opplysninger om deg", "answer yes or no when someone asks to fetch information about you")) }
            li { (l.t("trekke tilbake et samtykke du har gitt", "withdraw a consent you have given")) }
            li { (l.t("se hvem som har hentet opplysninger om deg, og hvorfor", "see who has fetched information about you, and why")) }
        }
        @if ctx.csrf.is_some() {
            p { (l.t("Du er logget inn.", "You are logged in.")) }
            p.actions {
                a.button.primary href="/samtykke" { (l.t("Se samtykkene dine", "See your consents")) }
                a.button href="/innsyn" { (l.t("Se hvem som har hentet opplysninger", "See who has fetched information")) }
            }
        } @else {
            @match login_path {
                Some(path) => {
                    p.actions { a.button.primary href=(path) { (l.t("Logg inn med ID-porten", "Log in with ID-porten")) } }
                    p.hint { (l.t(
                        "Du logger inn med BankID, MinID eller en annen elektronisk ID, slik du gjør hos NAV og Skatteetaten.",
                        "You log in with BankID, MinID or another electronic ID, as you do with NAV and the Tax Administration."
                    )) }
                }
                None => p { (l.t("Innlogging er ikke satt opp på denne Bru-en.", "Login is not set up on this Bru.")) },
            }
        }
    };
    layout(ctx, title, body)
}

// ---- consents -----------------------------------------------------------------

fn status_label(lang: Lang, status: &str) -> &'static str {
    match status {
        "pending" => lang.t("Venter på svaret ditt", "Waiting for your answer"),
        "granted" => lang.t("Aktivt", "Active"),
        "paused" => lang.t("Satt på pause", "Paused"),
        "rejected" => lang.t("Du sa nei", "You said no"),
        "revoked" => lang.t("Trukket tilbake", "Withdrawn"),
        "expired" => lang.t("Utløpt", "Expired"),
        _ => lang.t("Ukjent", "Unknown"),
    }
}

fn org_name(o: &OrgView) -> String {
    o.name.clone().unwrap_or_else(|| text::org_number(&o.org))
}

/// "K429 kommune (org.nr. 921 429 002)".
fn org_with_number(lang: Lang, o: &OrgView) -> Markup {
    html! {
        (org_name(o)) " "
        span.orgnr { "(" (lang.t("org.nr.", "org. no.")) " " (text::org_number(&o.org)) ")" }
    }
}

fn dataset_title(lang: Lang, d: &DatasetView) -> String {
    d.title
        .as_ref()
        .map(|t| t.pick(lang).to_owned())
        .unwrap_or_else(|| d.id.clone())
}

fn provider_name(d: &DatasetView) -> String {
    d.provider
        .name
        .clone()
        .or_else(|| d.provider.org.as_deref().map(text::org_number))
        .or_else(|| d.provider.id.clone())
        .unwrap_or_default()
}

fn purpose_title(lang: Lang, v: &ConsentView) -> String {
    v.purpose.title.pick(lang).to_owned()
}

fn time_of(s: &str) -> Option<OffsetDateTime> {
    Timestamp::parse(s).ok().map(|t| t.as_datetime())
}

/// The request in one plain sentence: "K429 kommune ber om lov til å hente
/// inntekt fra NAV til søknad om omsorgsbolig. Samtykket gjelder til 23.
/// desember 2026."
pub fn sentence(lang: Lang, v: &ConsentView) -> String {
    let who = match &v.supplier {
        Some(s) => format!(
            "{} ({} {})",
            org_name(&v.requester),
            lang.t("gjennom", "through"),
            org_name(s)
        ),
        None => org_name(&v.requester),
    };
    let items: Vec<String> = v
        .datasets
        .iter()
        .map(|d| {
            format!(
                "{} {} {}",
                text::in_sentence(&dataset_title(lang, d)),
                lang.t("fra", "from"),
                provider_name(d)
            )
        })
        .collect();
    let what = text::list(lang, &items);
    let purpose = text::in_sentence(&purpose_title(lang, v));
    let until = time_of(&v.valid_to)
        .map(|t| text::date(lang, t))
        .unwrap_or_default();
    // The last change of a rejected or revoked consent is the citizen's answer.
    let changed = time_of(&v.updated_at)
        .map(|t| text::date(lang, t))
        .unwrap_or_default();
    match (lang, v.status.as_str()) {
        (Lang::Nb, "pending") => format!("{who} ber om lov til å hente {what} til {purpose}. Samtykket gjelder til {until}."),
        (Lang::En, "pending") => format!("{who} asks for permission to fetch {what} for: {purpose}. The consent is valid until {until}."),
        (Lang::Nb, "granted") => format!("{who} har lov til å hente {what} til {purpose}. Samtykket gjelder til {until}."),
        (Lang::En, "granted") => format!("{who} may fetch {what} for: {purpose}. The consent is valid until {until}."),
        (Lang::Nb, "expired") => format!("{who} ba om lov til å hente {what} til {purpose}. Samtykket gjaldt til {until}."),
        (Lang::En, "expired") => format!("{who} asked for permission to fetch {what} for: {purpose}. The consent was valid until {until}."),
        (Lang::Nb, "revoked") => format!("{who} ba om lov til å hente {what} til {purpose}. Du trakk tilbake samtykket {changed}."),
        (Lang::En, "revoked") => format!("{who} asked for permission to fetch {what} for: {purpose}. You withdrew the consent on {changed}."),
        (Lang::Nb, "rejected") => format!("{who} ba om lov til å hente {what} til {purpose}. Du sa nei {changed}."),
        (Lang::En, "rejected") => format!("{who} asked for permission to fetch {what} for: {purpose}. You said no on {changed}."),
        (Lang::Nb, _) => format!("{who} ba om lov til å hente {what} til {purpose}."),
        (Lang::En, _) => format!("{who} asked for permission to fetch {what} for: {purpose}."),
    }
}

fn uses_text(lang: Lang, v: &ConsentView) -> String {
    let who = org_name(&v.requester);
    let so_far = match (lang, v.uses) {
        (Lang::Nb, 0) => "De er ikke hentet ennå.".to_owned(),
        (Lang::En, 0) => "It has not been fetched yet.".to_owned(),
        (Lang::Nb, 1) => "Så langt er de hentet én gang.".to_owned(),
        (Lang::En, 1) => "So far it has been fetched once.".to_owned(),
        (Lang::Nb, n) => format!("Så langt er de hentet {n} ganger."),
        (Lang::En, n) => format!("So far it has been fetched {n} times."),
    };
    let limit = match (lang, v.max_uses) {
        (Lang::Nb, Some(1)) => format!("{who} kan hente opplysningene én gang."),
        (Lang::En, Some(1)) => format!("{who} may fetch the information once."),
        (Lang::Nb, Some(n)) => format!("{who} kan hente opplysningene høyst {n} ganger."),
        (Lang::En, Some(n)) => format!("{who} may fetch the information at most {n} times."),
        (Lang::Nb, None) => {
            format!("Det er ingen grense for hvor mange ganger {who} kan hente opplysningene.")
        }
        (Lang::En, None) => {
            format!("There is no limit to how many times {who} may fetch the information.")
        }
    };
    format!("{limit} {so_far}")
}

/// The list page: pending first (they need an answer), then active, then past.
pub fn consents(
    ctx: &Ctx<'_>,
    pending: &[ConsentView],
    active: &[ConsentView],
    past: &[ConsentView],
) -> Markup {
    let l = ctx.lang;
    let title = l.t("Mine samtykker", "My consents");
    let list = |items: &[ConsentView], empty: &'static str| {
        html! {
            @if items.is_empty() {
                p.empty { (empty) }
            } @else {
                ul.cards {
                    @for v in items {
                        li.card {
                            h3 { a href={ "/samtykke/" (v.id) } { (org_name(&v.requester)) ": " (purpose_title(l, v)) } }
                            p { (sentence(l, v)) }
                            p.status { span.badge.(v.status) { (status_label(l, &v.status)) } }
                        }
                    }
                }
            }
        }
    };
    let body = html! {
        h1 { (title) }
        section aria-labelledby="pending-h" {
            h2 #pending-h { (l.t("Venter på svar fra deg", "Waiting for your answer")) }
            (list(pending, l.t("Ingen venter på svar fra deg.", "Nobody is waiting for your answer.")))
        }
        section aria-labelledby="active-h" {
            h2 #active-h { (l.t("Aktive samtykker", "Active consents")) }
            (list(active, l.t("Du har ingen aktive samtykker.", "You have no active consents.")))
        }
        section aria-labelledby="past-h" {
            h2 #past-h { (l.t("Tidligere", "Earlier")) }
            (list(past, l.t("Ingen tidligere samtykker.", "No earlier consents.")))
        }
    };
    layout(ctx, title, body)
}

/// A representative's basis in plain words.
pub fn basis_label(lang: Lang, basis: policy::represent::Basis) -> &'static str {
    match basis {
        policy::represent::Basis::Parent => lang.t("som forelder", "as a parent"),
        policy::represent::Basis::Guardian => lang.t("som verge", "as a guardian"),
        policy::represent::Basis::Fullmakt => lang.t("med fullmakt", "with power of attorney"),
    }
}

/// Who took a consent event, when it was not the person themself.
fn actor_label(lang: Lang, actor: &str) -> Option<&'static str> {
    match actor {
        "parent" => Some(lang.t(
            "gjort av en forelder på dine vegne",
            "done by a parent on your behalf",
        )),
        "guardian" => Some(lang.t(
            "gjort av vergen din på dine vegne",
            "done by your guardian on your behalf",
        )),
        "fullmakt" => Some(lang.t(
            "gjort av en med fullmakt fra deg",
            "done by someone holding your power of attorney",
        )),
        _ => None,
    }
}

/// "Representer noen andre": myself, and everyone I may act for.
pub fn switcher(
    ctx: &Ctx<'_>,
    list: &[crate::acting::Represented],
    current: Option<&str>,
) -> Markup {
    let l = ctx.lang;
    let title = l.t("Representer noen andre", "Act for someone else");
    let csrf = ctx.csrf.unwrap_or_default();
    let body = html! {
        h1 { (title) }
        p { (l.t(
            "Du kan se og svare på samtykker for barn du har foreldreansvar for, og for personer du er verge for eller har fullmakt fra. Alt du gjør, blir loggført med at du gjorde det for dem.",
            "You can see and answer consents for children you have parental responsibility for, and for people you are a guardian for or hold a power of attorney from. Everything you do is logged as done on their behalf."
        )) }
        ul.people {
            li {
                form method="post" action="/representer" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="party" value="";
                    button.button.(if current.is_none() { "primary" } else { "" }) type="submit" aria-pressed=(if current.is_none() { "true" } else { "false" }) {
                        (l.t("Meg selv", "Myself"))
                    }
                }
            }
            @for r in list {
                li {
                    form method="post" action="/representer" {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="party" value=(r.party);
                        @let chosen = current == Some(r.party.as_str());
                        button.button.(if chosen { "primary" } else { "" }) type="submit" aria-pressed=(if chosen { "true" } else { "false" }) {
                            (r.name) " (" (basis_label(l, r.relation.basis())) ")"
                        }
                    }
                }
            }
        }
        @if list.is_empty() {
            p { (l.t(
                "Vi fant ingen du kan representere.",
                "We found no one you can act for."
            )) }
        }
    };
    layout(ctx, title, body)
}

fn event_label(lang: Lang, kind: EventType) -> &'static str {
    match kind {
        EventType::Created => lang.t("Forespørselen kom", "The request arrived"),
        EventType::Accepted => lang.t("Du sa ja", "You said yes"),
        EventType::Rejected => lang.t("Du sa nei", "You said no"),
        EventType::Revoked => lang.t("Du trakk tilbake samtykket", "You withdrew the consent"),
        EventType::Expired => lang.t("Samtykket utløp", "The consent expired"),
        EventType::Used => lang.t("Opplysninger ble hentet", "Information was fetched"),
        EventType::Paused => lang.t("Du satte samtykket på pause", "You paused the consent"),
        EventType::Resumed => lang.t("Du tok samtykket i bruk igjen", "You resumed the consent"),
    }
}

/// The confirmation after an answer (`accept`, `reject`, `revoke`), naming
/// whom it was for when a representative gave it.
pub fn answered(lang: Lang, done: &str, for_whom: Option<&str>) -> Option<String> {
    let l = lang;
    Some(match (done, for_whom) {
        ("accept", None) => l
            .t(
                "Takk. Du har gitt samtykke.",
                "Thank you. You have given your consent.",
            )
            .to_owned(),
        ("accept", Some(name)) => format!(
            "{}{name}.",
            l.t(
                "Takk. Du har gitt samtykke på vegne av ",
                "Thank you. You have given consent on behalf of "
            )
        ),
        ("reject", None) => l
            .t(
                "Du har sagt nei. Ingen kan hente opplysningene med denne forespørselen.",
                "You have said no. Nobody can fetch the information with this request.",
            )
            .to_owned(),
        ("reject", Some(name)) => format!(
            "{}{name}{}",
            l.t(
                "Du har sagt nei på vegne av ",
                "You have said no on behalf of "
            ),
            l.t(
                ". Ingen kan hente opplysningene med denne forespørselen.",
                ". Nobody can fetch the information with this request."
            )
        ),
        ("revoke", None) => l
            .t(
                "Samtykket er trukket tilbake. Ingen kan bruke det lenger.",
                "The consent is withdrawn. Nobody can use it any more.",
            )
            .to_owned(),
        ("revoke", Some(name)) => format!(
            "{}{name}{}",
            l.t(
                "Du har trukket tilbake samtykket på vegne av ",
                "You have withdrawn the consent on behalf of "
            ),
            l.t(
                ". Ingen kan bruke det lenger.",
                ". Nobody can use it any more."
            )
        ),
        _ => return None,
    })
}

/// One consent: who, which data from whom, what for, until when, how often;
/// and the one button (or two) that answers it.
pub fn consent(
    ctx: &Ctx<'_>,
    v: &ConsentView,
    events: &[ConsentEvent],
    actors: &[consent_db::EventActor],
    note: Option<&Notice>,
    return_link: Option<&str>,
) -> Markup {
    let l = ctx.lang;
    let title = match v.status.as_str() {
        "pending" => l.t("Forespørsel om samtykke", "Request for consent"),
        _ => l.t("Samtykke", "Consent"),
    };
    let csrf = ctx.csrf.unwrap_or_default();
    let action = |name: &'static str, label: String, class: &'static str| {
        html! {
            form method="post" action={ "/samtykke/" (v.id) } {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="action" value=(name);
                button.button.(class) type="submit" { (label) }
            }
        }
    };
    // Acting for someone, every button says for whom (SPEC 9.3).
    let for_whom = ctx.acting.as_ref().map(|a| a.name.as_str());
    let label =
        |own: (&'static str, &'static str), theirs: (&'static str, &'static str)| -> String {
            match for_whom {
                None => l.t(own.0, own.1).to_owned(),
                Some(name) => format!("{}{name}", l.t(theirs.0, theirs.1)),
            }
        };
    let body = html! {
        h1 { (title) }
        (notice(note))
        p.status { span.badge.(v.status) { (status_label(l, &v.status)) } }
        p.lead { (sentence(l, v)) }
        @if let Some(description) = v.purpose.description.as_ref() {
            p { (description.pick(l)) }
        }
        @if v.status == "pending" {
            div.answer {
                h2 { (label(("Ditt svar", "Your answer"), ("Ditt svar på vegne av ", "Your answer on behalf of "))) }
                @if let Some(name) = for_whom {
                    p { (l.t("Du svarer for ", "You answer for ")) strong { (name) } (l.t(
                        ". Svaret ditt gjelder opplysninger om dem, og det blir loggført at du ga det.",
                        ". Your answer is about their information, and it is logged that you gave it.")) }
                } @else {
                    p { (l.t("Du bestemmer selv. Sier du nei, kan du fortsatt søke, men du må da gi opplysningene selv.",
                             "It is up to you. If you say no, you can still apply, but you will then have to provide the information yourself.")) }
                }
                div.buttons {
                    (action("accept", label(("Ja, jeg samtykker", "Yes, I consent"),
                        ("Ja, jeg samtykker på vegne av ", "Yes, I consent on behalf of ")), "primary"))
                    (action("reject", label(("Nei, jeg samtykker ikke", "No, I do not consent"),
                        ("Nei, jeg samtykker ikke på vegne av ", "No, I do not consent on behalf of ")), "secondary"))
                }
            }
        }
        @if v.status == "granted" {
            div.answer {
                h2 { (l.t("Trekk tilbake", "Withdraw")) }
                p { (l.t("Du kan trekke tilbake samtykket når du vil. Da kan ingen hente opplysningene med dette samtykket lenger.",
                         "You can withdraw the consent whenever you like. Then nobody can fetch the information with this consent any more.")) }
                div.buttons { (action("revoke", label(("Trekk tilbake samtykket", "Withdraw the consent"),
                    ("Trekk tilbake samtykket på vegne av ", "Withdraw the consent on behalf of ")), "danger")) }
            }
        }
        (pause_section(ctx, v))
        @if let Some(url) = return_link {
            p.actions { a.button href=(url) { (l.t("Gå tilbake til ", "Go back to ")) (org_name(&v.requester)) } }
        }
        h2 { (l.t("Detaljer", "Details")) }
        dl.details {
            dt { (l.t("Hvem spør", "Who is asking")) }
            dd {
                (org_with_number(l, &v.requester))
                @if let Some(s) = &v.supplier {
                    br;
                    (l.t("gjennom leverandøren ", "through the vendor ")) (org_with_number(l, s))
                }
            }
            dt { (l.t("Hvilke opplysninger", "Which information")) }
            dd {
                ul.plain {
                    @for d in &v.datasets {
                        li {
                            strong { (dataset_title(l, d)) }
                            " " (l.t("fra", "from")) " " (provider_name(d))
                            @if let Some(org) = d.provider.org.as_deref() {
                                " " span.orgnr { "(" (l.t("org.nr.", "org. no.")) " " (text::org_number(org)) ")" }
                            }
                            @if let Some(desc) = d.description.as_ref() { br; (desc.pick(l)) }
                        }
                    }
                }
            }
            dt { (l.t("Hva opplysningene skal brukes til", "What the information will be used for")) }
            dd { (purpose_title(l, v)) }
            dt { (l.t("Gjelder til", "Valid until")) }
            dd { (time_of(&v.valid_to).map(|t| text::date(l, t)).unwrap_or_default()) }
            dt { (l.t("Hvor mange ganger", "How many times")) }
            dd { (uses_text(l, v)) }
            @if let Some(message) = v.message.as_deref() {
                // The requester's own words, escaped and marked as theirs.
                dt { (l.t("Melding fra ", "Message from ")) (org_name(&v.requester)) }
                dd.message {
                    p.hint { (l.t("Skrevet av virksomheten, ikke av Bru:", "Written by the organisation, not by Bru:")) }
                    blockquote { (message) }
                }
            }
        }
        @if !events.is_empty() {
            h2 { (l.t("Historikk", "History")) }
            ol.history {
                @for (seq, e) in events.iter().enumerate() {
                    li {
                        (text::date_time(l, e.at.as_datetime())) ": " (event_label(l, e.kind))
                        @if let Some(by) = actors.iter().find(|a| a.seq == seq as i64).and_then(|a| actor_label(l, &a.actor)) {
                            " (" (by) ")"
                        }
                    }
                }
            }
        }
        p { a href="/samtykke" { (l.t("Tilbake til alle samtykkene dine", "Back to all your consents")) } }
    };
    layout(ctx, title, body)
}

// ---- access log ------------------------------------------------------------------

/// Where the reader is in a paged list.
pub struct Paging {
    /// 1 is the newest page.
    pub page: usize,
    pub per_page: usize,
    /// How many there are (of those read, when `truncated`).
    pub total: usize,
    /// More exist than were read: only the newest are counted and shown.
    pub truncated: bool,
}

/// "Viser 1–20 av 57" / "Showing 1–20 of 57".
pub fn count_text(lang: Lang, p: &Paging, shown: usize) -> String {
    let from = (p.page - 1) * p.per_page + 1;
    let to = from + shown - 1;
    match lang {
        Lang::Nb => format!("Viser {from}–{to} av {}", p.total),
        Lang::En => format!("Showing {from}–{to} of {}", p.total),
    }
}

/// The legal basis of a transfer: "your consent" (with its link) only for
/// one of the citizen's own consents.
fn basis(l: Lang, t: &TransferView) -> Markup {
    html! {
        @match (t.basis, t.consent, t.consent_id.as_deref()) {
            (Some(Basis::Consent), Some(ConsentOwner::Yours), Some(id)) => {
                a href={ "/samtykke/" (id) } { (l.t("Ditt samtykke", "Your consent")) }
            }
            (Some(Basis::Consent), Some(ConsentOwner::Altinn), Some(id)) => {
                (l.t("Ditt samtykke, gitt i Altinn", "Your consent, given in Altinn"))
                " (" (id.trim_start_matches("altinn:")) ")"
            }
            (Some(Basis::Consent), Some(_), _) => (l.t(
                "Samtykke som virksomheten viste til, men som ikke er ditt",
                "A consent the organisation referred to, which is not yours",
            )),
            (Some(Basis::Consent), None, _) => (l.t("Samtykke (ikke oppgitt)", "Consent (none given)")),
            (Some(Basis::Statutory), _, _) => {
                (l.t("Lov", "Law")) @if let Some(r) = t.legal_ref.as_deref() { ": " (r) }
            }
            (None, _, _) => (l.t("Ukjent", "Unknown")),
        }
    }
}

/// One transfer's facts, as a description list.
pub(crate) fn transfer_details(l: Lang, t: &TransferView) -> Markup {
    html! {
        dl.details {
            dt { (l.t("Hvem", "Who")) }
            dd {
                @match &t.organisation {
                    Some(o) => (org_with_number(l, o)),
                    None => (l.t("Ukjent (ikke logget inn)", "Unknown (not logged in)")),
                }
                @if let Some(s) = &t.supplier {
                    br; (l.t("gjennom leverandøren ", "through the vendor ")) (org_with_number(l, s))
                }
            }
            dt { (l.t("Hvilke opplysninger", "Which information")) }
            dd {
                @match &t.dataset {
                    Some(d) => {
                        (dataset_title(l, d)) " " (l.t("fra", "from")) " " (provider_name(d))
                        @if let Some(org) = d.provider.org.as_deref() {
                            " " span.orgnr { "(" (l.t("org.nr.", "org. no.")) " " (text::org_number(org)) ")" }
                        }
                    }
                    None => (l.t("Ukjent", "Unknown")),
                }
            }
            dt { (l.t("Formål", "Purpose")) }
            dd {
                @match &t.purpose {
                    Some(p) => (p.title.pick(l)),
                    None => (l.t("Ikke oppgitt", "Not given")),
                }
            }
            dt { (l.t("Grunnlag", "Legal basis")) }
            dd { (basis(l, t)) }
            dt { (l.t("Resultat", "Outcome")) }
            dd {
                @if t.decision == Some(Verdict::Allow) {
                    span.badge.granted { (l.t("Tillatt", "Allowed")) }
                } @else {
                    span.badge.rejected { (l.t("Avvist", "Refused")) }
                    @if let Some(reason) = &t.reason { " " (reason.pick(l)) }
                }
            }
        }
    }
}

/// Recomputes the root from a downloaded proof (RFC 8785 for the record's
/// strings, integers and nulls is sorted keys without spaces; RFC 9162
/// 2.1.3.2 for the path) and compares it with the checkpoint's third line.
const CHECK_SCRIPT: &str = r#"import base64, hashlib, json, sys
p = json.load(open(sys.argv[1]))
H = lambda b: hashlib.sha256(b).digest()
leaf = json.dumps(p["record"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
r, i, n = H(b"\0" + leaf.encode()), p["index"], p["size"] - 1
for s in map(base64.b64decode, p["hashes"]):
    if i % 2 or i == n:
        r = H(b"\1" + s + r)
        while i % 2 == 0 and i:
            i, n = i >> 1, n >> 1
    else:
        r = H(b"\1" + r + s)
    i, n = i >> 1, n >> 1
root = base64.b64decode(p["checkpoint"].split("\n")[2])
print("OK" if n == 0 and r == root else "FAIL")"#;

/// What the proof page says about the proof (from the newest checkpoint).
pub struct ProofFacts {
    /// The checkpoint's tree size.
    pub size: u64,
    pub time: Timestamp,
    /// The checkpoint's origin line (the log's name).
    pub origin: String,
    /// How many hashes the proof has.
    pub hashes: usize,
    /// Whether Bru's own check of the proof holds.
    pub holds: bool,
    /// The witnesses that cosigned the checkpoint (their key names).
    pub cosigners: Vec<String>,
}

/// One record's inclusion proof, explained: what is proven, against which
/// checkpoint, how to check it; the raw proof as a download.
pub fn proof(
    ctx: &Ctx<'_>,
    t: &TransferView,
    facts: Option<&ProofFacts>,
    public_url: &str,
) -> Markup {
    let l = ctx.lang;
    let title = l.t(
        "Bevis for at hendelsen er loggført",
        "Proof that the event is logged",
    );
    let raw = format!("/citizen/v1/transfers/{}/proof", t.index);
    let base = public_url.trim_end_matches('/');
    let body = html! {
        h1 { (title) }
        p.lead { (l.t(
            "Bru skriver hver forespørsel om deg inn i en logg som ikke kan endres i ettertid uten at det synes. Her er beviset for at denne hendelsen står i loggen.",
            "Bru writes every request about you into a log that cannot be changed afterwards without it showing. Here is the proof that this event is in the log."
        )) }
        h2 { (l.t("Hendelsen", "The event")) }
        p { (text::date_time(l, t.time.as_datetime())) }
        (transfer_details(l, t))
        @match facts {
            Some(f) => {
                h2 { (l.t("Hva beviset viser", "What the proof shows")) }
                p { (match l {
                    Lang::Nb => format!("Hendelsen er nummer {} i loggen. Beviset viser at den er med i loggen slik den var da Bru signerte sjekkpunktet under, med {} hendelser i alt.", t.index, f.size),
                    Lang::En => format!("The event is number {} in the log. The proof shows that it is in the log as it was when Bru signed the checkpoint below, with {} events in all.", t.index, f.size),
                }) }
                @if f.holds {
                    p { span.badge.granted { (l.t("Kontrollert", "Checked")) } " " (l.t("Bru har kontrollert beviset mot sjekkpunktet: det stemmer.", "Bru has checked the proof against the checkpoint: it holds.")) }
                } @else {
                    p { span.badge.rejected { (l.t("Ikke kontrollert", "Not checked")) } " " (l.t("Bru fikk ikke kontrollert beviset nå. Du kan kontrollere det selv, som beskrevet under.", "Bru could not check the proof now. You can check it yourself, as described below.")) }
                }
                h2 { (l.t("Sjekkpunktet", "The checkpoint")) }
                dl.details {
                    dt { (l.t("Logg", "Log")) }
                    dd { (f.origin) }
                    dt { (l.t("Antall hendelser (trestørrelse)", "Number of events (tree size)")) }
                    dd { (f.size) }
                    dt { (l.t("Signert", "Signed")) }
                    dd { (text::date_time(l, f.time.as_datetime())) }
                    dt { (l.t("Hasher i beviset", "Hashes in the proof")) }
                    dd { (f.hashes) }
                }
                (proof_explained(l, t, f))
                h2 { (l.t("Slik kontrollerer du det selv", "How to check it yourself")) }
                p { (l.t(
                    "Du trenger ikke stole på Bru. Last ned beviset. Det inneholder hendelsen, beviset og sjekkpunktet. Sjekkpunktet er en signert merknad (C2SP signed note) med Bru sin offentlige nøkkel, og beviset er et inklusjonsbevis etter RFC 9162: hashen av hendelsen, kombinert med hashene i beviset, skal gi rothashen i sjekkpunktet.",
                    "You need not trust Bru. Download the proof. It holds the event, the proof and the checkpoint. The checkpoint is a signed note (C2SP signed note) with Bru's public key, and the proof is an inclusion proof as RFC 9162 describes: the event's hash, combined with the hashes of the proof, must give the checkpoint's root hash."
                )) }
                p.actions {
                    a.button.primary href=(raw) download={ "bru-bevis-" (t.index) ".json" } type="application/json" {
                        (l.t("Last ned beviset (JSON)", "Download the proof (JSON)"))
                    }
                }
                p { (l.t(
                    "For eksempel med dette lille Python-programmet (lagre det som kontroller.py). Det regner ut rothashen fra hendelsen og beviset og sammenligner med sjekkpunktet:",
                    "For example with this small Python program (save it as check.py). It computes the root hash from the event and the proof and compares it with the checkpoint:"
                )) }
                pre.code tabindex="0" { code { (CHECK_SCRIPT) } }
                pre.code tabindex="0" { code { "python3 " (l.t("kontroller.py", "check.py")) " bru-bevis-" (t.index) ".json" } }
                p.hint { (l.t(
                    "Sjekkpunktets signatur kontrollerer du med nøkkelen i beviset (checkpoint_key), som også står på ",
                    "You check the checkpoint's signature with the key in the proof (checkpoint_key), which is also at "
                )) (base) "/.well-known/jwks.json." }
            }
            None => {
                div.notice.info role="status" { p { (l.t(
                    "Hendelsen er så ny at Bru ikke har signert et sjekkpunkt for den ennå. Prøv igjen om et sekund.",
                    "The event is so new that Bru has not signed a checkpoint for it yet. Try again in a second."
                )) } }
            }
        }
        p { a href="/innsyn" { (l.t("Tilbake til hvem som har hentet opplysninger om deg", "Back to who has fetched your data")) } }
    };
    layout(ctx, title, body)
}

/// After a logout from Bru: on to the OpenID provider's logout, by itself.
pub fn leaving(ctx: &Ctx<'_>, url: &str) -> Markup {
    let l = ctx.lang;
    let title = l.t("Du er logget ut av Bru", "You are logged out of Bru");
    let body = html! {
        h1 { (title) }
        p { (l.t("Nå logger vi deg ut av ID-porten også.", "Now we log you out of ID-porten too.")) }
        p.actions { a.button.primary href=(url) { (l.t("Fortsett", "Continue")) } }
    };
    layout_with(ctx, title, Some(url), body)
}

// ---- demo login and errors -----------------------------------------------------------

/// The demo ID-porten: pick one of the demo persons.
pub fn demo_picker(
    ctx: &Ctx<'_>,
    persons: &[crate::DemoPerson],
    fullmakter: &[crate::DemoFullmakt],
    state: &str,
) -> Markup {
    let l = ctx.lang;
    let title = l.t("Logg inn (demo av ID-porten)", "Log in (demo of ID-porten)");
    let body = html! {
        h1 { (title) }
        p.lead { (l.t(
            "Dette er en demo. I stedet for BankID velger du hvem du vil være.",
            "This is a demo. Instead of BankID, you choose who you want to be."
        )) }
        form method="post" action="/demo/idporten/login" {
            input type="hidden" name="csrf" value=(state);
            fieldset {
                legend { (l.t("Hvem vil du logge inn som?", "Who do you want to log in as?")) }
                @for (i, p) in persons.iter().enumerate() {
                    div.choice {
                        input type="radio" name="pid" id={ "person-" (i) } value=(p.pid) checked[i == 0];
                        label for={ "person-" (i) } { (p.name) }
                    }
                }
                @for (i, f) in fullmakter.iter().enumerate() {
                    div.choice {
                        input type="radio" name="pid" id={ "fullmakt-" (i) } value={ "fullmakt-" (i) };
                        label for={ "fullmakt-" (i) } {
                            (f.holder_name) (l.t(", på vegne av ", ", on behalf of ")) (f.owner_name)
                            " (" (l.t("fullmakt", "power of attorney")) ": " (f.roles.join(", ")) ")"
                        }
                    }
                }
            }
            button.button.primary type="submit" { (l.t("Logg inn", "Log in")) }
        }
    };
    layout(ctx, title, body)
}

pub fn error(ctx: &Ctx<'_>, title: &str, message: &str, retry: Option<&str>) -> Markup {
    let l = ctx.lang;
    let body = html! {
        h1 { (title) }
        div.notice.error role="alert" { p { (message) } }
        p.actions {
            @if let Some(path) = retry { a.button.primary href=(path) { (l.t("Prøv igjen", "Try again")) } }
            a.button href="/" { (l.t("Til forsiden", "To the front page")) }
        }
    };
    layout(ctx, title, body)
}

/// The buttons on a consent's page: pause a granted consent, resume a paused
/// one. Each leads to a confirmation page first.
pub fn pause_section(ctx: &Ctx<'_>, v: &ConsentView) -> Markup {
    let l = ctx.lang;
    html! {
        @if v.status == "granted" {
            div.answer {
                h2 { (l.t("Sett på pause", "Pause")) }
                p { (l.t(
                    "Vil du stoppe bruken en stund uten å trekke tilbake samtykket? Sett det på pause. Da kan ingen hente opplysningene før du tar det i bruk igjen.",
                    "Do you want to stop the use for a while without withdrawing the consent? Pause it. Then nobody can fetch the information until you resume it."
                )) }
                p.actions { a.button href={ "/samtykke/" (v.id) "/pause" } { (l.t("Sett samtykket på pause", "Pause the consent")) } }
            }
        }
        @if v.status == "paused" {
            div.answer {
                h2 { (l.t("Samtykket er satt på pause", "The consent is paused")) }
                p { (l.t(
                    "Ingen kan hente opplysningene med dette samtykket nå. Du kan ta det i bruk igjen, eller trekke det tilbake for godt.",
                    "Nobody can fetch the information with this consent now. You can resume it, or withdraw it for good."
                )) }
                p.actions {
                    a.button.primary href={ "/samtykke/" (v.id) "/gjenoppta" } { (l.t("Ta samtykket i bruk igjen", "Resume the consent")) }
                }
                form method="post" action={ "/samtykke/" (v.id) } {
                    input type="hidden" name="csrf" value=(ctx.csrf.unwrap_or_default());
                    input type="hidden" name="action" value="revoke";
                    button.button.danger type="submit" { (l.t("Trekk tilbake samtykket", "Withdraw the consent")) }
                }
            }
        }
    }
}

/// What was proven, in three plain sentences: the entry, the signed state at
/// a time, and who cosigned it.
pub fn proof_explained(l: Lang, t: &TransferView, f: &ProofFacts) -> Markup {
    let signed = text::date_time(l, f.time.as_datetime());
    html! {
        h2 { (l.t("Kort fortalt", "In short")) }
        ul.plain.proven {
            li { (match l {
                Lang::Nb => format!("Denne hendelsen er oppføring nummer {} i Bru sin logg.", t.index),
                Lang::En => format!("This event is entry number {} of Bru's log.", t.index),
            }) }
            li { (match l {
                Lang::Nb => format!("Loggen slik den så ut {signed}, med {} oppføringer, er signert av Bru, og den inneholder denne hendelsen uendret.", f.size),
                Lang::En => format!("The log as it was at {signed}, with {} entries, is signed by Bru, and it holds this event unchanged.", f.size),
            }) }
            @if f.cosigners.is_empty() {
                li { (l.t(
                    "Ingen uavhengige vitner har medsignert dette sjekkpunktet.",
                    "No independent witnesses have cosigned this checkpoint."
                )) }
            } @else {
                li {
                    (l.t(
                        "Uavhengige vitner har kontrollert at loggen bare har vokst, ikke blitt endret, og medsignert den: ",
                        "Independent witnesses have checked that the log has only grown, not changed, and cosigned it: "
                    ))
                    (f.cosigners.join(", ")) "."
                }
            }
        }
    }
}
