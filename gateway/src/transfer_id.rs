//! Transfer ids: UUID version 7 (RFC 9562 §5.7), the call's time in
//! milliseconds and 74 random bits.
//!
//! `uuid::Uuid::now_v7` asks the kernel for its random bits on every id
//! (`getrandom`, 1.5 system calls a call in `strace -c`, about 2 % of the
//! plain-proxy rung's CPU; bench/README.md, "#21, session 9"). aws-lc's
//! generator, the one crypto provider Bru has, draws them from a DRBG the
//! kernel seeds. Each draw from it costs the same whatever its length (a
//! lock, `RDRAND` and AES: 0.6 µs a call in the plain-proxy rung's profile,
//! bench/README.md "#21, session 14"), so a thread draws the bits of
//! [`IDS_A_DRAW`] ids at once and hands each out once.

use std::cell::RefCell;

/// Random bytes of one id: 74 bits are used (RFC 9562 §5.7).
const ID_BYTES: usize = 10;
/// Ids whose random bits one draw from aws-lc gives.
const IDS_A_DRAW: usize = 64;

/// A thread's drawn bits; the ids before `next` have had theirs.
struct Drawn {
    bits: [u8; ID_BYTES * IDS_A_DRAW],
    next: usize,
}

thread_local! {
    static DRAWN: RefCell<Drawn> = const {
        RefCell::new(Drawn { bits: [0; ID_BYTES * IDS_A_DRAW], next: IDS_A_DRAW })
    };
}

/// The random bits of one new id, never handed out before; `None` if
/// aws-lc could not draw.
fn random_bits() -> Option<[u8; ID_BYTES]> {
    DRAWN.with(|drawn| {
        let mut drawn = drawn.borrow_mut();
        if drawn.next == IDS_A_DRAW {
            aws_lc_rs::rand::fill(&mut drawn.bits).ok()?;
            drawn.next = 0;
        }
        let at = drawn.next * ID_BYTES;
        let bits = drawn.bits.get(at..at + ID_BYTES)?.try_into().ok()?;
        drawn.next += 1;
        Some(bits)
    })
}

/// A new transfer id, in its hyphenated form.
pub fn new() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    match random_bits() {
        Some(random) => uuid::Builder::from_unix_timestamp_millis(millis, &random)
            .into_uuid()
            .to_string(),
        // aws-lc failing to draw is not expected; the kernel's bits then.
        None => uuid::Uuid::now_v7().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_a_version_7_uuid_of_now_and_never_repeats() {
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis();
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| new()).collect();
        assert_eq!(ids.len(), 10_000, "an id repeated");
        for id in ids.iter().take(100) {
            let uuid = uuid::Uuid::parse_str(id).expect("a UUID");
            assert_eq!(uuid.get_version_num(), 7, "{id}");
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122, "{id}");
            let (secs, nanos) = uuid.get_timestamp().expect("v7 has a time").to_unix();
            let millis = u128::from(secs) * 1000 + u128::from(nanos) / 1_000_000;
            assert!(
                millis >= before && millis <= before + 60_000,
                "{id}: {millis}"
            );
        }
    }
}
