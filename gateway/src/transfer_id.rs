//! Transfer ids: UUID version 7 (RFC 9562 §5.7), the call's time in
//! milliseconds and 74 random bits.
//!
//! `uuid::Uuid::now_v7` asks the kernel for its random bits on every id
//! (`getrandom`, 1.5 system calls a call in `strace -c`, about 2 % of the
//! plain-proxy rung's CPU; bench/README.md, "#21, session 9"). aws-lc's
//! generator, the one crypto provider Bru has, draws them from a DRBG the
//! kernel seeds: `strace -c` counts 10 `getrandom` calls for the 10,000 ids
//! of the test below.

/// A new transfer id, in its hyphenated form.
pub fn new() -> String {
    let mut random = [0u8; 10];
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    match aws_lc_rs::rand::fill(&mut random) {
        Ok(()) => uuid::Builder::from_unix_timestamp_millis(millis, &random)
            .into_uuid()
            .to_string(),
        // aws-lc failing to draw is not expected; the kernel's bits then.
        Err(_) => uuid::Uuid::now_v7().to_string(),
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
