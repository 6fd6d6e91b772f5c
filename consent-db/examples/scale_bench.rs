//! The scale benchmark of issue #7 on PostgreSQL: seeds a database created by
//! Bru's own migrations with consents (and their events) and audit records
//! (with the RFC 9162 tree over them, as the store would have built it), then
//! measures the store's read paths. Driven by `bench/scale`.
//!
//! ```text
//! scale_bench seed    URL CONSENTS RECORDS SUBJECTS
//! scale_bench measure URL CONSENTS SUBJECTS SAMPLES
//! ```
//!
//! Everything is derived from the ordinal of a consent, record or subject by
//! a fixed hash, so `measure` knows which consents are granted and which
//! pseudonyms exist without asking the database (and without warming it).
//!
//! Seeding: the leaf hash of every record is `AuditRecord::leaf_hash` of the
//! very struct whose fields go into the COPY row, and the tree nodes are the
//! ones `merkle::Frontier::push` completes, so `bru audit verify` checks them
//! like any log. `audit_index` (migration 0015) is filled from the records
//! and the indexer's position set to their count, as the indexer would
//! leave it. The transfer notices (SPEC 10) are written by the `notify`
//! follower's own step (`Store::follow_log_for_notifications`) once the keys
//! are back, and `measure` reads citizens' inboxes on them.
//! Secondary indexes and keys are dropped for the load and
//! re-created from their own definitions (`pg_get_indexdef`,
//! `pg_get_constraintdef`); row triggers are off for the COPY sessions
//! (`session_replication_role = replica`): the rows are written in their
//! final state, not through the lifecycle.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use consent_db::merkle::Frontier;
use consent_db::{
    AuditRecord, Basis, NotificationSettings, RecordFilter, RecordKind, Store, StoreConfig,
    Timestamp, UseOutcome, Verdict,
};
use policy::PersonNumber;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Row};
use time::OffsetDateTime;
use tokio::sync::mpsc;

type Error = Box<dyn std::error::Error + Send + Sync>;

const DAY_MS: i64 = 86_400_000;
const YEAR_MS: i64 = 365 * DAY_MS;
/// A tree head every this many records (the store writes one per commit).
const HEAD_EVERY: u64 = 10_000;
/// The pseudonym key of the seeded world (any 32 bytes do).
const PSEUDONYM_KEY: &[u8; 32] = b"bru-scale-benchmark-pseudonym-k!";
/// COPY chunks.
const CHUNK: usize = 1 << 20;

// ---- deterministic randomness ------------------------------------------

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(mix(seed))
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pct(&mut self) -> u64 {
        self.below(100)
    }
}

fn uuid(hi: u64, lo: u64, version: u64) -> String {
    format!(
        "{:08x}-{:04x}-{:x}{:03x}-{:x}{:03x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        version,
        hi & 0xfff,
        8 | (lo >> 62),
        (lo >> 48) & 0xfff,
        lo & 0xffff_ffff_ffff
    )
}

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_datetime(
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .expect("time in range"),
    )
}

// ---- the world -----------------------------------------------------------

const DATASETS: &[(&str, &str, Option<&str>)] = &[
    ("nav", "inntekt", Some("Folketrygdloven § 21-4")),
    ("nav", "arbeidsforhold", Some("Folketrygdloven § 21-4")),
    ("nav", "ytelser", None),
    (
        "skatteetaten",
        "skattemelding",
        Some("Skatteforvaltningsloven § 3-3"),
    ),
    ("skatteetaten", "inntektsmottaker", None),
    ("k429", "sosialtjeneste", Some("Sosialtjenesteloven § 45")),
    ("k429", "bostotte", None),
    ("kartverket", "eiendom", Some("Tinglysingsloven § 7")),
    ("helsedir", "fastlege", None),
    ("lanekassen", "studielan", None),
    ("udi", "oppholdstillatelse", Some("Utlendingsloven § 83")),
    ("brreg", "roller", None),
];
const PURPOSES: &[&str] = &[
    "omsorgsbolig-soknad",
    "sosialhjelp-saksbehandling",
    "kredittvurdering",
    "boliglan-soknad",
    "bostotte-soknad",
    "barnehage-plass",
    "forsikring-skadeoppgjor",
    "arbeidsavklaring",
];
const CONSUMERS: u64 = 300;
const VENDORS: u64 = 12;

fn org(n: u64) -> String {
    format!("0192:{}", 910_000_000 + mix(n) % 90_000_000)
}
fn consumer(n: u64) -> String {
    org(n % CONSUMERS)
}
fn vendor(n: u64) -> String {
    org(10_000 + n % VENDORS)
}

