//! AWS plumbing every module shares: the SDK configuration (region, endpoint) and what an
//! SDK error means. The bus (SNS/SQS), `provision`, `status` and the PostgreSQL store (RDS
//! IAM auth, Secrets Manager) all call AWS; none of them owns this.

use aws_config::{BehaviorVersion, Region};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::config::AwsConfig;

/// What a failed AWS call means for the caller, whichever service it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsError {
    /// Unreachable, timed out, or failing on its side: retry later.
    #[error("AWS unavailable: {0}")]
    Unavailable(String),
    /// AWS asked us to slow down.
    #[error("AWS is throttling requests: {0}")]
    Throttled(String),
    /// AWS refused the request itself (a bad parameter, an invalid message): retrying
    /// will not help.
    #[error("AWS refused the request: {0}")]
    Rejected(String),
    /// The resource named does not exist.
    #[error(
        "{0}: not found — check the names in [aws] (topic_arn, queue_url, …), or run `latamctl provision`"
    )]
    NotFound(String),
    /// Local configuration is missing or wrong (no region).
    #[error("{0}")]
    Config(String),
}

/// Loads the SDK configuration from `[aws]` (region, endpoint), else the standard chain
/// (`AWS_REGION`, `AWS_PROFILE`, `AWS_ENDPOINT_URL`); fails up front when no region is known.
pub async fn load_sdk_config(aws: &AwsConfig) -> Result<aws_config::SdkConfig, AwsError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &aws.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &aws.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err(AwsError::Config(
            "no AWS region: set AWS_REGION, a profile with a region (AWS_PROFILE), \
             [aws] region in latamctl.toml, or LATAMCTL_AWS_REGION"
                .into(),
        ));
    }
    Ok(sdk)
}

/// Maps an SDK error of `operation` (`sqs:ReceiveMessage`, `rds:DescribeDBInstances`, …) by
/// its error code and kind. Every AWS SDK crate shares smithy's `SdkError`.
pub fn classify<E>(operation: &str, err: SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let detail = format!("{operation}: {}", DisplayErrorContext(&err));
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => AwsError::Unavailable(detail),
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            let status = service.raw().status().as_u16();
            if code.contains("Throttl") || status == 429 {
                AwsError::Throttled(detail)
            } else if matches!(
                code,
                "InvalidParameter"
                    | "InvalidParameterValue"
                    | "InvalidParameterValueException"
                    | "ParameterValueInvalid"
                    | "InvalidAttributeValue"
                    | "InvalidMessageContents"
            ) {
                AwsError::Rejected(detail)
            } else if matches!(
                code,
                "NotFound"
                    | "NotFoundException"
                    | "ResourceNotFoundException"
                    | "DBInstanceNotFound"
                    | "AWS.SimpleQueueService.NonExistentQueue"
                    | "QueueDoesNotExist"
            ) {
                AwsError::NotFound(detail)
            } else {
                AwsError::Unavailable(detail)
            }
        }
        _ => AwsError::Unavailable(detail),
    }
}

/// SQS's longest long poll (`WaitTimeSeconds`).
pub const SQS_MAX_WAIT_SECS: u64 = 20;

/// The SDK configuration and the bus's clients (SNS with the SDK's retries off: the publisher
/// retries itself and counts every retry; SQS with an attempt timeout above long polling).
#[derive(Clone)]
pub struct AwsClients {
    pub sdk: aws_config::SdkConfig,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
}

impl AwsClients {
    /// Region and endpoint from config, else the standard chain (`AWS_REGION`,
    /// `AWS_PROFILE`, `AWS_ENDPOINT_URL`). Fails up front when no region is known.
    pub async fn from_config(aws: &crate::config::AwsConfig) -> Result<Self, AwsError> {
        Ok(Self::from_sdk(load_sdk_config(aws).await?))
    }

    /// The bus's clients on an SDK configuration already loaded.
    pub fn from_sdk(sdk: aws_config::SdkConfig) -> Self {
        // Publish: fail fast, we retry ourselves.
        let sns_config = aws_sdk_sns::config::Builder::from(&sdk)
            .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
            .timeout_config(
                aws_smithy_types::timeout::TimeoutConfig::builder()
                    .connect_timeout(std::time::Duration::from_secs(2))
                    .operation_attempt_timeout(std::time::Duration::from_secs(4))
                    .build(),
            )
            .build();
        // Receive long-polls for up to 20 s: the attempt timeout must exceed it.
        let sqs_config = aws_sdk_sqs::config::Builder::from(&sdk)
            .timeout_config(
                aws_smithy_types::timeout::TimeoutConfig::builder()
                    .connect_timeout(std::time::Duration::from_secs(3))
                    .operation_attempt_timeout(std::time::Duration::from_secs(
                        SQS_MAX_WAIT_SECS + 10,
                    ))
                    .build(),
            )
            .build();
        Self {
            sns: aws_sdk_sns::Client::from_conf(sns_config),
            sqs: aws_sdk_sqs::Client::from_conf(sqs_config),
            sdk,
        }
    }
}
