//! "Representer noen andre" (SPEC 9.3): the portal acts for a person the
//! logged-in citizen represents. Whom they may represent comes from the
//! gateway (the registry of parental responsibility), through
//! [`RepresentationSource`]; what a representative may decide is
//! `policy::represent`. The choice is a cookie holding the opaque `party`,
//! checked again against the citizen's own relations on every request, so a
//! forged or stale value acts for no one.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::response::Response;
use axum::Form;
use http::{HeaderMap, StatusCode};
use policy::PersonNumber;
use serde::Deserialize;

pub use crate::acting::{shown, Acting, Represented};
use crate::pages::{self, Ctx, Nav};
use crate::session::{self, Session};
use crate::{form_ok, html, language, require, see_other, LangQuery, Portal};

/// The cookie holding the party the citizen acts for.
pub const ACTING_COOKIE: &str = "__Host-bru-for";

/// The boxed future a [`RepresentationSource`] answers with.
pub type Found<'a> = Pin<Box<dyn Future<Output = Result<Vec<Represented>, String>> + Send + 'a>>;

/// Whom a citizen may act for (the gateway asks its registry).
pub trait RepresentationSource: Send + Sync {
    /// `details`: the login's `authorization_details` (ID-porten fullmakt).
    /// `fresh`: the answer is for a decision, so the source is asked now.
    fn represented<'a>(
        &'a self,
        me: &'a PersonNumber,
        details: &'a [serde_json::Value],
        fresh: bool,
    ) -> Found<'a>;
}

/// The person a request acts for, from the cookie, if it names one of mine.
/// `Err` when the choice is no longer valid (the banner must not lie): the
/// caller answers by clearing the cookie.
pub async fn acting(
    portal: &Portal,
    headers: &HeaderMap,
    session: &Session,
    me: &PersonNumber,
    fresh: bool,
) -> Result<Option<Represented>, ()> {
    let Some(party) = session::cookie(headers, ACTING_COOKIE).filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let Some(source) = &portal.deps.representation else {
        return Err(());
    };
    match source
        .represented(me, &session.authorization_details, fresh)
        .await
    {
        Ok(list) => list
            .into_iter()
            .find(|r| r.party == party)
            .map(Some)
            .ok_or(()),
        Err(e) => {
            tracing::warn!(error = %e, "whom the citizen represents could not be found");
            Err(())
        }
    }
}

/// The `Set-Cookie` that ends acting for someone else.
pub fn clear() -> http::HeaderValue {
    session::clear_cookie(ACTING_COOKIE)
}

/// `GET /representer`: myself, and everyone I may act for.
pub async fn switcher(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    query: Result<Query<LangQuery>, QueryRejection>,
) -> Response {
    let query = query.map(|q| q.0).unwrap_or_default();
    let (lang, lang_cookie) = language(&headers, &query);
    let path = "/representer";
    let (session, me, acting) = match require(&portal, &headers, lang, path).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let me = own(&session, &portal).unwrap_or(me);
    let list = match &portal.deps.representation {
        None => Vec::new(),
        Some(source) => match source
            .represented(&me, &session.authorization_details, false)
            .await
        {
            Ok(list) => list,
            Err(e) => return crate::store_failed(lang, path, &e),
        },
    };
    let current = acting.as_ref().map(|a| a.party.clone());
    let shown = acting.map(|a| Acting {
        name: a.name,
        basis: a.relation.basis(),
    });
    let ctx = Ctx {
        lang,
        path,
        nav: Nav::Represent,
        csrf: Some(&session.csrf),
        acting: shown,
    };
    html(
        StatusCode::OK,
        pages::switcher(&ctx, &list, current.as_deref()),
        &[lang_cookie],
    )
}

/// The logged-in person themself (the session's number).
fn own(session: &Session, portal: &Portal) -> Option<PersonNumber> {
    portal.citizen(session)
}

#[derive(Deserialize)]
pub struct SwitchForm {
    csrf: Option<String>,
    /// Empty: myself.
    party: Option<String>,
}

/// `POST /representer`: act for `party` (one of mine) or for myself.
pub async fn switch(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    form: Result<Form<SwitchForm>, FormRejection>,
) -> Response {
    let (lang, _) = language(&headers, &LangQuery::default());
    let path = "/representer";
    let Some(session) = portal.active_session(&headers).await else {
        return see_other("/", &[]);
    };
    let Ok(Form(form)) = form else {
        return crate::forbidden(lang, path);
    };
    if !form_ok(&portal, &headers, &session.csrf, form.csrf.as_deref()) {
        return crate::forbidden(lang, path);
    }
    let Some(me) = own(&session, &portal) else {
        return see_other("/", &[]);
    };
    let party = form.party.unwrap_or_default();
    if party.is_empty() {
        return see_other("/samtykke", &[Some(clear())]);
    }
    let mine = match &portal.deps.representation {
        Some(source) => source
            .represented(&me, &session.authorization_details, true)
            .await
            .unwrap_or_default(),
        None => Vec::new(),
    };
    // Only a party of mine is ever written into the cookie.
    match mine.iter().find(|r| r.party == party) {
        Some(r) => see_other("/samtykke", &[session::set_cookie(ACTING_COOKIE, &r.party)]),
        None => see_other(path, &[Some(clear())]),
    }
}

/// Whether `r`'s relation may decide consent `id` (every dataset of it).
pub async fn may_decide(portal: &Portal, r: &Represented, id: &str) -> bool {
    let row = match portal
        .deps
        .store
        .get_consent_at(id, consent_db::Timestamp::now())
        .await
    {
        Ok(Some(row)) => row,
        // Not found: the action answers as for anyone.
        Ok(None) => return true,
        Err(e) => {
            tracing::error!(error = %e, "the portal could not read a consent");
            return false;
        }
    };
    let policy = &portal.deps.policy;
    let datasets: Vec<&policy::Dataset> = row
        .datasets
        .iter()
        .filter_map(|d| policy.dataset(&d.provider, &d.dataset))
        .collect();
    policy::represent::may_decide(&r.relation, &datasets).is_ok()
}

/// Who takes a consent action, for the store to write with its event.
pub fn action_actor(r: &Represented) -> consent_db::ActionActor<'_> {
    consent_db::ActionActor {
        actor: r.relation.basis().as_str(),
        basis: &r.source,
    }
}
