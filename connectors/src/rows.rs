//! Row filters: a provider's JSON answer narrowed to the rows a consent
//! covers (an Altinn consent's metadata, e.g. `inntektsaar = 2022` keeps
//! the rows whose `aar` is 2022; SPEC 9.1).

use bytes::Bytes;
use serde_json::Value;

/// Why an answer could not be filtered; it is then refused, never passed unfiltered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowFilterError {
    #[error("the provider's response is not JSON")]
    NotJson,
    #[error("the provider's response is neither an array of rows nor one row")]
    NotRows,
}

/// Keeps the rows of `body` whose every `(field, value)` matches: the row's
/// top-level `field` is the string `value`, or a number or boolean written
/// so. A `None` value matches no row. The rows are the root array's
/// elements, or the root object itself (kept whole, or answered as `{}`).
/// An empty filter returns the body as it is.
pub fn filter_rows(
    filter: &[(String, Option<String>)],
    body: &Bytes,
) -> Result<Bytes, RowFilterError> {
    if filter.is_empty() {
        return Ok(body.clone());
    }
    let root: Value = serde_json::from_slice(body).map_err(|_| RowFilterError::NotJson)?;
    let keeps = |row: &Value| {
        filter.iter().all(|(field, wanted)| {
            let Some(wanted) = wanted else {
                return false;
            };
            match row.get(field) {
                Some(Value::String(s)) => s == wanted,
                Some(v @ (Value::Number(_) | Value::Bool(_))) => {
                    // A number or boolean as JSON writes it: 2022, true.
                    let text = v.to_string();
                    text == *wanted
                }
                _ => false,
            }
        })
    };
    let kept = match root {
        Value::Array(rows) => Value::Array(rows.into_iter().filter(|r| keeps(r)).collect()),
        Value::Object(_) if keeps(&root) => root,
        Value::Object(_) => Value::Object(serde_json::Map::new()),
        _ => return Err(RowFilterError::NotRows),
    };
    serde_json::to_vec(&kept)
        .map(Bytes::from)
        .map_err(|_| RowFilterError::NotJson)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn run(filter: &[(&str, Option<&str>)], body: &str) -> Result<String, RowFilterError> {
        let filter: Vec<(String, Option<String>)> = filter
            .iter()
            .map(|(f, v)| (f.to_string(), v.map(str::to_owned)))
            .collect();
        filter_rows(&filter, &Bytes::from(body.to_owned()))
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
    }

    #[test]
    fn rows_by_consented_metadata() {
        let body = r#"[{"aar":2022,"sum":1},{"aar":2023,"sum":2},{"aar":"2022","sum":3}]"#;
        assert_eq!(
            run(&[("aar", Some("2022"))], body).unwrap(),
            r#"[{"aar":2022,"sum":1},{"aar":"2022","sum":3}]"#
        );
        assert_eq!(run(&[("aar", None)], body).unwrap(), "[]");
        assert_eq!(run(&[("aar", Some("1999"))], body).unwrap(), "[]");
        assert_eq!(run(&[], body).unwrap(), body);
        assert_eq!(
            run(&[("aar", Some("2023"))], r#"{"aar":2022}"#).unwrap(),
            "{}"
        );
        assert_eq!(
            run(&[("aar", Some("2022"))], r#"{"aar":2022}"#).unwrap(),
            r#"{"aar":2022}"#
        );
        assert_eq!(
            run(&[("aar", Some("1"))], "x"),
            Err(RowFilterError::NotJson)
        );
        assert_eq!(
            run(&[("aar", Some("1"))], "1"),
            Err(RowFilterError::NotRows)
        );
    }
}