/// A valid-looking Norwegian person number (mod-11 check digits) per subject.
fn person_number(s: u64) -> String {
    let day = s % 36_500;
    let block = (s / 36_500) % 29;
    let (y, m, d) = {
        let date = time::Date::from_calendar_date(1925, time::Month::January, 1).expect("date")
            + time::Duration::days(day as i64);
        (date.year() % 100, u8::from(date.month()), date.day())
    };
    for k in 0..17u64 {
        let ind = block * 17 + k;
        let base = format!("{d:02}{m:02}{y:02}{ind:03}");
        let digits: Vec<u32> = base.bytes().map(|b| u32::from(b - b'0')).collect();
        let w1 = [3, 7, 6, 1, 8, 9, 4, 5, 2];
        let k1 = (11 - digits.iter().zip(w1).map(|(a, b)| a * b).sum::<u32>() % 11) % 11;
        if k1 == 10 {
            continue;
        }
        let w2 = [5, 4, 3, 2, 7, 6, 5, 4, 3, 2];
        let k2 = (11
            - digits
                .iter()
                .chain(std::iter::once(&k1))
                .zip(w2)
                .map(|(a, b)| a * b)
                .sum::<u32>()
                % 11)
            % 11;
        if k2 == 10 {
            continue;
        }
        return format!("{base}{k1}{k2}");
    }
    format!("{d:02}{m:02}{y:02}{:03}00", block * 17)
}

fn subject_ref(key: &hmac::Key, s: u64) -> String {
    URL_SAFE_NO_PAD.encode(hmac::sign(key, person_number(s).as_bytes()).as_ref())
}

/// Audit records pick subjects with a skew: subject `s` is drawn with a
/// density falling as 1/sqrt(s), so a few citizens have thousands of
/// records a year and most have a handful.
fn skewed_subject(rng: &mut Rng, subjects: u64) -> u64 {
    ((subjects as f64) * rng.unit().powi(2)) as u64 % subjects
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Status {
    Pending,
    Granted,
    Rejected,
    Revoked,
    Expired,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Granted => "granted",
            Status::Rejected => "rejected",
            Status::Revoked => "revoked",
            Status::Expired => "expired",
        }
    }
}

fn consent_status(k: u64) -> Status {
    match mix(k ^ 0x5EED_57A7) % 100 {
        0..=4 => Status::Pending,
        5..=59 => Status::Granted,
        60..=69 => Status::Rejected,
        70..=79 => Status::Revoked,
        _ => Status::Expired,
    }
}

fn consent_id(k: u64) -> String {
    uuid(mix(k ^ 0xC0), mix(k ^ 0xC1), 4)
}

fn consent_subject(k: u64, subjects: u64) -> u64 {
    mix(k ^ 0x5B) % subjects
}

/// Consent `k` as a row, with its events (type, time).
/// One row of `consents` as COPY writes it: the columns' text.
struct ConsentCopy {
    id: String,
    requester: String,
    supplier: Option<String>,
    subject: Option<String>,
    datasets: String,
    purpose: String,
    status: String,
    valid_to: String,
    max_uses: Option<i64>,
    uses: i64,
    redirect_url: Option<String>,
    message: Option<String>,
    created_at: String,
    updated_at: String,
}

