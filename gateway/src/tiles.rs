//! The public read path of the log (SPEC section 11): C2SP tlog-tiles hash
//! tiles at `/tile/<L>/<N>[.p/<W>]` and the cosigned checkpoint at
//! `/checkpoint`, without authentication. Hashes only: no record leaves the
//! audit API (`/tile/entries/…` is not served).
//!
//! Tile `N` at level `L` holds the hashes of the perfect subtrees at tree
//! level `8·L` with indexes `256·N … 256·N + 255`: each is stored once in
//! `tree_nodes` when it completes, so a tile is one read (point lookups on
//! the nodes' (size, level) key, or one range at level 0). Only what
//! the newest checkpoint covers is served, so a tile never shows a tree
//! nobody signed.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::app::App;

/// tlog-tiles: a full tile is 256 hashes; a tile spans 8 tree levels.
const TILE_WIDTH: u64 = 256;
const TILE_HEIGHT: u32 = 8;
/// Tiles never change: cache for a year.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// tlog-tiles: the checkpoint "SHOULD prevent caching beyond a few seconds".
const CHECKPOINT_CACHE: &str = "public, max-age=2";

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/checkpoint", get(checkpoint))
        .route("/tile/{*path}", get(tile))
}

/// A tile request: level, index, and the width of a partial tile.
#[derive(Debug, PartialEq, Eq)]
struct TilePath {
    level: u8,
    index: u64,
    partial: Option<u64>,
}

/// `<L>/<N>[.p/<W>]` with `<N>` in 3-digit elements, all but the last
/// starting with `x` (`1234067` is `x001/x234/067`).
fn parse_tile_path(path: &str) -> Option<TilePath> {
    let canonical = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
    };
    let mut parts: Vec<&str> = path.split('/').collect();
    let level_text = parts.first().copied()?;
    if !canonical(level_text) {
        return None;
    }
    let level: u8 = level_text.parse().ok().filter(|l| *l <= 63)?;
    parts.remove(0);
    let mut partial = None;
    if parts.len() >= 2 && parts[parts.len() - 2].ends_with(".p") {
        let w = parts.pop()?;
        if !canonical(w) {
            return None;
        }
        let w: u64 = w.parse().ok().filter(|w| (1..TILE_WIDTH).contains(w))?;
        partial = Some(w);
        let last = parts.pop()?;
        parts.push(last.strip_suffix(".p")?);
    }
    let (last, rest) = parts.split_last()?;
    let mut index: u64 = 0;
    for element in rest {
        let digits = element.strip_prefix('x')?;
        index = push_group(index, digits)?;
    }
    index = push_group(index, last)?;
    Some(TilePath {
        level,
        index,
        partial,
    })
}

fn push_group(index: u64, digits: &str) -> Option<u64> {
    if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let group: u64 = digits.parse().ok()?;
    index.checked_mul(1000)?.checked_add(group)
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CACHE_CONTROL, "no-store")],
        "no such tile\n",
    )
        .into_response()
}

async fn tile(State(app): State<Arc<App>>, Path(path): Path<String>) -> Response {
    let Some(t) = parse_tile_path(&path) else {
        return not_found();
    };
    let tree_level = u32::from(t.level) * TILE_HEIGHT;
    if tree_level > 63 {
        return not_found();
    }
    let size = match app.store.latest_checkpoint().await {
        Ok(Some(c)) => c.size,
        Ok(None) => return not_found(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the newest checkpoint for a tile");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    // Subtrees at this level the signed tree holds.
    let available = size >> tree_level;
    let width = t.partial.unwrap_or(TILE_WIDTH);
    let Some(first) = t.index.checked_mul(TILE_WIDTH) else {
        return not_found();
    };
    if first.saturating_add(width) > available {
        return not_found();
    }
    #[allow(clippy::cast_possible_truncation)] // tree_level ≤ 63
    let hashes = match app
        .store
        .subtree_hashes(tree_level as u8, first, width)
        .await
    {
        Ok(h) if h.len() as u64 == width => h,
        Ok(_) => return not_found(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read a tile");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let body: Vec<u8> = hashes.concat();
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    response
}

async fn checkpoint(State(app): State<Arc<App>>) -> Response {
    let cp = match app.store.latest_checkpoint().await {
        Ok(Some(c)) => c,
        Ok(None) => return not_found(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the newest checkpoint");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let note = crate::witnessing::with_cosignatures(&app, cp.note, cp.size).await;
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, CHECKPOINT_CACHE),
        ],
        note,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_paths_follow_the_spec() {
        let t = |level, index, partial| {
            Some(TilePath {
                level,
                index,
                partial,
            })
        };
        assert_eq!(parse_tile_path("0/x001/x234/067"), t(0, 1_234_067, None));
        assert_eq!(parse_tile_path("0/000"), t(0, 0, None));
        assert_eq!(parse_tile_path("1/000.p/17"), t(1, 0, Some(17)));
        assert_eq!(parse_tile_path("2/x001/002.p/255"), t(2, 1002, Some(255)));
        for bad in [
            "00/000",
            "64/000",
            "0/0",
            "0/001/002",
            "0/x001",
            "0/000.p/0",
            "0/000.p/256",
            "0/000.p/01",
            "entries/000",
            "0/000.p",
            "0/abc",
        ] {
            assert_eq!(parse_tile_path(bad), None, "{bad}");
        }
    }
}
