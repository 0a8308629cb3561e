//! What travels from the bus to the store: the record a delivery decodes into, the one
//! time format both sides write, and the record as `GET /data/{id}` returns it. Its own module so the bus and the store depend on it, not
//! on each other.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A message as the worker stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub transaction_id: Uuid,
    pub topic: String,
    pub message: String,
    pub attributes: BTreeMap<String, String>,
    pub received_at: DateTime<Utc>,
}

/// RFC 3339 with microseconds and `Z`: sorts lexically in time order.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Serializes a time exactly as chrono's own `Serialize` does (RFC 3339, as many fraction
/// digits as it needs, `Z`), but formatted once and written as one string: chrono's impl
/// goes through `collect_str`, which escapes the text one `char` at a time (callgrind: 5 %
/// of a `GET /data/{id}`'s instructions for its two times).
pub fn serialize_time<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// A time as [`format_time`] stores it (`2026-12-02T18:04:00.123456Z`), checked: how many
/// fraction digits [`serialize_time`] writes for the same instant (chrono's `AutoSi`: 6, or 3
/// on a whole millisecond, or none on a whole second). `None` when `stored` is not in that
/// shape.
pub fn served_fraction_digits(stored: &str) -> Option<usize> {
    // `0` stands for any digit; every other byte must be itself.
    const SHAPE: &[u8; 27] = b"0000-00-00T00:00:00.000000Z";
    let shaped = stored.len() == SHAPE.len()
        && stored.bytes().zip(SHAPE).all(|(c, &s)| {
            if s == b'0' {
                c.is_ascii_digit()
            } else {
                c == s
            }
        });
    if !shaped {
        return None;
    }
    let fraction = &stored[20..26];
    Some(if fraction == "000000" {
        0
    } else if fraction.ends_with("000") {
        3
    } else {
        6
    })
}

/// Appends `stored` (checked by [`served_fraction_digits`], which gave `digits`) as
/// [`serialize_time`] writes that instant, without the quotes.
pub fn write_served_time(out: &mut Vec<u8>, stored: &str, digits: usize) {
    out.extend_from_slice(&stored.as_bytes()[..19]);
    if digits > 0 {
        out.extend_from_slice(&stored.as_bytes()[19..20 + digits]);
    }
    out.push(b'Z');
}

/// A stored record, as `GET /data/{transaction_id}` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StoredRecord {
    /// The id `POST /ingresar-datos` returned (UUIDv7).
    pub transaction_id: Uuid,
    /// Topic name the message was posted to.
    pub topic: String,
    /// The message, as posted.
    pub message: String,
    /// Client attributes, as posted.
    pub attributes: BTreeMap<String, String>,
    /// When the API accepted the message.
    #[serde(serialize_with = "serialize_time")]
    pub received_at: DateTime<Utc>,
    /// When the worker stored it.
    #[serde(serialize_with = "serialize_time")]
    pub stored_at: DateTime<Utc>,
}

impl StoredRecord {
    /// The body of `GET /data/{transaction_id}` for this record.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a stored record serializes")
    }
}

/// A row as the SQLite store keeps it, in the text it was written with: the id hyphenated
/// (the key it was looked up by), the attributes the JSON object `serde_json` wrote, the
/// times [`format_time`]'s.
#[derive(Debug, Clone, Copy)]
pub struct StoredText<'a> {
    pub transaction_id: &'a str,
    pub topic: &'a str,
    pub message: &'a str,
    pub attributes: &'a str,
    pub received_at: &'a str,
    pub stored_at: &'a str,
}

/// Writes `row` as the JSON of its [`StoredRecord`] (what `serde_json::to_vec` of the
/// parsed record writes, byte for byte), or answers `None` when a column is not in the
/// shape the store writes (the caller then parses the row and reports what is wrong).
///
/// This is `GET /data/{id}`'s hot path: the key, the attributes and the times are copied
/// as stored instead of parsed into a [`StoredRecord`] and formatted again, and no column
/// becomes a `String` (callgrind: the parse, the six copies and the serialization were an
/// eighth of a GET's instructions).
pub fn write_record_json(out: &mut Vec<u8>, row: StoredText<'_>) -> Option<()> {
    if !is_string_object(row.attributes) {
        return None;
    }
    let received_digits = served_fraction_digits(row.received_at)?;
    let stored_digits = served_fraction_digits(row.stored_at)?;
    // The fixed text is 185 bytes; escapes may add more.
    out.reserve(256 + row.topic.len() + row.message.len() + row.attributes.len());
    out.extend_from_slice(b"{\"transaction_id\":\"");
    out.extend_from_slice(row.transaction_id.as_bytes());
    out.extend_from_slice(b"\",\"topic\":");
    serde_json::to_writer(&mut *out, row.topic).ok()?;
    out.extend_from_slice(b",\"message\":");
    serde_json::to_writer(&mut *out, row.message).ok()?;
    out.extend_from_slice(b",\"attributes\":");
    out.extend_from_slice(row.attributes.as_bytes());
    out.extend_from_slice(b",\"received_at\":\"");
    write_served_time(out, row.received_at, received_digits);
    out.extend_from_slice(b"\",\"stored_at\":\"");
    write_served_time(out, row.stored_at, stored_digits);
    out.extend_from_slice(b"\"}");
    Some(())
}

