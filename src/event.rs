//! Log events that alerting matches on: the worker logs them and `latamctl render synthetics
//! --format datadog` turns them into log monitors, from this one definition.

/// A message that does not decode (bad attributes, a NUL): it goes to the dead-letter queue.
pub const POISON: &str =
    "Received a message that cannot be decoded; it will reach the dead-letter queue.";
/// A row the database refused (a constraint, a type): that message goes to the dead-letter
/// queue.
pub const REJECTED_BY_STORE: &str =
    "The database refused a message; it will reach the dead-letter queue.";
/// The store refuses writes store-wide: the worker pauses receiving and holds its batch.
pub const STORE_REFUSES_WRITES: &str = "The store refuses writes; receiving is paused and the held batch is retried until a write commits.";

/// Every event with its log level, name and what it means for a monitor.
pub const ALL: [(&str, &str, &str, &str); 3] = [
    (
        "poison_message",
        "warn",
        POISON,
        "A message could not be decoded and will reach the dead-letter queue.",
    ),
    (
        "rejected_by_store",
        "warn",
        REJECTED_BY_STORE,
        "The database refused a message, which will reach the dead-letter queue.",
    ),
    (
        "store_refuses_writes",
        "warn",
        STORE_REFUSES_WRITES,
        "The store refuses writes; the worker paused receiving.",
    ),
];
