//! JSON masks are paths from the document's root (issue 15): `sum` in a
//! purpose's `json_fields` keeps the root's `sum`, not one nested under a
//! member the mask does not name; `a.b` and `rows[].sum` reach inside; and
//! `bru check` names a malformed path by its line.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use bru_tests::*;
use serde_json::json;

/// The test world's mask of `k429/minimert` (purpose sosialhjelp-saksbehandling).
const MINIMERT_MASK: &str = r#"minimise = { json_fields = ["aar", "sum"] }"#;

/// Replaces the `k429/minimert` mask in the world's policy.
fn set_minimert_mask(world: &TestWorld, fields: &str) -> String {
    let path = world.dir.path().join("policy.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains(MINIMERT_MASK),
        "the test world's policy changed"
    );
    let text = text.replacen(
        MINIMERT_MASK,
        &format!("minimise = {{ json_fields = {fields} }}"),
        1,
    );
    std::fs::write(&path, &text).unwrap();
    text
}

fn minimert(world: &TestWorld, bru: &Bru) -> reqwest::RequestBuilder {
    bru.get("/data/k429/minimert")
        .bearer_auth(world.mp_token(NAV, SCOPE_SAK))
        .header("Bru-Purpose", PURPOSE_SOSIAL)
        .header("Nav-Personident", KARI)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_sum_under_a_parent_the_mask_does_not_name_is_removed() {
    let world = TestWorld::new().await;
    let bru = world.start().await;
    // Mask ["aar", "sum"]: the root's members. Before, `sum` was kept at any
    // depth, and with it whatever parent led to it.
    world.k429.set_body(json!({
        "aar": 2024,
        "sum": 1,
        "sosialhjelp": {"sum": 777777, "vedtak": "avslag"},
        "barnevern": [{"sum": 888888}],
        "a": {"b": {"sum": 999999}}
    }));
    let r = send(minimert(&world, &bru)).await;
    r.expect_status(200, "minimised object");
    assert_eq!(r.json(), json!({"aar": 2024, "sum": 1}));
    for leaked in ["777777", "888888", "999999", "sosialhjelp", "barnevern"] {
        assert!(!r.text().contains(leaked), "{leaked} leaked: {}", r.text());
    }
    // A provider answering with rows: the root array is crossed, each row
    // keeps its own `aar` and `sum`, and nothing nested in it.
    world.k429.set_body(json!([
        {"aar": 2023, "sum": 2, "detaljer": {"sum": 777777}},
        {"aar": 2024, "sum": 3, "poster": [{"sum": 888888}]}
    ]));
    let r = send(minimert(&world, &bru)).await;
    r.expect_status(200, "minimised rows");
    assert_eq!(
        r.json(),
        json!([{"aar": 2023, "sum": 2}, {"aar": 2024, "sum": 3}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_reach_inside_objects_and_arrays() {
    let world = TestWorld::new().await;
    set_minimert_mask(&world, r#"["person.kommune", "inntekter[].sum"]"#);
    let bru = world.start().await;
    world.k429.set_body(json!({
        "person": {"kommune": "0301", "fnr": KARI},
        "inntekter": [
            {"sum": 1, "arbeidsgiver": {"navn": "K429", "sum": 777777}},
            {"aar": 2024}
        ],
        "sum": 9
    }));
    let r = send(minimert(&world, &bru)).await;
    r.expect_status(200, "minimised by paths");
    assert_eq!(
        r.json(),
        json!({"person": {"kommune": "0301"}, "inntekter": [{"sum": 1}]})
    );
    assert!(!r.text().contains(KARI) && !r.text().contains("777777"));
}

#[test]
fn bru_check_names_a_malformed_mask_path_by_its_line() {
    let world = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(TestWorld::new());
    for (bad, says) in [
        (r#"["/inntekter/sum"]"#, "looks like a JSON pointer"),
        (r#"["inntekter[0].sum"]"#, "other than as `[]`"),
        (r#"["inntekter..sum"]"#, "empty member name"),
    ] {
        let text = set_minimert_mask(&world, bad);
        let line = text.lines().position(|l| l.contains(bad)).unwrap() + 1;
        let out = Command::new(bru_bin())
            .args(["check", "--config"])
            .arg(&world.config_path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{bad} was accepted: {stdout}");
        assert!(
            stdout.contains(&format!("policy.toml:{line}:")) && stdout.contains(says),
            "{bad}: expected policy.toml:{line}: … {says}, got {stdout}"
        );
        // Back to the original mask for the next case.
        let path = world.dir.path().join("policy.toml");
        let restored = std::fs::read_to_string(&path).unwrap().replacen(
            &format!("minimise = {{ json_fields = {bad} }}"),
            MINIMERT_MASK,
            1,
        );
        std::fs::write(path, restored).unwrap();
    }
}