/// Whether `s` is a JSON object of string values in `serde_json`'s compact form (what
/// `serde_json::to_string` of a `BTreeMap<String, String>` writes: no whitespace), without
/// building the map. Strings are checked, not unescaped.
fn is_string_object(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    // A JSON string at `i`; returns the index after its closing quote.
    let string = |mut i: usize| -> Option<usize> {
        if bytes.get(i) != Some(&b'"') {
            return None;
        }
        i += 1;
        loop {
            match *bytes.get(i)? {
                b'"' => return Some(i + 1),
                b'\\' => i += 2,
                b if b < 0x20 => return None,
                _ => i += 1,
            }
        }
    };
    if bytes.first() != Some(&b'{') {
        return false;
    }
    i += 1;
    if bytes.get(i) == Some(&b'}') {
        return i + 1 == bytes.len();
    }
    loop {
        let Some(after_key) = string(i) else {
            return false;
        };
        if bytes.get(after_key) != Some(&b':') {
            return false;
        }
        let Some(after_value) = string(after_key + 1) else {
            return false;
        };
        match bytes.get(after_value) {
            Some(b',') => i = after_value + 1,
            Some(b'}') => return after_value + 1 == bytes.len(),
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialize_time_writes_what_chrono_writes() {
        #[derive(Serialize)]
        struct Ours(#[serde(serialize_with = "serialize_time")] DateTime<Utc>);
        for nanos in [
            0,
            1_000_000,
            123_000_000,
            123_456_000,
            123_456_789,
            999_999_999,
        ] {
            let t = DateTime::from_timestamp(1_796_227_950, nanos).unwrap();
            assert_eq!(
                serde_json::to_string(&Ours(t)).unwrap(),
                serde_json::to_string(&t).unwrap(),
                "{nanos} ns"
            );
        }
    }

    #[test]
    fn a_stored_time_is_served_as_chrono_serializes_what_it_parses_to() {
        for nanos in [
            0,
            1_000,
            1_000_000,
            10_000_000,
            123_000_000,
            123_456_000,
            123_456_789,
            999_000_000,
            999_999_000,
            999_999_999,
        ] {
            let stored = format_time(DateTime::from_timestamp(1_796_227_950, nanos).unwrap());
            let parsed = DateTime::parse_from_rfc3339(&stored)
                .unwrap()
                .with_timezone(&Utc);
            let digits = served_fraction_digits(&stored).expect("format_time's shape");
            let mut served = b"\"".to_vec();
            write_served_time(&mut served, &stored, digits);
            served.push(b'"');
            assert_eq!(
                String::from_utf8(served).unwrap(),
                serde_json::to_string(&parsed).unwrap(),
                "{stored}"
            );
        }
        for other in [
            "2026-12-02T18:04:00Z",
            "2026-12-02T18:04:00.123Z",
            "2026-12-02T18:04:00.123456+00:00",
            "2026-12-02 18:04:00.123456Z",
            "+12026-12-02T18:04:00.12345Z",
            "2026-12-02T18:04:00.12345xZ",
        ] {
            assert_eq!(served_fraction_digits(other), None, "{other}");
        }
    }

    #[test]
    fn string_objects_are_what_serde_json_writes_for_a_map_of_strings() {
        for map in [
            BTreeMap::new(),
            BTreeMap::from([("k".to_owned(), "v".to_owned())]),
            BTreeMap::from([
                ("a\"b".to_owned(), "c\\d\n\u{1}".to_owned()),
                ("é".to_owned(), "😀".to_owned()),
                ("z".to_owned(), String::new()),
            ]),
        ] {
            let text = serde_json::to_string(&map).unwrap();
            assert!(is_string_object(&text), "{text}");
        }
        for other in [
            "",
            "{",
            "}",
            "[]",
            "null",
            r#"{"k":1}"#,
            r#"{"k":"v",}"#,
            r#"{"k":"v"} "#,
            r#"{ "k":"v"}"#,
            r#"{"k":"v""#,
            r#"{"k":"v\"}"#,
            "{\"k\":\"a\nb\"}",
            r#"{"k":"v"}{"#,
            r#"{"k"}"#,
        ] {
            assert!(!is_string_object(other), "{other:?}");
        }
    }
}
