//! The citizen's protections in the portal (SPEC 10): pausing and resuming
//! a consent (with a confirmation step), blocks (`/sperringer`), the access
//! log grouped by month with filters (`/innsyn`), and a transfer's proof as
//! a readable page (`/innsyn/{index}/bevis`).
//!
//! Every read and change goes through the same store calls as the citizen
//! JSON API (`citizen_action`, `add_block`/`blocks`/`delete_block` under the
//! keyed pseudonym, `view::transfers`, which leaves out what a disclosure
//! delay still hides).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use consent_db::{Timestamp, Verdict};
use maud::{html, Markup};
use serde::Deserialize;

use crate::pages::{self, Ctx, Nav, Notice};
use crate::text::{self, Lang};
use crate::view::{self, TransferView};
use crate::{
    forbidden, form_ok, html as page, is_consent_id, language, not_found, represent, require,
    see_other, store_failed, store_failed_for, LangQuery, Portal,
};

/// The access log shows this many decisions to a page.
const PER_PAGE: usize = 20;
/// Records read from the store per round.
const READ_PAGE: u32 = 500;
/// A citizen with more records than this is shown the first of these.
const MAX_READ: usize = 20_000;

// ---- pause and resume ----------------------------------------------------------------

/// The notice after a pause or a resume.
pub fn done_notice(lang: Lang, done: &str) -> Option<Notice> {
    match done {
        "pause" => Some(Notice::Info(
            lang.t(
                "Samtykket er satt på pause. Ingen kan bruke det før du tar det i bruk igjen.",
                "The consent is paused. Nobody can use it until you resume it.",
            )
            .to_owned(),
        )),
        "resume" => Some(Notice::Info(
            lang.t("Samtykket er i bruk igjen.", "The consent is in use again.")
                .to_owned(),
        )),
        _ => None,
    }
}

/// `GET /samtykke/{id}/pause`: are you sure?
pub async fn confirm_pause(
    portal: State<Arc<Portal>>,
    headers: HeaderMap,
    id: Path<String>,
    query: Result<Query<LangQuery>, QueryRejection>,
) -> Response {
    confirm(portal, headers, id, query, "pause").await
}

/// `GET /samtykke/{id}/gjenoppta`: are you sure?
pub async fn confirm_resume(
    portal: State<Arc<Portal>>,
    headers: HeaderMap,
    id: Path<String>,
    query: Result<Query<LangQuery>, QueryRejection>,
) -> Response {
    confirm(portal, headers, id, query, "resume").await
}

async fn confirm(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<LangQuery>, QueryRejection>,
    action: &'static str,
) -> Response {
    let query = query.map(|q| q.0).unwrap_or_default();
    let (lang, lang_cookie) = language(&headers, &query);
    if !is_consent_id(&id) {
        return see_other("/samtykke", &[]);
    }
    let segment = if action == "pause" {
        "pause"
    } else {
        "gjenoppta"
    };
    let path = format!("/samtykke/{id}/{segment}");
    let (session, me, acting) = match require(&portal, &headers, lang, &path).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let row = match portal
        .deps
        .store
        .get_consent_at(&id, Timestamp::now())
        .await
    {
        Ok(Some(row)) if row.is_subject(&me) => row,
        Ok(_) => return not_found(lang, &session, &path, represent::shown(&acting)),
        Err(e) => return store_failed_for(lang, &path, &e, represent::shown(&acting)),
    };
    let v = view::consent(&portal.deps.policy, &row);
    // Only a granted consent pauses, only a paused one resumes.
    let fits = matches!(
        (action, v.status.as_str()),
        ("pause", "granted") | ("resume", "paused")
    );
    if !fits {
        return see_other(&format!("/samtykke/{id}"), &[]);
    }
    let ctx = Ctx {
        lang,
        path: &path,
        nav: Nav::Consents,
        csrf: Some(&session.csrf),
        acting: crate::represent::shown(&acting),
    };
    let l = lang;
    let (title, explain, button) = if action == "pause" {
        (
            l.t("Sette samtykket på pause?", "Pause the consent?"),
            l.t(
                "Mens samtykket er på pause, kan ingen hente opplysningene med det. Samtykket gjelder fortsatt, og du kan ta det i bruk igjen når du vil. Vil du at det skal slutte for godt, trekker du det tilbake i stedet.",
                "While the consent is paused, nobody can fetch the information with it. The consent still stands, and you can resume it whenever you like. If you want it to end for good, withdraw it instead.",
            ),
            l.t("Ja, sett på pause", "Yes, pause it"),
        )
    } else {
        (
            l.t("Ta samtykket i bruk igjen?", "Resume the consent?"),
            l.t(
                "Da kan virksomheten igjen hente opplysningene med dette samtykket, slik du ga lov til, og til samtykket utløper.",
                "Then the organisation can again fetch the information with this consent, as you allowed, until the consent expires.",
            ),
            l.t("Ja, ta i bruk igjen", "Yes, resume it"),
        )
    };
    let body = html! {
        h1 { (title) }
        p.lead { (pages::sentence(l, &v)) }
        p { (explain) }
        div.buttons {
            form method="post" action={ "/samtykke/" (v.id) } {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="action" value=(action);
                button.button.primary type="submit" { (button) }
            }
            a.button href={ "/samtykke/" (v.id) } { (l.t("Nei, gå tilbake", "No, go back")) }
        }
    };
    page(
        StatusCode::OK,
        pages::layout(&ctx, title, body),
        &[lang_cookie],
    )
}

