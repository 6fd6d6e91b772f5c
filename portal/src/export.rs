//! "Last ned alt om meg" / "Download everything about me" (SPEC 10): the
//! portal's button leads to the gateway's `GET /citizen/v1/export`, which the
//! browser reaches with its portal session instead of a token; this says
//! whom that session's pages are about.

use axum::http::HeaderMap;
use maud::{html, Markup};
use policy::PersonNumber;

use crate::session::Lookup;
use crate::text::Lang;
use crate::Portal;

/// Where the download is.
pub const EXPORT_PATH: &str = "/citizen/v1/export";

impl Portal {
    /// The person an active portal session's pages are about: the citizen,
    /// or whom they chose to act for ("Representer noen andre"), the relation
    /// asked again. `None` without an active session, or when the choice no
    /// longer holds (the gateway then asks for a token, and refuses).
    pub async fn session_subject(&self, headers: &HeaderMap) -> Option<PersonNumber> {
        let Lookup::Active(session) = self.sessions.lookup(headers, crate::now()).await else {
            return None;
        };
        let me = self.citizen(&session)?;
        match crate::represent::acting(self, headers, &session, &me, false).await {
            Ok(None) => Some(me),
            Ok(Some(r)) => Some(r.person),
            Err(()) => None,
        }
    }
}

/// The download button with a sentence on what it gives.
pub fn download(l: Lang) -> Markup {
    html! {
        section.export aria-labelledby="export-heading" {
            h2 #export-heading { (l.t("Last ned alt om meg", "Download everything about me")) }
            p { (l.t(
                "Du får én fil med samtykkene dine og hele historikken deres, og hver gang noen har bedt om opplysninger om deg, med bevis for at det står i loggen. Hvem som helst kan kontrollere filen uten Bru.",
                "You get one file with your consents and their whole history, and every time someone has asked for information about you, with proof that it is in the log. Anyone can check the file without Bru."
            )) }
            p.actions {
                a.button href=(EXPORT_PATH) download="bru-alt-om-meg.json" type="application/json" {
                    (l.t("Last ned alt om meg (JSON)", "Download everything about me (JSON)"))
                }
            }
        }
    }
}
