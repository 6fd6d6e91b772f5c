//! Acting for someone else in the citizen API (SPEC 9.3): whom the
//! logged-in citizen may represent, and on which basis, gathered from the
//! registry of parental responsibility (`[registry]`, connectors'
//! `registry_lookup`) and from the ID-porten token's `idporten:fullmakt`;
//! what a representative may do is decided in `policy::represent`.
//!
//! - `GET /citizen/v1/represented` lists the persons I may act for, each
//!   under an opaque `party` (a keyed pseudonym, never a person number).
//! - Every citizen endpoint acts for that person when the request carries
//!   `Bru-On-Behalf-Of: {party}`. A party that is not one of mine (another
//!   family's, a made-up id, a person number) is refused with the same
//!   answer, whether or not such a person exists: the header's value is
//!   only ever compared with my own relations, never looked up.
//! - Every call that acts for someone asks the registry now, reading or
//!   deciding, so an ended relation (the child turned 18, responsibility
//!   moved) ends at the next call (SPEC 9.3); only the list of whom I may
//!   represent is served from an answer up to [`CACHE_TTL`] old.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::Response;

use crate::api_error::ApiError;
use consent_db::{ConsentEvent, EventActor, EventType};
use http::{header, HeaderMap, StatusCode};
use policy::represent::{self, Actor, Basis, Relation};
use policy::PersonNumber;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;
use crate::json_api;
use crate::openapi::{StoreUnavailable, Unauthorized};

/// The name `[registry]` is checked and built under, as an upstream; no
/// provider id can have it (`[a-z0-9-]+`).
pub const REGISTRY: &str = "[registry]";
/// The request header naming the party a citizen acts for.
pub const ON_BEHALF_OF: &str = "bru-on-behalf-of";
/// How long a registry answer serves for reading.
pub const CACHE_TTL: Duration = Duration::from_secs(5);
/// Representatives whose relations are kept at once; more clear the cache.
const CACHE_MAX: usize = 10_000;
/// The RAR type of ID-porten's fullmakt (Digdir, `oidc_protocol_rar`).
const FULLMAKT_TYPE: &str = "idporten:fullmakt";

/// One person the citizen may act for.
#[derive(Debug, Clone)]
pub struct Represented {
    pub person: PersonNumber,
    pub name: String,
    pub relation: Relation,
    /// What the relation rests on, as evidence (no number): e.g.
    /// `folkeregisteret:foreldreansvar`, `idporten:fullmakt helse velferd`.
    pub source: String,
    pub party: String,
}

impl Represented {
    /// `read`, and `decide` when some consent dataset of the policy lets the
    /// relation decide (each consent is checked again, dataset by dataset).
    fn may(&self, policy: &policy::Policy) -> Vec<&'static str> {
        let mut may = vec!["read"];
        let decides = policy
            .datasets
            .values()
            .filter(|d| d.basis == policy::LegalBasis::Consent)
            .any(|d| represent::may_decide(&self.relation, &[d]).is_ok());
        if decides {
            may.push("decide");
        }
        may
    }
}

/// The registry client and its cache, kept in `App` (and lent to the portal).
pub struct Representation {
    registry: Option<connectors::Upstream>,
    connector: connectors::Connector,
    pseudonym: consent_db::Pseudonymiser,
    allow_synthetic_ids: bool,
    cache: Mutex<HashMap<PersonNumber, Cached>>,
}

/// A representative's children as the registry said, and when.
type Cached = (Instant, Arc<Vec<ParentRelation>>);

/// A child the registry says I have parental responsibility for.
#[derive(Debug, Clone)]
struct ParentRelation {
    child: PersonNumber,
    name: String,
    age: u8,
}

