//! The provider's response body on its way to the caller: streamed, counted,
//! capped, and reporting how it ended so the gateway can record the outcome.

use std::pin::{pin, Pin};
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::{oneshot, OwnedSemaphorePermit};

use crate::BoxError;

/// How a response body ended, for the outcome record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyOutcome {
    /// Body bytes handed on towards the caller.
    pub bytes: u64,
    pub end: BodyEnd,
}

impl BodyOutcome {
    /// Whether the caller got the whole body.
    pub fn is_complete(&self) -> bool {
        self.end == BodyEnd::Complete
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEnd {
    /// The provider's body ended normally.
    Complete,
    /// The body grew past `max_response_bytes`; it ended with an error.
    TooLarge,
    /// The provider's connection failed mid-body.
    UpstreamFailed,
    /// The body was dropped before its end (usually: the caller went away).
    Cancelled,
}

/// Why a response body stopped with an error. The server relaying it then
/// aborts the response, so the caller sees a truncated message, never a
/// silently short one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    #[error("the provider's response exceeds the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the provider's response body failed: {0}")]
    Upstream(#[source] hyper::Error),
}

/// The body of a forwarded response.
///
/// Data frames pass through untouched; the provider's trailers are dropped
/// (Bru strips the `Trailer` header, and trailers could carry what the
/// header hygiene removes). Call [`ResponseBody::outcome`] to learn how many
/// bytes went through once the body ends, fails or is dropped.
#[derive(Debug)]
pub struct ResponseBody {
    inner: Incoming,
    limit: u64,
    bytes: u64,
    finished: bool,
    report: Option<oneshot::Sender<BodyOutcome>>,
    /// The call's place under the provider's `max_concurrency`, freed when the body ends.
    permit: Option<OwnedSemaphorePermit>,
}

impl ResponseBody {
    pub(crate) fn new(inner: Incoming, limit: u64) -> ResponseBody {
        ResponseBody {
            inner,
            limit,
            bytes: 0,
            finished: false,
            report: None,
            permit: None,
        }
    }

    /// Holds the call's place among the provider's calls in flight until the body ends.
    pub(crate) fn holding(mut self, permit: Option<OwnedSemaphorePermit>) -> ResponseBody {
        self.permit = permit;
        self
    }

    /// A receiver that gets the [`BodyOutcome`] exactly once: when the body
    /// ends, fails, or is dropped. Calling it again replaces the earlier receiver.
    pub fn outcome(&mut self) -> oneshot::Receiver<BodyOutcome> {
        let (tx, rx) = oneshot::channel();
        self.report = Some(tx);
        rx
    }

    /// Body bytes handed on so far.
    pub fn bytes_so_far(&self) -> u64 {
        self.bytes
    }

    fn finish(&mut self, end: BodyEnd) {
        self.finished = true;
        self.permit = None;
        if let Some(tx) = self.report.take() {
            // The receiver may be gone; then nobody wants to know.
            let _ = tx.send(BodyOutcome {
                bytes: self.bytes,
                end,
            });
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(None);
        }
        loop {
            let frame = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                None => {
                    this.finish(BodyEnd::Complete);
                    return Poll::Ready(None);
                }
                Some(Err(e)) => {
                    this.finish(BodyEnd::UpstreamFailed);
                    return Poll::Ready(Some(Err(BodyError::Upstream(e))));
                }
                Some(Ok(frame)) => frame,
            };
            let Ok(data) = frame.into_data() else {
                continue; // trailers
            };
            let total = this.bytes.saturating_add(data.len() as u64);
            if total > this.limit {
                this.finish(BodyEnd::TooLarge);
                return Poll::Ready(Some(Err(BodyError::TooLarge { limit: this.limit })));
            }
            this.bytes = total;
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.finished || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.finished {
            SizeHint::with_exact(0)
        } else {
            self.inner.size_hint()
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        if !self.finished {
            // A server may stop polling once `is_end_stream` says so (an empty
            // body, or the last frame of a body with a known length).
            let end = if self.inner.is_end_stream() {
                BodyEnd::Complete
            } else {
                BodyEnd::Cancelled
            };
            self.finish(end);
        }
    }
}

/// Why [`collect_limited`] could not buffer a body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectError {
    #[error("the body exceeds the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the body failed: {0}")]
    Body(#[source] BoxError),
}

impl CollectError {
    /// Over a limit, either this one or the [`ResponseBody`]'s own.
    pub fn is_too_large(&self) -> bool {
        match self {
            CollectError::TooLarge { .. } => true,
            CollectError::Body(e) => matches!(
                e.downcast_ref::<BodyError>(),
                Some(BodyError::TooLarge { .. })
            ),
        }
    }
}

/// Buffers a whole body of at most `limit` bytes, e.g. a response that must
/// be minimised before the caller sees any of it. A body that declares (or
/// reaches) more than `limit` bytes fails without buffering further. Trailers
/// are ignored.
pub async fn collect_limited<B>(body: B, limit: u64) -> Result<Bytes, CollectError>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    if body.size_hint().lower() > limit {
        return Err(CollectError::TooLarge { limit });
    }
    // Never reserve more than the limit, whatever the body claims.
    let capacity = usize::try_from(body.size_hint().lower().min(limit)).unwrap_or(0);
    let mut body = pin!(body);
    // A body of one chunk (common for small JSON answers) is returned without a copy.
    let mut first: Option<Bytes> = None;
    let mut buf: Option<BytesMut> = None;
    let mut total: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| CollectError::Body(e.into()))?;
        let Ok(mut data) = frame.into_data() else {
            continue;
        };
        total = total.saturating_add(data.remaining() as u64);
        if total > limit {
            return Err(CollectError::TooLarge { limit });
        }
        let chunk = data.copy_to_bytes(data.remaining());
        if chunk.is_empty() {
            continue;
        }
        match (&mut first, &mut buf) {
            (None, None) => first = Some(chunk),
            (Some(head), None) => {
                let mut b = BytesMut::with_capacity(capacity.max(head.len() + chunk.len()));
                b.extend_from_slice(head);
                b.extend_from_slice(&chunk);
                first = None;
                buf = Some(b);
            }
            (_, Some(b)) => b.extend_from_slice(&chunk),
        }
    }
    Ok(match (first, buf) {
        (_, Some(b)) => b.freeze(),
        (Some(head), None) => head,
        (None, None) => Bytes::new(),
    })
}

#[cfg(test)]
mod tests;
