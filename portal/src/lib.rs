//! Bru's citizen portal (SPEC section 4): log in with ID-porten, answer and
//! withdraw consents, and read who has fetched my data.
//!
//! - `/`: what Bru is, log in;
//! - `/samtykke`, `/samtykke/{id}`: my consents; one request in plain
//!   language, with approve / reject, or withdraw;
//! - `/innsyn`: every decision about me, newest first, 20 to a page;
//! - `/innsyn/{index}/bevis`: one record's inclusion proof, explained, with
//!   the raw proof (`/citizen/v1/transfers/{index}/proof`) as a download;
//! - `/logg-inn`, `/innlogging/callback`, `/logg-ut`: OpenID Connect
//!   (authorization code + PKCE) and the session ([`session`]);
//! - `/demo/idporten/login`: in `bru demo` only, a person picker instead of
//!   ID-porten ([`Portal::with_demo_login`]).
//!
//! Every change of a consent goes through consent-db's lifecycle
//! (`Store::citizen_action`); what a page shows is built in [`view`], which
//! the gateway's citizen JSON API shares. The pages work without JavaScript,
//! under a CSP with no inline script or style.
//!
//! Architecture invariant: the portal decides nothing about data access and
//! knows nothing of the data plane; it reads the store and the policy, and
//! changes consents only through the store's lifecycle functions.

#![forbid(unsafe_code)]

mod acting;
pub mod config;
mod error;
pub mod export;
pub mod notify;
mod notify_pages;
pub mod oidc;
mod pages;
mod protect;
pub mod represent;
pub mod session;
pub mod text;
pub mod view;

use std::sync::Arc;

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use consent_db::{CitizenAction, ConsentError, Pseudonymiser, Store, Timestamp};
use maud::Markup;
use policy::{PersonNumber, Policy};
use serde::Deserialize;

pub use config::{PortalConfig, RawPortalConfig};
pub use error::{OidcError, PortalError};

use pages::{Ctx, Nav, Notice};
use session::{Lookup, Session, Sessions};
use text::Lang;

/// The CSS, served from `/static/portal.css`.
const CSS: &str = include_str!("../static/portal.css");
/// No script at all; styles and forms only from Bru itself.
const CSP: &str = "default-src 'self'; script-src 'none'; object-src 'none'; img-src 'self'; \
                   frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// What the portal needs from the running gateway.
pub struct PortalDeps {
    pub store: Store,
    pub policy: Policy,
    /// The same pseudonyms the audit records carry.
    pub pseudonyms: Pseudonymiser,
    /// Bru's public URL (`https://bru.example`), as the browser sees it.
    pub public_url: String,
    pub allow_synthetic_ids: bool,
    /// Whom a citizen may act for (SPEC 9.3); none: only for themself.
    pub representation: Option<Arc<dyn represent::RepresentationSource>>,
}

/// One of the demo persons the demo login offers.
#[derive(Clone)]
pub struct DemoPerson {
    pub pid: String,
    pub name: String,
}

pub struct Portal {
    deps: PortalDeps,
    origin: String,
    sessions: Sessions,
    oidc: Option<oidc::OidcClient>,
    demo_persons: Vec<DemoPerson>,
    demo_fullmakter: Vec<DemoFullmakt>,
}

/// A fullmakt the demo login offers: log in as `holder` for `owner`.
#[derive(Clone)]
pub struct DemoFullmakt {
    pub holder: String,
    pub holder_name: String,
    pub owner: String,
    pub owner_name: String,
    pub roles: Vec<String>,
}

impl DemoFullmakt {
    /// ID-porten's `idporten:fullmakt` for it (Digdir, oidc_protocol_rar).
    fn authorization_details(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "idporten:fullmakt",
            "authorizer": { "name": self.owner_name.to_uppercase(), "pid": self.owner },
            "permissions": self.roles.iter().map(|r| serde_json::json!({ "owner": "vergemaal", "role": r })).collect::<Vec<_>>(),
            "authorized_representative": { "name": self.holder_name.to_uppercase(), "pid": self.holder },
        })
    }
}

impl Portal {
    /// Reads the session key and the client secret; contacts nobody (the
    /// provider's discovery document is fetched at the first login).
    pub fn new(config: &PortalConfig, deps: PortalDeps) -> Result<Portal, PortalError> {
        let key = config.session_key.read().map_err(PortalError::Config)?;
        let sessions = Sessions::new(
            session::CookieKey::derive(&key)?,
            deps.store.clone(),
            config.idle_timeout,
            config.absolute_timeout,
        );
        let oidc = config.oidc.clone().map(oidc::OidcClient::new).transpose()?;
        let origin = reqwest::Url::parse(&deps.public_url)
            .map(|u| u.origin().ascii_serialization())
            .map_err(|_| PortalError::Config("public_url is not a URL".into()))?;
        Ok(Portal {
            deps,
            origin,
            sessions,
            oidc,
            demo_persons: Vec::new(),
            demo_fullmakter: Vec::new(),
        })
    }

