//! The cost of one `Bru-Assertion` with each algorithm (SPEC 12), measured
//! side by side in one process: the same claims signed with ES256, EdDSA and
//! HS256, interleaved in rounds so that the machine's noise falls on all
//! three alike. Ratios to ES256 are taken per round; the median is printed.
//!
//! Two reference rows show what parsing the key once saves:
//! `jsonwebtoken::encode` builds the key pair from PKCS#8 on every call.
//!
//! usage: cargo run --release -p connectors --example assertion_bench -- [N] [ROUNDS]
//!        (default N = 20000 signatures per algorithm, in ROUNDS = 10 rounds)

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use connectors::assertion::{AssertionClaims, AssertionKey, Ed25519Key, Es256Key, Hs256Key};

/// The process allocator, as in `bru` (gateway/src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type SignFn = Box<dyn Fn(&AssertionClaims<'_>) -> String>;

fn pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END PRIVATE KEY-----\n");
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(20_000);
    let rounds: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10)
        .max(1);
    let per_round = (n / rounds).max(1);

    let p256 = pem(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)?
        .to_pkcs8v1()?
        .as_ref());
    let ed = pem(Ed25519KeyPair::generate()?.to_pkcs8v1()?.as_ref());
    let mut secret = [0u8; 32];
    aws_lc_rs::rand::fill(&mut secret)?;

    let es256 = AssertionKey::Es256(Arc::new(Es256Key::from_pem(p256.as_bytes())?));
    let eddsa = AssertionKey::EdDsa(Arc::new(Ed25519Key::from_pem(ed.as_bytes())?));
    let hs256 = AssertionKey::Hs256(Arc::new(Hs256Key::new(&secret)?));
    let jwt_es = jsonwebtoken::EncodingKey::from_ec_pem(p256.as_bytes())?;
    let jwt_ed = jsonwebtoken::EncodingKey::from_ed_pem(ed.as_bytes())?;

    let cases: Vec<(&str, SignFn)> = vec![
        (
            "es256 (key parsed once)",
            Box::new(move |c| es256.sign(c).unwrap_or_default()),
        ),
        (
            "eddsa (key parsed once)",
            Box::new(move |c| eddsa.sign(c).unwrap_or_default()),
        ),
        (
            "hs256 (key parsed once)",
            Box::new(move |c| hs256.sign(c).unwrap_or_default()),
        ),
        (
            "es256 via jsonwebtoken::encode (parsed per call)",
            Box::new(move |c| {
                jsonwebtoken::encode(
                    &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
                    c,
                    &jwt_es,
                )
                .unwrap_or_default()
            }),
        ),
        (
            "eddsa via jsonwebtoken::encode (parsed per call)",
            Box::new(move |c| {
                jsonwebtoken::encode(
                    &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
                    c,
                    &jwt_ed,
                )
                .unwrap_or_default()
            }),
        ),
    ];

    // A statutory call's claims, as the pipeline builds them.
    let claims = AssertionClaims {
        iss: "https://bru.example.kommune.no",
        aud: "0192:921429002",
        iat: 1_900_000_000,
        exp: 1_900_000_060,
        jti: "0193a4f2-7c1e-7d2a-9b1e-3c5d7e9f1a2b",
        transfer_id: "0193a4f2-7c1e-7d2a-9b1e-3c5d7e9f1a2b",
        consumer: "0192:983440002",
        supplier: None,
        dataset: "k429/sosialtjeneste",
        purpose: Some("sosialhjelp-saksbehandling"),
        basis: "statutory",
        legal_ref: Some("sosialtjenesteloven § 43"),
        consent_id: None,
        subject: Some("12884513829"),
    };

    // Warm-up: every key once, and every code path in the caches.
    for (_, sign) in &cases {
        for _ in 0..200 {
            black_box(sign(black_box(&claims)));
        }
    }
    let sizes: Vec<usize> = cases.iter().map(|(_, sign)| sign(&claims).len()).collect();

    let mut micros: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); cases.len()];
    for round in 0..rounds {
        // Rotate the order each round, so no case always runs first.
        let k = cases.len();
        for j in 0..k {
            let i = (j + round) % k;
            let sign = &cases[i].1;
            let started = Instant::now();
            for _ in 0..per_round {
                black_box(sign(black_box(&claims)));
            }
            micros[i].push(started.elapsed().as_secs_f64() * 1e6 / per_round as f64);
        }
    }

    println!(
        "assertion_bench: {per_round} signatures per case per round, {rounds} rounds, interleaved; \
         median (min–max) over rounds; ratio = this case ÷ es256 in the same round"
    );
    println!();
    println!("| algorithm | µs/assertion | spread | ×es256 | assertion bytes |");
    println!("| --- | --- | --- | --- | --- |");
    for (i, (name, _)) in cases.iter().enumerate() {
        let ratios: Vec<f64> = micros[i]
            .iter()
            .zip(&micros[0])
            .map(|(x, es)| x / es)
            .collect();
        let (lo, hi) = min_max(&micros[i]);
        println!(
            "| {name} | {:.2} | {lo:.2}–{hi:.2} | {:.3} | {} |",
            median(&micros[i]),
            median(&ratios),
            sizes[i]
        );
    }
    Ok(())
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn min_max(xs: &[f64]) -> (f64, f64) {
    xs.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}
