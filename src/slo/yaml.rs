//! A small YAML writer for generated files people read and diff: a comment header, PromQL as
//! literal blocks (`expr: |`), every other string double-quoted unless it is plainly safe.
//!
//! serde serializers cannot emit comments, and block scalars keep multi-line expressions
//! readable in reviews; the output is checked by parsing it back and by `promtool`.

use std::fmt::Write as _;

/// A YAML node.
#[derive(Debug, Clone)]
pub enum Node {
    Map(Vec<(String, Node)>),
    Seq(Vec<Node>),
    /// A string, quoted when needed.
    Str(String),
    /// A literal block (`|`), for multi-line text.
    Block(String),
}

impl Node {
    pub fn map() -> Self {
        Node::Map(Vec::new())
    }

    /// Adds `key: value` to a map (ignored on other nodes).
    pub fn with(mut self, key: &str, value: Node) -> Self {
        if let Node::Map(entries) = &mut self {
            entries.push((key.to_owned(), value));
        }
        self
    }

    pub fn str(s: impl Into<String>) -> Self {
        Node::Str(s.into())
    }

    /// A literal block, even for one line: PromQL is written verbatim, never escaped, so
    /// tools that edit the text (the Helm chart rewrites `system!=""`) see it as written.
    pub fn block(s: impl Into<String>) -> Self {
        Node::Block(s.into())
    }

    fn is_scalar(&self) -> bool {
        matches!(self, Node::Str(_) | Node::Block(_))
    }
}

/// Renders a document: `header` lines become `# ` comments.
pub fn document(header: &str, root: &Node) -> String {
    let mut out = String::new();
    for line in header.lines() {
        if line.is_empty() {
            out.push_str("#\n");
        } else {
            let _ = writeln!(out, "# {line}");
        }
    }
    write_node(&mut out, root, 0);
    out
}

fn write_node(out: &mut String, node: &Node, indent: usize) {
    let pad = " ".repeat(indent);
    match node {
        Node::Map(entries) => {
            for (k, v) in entries {
                write_entry(out, &pad, k, v, indent);
            }
        }
        Node::Seq(items) => {
            for item in items {
                match item {
                    Node::Map(entries) if !entries.is_empty() => {
                        // First entry on the dash line, the rest aligned under it.
                        let inner = indent + 2;
                        let inner_pad = " ".repeat(inner);
                        for (i, (k, v)) in entries.iter().enumerate() {
                            let lead = if i == 0 {
                                format!("{pad}- ")
                            } else {
                                inner_pad.clone()
                            };
                            write_entry(out, &lead, k, v, inner);
                        }
                    }
                    other if other.is_scalar() => {
                        let _ = write!(out, "{pad}- ");
                        write_scalar(out, other, indent + 2);
                    }
                    other => {
                        let _ = writeln!(out, "{pad}-");
                        write_node(out, other, indent + 2);
                    }
                }
            }
        }
        scalar => {
            let _ = write!(out, "{pad}");
            write_scalar(out, scalar, indent);
        }
    }
}

fn write_entry(out: &mut String, lead: &str, key: &str, value: &Node, indent: usize) {
    match value {
        Node::Map(entries) if entries.is_empty() => {
            let _ = writeln!(out, "{lead}{key}: {{}}");
        }
        Node::Seq(items) if items.is_empty() => {
            let _ = writeln!(out, "{lead}{key}: []");
        }
        Node::Map(_) => {
            let _ = writeln!(out, "{lead}{key}:");
            write_node(out, value, indent + 2);
        }
        Node::Seq(_) => {
            let _ = writeln!(out, "{lead}{key}:");
            write_node(out, value, indent + 2);
        }
        scalar => {
            let _ = write!(out, "{lead}{key}: ");
            write_scalar(out, scalar, indent + 2);
        }
    }
}

fn write_scalar(out: &mut String, node: &Node, indent: usize) {
    match node {
        Node::Block(text) => {
            let pad = " ".repeat(indent);
            out.push_str("|\n");
            for line in text.trim_end_matches('\n').lines() {
                if line.is_empty() {
                    out.push('\n');
                } else {
                    let _ = writeln!(out, "{pad}{line}");
                }
            }
        }
        Node::Str(s) => {
            let _ = writeln!(out, "{}", quote(s));
        }
        Node::Map(_) | Node::Seq(_) => {}
    }
}

/// `s` as a YAML scalar: plain when unambiguous, else double-quoted (JSON escapes are valid
/// YAML escapes).
pub fn quote(s: &str) -> String {
    let plain_chars = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':'));
    let reserved = matches!(
        s.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "~" | "y" | "n"
    );
    let numeric = s.parse::<f64>().is_ok()
        || s.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == '-')
            && s.chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | ':'));
    if !s.is_empty() && plain_chars && !reserved && !numeric && !s.ends_with(':') {
        s.to_owned()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_maps_sequences_and_blocks_that_parse_back() {
        let doc = Node::map()
            .with(
                "groups",
                Node::Seq(vec![Node::map().with("name", Node::str("g1")).with(
                    "rules",
                    Node::Seq(vec![
                        Node::map()
                            .with("record", Node::str("a:b:c"))
                            .with("expr", Node::block("sum(x)\n/\nsum(y)"))
                            .with(
                                "labels",
                                Node::map().with("slo", Node::str("true")),
                            ),
                    ]),
                )]),
            )
            .with("empty", Node::map())
            .with(
                "list",
                Node::Seq(vec![Node::str("5m"), Node::str("{{ $value }}: \"x\"")]),
            );
        let text = document("header\n\nline", &doc);
        assert!(text.starts_with("# header\n#\n# line\n"), "{text}");
        assert!(
            text.contains("- record: a:b:c\n        expr: |\n          sum(x)\n"),
            "{text}"
        );
        assert!(text.contains("slo: \"true\""), "{text}");
        let back: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(back["groups"][0]["rules"][0]["expr"], "sum(x)\n/\nsum(y)\n");
        assert_eq!(back["groups"][0]["rules"][0]["labels"]["slo"], "true");
        assert_eq!(back["list"][1], "{{ $value }}: \"x\"");
        assert_eq!(back["list"][0], "5m");
        assert!(back["empty"].as_object().unwrap().is_empty());
    }

    #[test]
    fn quotes_what_yaml_would_misread() {
        assert_eq!(quote("5m"), "5m");
        assert_eq!(quote("0.95"), "\"0.95\"");
        assert_eq!(quote("no"), "\"no\"");
        assert_eq!(quote("12:30"), "\"12:30\"");
        assert_eq!(quote("a b"), "\"a b\"");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(
            quote("latamctl_slo:sli_error:ratio_rate5m"),
            "latamctl_slo:sli_error:ratio_rate5m"
        );
    }
}