// ---- blocks ------------------------------------------------------------------

#[derive(Deserialize, Default)]
pub struct BlocksQuery {
    lang: Option<String>,
    utfort: Option<String>,
}

/// An organisation or a dataset the citizen can block, as the form offers it.
struct Choice {
    /// `org:921429002` or `dataset:nav/inntekt`.
    value: String,
    label: String,
}

/// The organisations that may call datasets (the policy's consumers), by name.
fn organisations(portal: &Portal) -> Vec<Choice> {
    let policy = &portal.deps.policy;
    let mut seen = std::collections::BTreeSet::new();
    let mut out: Vec<Choice> = policy
        .consumers
        .iter()
        .filter(|c| seen.insert(c.consumer.as_str().to_owned()))
        .map(|c| {
            let org = view::organisation(policy, c.consumer.as_str());
            Choice {
                value: format!("org:{}", org.org),
                label: match &org.name {
                    Some(n) => format!("{n} ({})", text::org_number(&org.org)),
                    None => text::org_number(&org.org),
                },
            }
        })
        .collect();
    out.sort_by(|a, b| a.label.cmp(&b.label));
    out
}

/// The datasets a block can apply to (`blockable` in policy).
fn datasets(portal: &Portal, lang: Lang) -> Vec<Choice> {
    let policy = &portal.deps.policy;
    policy
        .datasets
        .values()
        .filter(|d| d.blockable)
        .map(|d| {
            let v = view::dataset(policy, &d.id.to_string());
            let provider = v
                .provider
                .name
                .clone()
                .unwrap_or_else(|| d.id.provider.clone());
            Choice {
                value: format!("dataset:{}", d.id),
                label: format!(
                    "{} {} {provider}",
                    d.title.pick_lang(lang),
                    lang.t("fra", "from")
                ),
            }
        })
        .collect()
}

trait PickLang {
    fn pick_lang(&self, lang: Lang) -> &str;
}

impl PickLang for policy::Text {
    fn pick_lang(&self, lang: Lang) -> &str {
        match lang {
            Lang::Nb => &self.nb,
            Lang::En => &self.en,
        }
    }
}