    /// Offers these persons at `/demo/idporten/login` (`bru demo` only).
    pub fn with_demo_login(mut self, persons: Vec<DemoPerson>) -> Portal {
        self.demo_persons = persons;
        self
    }

    /// Also offers these fullmakt logins (ID-porten's "representer noen andre").
    pub fn with_demo_fullmakter(mut self, fullmakter: Vec<DemoFullmakt>) -> Portal {
        self.demo_fullmakter = fullmakter;
        self
    }

    /// The portal's routes, with its security headers on every answer.
    /// The citizen of an active portal session, for JSON endpoints a logged-in
    /// citizen's browser follows from a page (e.g. the inclusion proof of a transfer).
    pub async fn session_citizen(&self, headers: &HeaderMap) -> Option<PersonNumber> {
        match self.sessions.lookup(headers, now()).await {
            Lookup::Active(session) => self.citizen(&session),
            Lookup::Expired | Lookup::None | Lookup::Unavailable => None,
        }
    }

    pub fn router(self: Arc<Self>) -> Router {
        let mut router = Router::new()
            .route("/", get(home))
            .route("/static/portal.css", get(css))
            .route("/samtykke", get(consents))
            .route("/samtykke/{id}", get(consent).post(answer))
            .route("/samtykke/{id}/pause", get(protect::confirm_pause))
            .route("/samtykke/{id}/gjenoppta", get(protect::confirm_resume))
            .route("/sperringer", get(protect::blocks).post(protect::add_block))
            .route(
                "/sperringer/{id}/fjern",
                axum::routing::post(protect::remove_block),
            )
            .route("/innsyn", get(protect::transfers))
            .route("/innsyn/{index}/bevis", get(proof))
            .route("/varsler", get(notify_pages::inbox))
            .route(
                "/varsler/innstillinger",
                get(notify_pages::settings).post(notify_pages::save_settings),
            )
            .route(
                "/representer",
                get(represent::switcher).post(represent::switch),
            )
            .route("/logg-inn", get(login))
            .route(config::CALLBACK_PATH, get(callback))
            .route("/logg-ut", axum::routing::post(logout));
        if !self.demo_persons.is_empty() {
            router = router.route("/demo/idporten/login", get(demo_picker).post(demo_login));
        }
        router
            .with_state(self)
            .layer(axum::middleware::map_response(security_headers))
    }

    fn login_path(&self, next: &str) -> Option<String> {
        (self.oidc.is_some() || !self.demo_persons.is_empty())
            .then(|| format!("/logg-inn?neste={}", session::safe_next(next)))
    }

    /// The session of this request, if one is active.
    async fn active_session(&self, headers: &HeaderMap) -> Option<Session> {
        match self.sessions.lookup(headers, now()).await {
            Lookup::Active(session) => Some(session),
            _ => None,
        }
    }

    /// The citizen behind a session (the number was checked at login).
    fn citizen(&self, session: &Session) -> Option<PersonNumber> {
        PersonNumber::parse(&session.pid, self.deps.allow_synthetic_ids).ok()
    }
}

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Pages are about one person: never kept by a browser or a proxy.
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

// ---- request context ---------------------------------------------------------------

#[derive(Deserialize, Default)]
pub struct LangQuery {
    lang: Option<String>,
}

/// The language of the request and, when `?lang=` chose one, the cookie
/// that keeps it.
fn language(headers: &HeaderMap, query: &LangQuery) -> (Lang, Option<HeaderValue>) {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let lang = text::negotiate(
        query.lang.as_deref(),
        session::cookie(headers, session::LANG_COOKIE),
        accept,
    );
    let cookie = query
        .lang
        .as_deref()
        .and_then(Lang::from_tag)
        .and_then(|l| session::set_lasting_cookie(session::LANG_COOKIE, l.code(), 365 * 24 * 3600));
    (lang, cookie)
}

/// A page answer with the cookies it sets.
fn html(status: StatusCode, markup: Markup, cookies: &[Option<HeaderValue>]) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    for c in cookies.iter().flatten() {
        h.append(header::SET_COOKIE, c.clone());
    }
    response
}

/// 303 See Other to one of our own paths (after a POST, or into a login).
fn see_other(location: &str, cookies: &[Option<HeaderValue>]) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        h.insert(header::LOCATION, v);
    }
    for c in cookies.iter().flatten() {
        h.append(header::SET_COOKIE, c.clone());
    }
    response
}

