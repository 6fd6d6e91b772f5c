//! What a caller wrote, made fit for a record: no person number, bounded
//! length. Records are immutable Merkle leaves, so this runs before the
//! write: [`crate::AuditLog`] applies [`NewRecord::scrub`] to every record
//! it is given, and the gateway calls [`scrub_path`] with the call's
//! subject first, so that the subject reads `{subject}` and anyone else
//! `{person}`.
//!
//! A person number is any run of exactly 11 digits, or a longer run holding
//! 11 digits in a row, that passes both mod-11 control digits
//! ([`policy::PersonNumber::control_digits_valid`]), whatever its date and
//! whether synthetic numbers are allowed: scrubbing a number that is not a
//! person's costs a record some detail; missing one that is cannot be
//! undone. The same holds for `DDMMYY NNNNN` (one space, `.` or `-` after
//! the sixth digit), for digits the path percent-encodes, and for runs of
//! at least 11 digits with any non-ASCII digit among them (fullwidth,
//! Arabic-Indic, …), which are scrubbed without checking.

use std::borrow::Cow;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

use super::NewRecord;

/// The call's own subject, where the caller put its number.
pub const SUBJECT: &str = "{subject}";
/// Any other person number.
pub const PERSON: &str = "{person}";

/// The longest `path` a record keeps, in bytes: real dataset paths
/// (`/data/helsenorge/hjemmetjeneste/CarePlan/{id}/_history/2`) are far
/// shorter, and 512 bytes still shows the security team what was sent.
pub const MAX_PATH_BYTES: usize = 512;
/// The longest caller text (`purpose`, `client_id`, `consent_id`) a record
/// keeps: purpose ids and client ids are short names, consent ids are
/// UUIDs (36); 128 bytes keeps any real one whole and bounds the rest.
pub const MAX_TEXT_BYTES: usize = 128;
/// The longest break-glass reason (SPEC 10) a record keeps: a sentence or
/// two; the gateway refuses a longer one, so a cut one means a caller other
/// than the gateway wrote it.
pub const MAX_REASON_BYTES: usize = 256;
/// The longest `method`: the longest registered method
/// (`VERSION-CONTROL`) has 15 characters.
pub const MAX_METHOD_BYTES: usize = 32;

/// Marks a value that was cut to its bound.
const CUT: &str = "…";

impl NewRecord {
    /// Scrubs and bounds every member a caller's words reach (`path`,
    /// `method`, `purpose`, `client_id`, `consent_id`, `break_glass`); the rest is Bru's own
    /// (organisation numbers, codes, ids, pseudonyms) or the operator's
    /// (`legal_ref`). Idempotent.
    pub fn scrub(&mut self) {
        // Every record passes here: a member without a number and within
        // its bound is left where it is, not copied.
        match scrub_path(&self.path, None) {
            Cow::Owned(path) => self.path = path,
            // A prefix of the path: what stands before any query or fragment.
            Cow::Borrowed(kept) => {
                let kept = kept.len();
                self.path.truncate(kept);
            }
        }
        scrub_member(&mut self.path, MAX_PATH_BYTES);
        scrub_member(&mut self.method, MAX_METHOD_BYTES);
        for text in [&mut self.purpose, &mut self.client_id]
            .into_iter()
            .flatten()
        {
            scrub_member(text, MAX_TEXT_BYTES);
        }
        // A break-glass reason is the caller's free text about a person in
        // an emergency: the likeliest member to hold someone's number.
        if let Some(reason) = &mut self.break_glass {
            scrub_member(reason, MAX_REASON_BYTES);
        }
        // Bru's own consent ids (UUIDs) are kept as they are: a use of the
        // consent is taken by this id, and a random UUID that happens to hold
        // 11 digits is nobody's number. The gateway scrubs a caller's id that
        // names no consent before it gets here.
        if let Some(id) = &mut self.consent_id {
            if !is_uuid(id) {
                scrub_member(id, MAX_TEXT_BYTES);
            }
        }
    }
}

/// `text` scrubbed and bounded in place; untouched when it needs neither.
fn scrub_member(text: &mut String, max: usize) {
    if let Cow::Owned(scrubbed) = scrub_text(text, None) {
        *text = scrubbed;
    }
    if text.len() > max {
        *text = bound(text, max);
    }
}

