//! A parser of the Prometheus text exposition format (version 0.0.4), enough to read the
//! samples of a `/metrics` page: `name{label="value",...} value [timestamp]`.

use std::collections::BTreeMap;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A line that is not a sample or a comment.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {message}: `{text}`")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
    pub text: String,
}

/// Every sample of a page; comments (`# HELP`, `# TYPE`) and blank lines are skipped.
pub fn parse(page: &str) -> Result<Vec<Sample>, ParseError> {
    let mut samples = Vec::new();
    for (i, raw) in page.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fail = |message: &str| ParseError {
            line: i + 1,
            message: message.to_owned(),
            text: raw.to_owned(),
        };
        let name_end = line
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(line.len());
        let name = &line[..name_end];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(fail("expected a metric name"));
        }
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(after) = rest.strip_prefix('{') {
            rest = parse_labels(after, &mut labels).map_err(|m| fail(&m))?;
        }
        let mut fields = rest.split_whitespace();
        let value = fields
            .next()
            .ok_or_else(|| fail("expected a value"))
            .and_then(|v| parse_value(v).ok_or_else(|| fail("the value is not a number")))?;
        if let Some(ts) = fields.next()
            && ts.parse::<i64>().is_err()
        {
            return Err(fail("the timestamp is not an integer"));
        }
        if fields.next().is_some() {
            return Err(fail("unexpected text after the value"));
        }
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    Ok(samples)
}

/// Parses `a="x",b="y"}` (after the `{`); returns the text after the `}`.
fn parse_labels<'a>(
    mut s: &'a str,
    labels: &mut BTreeMap<String, String>,
) -> Result<&'a str, String> {
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix('}') {
            return Ok(rest);
        }
        let name_end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or("unterminated label set")?;
        let name = &s[..name_end];
        if name.is_empty() {
            return Err("expected a label name".into());
        }
        s = s[name_end..].trim_start();
        s = s
            .strip_prefix('=')
            .ok_or("expected `=` after a label name")?;
        s = s.trim_start();
        s = s.strip_prefix('"').ok_or("expected a quoted label value")?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err("unterminated label value".into()),
                },
                Some((_, c)) => value.push(c),
            }
        };
        labels.insert(name.to_owned(), value);
        s = s[end + 1..].trim_start();
        if let Some(rest) = s.strip_prefix(',') {
            s = rest;
        } else if !s.starts_with('}') {
            return Err("expected `,` or `}` after a label".into());
        }
    }
}

fn parse_value(v: &str) -> Option<f64> {
    match v {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        other => other.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_latamctl_serves() {
        let page = r#"# HELP http_requests_total HTTP requests answered.
# TYPE http_requests_total counter
http_requests_total{route="/data/{transaction_id}",method="GET",status="404"} 3
http_requests_total{route="/ingresar-datos",method="POST",status="200"} 1027

# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{route="/x",method="GET",le="0.2"} 7
http_request_duration_seconds_bucket{route="/x",method="GET",le="+Inf"} 9
http_request_duration_seconds_sum{route="/x",method="GET"} 1.5e-1
latamctl_ready 1
weird{a="quote \" backslash \\ newline \n, comma } brace",} NaN 1700000000000
"#;
        let s = parse(page).unwrap();
        assert_eq!(s.len(), 7);
        assert_eq!(s[0].name, crate::metric::HTTP_REQUESTS_TOTAL);
        assert_eq!(s[0].labels["route"], "/data/{transaction_id}");
        assert_eq!(s[1].value, 1027.0);
        assert_eq!(s[3].labels["le"], "+Inf");
        assert_eq!(s[4].value, 0.15);
        assert!(s[5].labels.is_empty());
        assert_eq!(
            s[6].labels["a"],
            "quote \" backslash \\ newline \n, comma } brace"
        );
        assert!(s[6].value.is_nan());
    }

    #[test]
    fn malformed_lines_say_where() {
        for (page, needle) in [
            ("ok 1\nbad{a=\"x\" 1", "line 2"),
            ("x{a=\"1\"} abc", "not a number"),
            ("x{a=1} 1", "quoted label value"),
            ("x 1 2 3", "unexpected text"),
            ("x", "expected a value"),
            ("{a=\"b\"} 1", "metric name"),
        ] {
            let e = parse(page).unwrap_err().to_string();
            assert!(e.contains(needle), "{page}: {e}");
        }
    }
}
