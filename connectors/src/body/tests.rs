#![allow(clippy::unwrap_used)]

use std::convert::Infallible;

use futures_util::stream;
use http_body_util::{Full, StreamBody};

use super::*;

fn chunks(
    parts: &[&'static str],
) -> StreamBody<impl futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>>> {
    let frames: Vec<Result<Frame<Bytes>, Infallible>> = parts
        .iter()
        .map(|p| Ok(Frame::data(Bytes::from_static(p.as_bytes()))))
        .collect();
    StreamBody::new(stream::iter(frames))
}

#[tokio::test]
async fn collects_a_single_chunk_without_copying() {
    let data = Bytes::from_static(b"{\"a\":1}");
    let got = collect_limited(Full::new(data.clone()), 100).await.unwrap();
    assert_eq!(got, data);
    // Same allocation: the static slice handed back as it was.
    assert_eq!(got.as_ptr(), data.as_ptr());
}

#[tokio::test]
async fn collects_many_chunks() {
    let got = collect_limited(chunks(&["{\"a\"", ":", "", "1}"]), 7)
        .await
        .unwrap();
    assert_eq!(&got[..], b"{\"a\":1}");
}

#[tokio::test]
async fn empty_body_is_empty() {
    let got = collect_limited(Full::new(Bytes::new()), 0).await.unwrap();
    assert!(got.is_empty());
}

#[tokio::test]
async fn refuses_a_declared_length_over_the_limit() {
    let err = collect_limited(Full::new(Bytes::from_static(b"12345")), 4)
        .await
        .unwrap_err();
    assert!(matches!(err, CollectError::TooLarge { limit: 4 }));
    assert!(err.is_too_large());
}

#[tokio::test]
async fn refuses_a_stream_that_grows_over_the_limit() {
    let err = collect_limited(chunks(&["123", "456", "789"]), 8)
        .await
        .unwrap_err();
    assert!(err.is_too_large());
}

#[tokio::test]
async fn passes_body_errors_on() {
    let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = vec![
        Ok(Frame::data(Bytes::from_static(b"12"))),
        Err(std::io::Error::other("reset")),
    ];
    let err = collect_limited(StreamBody::new(stream::iter(frames)), 100)
        .await
        .unwrap_err();
    assert!(matches!(err, CollectError::Body(_)));
    assert!(!err.is_too_large());
    assert!(err.to_string().contains("reset"));
}

#[test]
fn outcome_completeness() {
    let done = BodyOutcome {
        bytes: 3,
        end: BodyEnd::Complete,
    };
    assert!(done.is_complete());
    for end in [
        BodyEnd::TooLarge,
        BodyEnd::UpstreamFailed,
        BodyEnd::Cancelled,
    ] {
        assert!(!BodyOutcome { bytes: 3, end }.is_complete());
    }
}
