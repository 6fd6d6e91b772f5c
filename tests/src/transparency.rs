//! Harness for the transparency log and the audit API: a world where K429
//! may read the audit log and citizens can log in, the `bru audit verify`
//! command, the independent Python verifier, and direct edits of the SQLite
//! file as an attacker would make them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::bru::bru_bin;
use crate::jwt::{now, Jwt};
use crate::world::{TestWorld, WorldBuilder};
use crate::K429;

/// The ID-porten-style issuer the audit worlds add (keys: the `mp` JWKS).
pub const ISSUER_IDP: &str = "https://test-idporten.example/";

/// A world whose policy makes K429 an audit reader and whose config trusts
/// a citizen issuer. `store_url` replaces the default `sqlite://bru.db`.
pub async fn audit_world(builder: WorldBuilder, store_url: Option<&str>) -> TestWorld {
    let world = builder.build().await;
    let policy_path = world.dir.path().join("policy.toml");
    let policy = std::fs::read_to_string(&policy_path).expect("read policy");
    let marker = "consent_requester = true\n";
    assert!(
        policy.contains(marker),
        "the world's policy changed: no K429 consumer rule to extend"
    );
    std::fs::write(
        &policy_path,
        policy.replacen(marker, "consent_requester = true\naudit_reader = true\n", 1),
    )
    .expect("write policy");
    let mut config = std::fs::read_to_string(&world.config_path).expect("read config");
    if let Some(url) = store_url {
        let default = "url = \"sqlite://bru.db\"";
        assert!(config.contains(default), "the world's store url changed");
        config = config.replacen(default, &format!("url = \"{url}\""), 1);
    }
    config.push_str(&format!(
        "\n[[issuer]]\nname = \"test-idporten\"\nkind = \"idporten\"\nissuer = \"{ISSUER_IDP}\"\n\
         jwks_url = \"{}\"\nalgorithms = [\"RS256\"]\n",
        world.jwks.url("mp")
    ));
    std::fs::write(&world.config_path, config).expect("write config");
    world
}

/// K429's token for the audit API.
pub fn audit_token(world: &TestWorld) -> String {
    world.mp_token(K429, "bru:audit")
}

/// A citizen's ID-porten-style token (level substantial).
pub fn citizen_token(world: &TestWorld, pid: &str) -> String {
    let t = now();
    Jwt::new(
        json!({"alg": "RS256", "typ": "JWT", "kid": world.mp_key.kid}),
        json!({"iss": ISSUER_IDP, "iat": t, "exp": t + 300, "pid": pid, "acr": "idporten-loa-substantial"}),
    )
    .sign(&world.mp_signer())
}

/// What a finished command printed.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn text(&self) -> String {
        format!(
            "exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `bru audit verify --config FILE` (in a blocking thread).
pub async fn audit_verify(config: &Path) -> Output {
    let config = config.to_owned();
    tokio::task::spawn_blocking(move || {
        run(Command::new(bru_bin())
            .args(["audit", "verify", "--config"])
            .arg(&config))
    })
    .await
    .expect("join")
}

/// `tests/verify_log.py ARGS`.
pub async fn python_verifier(args: Vec<String>) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("verify_log.py");
    tokio::task::spawn_blocking(move || run(Command::new("python3").arg(&script).args(&args)))
        .await
        .expect("join")
}

/// Runs a Python script against the SQLite file with the append-only
/// triggers dropped first, as an attacker with the file would. The script
/// sees `db` (a sqlite3 connection) and commits at the end.
pub fn tamper(db: &Path, script: &str) {
    let program = format!(
        "import sqlite3, sys\n\
         db = sqlite3.connect(sys.argv[1])\n\
         for (name,) in db.execute(\"SELECT name FROM sqlite_master WHERE type = 'trigger'\").fetchall():\n\
         \x20   db.execute('DROP TRIGGER ' + name)\n\
         {script}\n\
         db.commit()\n\
         db.close()\n"
    );
    let out = run(Command::new("python3").arg("-c").arg(&program).arg(db));
    assert_eq!(
        out.code,
        Some(0),
        "tampering script failed:\n{}",
        out.text()
    );
}

/// Copies a world's directory (config, keys, database) so that one log can
/// be tampered with in several ways; returns the copy's config path.
pub fn copy_world(from: &Path, to: &Path) -> PathBuf {
    let out = run(Command::new("cp").arg("-a").arg(from).arg(to));
    assert_eq!(out.code, Some(0), "cp failed:\n{}", out.text());
    to.join("bru.toml")
}

/// The JSON body of a reply, asserting 200.
pub async fn get_json(rb: reqwest::RequestBuilder, context: &str) -> Value {
    let reply = crate::send(rb).await;
    reply.expect_status(200, context);
    reply.json()
}
