//! `[[witness]] url, key` (SPEC section 11): the witnesses Bru asks to
//! cosign each new checkpoint (C2SP tlog-witness).

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWitness {
    /// The witness's submission prefix (`/add-checkpoint` is appended).
    pub url: String,
    /// The witness's C2SP verifier key (`name+keyid+base64(0x04 ‖ key)`).
    pub key: String,
}

#[derive(Debug, Clone)]
pub struct WitnessConfig {
    pub url: String,
    pub cosigner: witness::Cosigner,
}

/// The witnesses, or one message per witness that is wrong.
pub fn parse(raw: &RawWitness) -> Result<WitnessConfig, String> {
    let url = raw.url.trim_end_matches('/');
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(format!("witness url {url:?} is not an http(s) URL"));
    }
    let cosigner = witness::Cosigner::parse_verifier_key(&raw.key)
        .map_err(|e| format!("witness key {:?}: {e}", raw.key))?;
    Ok(WitnessConfig {
        url: url.to_owned(),
        cosigner,
    })
}
