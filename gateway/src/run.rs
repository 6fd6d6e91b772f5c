//! Starting and stopping a running Bru: `bru serve` and `bru demo`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use tokio::sync::watch;

use crate::app::{App, AppParts};
use crate::auth::Authenticator;
use crate::config::{Config, RuntimeMode};
use crate::keys::Keys;
use crate::metrics::Metrics;

pub struct DemoArgs {
    pub dir: PathBuf,
    pub listen: SocketAddr,
    pub ops_listen: SocketAddr,
    pub store: Option<String>,
}

pub async fn serve(config_path: &Path) -> anyhow::Result<()> {
    let (config, policy) = crate::cli::load(config_path).map_err(|e| anyhow!(e.join("\n")))?;
    if let Some(issuer) = config.issuers.iter().find(|i| i.is_demo()) {
        bail!(
            "{}:{}: issuer {} is a demo issuer; bru serve refuses demo issuers",
            config.file.display(),
            issuer.line,
            issuer.name
        );
    }
    if config.portal.as_ref().is_some_and(|p| p.oidc.is_none()) {
        bail!(
            "{}: [portal] has no issuer; bru serve logs citizens in with an OpenID provider only",
            config.file.display()
        );
    }
    let per_core = config.server.runtime == RuntimeMode::PerCore;
    let listeners =
        Listeners::bind(config.server.listen, config.server.ops_listen, per_core).await?;
    run(config, policy, listeners, None).await
}

/// Bound before the config is final: the demo writes its issuer URLs with the real port.
struct Listeners {
    public: tokio::net::TcpListener,
    ops: tokio::net::TcpListener,
}

impl Listeners {
    /// `reuse_port` for the per-core runtime, whose workers each bind the
    /// public address again.
    async fn bind(
        public: SocketAddr,
        ops: SocketAddr,
        reuse_port: bool,
    ) -> anyhow::Result<Listeners> {
        Ok(Listeners {
            public: crate::server::bind(public, "public listener", reuse_port)
                .await
                .map_err(|e| anyhow!(e))?,
            ops: crate::server::bind(ops, "ops listener", false)
                .await
                .map_err(|e| anyhow!(e))?,
        })
    }
}

pub async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    // The demo writes its own bru.toml, with the default runtime: per-core,
    // whose workers bind the public address again (SO_REUSEPORT).
    let listeners = Listeners::bind(args.listen, args.ops_listen, true).await?;
    let options = demo::DemoOptions {
        listen: listeners.public.local_addr()?,
        ops_listen: listeners.ops.local_addr()?,
        store_url: args.store.clone(),
        ..demo::DemoOptions::default()
    };
    let layout = demo::prepare(&args.dir, &options).context("cannot prepare the demo directory")?;
    {
        let (config, _) = crate::cli::load(&layout.config).map_err(|e| anyhow!(e.join("\n")))?;
        let key = crate::keys::checkpoint_public_key(&config.keys).map_err(|e| anyhow!(e))?;
        let log =
            consent_db::note::verifier_key(&consent_db::note::origin_for(&config.public_url), &key);
        crate::witnessing::start_demo_witnesses(&layout.dir, &layout.config, &log)
            .await
            .map_err(|e| anyhow!(e))?;
    }
    #[allow(unused_mut)]
    let (mut config, policy) =
        crate::cli::load(&layout.config).map_err(|e| anyhow!(e.join("\n")))?;
    // The demo rewrites its bru.toml at every start, so benchmark builds
    // also take the no-op log from the environment (bench/audit).
    #[cfg(feature = "bench")]
    if std::env::var("BRU_BENCH_AUDIT").as_deref() == Ok("noop") {
        config.store.audit_noop = true;
    }
    let issuers = demo::DemoIssuers::load(&layout).context("cannot load the demo issuers' keys")?;
    let (stop_providers, providers_stopped) = watch::channel(false);
    let providers = demo::serve_providers(&layout, wait_for(providers_stopped))
        .await
        .context("cannot start the demo providers")?;
    let demo_runtime = DemoRuntime {
        router: demo::issuers_router(issuers),
        layout,
    };
    let result = run(config, policy, listeners, Some(demo_runtime)).await;
    let _ = stop_providers.send(true);
    drop(providers);
    result
}

