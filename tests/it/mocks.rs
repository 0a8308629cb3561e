//! Error paths moto cannot produce, with aws-smithy-mocks: throttling and partial batch
//! failures.

use aws_sdk_sns::operation::publish::{PublishError, PublishOutput};
use aws_sdk_sqs::operation::delete_message_batch::DeleteMessageBatchOutput;
use aws_sdk_sqs::types::{BatchResultErrorEntry, DeleteMessageBatchResultEntry};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_types::error::ErrorMetadata;
use latamctl::bus::sns::SnsPublisher;
use latamctl::bus::sqs::SqsQueue;
use latamctl::bus::{Delivery, Error, Publisher, Queue};

use super::queue::message;

/// SNS answers throttling with the generic `Throttling` error code (HTTP 400).
fn throttled() -> PublishError {
    PublishError::generic(
        ErrorMetadata::builder()
            .code("Throttling")
            .message("Rate exceeded")
            .build(),
    )
}

#[tokio::test]
async fn sns_throttling_is_retried_then_reported_as_throttled() {
    let rule = mock!(aws_sdk_sns::Client::publish).then_error(throttled);
    let client = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&rule], |c| c
        .retry_config(aws_smithy_types::retry::RetryConfig::disabled()));
    let publisher = SnsPublisher::with_client(client, "arn:aws:sns:us-east-1:123456789012:t", 3);
    let err = publisher.publish(&message("m")).await.unwrap_err();
    assert!(matches!(err, Error::Throttled(_)), "{err:?}");
    assert_eq!(rule.num_calls(), 3, "three attempts");
}

#[tokio::test]
async fn sns_throttling_then_success_publishes() {
    let rule = mock!(aws_sdk_sns::Client::publish)
        .sequence()
        .error(throttled)
        .output(|| PublishOutput::builder().message_id("id-1").build())
        .build();
    let client = mock_client!(aws_sdk_sns, RuleMode::Sequential, [&rule], |c| c
        .retry_config(aws_smithy_types::retry::RetryConfig::disabled()));
    let publisher = SnsPublisher::with_client(client, "arn:aws:sns:us-east-1:123456789012:t", 3);
    publisher.publish(&message("m")).await.unwrap();
    assert_eq!(rule.num_calls(), 2);
}

#[tokio::test]
async fn sns_invalid_parameter_is_not_retried() {
    let rule = mock!(aws_sdk_sns::Client::publish).then_error(|| {
        PublishError::InvalidParameterException(
            aws_sdk_sns::types::error::InvalidParameterException::builder()
                .message("bad attribute")
                .meta(ErrorMetadata::builder().code("InvalidParameter").build())
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&rule], |c| c
        .retry_config(aws_smithy_types::retry::RetryConfig::disabled()));
    let publisher = SnsPublisher::with_client(client, "arn:aws:sns:us-east-1:123456789012:t", 3);
    let err = publisher.publish(&message("m")).await.unwrap_err();
    assert!(matches!(err, Error::Rejected(_)), "{err:?}");
    assert_eq!(rule.num_calls(), 1);
}

fn delivery(id: &str) -> Delivery {
    Delivery {
        message_id: id.into(),
        receipt: format!("receipt-{id}"),
        body: String::new(),
        attributes: Default::default(),
        receive_count: 1,
        sent_at: None,
    }
}

#[tokio::test]
async fn sqs_partial_delete_failure_is_reported_per_message() {
    let rule = mock!(aws_sdk_sqs::Client::delete_message_batch).then_output(|| {
        DeleteMessageBatchOutput::builder()
            .successful(
                DeleteMessageBatchResultEntry::builder()
                    .id("0")
                    .build()
                    .unwrap(),
            )
            .failed(
                BatchResultErrorEntry::builder()
                    .id("1")
                    .code("ReceiptHandleIsInvalid")
                    .sender_fault(true)
                    .message("expired")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    });
    let client = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, [&rule]);
    let queue = SqsQueue::with_client(client, "https://sqs.us-east-1.amazonaws.com/1/q", None);
    let (a, b) = (delivery("a"), delivery("b"));
    let report = queue.ack(&[&a, &b]).await.unwrap();
    assert_eq!(report.acked, 1);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(
        report.failed[0].0, "b",
        "the failure names the message, not the entry index"
    );
    assert!(report.failed[0].1.contains("ReceiptHandleIsInvalid"));
}

#[tokio::test]
async fn sqs_ack_batches_in_tens() {
    let rule = mock!(aws_sdk_sqs::Client::delete_message_batch).then_compute_output(|req| {
        let mut out = DeleteMessageBatchOutput::builder();
        for e in req.entries() {
            out = out.successful(
                DeleteMessageBatchResultEntry::builder()
                    .id(e.id())
                    .build()
                    .unwrap(),
            );
        }
        out.set_failed(Some(vec![])).build().unwrap()
    });
    let client = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, [&rule]);
    let queue = SqsQueue::with_client(client, "https://sqs.us-east-1.amazonaws.com/1/q", None);
    let ds: Vec<Delivery> = (0..25).map(|i| delivery(&i.to_string())).collect();
    let refs: Vec<&Delivery> = ds.iter().collect();
    let report = queue.ack(&refs).await.unwrap();
    assert_eq!(report.acked, 25);
    assert_eq!(
        rule.num_calls(),
        3,
        "25 deletes = 3 DeleteMessageBatch calls (SQS max 10)"
    );
}

/// `crate::aws::classify` reads any service's error by its code, and says "AWS", not "the
/// message bus": `status` and `provision` use it for RDS, EKS and CloudWatch calls too.
#[tokio::test]
async fn aws_errors_are_classified_by_code_for_every_service() {
    use aws_sdk_sns::operation::get_topic_attributes::GetTopicAttributesError;
    use latamctl::aws::{AwsError, classify};
    let cases = [
        ("NotFound", "not found"),
        ("Throttling", "throttling"),
        ("InternalError", "AWS unavailable: sns:GetTopicAttributes"),
    ];
    for (code, expected) in cases {
        let rule = mock!(aws_sdk_sns::Client::get_topic_attributes).then_error(move || {
            GetTopicAttributesError::generic(ErrorMetadata::builder().code(code).build())
        });
        let client = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&rule], |c| c
            .retry_config(aws_smithy_types::retry::RetryConfig::disabled()));
        let err = client
            .get_topic_attributes()
            .topic_arn("arn:aws:sns:us-east-1:123456789012:t")
            .send()
            .await
            .unwrap_err();
        let classified = classify("sns:GetTopicAttributes", err);
        let text = classified.to_string();
        assert!(text.contains(expected), "{code}: {text}");
        assert!(!text.contains("message bus"), "{code}: {text}");
        match code {
            "NotFound" => assert!(matches!(classified, AwsError::NotFound(_))),
            "Throttling" => assert!(matches!(classified, AwsError::Throttled(_))),
            _ => assert!(matches!(classified, AwsError::Unavailable(_))),
        }
    }
}
