//! The rungs of the ablation ladder (bench/README.md): how much of the
//! pipeline runs. Only benchmark builds (feature `bench`) read `[bench]
//! stage`; a default build always runs the whole pipeline, and `Stage::of`
//! is then a constant the compiler folds away.
//!
//! ```text
//! passthrough  limits → path → forward              (a plain reverse proxy)
//! token        + authenticate, the dataset
//! policy       + facts, policy::decide, signed Bru-Assertion
//! full         + decision and outcome records (the whole pipeline)
//! ```
//! The later rungs (records without fsync, durable records, the Merkle tree)
//! are the full pipeline with `[store] audit` set to `nosync`, `no-tree` or
//! `durable`. Below `full` nothing is recorded: never a production mode.

/// How much of the pipeline runs (`[bench] stage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Passthrough,
    Token,
    Policy,
    /// The whole pipeline.
    Full,
}

impl Stage {
    #[cfg_attr(not(feature = "bench"), allow(dead_code))]
    pub fn parse(s: &str) -> Option<Stage> {
        Some(match s {
            "passthrough" => Stage::Passthrough,
            "token" => Stage::Token,
            "policy" => Stage::Policy,
            "full" => Stage::Full,
            _ => return None,
        })
    }

    /// The rung this Bru runs: `[bench] stage` in a benchmark build, else
    /// the whole pipeline.
    #[inline]
    pub fn of(config: &crate::config::Config) -> Stage {
        #[cfg(feature = "bench")]
        return config.bench_stage;
        #[cfg(not(feature = "bench"))]
        {
            let _ = config;
            Stage::Full
        }
    }

    /// Whether the log's follower `name` ("indexer", "snoop", "notify")
    /// runs: always, but as `[bench] followers` lists in a benchmark build.
    pub fn follows_log(config: &crate::config::Config, name: &str) -> bool {
        #[cfg(feature = "bench")]
        return config.bench_followers.iter().any(|f| f == name);
        #[cfg(not(feature = "bench"))]
        {
            let _ = (config, name);
            true
        }
    }
}
