//! HTTP edges, sent as raw bytes over TLS where a client library would tidy
//! them up: path tricks, method override headers, request smuggling framing,
//! hop-by-hop headers.
#![allow(clippy::unwrap_used)]

use bru_tests::*;

async fn started() -> (TestWorld, Bru) {
    let world = TestWorld::new().await;
    let bru = world.start().await;
    (world, bru)
}

/// A raw GET with K429's token (allowed on k429/sosialtjeneste and nav/inntekt).
fn raw_get(world: &TestWorld, target: &str, extra: &str) -> Vec<u8> {
    let token = world.mp_token(K429, &format!("{SCOPE_SOSIAL} {SCOPE_INNTEKT}"));
    format!(
        "GET {target} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Bru-Purpose: {PURPOSE_SOSIAL}\r\nNav-Personident: {KARI}\r\n{extra}Connection: close\r\n\r\n"
    )
    .into_bytes()
}

/// What may reach the k429 provider after a path trick: a clean path inside
/// the dataset it was routed to (that is, the trick was normalised away).
fn clean_provider_path(path: &str, query: Option<&str>) -> bool {
    let lower = path.to_ascii_lowercase();
    path.starts_with("/sosialtjeneste")
        && !lower.contains("..")
        && !lower.contains("%2e")
        && !lower.contains("%2f")
        && !lower.contains("%5c")
        && !lower.contains('\\')
        && !lower.contains(';')
        && !lower.contains("//")
        && !lower.contains("inntekt")
        && query.is_none_or(|q| !q.contains(".."))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_tricks_never_reach_another_dataset() {
    let (world, bru) = started().await;
    let tricks = [
        "/data/k429/../nav/inntekt",
        "/data/k429/sosialtjeneste/../../nav/inntekt",
        "/data/k429/sosialtjeneste/./../../nav/inntekt",
        "/data/k429/sosialtjeneste/%2e%2e/%2e%2e/nav/inntekt",
        "/data/k429/sosialtjeneste/%2E%2E/%2E%2E/nav/inntekt",
        "/data/k429/sosialtjeneste/.%2e/.%2e/nav/inntekt",
        "/data/k429/sosialtjeneste/..%2F..%2Fnav%2Finntekt",
        "/data/k429/sosialtjeneste/..%2f..%2fnav%2finntekt",
        "/data/k429/sosialtjeneste%2F..%2F..%2Fnav%2Finntekt",
        "/data/k429/sosialtjeneste/..;/..;/nav/inntekt",
        "/data/k429/sosialtjeneste;x=1/../../nav/inntekt",
        "/data/k429/sosialtjeneste/..%5C..%5Cnav%5Cinntekt",
        "/data/k429/sosialtjeneste/..\\..\\nav\\inntekt",
        "/data//k429/sosialtjeneste",
        "/data/k429//sosialtjeneste",
        "/data/k429/sosialtjeneste//..//..//nav/inntekt",
        "/data/k429%2Fsosialtjeneste",
        "/data/k429/sosialtjeneste;jsessionid=1",
        "/data/%6b429/sosialtjeneste/../../nav/inntekt",
    ];
    for trick in tricks {
        let before = world.k429.count();
        let ex = bru.raw(&raw_get(&world, trick, "")).await;
        let r = ex.first();
        world.nav.assert_untouched(trick);
        let code = r.code().unwrap_or_default();
        eprintln!("{trick} -> {} {code}", r.status);
        match r.status {
            // A request line the HTTP parser refuses gets a bare 400.
            400 if r.body.is_empty() => {}
            400 => assert_eq!(code, "malformed_request", "{trick}: 400 {}", r.text()),
            404 => assert_eq!(code, "unknown_dataset", "{trick}: 404 {}", r.text()),
            403 => assert!(
                !code.is_empty(),
                "{trick}: 403 without a code: {}",
                r.text()
            ),
            200 => {}
            other => panic!("{trick}: unexpected status {other}: {}", r.text()),
        }
        if r.status != 200 {
            if !r.body.is_empty() {
                r.check_problem_shape(trick);
            }
            assert_eq!(
                world.k429.count(),
                before,
                "{trick}: refused with {} but forwarded anyway",
                r.status
            );
        }
        for rec in world.k429.requests().iter().skip(before) {
            assert!(
                clean_provider_path(&rec.path, rec.query.as_deref()),
                "{trick}: answered {} and the provider received {:?} (query {:?}); \
                 a trick must be refused or normalised before routing",
                r.status,
                rec.path,
                rec.query
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_override_headers_are_ignored() {
    let (world, bru) = started().await;
    let r = send(
        world
            .nav_sosial(&bru, "", KARI)
            .header("X-HTTP-Method-Override", "DELETE")
            .header("X-HTTP-Method", "DELETE")
            .header("X-Method-Override", "DELETE"),
    )
    .await;
    r.expect_status(200, "GET with override headers");
    let token = world.mp_token(NAV, SCOPE_SAK);
    let r = send(
        bru.post("/data/k429/sak-json")
            .bearer_auth(&token)
            .header("Bru-Purpose", PURPOSE_SOSIAL)
            .header("Content-Type", "application/json")
            .header("X-HTTP-Method-Override", "PUT")
            .body(format!(r#"{{"person":{{"id":"{KARI}"}}}}"#)),
    )
    .await;
    r.expect_status(200, "POST with an override header");
    let reqs = world.k429.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        reqs[0].method, "GET",
        "the provider must see the real method"
    );
    assert_eq!(
        reqs[1].method, "POST",
        "the provider must see the real method"
    );
    for rec in &reqs {
        for h in [
            "x-http-method-override",
            "x-http-method",
            "x-method-override",
        ] {
            assert!(
                rec.header(h).is_none(),
                "{h} was forwarded to the provider: {:?}",
                rec.headers
            );
        }
    }
    let tid = r.transfer_id().expect("Bru-Transfer-Id");
    let rec = world.record(&tid, "decision").await;
    assert_eq!(
        rec["method"], "POST",
        "the record names the real method: {rec}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_framing_is_refused() {
    let (world, bru) = started().await;
    let token = world.mp_token(NAV, SCOPE_SAK);
    let body = format!(r#"{{"person":{{"id":"{KARI}"}}}}"#);
    let head = format!(
        "POST /data/k429/sak-json HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Bru-Purpose: {PURPOSE_SOSIAL}\r\nContent-Type: application/json\r\nConnection: close\r\n"
    );
    let cases = [
        (
            "two different Content-Length values",
            format!(
                "{head}Content-Length: {}\r\nContent-Length: 5\r\n\r\n{body}",
                body.len()
            ),
        ),
        (
            "Transfer-Encoding that does not end in chunked",
            format!("{head}Transfer-Encoding: chunked, identity\r\n\r\n{body}"),
        ),
        (
            "Content-Length with a sign",
            format!("{head}Content-Length: +{}\r\n\r\n{body}", body.len()),
        ),
    ];
    for (what, req) in cases {
        let ex = bru.raw(req.as_bytes()).await;
        assert_eq!(
            ex.first().status,
            400,
            "{what}: expected 400, got {:?}",
            ex.text()
        );
    }
    world.k429.assert_untouched("ambiguous framing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_with_transfer_encoding_cannot_smuggle() {
    // RFC 9112 §6.3: with both, a server either refuses or frames by
    // Transfer-Encoding alone and closes the connection. Either way the bytes
    // after the chunked body must never become a second request.
    let (world, bru) = started().await;
    let token = world.mp_token(NAV, SCOPE_SAK);
    let body = format!(r#"{{"person":{{"id":"{KARI}"}}}}"#);
    let smuggled = format!(
        "GET /data/k429/sak-path/{OLA}/smuggled HTTP/1.1\r\nHost: localhost\r\n\
         Authorization: Bearer {token}\r\nBru-Purpose: {PURPOSE_SOSIAL}\r\n\r\n"
    );
    let chunked = format!("{:x}\r\n{body}\r\n0\r\n\r\n{smuggled}", body.len());
    for order in ["cl-first", "te-first"] {
        let framing = if order == "cl-first" {
            format!(
                "Content-Length: {}\r\nTransfer-Encoding: chunked\r\n",
                chunked.len()
            )
        } else {
            format!(
                "Transfer-Encoding: chunked\r\nContent-Length: {}\r\n",
                chunked.len()
            )
        };
        let req = format!(
            "POST /data/k429/sak-json HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
             Bru-Purpose: {PURPOSE_SOSIAL}\r\nContent-Type: application/json\r\n{framing}\r\n{chunked}"
        );
        let ex = bru.raw(req.as_bytes()).await;
        let first = ex.first();
        eprintln!(
            "{order}: {} response(s), first {}",
            ex.responses.len(),
            first.status
        );
        assert!(
            first.status == 400 || first.status == 200,
            "{order}: expected 400 (refused) or 200 (framed by Transfer-Encoding), got {:?}",
            ex.text()
        );
        assert_eq!(
            ex.responses.len(),
            1,
            "{order}: the smuggled request was answered on the same connection: {:?}",
            ex.text()
        );
    }
    for rec in world.k429.requests() {
        assert!(
            !rec.path.contains("smuggled"),
            "a smuggled request reached the provider: {} {}",
            rec.method,
            rec.path
        );
        assert!(
            !String::from_utf8_lossy(&rec.body).contains("smuggled"),
            "the provider got a body framed by Content-Length: {:?}",
            String::from_utf8_lossy(&rec.body)
        );
        let got: serde_json::Value =
            serde_json::from_slice(&rec.body).expect("a forwarded body is the chunked JSON");
        assert_eq!(got["person"]["id"], KARI);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_headers_are_not_forwarded() {
    let (world, bru) = started().await;
    let token = world.mp_token(NAV, SCOPE_SOSIAL);
    let req = format!(
        "GET /data/k429/sosialtjeneste HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Bru-Purpose: {PURPOSE_SOSIAL}\r\nNav-Personident: {KARI}\r\n\
         Connection: close, X-Hop-Secret\r\nX-Hop-Secret: 1\r\nKeep-Alive: timeout=5\r\n\
         Proxy-Authorization: Basic dXNlcjpwYXNz\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n\
         Trailer: X-Checksum\r\nX-End-To-End: stays\r\n\r\n"
    );
    let ex = bru.raw(req.as_bytes()).await;
    ex.first()
        .expect_status(200, "call with hop-by-hop headers");
    let reqs = world.k429.requests();
    assert_eq!(reqs.len(), 1);
    let rec = &reqs[0];
    let mut forwarded: Vec<String> = [
        "x-hop-secret",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
    ]
    .into_iter()
    .filter(|h| rec.header(h).is_some())
    .map(str::to_owned)
    .collect();
    for v in rec.header_all("connection") {
        if v.to_ascii_lowercase().contains("x-hop-secret") {
            forwarded.push(format!("connection: {v}"));
        }
    }
    assert!(
        forwarded.is_empty(),
        "hop-by-hop headers reached the provider: {forwarded:?}"
    );
}
