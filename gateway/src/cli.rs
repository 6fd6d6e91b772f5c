//! The command line: `bru demo | serve | check | explain | migrate | witness | audit`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use crate::config::Config;

#[derive(Parser)]
#[command(
    name = "bru",
    version,
    about = "Bru: data-sharing gateway and consent broker"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The whole system on one machine, with the demo world.
    Demo {
        #[arg(long, default_value = ".bru-demo")]
        dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: std::net::SocketAddr,
        #[arg(long, default_value = "127.0.0.1:9090")]
        ops_listen: std::net::SocketAddr,
        /// A PostgreSQL URL instead of the embedded SQLite.
        #[arg(long)]
        store: Option<String>,
    },
    /// Production mode.
    Serve {
        #[arg(long)]
        config: PathBuf,
    },
    /// Validates the config and the policy.
    Check {
        #[arg(long)]
        config: PathBuf,
    },
    /// Prints the decision for a caller, dataset and purpose, and every rule on the way.
    Explain {
        #[arg(long)]
        config: PathBuf,
        /// `0192:{orgnr}`
        #[arg(long)]
        consumer: String,
        /// `0192:{orgnr}` of a vendor acting for the consumer.
        #[arg(long)]
        supplier: Option<String>,
        /// `provider/dataset`
        #[arg(long)]
        dataset: String,
        #[arg(long)]
        purpose: Option<String>,
        /// The token's scopes; the dataset's own scope when left out.
        #[arg(long)]
        scope: Option<String>,
    },
    /// Applies the store's migrations.
    Migrate {
        #[arg(long)]
        config: PathBuf,
    },
    /// A C2SP tlog-witness another organisation runs: cosigns the
    /// checkpoints of the logs given with `--log`, never a fork.
    Witness {
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// Ed25519 PKCS#8 PEM key; created on the first start if missing.
        #[arg(long)]
        key: PathBuf,
        /// A log's checkpoint verifier key (`origin+keyid+key`); repeatable.
        #[arg(long = "log", required = true)]
        logs: Vec<String>,
        /// What the witness cosigned; `<key>.state` if left out.
        #[arg(long)]
        state: Option<PathBuf>,
        /// The witness's key name; derived from its key if left out.
        #[arg(long)]
        name: Option<String>,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recomputes the transparency log from the stored records and checks
    /// every signed checkpoint; exit 0 intact, 1 tampered.
    Verify {
        #[arg(long)]
        config: PathBuf,
        /// The checkpoint key as a C2SP verifier key (`name+keyid+key`),
        /// instead of the public half of the config's checkpoint key.
        #[arg(long)]
        key: Option<String>,
        /// Also fail unless the newest checkpoint carries this many valid
        /// cosignatures by the config's `[[witness]]`es.
        #[arg(long)]
        witnesses: Option<usize>,
    },
    /// Streams audit records for a SIEM.
    Export {
        #[arg(long)]
        config: PathBuf,
        /// RFC 3339 time; records at or after it.
        #[arg(long)]
        since: Option<String>,
        /// RFC 3339 time; records before it.
        #[arg(long)]
        until: Option<String>,
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
        /// The same filters as `GET /audit/v1/records`.
        #[command(flatten)]
        filter: ExportFilter,
    },
    /// Snooping findings (SPEC 11) as JSON lines, oldest first, after
    /// evaluating the policy's `[snooping]` rules on any records no
    /// follower has read yet.
    Alerts {
        #[arg(long)]
        config: PathBuf,
        /// RFC 3339 time; findings about records at or after it.
        #[arg(long)]
        since: Option<String>,
        /// Only this rule: subjects_per_hour, off_hours, break_glass or representation.
        #[arg(long)]
        rule: Option<String>,
    },
}

