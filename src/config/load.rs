//! The layers and how they merge: defaults < file < environment < flags, then the secrets
//! read from their files and what is inferred (`store` from a configured database).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::{Config, DEFAULT_CONFIG_FILE, ENV_PREFIX, Error, Result};

/// Values set on the command line, as `(dotted.key, value)` pairs; the highest layer.
#[derive(Debug, Default, Clone)]
pub struct Overrides(Vec<(&'static str, Value)>);

impl Overrides {
    pub fn set(&mut self, key: &'static str, value: impl Into<Value>) -> &mut Self {
        self.0.push((key, value.into()));
        self
    }

    /// Sets `key` only when the flag was given.
    pub fn set_opt<T: Into<Value>>(&mut self, key: &'static str, value: Option<T>) -> &mut Self {
        if let Some(v) = value {
            self.set(key, v);
        }
        self
    }

    fn to_value(&self) -> Value {
        let mut root = Value::Object(Default::default());
        for (key, value) in &self.0 {
            let path: Vec<&str> = key.split('.').collect();
            insert_path(&mut root, &path, value.clone());
        }
        root
    }
}

/// Where the effective configuration came from, for `config show` and error messages.
#[derive(Debug, Clone, Serialize)]
pub struct Sources {
    pub file: Option<PathBuf>,
    pub env: Vec<String>,
    /// Where each secret came from (`file /run/secrets/token`, `env LATAMCTL_API_TOKEN`,
    /// `flag`, `config file`, `unset`), never its value.
    pub secrets: BTreeMap<String, String>,
    /// Settings no layer gave that were derived from others, each with the reason
    /// (`store = postgres: ...`), logged at start and shown by `config show`.
    pub inferred: Vec<String>,
}

/// Secrets that may be read from a file (a mounted Kubernetes Secret) instead of being
/// given as a value: the value's key and the file's key.
pub const SECRET_FILES: [(&str, &str); 3] = [
    ("api.token", "api.token_file"),
    ("database.url", "database.url_file"),
    ("database.password", "database.password_file"),
];

/// Reads every `*_file` secret of `merged` into its value, and says where each secret came
/// from. A value and its file both set is an error (which one would win is a guess).
pub(super) fn resolve_secret_files(
    merged: &mut Value,
    file_layer: Option<&Value>,
    env_names: &[String],
    overrides: &Overrides,
) -> Result<BTreeMap<String, String>> {
    let invalid = |message: String| Error::Invalid {
        origin: String::new(),
        message,
    };
    let pointer = |key: &str| format!("/{}", key.replace('.', "/"));
    let mut sources = BTreeMap::new();
    for (key, file_key) in SECRET_FILES {
        let file = merged
            .pointer(&pointer(file_key))
            .and_then(Value::as_str)
            .map(PathBuf::from);
        let given = merged.pointer(&pointer(key)).is_some_and(|v| !v.is_null());
        let source = match file {
            Some(path) => {
                if given {
                    return Err(invalid(format!(
                        "both `{key}` and `{file_key}` are set: keep one (the file, for a mounted secret)"
                    )));
                }
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    invalid(format!(
                        "cannot read `{file_key}` {}: {e}; mount the secret there or fix the path",
                        path.display()
                    ))
                })?;
                let secret = text.trim();
                if secret.is_empty() {
                    return Err(invalid(format!(
                        "`{file_key}` {} is empty: it must hold the {key} value",
                        path.display()
                    )));
                }
                if let Some(slot) = merged.pointer_mut(&pointer(key)) {
                    *slot = Value::String(secret.to_owned());
                }
                format!("file {}", path.display())
            }
            None if !given => "unset".to_owned(),
            None if overrides.0.iter().any(|(k, _)| *k == key) => "flag".to_owned(),
            None => {
                let path: Vec<String> = key.split('.').map(str::to_owned).collect();
                let name = env_name(&path);
                let conventional = (key == "database.url").then_some("DATABASE_URL");
                match env_names
                    .iter()
                    .find(|n| **n == name || Some(n.as_str()) == conventional)
                {
                    Some(n) => format!("env {n}"),
                    None if file_layer.and_then(|f| f.pointer(&pointer(key))).is_some() => {
                        "config file".to_owned()
                    }
                    None => "default".to_owned(),
                }
            }
        };
        sources.insert(key.to_owned(), source);
    }
    Ok(sources)
}

/// Loads the configuration: defaults < file < env < overrides.
///
/// `file` is the `--config` flag (or `LATAMCTL_CONFIG`); when absent, `./latamctl.toml` is read
/// if it exists.
pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<(Config, Sources)> {
    load_with_env(file, overrides, |name| std::env::var(name).ok())
}