fn consent(k: u64, subjects: u64, now_ms: i64) -> (ConsentCopy, Vec<(&'static str, i64)>) {
    let mut rng = Rng::new(k ^ 0xC0DE);
    let status = consent_status(k);
    let requester_n = rng.below(CONSUMERS);
    let created = now_ms - 1000 - rng.below(YEAR_MS as u64) as i64;
    let ndatasets = 1 + rng.below(2) as usize;
    let first = rng.below(DATASETS.len() as u64) as usize;
    let datasets: Vec<String> = (0..ndatasets)
        .map(|i| {
            let (p, d, _) = DATASETS[(first + i) % DATASETS.len()];
            format!("{p}/{d}")
        })
        .collect();
    let answered = (created + 60_000 + rng.below(3 * DAY_MS as u64) as i64).min(now_ms - 500);
    let max_uses = (rng.pct() < 40).then(|| 1 + rng.below(20) as i64);
    let mut events = vec![("created", created)];
    let mut uses = 0i64;
    let valid_to;
    let mut t = answered;
    match status {
        Status::Pending => {
            valid_to = now_ms + 7 * DAY_MS + rng.below(60 * DAY_MS as u64) as i64;
        }
        Status::Rejected => {
            valid_to = created + 30 * DAY_MS + rng.below(300 * DAY_MS as u64) as i64;
            events.push(("rejected", answered.min(now_ms - 1)));
        }
        Status::Granted | Status::Revoked | Status::Expired => {
            // Expired ones ran out before now; the others are still valid
            // (a granted consent past valid_to would be expired on read),
            // for a day to 13 months more: about 1.8 % of them run out in
            // any week, as the delivery task's sweep finds them.
            valid_to = if status == Status::Expired {
                answered + 1 + rng.below((now_ms - 1000 - answered).max(1) as u64) as i64
            } else {
                now_ms + DAY_MS + rng.below(395 * DAY_MS as u64) as i64
            };
            let end = valid_to.min(now_ms - 1);
            events.push(("accepted", answered.min(end)));
            let want = rng.below(4) as i64;
            let want = max_uses.map_or(want, |m| want.min(m));
            for _ in 0..want {
                t += 1 + rng.below(((end - t) / 4).max(1) as u64) as i64;
                if t >= end {
                    break;
                }
                events.push(("used", t));
                uses += 1;
            }
            match status {
                Status::Revoked => events.push(("revoked", (t + 1).min(end).max(answered))),
                Status::Expired => events.push(("expired", valid_to.max(t + 1))),
                _ => {}
            }
        }
    }
    let updated = events.last().map_or(created, |e| e.1);
    let requester = consumer(requester_n);
    let row = ConsentCopy {
        id: consent_id(k),
        supplier: (rng.pct() < 20).then(|| vendor(rng.next())),
        subject: Some(person_number(consent_subject(k, subjects))),
        datasets: serde_json::to_string(&datasets).expect("json"),
        purpose: PURPOSES[rng.below(PURPOSES.len() as u64) as usize].to_owned(),
        status: status.as_str().to_owned(),
        valid_to: ts(valid_to).to_string(),
        max_uses,
        uses,
        redirect_url: (rng.pct() < 50)
            .then(|| format!("https://{}.example/samtykke/retur", &requester[5..])),
        message: (rng.pct() < 30)
            .then(|| "Vi trenger opplysningene for å behandle søknaden din.".to_owned()),
        created_at: ts(created).to_string(),
        updated_at: ts(updated).to_string(),
        requester,
    };
    (row, events)
}

// ---- COPY text format ----------------------------------------------------

fn field(out: &mut Vec<u8>, v: Option<&str>) {
    match v {
        None => out.extend_from_slice(b"\\N"),
        Some(s) => {
            for b in s.bytes() {
                match b {
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    _ => out.push(b),
                }
            }
        }
    }
}

fn num(out: &mut Vec<u8>, v: Option<i64>) {
    match v {
        None => out.extend_from_slice(b"\\N"),
        Some(n) => out.extend_from_slice(n.to_string().as_bytes()),
    }
}

/// One COPY column writer.
type Column<'a> = &'a dyn Fn(&mut Vec<u8>);

fn row(out: &mut Vec<u8>, cols: &[Column<'_>]) {
    for (i, c) in cols.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        c(out);
    }
    out.push(b'\n');
}

fn bytea(out: &mut Vec<u8>, h: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(b"\\\\x");
    for b in h {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 15)]);
    }
}

/// Sends full chunks to a COPY task; flushes the rest at the end.
struct Sink {
    buf: Vec<u8>,
    tx: mpsc::Sender<Vec<u8>>,
}

impl Sink {
    fn new(tx: mpsc::Sender<Vec<u8>>) -> Self {
        Sink {
            buf: Vec::with_capacity(CHUNK + 4096),
            tx,
        }
    }
    fn maybe_flush(&mut self) {
        if self.buf.len() >= CHUNK {
            self.flush();
        }
    }
    fn flush(&mut self) {
        if !self.buf.is_empty() {
            let full = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK + 4096));
            self.tx.blocking_send(full).expect("COPY task gone");
        }
    }
}

async fn copy_task(
    url: String,
    statement: &'static str,
    mut rx: mpsc::Receiver<Vec<u8>>,
) -> Result<u64, Error> {
    let mut conn = PgConnection::connect(&url).await?;
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut conn)
        .await?;
    sqlx::query("SET synchronous_commit = off")
        .execute(&mut conn)
        .await?;
    let mut copy = conn.copy_in_raw(statement).await?;
    while let Some(chunk) = rx.recv().await {
        copy.send(chunk).await?;
    }
    Ok(copy.finish().await?)
}

// ---- seed ------------------------------------------------------------------

const TABLES: &str =
    "'audit_records','audit_index','consents','consent_events','tree_nodes','tree_heads'";

