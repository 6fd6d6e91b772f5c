//! The portal's notification pages (SPEC 10): `/varsler`, my notifications
//! newest first (in pages of [`PER_PAGE`], "older" by a cursor), and
//! `/varsler/innstillinger`, what I want to be told about. Same layout and
//! plain language as the other pages; a form with a CSRF token, no script.

use std::sync::Arc;

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::response::Response;
use consent_db::{InboxCursor, NotificationSettings, Timestamp, TransferNotices};
use http::{HeaderMap, StatusCode};
use maud::{html, Markup};
use serde::Deserialize;

use crate::notify::NotificationView;
use crate::pages::{layout, Ctx, Nav};
use crate::text;
use crate::{represent, Portal};

/// Notifications on one page.
pub const PER_PAGE: u32 = 20;

#[derive(Deserialize, Default)]
pub struct InboxQuery {
    lang: Option<String>,
    /// The cursor of the page after (`InboxCursor::encode`).
    fra: Option<String>,
}

pub async fn inbox(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    query: Result<Query<InboxQuery>, QueryRejection>,
) -> Response {
    let query = query.map(|q| q.0).unwrap_or_default();
    let (lang, lang_cookie) = crate::language(
        &headers,
        &crate::LangQuery {
            lang: query.lang.clone(),
        },
    );
    let path = "/varsler";
    let (session, me, acting) = match crate::require(&portal, &headers, lang, path).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let store = &portal.deps.store;
    let subject_ref = portal.deps.pseudonyms.subject_ref(&me);
    let cursor = query.fra.as_deref().and_then(InboxCursor::decode);
    let now = Timestamp::now();
    let read = async {
        store
            .queue_expiring_consents(now, crate::notify::EXPIRING_WITHIN, Some(&me))
            .await?;
        let settings = store.notification_settings(&subject_ref).await?;
        store
            .inbox(
                &subject_ref,
                &me,
                settings,
                now,
                cursor.as_ref(),
                PER_PAGE + 1,
            )
            .await
    };
    let mut rows = match read.await {
        Ok(rows) => rows,
        Err(e) => return crate::store_failed(lang, path, &e),
    };
    let more = rows.len() > PER_PAGE as usize;
    rows.truncate(PER_PAGE as usize);
    let older = if more {
        rows.last().map(|n| {
            InboxCursor {
                at: n.at.to_string(),
                id: n.id.clone(),
            }
            .encode()
        })
    } else {
        None
    };
    let items: Vec<NotificationView> = rows
        .iter()
        .map(|n| crate::notify::notification(&portal.deps.policy, n))
        .collect();
    let ctx = Ctx {
        lang,
        path,
        nav: Nav::Notifications,
        csrf: Some(&session.csrf),
        acting: represent::shown(&acting),
    };
    crate::html(
        StatusCode::OK,
        inbox_page(&ctx, &items, cursor.is_some(), older.as_deref()),
        &[lang_cookie],
    )
}

pub fn inbox_page(
    ctx: &Ctx<'_>,
    items: &[NotificationView],
    later: bool,
    older: Option<&str>,
) -> Markup {
    let l = ctx.lang;
    let title = l.t("Varsler", "Notifications");
    let body = html! {
        h1 { (title) }
        p.lead { (l.t(
            "Her ser du hva som har skjedd med opplysningene og samtykkene dine. Det nyeste står først.",
            "Here you see what has happened with your information and your consents. The newest comes first."
        )) }
        p { a href="/varsler/innstillinger" { (l.t("Velg hva du vil bli varslet om", "Choose what you are notified about")) } }
        @if items.is_empty() {
            p.empty { (l.t("Du har ingen varsler.", "You have no notifications.")) }
        } @else {
            ol.cards.notifications {
                @for n in items {
                    li.card {
                        h2.h3 { (text::date_time(l, n.time.as_datetime())) }
                        p { (n.text.pick(l)) }
                        @if n.kind == "consent_event" && n.event.as_deref() == Some("created") {
                            @if let Some(id) = &n.consent_id {
                                p { a href={ "/samtykke/" (id) } { (l.t("Se forespørselen og svar", "See the request and answer")) } }
                            }
                        }
                        @if n.kind == "transfer" || n.kind == "break_glass" {
                            p { a href="/innsyn" { (l.t("Se hvem som har hentet opplysninger om meg", "See who has fetched my data")) } }
                        }
                    }
                }
            }
        }
        @if later || older.is_some() {
            nav.pagination aria-label=(l.t("Sider", "Pages")) {
                ul {
                    @if later {
                        li { a href="/varsler" rel="first" { (l.t("Nyeste", "Newest")) } }
                    }
                    @if let Some(c) = older {
                        li { a href={ "/varsler?fra=" (c) } rel="next" { (l.t("Eldre", "Older")) } }
                    }
                }
            }
        }
    };
    layout(ctx, title, body)
}

#[derive(Deserialize, Default)]
pub struct SettingsQuery {
    lang: Option<String>,
    lagret: Option<String>,
}

pub async fn settings(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    query: Result<Query<SettingsQuery>, QueryRejection>,
) -> Response {
    let query = query.map(|q| q.0).unwrap_or_default();
    let (lang, lang_cookie) = crate::language(
        &headers,
        &crate::LangQuery {
            lang: query.lang.clone(),
        },
    );
    let path = "/varsler/innstillinger";
    let (session, me, acting) = match crate::require(&portal, &headers, lang, path).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let subject_ref = portal.deps.pseudonyms.subject_ref(&me);
    let current = match portal.deps.store.notification_settings(&subject_ref).await {
        Ok(s) => s,
        Err(e) => return crate::store_failed(lang, path, &e),
    };
    let ctx = Ctx {
        lang,
        path,
        nav: Nav::Notifications,
        csrf: Some(&session.csrf),
        acting: represent::shown(&acting),
    };
    crate::html(
        StatusCode::OK,
        settings_page(&ctx, current, query.lagret.is_some()),
        &[lang_cookie],
    )
}