/// `GET /sperringer`: my blocks, and forms to add one.
pub async fn blocks(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    query: Result<Query<BlocksQuery>, QueryRejection>,
) -> Response {
    let query = query.map(|q| q.0).unwrap_or_default();
    let (lang, lang_cookie) = language(
        &headers,
        &LangQuery {
            lang: query.lang.clone(),
        },
    );
    let path = "/sperringer";
    let (session, me, acting) = match require(&portal, &headers, lang, path).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let subject_ref = portal.deps.pseudonyms.subject_ref(&me);
    let list = match portal.deps.store.blocks(&subject_ref).await {
        Ok(list) => list,
        Err(e) => return store_failed(lang, path, &e),
    };
    let l = lang;
    let note = match query.utfort.as_deref() {
        Some("lagt-til") => Some(Notice::Info(
            l.t(
                "Sperringen gjelder fra nå av.",
                "The block applies from now on.",
            )
            .to_owned(),
        )),
        Some("fjernet") => Some(Notice::Info(
            l.t("Sperringen er fjernet.", "The block is removed.")
                .to_owned(),
        )),
        Some("ugyldig") => Some(Notice::Error(
            l.t(
                "Velg en virksomhet eller en type opplysninger fra listen.",
                "Choose an organisation or a kind of information from the list.",
            )
            .to_owned(),
        )),
        _ => None,
    };
    let ctx = Ctx {
        lang,
        path,
        nav: Nav::Blocks,
        csrf: Some(&session.csrf),
        acting: crate::represent::shown(&acting),
    };
    let policy = &portal.deps.policy;
    let title = l.t("Sperringer", "Blocks");
    let orgs = organisations(&portal);
    let sets = datasets(&portal, l);
    let body = html! {
        h1 { (title) }
        (notice(note.as_ref()))
        p.lead { (l.t(
            "Du kan sperre en virksomhet eller en type opplysninger. Da sier Bru nei når noen ber om opplysninger om deg som sperringen gjelder.",
            "You can block an organisation or a kind of information. Then Bru says no when someone asks for information about you that the block covers."
        )) }
        p { (l.t(
            "Noen opplysninger kan loven kreve at blir delt likevel. Helsepersonell kan i en nødsituasjon gå forbi en sperring når reglene tillater det. De må da oppgi en grunn, som blir logget for kontroll, og du får beskjed med en gang.",
            "The law may require some information to be shared all the same. In an emergency, health personnel may pass a block where the rules allow it. They must then give a reason, which is logged for review, and you are told at once."
        )) }
        h2 { (l.t("Dine sperringer", "Your blocks")) }
        @if list.is_empty() {
            p.empty { (l.t("Du har ingen sperringer.", "You have no blocks.")) }
        } @else {
            ul.cards {
                @for b in &list {
                    li.card {
                        h3 {
                            @if let Some(c) = &b.consumer {
                                @let org = view::organisation(policy, c);
                                (org.name.clone().unwrap_or_else(|| text::org_number(&org.org)))
                            }
                            @if let Some(d) = &b.dataset {
                                @let v = view::dataset(policy, d);
                                (v.title.as_ref().map(|t| t.pick(l).to_owned()).unwrap_or_else(|| d.clone()))
                            }
                        }
                        p {
                            @if b.consumer.is_some() {
                                (l.t("Virksomheten kan ikke hente opplysninger om deg gjennom Bru.", "The organisation cannot fetch information about you through Bru."))
                            } @else {
                                (l.t("Ingen kan hente disse opplysningene om deg gjennom Bru.", "Nobody can fetch this information about you through Bru."))
                            }
                            @if let Ok(t) = Timestamp::parse(&b.created_at) {
                                " " (l.t("Sperret ", "Blocked on ")) (text::date(l, t.as_datetime())) "."
                            }
                        }
                        form method="post" action={ "/sperringer/" (b.id) "/fjern" } {
                            input type="hidden" name="csrf" value=(session.csrf);
                            button.button type="submit" {
                                (l.t("Fjern sperringen", "Remove the block"))
                            }
                        }
                    }
                }
            }
        }
        h2 { (l.t("Sperr en virksomhet", "Block an organisation")) }
        form method="post" action="/sperringer" {
            input type="hidden" name="csrf" value=(session.csrf);
            p.field {
                label for="block-org" { (l.t("Virksomhet", "Organisation")) }
                select #block-org name="hva" {
                    @for c in &orgs { option value=(c.value) { (c.label) } }
                }
            }
            button.button.primary type="submit" { (l.t("Sperr virksomheten", "Block the organisation")) }
        }
        @if !sets.is_empty() {
            h2 { (l.t("Sperr en type opplysninger", "Block a kind of information")) }
            form method="post" action="/sperringer" {
                input type="hidden" name="csrf" value=(session.csrf);
                p.field {
                    label for="block-dataset" { (l.t("Opplysninger", "Information")) }
                    select #block-dataset name="hva" {
                        @for c in &sets { option value=(c.value) { (c.label) } }
                    }
                }
                button.button.primary type="submit" { (l.t("Sperr opplysningene", "Block the information")) }
            }
        }
    };
    page(
        StatusCode::OK,
        pages::layout(&ctx, title, body),
        &[lang_cookie],
    )
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