struct DemoRuntime {
    router: axum::Router,
    layout: demo::DemoLayout,
}

async fn wait_for(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn run(
    config: Config,
    policy: policy::Policy,
    listeners: Listeners,
    demo: Option<DemoRuntime>,
) -> anyhow::Result<()> {
    let keys = Keys::load(&config).map_err(|e| anyhow!("keys: {e}"))?;
    if consent_db::test_skew_days() != 0 {
        // Debug builds only: a test moved the clock of delayed disclosure.
        tracing::warn!(
            days = consent_db::test_skew_days(),
            var = consent_db::TEST_SKEW_VAR,
            "the citizen's views hold delayed disclosure against a moved clock (a test build)"
        );
    }
    let tls = crate::server::tls_config(&config.server.tls_cert, &config.server.tls_key)
        .map_err(|e| anyhow!(e))?;
    let store_url = config
        .store
        .url
        .read_string()
        .map_err(|e| anyhow!("store url: {e}"))?;
    let store_config = consent_db::StoreConfig {
        // Both are false only in benchmark builds (`[store] audit`).
        synchronous: config.store.audit_synchronous,
        tree: config.store.audit_tree,
        postgres_tls: config.store.tls.clone(),
        ..consent_db::StoreConfig::default()
    };
    let store = consent_db::Store::open_with(&store_url, &store_config)
        .await
        .context("the store is unreachable")?;
    store.migrate().await.context("store migrations failed")?;
    // On the per-core runtime the audit writer runs on the first worker,
    // among the calls that append: its batches gather while they run
    // (`consent_db::AuditConfig::gather_turns`).
    let core_runtimes = match config.server.runtime {
        RuntimeMode::PerCore => Some(
            crate::server::CoreRuntimes::build(
                config
                    .server
                    .workers
                    .or_else(|| std::thread::available_parallelism().ok())
                    .map_or(1, std::num::NonZeroUsize::get),
            )
            .map_err(|e| anyhow!(e))?,
        ),
        RuntimeMode::MultiThread => None,
    };
    let audit = match core_runtimes.as_ref().and_then(|r| r.first()) {
        Some(first) => consent_db::AuditLog::start_on(
            store.clone(),
            consent_db::AuditConfig::default(),
            &first,
        ),
        None => consent_db::AuditLog::start(store.clone(), consent_db::AuditConfig::default())
            .context("cannot start the audit log")?,
    };
    let auth =
        Authenticator::new(&config.issuers, config.allow_synthetic_ids).map_err(|e| anyhow!(e))?;
    let connector = connectors::Connector::new(connectors::ConnectorConfig {
        // Each per-core worker forwards over provider connections of its own.
        pool_per_thread: config.server.runtime == RuntimeMode::PerCore,
        ..connectors::ConnectorConfig::default()
    })
    .context("cannot build the provider client")?;
    let app = Arc::new(
        App::new(AppParts {
            config,
            policy,
            auth,
            keys,
            store,
            audit,
            connector,
            metrics: Metrics::new(),
        })
        .map_err(|e| anyhow!(e))?,
    );

    let portal = portal_router(&app, demo.is_some())?;

    let Listeners { public, ops } = listeners;
    let public_addr = public.local_addr()?;
    let ops_addr = ops.local_addr()?;
    // One machine-readable line on stdout, for scripts and tests.
    println!("listening public={public_addr} ops={ops_addr}");
    let (demo_router, demo_layout) = match demo {
        Some(d) => (Some(d.router), Some(d.layout)),
        None => (None, None),
    };
    if let Some(layout) = &demo_layout {
        println!(
            "{}",
            demo::walkthrough(
                &format!("https://localhost:{}", public_addr.port()),
                &format!("http://{ops_addr}"),
                &layout.dir
            )
        );
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    if app.config.store.audit_noop {
        tracing::warn!("BENCHMARK BUILD: store.audit = \"noop\", no audit records are written");
    }
    let checkpointer = tokio::spawn(crate::transparency::run_checkpointer(
        app.clone(),
        stop_rx.clone(),
    ));
    let altinn_events = tokio::spawn(crate::altinn_pep::poll_events(app.clone()));
    let witnesses = crate::witnessing::spawn(&app, &stop_rx);
    let notifications = tokio::spawn(crate::notify_delivery::run(app.clone(), stop_rx.clone()));
    let snoop = crate::snoop::spawn(&app, &stop_rx);
    let indexer = crate::indexer::spawn(&app, &stop_rx);
    let counted = tokio::spawn({
        let app = app.clone();
        let mut stop = stop_rx.clone();
        async move {
            let mut every = tokio::time::interval(crate::refusals::INTERVAL);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => app.record_counted_refusals(),
                    _ = stop.changed() => break,
                }
            }
        }
    });
    let ops_task = tokio::spawn(crate::server::serve_ops(
        ops,
        crate::routes::ops(app.clone()),
        wait_for(stop_rx.clone()),
    ));
    let router = crate::routes::public(app.clone(), demo_router, portal);
    let mut public_task = match core_runtimes {
        None => {
            let limits = crate::server::Limits::new(&app);
            tracing::info!("public listener on the multi-thread runtime");
            Public::MultiThread(tokio::spawn(crate::server::serve_public(
                public,
                tls,
                app.clone(),
                router,
                limits,
                wait_for(stop_rx),
            )))
        }
        Some(runtimes) => Public::PerCore(
            crate::server::PerCore::start(public, runtimes, tls, app.clone(), router, stop_rx)
                .map_err(|e| anyhow!(e))?,
        ),
    };

    shutdown_signal().await;
    tracing::info!("shutting down: finishing calls in flight and writing their records");
    let _ = stop_tx.send(true);
    match &mut public_task {
        Public::MultiThread(task) => {
            let _ = task.await;
        }
        Public::PerCore(workers) => workers.served().await,
    }
    altinn_events.abort();
    let _ = counted.await;
    let _ = notifications.await;
    app.drain_records().await;
    // Sign the last records too, so a clean stop leaves nothing unsigned.
    let _ = checkpointer.await;
    crate::transparency::final_checkpoint(&app).await;
    futures_util::future::join_all(witnesses).await;
    crate::witnessing::final_round(&app).await;
    let _ = snoop.await;
    let _ = indexer.await;
    let _ = ops_task.await;
    // The per-core workers' runtimes last until here: their calls' outcome
    // records are tasks on them, and so may be store connections they opened.
    if let Public::PerCore(workers) = public_task {
        workers.finish().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// The public listener as it runs: a task of the main runtime, or the
/// per-core runtime's threads.
enum Public {
    MultiThread(tokio::task::JoinHandle<()>),
    PerCore(crate::server::PerCore),
}

/// The citizen portal, when `[portal]` is configured; in the demo with its
/// person picker instead of an OpenID provider.
fn portal_router(app: &App, demo: bool) -> anyhow::Result<Option<axum::Router>> {
    let Some(config) = &app.config.portal else {
        return Ok(None);
    };
    let deps = portal::PortalDeps {
        store: app.store.clone(),
        policy: app.policy.clone(),
        pseudonyms: app.keys.pseudonym.clone(),
        public_url: app.config.public_url.clone(),
        allow_synthetic_ids: app.config.allow_synthetic_ids,
        representation: Some(app.representation.clone()),
    };
    let mut portal = portal::Portal::new(config, deps).map_err(|e| anyhow!("portal: {e}"))?;
    if demo {
        let persons = demo::world::DEMO_PERSONS
            .iter()
            .map(|p| portal::DemoPerson {
                pid: p.pid.to_owned(),
                name: p.name(),
            })
            .collect();
        // SPEC 9.4: Aisha Berg logs in as Per Hansen's guardian (health and welfare).
        let name = |pid: &str| {
            demo::world::demo_person(pid)
                .map(|p| p.name())
                .unwrap_or_default()
        };
        let (aisha, per) = ("24916214088", "15895013789");
        portal = portal
            .with_demo_login(persons)
            .with_demo_fullmakter(vec![portal::DemoFullmakt {
                holder: aisha.to_owned(),
                holder_name: name(aisha),
                owner: per.to_owned(),
                owner_name: name(per),
                roles: vec!["helse".to_owned(), "velferd".to_owned()],
            }]);
    }
    let portal = Arc::new(portal);
    // Set once, here, before any request is served.
    let _ = app.portal.set(Arc::clone(&portal));
    Ok(Some(portal.router()))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
