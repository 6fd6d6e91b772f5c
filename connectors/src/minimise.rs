//! Response minimisation: the consumer sees only what the policy allows for
//! its purpose. Fails closed: a body that cannot be minimised is an error,
//! never passed through as it is.

use std::fmt;

use policy::{FieldMask, PathStep};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why a response could not be minimised (the gateway answers 502).
///
/// Never contains content from the body: only where parsing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MinimiseError {
    #[error("the provider's response is not valid JSON (line {line}, column {column})")]
    InvalidJson { line: usize, column: usize },
    #[error("the provider's response is not a FHIR resource")]
    NotFhir,
    #[error("the provider's FHIR resource is of a type this purpose may not see")]
    ResourceTypeNotAllowed,
    #[error("the provider's FHIR Bundle is malformed: {0}")]
    MalformedBundle(&'static str),
}

impl From<serde_json::Error> for MinimiseError {
    fn from(e: serde_json::Error) -> Self {
        // Deliberately not e.to_string(): serde messages may quote the body.
        MinimiseError::InvalidJson {
            line: e.line(),
            column: e.column(),
        }
    }
}

/// Applies a purpose's mask to a whole response body (JSON).
///
/// # `JsonFields(paths)`
///
/// Each path ([`policy::JsonPath`]) names one place from the document's
/// root; the value there is kept whole. On the way, an object keeps only the
/// members some path continues through, an array (`[]` in the path) keeps
/// its elements that still hold something, and a container left empty is
/// removed. Nothing else is kept: a member with an allowed name under a
/// parent no path names is removed with that parent. Arrays at the root are
/// crossed without `[]`, so with `["aar", "sum"]` NAV's
/// `[{"aar": 2025, "sum": 512000, "arbeidsgivere": [{"sum": 1}]}]` becomes
/// `[{"aar": 2025, "sum": 512000}]`, and with `["inntekt[].aar"]`
/// `{"person": "…", "sum": 1, "inntekt": [{"aar": 2025, "sum": 512000}]}`
/// becomes `{"inntekt": [{"aar": 2025}]}`. The top level keeps its type
/// (`{}` or `[]` when nothing is left); a top-level scalar becomes `null`.
/// Member order is preserved; of duplicate keys, all are filtered alike. A
/// path that does not parse (the policy loader refuses those) keeps nothing.
///
/// # `FhirResourceTypes(types)`
///
/// A `Bundle` keeps only the `entry` items whose `resource.resourceType` is
/// listed (a Bundle inside a kept entry is filtered the same way), `total`
/// becomes the number kept, and an `entry` left empty is removed (FHIR JSON
/// has no empty arrays). A single resource of a listed type passes, one of
/// another type is an error. Kept resources lose `contained` resources of
/// types not listed. Output member order follows `serde_json`'s map.
///
/// # `None`
///
/// The body is returned unchanged; the gateway streams such responses
/// instead of calling this.
pub fn minimise(mask: &FieldMask, body: &[u8]) -> Result<Vec<u8>, MinimiseError> {
    match mask {
        FieldMask::None => Ok(body.to_vec()),
        FieldMask::JsonFields(paths) => json_fields(paths, body),
        FieldMask::FhirResourceTypes(types) => fhir_resource_types(types, body),
    }
}

// ---- JSON fields -----------------------------------------------------------
//
// One pass over the input: the filter writes kept content straight to the
// output and rolls back (truncates) what turns out empty, so nothing is
// built as a tree and member order is the provider's.

fn json_fields(paths: &[String], body: &[u8]) -> Result<Vec<u8>, MinimiseError> {
    let mask = MaskNode::from_paths(paths);
    let mut out = Vec::with_capacity(body.len().min(64 * 1024));
    let mut de = serde_json::Deserializer::from_slice(body);
    Filter {
        node: &mask,
        root: true,
        out: &mut out,
    }
    .deserialize(&mut de)?;
    de.end()?;
    if out.is_empty() {
        out.extend_from_slice(b"null");
    }
    Ok(out)
}

