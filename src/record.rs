//! What travels from the bus to the store: the record a delivery decodes into, and the one
//! time format both sides write. Its own module so the bus and the store depend on it, not
//! on each other.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
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
}