#[derive(Deserialize)]
pub struct BlockForm {
    csrf: Option<String>,
    hva: Option<String>,
}

/// The person a change is about, asked again now when the citizen acts for
/// someone (as a consent answer is), or the answer that ends the request.
#[allow(clippy::result_large_err)]
async fn acting_now(
    portal: &Portal,
    headers: &HeaderMap,
    lang: Lang,
    path: &str,
    csrf: Option<&str>,
) -> Result<policy::PersonNumber, Response> {
    let (session, me, acting) = require(portal, headers, lang, path).await?;
    if !form_ok(portal, headers, &session.csrf, csrf) {
        return Err(forbidden(lang, path));
    }
    if acting.is_some() {
        let own = portal
            .citizen(&session)
            .ok_or_else(|| see_other("/", &[]))?;
        match crate::represent::acting(portal, headers, &session, &own, true).await {
            Ok(Some(r)) if r.person == me => {}
            _ => {
                return Err(see_other(
                    "/representer",
                    &[Some(crate::represent::clear())],
                ))
            }
        }
    }
    Ok(me)
}

/// `POST /sperringer`: add a block of an organisation or a dataset from the lists.
pub async fn add_block(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    form: Result<Form<BlockForm>, FormRejection>,
) -> Response {
    let (lang, _) = language(&headers, &LangQuery::default());
    let path = "/sperringer";
    let Ok(Form(form)) = form else {
        return forbidden(lang, path);
    };
    let me = match acting_now(&portal, &headers, lang, path, form.csrf.as_deref()).await {
        Ok(me) => me,
        Err(r) => return r,
    };
    // Only what the lists offer.
    let chosen = form.hva.unwrap_or_default();
    let offered = organisations(&portal)
        .iter()
        .chain(datasets(&portal, lang).iter())
        .any(|c| c.value == chosen);
    let (consumer, dataset) = match chosen.split_once(':') {
        Some(("org", org)) if offered => (Some(format!("0192:{org}")), None),
        Some(("dataset", d)) if offered => (None, Some(d.to_owned())),
        _ => return see_other("/sperringer?utfort=ugyldig", &[]),
    };
    let Some(id) = random_uuid() else {
        return store_failed(lang, path, &"the system's random source");
    };
    let block = consent_db::Block {
        id,
        consumer,
        dataset,
        created_at: String::new(),
    };
    let subject_ref = portal.deps.pseudonyms.subject_ref(&me);
    if let Err(e) = portal
        .deps
        .store
        .add_block(&subject_ref, &block, Timestamp::now())
        .await
    {
        return store_failed(lang, path, &e);
    }
    tracing::info!(block_id = %block.id, "citizen added a block in the portal");
    see_other("/sperringer?utfort=lagt-til", &[])
}

/// A random (version 4) UUID, as the API's blocks have.
fn random_uuid() -> Option<String> {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).ok()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: Option<String>,
}

/// `POST /sperringer/{id}/fjern`: lift a block of mine.
pub async fn remove_block(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let (lang, _) = language(&headers, &LangQuery::default());
    let path = "/sperringer";
    let Ok(Form(form)) = form else {
        return forbidden(lang, path);
    };
    let me = match acting_now(&portal, &headers, lang, path, form.csrf.as_deref()).await {
        Ok(me) => me,
        Err(r) => return r,
    };
    if !is_consent_id(&id) {
        return see_other(path, &[]);
    }
    let subject_ref = portal.deps.pseudonyms.subject_ref(&me);
    match portal.deps.store.delete_block(&subject_ref, &id).await {
        Ok(_) => see_other("/sperringer?utfort=fjernet", &[]),
        Err(e) => store_failed(lang, path, &e),
    }
}

