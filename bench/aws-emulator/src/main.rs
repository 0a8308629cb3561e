//! SNS, SQS and CloudWatch from fakecloud's crates on one port, for `scripts/bench.sh --only
//! cloud`: `latamctl provision` creates the topic, the queues, the subscription and the
//! alarms, `serve --bus aws` publishes to SNS, SNS delivers to SQS, and the worker receives
//! from SQS, at the emulator's in-memory speed rather than moto's.
//!
//! Usage: latamctl-aws-emulator [ADDR]   (default 127.0.0.1:0; prints `listening on URL`)

use std::net::SocketAddr;
use std::sync::Arc;

use axum::{Extension, Router};
use fakecloud_core::delivery::DeliveryBus;
use fakecloud_core::dispatch::{DispatchConfig, dispatch};
use fakecloud_core::multi_account::MultiAccountState;
use fakecloud_core::registry::ServiceRegistry;
use parking_lot::RwLock;

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"));
    let bound = listener.local_addr().expect("a bound address");
    let endpoint = format!("http://{bound}");

    let sqs_state: fakecloud_sqs::SharedSqsState = Arc::new(RwLock::new(MultiAccountState::new(
        ACCOUNT, REGION, &endpoint,
    )));
    let sns_state: fakecloud_sns::SharedSnsState = Arc::new(RwLock::new({
        let mut state: fakecloud_core::multi_account::MultiRegionState<fakecloud_sns::SnsState> =
            MultiAccountState::new(ACCOUNT, REGION, &endpoint);
        state.default_regional_mut().seed_default_opted_out();
        state
    }));
    let cloudwatch_state: fakecloud_cloudwatch::SharedCloudWatchState =
        Arc::new(RwLock::new(fakecloud_cloudwatch::CloudWatchAccounts::new()));

    // SNS delivers to SQS in-process, as fakecloud's own binary wires it.
    let sqs_delivery = Arc::new(fakecloud_sqs::delivery::SqsDeliveryImpl::new(
        sqs_state.clone(),
    ));
    let sns_bus = Arc::new(DeliveryBus::new().with_sqs(sqs_delivery));

    let mut registry = ServiceRegistry::new();
    registry.register(Arc::new(
        fakecloud_sqs::SqsService::new(sqs_state).with_region(REGION),
    ));
    registry.register(Arc::new(
        fakecloud_sns::SnsService::new(sns_state, sns_bus).with_region(REGION),
    ));
    registry.register(Arc::new(fakecloud_cloudwatch::CloudWatchService::new(
        cloudwatch_state,
    )));

    let app = Router::new()
        .fallback(dispatch)
        .layer(Extension(Arc::new(registry)))
        .layer(Extension(Arc::new(DispatchConfig::new(REGION, ACCOUNT))));
    println!("listening on {endpoint}");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .expect("the server runs");
}
