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
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
    fn the_example_fleet_loads_and_names_existing_configs() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fleet.toml");
        let systems = load(&path).unwrap();
        assert!(systems.len() >= 2);
        for s in &systems {
            assert!(s.config.exists(), "{} names {}", s.name, s.config.display());
        }
    }
}