// ---- the access log, by month, with filters ------------------------------------------

#[derive(Deserialize, Default)]
pub struct TransfersQuery {
    lang: Option<String>,
    /// The page, 1 (the newest) and up.
    side: Option<String>,
    /// Only this organisation (its 9 digits).
    org: Option<String>,
    /// Only this dataset (`provider/dataset`).
    datasett: Option<String>,
    /// `tillatt` or `avvist`.
    utfall: Option<String>,
}

/// The filters a request asks for, each checked against what it can be.
#[derive(Default, Clone, PartialEq, Eq)]
struct Filters {
    org: Option<String>,
    dataset: Option<String>,
    outcome: Option<Verdict>,
}

impl Filters {
    fn from(q: &TransfersQuery) -> Filters {
        let org = q
            .org
            .as_deref()
            .filter(|o| o.len() == 9 && o.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned);
        let dataset = q
            .datasett
            .as_deref()
            .filter(|d| d.parse::<policy::DatasetRef>().is_ok())
            .map(str::to_owned);
        let outcome = match q.utfall.as_deref() {
            Some("tillatt") => Some(Verdict::Allow),
            Some("avvist") => Some(Verdict::Deny),
            _ => None,
        };
        Filters {
            org,
            dataset,
            outcome,
        }
    }

    fn keeps(&self, t: &TransferView) -> bool {
        let org_ok = self
            .org
            .as_ref()
            .is_none_or(|o| t.organisation.as_ref().is_some_and(|x| &x.org == o));
        let dataset_ok = self
            .dataset
            .as_ref()
            .is_none_or(|d| t.dataset.as_ref().is_some_and(|x| &x.id == d));
        let outcome_ok = self.outcome.is_none_or(|v| match v {
            Verdict::Allow => t.decision == Some(Verdict::Allow),
            _ => t.decision != Some(Verdict::Allow),
        });
        org_ok && dataset_ok && outcome_ok
    }

    fn any(&self) -> bool {
        *self != Filters::default()
    }

    /// The query string before `side=` (empty, or ending in `&`).
    fn query(&self) -> String {
        let mut out = String::new();
        if let Some(o) = &self.org {
            out.push_str(&format!("org={o}&"));
        }
        if let Some(d) = &self.dataset {
            out.push_str(&format!("datasett={}&", d.replace('/', "%2F")));
        }
        match self.outcome {
            Some(Verdict::Allow) => out.push_str("utfall=tillatt&"),
            Some(_) => out.push_str("utfall=avvist&"),
            None => {}
        }
        out
    }
}