#[derive(Deserialize)]
pub struct SettingsForm {
    csrf: Option<String>,
    transfers: Option<String>,
    consent_events: Option<String>,
}

pub async fn save_settings(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    form: Result<Form<SettingsForm>, FormRejection>,
) -> Response {
    let (lang, _) = crate::language(&headers, &crate::LangQuery::default());
    let path = "/varsler/innstillinger";
    let (session, me, _) = match crate::require(&portal, &headers, lang, path).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(Form(form)) = form else {
        return crate::forbidden(lang, path);
    };
    if !crate::form_ok(&portal, &headers, &session.csrf, form.csrf.as_deref()) {
        return crate::forbidden(lang, path);
    }
    let (Some(transfers), Some(consent_events)) = (
        form.transfers.as_deref().and_then(TransferNotices::parse),
        match form.consent_events.as_deref() {
            Some("ja") => Some(true),
            Some("nei") => Some(false),
            _ => None,
        },
    ) else {
        return crate::see_other(path, &[]);
    };
    let settings = NotificationSettings {
        transfers,
        consent_events,
    };
    let subject_ref = portal.deps.pseudonyms.subject_ref(&me);
    if let Err(e) = portal
        .deps
        .store
        .set_notification_settings(&subject_ref, settings, Timestamp::now())
        .await
    {
        return crate::store_failed(lang, path, &e);
    }
    crate::see_other("/varsler/innstillinger?lagret=1", &[])
}

pub fn settings_page(ctx: &Ctx<'_>, current: NotificationSettings, saved: bool) -> Markup {
    let l = ctx.lang;
    let title = l.t(
        "Hva vil du bli varslet om?",
        "What do you want to be notified about?",
    );
    let choice = |name: &str, value: &str, id: &str, checked: bool, label: &str| {
        html! {
            div.choice {
                input type="radio" name=(name) id=(id) value=(value) checked[checked];
                label for=(id) { (label) }
            }
        }
    };
    let t = current.transfers;
    let body = html! {
        h1 { (title) }
        @if saved {
            div.notice.info role="status" { p { (l.t("Valgene dine er lagret.", "Your choices are saved.")) } }
        }
        p.lead { (l.t(
            "Du får varsel i innboksen din i Bru, og gjennom tjenesten kommunen bruker for å varsle deg.",
            "You are notified in your Bru inbox, and through the service the municipality uses to notify you."
        )) }
        form method="post" action="/varsler/innstillinger" {
            input type="hidden" name="csrf" value=(ctx.csrf.unwrap_or_default());
            fieldset {
                legend { (l.t("Når noen henter opplysninger om meg", "When someone fetches information about me")) }
                (choice("transfers", "all", "transfers-all", t == TransferNotices::All,
                    l.t("Varsle meg hver gang", "Notify me every time")))
                (choice("transfers", "denied", "transfers-denied", t == TransferNotices::Denied,
                    l.t("Bare når Bru sa nei", "Only when Bru said no")))
                (choice("transfers", "none", "transfers-none", t == TransferNotices::None,
                    l.t("Aldri", "Never")))
            }
            fieldset {
                legend { (l.t("Når noe skjer med samtykkene mine", "When something happens with my consents")) }
                p.hint { (l.t(
                    "For eksempel en ny forespørsel som venter på svar, eller et samtykke som snart utløper.",
                    "For example a new request waiting for your answer, or a consent that ends soon."
                )) }
                (choice("consent_events", "ja", "consent-events-yes", current.consent_events,
                    l.t("Varsle meg", "Notify me")))
                (choice("consent_events", "nei", "consent-events-no", !current.consent_events,
                    l.t("Ikke varsle meg", "Do not notify me")))
            }
            p.hint { (l.t(
                "Hvis noen bruker nødtilgang for å komme forbi en sperre du har satt, får du alltid varsel.",
                "If someone uses emergency access to get past a block you have set, you are always notified."
            )) }
            button.button.primary type="submit" { (l.t("Lagre", "Save")) }
        }
        p { a href="/varsler" { (l.t("Tilbake til varslene", "Back to the notifications")) } }
    };
    layout(ctx, title, body)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::text::Lang;

    fn ctx(lang: Lang) -> Ctx<'static> {
        Ctx {
            lang,
            path: "/varsler",
            nav: Nav::Notifications,
            csrf: Some("token"),
            acting: None,
        }
    }

    #[test]
    fn the_settings_page_checks_the_current_choice_in_both_languages() {
        let s = NotificationSettings {
            transfers: TransferNotices::Denied,
            consent_events: false,
        };
        let nb = settings_page(&ctx(Lang::Nb), s, true).into_string();
        assert!(
            nb.contains(r#"id="transfers-denied" value="denied" checked"#),
            "{nb}"
        );
        assert!(
            nb.contains(r#"id="consent-events-no" value="nei" checked"#),
            "{nb}"
        );
        assert!(nb.contains("Valgene dine er lagret."));
        let en =
            settings_page(&ctx(Lang::En), NotificationSettings::default(), false).into_string();
        assert!(
            en.contains(r#"id="transfers-all" value="all" checked"#),
            "{en}"
        );
        assert!(en.contains("Only when Bru said no"));
        assert!(!en.contains("saved"));
    }
}
