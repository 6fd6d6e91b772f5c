//! Helpers shared by Bru's JSON APIs beside the data plane (the consent
//! requester API, the citizen API, the audit API): JSON answers and the
//! request checks they share. Their errors are one type, `ApiError`
//! (`api_error.rs`), answered with the data plane's problem body. What the
//! citizen API shows of consents and transfers is built in `portal::view`,
//! which the portal's pages share.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use serde::Serialize;
use serde_json::Value;

pub use crate::api_error::ApiError;
pub use crate::problem::Problem;

/// The longest JSON body these APIs read.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON answer, never cached (it is about one caller or one person).
pub fn json<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response {
    let bytes = match serde_json::to_vec(body) {
        // Every JSON answer ends with a newline, as a terminal expects.
        Ok(mut bytes) => {
            bytes.push(b'\n');
            bytes
        }
        // Our answers are structs of strings and numbers; this does not happen.
        Err(e) => return ApiError::Internal(Box::new(e)).into_response(),
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A request member Bru refuses: 400 `malformed_request` naming the field.
/// `message` must not quote the value (it may be a person number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        // A field name can come from the caller (an unknown member): keep it short.
        FieldError {
            field: field.chars().take(64).collect(),
            message: message.into(),
        }
    }
}

impl From<policy::ConsentRequestError> for FieldError {
    fn from(e: policy::ConsentRequestError) -> Self {
        FieldError::new(e.field, e.message)
    }
}

/// The body as one JSON object with no repeated member, or why not.
pub fn json_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, FieldError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(FieldError::new(
            "body",
            format!("is larger than {MAX_BODY_BYTES} bytes"),
        ));
    }
    if crate::auth::has_duplicate_keys(body) {
        return Err(FieldError::new(
            "body",
            "is not JSON, or names a member twice",
        ));
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(FieldError::new("body", "must be a JSON object")),
        Err(_) => Err(FieldError::new("body", "is not JSON")),
    }
}

/// Ids Bru issues are UUIDs; anything else is not looked up.
pub use portal::is_consent_id;