/// `GET /innsyn`: every decision about me, newest first, grouped by month,
/// [`PER_PAGE`] to a page, filtered by organisation, dataset and outcome.
pub async fn transfers(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    query: Result<Query<TransfersQuery>, QueryRejection>,
) -> Response {
    let query = query.map(|q| q.0).unwrap_or_default();
    let (lang, lang_cookie) = language(
        &headers,
        &LangQuery {
            lang: query.lang.clone(),
        },
    );
    let path = "/innsyn";
    let (session, me, acting) = match require(&portal, &headers, lang, path).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let filters = Filters::from(&query);
    let max_page = MAX_READ / PER_PAGE;
    let page_no = query
        .side
        .as_deref()
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, max_page);
    let own = match view::own_consent_ids(&portal.deps.store, &me).await {
        Ok(own) => own,
        Err(e) => return store_failed(lang, path, &e),
    };
    let subject_ref = portal.deps.pseudonyms.subject_ref(&me);
    // The store reads oldest first: keep the newest `page` pages of what
    // the filters keep; the organisations and datasets seen feed the filters.
    let keep = page_no * PER_PAGE;
    let mut newest: VecDeque<TransferView> = VecDeque::new();
    let mut orgs: BTreeMap<String, String> = BTreeMap::new();
    let mut sets: BTreeMap<String, String> = BTreeMap::new();
    let (mut after, mut read, mut total, mut truncated) = (None, 0usize, 0usize, false);
    loop {
        let got = match view::transfers(&portal.deps.store, subject_ref.clone(), after, READ_PAGE)
            .await
        {
            Ok(p) => p,
            Err(e) => return store_failed(lang, path, &e),
        };
        read += got.records.len();
        for r in &got.records {
            let t = view::transfer(&portal.deps.policy, r, &own);
            if let Some(o) = &t.organisation {
                orgs.entry(o.org.clone())
                    .or_insert_with(|| o.name.clone().unwrap_or_else(|| text::org_number(&o.org)));
            }
            if let Some(d) = &t.dataset {
                sets.entry(d.id.clone()).or_insert_with(|| {
                    d.title
                        .as_ref()
                        .map(|x| x.pick(lang).to_owned())
                        .unwrap_or_else(|| d.id.clone())
                });
            }
            if !filters.keeps(&t) {
                continue;
            }
            total += 1;
            if newest.len() == keep {
                newest.pop_front();
            }
            newest.push_back(t);
        }
        match got.next {
            Some(next) if read < MAX_READ => after = Some(next),
            Some(_) => {
                truncated = true;
                break;
            }
            None => break,
        }
    }
    let first = (page_no - 1) * PER_PAGE;
    let items: Vec<&TransferView> = newest.iter().rev().skip(first).take(PER_PAGE).collect();
    let ctx = Ctx {
        lang,
        path,
        nav: Nav::Transfers,
        csrf: Some(&session.csrf),
        acting: crate::represent::shown(&acting),
    };
    let paging = pages::Paging {
        page: page_no,
        per_page: PER_PAGE,
        total,
        truncated,
    };
    page(
        StatusCode::OK,
        transfers_page(&ctx, &items, &paging, &filters, &orgs, &sets),
        &[lang_cookie],
    )
}