/// `bru audit export` filters, as the audit API's (issue #20).
#[derive(clap::Args, Default)]
struct ExportFilter {
    /// `0192:{orgnr}`.
    #[arg(long)]
    consumer: Option<String>,
    /// `provider/dataset`.
    #[arg(long)]
    dataset: Option<String>,
    /// `allow` or `deny`.
    #[arg(long)]
    decision: Option<String>,
    /// `decision`, `outcome` or `audit_read`.
    #[arg(long)]
    kind: Option<String>,
    /// A person number; pseudonymised with the config's key before the search.
    #[arg(long)]
    subject: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportFormat {
    Jsonl,
    Csv,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { config } => return check(&config),
        Command::Explain {
            config,
            consumer,
            supplier,
            dataset,
            purpose,
            scope,
        } => explain(
            &config,
            &consumer,
            supplier.as_deref(),
            &dataset,
            purpose.as_deref(),
            scope.as_deref(),
        ),
        Command::Demo {
            dir,
            listen,
            ops_listen,
            store,
        } => runtime().and_then(|rt| {
            rt.block_on(crate::run::demo(crate::run::DemoArgs {
                dir,
                listen,
                ops_listen,
                store,
            }))
        }),
        Command::Serve { config } => {
            runtime().and_then(|rt| rt.block_on(crate::run::serve(&config)))
        }
        Command::Witness {
            listen,
            key,
            logs,
            state,
            name,
        } => runtime().and_then(|rt| {
            rt.block_on(witness::serve(witness::WitnessArgs {
                listen,
                key_file: key,
                logs,
                state_file: state,
                name,
            }))
            .map_err(anyhow::Error::from)
        }),
        Command::Migrate { config } => runtime().and_then(|rt| rt.block_on(migrate(&config))),
        Command::Audit {
            command:
                AuditCommand::Verify {
                    config,
                    key,
                    witnesses,
                },
        } => {
            return match runtime()
                .and_then(|rt| rt.block_on(verify(&config, key.as_deref(), witnesses)))
            {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("bru: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Audit {
            command:
                AuditCommand::Export {
                    config,
                    since,
                    until,
                    format,
                    filter,
                },
        } => runtime().and_then(|rt| {
            rt.block_on(export(
                &config,
                since.as_deref(),
                until.as_deref(),
                format,
                &filter,
            ))
        }),
        Command::Audit {
            command:
                AuditCommand::Alerts {
                    config,
                    since,
                    rule,
                },
        } => {
            runtime().and_then(|rt| rt.block_on(alerts(&config, since.as_deref(), rule.as_deref())))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bru: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Loads config and policy, or prints every error as `file:line: message`.
pub fn load(config: &Path) -> Result<(Config, policy::Policy), Vec<String>> {
    let config = Config::load(config)
        .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    let policy = policy::load_policy(&config.policy_file)
        .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    let errors = config.check_against(&policy);
    if !errors.is_empty() {
        return Err(errors.iter().map(ToString::to_string).collect());
    }
    Ok((config, policy))
}

fn check(config: &Path) -> ExitCode {
    match load(config) {
        Ok((config, policy)) => {
            println!(
                "{}: valid ({} datasets, {} consumers, {} issuers)",
                config.file.display(),
                policy.datasets.len(),
                policy.consumers.len(),
                config.issuers.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in errors {
                println!("{e}");
            }
            ExitCode::FAILURE
        }
    }
}

fn explain(
    config: &Path,
    consumer: &str,
    supplier: Option<&str>,
    dataset: &str,
    purpose: Option<&str>,
    scope: Option<&str>,
) -> anyhow::Result<()> {
    let (_, policy) = load(config).map_err(|e| anyhow::anyhow!(e.join("\n")))?;
    let consumer =
        policy::OrgNumber::parse_iso6523(consumer).context("--consumer must be 0192:{orgnr}")?;
    let supplier = supplier
        .map(policy::OrgNumber::parse_iso6523)
        .transpose()
        .context("--supplier must be 0192:{orgnr}")?;
    let (provider, name) = dataset
        .split_once('/')
        .context("--dataset must be provider/dataset")?;
    let Some(ds) = policy.dataset(provider, name) else {
        println!("deny: unknown_dataset");
        println!("  ✗ no policy names the dataset {dataset}");
        return Ok(());
    };
    let scopes = match scope {
        Some(s) => s
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        None => vec![ds.scope.clone()],
    };
    let caller = policy::Caller {
        consumer: consumer.clone(),
        supplier,
        client_id: String::new(),
        scopes,
    };
    // Without a request, assume what a request would have to bring: a valid
    // subject and, for consent datasets, a matching granted consent.
    let subject =
        policy::PersonNumber::parse("12884513829", true).context("the example subject")?;
    let now = time::OffsetDateTime::now_utc();
    let consent = policy::ConsentFact::Found(policy::Consent {
        id: "example".into(),
        requester: consumer,
        subject: Some(subject.clone()),
        datasets: vec![ds.id.clone()],
        purpose: purpose.unwrap_or_default().to_owned(),
        status: policy::ConsentStatus::Granted,
        valid_to: now + time::Duration::days(1),
        uses: 0,
        max_uses: None,
        frequency: None,
    });
    let subject = if ds.subject.is_some() {
        policy::SubjectFact::Valid(subject)
    } else {
        policy::SubjectFact::NotApplicable
    };
    let facts = policy::Facts {
        blocks: Vec::new(),
        break_glass: None,
        purpose,
        subject,
        consent,
        now,
    };
    let (decision, steps) = policy::explain(&policy, &caller, ds, &facts);
    match &decision {
        policy::Decision::Allow {
            basis,
            legal_ref,
            mask,
            ..
        } => {
            println!(
                "allow ({}{})",
                basis.as_str(),
                legal_ref.map(|r| format!(": {r}")).unwrap_or_default()
            );
            println!("  response: {}", describe_mask(mask));
        }
        policy::Decision::Deny(code) => println!("deny: {}", code.as_str()),
    }
    for step in steps {
        println!("  {} {}", if step.passed { "✓" } else { "✗" }, step.rule);
    }
    println!("citizen protections (SPEC 10):");
    for line in crate::protect::explain(&policy, &caller.consumer, ds) {
        println!("  · {line}");
    }
    // snoop (#20): what the security team is pointed at.
    println!("snooping (findings at GET /audit/v1/alerts):");
    for line in policy::snoop::explain(&policy.snooping, &ds.id, &caller.consumer) {
        println!("  · {line}");
    }
    if ds.basis == policy::LegalBasis::Consent {
        println!("representation (who may decide a consent for someone else):");
        for line in policy::represent::explain(ds) {
            println!("  · {line}");
        }
    }
    if ds.subject.is_some() {
        println!(
            "  (assumed: the request names a valid subject{})",
            if ds.basis == policy::LegalBasis::Consent {
                " and a granted, matching consent"
            } else {
                ""
            }
        );
    }
    Ok(())
}

fn describe_mask(mask: &policy::FieldMask) -> String {
    match mask {
        policy::FieldMask::None => "passed through as the provider sends it".into(),
        policy::FieldMask::JsonFields(f) => {
            format!("only the JSON paths {} (from the root)", f.join(", "))
        }
        policy::FieldMask::FhirResourceTypes(t) => {
            format!("only the FHIR resources {}", t.join(", "))
        }
    }
}

async fn open_store(config: &Config) -> anyhow::Result<consent_db::Store> {
    let url = config
        .store
        .url
        .read_string()
        .map_err(|e| anyhow::anyhow!("store url: {e}"))?;
    let store_config = consent_db::StoreConfig {
        postgres_tls: config.store.tls.clone(),
        ..consent_db::StoreConfig::default()
    };
    let store = consent_db::Store::open_with(&url, &store_config)
        .await
        .context("cannot open the store")?;
    Ok(store)
}

async fn migrate(config: &Path) -> anyhow::Result<()> {
    let config = Config::load(config).map_err(|e| anyhow::anyhow!(join(&e)))?;
    let store = open_store(&config).await?;
    store.migrate().await.context("migrations failed")?;
    println!("migrations applied ({})", store.backend_name());
    Ok(())
}

fn join(errors: &[crate::config::ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// `bru audit verify`: one summary line and exit 0, or the first bad index
/// and why, and exit 1. A progress bar only on a terminal.
async fn verify(
    config: &Path,
    key: Option<&str>,
    witnesses: Option<usize>,
) -> anyhow::Result<ExitCode> {
    use std::io::IsTerminal;
    let config = Config::load(config).map_err(|e| anyhow::anyhow!(join(&e)))?;
    let public_key = match key {
        Some(vkey) => {
            consent_db::note::parse_verifier_key(vkey)
                .context("--key")?
                .1
        }
        None => crate::keys::checkpoint_public_key(&config.keys)
            .map_err(|e| anyhow::anyhow!("keys: {e}"))?,
    };
    // No migration and no catching up: the verifier only reads.
    let store = open_store(&config).await?;
    let total = store
        .record_count()
        .await
        .context("cannot read the log (run `bru migrate` first?)")?;
    let bar = if std::io::stdout().is_terminal() && std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} records ({per_sec}, {eta} left)",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let result = consent_db::verify(&store, &public_key, &mut |done| bar.set_position(done)).await;
    bar.finish_and_clear();
    let witnessed = match (&result, witnesses) {
        (Ok(_), Some(n)) => {
            Some(crate::witnessing::check_cosigned(&store, &config.witnesses, n).await)
        }
        _ => None,
    };
    store.close().await;
    match result {
        Ok(summary) => {
            println!("{summary}");
            match witnessed {
                Some(Err(e)) => {
                    println!("NOT WITNESSED: {e}");
                    Ok(ExitCode::FAILURE)
                }
                Some(Ok(line)) => {
                    println!("{line}");
                    Ok(ExitCode::SUCCESS)
                }
                None => Ok(ExitCode::SUCCESS),
            }
        }
        Err(consent_db::VerifyError::Tampered(t)) => {
            println!("TAMPERED: {t}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

/// `bru audit alerts`: catches the snoop follower up (as the gateway's
/// does, in pages), then prints the findings as JSON lines.
async fn alerts(config: &Path, since: Option<&str>, rule: Option<&str>) -> anyhow::Result<()> {
    use std::io::Write;
    let (config, policy) = load(config).map_err(|e| anyhow::anyhow!(e.join("\n")))?;
    let since = since
        .map(|s| {
            consent_db::Timestamp::parse(s)
                .map_err(|e| anyhow::anyhow!("{s:?} is not an RFC 3339 time: {e}"))
        })
        .transpose()?;
    let rule = rule
        .map(|r| {
            policy::snoop::Rule::parse(r).ok_or_else(|| {
                anyhow::anyhow!(
                    "--rule must be subjects_per_hour, off_hours, break_glass or representation"
                )
            })
        })
        .transpose()?;
    let store = open_store(&config).await?;
    store.migrate().await.context("migrations failed")?;
    loop {
        let step = store
            .snoop_step(&policy.snooping, crate::snoop::PAGE)
            .await
            .context("cannot evaluate the snooping rules")?;
        if step.records < u64::from(crate::snoop::PAGE) {
            break;
        }
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut after = None;
    loop {
        let page = store
            .snoop_findings(&consent_db::FindingFilter {
                since,
                rule: rule.map(|r| r.as_str().to_owned()),
                after_seq: after,
                limit: Some(1000),
            })
            .await
            .context("cannot read findings")?;
        let Some(last) = page.last() else { break };
        after = Some(last.seq);
        for finding in &page {
            writeln!(out, "{}", serde_json::to_string(finding)?)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Pages through the log by index, so memory stays flat however long it is.
async fn export(
    config: &Path,
    since: Option<&str>,
    until: Option<&str>,
    format: ExportFormat,
    wanted: &ExportFilter,
) -> anyhow::Result<()> {
    use std::io::{IsTerminal, Write};
    let config = Config::load(config).map_err(|e| anyhow::anyhow!(join(&e)))?;
    let base = export_filter(&config, wanted)?;
    let store = open_store(&config).await?;
    store.migrate().await.context("migrations failed")?;
    let parse = |s: &str| {
        consent_db::Timestamp::parse(s)
            .map_err(|e| anyhow::anyhow!("{s:?} is not an RFC 3339 time: {e}"))
    };
    let since = since.map(parse).transpose()?;
    let until = until.map(parse).transpose()?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if matches!(format, ExportFormat::Csv) {
        writeln!(out, "{}", CSV_COLUMNS.join(","))?;
    }
    // Progress on a terminal only (stderr; stdout carries the records),
    // by index through the whole log.
    let bar = if std::io::stderr().is_terminal() {
        let total = store.record_count().await.unwrap_or(0);
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} records ({per_sec}, {eta} left)",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut after = None;
    loop {
        let filter = consent_db::RecordFilter {
            since,
            until,
            after_index: after,
            limit: Some(1000),
            ..base.clone()
        };
        let page = store
            .records(&filter)
            .await
            .context("cannot read records")?;
        let Some(last) = page.last() else { break };
        after = Some(last.index);
        bar.set_position(last.index + 1);
        for record in &page {
            match format {
                ExportFormat::Jsonl => writeln!(out, "{}", serde_json::to_string(record)?)?,
                ExportFormat::Csv => writeln!(out, "{}", csv_row(record)?)?,
            }
        }
    }
    out.flush()?;
    bar.finish_and_clear();
    Ok(())
}

/// The export's filters as a store filter (checked as the API checks them).
fn export_filter(
    config: &Config,
    wanted: &ExportFilter,
) -> anyhow::Result<consent_db::RecordFilter> {
    let mut filter = consent_db::RecordFilter::default();
    if let Some(c) = &wanted.consumer {
        filter.consumer = Some(
            policy::OrgNumber::parse_iso6523(c)
                .context("--consumer must be 0192:{orgnr}")?
                .iso6523(),
        );
    }
    if let Some(d) = &wanted.dataset {
        let reference: policy::DatasetRef = d
            .parse()
            .map_err(|_| anyhow::anyhow!("--dataset must be provider/dataset"))?;
        filter.provider = Some(reference.provider.clone());
        filter.dataset = Some(reference.to_string());
    }
    if let Some(d) = &wanted.decision {
        filter.decision = Some(
            d.parse()
                .map_err(|_| anyhow::anyhow!("--decision must be allow or deny"))?,
        );
    }
    if let Some(k) = &wanted.kind {
        filter.kind = Some(
            k.parse()
                .map_err(|_| anyhow::anyhow!("--kind must be decision, outcome or audit_read"))?,
        );
    }
    if let Some(s) = &wanted.subject {
        let person = policy::PersonNumber::parse(s, config.allow_synthetic_ids)
            .map_err(|_| anyhow::anyhow!("--subject is not a person number"))?;
        let secret = config
            .keys
            .pseudonym_key
            .read_bytes()
            .map_err(|e| anyhow::anyhow!("keys: {e}"))?;
        let pseudonym =
            consent_db::Pseudonymiser::new(&secret).map_err(|e| anyhow::anyhow!("keys: {e}"))?;
        filter.subject_ref = Some(pseudonym.subject_ref(&person));
    }
    Ok(filter)
}

const CSV_COLUMNS: [&str; 22] = [
    "index",
    "time",
    "transfer_id",
    "kind",
    "consumer",
    "supplier",
    "client_id",
    "provider",
    "dataset",
    "method",
    "path",
    "purpose",
    "basis",
    "legal_ref",
    "consent_id",
    "subject_ref",
    "decision",
    "code",
    "status",
    "bytes",
    "duration_ms",
    // Only counted records have it (see consent-db's `AuditRecord::count`).
    "count",
];

fn csv_row(record: &consent_db::AuditRecord) -> anyhow::Result<String> {
    let value = serde_json::to_value(record)?;
    let cells: Vec<String> = CSV_COLUMNS
        .iter()
        .map(|c| match value.get(*c) {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(s)) => csv_cell(s),
            Some(other) => csv_cell(&other.to_string()),
        })
        .collect();
    Ok(cells.join(","))
}

/// RFC 4180 quoting; a leading formula character is neutralised for spreadsheet safety.
fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}
