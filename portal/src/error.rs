//! The portal's errors. None of them quotes a token, a secret or a person
//! number, so any of them may be logged.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum PortalError {
    #[error("portal config: {0}")]
    Config(String),
    #[error("crypto failed: {0}")]
    Crypto(&'static str),
    #[error(transparent)]
    Oidc(#[from] OidcError),
    #[error("the session store: {0}")]
    Store(consent_db::StoreError),
}

/// Why a login with the OpenID provider failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OidcError {
    /// The provider could not be reached, or answered with an error status.
    #[error("the OpenID provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider's discovery document, JWKS or token response is not what
    /// OpenID Connect says it must be.
    #[error("the OpenID provider answered something unusable: {0}")]
    Protocol(String),
    /// The provider (or the citizen) ended the login with an error.
    #[error("the login was not completed: {0}")]
    Denied(String),
    /// The callback does not belong to the login this browser started.
    #[error("the login state does not match")]
    StateMismatch,
    /// The id_token failed a check.
    #[error("the id_token is not valid: {0}")]
    InvalidIdToken(&'static str),
    /// The login level is below `idporten-loa-substantial`.
    #[error("the login level (acr) is below idporten-loa-substantial")]
    InsufficientAcr,
}
