//! latamctl: run and operate a pub/sub ingestion pipeline.
//!
//! Clients POST messages ([`api`]); a [`bus`] carries them durably (an embedded on-disk
//! queue, or SNS → SQS); the [`worker`] stores them idempotently in a [`store`] (SQLite or
//! PostgreSQL); clients GET them back by transaction id. The [`cli`] wires it all; [`slo`]
//! turns the SLO spec into alerts, dashboards and the `latamctl slo` report.

pub mod api;
pub mod aws;
pub mod background;
pub mod bus;
pub mod cli;
pub mod cloud;
pub mod compose;
pub mod config;
pub mod deploy;
pub mod event;
pub mod fleet;
pub mod lambda;
pub mod loadgen;
pub mod metric;
pub mod output;
pub mod record;
pub mod slo;
pub mod sqlite;
pub mod status;
pub mod store;
pub mod telemetry;
pub mod worker;