/// The logged-in citizen of a page that needs one, or the answer that sends
/// the browser to log in (telling why, when the session timed out). The
/// person returned is whom the page is about: the citizen, or the person
/// they chose to act for ("Representer noen andre", `represent.rs`), who is
/// then returned too. A choice no longer valid is cleared and the browser
/// sent to the switcher.
#[allow(clippy::result_large_err)]
async fn require(
    portal: &Portal,
    headers: &HeaderMap,
    lang: Lang,
    path: &str,
) -> Result<(Session, PersonNumber, Option<represent::Represented>), Response> {
    match portal.sessions.lookup(headers, now()).await {
        Lookup::Unavailable => Err(store_failed(lang, path, &"the session store")),
        Lookup::Active(session) => match portal.citizen(&session) {
            Some(pid) => match represent::acting(portal, headers, &session, &pid, true).await {
                Ok(None) => Ok((session, pid, None)),
                Ok(Some(r)) => Ok((session, r.person.clone(), Some(r))),
                Err(()) => Err(see_other("/representer", &[Some(represent::clear())])),
            },
            None => Err(see_other(
                "/",
                &[Some(session::clear_cookie(session::SESSION_COOKIE))],
            )),
        },
        Lookup::Expired => {
            let ctx = Ctx {
                lang,
                path: "/",
                nav: Nav::Home,
                csrf: None,
                acting: None,
            };
            let note = Notice::Info(
                lang.t(
                    "Du ble logget ut fordi det gikk lang tid. Logg inn på nytt for å fortsette.",
                    "You were logged out because some time passed. Log in again to continue.",
                )
                .to_owned(),
            );
            let login = portal.login_path(path);
            Err(html(
                StatusCode::OK,
                pages::home(&ctx, Some(&note), login.as_deref()),
                &[Some(session::clear_cookie(session::SESSION_COOKIE))],
            ))
        }
        Lookup::None => match portal.login_path(path) {
            Some(login) => Err(see_other(&login, &[])),
            None => Err(see_other("/", &[])),
        },
    }
}

fn store_failed(lang: Lang, path: &str, e: &dyn std::fmt::Display) -> Response {
    store_failed_for(lang, path, e, None)
}

