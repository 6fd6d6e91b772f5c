//! Whom a portal page acts for (SPEC 9.3), as data: below both the pages
//! (`pages`, which show it) and the switcher (`represent`, which finds it),
//! so neither imports the other.

use policy::represent::{Basis, Relation};
use policy::PersonNumber;

/// One person the citizen may act for, as the gateway found them.
#[derive(Debug, Clone)]
pub struct Represented {
    /// Opaque (a keyed pseudonym), never a person number.
    pub party: String,
    pub person: PersonNumber,
    pub name: String,
    pub relation: Relation,
    /// What the relation rests on, for the consent's events (no number).
    pub source: String,
}

/// Whom a page acts for, as the layout shows it.
#[derive(Debug, Clone)]
pub struct Acting {
    pub name: String,
    pub basis: Basis,
}

/// What the layout shows of whom a page acts for.
pub fn shown(acting: &Option<Represented>) -> Option<Acting> {
    acting.as_ref().map(|r| Acting {
        name: r.name.clone(),
        basis: r.relation.basis(),
    })
}
