//! One integration-test binary (one link step) with a module per area.

mod api;
mod architecture;
mod citus_catalog;
mod cloud;
mod damaged;
mod dead_node;
mod docs;
mod e2e;
mod faults;
mod hostile;
mod iam;
mod kubernetes;
mod lambda;
mod logs;
mod metrics;
mod mocks;
mod mocks_status;
mod operator;
mod outage;
mod parity;
mod queue;
mod slo;
mod store;
mod support;
mod traces;
