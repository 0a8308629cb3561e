//! The real binary on a free port: end to end, crash safety, graceful shutdown, CLI errors.
//! Children: `durability`, `roles` (api and worker processes), `limits` (memory and series
//! bounds), `fleet` (`--fleet` commands), `cli` (configuration, secrets, version, help).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use latamctl::store::sqlite::SqliteStore;
use uuid::Uuid;

use super::support::{self, Serve, client, post, wait_stored};

mod cli;
mod durability;
mod fleet;
mod limits;
mod roles;
