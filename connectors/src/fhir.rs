//! FHIR R4 paging through Bru: a search result `Bundle` names its other
//! pages in `link` entries (`relation` = `self`, `next`, `previous`, …) with
//! the provider's own URLs. Bru points them back at itself, so that following
//! `next` is a call through Bru, checked and recorded like the first one.
//!
//! The provider's path and query (`?patient=<fnr>&_page=2`) never appear in
//! a link Bru writes: they go into an opaque page token that only Bru can
//! open ([`PageLinks`]; the gateway seals them), and the link is
//! `{bru}/data/{provider}/{dataset}?bru_page={token}`.

use std::sync::Arc;

use http::uri::{Scheme, Uri};
use serde_json::Value;

/// The query parameter of Bru's paging links: `?bru_page={token}`.
pub const PAGE_PARAM: &str = "bru_page";

/// Seals the provider's path-and-query under the dataset (`/CarePlan/7`,
/// `?patient=…&_page=2`, or both) into a URL-safe page token; `None` when it
/// cannot (the link is then removed, never written in clear).
pub type PageLinks = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

use crate::minimise::MinimiseError;

/// Whether a `Content-Type` value is FHIR JSON (`application/fhir+json`,
/// with or without parameters).
pub fn is_fhir_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/fhir+json"))
}

/// Rewrites the links of one dataset's Bundles from the provider's URLs to Bru's.
///
/// A link under `{provider base}/{dataset}` becomes Bru's dataset URL with
/// the rest of its path and its query sealed in a page token, e.g.
/// `http://fhir.internal/r4/hjemmetjeneste?patient=…&_page=2` →
/// `https://bru.example/data/helsenorge/hjemmetjeneste?bru_page=…`. A link to
/// the provider outside the dataset cannot be followed through this dataset
/// and would only show the provider's internal address: it is removed. Links
/// to other hosts are kept as they are.
#[derive(Clone)]
pub struct FhirLinkRewriter {
    scheme: Scheme,
    host: String,
    port: u16,
    /// `{base path}/{dataset}`, no trailing slash.
    path: String,
    /// `{public_url}/data/{provider}/{dataset}`, no trailing slash.
    bru: String,
    page: PageLinks,
}

impl std::fmt::Debug for FhirLinkRewriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FhirLinkRewriter")
            .field(
                "provider",
                &format_args!("{}://{}:{}{}", self.scheme, self.host, self.port, self.path),
            )
            .field("bru", &self.bru)
            .finish_non_exhaustive()
    }
}

impl FhirLinkRewriter {
    /// `provider_base` is the upstream's base URL, `dataset` the dataset id,
    /// `bru_dataset_url` Bru's URL for the dataset, `{public_url}/data/{provider}/{dataset}`,
    /// `page` what seals a link's path and query.
    pub fn new(
        provider_base: &Uri,
        dataset: &str,
        bru_dataset_url: &str,
        page: PageLinks,
    ) -> Option<Self> {
        let scheme = provider_base.scheme()?.clone();
        let host = provider_base.host()?.to_ascii_lowercase();
        let port = port_of(provider_base)?;
        let path = format!(
            "{}/{}",
            provider_base.path().trim_end_matches('/'),
            dataset.trim_matches('/')
        );
        Some(FhirLinkRewriter {
            scheme,
            host,
            port,
            path,
            bru: bru_dataset_url.trim_end_matches('/').to_owned(),
            page,
        })
    }

    /// Rewrites a FHIR JSON body. `Ok(None)` when there is nothing to change
    /// (not a Bundle, or no link to the provider), so the caller can pass the
    /// original bytes on untouched. Fails closed on a body that is not JSON.
    pub fn rewrite(&self, body: &[u8]) -> Result<Option<Vec<u8>>, MinimiseError> {
        let mut doc: Value = serde_json::from_slice(body)?;
        if !self.rewrite_value(&mut doc) {
            return Ok(None);
        }
        Ok(Some(serde_json::to_vec(&doc)?))
    }

    /// Rewrites the `link` array of a Bundle in place; whether anything changed.
    pub fn rewrite_value(&self, doc: &mut Value) -> bool {
        let Some(bundle) = doc.as_object_mut() else {
            return false;
        };
        if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
            return false;
        }
        let Some(Value::Array(links)) = bundle.get_mut("link") else {
            return false;
        };
        let mut changed = false;
        links.retain_mut(|link| {
            let Some(url) = link.get("url").and_then(Value::as_str) else {
                return true;
            };
            match self.map(url) {
                Mapped::Foreign => true,
                Mapped::Rewritten(new) => {
                    link["url"] = Value::String(new);
                    changed = true;
                    true
                }
                Mapped::Unreachable => {
                    changed = true;
                    false
                }
            }
        });
        if links.is_empty() {
            bundle.remove("link");
        }
        changed
    }

    /// Where one link goes.
    pub fn map(&self, url: &str) -> Mapped {
        let Ok(uri) = url.parse::<Uri>() else {
            return Mapped::Foreign;
        };
        let same_origin = uri.scheme() == Some(&self.scheme)
            && uri
                .host()
                .is_some_and(|h| h.eq_ignore_ascii_case(&self.host))
            && port_of(&uri) == Some(self.port);
        if !same_origin {
            return Mapped::Foreign;
        }
        let Some(rest) = uri.path().strip_prefix(self.path.as_str()) else {
            return Mapped::Unreachable;
        };
        // Only at a segment boundary: `/r4/inntekt` is not under `/r4/inn`.
        if !(rest.is_empty() || rest.starts_with('/')) {
            return Mapped::Unreachable;
        }
        let mut target = rest.to_owned();
        if let Some(q) = uri.query() {
            target.push('?');
            target.push_str(q);
        }
        match (self.page)(&target) {
            Some(token) => Mapped::Rewritten(format!("{}?{PAGE_PARAM}={token}", self.bru)),
            None => Mapped::Unreachable,
        }
    }
}

/// What [`FhirLinkRewriter::map`] makes of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapped {
    /// Not the provider's: kept as it is.
    Foreign,
    /// The provider's, within the dataset: Bru's URL for it, with a page token.
    Rewritten(String),
    /// The provider's, outside the dataset: removed.
    Unreachable,
}

fn port_of(uri: &Uri) -> Option<u16> {
    uri.port_u16().or(match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("https") => Some(443),
        Some(s) if s.eq_ignore_ascii_case("http") => Some(80),
        _ => None,
    })
}

#[cfg(test)]
mod tests;