async fn seed(url: &str, consents: u64, records: u64, subjects: u64) -> Result<(), Error> {
    let started = Instant::now();
    let store = Store::open(url).await?;
    store.migrate().await?;
    if store.record_count().await? > 0 {
        return Err("the database already holds records: seed an empty one".into());
    }
    store.close().await;
    let now_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;

    let mut conn = PgConnection::connect(url).await?;
    // Keys and indexes: dropped for the load, re-created from their own
    // definitions; also the foreign keys of other tables that point into
    // these (consent_event_actors → consent_events, migration 0008).
    let constraints: Vec<(String, String, String, String)> = sqlx::query(&format!(
        "SELECT conrelid::regclass::text, conname, contype::text, pg_get_constraintdef(oid) \
         FROM pg_constraint WHERE contype IN ('p', 'f') AND (conrelid::regclass::text IN ({TABLES}) \
         OR (contype = 'f' AND confrelid::regclass::text IN ({TABLES})))"
    ))
    .fetch_all(&mut conn)
    .await?
    .into_iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect();
    let indexes: Vec<(String, String)> = sqlx::query(&format!(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = 'public' \
         AND i.tablename IN ({TABLES}) \
         AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
    ))
    .fetch_all(&mut conn)
    .await?
    .into_iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    for (table, name, kind, _) in constraints.iter().filter(|c| c.2 == "f") {
        let _ = kind;
        sqlx::query(&format!("ALTER TABLE {table} DROP CONSTRAINT {name}"))
            .execute(&mut conn)
            .await?;
    }
    for (table, name, _, _) in constraints.iter().filter(|c| c.2 == "p") {
        sqlx::query(&format!("ALTER TABLE {table} DROP CONSTRAINT {name}"))
            .execute(&mut conn)
            .await?;
    }
    for (name, _) in &indexes {
        sqlx::query(&format!("DROP INDEX {name}"))
            .execute(&mut conn)
            .await?;
    }

    // Consents and their events.
    let t = Instant::now();
    let (ctx, crx) = mpsc::channel(8);
    let (etx, erx) = mpsc::channel(8);
    let c_task = tokio::spawn(copy_task(
        url.to_owned(),
        "COPY consents (id, requester, supplier, subject, datasets, purpose, status, valid_to, \
         max_uses, uses, redirect_url, message, created_at, updated_at) FROM STDIN",
        crx,
    ));
    let e_task = tokio::spawn(copy_task(
        url.to_owned(),
        "COPY consent_events (consent_id, seq, type, at) FROM STDIN",
        erx,
    ));
    let gen = tokio::task::spawn_blocking(move || {
        let (mut c, mut e) = (Sink::new(ctx), Sink::new(etx));
        let mut events = 0u64;
        for k in 0..consents {
            let (r, evs) = consent(k, subjects, now_ms);
            row(
                &mut c.buf,
                &[
                    &|o| field(o, Some(&r.id)),
                    &|o| field(o, Some(&r.requester)),
                    &|o| field(o, r.supplier.as_deref()),
                    &|o| field(o, r.subject.as_deref()),
                    &|o| field(o, Some(&r.datasets)),
                    &|o| field(o, Some(&r.purpose)),
                    &|o| field(o, Some(&r.status)),
                    &|o| field(o, Some(&r.valid_to)),
                    &|o| num(o, r.max_uses),
                    &|o| num(o, Some(r.uses)),
                    &|o| field(o, r.redirect_url.as_deref()),
                    &|o| field(o, r.message.as_deref()),
                    &|o| field(o, Some(&r.created_at)),
                    &|o| field(o, Some(&r.updated_at)),
                ],
            );
            for (seq, (kind, at)) in evs.iter().enumerate() {
                let at = ts(*at).to_string();
                row(
                    &mut e.buf,
                    &[
                        &|o| field(o, Some(&r.id)),
                        &|o| num(o, Some(seq as i64)),
                        &|o| field(o, Some(kind)),
                        &|o| field(o, Some(&at)),
                    ],
                );
                events += 1;
            }
            c.maybe_flush();
            e.maybe_flush();
        }
        c.flush();
        e.flush();
        events
    });
    let events = gen.await?;
    c_task.await??;
    e_task.await??;
    eprintln!(
        "seed: {consents} consents, {events} consent events in {:.0} s",
        t.elapsed().as_secs_f64()
    );

    // Audit records over the last year, with the tree.
    let t = Instant::now();
    let (rtx, rrx) = mpsc::channel(8);
    let (ntx, nrx) = mpsc::channel(8);
    let (htx, hrx) = mpsc::channel(8);
    let r_task = tokio::spawn(copy_task(
        url.to_owned(),
        "COPY audit_records (idx, time, transfer_id, kind, consumer, supplier, client_id, \
         provider, dataset, method, path, purpose, basis, legal_ref, consent_id, subject_ref, \
         decision, code, status, bytes, duration_ms) FROM STDIN",
        rrx,
    ));
    let n_task = tokio::spawn(copy_task(
        url.to_owned(),
        "COPY tree_nodes (size, level, hash) FROM STDIN",
        nrx,
    ));
    let h_task = tokio::spawn(copy_task(
        url.to_owned(),
        "COPY tree_heads (size, root, time) FROM STDIN",
        hrx,
    ));
    let gen = tokio::task::spawn_blocking(move || -> Result<(u64, String), Error> {
        let key = hmac::Key::new(hmac::HMAC_SHA256, PSEUDONYM_KEY);
        let refs: Vec<String> = (0..subjects).map(|s| subject_ref(&key, s)).collect();
        let (mut rs, mut ns, mut hs) = (Sink::new(rtx), Sink::new(ntx), Sink::new(htx));
        let mut frontier = Frontier::new();
        let start_ms = now_ms - YEAR_MS;
        let mut rng = Rng::new(0xA0D17);
        let mut i = 0u64;
        let mut nodes = 0u64;
        let time_of =
            |i: u64| start_ms + ((i as u128 * (YEAR_MS - 1000) as u128) / records as u128) as i64;
        while i < records {
            // One call: its decision, and unless denied its outcome.
            let (subject, basis, consent, dataset) = if rng.pct() < 35 {
                // Under consent: one that was granted at some point.
                let mut k = rng.below(consents);
                while matches!(consent_status(k), Status::Pending | Status::Rejected) {
                    k = rng.below(consents);
                }
                let (row, _) = consent(k, subjects, now_ms);
                let ds: Vec<String> = serde_json::from_str(&row.datasets).expect("json");
                let idx = DATASETS
                    .iter()
                    .position(|(p, d, _)| format!("{p}/{d}") == ds[0])
                    .unwrap_or(0);
                (
                    consent_subject(k, subjects),
                    Basis::Consent,
                    Some(row.id),
                    idx,
                )
            } else {
                let s = skewed_subject(&mut rng, subjects);
                (
                    s,
                    Basis::Statutory,
                    None,
                    rng.below(DATASETS.len() as u64) as usize,
                )
            };
            let (provider, ds, legal_ref) = DATASETS[dataset];
            let c = rng.below(CONSUMERS);
            let deny = rng.pct() < 4;
            let decision_ms = time_of(i);
            let duration = 5 + rng.below(60) + if rng.pct() < 2 { rng.below(3000) } else { 0 };
            let rec = AuditRecord {
                index: i,
                time: ts(decision_ms),
                transfer_id: uuid(
                    ((decision_ms as u64) << 16) | (rng.next() & 0xffff),
                    rng.next(),
                    7,
                ),
                kind: RecordKind::Decision,
                consumer: Some(consumer(c)),
                supplier: c.is_multiple_of(5).then(|| vendor(c)),
                client_id: Some(uuid(mix(c), mix(c ^ 1), 4)),
                provider: Some(provider.to_owned()),
                dataset: Some(format!("{provider}/{ds}")),
                method: "GET".to_owned(),
                path: format!("/data/{provider}/{ds}"),
                purpose: Some(PURPOSES[(c % PURPOSES.len() as u64) as usize].to_owned()),
                basis: Some(basis),
                legal_ref: if basis == Basis::Statutory {
                    legal_ref.map(str::to_owned)
                } else {
                    None
                },
                consent_id: consent,
                subject_ref: Some(refs[subject as usize].clone()),
                decision: Some(if deny { Verdict::Deny } else { Verdict::Allow }),
                code: deny.then(|| "consent_required".to_owned()),
                status: deny.then_some(403),
                bytes: None,
                duration_ms: None,
                count: None,
                system_user: None,
                break_glass: None,
                disclosure_delay_days: None,
            };
            let mut batch = vec![rec];
            if !deny && i + 1 < records {
                let mut out = batch[0].clone();
                out.index = i + 1;
                out.time = ts(time_of(i + 1).max(decision_ms));
                out.kind = RecordKind::Outcome;
                out.decision = None;
                out.status = Some(if rng.pct() < 2 { 502 } else { 200 });
                out.bytes = Some(200 + rng.below(20_000));
                out.duration_ms = Some(duration);
                batch.push(out);
            }
            for r in &batch {
                let leaf = r.leaf_hash()?;
                let status = r.status.map(i64::from);
                row(
                    &mut rs.buf,
                    &[
                        &|o| num(o, Some(r.index as i64)),
                        &|o| field(o, Some(&r.time.to_string())),
                        &|o| field(o, Some(&r.transfer_id)),
                        &|o| field(o, Some(r.kind.as_str())),
                        &|o| field(o, r.consumer.as_deref()),
                        &|o| field(o, r.supplier.as_deref()),
                        &|o| field(o, r.client_id.as_deref()),
                        &|o| field(o, r.provider.as_deref()),
                        &|o| field(o, r.dataset.as_deref()),
                        &|o| field(o, Some(&r.method)),
                        &|o| field(o, Some(&r.path)),
                        &|o| field(o, r.purpose.as_deref()),
                        &|o| field(o, r.basis.map(|b| b.as_str())),
                        &|o| field(o, r.legal_ref.as_deref()),
                        &|o| field(o, r.consent_id.as_deref()),
                        &|o| field(o, r.subject_ref.as_deref()),
                        &|o| field(o, r.decision.map(|d| d.as_str())),
                        &|o| field(o, r.code.as_deref()),
                        &|o| num(o, status),
                        &|o| num(o, r.bytes.map(|b| b as i64)),
                        &|o| num(o, r.duration_ms.map(|b| b as i64)),
                    ],
                );
                frontier.push(leaf, |id, h| {
                    row(
                        &mut ns.buf,
                        &[
                            &|o| num(o, Some(id.end() as i64)),
                            &|o| num(o, Some(i64::from(id.level))),
                            &|o| bytea(o, h),
                        ],
                    );
                    nodes += 1;
                });
                let size = frontier.size();
                if size.is_multiple_of(HEAD_EVERY) || size == records {
                    let root = frontier.root();
                    row(
                        &mut hs.buf,
                        &[&|o| num(o, Some(size as i64)), &|o| bytea(o, &root), &|o| {
                            field(o, Some(&r.time.to_string()))
                        }],
                    );
                }
            }
            i += batch.len() as u64;
            rs.maybe_flush();
            ns.maybe_flush();
            hs.maybe_flush();
            if i % 1_000_000 < 2 && i > 1 {
                eprintln!("seed: {i} records");
            }
        }
        rs.flush();
        ns.flush();
        hs.flush();
        Ok((
            nodes,
            base64::engine::general_purpose::STANDARD.encode(frontier.root()),
        ))
    });
    let (nodes, root) = gen.await??;
    r_task.await??;
    n_task.await??;
    h_task.await??;
    eprintln!(
        "seed: {records} records, {nodes} tree nodes in {:.0} s; root {root}",
        t.elapsed().as_secs_f64()
    );

    // The derived index (migration 0015), as the indexer would have written
    // it: every record, and the indexer's position at the log's end, so the
    // audit API's and the citizen's queries run on it without catching up.
    let t = Instant::now();
    sqlx::query(
        "INSERT INTO audit_index (idx, time, transfer_id, kind, consumer, provider, dataset, \
         subject_ref, decision, disclose_at) SELECT idx, time, transfer_id, kind, consumer, \
         provider, dataset, subject_ref, decision, disclose_at FROM audit_records",
    )
    .execute(&mut conn)
    .await?;
    sqlx::query(
        "INSERT INTO log_followers (name, position, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET position = excluded.position",
    )
    .bind(consent_db::INDEX_FOLLOWER)
    .bind(i64::try_from(records)?)
    .bind(Timestamp::now().to_string())
    .execute(&mut conn)
    .await?;
    eprintln!("seed: audit_index in {:.0} s", t.elapsed().as_secs_f64());

    // Keys, then indexes, then foreign keys, as the migrations define them.
    let t = Instant::now();
    sqlx::query("SET maintenance_work_mem = '1GB'")
        .execute(&mut conn)
        .await?;
    for (table, name, _, def) in constraints.iter().filter(|c| c.2 == "p") {
        let s = Instant::now();
        sqlx::query(&format!("ALTER TABLE {table} ADD CONSTRAINT {name} {def}"))
            .execute(&mut conn)
            .await?;
        eprintln!("seed: {name} in {:.0} s", s.elapsed().as_secs_f64());
    }
    for (name, def) in &indexes {
        let s = Instant::now();
        sqlx::query(def).execute(&mut conn).await?;
        eprintln!("seed: {name} in {:.0} s", s.elapsed().as_secs_f64());
    }
    for (table, name, _, def) in constraints.iter().filter(|c| c.2 == "f") {
        let s = Instant::now();
        sqlx::query(&format!("ALTER TABLE {table} ADD CONSTRAINT {name} {def}"))
            .execute(&mut conn)
            .await?;
        eprintln!("seed: {name} in {:.0} s", s.elapsed().as_secs_f64());
    }
    eprintln!(
        "seed: keys and indexes in {:.0} s",
        t.elapsed().as_secs_f64()
    );

    // Transfer notices (SPEC 10), written by the `notify` follower's own
    // step over the whole log: one a decision about a person, as a year
    // of calls leaves them when no webhook has sent any. After the keys:
    // the step's `ON CONFLICT (id)` needs the table's primary key.
    let t = Instant::now();
    let store = Store::open_with(url, &StoreConfig::default()).await?;
    let mut notices = 0u64;
    loop {
        let stepped = store.follow_log_for_notifications(1 << 22).await?;
        notices += stepped as u64;
        if stepped == 0 {
            break;
        }
    }
    store.close().await;
    eprintln!(
        "seed: transfer notices over {notices} log indexes in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    for table in [
        "consents",
        "consent_events",
        "audit_records",
        "audit_index",
        "tree_nodes",
        "tree_heads",
        "notifications",
    ] {
        sqlx::query(&format!("VACUUM (ANALYZE) {table}"))
            .execute(&mut conn)
            .await?;
    }
    eprintln!("seed: vacuum analyze in {:.0} s", t.elapsed().as_secs_f64());
    conn.close().await?;
    eprintln!("seed: done in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

// ---- measure ---------------------------------------------------------------

struct Stats {
    name: String,
    samples: Vec<Duration>,
    rows: Vec<usize>,
}

impl Stats {
    fn new(name: impl Into<String>) -> Self {
        Stats {
            name: name.into(),
            samples: Vec::new(),
            rows: Vec::new(),
        }
    }
    fn print(mut self) {
        self.samples.sort();
        let n = self.samples.len();
        let q = |p: f64| {
            self.samples[((n as f64 * p).ceil() as usize).clamp(1, n) - 1].as_secs_f64() * 1e3
        };
        let mean = self.samples.iter().map(Duration::as_secs_f64).sum::<f64>() / n as f64 * 1e3;
        let rows = if self.rows.is_empty() {
            "-".to_owned()
        } else {
            let mean = self.rows.iter().sum::<usize>() as f64 / self.rows.len() as f64;
            format!("{mean:.1} (max {})", self.rows.iter().max().unwrap_or(&0))
        };
        let fmt = |v: f64| {
            if v < 0.01 {
                format!("{v:.5}")
            } else {
                format!("{v:.3}")
            }
        };
        println!(
            "| {} | {n} | {} | {} | {} | {} | {rows} |",
            self.name,
            fmt(q(0.5)),
            fmt(q(0.99)),
            fmt(q(1.0)),
            fmt(mean)
        );
    }
}

async fn measure(url: &str, consents: u64, subjects: u64, samples: usize) -> Result<(), Error> {
    let store = Store::open_with(url, &StoreConfig::default()).await?;
    let now_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    let mut rng = Rng::new(now_ms as u64);
    let granted: Vec<u64> = std::iter::from_fn(|| Some(rng.below(consents)))
        .filter(|k| consent_status(*k) == Status::Granted)
        .take(samples)
        .collect();
    println!("| measurement | samples | p50 ms | p99 ms | max ms | mean ms | rows |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");

    // The consent lookup without a cache: the first read of each row (not in
    // shared_buffers; maybe in the OS page cache), then the same rows again.
    for pass in ["first read", "again"] {
        let mut st = Stats::new(format!(
            "consent by id, no cache, Store::get_consent_at ({pass})"
        ));
        for k in &granted {
            let id = consent_id(*k);
            let t = Instant::now();
            let row = store.get_consent_at(&id, Timestamp::now()).await?;
            st.samples.push(t.elapsed());
            let row = row.ok_or_else(|| format!("consent {id} missing"))?;
            if row.status.as_str() != "granted" {
                return Err(format!("consent {id} is {}", row.status).into());
            }
        }
        st.print();
    }

    // With a cache: a positive cache of granted consents in the process, as
    // big as the granted consents (up to 1M rows), behind a RwLock.
    let cached = consents.min(1_900_000);
    let mut map: HashMap<String, Arc<ConsentCopy>> = HashMap::new();
    for k in (0..cached).filter(|k| consent_status(*k) == Status::Granted) {
        let (row, _) = consent(k, subjects, now_ms);
        map.insert(row.id.clone(), Arc::new(row));
    }
    let entries = map.len();
    let cache = RwLock::new(map);
    let ids: Vec<String> = (0..samples * 10)
        .map(|_| {
            let mut k = rng.below(cached);
            while consent_status(k) != Status::Granted {
                k = rng.below(cached);
            }
            consent_id(k)
        })
        .collect();
    let mut st = Stats::new(format!(
        "consent by id, in-process cache hit (RwLock<HashMap>, {entries} entries)"
    ));
    let now = Timestamp::now().to_string();
    let mut hits = 0usize;
    for id in &ids {
        let t = Instant::now();
        let hit = cache
            .read()
            .map_err(|_| "poisoned")?
            .get(id.as_str())
            .filter(|r| r.valid_to.as_str() > now.as_str())
            .cloned();
        st.samples.push(t.elapsed());
        hits += usize::from(hit.is_some());
    }
    if hits != ids.len() {
        return Err(format!("cache: {hits} hits of {}", ids.len()).into());
    }
    st.print();

    // The write the hot path does under consent: Store::use_consent.
    let mut st = Stats::new("consent use, Store::use_consent (UPDATE + event, one commit)");
    for k in granted.iter().take(samples) {
        let id = consent_id(*k);
        let t = Instant::now();
        let out = store.use_consent(&id, Timestamp::now()).await?;
        st.samples.push(t.elapsed());
        let _ = matches!(out, UseOutcome::Used(_));
    }
    st.print();

    // The audit queries by subject: uniform random citizens, and the most
    // active ones (the skew puts them at the lowest ordinals).
    let key = hmac::Key::new(hmac::HMAC_SHA256, PSEUDONYM_KEY);
    let year_ago = ts(now_ms - YEAR_MS);
    let until = ts(now_ms + 60_000);
    for (who, pick) in [("random citizen", 0u64), ("top-100 active citizen", 100)] {
        let refs: Vec<String> = (0..samples)
            .map(|_| {
                let s = if pick == 0 {
                    rng.below(subjects)
                } else {
                    rng.below(pick)
                };
                subject_ref(&key, s)
            })
            .collect();
        let mut st = Stats::new(format!(
            "citizen's transfers page (kind=decision, subject_ref, LIMIT 101), {who}"
        ));
        for r in &refs {
            let filter = RecordFilter {
                subject_ref: Some(r.clone()),
                kind: Some(RecordKind::Decision),
                limit: Some(101),
                ..RecordFilter::default()
            };
            let t = Instant::now();
            let found = store.records(&filter).await?;
            st.samples.push(t.elapsed());
            st.rows.push(found.len());
        }
        st.print();
        let mut st = Stats::new(format!(
            "audit API: subject over a year (since, until, subject_ref, LIMIT 1001), {who}"
        ));
        for r in &refs {
            let filter = RecordFilter {
                since: Some(year_ago),
                until: Some(until),
                subject_ref: Some(r.clone()),
                limit: Some(1001),
                ..RecordFilter::default()
            };
            let t = Instant::now();
            let found = store.records(&filter).await?;
            st.samples.push(t.elapsed());
            st.rows.push(found.len());
        }
        st.print();
    }

    // The citizen's inbox (SPEC 10): their transfer notices by pseudonym and
    // their consents' notices by person number, newest first, one page.
    for (who, pick) in [("random citizen", 0u64), ("top-100 active citizen", 100)] {
        let mut st = Stats::new(format!(
            "citizen's inbox (Store::inbox, transfers and consent notices, 20 a page), {who}"
        ));
        for _ in 0..samples {
            let s = if pick == 0 {
                rng.below(subjects)
            } else {
                rng.below(pick)
            };
            let person = PersonNumber::parse(&person_number(s), true)?;
            let settings = NotificationSettings::default();
            let t = Instant::now();
            let found = store
                .inbox(
                    &subject_ref(&key, s),
                    &person,
                    settings,
                    Timestamp::now(),
                    None,
                    20,
                )
                .await?;
            st.samples.push(t.elapsed());
            st.rows.push(found.len());
        }
        st.print();
    }

    // Consents about to expire (SPEC 10): the delivery task's sweep of
    // everybody's, once a minute on every replica (the first queues their
    // notices; the ones after find them queued), and one person's, which the
    // inbox asks before each page.
    let week = time::Duration::days(7);
    let t = Instant::now();
    let queued = store
        .queue_expiring_consents(Timestamp::now(), week, None)
        .await?;
    let mut st = Stats::new(format!(
        "consents about to expire, everybody's (Store::queue_expiring_consents): the first sweep, \
         which queued {queued} notices"
    ));
    st.samples.push(t.elapsed());
    st.rows.push(usize::try_from(queued)?);
    st.print();
    let mut st = Stats::new("consents about to expire, everybody's: a later sweep (nothing new)");
    for _ in 0..samples.min(50) {
        let t = Instant::now();
        let queued = store
            .queue_expiring_consents(Timestamp::now(), week, None)
            .await?;
        st.samples.push(t.elapsed());
        st.rows.push(usize::try_from(queued)?);
    }
    st.print();
    let mut st =
        Stats::new("consents about to expire, one random citizen's (before each inbox page)");
    for _ in 0..samples {
        let person = PersonNumber::parse(&person_number(rng.below(subjects)), true)?;
        let t = Instant::now();
        let queued = store
            .queue_expiring_consents(Timestamp::now(), week, Some(&person))
            .await?;
        st.samples.push(t.elapsed());
        st.rows.push(usize::try_from(queued)?);
    }
    st.print();

    // The audit API by time alone: a random hour of the year, first page.
    let mut st = Stats::new("audit API: one hour of the year (since, until, LIMIT 1001)");
    for _ in 0..samples.min(1000) {
        let from = now_ms - YEAR_MS + rng.below((YEAR_MS - 3_600_000) as u64) as i64;
        let filter = RecordFilter {
            since: Some(ts(from)),
            until: Some(ts(from + 3_600_000)),
            limit: Some(1001),
            ..RecordFilter::default()
        };
        let t = Instant::now();
        let found = store.records(&filter).await?;
        st.samples.push(t.elapsed());
        st.rows.push(found.len());
    }
    st.print();
    store.close().await;
    // For EXPLAIN in bench/scale: one granted consent and one random citizen.
    let k = granted.first().copied().unwrap_or(0);
    eprintln!("sample consent_id {}", consent_id(k));
    eprintln!(
        "sample subject_ref {}",
        subject_ref(&key, rng.below(subjects))
    );
    eprintln!("sample heavy subject_ref {}", subject_ref(&key, 0));
    eprintln!("sample year_ago {year_ago} until {until}");
    Ok(())
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> Result<T, Error> {
    args.get(i)
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("argument {i}: {what}").into())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("seed") => {
            seed(
                &arg::<String>(&args, 1, "URL")?,
                arg(&args, 2, "consents")?,
                arg(&args, 3, "records")?,
                arg(&args, 4, "subjects")?,
            )
            .await
        }
        Some("measure") => {
            measure(
                &arg::<String>(&args, 1, "URL")?,
                arg(&args, 2, "consents")?,
                arg(&args, 3, "subjects")?,
                arg(&args, 4, "samples")?,
            )
            .await
        }
        _ => Err("usage: scale_bench seed URL CONSENTS RECORDS SUBJECTS | measure URL CONSENTS SUBJECTS SAMPLES".into()),
    }
}
