//! The worker as an SQS-triggered AWS Lambda (`provided.al2023`, handler `bootstrap`).
//! Configuration comes from the environment (`LATAMCTL_STORE=postgres`,
//! `LATAMCTL_DATABASE_HOST`, `..._NAME`, `..._USER`, `..._SECRET_ARN`), as the Terraform
//! `lambda` module sets it.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use latamctl::config::{LogFormat, Overrides};
use latamctl::lambda::{SqsEvent, handle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (config, _) = latamctl::config::load(None, &Overrides::default())?;
    latamctl::telemetry::init_logging(LogFormat::Json, &config.log.level);
    let store = latamctl::pipeline::open_store(&config, config.database.migrate_on_start).await?;
    let store = &store;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let event: SqsEvent = serde_json::from_value(event.payload)?;
            Ok::<_, Error>(handle(store.as_ref(), event).await)
        },
    ))
    .await
}