/// The mask's paths as a tree: one node per place some path reaches.
#[derive(Debug, Default)]
struct MaskNode {
    /// A path ends here: the value is kept whole.
    whole: bool,
    /// Object members some path continues through.
    members: Vec<(String, MaskNode)>,
    /// `[]`: what every element of an array here keeps.
    each: Option<Box<MaskNode>>,
}

/// Keeps nothing: the node of every place no path reaches.
static NOTHING: MaskNode = MaskNode {
    whole: false,
    members: Vec::new(),
    each: None,
};

impl MaskNode {
    fn from_paths(paths: &[String]) -> MaskNode {
        let mut root = MaskNode::default();
        for path in paths {
            // The loader refuses a path that does not parse; here it keeps nothing.
            let Ok(policy::JsonPath(steps)) = path.parse::<policy::JsonPath>() else {
                continue;
            };
            let mut node = &mut root;
            for step in steps {
                node = match step {
                    PathStep::Member(name) => {
                        let at = match node.members.iter().position(|(n, _)| *n == name) {
                            Some(at) => at,
                            None => {
                                node.members.push((name, MaskNode::default()));
                                node.members.len() - 1
                            }
                        };
                        &mut node.members[at].1
                    }
                    PathStep::Each => node.each.get_or_insert_with(Default::default),
                };
            }
            node.whole = true;
        }
        root
    }

    fn member(&self, key: &str) -> &MaskNode {
        self.members
            .iter()
            .find(|(n, _)| n == key)
            .map_or(&NOTHING, |(_, node)| node)
    }
}

/// Writes the minimised value; yields whether it kept anything. Scalars
/// write nothing (a kept one is written by [`Copy`]); containers always
/// write their brackets, and the parent truncates them away when they come
/// back empty.
struct Filter<'a> {
    node: &'a MaskNode,
    /// Still in arrays at the document's root, which paths cross implicitly.
    root: bool,
    out: &'a mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for Filter<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Filter<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_str<E>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        // At the root the elements are matched like the root itself;
        // below it only through `[]`. Elements are still read (and
        // checked) when nothing of them is kept.
        let (element, root) = match (self.root, &self.node.each) {
            (true, _) => (self.node, true),
            (false, Some(each)) => (&**each, false),
            (false, None) => (&NOTHING, false),
        };
        let out = self.out;
        out.push(b'[');
        let mut kept = false;
        loop {
            let mark = out.len();
            if kept {
                out.push(b',');
            }
            let next = if element.whole {
                seq.next_element_seed(Copy { out: &mut *out })?
                    .map(|()| true)
            } else {
                seq.next_element_seed(Filter {
                    node: element,
                    root,
                    out: &mut *out,
                })?
            };
            match next {
                Some(true) => kept = true,
                Some(false) => out.truncate(mark),
                None => {
                    out.truncate(mark);
                    break;
                }
            }
        }
        out.push(b']');
        Ok(kept)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let out = self.out;
        out.push(b'{');
        let mut kept = false;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let key = key.as_str();
            let member = self.node.member(key);
            let mark = out.len();
            if kept {
                out.push(b',');
            }
            write_str(out, key)?;
            out.push(b':');
            if member.whole {
                map.next_value_seed(Copy { out: &mut *out })?;
                kept = true;
            } else {
                let value = Filter {
                    node: member,
                    root: false,
                    out: &mut *out,
                };
                if map.next_value_seed(value)? {
                    kept = true;
                } else {
                    out.truncate(mark);
                }
            }
        }
        out.push(b'}');
        Ok(kept)
    }
}