/// `path` with every person number replaced, in every segment and in
/// percent-encoded form too, and without any query or fragment. `subject`
/// (11 ASCII digits) becomes [`SUBJECT`], any other number [`PERSON`]. A
/// segment holding none is kept exactly as sent; one that does is written
/// back decoded, scrubbed and encoded again.
pub fn scrub_path<'a>(path: &'a str, subject: Option<&str>) -> Cow<'a, str> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    // Without percent-encoding, the path scrubs as one text: a run of digits
    // never crosses a `/`, and `/` does not join `DDMMYY NNNNN`.
    if !path.contains('%') {
        return scrub_text(path, subject);
    }
    let mut out = String::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        let decoded = percent_decode_str(segment).decode_utf8_lossy();
        match scrub_text(&decoded, subject) {
            Cow::Borrowed(_) => out.push_str(segment),
            Cow::Owned(scrubbed) => out.extend(utf8_percent_encode(&scrubbed, SEGMENT)),
        }
    }
    Cow::Owned(out)
}

/// What a scrubbed segment is written back with: `%`-encoded where a path
/// segment needs it, with the placeholders' braces left readable.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'|');

/// `text` with every person number replaced (see the module's notes);
/// borrowed when there was none.
pub fn scrub_text<'a>(text: &'a str, subject: Option<&str>) -> Cow<'a, str> {
    // Found one by one, not collected: most texts a record holds (its time,
    // transfer id, organisation numbers) have digits, and a vector of their
    // runs was an allocation each, seven a statutory call (#21).
    let mut runs = DigitRuns {
        chars: text.char_indices(),
    }
    .peekable();
    let mut found: Vec<(usize, usize, &'static str)> = Vec::new();
    while let Some(run) = runs.next() {
        // DDMMYY NNNNN: two runs joined by one separator.
        if let Some(next) = runs.peek() {
            let joined = run.ascii
                && next.ascii
                && run.chars == 6
                && next.chars == 5
                && next.start == run.end + 1
                && matches!(text.as_bytes().get(run.end), Some(b' ' | b'.' | b'-'));
            if joined {
                let digits = format!(
                    "{}{}",
                    &text[run.start..run.end],
                    &text[next.start..next.end]
                );
                if policy::PersonNumber::control_digits_valid(&digits) {
                    found.push((run.start, next.end, placeholder(&digits, subject)));
                    runs.next();
                    continue;
                }
            }
        }
        if run.chars >= 11 {
            let digits = &text[run.start..run.end];
            let person = !run.ascii
                || (0..=digits.len() - 11)
                    .any(|k| policy::PersonNumber::control_digits_valid(&digits[k..k + 11]));
            if person {
                found.push((run.start, run.end, placeholder(digits, subject)));
            }
        }
    }
    if found.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end, with) in found {
        out.push_str(&text[at..start]);
        out.push_str(with);
        at = end;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

fn placeholder(digits: &str, subject: Option<&str>) -> &'static str {
    let ascii: String = digits.chars().filter(char::is_ascii_digit).collect();
    if subject.is_some_and(|s| s == ascii) {
        SUBJECT
    } else {
        PERSON
    }
}

/// A maximal run of digits: byte range, length in characters, whether all ASCII.
struct Run {
    start: usize,
    end: usize,
    chars: usize,
    ascii: bool,
}

/// ASCII digits, and any other Unicode number (fullwidth `１`, Arabic-Indic
/// `١`, …): a reader takes them for digits, so the scrubber does too.
fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric())
}

/// The maximal runs of digits of a text, in order.
struct DigitRuns<'a> {
    chars: std::str::CharIndices<'a>,
}

impl Iterator for DigitRuns<'_> {
    type Item = Run;

    fn next(&mut self) -> Option<Run> {
        let mut current: Option<Run> = None;
        for (at, c) in self.chars.by_ref() {
            if is_digit(c) {
                let run = current.get_or_insert(Run {
                    start: at,
                    end: at,
                    chars: 0,
                    ascii: true,
                });
                run.end = at + c.len_utf8();
                run.chars += 1;
                run.ascii &= c.is_ascii();
            } else if current.is_some() {
                return current;
            }
        }
        current
    }
}

/// `text` cut to at most `max` bytes at a character boundary, marked `…`
/// when cut. Cutting a scrubbed text cannot make a number appear: it only
/// shortens its last run of digits.
pub fn bound(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub(CUT.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{CUT}", &text[..end])
}

/// `8-4-4-4-12` lowercase hex: the form of every consent id Bru issues.
fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

#[cfg(test)]
#[path = "scrub_tests.rs"]
mod tests;