/// [`store_failed`] on a page acting for someone: the banner says whom.
fn store_failed_for(
    lang: Lang,
    path: &str,
    e: &dyn std::fmt::Display,
    acting: Option<represent::Acting>,
) -> Response {
    tracing::error!(error = %e, "the portal could not read or write the store");
    let ctx = Ctx {
        lang,
        path,
        nav: Nav::None,
        csrf: None,
        acting,
    };
    let mut r = html(
        StatusCode::SERVICE_UNAVAILABLE,
        pages::error(
            &ctx,
            lang.t("Noe gikk galt", "Something went wrong"),
            lang.t(
                "Bru får ikke kontakt med lageret sitt akkurat nå. Prøv igjen om litt.",
                "Bru cannot reach its store right now. Try again in a little while.",
            ),
            Some(path),
        ),
        &[],
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

fn not_found(
    lang: Lang,
    session: &Session,
    path: &str,
    acting: Option<represent::Acting>,
) -> Response {
    let ctx = Ctx {
        lang,
        path,
        nav: Nav::Consents,
        csrf: Some(&session.csrf),
        acting,
    };
    html(
        StatusCode::NOT_FOUND,
        pages::error(
            &ctx,
            lang.t("Fant ikke samtykket", "Consent not found"),
            lang.t(
                "Du har ikke noe samtykke med denne lenken. Kanskje gjelder det en annen person?",
                "You have no consent with this link. Perhaps it is about someone else?",
            ),
            None,
        ),
        &[],
    )
}

// ---- pages ---------------------------------------------------------------------------

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

#[derive(Deserialize, Default)]
struct HomeQuery {
    lang: Option<String>,
    /// Set after a logout, to say so.
    utlogget: Option<String>,
}

async fn home(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    query: Result<Query<HomeQuery>, QueryRejection>,
) -> Response {
    let query = query.map(|q| q.0).unwrap_or_default();
    let (lang, lang_cookie) = language(
        &headers,
        &LangQuery {
            lang: query.lang.clone(),
        },
    );
    let lookup = portal.sessions.lookup(&headers, now()).await;
    let (csrf, clear) = match &lookup {
        Lookup::Active(session) => (Some(session.csrf.as_str()), None),
        // A timed-out session's cookie goes, once it has been explained.
        Lookup::Expired => (None, Some(session::clear_cookie(session::SESSION_COOKIE))),
        Lookup::None | Lookup::Unavailable => (None, None),
    };
    let note = match (&lookup, query.utlogget.is_some()) {
        (Lookup::Expired, _) => Some(Notice::Info(
            lang.t(
                "Du ble logget ut fordi det gikk lang tid.",
                "You were logged out because some time passed.",
            )
            .to_owned(),
        )),
        (Lookup::None, true) => Some(Notice::Info(
            lang.t("Du er logget ut.", "You are logged out.").to_owned(),
        )),
        _ => None,
    };
    let ctx = Ctx {
        lang,
        path: "/",
        nav: Nav::Home,
        csrf,
        acting: None,
    };
    let login = portal.login_path("/samtykke");
    html(
        StatusCode::OK,
        pages::home(&ctx, note.as_ref(), login.as_deref()),
        &[lang_cookie, clear],
    )
}

async fn consents(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    query: Result<Query<LangQuery>, QueryRejection>,
) -> Response {
    let query = query.map(|q| q.0).unwrap_or_default();
    let (lang, lang_cookie) = language(&headers, &query);
    let path = "/samtykke";
    let (session, me, acting) = match require(&portal, &headers, lang, path).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let rows = match portal
        .deps
        .store
        .consents_by_subject(&me, Timestamp::now())
        .await
    {
        Ok(rows) => rows,
        Err(e) => return store_failed(lang, path, &e),
    };
    let grouped = view::group(&rows);
    let views = |rows: &[&consent_db::ConsentRow]| -> Vec<view::ConsentView> {
        rows.iter()
            .map(|r| view::consent(&portal.deps.policy, r))
            .collect()
    };
    let ctx = Ctx {
        lang,
        path,
        nav: Nav::Consents,
        csrf: Some(&session.csrf),
        acting: represent::shown(&acting),
    };
    html(
        StatusCode::OK,
        pages::consents(
            &ctx,
            &views(&grouped.pending),
            &views(&grouped.active),
            &views(&grouped.past),
        ),
        &[lang_cookie],
    )
}

#[derive(Deserialize, Default)]
struct ConsentQuery {
    lang: Option<String>,
    /// What the citizen just did: `accept`, `reject` or `revoke`.
    utfort: Option<String>,
}

async fn consent(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<ConsentQuery>, QueryRejection>,
) -> Response {
    let query = query.map(|q| q.0).unwrap_or_default();
    let (lang, lang_cookie) = language(
        &headers,
        &LangQuery {
            lang: query.lang.clone(),
        },
    );
    if !is_consent_id(&id) {
        return see_other("/samtykke", &[]);
    }
    let path = format!("/samtykke/{id}");
    let (session, me, acting) = match require(&portal, &headers, lang, &path).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (row, events) = match portal
        .deps
        .store
        .get_consent_with_events(&id, Timestamp::now())
        .await
    {
        Ok(Some((row, events))) if view::visible_to(&row, &me) => (row, events),
        Ok(_) => return not_found(lang, &session, &path, represent::shown(&acting)),
        Err(e) => return store_failed_for(lang, &path, &e, represent::shown(&acting)),
    };
    // Who took each decision (a parent, a guardian), for the history.
    let actors = match portal.deps.store.event_actors(&id).await {
        Ok(actors) => actors,
        Err(e) => return store_failed_for(lang, &path, &e, represent::shown(&acting)),
    };
    let done = query.utfort.as_deref();
    let note = match done {
        // Whom the answer was for, when acting for someone (pages.rs).
        Some(done @ ("accept" | "reject" | "revoke")) => pages::answered(
            lang,
            done,
            acting.as_ref().map(|r| r.name.as_str()),
        )
        .map(Notice::Info),
        Some("ikke-tillatt") => Some(Notice::Error(
            lang.t(
                "Du kan ikke ta denne avgjørelsen for personen du representerer. Reglene for disse opplysningene lar personen selv bestemme, eller fullmakten din gjelder ikke dette.",
                "You cannot make this decision for the person you represent. The rules for this information let the person decide themself, or your power of attorney does not cover it.",
            )
            .to_owned(),
        )),
        Some(done @ ("pause" | "resume")) => protect::done_notice(lang, done),
        Some("conflict") => Some(Notice::Error(
            lang.t(
                "Dette samtykket kan ikke endres lenger. Se statusen under.",
                "This consent can no longer be changed. See its status below.",
            )
            .to_owned(),
        )),
        _ => None,
    };
    // After an answer, the requester's own page is one click away.
    let return_link = match done {
        Some("accept" | "reject") => row.redirect_url.as_deref(),
        _ => None,
    };
    let v = view::consent(&portal.deps.policy, &row);
    let ctx = Ctx {
        lang,
        path: &path,
        nav: Nav::Consents,
        csrf: Some(&session.csrf),
        acting: represent::shown(&acting),
    };
    html(
        StatusCode::OK,
        pages::consent(&ctx, &v, &events, &actors, note.as_ref(), return_link),
        &[lang_cookie],
    )
}

#[derive(Deserialize)]
struct AnswerForm {
    csrf: Option<String>,
    action: Option<String>,
}

/// Whether a form POST comes from our own pages: the CSRF token always,
/// and the `Origin` header where the browser names one. (Under
/// `Referrer-Policy: no-referrer` browsers send `Origin: null` for our own
/// forms, so `null` tells nothing either way.)
fn form_ok(portal: &Portal, headers: &HeaderMap, expected: &str, submitted: Option<&str>) -> bool {
    let origin_ok = match headers.get(header::ORIGIN).map(|o| o.to_str()) {
        None | Some(Ok("null")) => true,
        Some(Ok(origin)) => origin == portal.origin,
        Some(Err(_)) => false,
    };
    origin_ok && session::csrf_ok(expected, submitted)
}

fn forbidden(lang: Lang, path: &str) -> Response {
    let ctx = Ctx {
        lang,
        path,
        nav: Nav::None,
        csrf: None,
        acting: None,
    };
    html(
        StatusCode::FORBIDDEN,
        pages::error(
            &ctx,
            lang.t("Skjemaet er utløpt", "The form has expired"),
            lang.t(
                "Svaret ditt ble ikke lagret, fordi siden var for gammel eller ikke kom fra Bru. Gå tilbake og prøv igjen.",
                "Your answer was not saved, because the page was too old or did not come from Bru. Go back and try again.",
            ),
            Some(path),
        ),
        &[],
    )
}

/// Approve, reject or withdraw: one POST, then back to the consent's page.
async fn answer(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<AnswerForm>, FormRejection>,
) -> Response {
    let (lang, _) = language(&headers, &LangQuery::default());
    if !is_consent_id(&id) {
        return see_other("/samtykke", &[]);
    }
    let path = format!("/samtykke/{id}");
    let (session, me, acting) = match require(&portal, &headers, lang, &path).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(Form(form)) = form else {
        return forbidden(lang, &path);
    };
    if !form_ok(&portal, &headers, &session.csrf, form.csrf.as_deref()) {
        return forbidden(lang, &path);
    }
    let action = match form.action.as_deref() {
        Some("accept") => CitizenAction::Accept,
        Some("reject") => CitizenAction::Reject,
        Some("revoke") => CitizenAction::Revoke,
        Some("pause") => CitizenAction::Pause,
        Some("resume") => CitizenAction::Resume,
        _ => return see_other(&path, &[]),
    };
    // A representative's decision: the relation asked again now, then every
    // dataset of the consent must let it decide (policy::represent).
    let acting = match acting {
        None => None,
        Some(_) => match portal.citizen(&session) {
            Some(own) => match represent::acting(&portal, &headers, &session, &own, true).await {
                Ok(Some(r)) if r.person == me => Some(r),
                _ => return see_other("/representer", &[Some(represent::clear())]),
            },
            None => return see_other("/", &[]),
        },
    };
    if let Some(r) = &acting {
        if !represent::may_decide(&portal, r, &id).await {
            return see_other(&format!("{path}?utfort=ikke-tillatt"), &[]);
        }
    }
    let now = Timestamp::now();
    let outcome = match portal
        .deps
        .store
        .citizen_action_by(
            &id,
            &me,
            action,
            now,
            acting.as_ref().map(represent::action_actor),
        )
        .await
    {
        Ok(row) => {
            tracing::info!(consent_id = %row.id, action = action.as_str(), "citizen answered a consent in the portal");
            action.as_str()
        }
        // A second click on the same button: it already took effect.
        Err(ConsentError::InvalidTransition { state, .. }) if state == action.outcome().0 => {
            action.as_str()
        }
        Err(ConsentError::InvalidTransition { .. }) => "conflict",
        Err(ConsentError::NotFound) => {
            return not_found(lang, &session, &path, represent::shown(&acting))
        }
        Err(ConsentError::Store(e)) => {
            return store_failed_for(lang, &path, &e, represent::shown(&acting))
        }
    };
    see_other(&format!("{path}?utfort={outcome}"), &[])
}

/// A readable page about one record's inclusion proof: what it proves,
/// against which checkpoint, how to check it; the raw proof is the JSON
/// endpoint `/citizen/v1/transfers/{index}/proof`, linked as a download.
async fn proof(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Path(index): Path<String>,
    query: Result<Query<LangQuery>, QueryRejection>,
) -> Response {
    let query = query.map(|q| q.0).unwrap_or_default();
    let (lang, lang_cookie) = language(&headers, &query);
    let Some(index) = index
        .parse::<u64>()
        .ok()
        .filter(|i| i64::try_from(*i).is_ok())
    else {
        return see_other("/innsyn", &[]);
    };
    let path = format!("/innsyn/{index}/bevis");
    let (session, me, acting) = match require(&portal, &headers, lang, &path).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let ctx = Ctx {
        lang,
        path: &path,
        nav: Nav::Transfers,
        csrf: Some(&session.csrf),
        acting: represent::shown(&acting),
    };
    let store = &portal.deps.store;
    let me_ref = portal.deps.pseudonyms.subject_ref(&me);
    // Mine and disclosed (SPEC 10), or as if it did not exist.
    let record = match store.citizen_record(index, &me_ref).await {
        Ok(r) => r,
        Err(e) => return store_failed(lang, &path, &e),
    };
    let Some(record) = record else {
        return html(
            StatusCode::NOT_FOUND,
            pages::error(
                &ctx,
                lang.t("Fant ikke hendelsen", "Event not found"),
                lang.t(
                    "Det finnes ingen hendelse om deg med dette nummeret.",
                    "There is no event about you with this number.",
                ),
                None,
            ),
            &[lang_cookie],
        );
    };
    let checkpoint = match store.latest_checkpoint().await {
        Ok(cp) => cp.filter(|c| c.size > index),
        Err(e) => return store_failed(lang, &path, &e),
    };
    let proof = match &checkpoint {
        Some(cp) => {
            let hashes = match store.inclusion_proof(index, cp.size).await {
                Ok(h) => h,
                Err(e) => return store_failed(lang, &path, &e),
            };
            // Bru checks the proof it shows, the way anyone can (RFC 9162 2.1.3.2).
            let holds = serde_json::to_value(&record)
                .ok()
                .and_then(|v| consent_db::canonical::to_vec(&v).ok())
                .map(|bytes| consent_db::merkle::leaf_hash(&bytes))
                .is_some_and(|leaf| {
                    consent_db::merkle::verify_inclusion(index, cp.size, &leaf, &hashes, &cp.root)
                        .is_ok()
                });
            // Who cosigned this checkpoint (SPEC 11): the witnesses' key names.
            let cosigners = match store.cosignatures(cp.size).await {
                Ok(lines) => protect::cosigner_names(&lines),
                Err(e) => return store_failed(lang, &path, &e),
            };
            Some(pages::ProofFacts {
                cosigners,
                size: cp.size,
                time: cp.time,
                origin: cp.note.lines().next().unwrap_or_default().to_owned(),
                hashes: hashes.len(),
                holds,
            })
        }
        None => None,
    };
    let own = match view::own_consent_ids(store, &me).await {
        Ok(own) => own,
        Err(e) => return store_failed(lang, &path, &e),
    };
    let item = view::transfer(&portal.deps.policy, &record, &own);
    html(
        StatusCode::OK,
        pages::proof(&ctx, &item, proof.as_ref(), &portal.deps.public_url),
        &[lang_cookie],
    )
}

// ---- login and logout ---------------------------------------------------------------

#[derive(Deserialize, Default)]
struct LoginQuery {
    neste: Option<String>,
    lang: Option<String>,
}

fn login_failed(lang: Lang, status: StatusCode, why: &dyn std::fmt::Display) -> Response {
    tracing::warn!(error = %why, "a portal login failed");
    let ctx = Ctx {
        lang,
        path: "/",
        nav: Nav::None,
        csrf: None,
        acting: None,
    };
    html(
        status,
        pages::error(
            &ctx,
            lang.t("Innloggingen mislyktes", "The login failed"),
            lang.t(
                "Vi fikk ikke logget deg inn. Prøv igjen. Hvis det ikke går, kan du prøve igjen senere.",
                "We could not log you in. Try again. If it does not work, you can try again later.",
            ),
            Some("/logg-inn"),
        ),
        &[Some(session::clear_cookie(session::LOGIN_COOKIE))],
    )
}

/// 502 when the provider failed us, 403 when the login itself is refused.
fn oidc_status(e: &OidcError) -> StatusCode {
    match e {
        OidcError::Unavailable(_) | OidcError::Protocol(_) => StatusCode::BAD_GATEWAY,
        _ => StatusCode::FORBIDDEN,
    }
}

/// Starts a login: with the OpenID provider, or (demo) at the person picker.
async fn login(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    query: Result<Query<LoginQuery>, QueryRejection>,
) -> Response {
    let query = query.map(|q| q.0).unwrap_or_default();
    let (lang, lang_cookie) = language(
        &headers,
        &LangQuery {
            lang: query.lang.clone(),
        },
    );
    let next = session::safe_next(query.neste.as_deref().unwrap_or("/samtykke")).to_owned();
    let Some(oidc) = &portal.oidc else {
        if !portal.demo_persons.is_empty() {
            return see_other(
                &format!("/demo/idporten/login?neste={next}"),
                &[lang_cookie],
            );
        }
        return see_other("/", &[lang_cookie]);
    };
    let state = match session::LoginState::new(&next, now()) {
        Ok(s) => s,
        Err(e) => return login_failed(lang, StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    let sealed = match portal.sessions.seal_login(&state) {
        Ok(s) => s,
        Err(e) => return login_failed(lang, StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    match oidc.authorization_url(&state, lang.code()).await {
        Ok(url) => see_other(
            &url,
            &[
                session::set_cookie(session::LOGIN_COOKIE, &sealed),
                lang_cookie,
            ],
        ),
        Err(e) => login_failed(lang, oidc_status(&e), &e),
    }
}

#[derive(Deserialize, Default)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// The provider sends the browser back here with a code (or an error).
async fn callback(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    query: Result<Query<CallbackQuery>, QueryRejection>,
) -> Response {
    let (lang, _) = language(&headers, &LangQuery::default());
    let query = query.map(|q| q.0).unwrap_or_default();
    let Some(oidc) = &portal.oidc else {
        return see_other("/", &[]);
    };
    let now = now();
    let Some(login) = portal.sessions.login_state(&headers, now) else {
        return login_failed(lang, StatusCode::FORBIDDEN, &OidcError::StateMismatch);
    };
    if !session::csrf_ok(&login.state, query.state.as_deref()) {
        return login_failed(lang, StatusCode::FORBIDDEN, &OidcError::StateMismatch);
    }
    if let Some(error) = query.error.as_deref() {
        return login_failed(
            lang,
            StatusCode::FORBIDDEN,
            &OidcError::Denied(oidc::short(error)),
        );
    }
    let Some(code) = query
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 2048)
    else {
        return login_failed(lang, StatusCode::BAD_REQUEST, &"the callback has no code");
    };
    let (citizen, id_token) = match oidc
        .finish(code, &login, portal.deps.allow_synthetic_ids)
        .await
    {
        Ok(c) => c,
        Err(e) => return login_failed(lang, oidc_status(&e), &e),
    };
    start_session(
        &portal,
        lang,
        &citizen.pid,
        &citizen.acr,
        Some(id_token),
        citizen.authorization_details,
        &login.next,
    )
    .await
}

async fn start_session(
    portal: &Portal,
    lang: Lang,
    pid: &PersonNumber,
    acr: &str,
    id_token: Option<String>,
    authorization_details: Vec<serde_json::Value>,
    next: &str,
) -> Response {
    match portal
        .sessions
        .start_with(pid, acr, id_token, authorization_details, now())
        .await
    {
        Ok((_, sealed)) => {
            tracing::info!(acr, "a citizen logged in to the portal");
            see_other(
                session::safe_next(next),
                &[
                    session::set_cookie(session::SESSION_COOKIE, &sealed),
                    Some(session::clear_cookie(session::LOGIN_COOKIE)),
                ],
            )
        }
        Err(e) => login_failed(lang, StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
}

#[derive(Deserialize)]
struct LogoutForm {
    csrf: Option<String>,
}

/// Ends the session in the store (its cookie is dead on every replica from
/// now on), then ends the citizen's session at the OpenID provider too
/// (OpenID Connect RP-Initiated Logout 1.0: `end_session_endpoint` with
/// `id_token_hint` and `post_logout_redirect_uri`), which sends the browser
/// back to `/?utlogget=1`. In `bru demo` there is no provider session.
async fn logout(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    form: Result<Form<LogoutForm>, FormRejection>,
) -> Response {
    let (lang, _) = language(&headers, &LangQuery::default());
    let clear = Some(session::clear_cookie(session::SESSION_COOKIE));
    let session = match portal.sessions.lookup(&headers, now()).await {
        Lookup::Active(session) => session,
        Lookup::Unavailable => return store_failed(lang, "/", &"the session store"),
        Lookup::Expired | Lookup::None => return see_other("/?utlogget=1", &[clear]),
    };
    let submitted = form.as_ref().ok().and_then(|f| f.csrf.as_deref());
    if !form_ok(&portal, &headers, &session.csrf, submitted) {
        return forbidden(lang, "/");
    }
    if let Err(e) = portal.sessions.end(&headers).await {
        return store_failed(lang, "/", &e);
    }
    tracing::info!("a citizen logged out of the portal");
    let back = format!(
        "{}/?utlogget=1",
        portal.deps.public_url.trim_end_matches('/')
    );
    let at_provider = match &portal.oidc {
        Some(oidc) => match oidc
            .logout_url(session.id_token.as_deref(), &back, lang.code())
            .await
        {
            Ok(url) => url,
            Err(e) => {
                // Logged out of Bru all the same; the provider's single
                // sign-on session ends when it times out.
                tracing::warn!(error = %e, "RP-initiated logout at the OpenID provider failed");
                None
            }
        },
        None => None,
    };
    match at_provider {
        // Not a redirect: the form's page allows `form-action 'self'` only,
        // and browsers hold a form's redirects to that. The page goes on
        // by itself (meta refresh, no script) and has the link too.
        Some(url) => {
            let ctx = Ctx {
                lang,
                path: "/",
                nav: Nav::None,
                csrf: None,
                acting: None,
            };
            html(
                StatusCode::OK,
                pages::leaving(&ctx, &url),
                &[clear, Some(represent::clear())],
            )
        }
        None => see_other("/?utlogget=1", &[clear, Some(represent::clear())]),
    }
}

// ---- demo login ---------------------------------------------------------------------

async fn demo_picker(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    query: Result<Query<LoginQuery>, QueryRejection>,
) -> Response {
    let query = query.map(|q| q.0).unwrap_or_default();
    let (lang, lang_cookie) = language(
        &headers,
        &LangQuery {
            lang: query.lang.clone(),
        },
    );
    let next = query.neste.as_deref().unwrap_or("/samtykke");
    // The picker's form is protected like any other: its token lives in the
    // login cookie until the POST.
    let state = match session::LoginState::new(next, now()) {
        Ok(s) => s,
        Err(e) => return login_failed(lang, StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    let sealed = match portal.sessions.seal_login(&state) {
        Ok(s) => s,
        Err(e) => return login_failed(lang, StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    let path = "/demo/idporten/login";
    let ctx = Ctx {
        lang,
        path,
        nav: Nav::None,
        csrf: None,
        acting: None,
    };
    html(
        StatusCode::OK,
        pages::demo_picker(
            &ctx,
            &portal.demo_persons,
            &portal.demo_fullmakter,
            &state.state,
        ),
        &[
            session::set_cookie(session::LOGIN_COOKIE, &sealed),
            lang_cookie,
        ],
    )
}

#[derive(Deserialize)]
struct DemoLoginForm {
    csrf: Option<String>,
    pid: Option<String>,
}

async fn demo_login(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    form: Result<Form<DemoLoginForm>, FormRejection>,
) -> Response {
    let (lang, _) = language(&headers, &LangQuery::default());
    let Some(login) = portal.sessions.login_state(&headers, now()) else {
        return forbidden(lang, "/demo/idporten/login");
    };
    let Ok(Form(form)) = form else {
        return forbidden(lang, "/demo/idporten/login");
    };
    if !form_ok(&portal, &headers, &login.state, form.csrf.as_deref()) {
        return forbidden(lang, "/demo/idporten/login");
    }
    // A demo fullmakt login: its holder, with ID-porten's RAR for it.
    let fullmakt = form
        .pid
        .as_deref()
        .and_then(|v| v.strip_prefix("fullmakt-"))
        .and_then(|i| i.parse::<usize>().ok())
        .and_then(|i| portal.demo_fullmakter.get(i));
    if let Some(f) = fullmakt {
        let Ok(pid) = PersonNumber::parse(&f.holder, true) else {
            return see_other("/demo/idporten/login", &[]);
        };
        let details = vec![f.authorization_details()];
        return start_session(
            &portal,
            lang,
            &pid,
            config::DEFAULT_ACR,
            None,
            details,
            &login.next,
        )
        .await;
    }
    // Only the demo persons: this is a picker, not a way to be anyone.
    let picked = form
        .pid
        .as_deref()
        .filter(|pid| portal.demo_persons.iter().any(|p| p.pid == *pid))
        .and_then(|pid| PersonNumber::parse(pid, true).ok());
    match picked {
        Some(pid) => {
            start_session(
                &portal,
                lang,
                &pid,
                config::DEFAULT_ACR,
                None,
                Vec::new(),
                &login.next,
            )
            .await
        }
        None => see_other("/demo/idporten/login", &[]),
    }
}

/// Ids Bru issues are UUIDs; anything else is not looked up.
pub fn is_consent_id(id: &str) -> bool {
    id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

#[cfg(test)]
mod tests;
