//! Norwegian identifiers: organisasjonsnummer and fødselsnummer / D-nummer.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    #[error("an organisation number has 9 digits")]
    OrgLength,
    #[error("the organisation number's control digit is wrong")]
    OrgControlDigit,
    #[error("an organisation is written 0192:{{9 digits}}")]
    OrgPrefix,
    #[error("a person number has 11 digits")]
    PersonLength,
    #[error("the person number's control digits are wrong")]
    PersonControlDigits,
    #[error("the person number does not hold a real date of birth")]
    PersonDate,
    #[error("synthetic person numbers are not allowed here")]
    PersonSynthetic,
}

/// A 9-digit organisasjonsnummer with a valid mod-11 control digit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrgNumber(String);

const ORG_WEIGHTS: [u32; 8] = [3, 2, 7, 6, 5, 4, 3, 2];

/// ISO 6523's code for Norwegian organisation numbers, before the number.
const ISO6523_PREFIX: &str = "0192:";

impl OrgNumber {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let digits = digits::<9>(s).ok_or(IdError::OrgLength)?;
        let control = mod11(&digits[..8], &ORG_WEIGHTS).ok_or(IdError::OrgControlDigit)?;
        if control != digits[8] {
            return Err(IdError::OrgControlDigit);
        }
        Ok(OrgNumber(s.to_owned()))
    }

    /// Parses Maskinporten's ISO 6523 form, `0192:{orgnr}`.
    pub fn parse_iso6523(s: &str) -> Result<Self, IdError> {
        let rest = s.strip_prefix(ISO6523_PREFIX).ok_or(IdError::OrgPrefix)?;
        Self::parse(rest)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `0192:{orgnr}`, as on the wire.
    pub fn iso6523(&self) -> String {
        // Sized once: `format!` would grow it (a reallocation a call, #21).
        let mut id = String::with_capacity(ISO6523_PREFIX.len() + self.0.len());
        id.push_str(ISO6523_PREFIX);
        id.push_str(&self.0);
        id
    }

    /// Whether `text` is this number's [`iso6523`](Self::iso6523) form, without writing it.
    pub fn is_iso6523(&self, text: &str) -> bool {
        text.strip_prefix(ISO6523_PREFIX) == Some(self.0.as_str())
    }
}

impl std::fmt::Display for OrgNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An 11-digit fødselsnummer or D-nummer with both control digits valid.
///
/// Deliberately has no `Display`: a person number must not end up in a log line
/// by accident. Use [`PersonNumber::expose`] where the number itself is needed.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PersonNumber(String);

impl std::fmt::Debug for PersonNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PersonNumber(***********)")
    }
}

const K1_WEIGHTS: [u32; 9] = [3, 7, 6, 1, 8, 9, 4, 5, 2];
const K2_WEIGHTS: [u32; 10] = [5, 4, 3, 2, 7, 6, 5, 4, 3, 2];

impl PersonNumber {
    /// Validates control digits and the date of birth. Synthetic numbers (test
    /// numbers with month + 40, or month + 80 as Tenor's) pass only when
    /// `allow_synthetic` is set.
    pub fn parse(s: &str, allow_synthetic: bool) -> Result<Self, IdError> {
        let d = digits::<11>(s).ok_or(IdError::PersonLength)?;
        let k1 = mod11(&d[..9], &K1_WEIGHTS).ok_or(IdError::PersonControlDigits)?;
        let k2 = mod11(&d[..10], &K2_WEIGHTS).ok_or(IdError::PersonControlDigits)?;
        if k1 != d[9] || k2 != d[10] {
            return Err(IdError::PersonControlDigits);
        }
        let mut day = d[0] * 10 + d[1];
        let mut month = d[2] * 10 + d[3];
        let year2 = d[4] * 10 + d[5];
        let individual = d[6] * 100 + d[7] * 10 + d[8];
        // D-nummer: day + 40.
        if day > 40 {
            day -= 40;
        }
        // Month 13–40 is neither real nor synthetic: a date error, not a synthetic one.
        let synthetic = month > 40;
        if month > 80 {
            month -= 80;
        } else if month > 40 {
            month -= 40;
        }
        if synthetic && !allow_synthetic {
            return Err(IdError::PersonSynthetic);
        }
        let year = century(individual, year2).ok_or(IdError::PersonDate)? + year2 as i32;
        let month = time::Month::try_from(month as u8).map_err(|_| IdError::PersonDate)?;
        time::Date::from_calendar_date(year, month, day as u8).map_err(|_| IdError::PersonDate)?;
        Ok(PersonNumber(s.to_owned()))
    }

    /// The number itself. Never log it; store it only where a person must be shown.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether 11 ASCII digits pass both mod-11 control digits, whatever
    /// their date and whether synthetic numbers are allowed: the widest test
    /// for something that may be a person number (about 1 in 120 random
    /// 11-digit strings passes), for scrubbing text where scrubbing too much
    /// is safe.
    pub fn control_digits_valid(s: &str) -> bool {
        let Some(d) = digits::<11>(s) else {
            return false;
        };
        mod11(&d[..9], &K1_WEIGHTS) == Some(d[9]) && mod11(&d[..10], &K2_WEIGHTS) == Some(d[10])
    }
}

/// The century from the individual number, as Skatteetaten assigns them.
fn century(individual: u32, year2: u32) -> Option<i32> {
    match individual {
        0..=499 => Some(1900),
        500..=749 if year2 >= 54 => Some(1800),
        500..=999 if year2 <= 39 => Some(2000),
        900..=999 if year2 >= 40 => Some(1900),
        _ => None,
    }
}

fn digits<const N: usize>(s: &str) -> Option<[u32; N]> {
    let bytes = s.as_bytes();
    if bytes.len() != N {
        return None;
    }
    let mut out = [0u32; N];
    for (o, b) in out.iter_mut().zip(bytes) {
        if !b.is_ascii_digit() {
            return None;
        }
        *o = u32::from(b - b'0');
    }
    Some(out)
}

/// The mod-11 control digit; `None` when the remainder makes the number invalid.
fn mod11(digits: &[u32], weights: &[u32]) -> Option<u32> {
    let sum: u32 = digits.iter().zip(weights).map(|(d, w)| d * w).sum();
    match 11 - sum % 11 {
        11 => Some(0),
        10 => None,
        c => Some(c),
    }
}

#[cfg(test)]
mod tests;

/// `provider/dataset`, e.g. `nav/inntekt`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DatasetRef {
    pub provider: String,
    pub dataset: String,
}

impl DatasetRef {
    /// Whether `text` is this reference's `provider/dataset`, without writing it.
    pub fn is(&self, text: &str) -> bool {
        text.strip_prefix(self.provider.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
            == Some(self.dataset.as_str())
    }

    pub fn new(provider: impl Into<String>, dataset: impl Into<String>) -> Self {
        DatasetRef {
            provider: provider.into(),
            dataset: dataset.into(),
        }
    }
}

/// `provider/dataset` had no `/`, or an empty side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a dataset is written provider/dataset, e.g. nav/inntekt")]
pub struct DatasetRefError;

impl std::str::FromStr for DatasetRef {
    type Err = DatasetRefError;

    /// Parses `provider/dataset`; the policy decides whether it names anything.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('/') {
            Some((p, d)) if !p.is_empty() && !d.is_empty() && !d.contains('/') => {
                Ok(DatasetRef::new(p, d))
            }
            _ => Err(DatasetRefError),
        }
    }
}

impl std::fmt::Display for DatasetRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.provider, self.dataset)
    }
}
