//! A fleet file: many similar pipelines checked from one terminal (the seed's "50 systems"),
//! one `[[system]]` entry per pipeline.
//!
//! ```toml
//! [[system]]
//! name = "payments"
//! config = "systems/payments.toml"   # relative to this file
//! api = "https://payments.internal"   # optional: overrides the config's API address
//! environment = "prod"                # optional: overrides the config's environment
//! labels = { team = "core" }          # optional, carried into reports
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::config::{self, Config, Overrides};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read fleet file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("fleet file {path} is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    system: Vec<System>,
}

/// One pipeline of the fleet.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct System {
    pub name: String,
    /// Its `latamctl.toml`, relative to the fleet file.
    pub config: PathBuf,
    /// Base URL of its API, instead of the config's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
    /// Its environment, instead of the config's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// Reads `path`. Unknown keys and duplicate names are errors naming the file; a system whose
/// config file is missing is not (it is reported in its own row).
pub fn load(path: &Path) -> Result<Vec<System>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    let invalid = |message: String| Error::Invalid {
        path: path.to_owned(),
        message,
    };
    let file: File = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    if file.system.is_empty() {
        return Err(invalid(
            "it lists no [[system]]; add one per pipeline (name, config)".into(),
        ));
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut names = BTreeSet::new();
    let mut systems = Vec::with_capacity(file.system.len());
    for mut system in file.system {
        if system.name.trim().is_empty() {
            return Err(invalid("a [[system]] has an empty name".into()));
        }
        if !names.insert(system.name.clone()) {
            return Err(invalid(format!(
                "two systems are named {:?}; names must be unique",
                system.name
            )));
        }
        if system.config.is_relative() {
            system.config = base.join(&system.config);
        }
        systems.push(system);
    }
    Ok(systems)
}

impl System {
    /// This system's configuration as a fleet command runs it: its own file with the fleet
    /// entry's overrides and the command's `overrides`. The shell's `LATAMCTL_*` and
    /// `DATABASE_URL` are not read: they would apply to every system of the fleet.
    pub fn config(&self, overrides: &Overrides) -> Result<Config, String> {
        let mut o = overrides.clone();
        o.set_opt("environment", self.environment.clone());
        config::load_with_env(Some(&self.config), &o, |_| None)
            .map(|(config, _)| config)
            .map_err(|e| e.to_string())
    }

    /// Base URL of its API: the fleet entry's `api`, else the config's `api.listen` (a
    /// wildcard address becomes loopback).
    pub fn api_url(&self, config: &Config) -> String {
        match &self.api {
            Some(api) => api.trim_end_matches('/').to_owned(),
            None => format!("http://{}", connectable(&config.api.listen)),
        }
    }
}

/// `0.0.0.0:8080` is where serve listens, not where to connect.
pub fn connectable(listen: &str) -> String {
    match listen.rsplit_once(':') {
        Some(("0.0.0.0" | "[::]" | "", port)) => format!("127.0.0.1:{port}"),
        _ => listen.to_owned(),
    }
}

/// Runs `f` for every system, at most `concurrency` at once, with a progress bar on stderr
/// (`{verb} 3/50 systems`, drawn only when stderr is a terminal). Answers in fleet order.
pub async fn each<T, F, Fut>(systems: &[System], concurrency: usize, verb: &str, f: F) -> Vec<T>
where
    F: Fn(System) -> Fut,
    Fut: Future<Output = T>,
{
    let bar = indicatif::ProgressBar::new(systems.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{verb} {{pos}}/{{len}} systems {{wide_bar}} {{elapsed}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let out = futures::stream::iter(systems.iter().cloned())
        .map(|system| {
            let bar = bar.clone();
            let run = f(system);
            async move {
                let out = run.await;
                bar.inc(1);
                out
            }
        })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    bar.finish_and_clear();
    out
}

/// What a fleet command's exit status says: every row at its best, some row failed its
/// check, or some row could not be checked at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Success,
    Failure,
    Error,
}

/// The state of one row of a fleet command, ordered best to worst (`Ord`): it sorts the
/// rows, counts the summary and gives the exit status, the same way on every command.
pub trait RowState: Copy + Ord + 'static {
    /// The states the summary counts, in the order it lists them.
    const SUMMARY: &'static [Self];
    /// The name the summary counts it under.
    fn name(self) -> &'static str;
    /// The exit status of a fleet whose worst row is in this state.
    fn verdict(self) -> Verdict;
}

/// The result of a fleet command: the summary, then the rows worst first.
#[derive(Debug, Serialize)]
pub struct Report<R> {
    pub summary: String,
    pub systems: Vec<R>,
}

/// Sorts `rows` worst first (then by system name) and counts them; also answers the
/// verdict of the worst row (success for no rows).
pub fn report<R, S: RowState>(
    mut rows: Vec<R>,
    state: impl Fn(&R) -> S,
    name: impl Fn(&R) -> &str,
) -> (Report<R>, Verdict) {
    rows.sort_by(|a, b| state(b).cmp(&state(a)).then_with(|| name(a).cmp(name(b))));
    let verdict = rows
        .first()
        .map_or(Verdict::Success, |r| state(r).verdict());
    let summary = summary(rows.iter().map(&state));
    (
        Report {
            summary,
            systems: rows,
        },
        verdict,
    )
}

