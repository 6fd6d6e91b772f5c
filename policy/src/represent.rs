//! Representation (SPEC 9.3): who may act for whom, on which basis, and
//! what a representative may do with a consent. Pure decisions: the
//! gateway gathers the relations (the registry of parental responsibility,
//! the ID-porten token's `idporten:fullmakt`) and asks here.
//!
//! - A **parent** with parental responsibility (Folkeregisteret's
//!   `foreldreansvar`) may read a child's consents while the child is under
//!   18 (parental responsibility ends at majority, vergemålsloven § 8), and
//!   decide for a dataset only while the child is under the dataset's
//!   `parent_until_age` (default 16 for health data, pasient- og
//!   brukerrettighetsloven § 4-3: from 16 the young person consents
//!   alone; 18 otherwise).
//! - A **guardian** (verge, from Vergemålsregisteret through ID-porten) or a
//!   **fullmakt** holder may act within the roles of the token's
//!   `permissions`, and decide for a dataset only with a role the dataset
//!   accepts (`fullmakt_roles`); a dataset may refuse guardians altogether
//!   (`guardianship = false`).

use std::fmt;

pub use crate::model::Representation;
use crate::model::{Dataset, FieldMask};

/// On which basis a representative acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Basis {
    Parent,
    Guardian,
    Fullmakt,
}

impl Basis {
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Parent => "parent",
            Basis::Guardian => "guardian",
            Basis::Fullmakt => "fullmakt",
        }
    }
}

/// Who took a decision about a consent: the person themself or a
/// representative on a basis. Stored with every consent event (`by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Actor {
    Myself,
    Representative(Basis),
}

impl Actor {
    pub fn as_str(self) -> &'static str {
        match self {
            Actor::Myself => "self",
            Actor::Representative(b) => b.as_str(),
        }
    }

    pub fn parse(s: &str) -> Option<Actor> {
        Some(match s {
            "self" => Actor::Myself,
            "parent" => Actor::Representative(Basis::Parent),
            "guardian" => Actor::Representative(Basis::Guardian),
            "fullmakt" => Actor::Representative(Basis::Fullmakt),
            _ => return None,
        })
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Majority in Norway (vergemålsloven § 2): parental responsibility ends.
pub const MAJORITY: u8 = 18;
/// Health consent from 16 (pasient- og brukerrettighetsloven § 4-3).
pub const HEALTH_CONSENT_AGE: u8 = 16;

impl Dataset {
    /// Health data (a special category, GDPR art. 9): marked in policy
    /// (`health = true`), or minimised as FHIR, the health-care exchange standard.
    pub fn is_health(&self) -> bool {
        self.health.unwrap_or_else(|| {
            self.purposes
                .iter()
                .any(|p| matches!(p.mask, FieldMask::FhirResourceTypes(_)))
        })
    }

    /// The age from which a parent can no longer decide for the child here.
    pub fn parent_until_age(&self) -> u8 {
        self.representation
            .parent_until_age
            .unwrap_or(if self.is_health() {
                HEALTH_CONSENT_AGE
            } else {
                MAJORITY
            })
    }
}

/// One relation in which the logged-in person may act for another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relation {
    /// Parental responsibility for a child of this age (whole years, today).
    Parent { age: u8 },
    /// A guardianship or fullmakt from ID-porten, with its roles.
    Fullmakt { basis: Basis, roles: Vec<String> },
}

impl Relation {
    pub fn basis(&self) -> Basis {
        match self {
            Relation::Parent { .. } => Basis::Parent,
            Relation::Fullmakt { basis, .. } => *basis,
        }
    }

    /// Whether the relation lets its holder act at all (see the person's
    /// consents and log). A parent's ends when the child comes of age.
    pub fn is_current(&self) -> bool {
        match self {
            Relation::Parent { age } => *age < MAJORITY,
            Relation::Fullmakt { roles, .. } => !roles.is_empty(),
        }
    }
}

/// Why a representative may not decide a consent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepresentationRefusal {
    #[error("from the age of {age} the person decides on {dataset} themself; a parent cannot")]
    OwnVoice { dataset: String, age: u8 },
    #[error("a guardian cannot decide on {dataset}")]
    NoGuardianship { dataset: String },
    #[error(
        "deciding on {dataset} needs a fullmakt with one of the roles {}",
        .accepted.join(", ")
    )]
    RoleMissing {
        dataset: String,
        accepted: Vec<String>,
    },
}

/// Whether a representative in `relation` may decide (accept, reject,
/// revoke) a consent covering `datasets`: every dataset must allow it.
pub fn may_decide(relation: &Relation, datasets: &[&Dataset]) -> Result<(), RepresentationRefusal> {
    for d in datasets {
        let rules = &d.representation;
        match relation {
            Relation::Parent { age } => {
                let until = d.parent_until_age();
                if *age >= until {
                    return Err(RepresentationRefusal::OwnVoice {
                        dataset: d.id.to_string(),
                        age: until,
                    });
                }
            }
            Relation::Fullmakt { basis, roles } => {
                if *basis == Basis::Guardian && !rules.guardianship {
                    return Err(RepresentationRefusal::NoGuardianship {
                        dataset: d.id.to_string(),
                    });
                }
                if !roles.iter().any(|r| rules.fullmakt_roles.contains(r)) {
                    return Err(RepresentationRefusal::RoleMissing {
                        dataset: d.id.to_string(),
                        accepted: rules.fullmakt_roles.clone(),
                    });
                }
            }
        }
    }
    Ok(())
}

/// The sentences `bru explain` prints about a dataset's representation rules.
pub fn explain(d: &Dataset) -> Vec<String> {
    let r = &d.representation;
    let mut lines = vec![format!(
        "a parent may decide for a child under {}{}",
        d.parent_until_age(),
        match r.parent_until_age {
            Some(_) => " (representation.parent_until_age)".to_owned(),
            None if d.is_health() => " (the default for health data)".to_owned(),
            None => " (the default)".to_owned(),
        }
    )];
    if r.fullmakt_roles.is_empty() {
        lines.push(
            "no guardian or fullmakt holder may decide (no representation.fullmakt_roles)".into(),
        );
    } else {
        lines.push(format!(
            "a fullmakt holder{} may decide with one of the roles {}",
            if r.guardianship { " or guardian" } else { "" },
            r.fullmakt_roles.join(", ")
        ));
        if !r.guardianship {
            lines.push("guardians may not decide (representation.guardianship = false)".into());
        }
    }
    lines
}

/// Whole years from `born` to `today`.
pub fn age_on(born: time::Date, today: time::Date) -> u8 {
    let mut years = today.year() - born.year();
    if (today.month() as u8, today.day()) < (born.month() as u8, born.day()) {
        years -= 1;
    }
    u8::try_from(years.max(0)).unwrap_or(u8::MAX)
}

#[cfg(test)]
mod tests;
