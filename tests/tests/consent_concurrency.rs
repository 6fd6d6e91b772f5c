//! `max_uses` holds under concurrency: 50 parallel calls on a consent with
//! `max_uses = 10` get exactly 10 answers, and exactly 10 reach the provider.
#![allow(clippy::unwrap_used)]

use bru_tests::consent::*;
use bru_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_calls_on_ten_uses_get_exactly_ten() {
    let cw = ConsentWorld::new().await;
    let bru = cw.start().await;
    let k429 = cw.k429_token();
    for round in 1..=3 {
        let id = granted(&cw, &bru, KARI, Some(10)).await;
        let before = cw.nav.count();
        let calls: Vec<_> = (0..50)
            .map(|_| {
                let rb = bru
                    .get("/data/nav/inntekt")
                    .bearer_auth(&k429)
                    .header("Bru-Purpose", PURPOSE_OMSORG)
                    .header("Nav-Personident", KARI)
                    .header("Bru-Consent", &id);
                tokio::spawn(send(rb))
            })
            .collect();
        let mut allowed = 0;
        let mut exhausted = 0;
        for call in calls {
            let reply = call.await.unwrap();
            match (reply.status, reply.code().as_deref()) {
                (200, _) => allowed += 1,
                (403, Some("consent_exhausted")) => exhausted += 1,
                (status, code) => panic!(
                    "round {round}: unexpected {status} {code:?}: {}",
                    reply.text()
                ),
            }
        }
        assert_eq!((allowed, exhausted), (10, 40), "round {round}");
        assert_eq!(
            cw.nav.count() - before,
            10,
            "round {round}: calls that reached NAV"
        );
        let request = get_request(&bru, &k429, &id).await.json();
        assert_eq!(request["uses"], 10, "round {round}");
        let used = event_types(&bru, &k429, &id)
            .await
            .iter()
            .filter(|t| *t == "used")
            .count();
        assert_eq!(used, 10, "round {round}: used events");
    }
}
