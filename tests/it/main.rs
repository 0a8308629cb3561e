//! One integration-test binary (one link step) with a module per area.

mod api;
mod e2e;
mod queue;
mod support;
