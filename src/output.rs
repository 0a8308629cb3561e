//! Printing data: `-o table|json|yaml`. Data goes to stdout; logs and progress to stderr.

use std::io::Write;

use serde::Serialize;

/// The `-o/--output` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// Human-readable table.
    #[default]
    Table,
    /// JSON, one document.
    Json,
    /// YAML, one document.
    Yaml,
}

/// Renders `value` in `format`; `table` renders the human form.
pub fn render<T: Serialize>(
    format: OutputFormat,
    value: &T,
    table: impl FnOnce() -> String,
) -> anyhow::Result<String> {
    Ok(match format {
        OutputFormat::Table => {
            let mut s = table();
            if !s.ends_with('\n') {
                s.push('\n');
            }
            s
        }
        OutputFormat::Json => {
            let mut s = serde_json::to_string_pretty(value)?;
            s.push('\n');
            s
        }
        OutputFormat::Yaml => serde_saphyr::to_string(value)?,
    })
}

/// [`render`] to stdout.
pub fn print<T: Serialize>(
    format: OutputFormat,
    value: &T,
    table: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    let text = render(format, value, table)?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// A two-column table of `key value` rows.
pub fn key_value_table<K: AsRef<str>, V: AsRef<str>>(
    rows: impl IntoIterator<Item = (K, V)>,
) -> String {
    let mut builder = tabled::builder::Builder::default();
    builder.push_record(["KEY", "VALUE"]);
    for (k, v) in rows {
        builder.push_record([k.as_ref(), v.as_ref()]);
    }
    let mut table = builder.build();
    table.with(tabled::settings::Style::blank());
    table.to_string()
}

/// Writes `text` to a temporary file next to `path` (creating the directory), then renames
/// it over `path`: readers (and a concurrent `git diff`) never see half a file. The error
/// names the file.
pub fn write_atomically(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot replace {}", path.display())
    })
}