/// [`load`] with an explicit environment, so tests do not touch the process environment.
pub fn load_with_env(
    file: Option<&Path>,
    overrides: &Overrides,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(Config, Sources)> {
    let defaults = serde_json::to_value(Config::default()).expect("config serializes");
    let mut merged = defaults.clone();
    let mut file_layer: Option<Value> = None;

    let file_path = match file {
        Some(p) => Some(p.to_path_buf()),
        None => {
            let p = PathBuf::from(DEFAULT_CONFIG_FILE);
            p.exists().then_some(p)
        }
    };
    if let Some(path) = &file_path {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| Error::Parse {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let value = serde_json::to_value(table).map_err(|e| Error::Parse {
            path: path.clone(),
            message: e.to_string(),
        })?;
        // Validate the file alone first, so an unknown key is reported against the file.
        serde_json::from_value::<Config>(value.clone()).map_err(|e| Error::Invalid {
            origin: format!(" in {}", path.display()),
            message: e.to_string(),
        })?;
        merge(&mut merged, value.clone());
        file_layer = Some(value);
    }

    let (env_value, env_names) = env_layer(&defaults, &env)?;
    merge(&mut merged, env_value);
    merge(&mut merged, overrides.to_value());
    let secrets = resolve_secret_files(&mut merged, file_layer.as_ref(), &env_names, overrides)?;
    let inferred = infer_store(&mut merged, file_layer.as_ref(), &env_names, overrides)
        .into_iter()
        .collect();

    let config: Config = serde_json::from_value(merged).map_err(|e| Error::Invalid {
        origin: String::new(),
        message: e.to_string(),
    })?;
    config.validate()?;
    Ok((
        config,
        Sources {
            file: file_path,
            env: env_names,
            secrets,
            inferred,
        },
    ))
}

/// A PostgreSQL database configured (`database.url`, `url_file` or `host`) while no layer set
/// `store` means PostgreSQL: the default `sqlite` would silently put the records in a local
/// file next to a database the operator named. An explicit `store = "sqlite"` keeps SQLite.
pub(super) fn infer_store(
    merged: &mut Value,
    file_layer: Option<&Value>,
    env_names: &[String],
    overrides: &Overrides,
) -> Option<String> {
    let store_env = env_name(&["store".to_owned()]);
    let store_given = file_layer.is_some_and(|f| f.get("store").is_some())
        || env_names.contains(&store_env)
        || overrides.0.iter().any(|(k, _)| *k == "store");
    if store_given {
        return None;
    }
    let database = merged.get("database")?;
    let named = ["url", "url_file", "host"]
        .into_iter()
        .find(|key| database.get(*key).is_some_and(|v| !v.is_null()))?;
    merged["store"] = Value::String("postgres".to_owned());
    Some(format!(
        "store = postgres: database.{named} is set and store is not (set store = \"sqlite\" or --store sqlite to keep SQLite)"
    ))
}

/// Builds the environment layer: one variable per leaf key of the defaults.
pub(super) fn env_layer(
    defaults: &Value,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(Value, Vec<String>)> {
    let mut leaves = Vec::new();
    collect_leaves(defaults, &mut Vec::new(), &mut leaves);
    let mut layer = Value::Object(Default::default());
    let mut names = Vec::new();
    for (path, default) in leaves {
        let name = env_name(&path);
        // An empty variable counts as unset (`FOO= latamctl ...` clears nothing by accident).
        let get = |n: &str| env(n).filter(|v| !v.is_empty());
        let raw = match get(&name) {
            Some(v) => {
                names.push(name.clone());
                Some(v)
            }
            // The conventional variable, below LATAMCTL_DATABASE_URL.
            None if name == "LATAMCTL_DATABASE_URL" => {
                get("DATABASE_URL").inspect(|_| names.push("DATABASE_URL".to_owned()))
            }
            None if name == "LATAMCTL_DATABASE_URL_FILE" => {
                get("DATABASE_URL_FILE").inspect(|_| names.push("DATABASE_URL_FILE".to_owned()))
            }
            None => None,
        };
        let Some(raw) = raw else { continue };
        let value = parse_env_value(&name, &raw, &default)?;
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        insert_path(&mut layer, &path, value);
    }
    Ok((layer, names))
}

/// `["aws", "queue_url"]` → `LATAMCTL_AWS_QUEUE_URL`.
pub fn env_name(path: &[String]) -> String {
    format!("{ENV_PREFIX}{}", path.join("_").to_uppercase())
}

pub(super) fn parse_env_value(name: &str, raw: &str, default: &Value) -> Result<Value> {
    let bad = |expected: &str| Error::Env {
        name: name.to_owned(),
        value: raw.to_owned(),
        expected: expected.to_owned(),
    };
    Ok(match default {
        Value::Bool(_) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Value::Bool(true),
            "false" | "0" | "no" | "off" => Value::Bool(false),
            _ => return Err(bad("true or false")),
        },
        Value::Number(n) if n.is_u64() => raw
            .trim()
            .parse::<u64>()
            .map(Value::from)
            .map_err(|_| bad("a non-negative integer"))?,
        Value::Number(_) => raw
            .trim()
            .parse::<f64>()
            .map(Value::from)
            .map_err(|_| bad("a number"))?,
        Value::Array(_) => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
        _ => Value::String(raw.to_owned()),
    })
}

pub(super) fn collect_leaves(
    value: &Value,
    path: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, Value)>,
) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                path.push(k.clone());
                collect_leaves(v, path, out);
                path.pop();
            }
        }
        leaf => out.push((path.clone(), leaf.clone())),
    }
}

pub(super) fn insert_path(root: &mut Value, path: &[&str], value: Value) {
    let mut cur = root;
    for (i, key) in path.iter().enumerate() {
        if !cur.is_object() {
            *cur = Value::Object(Default::default());
        }
        let map = cur.as_object_mut().expect("object");
        if i == path.len() - 1 {
            map.insert((*key).to_owned(), value);
            return;
        }
        cur = map
            .entry((*key).to_owned())
            .or_insert_with(|| Value::Object(Default::default()));
    }
}

/// Deep merge: objects merge key by key, anything else is replaced by `top`.
/// Deep merge of JSON objects: `top` wins, objects merge key by key (config layers, Helm
/// values).
pub fn merge(base: &mut Value, top: Value) {
    match (base, top) {
        (Value::Object(b), Value::Object(t)) => {
            for (k, v) in t {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, t) => *b = t,
    }
}
