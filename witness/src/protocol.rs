//! The C2SP tlog-witness `add-checkpoint` request body
//! (c2sp.org/tlog-witness):
//!
//! ```text
//! old <size>
//! <base64 consistency proof hash>   (zero to 63 lines)
//!
//! <signed checkpoint note>
//! ```

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use consent_db::merkle::Hash;

/// tlog-witness: "The client MUST NOT send more than 63 consistency proof lines."
pub const MAX_PROOF_LINES: usize = 63;

/// The request a log POSTs to `<prefix>/add-checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    pub old_size: u64,
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, signature lines included.
    pub checkpoint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the add-checkpoint request is malformed: {0}")]
pub struct Malformed(pub &'static str);

fn decimal(text: &str) -> Result<u64, Malformed> {
    if text.is_empty()
        || !text.bytes().all(|b| b.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return Err(Malformed(
            "a size is an ASCII decimal without leading zeroes",
        ));
    }
    text.parse().map_err(|_| Malformed("a size is too large"))
}

impl AddCheckpoint {
    pub fn encode(&self) -> String {
        let mut body = format!("old {}\n", self.old_size);
        for hash in &self.proof {
            body.push_str(&STANDARD.encode(hash));
            body.push('\n');
        }
        body.push('\n');
        body.push_str(&self.checkpoint);
        body
    }

    pub fn parse(body: &str) -> Result<AddCheckpoint, Malformed> {
        let (head, checkpoint) = body
            .split_once("\n\n")
            .ok_or(Malformed("no empty line before the checkpoint"))?;
        let mut lines = head.split('\n');
        let old_size = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .ok_or(Malformed("the first line is `old <size>`"))
            .and_then(decimal)?;
        let mut proof = Vec::new();
        for line in lines {
            if proof.len() == MAX_PROOF_LINES {
                return Err(Malformed("more than 63 consistency proof lines"));
            }
            let hash: Hash = STANDARD
                .decode(line)
                .ok()
                .and_then(|h| h.try_into().ok())
                .ok_or(Malformed("a proof line is not 32 bytes of base64"))?;
            proof.push(hash);
        }
        if checkpoint.is_empty() {
            return Err(Malformed("the checkpoint is missing"));
        }
        Ok(AddCheckpoint {
            old_size,
            proof,
            checkpoint: checkpoint.to_owned(),
        })
    }
}

/// The checkpoint's note text (what its signatures sign) and its origin.
pub fn note_text(note: &str) -> Option<(&str, &str)> {
    let split = note.rfind("\n\n")?;
    let text = &note[..=split];
    let origin = text.split('\n').next()?;
    Some((text, origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_example_round_trips() {
        // The example body of c2sp.org/tlog-witness.
        let body = "old 20852014\n\
PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n\
jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n\
5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n\
/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n\
\n\
example.com/behind-the-sofa\n\
20852163\n\
CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\
\n\
\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";
        let req = AddCheckpoint::parse(body).expect("parse");
        assert_eq!(req.old_size, 20_852_014);
        assert_eq!(req.proof.len(), 4);
        assert!(req
            .checkpoint
            .starts_with("example.com/behind-the-sofa\n20852163\n"));
        assert_eq!(req.encode(), body);
        let (text, origin) = note_text(&req.checkpoint).expect("note");
        assert_eq!(origin, "example.com/behind-the-sofa");
        assert!(text.ends_with("=\n"));
    }

    #[test]
    fn malformed_bodies_are_refused() {
        assert!(AddCheckpoint::parse("old 01\n\nx\n").is_err());
        assert!(AddCheckpoint::parse("old 1\nnot-base64\n\nx\n").is_err());
        assert!(AddCheckpoint::parse("new 1\n\nx\n").is_err());
        let many = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n".repeat(64);
        assert!(AddCheckpoint::parse(&format!("old 1\n{many}\nx\n")).is_err());
    }
}