/// `12 systems: 9 ok, 1 warn, 2 fail`: every state of [`RowState::SUMMARY`] counted.
pub fn summary<S: RowState>(states: impl IntoIterator<Item = S>) -> String {
    let names: Vec<&str> = states.into_iter().map(S::name).collect();
    let counts: Vec<String> = S::SUMMARY
        .iter()
        .map(|s| {
            let n = s.name();
            format!("{} {n}", names.iter().filter(|x| **x == n).count())
        })
        .collect();
    format!("{} systems: {}", names.len(), counts.join(", "))
}

/// The `--fleet` flags, the same on every command that takes a fleet file.
#[derive(Debug, Clone, clap::Args, Default)]
pub struct FleetArgs {
    /// Run on every system of a fleet file (`[[system]]` entries: name, config, api,
    /// environment, labels) instead of one config: one row per system, worst first.
    #[arg(long, value_name = "FILE")]
    pub fleet: Option<PathBuf>,
    /// With --fleet: systems handled at once.
    #[arg(long, default_value_t = 8, value_name = "N", requires = "fleet")]
    pub fleet_concurrency: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_and_duplicates_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleet.toml");
        std::fs::write(
            &path,
            "[[system]]\nname = \"a\"\nconfig = \"a.toml\"\nteam = \"x\"\n",
        )
        .unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("fleet.toml") && e.contains("team"), "{e}");

        std::fs::write(
            &path,
            "[[system]]\nname = \"a\"\nconfig = \"a.toml\"\n[[system]]\nname = \"a\"\nconfig = \"b.toml\"\n",
        )
        .unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("unique"), "{e}");

        std::fs::write(
            &path,
            "[[system]]\nname = \"a\"\nconfig = \"a.toml\"\nlabels = { team = \"core\" }\n",
        )
        .unwrap();
        let systems = load(&path).unwrap();
        assert_eq!(systems[0].config, dir.path().join("a.toml"));
        assert_eq!(systems[0].labels["team"], "core");
    }

    #[test]
    fn the_summary_counts_every_state_named() {
        use Light::*;
        assert_eq!(
            summary([Ok, Fail, Ok, Warn]),
            "4 systems: 2 ok, 1 warn, 1 fail"
        );
        assert_eq!(connectable("0.0.0.0:8080"), "127.0.0.1:8080");
        assert_eq!(connectable("10.0.0.1:80"), "10.0.0.1:80");
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum Light {
        Ok,
        Warn,
        Fail,
    }

    impl RowState for Light {
        const SUMMARY: &'static [Self] = &[Light::Ok, Light::Warn, Light::Fail];
        fn name(self) -> &'static str {
            match self {
                Light::Ok => "ok",
                Light::Warn => "warn",
                Light::Fail => "fail",
            }
        }
        fn verdict(self) -> Verdict {
            match self {
                Light::Ok => Verdict::Success,
                Light::Warn => Verdict::Failure,
                Light::Fail => Verdict::Error,
            }
        }
    }

    #[test]
    fn a_report_is_worst_first_and_gives_its_worst_rows_verdict() {
        use Light::*;
        let rows = vec![("b", Ok), ("a", Fail), ("c", Warn), ("d", Fail)];
        let (report, verdict) = report(rows, |r| r.1, |r| r.0);
        assert_eq!(
            report.systems,
            [("a", Fail), ("d", Fail), ("c", Warn), ("b", Ok)]
        );
        assert_eq!(verdict, Verdict::Error);
        assert_eq!(report.summary, "4 systems: 1 ok, 1 warn, 2 fail");
        let (_, verdict) = super::report(vec![("x", Ok)], |r| r.1, |r| r.0);
        assert_eq!(verdict, Verdict::Success);
        let (_, verdict) = super::report(Vec::<(&str, Light)>::new(), |r| r.1, |r| r.0);
        assert_eq!(verdict, Verdict::Success);
    }

    #[test]
    fn a_system_reads_its_own_file_not_the_shell() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.toml");
        std::fs::write(&path, "name = \"a\"\n[api]\nlisten = \"0.0.0.0:9123\"\n").unwrap();
        let system = System {
            name: "a".into(),
            config: path,
            api: None,
            environment: Some("staging".into()),
            labels: BTreeMap::new(),
        };
        let config = system.config(&Overrides::default()).unwrap();
        assert_eq!(config.environment, "staging");
        assert_eq!(system.api_url(&config), "http://127.0.0.1:9123");
        let missing = System {
            config: dir.path().join("nope.toml"),
            ..system
        };
        let e = missing.config(&Overrides::default()).unwrap_err();
        assert!(e.contains("nope.toml"), "{e}");
    }

    #[test]
    fn the_example_fleet_loads_and_names_existing_configs() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fleet.toml");
        let systems = load(&path).unwrap();
        assert!(systems.len() >= 2);
        for s in &systems {
            assert!(s.config.exists(), "{} names {}", s.name, s.config.display());
        }
    }
}
