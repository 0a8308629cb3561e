//! `provision --write-config`: the outputs into the config file, keeping the rest of it.

use super::plan::{Error, Outputs, Result};

/// Writes the outputs into the `[aws]` table of a TOML config file and sets `bus = "aws"`,
/// keeping everything else (comments included). Atomic: a temp file renamed over the
/// original.
pub fn write_config(
    path: &std::path::Path,
    outputs: &Outputs,
    endpoint_url: Option<&str>,
) -> Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(Error::Invalid(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| Error::Invalid(format!("{} is not valid TOML: {e}", path.display())))?;
    // What provision made is SNS/SQS: every later command reading this file means them.
    doc["bus"] = toml_edit::value("aws");
    if !doc.contains_table("aws") {
        doc["aws"] = toml_edit::table();
    }
    let aws = &mut doc["aws"];
    aws["region"] = toml_edit::value(outputs.region.clone());
    if let Some(endpoint) = endpoint_url {
        aws["endpoint_url"] = toml_edit::value(endpoint);
    }
    for (key, value) in [
        ("topic_arn", &outputs.topic_arn),
        ("queue_url", &outputs.queue_url),
        ("dlq_url", &outputs.dlq_url),
        ("sns_dlq_url", &outputs.sns_dlq_url),
    ] {
        if let Some(v) = value {
            aws[key] = toml_edit::value(v.clone());
        }
    }
    crate::output::write_atomically(path, &doc.to_string())
        .map_err(|e| Error::Invalid(format!("{e:#}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_config_keeps_other_keys_and_comments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latamctl.toml");
        std::fs::write(
            &path,
            "# mine\nbus = \"aws\"\n[aws]\nregion = \"eu-west-1\"\n[worker]\nconcurrency = 4\n",
        )
        .unwrap();
        let outputs = Outputs {
            region: "us-east-1".into(),
            topic_arn: Some("arn:aws:sns:us-east-1:1:t".into()),
            queue_url: Some("http://q".into()),
            dlq_url: Some("http://d".into()),
            sns_dlq_url: None,
        };
        write_config(&path, &outputs, Some("http://127.0.0.1:5000")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("# mine") && text.contains("concurrency = 4"),
            "{text}"
        );
        let value: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(value["aws"]["region"].as_str(), Some("us-east-1"));
        assert_eq!(
            value["aws"]["topic_arn"].as_str(),
            Some("arn:aws:sns:us-east-1:1:t")
        );
        assert_eq!(value["aws"]["dlq_url"].as_str(), Some("http://d"));
        assert_eq!(
            value["aws"]["endpoint_url"].as_str(),
            Some("http://127.0.0.1:5000")
        );
    }
}
