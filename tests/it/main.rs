//! One integration-test binary (one link step) with a module per area.

mod api;
mod cloud;
mod e2e;
mod mocks;
mod queue;
mod slo;
mod store;
mod support;
