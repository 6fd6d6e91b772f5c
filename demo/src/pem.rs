//! Just enough PEM to write the PKCS#8 keys that aws-lc-rs hands back as DER.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Wraps DER in a PEM block with 64-character lines, as RFC 7468 asks.
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    // base64 output is ASCII, so slicing it into 64-byte chunks never splits a character.
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
