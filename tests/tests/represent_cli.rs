//! Issue 18: representation rules in policy are checked by `bru check`
//! (errors as `file:line: message`) and explained by `bru explain`.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use bru_tests::represent::RepresentWorld;
use bru_tests::*;

fn world() -> RepresentWorld {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(RepresentWorld::new())
}

fn bru(args: &[&str], world: &RepresentWorld) -> (bool, String) {
    let out = Command::new(bru_bin())
        .args(args)
        .arg("--config")
        .arg(&world.config_path)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn bru_check_names_a_bad_representation_rule_by_its_line() {
    let world = world();
    let (ok, out) = bru(&["check"], &world);
    assert!(
        ok,
        "the world's policy with representation rules is valid: {out}"
    );
    let path = world.dir.path().join("policy.toml");
    let good = std::fs::read_to_string(&path).unwrap();
    for (bad, says) in [
        ("parent_until_age = 21", "between 1 and 18"),
        (
            r#"fullmakt_roles = ["helse og omsorg"]"#,
            "a role is a code",
        ),
        ("guardians = true", "unknown field"),
    ] {
        // The home-care rules, as add_representation_rules wrote them.
        let text = good.replacen(
            "[dataset.representation]\nfullmakt_roles = [\"helse\"]",
            &format!("[dataset.representation]\n{bad}"),
            1,
        );
        assert_ne!(text, good, "the rule was found");
        std::fs::write(&path, &text).unwrap();
        let line = text.lines().position(|l| l == bad).unwrap() + 1;
        let (ok, out) = bru(&["check"], &world);
        assert!(!ok, "{bad} was accepted: {out}");
        assert!(
            out.contains(&format!("policy.toml:{line}:")) && out.contains(says),
            "{bad}: expected policy.toml:{line}: … {says}, got {out}"
        );
    }
    std::fs::write(&path, good).unwrap();
}

#[test]
fn bru_explain_says_who_may_decide_for_someone_else() {
    let world = world();
    let (ok, out) = bru(
        &[
            "explain",
            "--consumer",
            "0192:921429002",
            "--dataset",
            "helsenorge/hjemmetjeneste",
            "--purpose",
            PURPOSE_OMSORG,
        ],
        &world,
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("a parent may decide for a child under 16 (the default for health data)"),
        "{out}"
    );
    assert!(out.contains("with one of the roles helse"), "{out}");
    let (_, out) = bru(
        &[
            "explain",
            "--consumer",
            "0192:921429002",
            "--dataset",
            "nav/inntekt",
            "--purpose",
            PURPOSE_OMSORG,
        ],
        &world,
    );
    assert!(
        out.contains("a parent may decide for a child under 18 (the default)"),
        "{out}"
    );
}