impl Representation {
    pub fn new(
        registry: Option<connectors::Upstream>,
        connector: connectors::Connector,
        pseudonym: consent_db::Pseudonymiser,
        allow_synthetic_ids: bool,
    ) -> Self {
        Representation {
            registry,
            connector,
            pseudonym,
            allow_synthetic_ids,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// My children under parental responsibility, from the registry
    /// (`fresh`: asked now; else an answer up to [`CACHE_TTL`] old).
    async fn children(
        &self,
        me: &PersonNumber,
        fresh: bool,
    ) -> Result<Arc<Vec<ParentRelation>>, connectors::RegistryError> {
        let Some(registry) = &self.registry else {
            return Ok(Arc::new(Vec::new()));
        };
        if !fresh {
            let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((at, children)) = cache.get(me) {
                if at.elapsed() < CACHE_TTL {
                    return Ok(Arc::clone(children));
                }
            }
        }
        let mine = self
            .connector
            .registry_lookup(registry, &[me.expose()])
            .await?;
        let numbers: Vec<&str> = mine
            .iter()
            .flat_map(|p| p.children.iter().map(String::as_str))
            .take(connectors::MAX_LOOKUP)
            .collect();
        let documents = self.connector.registry_lookup(registry, &numbers).await?;
        let today = time::OffsetDateTime::now_utc().date();
        let children: Vec<ParentRelation> = documents
            .into_iter()
            .filter(|c| c.responsible.iter().any(|r| r == me.expose()))
            .filter_map(|c| {
                let child = PersonNumber::parse(&c.number, self.allow_synthetic_ids).ok()?;
                let born = time::Date::parse(
                    c.born.as_deref()?,
                    time::macros::format_description!("[year]-[month]-[day]"),
                )
                .ok()?;
                Some(ParentRelation {
                    child,
                    name: c.name,
                    age: represent::age_on(born, today),
                })
            })
            .filter(|c| (Relation::Parent { age: c.age }).is_current())
            .collect();
        let children = Arc::new(children);
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(me.clone(), (Instant::now(), Arc::clone(&children)));
        Ok(children)
    }

    /// Whether `guardian` is `person`'s verge in the registry (else a
    /// fullmakt from ID-porten is a fullmakt).
    async fn is_guardian(&self, guardian: &PersonNumber, person: &PersonNumber) -> bool {
        let Some(registry) = &self.registry else {
            return false;
        };
        match self
            .connector
            .registry_lookup(registry, &[person.expose()])
            .await
        {
            Ok(docs) => docs
                .iter()
                .any(|d| d.guardians.iter().any(|g| g == guardian.expose())),
            Err(e) => {
                tracing::warn!(error = %e, "the registry did not answer about a guardianship");
                false
            }
        }
    }
}

/// Everyone `me` (holding `token`) may act for now.
pub async fn relations(
    app: &App,
    token: &crate::auth::CitizenToken,
    fresh: bool,
) -> Result<Vec<Represented>, ApiError> {
    let me = &token.pid;
    let mut out = Vec::new();
    let children = app
        .representation
        .children(me, fresh)
        .await
        .map_err(|e| ApiError::RegistryUnavailable(Box::new(e)))?;
    for c in children.iter() {
        out.push(Represented {
            party: app.keys.pseudonym.party_ref(&c.child),
            person: c.child.clone(),
            name: c.name.clone(),
            relation: Relation::Parent { age: c.age },
            source: "folkeregisteret:foreldreansvar".into(),
        });
    }
    for f in fullmakter(
        me,
        &token.authorization_details,
        app.config.allow_synthetic_ids,
    ) {
        if out.iter().any(|r| r.person == f.authorizer) || &f.authorizer == me {
            continue;
        }
        let basis = if app.representation.is_guardian(me, &f.authorizer).await {
            Basis::Guardian
        } else {
            Basis::Fullmakt
        };
        out.push(Represented {
            party: app.keys.pseudonym.party_ref(&f.authorizer),
            source: format!("idporten:fullmakt {}", f.roles.join(" ")),
            person: f.authorizer,
            name: f.name,
            relation: Relation::Fullmakt {
                basis,
                roles: f.roles,
            },
        });
    }
    Ok(out)
}

/// One `idporten:fullmakt` of the token, per ID-porten's RAR data model
/// (Digdir, `oidc_protocol_rar`: `authorizer {name, pid}`,
/// `authorized_representative {name, pid}`, `permissions [{owner, role}]`).
struct Fullmakt {
    authorizer: PersonNumber,
    name: String,
    roles: Vec<String>,
}

fn fullmakter(pid: &PersonNumber, details: &[Value], allow_synthetic: bool) -> Vec<Fullmakt> {
    let mut out = Vec::new();
    for d in details {
        if d.get("type").and_then(Value::as_str) != Some(FULLMAKT_TYPE) {
            continue;
        }
        // The fullmakt is the logged-in person's own: ID-porten names them.
        let representative = d
            .pointer("/authorized_representative/pid")
            .and_then(Value::as_str);
        if representative != Some(pid.expose()) {
            continue;
        }
        let Some(authorizer) = d
            .pointer("/authorizer/pid")
            .and_then(Value::as_str)
            .and_then(|p| PersonNumber::parse(p, allow_synthetic).ok())
        else {
            continue;
        };
        let name = d
            .pointer("/authorizer/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect();
        let roles: Vec<String> = d
            .get("permissions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("role").and_then(Value::as_str))
            .filter(|r| !r.is_empty() && r.len() <= 64)
            .map(str::to_owned)
            .collect();
        if roles.is_empty() {
            continue;
        }
        out.push(Fullmakt {
            authorizer,
            name,
            roles,
        });
    }
    out
}

/// Whom a citizen API call acts for, and who acts.
#[derive(Debug, Clone)]
pub struct Acting {
    /// Whose consents and log the call reads or changes.
    pub subject: PersonNumber,
    /// `None` when I act for myself.
    pub represented: Option<Represented>,
}

impl Acting {
    pub fn actor(&self) -> Actor {
        match &self.represented {
            None => Actor::Myself,
            Some(r) => Actor::Representative(r.relation.basis()),
        }
    }
}

/// A refused `Bru-On-Behalf-Of`, before it is answered.
pub struct Refusal {
    /// The pseudonym of the citizen who sent it (`None`: no valid token).
    pub sender_ref: Option<String>,
    pub error: ApiError,
}

/// Authenticates the citizen and resolves `Bru-On-Behalf-Of`, recording
/// nothing (see [`acting`]).
async fn resolve(app: &App, headers: &HeaderMap) -> Result<Acting, Refusal> {
    let token = app
        .auth
        .citizen(headers.get(header::AUTHORIZATION))
        .await
        .map_err(|e| Refusal {
            sender_ref: None,
            error: e.into(),
        })?;
    let Some(party) = headers.get(ON_BEHALF_OF) else {
        return Ok(Acting {
            subject: token.pid,
            represented: None,
        });
    };
    let sender_ref = Some(app.keys.pseudonym.subject_ref(&token.pid));
    let party = party.to_str().unwrap_or_default().trim();
    // Asked now, reading too: an ended relation ends at the next call.
    let found = relations(app, &token, true)
        .await
        .map_err(|error| Refusal {
            sender_ref: sender_ref.clone(),
            error,
        })?
        .into_iter()
        .find(|r| !party.is_empty() && r.party == party);
    match found {
        Some(r) => Ok(Acting {
            subject: r.person.clone(),
            represented: Some(r),
        }),
        None => Err(Refusal {
            sender_ref,
            error: ApiError::NotRepresented,
        }),
    }
}

/// Authenticates the citizen and resolves `Bru-On-Behalf-Of`, asking the
/// registry now (`_decide`, whether the call changes a consent, no longer
/// matters: reading for someone ends with the relation too).
///
/// A refused party is something the security team must see: it is an
/// `audit_read` record (`deny`, `not_represented`) about the citizen who
/// sent it, at the route's template, and never with the header's value
/// (it may be someone's person number). What cannot be recorded is not
/// answered (503 `audit_unavailable`), as in the audit API.
pub async fn acting(app: &App, headers: &HeaderMap, _decide: bool) -> Result<Acting, ApiError> {
    match resolve(app, headers).await {
        Ok(acting) => Ok(acting),
        Err(
            refusal @ Refusal {
                sender_ref: Some(_),
                error: ApiError::NotRepresented,
            },
        ) => Err(record_refusal(app, refusal, None).await),
        Err(refusal) => Err(refusal.error),
    }
}

/// Writes the `audit_read` record of a refusal after the citizen's token
/// was verified, about its sender, under `route` (else the route the citizen
/// API's layer remembered); the refusal carries its transfer id. A refusal
/// without a sender is answered unrecorded here (the caller counts it).
pub async fn record_refusal(app: &App, refusal: Refusal, route: Option<&str>) -> ApiError {
    let Refusal {
        sender_ref: Some(sender_ref),
        error,
    } = refusal
    else {
        return refusal.error;
    };
    let (method, remembered) = ROUTE
        .try_with(Clone::clone)
        .unwrap_or_else(|_| (http::Method::GET, CITIZEN_API.to_owned()));
    let route = route.map_or(remembered, str::to_owned);
    let transfer_id = crate::transfer_id::new();
    let mut record = consent_db::NewRecord::new(
        consent_db::RecordKind::AuditRead,
        transfer_id.clone(),
        method.as_str(),
        route,
    );
    record.subject_ref = Some(sender_ref);
    record.decision = Some(consent_db::Verdict::Deny);
    record.code = Some(error.code().to_owned());
    record.status = Some(error.status().as_u16());
    if app.record(record).await.is_err() {
        return ApiError::Failure(crate::problem::Failure::AuditUnavailable).recorded(&transfer_id);
    }
    error.recorded(&transfer_id)
}

/// The route a refusal is recorded under when no template is known.
const CITIZEN_API: &str = "/citizen/v1";

tokio::task_local! {
    /// The method and route template (never the concrete path: a path
    /// segment may hold anything) of the citizen request being answered.
    static ROUTE: (http::Method, String);
}

/// A route layer of the citizen API: the request's route template, for the
/// record of a refused `Bru-On-Behalf-Of`.
pub async fn remember_route(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| CITIZEN_API.to_owned(), |p| p.as_str().to_owned());
    let method = request.method().clone();
    ROUTE.scope((method, route), next.run(request)).await
}

/// For an endpoint with its own authentication and its own `audit_read`
/// record (the proof): the person a token-bearing request with
/// `Bru-On-Behalf-Of` acts for (`None` without the header). A refusal names
/// its sender's pseudonym, for that endpoint's record.
pub async fn represented_subject(
    app: &App,
    headers: &HeaderMap,
) -> Result<Option<PersonNumber>, Refusal> {
    if headers.get(ON_BEHALF_OF).is_none() || headers.get(header::AUTHORIZATION).is_none() {
        return Ok(None);
    }
    resolve(app, headers).await.map(|a| Some(a.subject))
}

/// Before a representative accepts, rejects or revokes consent `id`: the
/// consent's datasets must all let this relation decide
/// (`policy::represent::may_decide`). `Ok(())` for the person themself.
pub async fn check_decision(app: &App, acting: &Acting, id: &str) -> Result<(), ApiError> {
    let Some(r) = &acting.represented else {
        return Ok(());
    };
    let Some(row) = app
        .store
        .get_consent_at(id, consent_db::Timestamp::now())
        .await?
    else {
        // Not found: the action itself answers 404 as for anyone.
        return Ok(());
    };
    let datasets: Vec<&policy::Dataset> = row
        .datasets
        .iter()
        .filter_map(|d| app.policy.dataset(&d.provider, &d.dataset))
        .collect();
    match represent::may_decide(&r.relation, &datasets) {
        Ok(()) => Ok(()),
        Err(refusal) => Err(ApiError::RepresentationNotAllowed(format!(
            "{}.",
            capitalise(&refusal.to_string())
        ))),
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl Acting {
    /// Who takes a consent action, for the store to write with its event
    /// (`None`: the person themself).
    pub fn action_actor(&self) -> Option<consent_db::ActionActor<'_>> {
        self.represented.as_ref().map(|r| consent_db::ActionActor {
            actor: r.relation.basis().as_str(),
            basis: &r.source,
        })
    }
}

/// A consent event as the person (and their representative) sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventView {
    #[serde(flatten)]
    pub event: ConsentEvent,
    /// Who took it: the person (`self`) or a representative on a basis.
    #[schema(value_type = String, example = "parent")]
    pub by: &'static str,
    /// What a representative's relation rests on; absent for `self`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub basis: Option<String>,
}

/// The events of a consent with who took each.
pub fn event_views(events: &[ConsentEvent], actors: &[EventActor]) -> Vec<EventView> {
    events
        .iter()
        .enumerate()
        .map(|(seq, e)| {
            let actor = actors.iter().find(|a| a.seq == seq as i64);
            EventView {
                event: *e,
                by: actor
                    .and_then(|a| Actor::parse(&a.actor))
                    .unwrap_or(Actor::Myself)
                    .as_str(),
                basis: actor.map(|a| a.basis.clone()),
            }
        })
        .collect()
}

/// The members a consent receipt gets when a representative granted it:
/// the representative's role, never their number.
pub fn receipt_representative(actors: &[EventActor], events: &[ConsentEvent]) -> Option<Value> {
    let seq = events.iter().position(|e| e.kind == EventType::Accepted)?;
    let a = actors.iter().find(|a| a.seq == seq as i64)?;
    Some(serde_json::json!({
        "role": a.actor,
        "basis": a.basis,
    }))
}

/// A consent's events with who took each, or the store's failure.
pub async fn events_with_actors(
    app: &App,
    id: &str,
    events: &[ConsentEvent],
) -> Result<Vec<EventView>, ApiError> {
    let actors = app.store.event_actors(id).await?;
    Ok(event_views(events, &actors))
}

// ---- GET /citizen/v1/represented -------------------------------------------

/// One person I may act for.
#[derive(Debug, Serialize, ToSchema)]
pub struct RepresentedView {
    /// Opaque; send it as `Bru-On-Behalf-Of`.
    pub party: String,
    pub name: String,
    /// `parent`, `guardian` or `fullmakt`.
    #[schema(example = "parent")]
    pub basis: &'static str,
    /// `read`, and `decide` where the relation can decide (per dataset, see the policy).
    pub may: Vec<&'static str>,
}

pub fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new().routes(routes!(represented))
}

/// The persons I may act for (SPEC 9.3).
#[utoipa::path(
    get,
    path = "/citizen/v1/represented",
    tag = "citizen",
    operation_id = "listRepresented",
    security(("idporten" = [])),
    responses(
        (status = 200, description = "Whom I may act for", body = Vec<RepresentedView>),
        (status = 401, response = Unauthorized),
        (status = 503, response = StoreUnavailable),
    )
)]
async fn represented(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = app.auth.citizen(headers.get(header::AUTHORIZATION)).await?;
    let list = relations(&app, &token, false).await?;
    let views: Vec<RepresentedView> = list
        .iter()
        .map(|r| RepresentedView {
            party: r.party.clone(),
            name: r.name.clone(),
            basis: r.relation.basis().as_str(),
            may: r.may(&app.policy),
        })
        .collect();
    Ok(json_api::json(StatusCode::OK, &views))
}

