//! The worker as an SQS-triggered AWS Lambda (`provided.al2023`, handler `bootstrap`).
//! Configuration comes from the environment (`LATAMCTL_STORE=postgres`,
//! `LATAMCTL_DATABASE_HOST`, `..._NAME`, `..._USER`, `..._SECRET_ARN`, and
//! `LATAMCTL_AWS_QUEUE_URL` with `LATAMCTL_WORKER_STORE_OUTAGE_HOLD` for the outage hold), as
//! the Terraform `lambda` module sets it.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use latamctl::bus::Queue;
use latamctl::config::{LogFormat, Overrides};
use latamctl::lambda::{SqsEvent, handle_with_hold};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (config, _) = latamctl::config::load(None, &Overrides::default())?;
    latamctl::telemetry::init_logging(
        LogFormat::Json,
        &config.log.level,
        Some((&config.telemetry, config.environment.as_str())),
    );
    let parts = latamctl::compose::LambdaParts::build(&config).await?;
    let store = &parts.store;
    // With the queue URL the handler holds a failed batch through a store outage.
    let queue = &parts.queue;
    let hold = config.worker.store_outage_hold;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let event: SqsEvent = serde_json::from_value(event.payload)?;
            let hold = queue.as_ref().map(|q| (q as &dyn Queue, hold));
            let response = handle_with_hold(store.as_ref(), hold, event).await;
            // The sandbox may freeze after the answer: export this invocation's spans now.
            latamctl::telemetry::flush_traces();
            Ok::<_, Error>(response)
        },
    ))
    .await
}
