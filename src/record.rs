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