/// Re-writes a value whole (under an allowed key).
struct Copy<'a> {
    out: &'a mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for Copy<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Copy<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        write_json(self.out, &v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        write_json(self.out, &v)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        write_json(self.out, &v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        write_str(self.out, v)
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let out = self.out;
        out.push(b'[');
        let mut first = true;
        loop {
            let mark = out.len();
            if !first {
                out.push(b',');
            }
            if seq.next_element_seed(Copy { out: &mut *out })?.is_none() {
                out.truncate(mark);
                break;
            }
            first = false;
        }
        out.push(b']');
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let out = self.out;
        out.push(b'{');
        let mut first = true;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            if !first {
                out.push(b',');
            }
            first = false;
            write_str(out, key.as_str())?;
            out.push(b':');
            map.next_value_seed(Copy { out: &mut *out })?;
        }
        out.push(b'}');
        Ok(())
    }
}

/// An object key, borrowed from the input when it has no escapes.
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key<'de>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
        Ok(Key::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
        Ok(Key::Owned(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
        Ok(Key::Owned(v))
    }
}

/// A JSON string with serde_json's escaping.
fn write_str<E: de::Error>(out: &mut Vec<u8>, s: &str) -> Result<(), E> {
    write_json(out, s)
}

fn write_json<E: de::Error, T: serde::Serialize + ?Sized>(
    out: &mut Vec<u8>,
    v: &T,
) -> Result<(), E> {
    // Writing to a Vec only fails for values JSON cannot hold.
    serde_json::to_writer(out, v).map_err(|_| E::custom("value cannot be written as JSON"))
}

// ---- FHIR resource types ---------------------------------------------------

fn fhir_resource_types(types: &[String], body: &[u8]) -> Result<Vec<u8>, MinimiseError> {
    let mut doc: Value = serde_json::from_slice(body)?;
    let resource = doc.as_object_mut().ok_or(MinimiseError::NotFhir)?;
    match resource_type(resource) {
        None => return Err(MinimiseError::NotFhir),
        Some("Bundle") => filter_bundle(resource, types)?,
        Some(t) if allowed(types, t) => strip_contained(resource, types),
        Some(_) => return Err(MinimiseError::ResourceTypeNotAllowed),
    }
    Ok(serde_json::to_vec(&doc)?)
}

fn resource_type(resource: &Map<String, Value>) -> Option<&str> {
    resource.get("resourceType").and_then(Value::as_str)
}

fn allowed(types: &[String], t: &str) -> bool {
    types.iter().any(|a| a == t)
}

/// Keeps the entries whose resource is of an allowed type.
fn filter_bundle(bundle: &mut Map<String, Value>, types: &[String]) -> Result<(), MinimiseError> {
    let kept = match bundle.get_mut("entry") {
        None => 0,
        Some(Value::Array(entries)) => {
            entries.retain(|entry| {
                entry
                    .get("resource")
                    .and_then(Value::as_object)
                    .and_then(resource_type)
                    .is_some_and(|t| allowed(types, t))
            });
            for entry in entries.iter_mut() {
                if let Some(Value::Object(resource)) = entry.get_mut("resource") {
                    if resource_type(resource) == Some("Bundle") {
                        filter_bundle(resource, types)?;
                    } else {
                        strip_contained(resource, types);
                    }
                }
            }
            entries.len()
        }
        Some(_) => return Err(MinimiseError::MalformedBundle("entry is not an array")),
    };
    if kept == 0 {
        bundle.remove("entry");
    }
    if let Some(total) = bundle.get_mut("total") {
        *total = Value::from(kept);
    }
    // A Bundle has no `contained` in FHIR; one that does must not carry
    // resources past the mask (found by fuzzing).
    strip_contained(bundle, types);
    Ok(())
}

/// Removes contained resources of types not allowed.
fn strip_contained(resource: &mut Map<String, Value>, types: &[String]) {
    let empty = match resource.get_mut("contained") {
        Some(Value::Array(contained)) => {
            contained.retain(|c| {
                c.as_object()
                    .and_then(resource_type)
                    .is_some_and(|t| allowed(types, t))
            });
            contained.is_empty()
        }
        // Not FHIR-shaped; nothing can be said to be allowed in it.
        Some(_) => true,
        None => false,
    };
    if empty {
        resource.remove("contained");
    }
}

#[cfg(test)]
mod tests;
