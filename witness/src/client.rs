//! The log's side of tlog-witness: send a checkpoint with its consistency
//! proof, check the cosignature that comes back.

use consent_db::merkle::Hash;

use crate::cosignature::{CosignatureError, Cosigner};
use crate::protocol::{note_text, AddCheckpoint};

#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// 409: the witness last cosigned another size (resend from it).
    #[error("the witness knows size {0}")]
    Conflict(u64),
    /// 422: the witness found the consistency proof wrong (a fork, to it).
    #[error("the witness refused the consistency proof")]
    BadProof,
    #[error("the witness answered {0}")]
    Refused(u16),
    #[error("the witness's cosignature: {0}")]
    Cosignature(#[from] CosignatureError),
    #[error("the checkpoint is not a signed note")]
    NotANote,
    #[error("cannot reach the witness: {0}")]
    Transport(#[from] reqwest::Error),
}

/// One configured witness.
#[derive(Clone)]
pub struct WitnessClient {
    /// The witness's submission prefix (`…/add-checkpoint` is appended).
    pub url: String,
    pub cosigner: Cosigner,
    http: reqwest::Client,
}

impl WitnessClient {
    pub fn new(url: &str, cosigner: Cosigner, http: reqwest::Client) -> WitnessClient {
        WitnessClient {
            url: url.trim_end_matches('/').to_owned(),
            cosigner,
            http,
        }
    }

    /// Sends `checkpoint` (a signed note) with the consistency proof from
    /// `old_size`; returns the witness's verified cosignature line.
    pub async fn add_checkpoint(
        &self,
        old_size: u64,
        proof: Vec<Hash>,
        checkpoint: &str,
    ) -> Result<String, WitnessError> {
        let (text, _) = note_text(checkpoint).ok_or(WitnessError::NotANote)?;
        let body = AddCheckpoint {
            old_size,
            proof,
            checkpoint: checkpoint.to_owned(),
        }
        .encode();
        let response = self
            .http
            .post(format!("{}/add-checkpoint", self.url))
            .body(body)
            .send()
            .await?;
        let status = response.status().as_u16();
        let answer = response.text().await?;
        match status {
            200 => {
                self.cosigner.verify(text, &answer)?;
                // Only our witness's line, whatever else came back.
                let line = answer
                    .lines()
                    .find(|l| self.cosigner.verify(text, l).is_ok())
                    .map(|l| format!("{l}\n"))
                    .ok_or(WitnessError::Refused(200))?;
                Ok(line)
            }
            409 => answer
                .trim_end()
                .parse()
                .map(WitnessError::Conflict)
                .map_or(Err(WitnessError::Refused(409)), Err),
            422 => Err(WitnessError::BadProof),
            s => Err(WitnessError::Refused(s)),
        }
    }
}