/// Documents `Bru-On-Behalf-Of` on every citizen endpoint that honours it
/// (the OpenAPI document is built from the handlers, which do not name it).
pub fn document_on_behalf_of(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let honours =
            path.starts_with("/citizen/v1/consents") || path.starts_with("/citizen/v1/transfers");
        let Some(item) = item.as_object_mut().filter(|_| honours) else {
            continue;
        };
        for op in item.values_mut().filter_map(Value::as_object_mut) {
            let parameters = op
                .entry("parameters")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Some(list) = parameters.as_array_mut() {
                list.push(serde_json::json!({
                    "name": "Bru-On-Behalf-Of",
                    "in": "header",
                    "required": false,
                    "description": "Act for this party (a `party` from `GET /citizen/v1/represented`), SPEC 9.3.",
                    "schema": { "type": "string" },
                }));
            }
            if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
                responses.entry("403").or_insert_with(|| serde_json::json!({
                    "description": "`not_represented`: Bru-On-Behalf-Of names no one I may act for \
                        (recorded as an `audit_read` record; its id in `transfer_id`); \
                        `representation_not_allowed`: a representative may not decide this consent",
                    "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } },
                }));
            }
        }
    }
}

/// The portal's "Representer noen andre": the children the registry names
/// (the portal's session carries no ID-porten fullmakt).
impl portal::represent::RepresentationSource for Representation {
    fn represented<'a>(
        &'a self,
        me: &'a PersonNumber,
        details: &'a [Value],
        fresh: bool,
    ) -> portal::represent::Found<'a> {
        Box::pin(async move {
            let children = self.children(me, fresh).await.map_err(|e| e.to_string())?;
            let mut out: Vec<portal::represent::Represented> = children
                .iter()
                .map(|c| portal::represent::Represented {
                    party: self.pseudonym.party_ref(&c.child),
                    person: c.child.clone(),
                    name: c.name.clone(),
                    relation: Relation::Parent { age: c.age },
                    source: "folkeregisteret:foreldreansvar".into(),
                })
                .collect();
            for f in fullmakter(me, details, self.allow_synthetic_ids) {
                if out.iter().any(|r| r.person == f.authorizer) || &f.authorizer == me {
                    continue;
                }
                let basis = if self.is_guardian(me, &f.authorizer).await {
                    Basis::Guardian
                } else {
                    Basis::Fullmakt
                };
                out.push(portal::represent::Represented {
                    party: self.pseudonym.party_ref(&f.authorizer),
                    source: format!("idporten:fullmakt {}", f.roles.join(" ")),
                    person: f.authorizer,
                    name: f.name,
                    relation: Relation::Fullmakt {
                        basis,
                        roles: f.roles,
                    },
                });
            }
            Ok(out)
        })
    }
}