/// "desember 2026" / "December 2026" of a time, in Norwegian time.
fn month_of(lang: Lang, t: Timestamp) -> String {
    let date = text::date(lang, t.as_datetime());
    // "23. desember 2026" / "23 December 2026": the month and the year.
    date.split_once(' ')
        .map(|(_, rest)| rest.to_owned())
        .unwrap_or(date)
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn transfers_page(
    ctx: &Ctx<'_>,
    items: &[&TransferView],
    paging: &pages::Paging,
    filters: &Filters,
    orgs: &BTreeMap<String, String>,
    sets: &BTreeMap<String, String>,
) -> Markup {
    let l = ctx.lang;
    let title = l.t(
        "Hvem har hentet opplysninger om meg",
        "Who has fetched my data",
    );
    // The page's items by month, newest month first (they are newest first).
    let mut months: Vec<(String, Vec<&TransferView>)> = Vec::new();
    for t in items {
        let m = month_of(l, t.time);
        match months.last_mut() {
            Some((name, list)) if *name == m => list.push(t),
            _ => months.push((m, vec![t])),
        }
    }
    let body = html! {
        h1 { (title) }
        p.lead { (l.t(
            "Her ser du hver gang noen har bedt om opplysninger om deg gjennom Bru, også når Bru sa nei. Den nyeste står først.",
            "Here you see every time someone has asked for information about you through Bru, also when Bru said no. The newest comes first."
        )) }
        form.filters method="get" action="/innsyn" role="search" aria-label=(l.t("Filtrer listen", "Filter the list")) {
            p.field {
                label for="filter-org" { (l.t("Virksomhet", "Organisation")) }
                select #filter-org name="org" {
                    option value="" { (l.t("Alle", "All")) }
                    @for (org, name) in orgs {
                        option value=(org) selected[filters.org.as_deref() == Some(org.as_str())] { (name) }
                    }
                }
            }
            p.field {
                label for="filter-dataset" { (l.t("Opplysninger", "Information")) }
                select #filter-dataset name="datasett" {
                    option value="" { (l.t("Alle", "All")) }
                    @for (id, name) in sets {
                        option value=(id) selected[filters.dataset.as_deref() == Some(id.as_str())] { (name) }
                    }
                }
            }
            p.field {
                label for="filter-outcome" { (l.t("Resultat", "Outcome")) }
                select #filter-outcome name="utfall" {
                    option value="" { (l.t("Alle", "All")) }
                    option value="tillatt" selected[filters.outcome == Some(Verdict::Allow)] { (l.t("Tillatt", "Allowed")) }
                    option value="avvist" selected[filters.outcome == Some(Verdict::Deny)] { (l.t("Avvist", "Refused")) }
                }
            }
            p.actions {
                button.button type="submit" { (l.t("Vis", "Show")) }
                @if filters.any() {
                    a.button href="/innsyn" { (l.t("Fjern filtrene", "Clear the filters")) }
                }
            }
        }
        @if items.is_empty() {
            @if filters.any() {
                p.empty { (l.t("Ingen hendelser passer med filtrene.", "No events match the filters.")) }
            } @else {
                p.empty { (l.t("Ingen har hentet opplysninger om deg gjennom Bru.", "Nobody has fetched information about you through Bru.")) }
            }
        } @else {
            p.count role="status" { (pages::count_text(l, paging, items.len())) }
            @if paging.truncated {
                p.hint { (l.t("Listen teller og viser bare de første 20 000 hendelsene.", "The list counts and shows only the first 20,000 events.")) }
            }
            @for (month, list) in &months {
                section.month aria-label=(month) {
                    h2 { (capitalised(month)) }
                    ol.cards.transfers {
                        @for t in list {
                            li.card {
                                h3 {
                                    (text::date_time(l, t.time.as_datetime()))
                                    @if let Some(o) = &t.organisation { ": " (o.name.clone().unwrap_or_else(|| text::org_number(&o.org))) }
                                }
                                (pages::transfer_details(l, t))
                                p.proof {
                                    a href={ "/innsyn/" (t.index) "/bevis" } {
                                        (l.t("Bevis for at dette er loggført", "Proof that this is logged"))
                                        span.visually-hidden { " (" (l.t("hendelse nr. ", "event no. ")) (t.index) ")" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (pagination(l, paging, &filters.query()))
        }
        (crate::export::download(l))
    };
    pages::layout(ctx, title, body)
}

fn pagination(l: Lang, p: &pages::Paging, query: &str) -> Markup {
    let pages = p.total.div_ceil(p.per_page).max(1);
    let href = |n: usize| format!("/innsyn?{query}side={n}");
    html! {
        @if pages > 1 {
            nav.pagination aria-label=(l.t("Sider", "Pages")) {
                ul {
                    @if p.page > 1 {
                        li { a href=(href(p.page - 1)) rel="prev" { (l.t("Nyere", "Newer")) } }
                    }
                    @for n in 1..=pages {
                        // All pages near this one, and the first and the last.
                        @if n == 1 || n == pages || n.abs_diff(p.page) <= 2 {
                            li {
                                @if n == p.page {
                                    a href=(href(n)) aria-current="page" {
                                        span.visually-hidden { (l.t("Side ", "Page ")) } (n)
                                    }
                                } @else {
                                    a href=(href(n)) {
                                        span.visually-hidden { (l.t("Side ", "Page ")) } (n)
                                    }
                                }
                            }
                        } @else if n.abs_diff(p.page) == 3 {
                            li aria-hidden="true" { "…" }
                        }
                    }
                    @if p.page < pages {
                        li { a href=(href(p.page + 1)) rel="next" { (l.t("Eldre", "Older")) } }
                    }
                }
            }
        }
    }
}

// ---- a transfer's proof, in plain words ------------------------------------------------

/// The witnesses' key names from their cosignature lines
/// (`— <name> <base64>`), each once, in order.
pub fn cosigner_names(lines: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (vkey, line) in lines {
        let name = line
            .trim_start_matches('\u{2014}')
            .split_whitespace()
            .next()
            .map(str::to_owned)
            .or_else(|| vkey.split('+').next().map(str::to_owned))
            .unwrap_or_default();
        if !name.is_empty() && !out.contains(&name) {
            out.push(name);
        }
    }
    out
}
