//! The demo's representation world (SPEC 9.3, 9.4): the registry beside
//! K429's provider, `"fullmakt"` in the demo ID-porten, `[registry]` in the
//! generated config.
#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use base64::Engine;
use demo::{
    issuers_router, prepare, provider_router, DemoIssuers, DemoOptions, DemoProvider, ProviderPorts,
};
use serde_json::{json, Value};
use tower::ServiceExt;

const KARI: &str = "12884513829";
const OLA: &str = "03839113713";
const AISHA: &str = "24916214088";
const EMMA: &str = "07831453839";
const PER: &str = "15895013789";

async fn post(router: &Router, uri: &str, body: &Value) -> (StatusCode, Value) {
    let req = Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn the_registry_holds_the_demo_relations() {
    let k429 = provider_router(DemoProvider::K429);
    let (status, answer) = post(
        &k429,
        "/folkeregisteret/personer/bulkoppslag",
        &json!({"foedselsEllerDNummer": [KARI, EMMA, PER, "01858010043"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let found = answer["oppslag"].as_array().unwrap();
    assert_eq!(found.len(), 3, "an unknown person is left out: {answer}");
    let doc = |pid: &str| {
        found
            .iter()
            .find(|o| o["foedselsEllerDNummer"] == pid)
            .unwrap()["person"]
            .clone()
    };
    assert_eq!(doc(KARI)["familierelasjon"][0]["relatertPerson"], EMMA);
    assert_eq!(
        doc(KARI)["familierelasjon"][0]["relatertPersonsRolle"],
        "barn"
    );
    let emma = doc(EMMA);
    let ansvarlige: Vec<&str> = emma["foreldreansvar"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["ansvarlig"].as_str().unwrap())
        .collect();
    assert_eq!(ansvarlige, [KARI, OLA]);
    assert_eq!(doc(EMMA)["foedsel"][0]["foedselsdato"], "2014-03-07");
    assert_eq!(
        doc(PER)["vergemaalEllerFremtidsfullmakt"][0]["vergeEllerFullmektig"]
            ["motpartsPersonidentifikator"],
        AISHA
    );
}

#[tokio::test]
async fn the_demo_idporten_logs_in_with_a_fullmakt() {
    let tmp = tempfile::tempdir().unwrap();
    let options = DemoOptions {
        listen: "127.0.0.1:18443".parse().unwrap(),
        ops_listen: "127.0.0.1:19090".parse().unwrap(),
        store_url: None,
        provider_ports: ProviderPorts::Any,
    };
    let layout = prepare(&tmp.path().join("state"), &options).unwrap();
    let config = std::fs::read_to_string(&layout.config).unwrap();
    assert!(
        config.contains(&format!(
            "[registry]\nurl = \"http://{}/folkeregisteret\"",
            layout.providers.k429
        )),
        "{config}"
    );
    let router = issuers_router(DemoIssuers::load(&layout).unwrap());
    let (status, token) = post(
        &router,
        "/demo/idporten/token",
        &json!({"pid": AISHA, "fullmakt": {"owner": PER, "roles": ["helse", "velferd"]}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let c = claims(token["access_token"].as_str().unwrap());
    assert_eq!(c["pid"], AISHA);
    // Digdir's idporten:fullmakt response model (oidc_protocol_rar).
    let rar = &c["authorization_details"][0];
    assert_eq!(rar["type"], "idporten:fullmakt");
    assert_eq!(rar["authorizer"]["pid"], PER);
    assert_eq!(rar["authorizer"]["name"], "PER HANSEN");
    assert_eq!(rar["authorized_representative"]["pid"], AISHA);
    assert_eq!(rar["permissions"][1]["role"], "velferd");

    for bad in [
        json!({"pid": AISHA, "fullmakt": {"owner": "15895013780", "roles": ["helse"]}}),
        json!({"pid": AISHA, "fullmakt": {"owner": PER, "roles": []}}),
        json!({"pid": AISHA, "fullmakt": {"owner": PER}}),
    ] {
        let (status, problem) = post(&router, "/demo/idporten/token", &bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(!problem.to_string().contains("1589501378"), "{problem}");
    }
}
