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

fn sns_entry_failure(
    id: &str,
    code: &str,
    sender_fault: bool,
) -> aws_sdk_sns::types::BatchResultErrorEntry {
    aws_sdk_sns::types::BatchResultErrorEntry::builder()
        .id(id)
        .code(code)
        .sender_fault(sender_fault)
        .message(code)
        .build()
        .unwrap()
}

/// Publishes that arrive together leave together: 25 concurrent publishes are three
/// `PublishBatch` calls (SNS's most is 10), and each caller gets its own entry's verdict. The
/// entry SNS refused for the message's fault fails alone and is not retried; the entry SNS
/// failed on its side is retried and acked; nobody else is failed with them.
#[tokio::test]
async fn concurrent_sns_publishes_share_batches_and_each_gets_its_entrys_verdict() {
    use aws_sdk_sns::operation::publish_batch::PublishBatchOutput;
    use aws_sdk_sns::types::PublishBatchResultEntry;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let flaked = std::sync::Arc::new(AtomicBool::new(false));
    let largest = std::sync::Arc::new(AtomicUsize::new(0));
    let (f, l) = (flaked.clone(), largest.clone());
    let batch = mock!(aws_sdk_sns::Client::publish_batch).then_compute_output(move |req| {
        let entries = req.publish_batch_request_entries();
        l.fetch_max(entries.len(), Ordering::SeqCst);
        let mut out = PublishBatchOutput::builder();
        for e in entries {
            out = match e.message() {
                "m7" => out.failed(sns_entry_failure(e.id(), "InvalidParameter", true)),
                "m12" if !f.swap(true, Ordering::SeqCst) => {
                    out.failed(sns_entry_failure(e.id(), "InternalError", false))
                }
                _ => out.successful(
                    PublishBatchResultEntry::builder()
                        .id(e.id())
                        .message_id(format!("mid-{}", e.message()))
                        .build(),
                ),
            };
        }
        out.build()
    });
    let single = mock!(aws_sdk_sns::Client::publish)
        .then_output(|| PublishOutput::builder().message_id("single").build());
    let client = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&batch, &single], |c| c
        .retry_config(aws_smithy_types::retry::RetryConfig::disabled()));
    let publisher = SnsPublisher::with_client(client, "arn:aws:sns:us-east-1:123456789012:t", 3);
    let messages: Vec<_> = (0..25).map(|i| message(&format!("m{i}"))).collect();
    let verdicts = futures::future::join_all(messages.iter().map(|m| publisher.publish(m))).await;
    for (i, v) in verdicts.iter().enumerate() {
        if i == 7 {
            assert!(
                matches!(v, Err(Error::Rejected(r)) if r.contains("InvalidParameter")),
                "{v:?}"
            );
        } else {
            assert!(v.is_ok(), "m{i}: {v:?}");
        }
    }
    assert!(
        flaked.load(Ordering::SeqCst),
        "m12 failed once on SNS's side"
    );
    assert_eq!(
        largest.load(Ordering::SeqCst),
        10,
        "SNS takes at most 10 per batch"
    );
    assert_eq!(batch.num_calls(), 4, "three batches of 25, and m12's retry");
    assert_eq!(single.num_calls(), 0);
    // Operators see the coalescing: three calls carried the 25 messages.
    let metrics = latamctl::telemetry::metrics_handle().render();
    for line in [
        "latamctl_sns_publish_batch_size_sum 25",
        "latamctl_sns_publish_batch_size_count 3",
    ] {
        assert!(metrics.contains(line), "{line} not in:\n{metrics}");
    }
}

/// SNS counts a batch's bodies and attributes against one 256 KiB request: three 100 KiB
/// messages cannot share one call, and all three are published.
#[tokio::test]
async fn sns_batches_stay_under_the_request_size_limit() {
    use aws_sdk_sns::operation::publish_batch::PublishBatchOutput;
    use aws_sdk_sns::types::PublishBatchResultEntry;
    let batch = mock!(aws_sdk_sns::Client::publish_batch).then_compute_output(|req| {
        let entries = req.publish_batch_request_entries();
        let bytes: usize = entries.iter().map(|e| e.message().len()).sum();
        let mut out = PublishBatchOutput::builder();
        for e in entries {
            out = if bytes > 256 * 1024 {
                out.failed(sns_entry_failure(e.id(), "BatchRequestTooLong", true))
            } else {
                out.successful(PublishBatchResultEntry::builder().id(e.id()).build())
            };
        }
        out.build()
    });
    let single = mock!(aws_sdk_sns::Client::publish)
        .then_output(|| PublishOutput::builder().message_id("single").build());
    let client = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&batch, &single]);
    let publisher = SnsPublisher::with_client(client, "arn:aws:sns:us-east-1:123456789012:t", 3);
    let messages: Vec<_> = (0..3)
        .map(|i| message(&format!("{i}").repeat(100 * 1024)))
        .collect();
    for v in futures::future::join_all(messages.iter().map(|m| publisher.publish(m))).await {
        v.unwrap();
    }
    assert_eq!(batch.num_calls() + single.num_calls(), 2, "2 + 1 messages");
}

/// A batch SNS refuses as a whole (here: too long, by SNS's count) is published message by
/// message, so a healthy message is not failed with a bad one.
#[tokio::test]
async fn a_refused_sns_batch_falls_back_to_one_publish_per_message() {
    use aws_sdk_sns::operation::publish_batch::PublishBatchError;
    let batch = mock!(aws_sdk_sns::Client::publish_batch).then_error(|| {
        PublishBatchError::BatchRequestTooLongException(
            aws_sdk_sns::types::error::BatchRequestTooLongException::builder()
                .message("too long")
                .meta(ErrorMetadata::builder().code("BatchRequestTooLong").build())
                .build(),
        )
    });
    let single = mock!(aws_sdk_sns::Client::publish)
        .match_requests(|req| req.message() != Some("bad"))
        .then_output(|| PublishOutput::builder().message_id("single").build());
    let bad = mock!(aws_sdk_sns::Client::publish)
        .match_requests(|req| req.message() == Some("bad"))
        .then_error(|| {
            PublishError::InvalidParameterException(
                aws_sdk_sns::types::error::InvalidParameterException::builder()
                    .message("bad attribute")
                    .meta(ErrorMetadata::builder().code("InvalidParameter").build())
                    .build(),
            )
        });
    let client = mock_client!(
        aws_sdk_sns,
        RuleMode::MatchAny,
        [&batch, &single, &bad],
        |c| c.retry_config(aws_smithy_types::retry::RetryConfig::disabled())
    );
    let publisher = SnsPublisher::with_client(client, "arn:aws:sns:us-east-1:123456789012:t", 3);
    let messages = [message("a"), message("bad"), message("c")];
    let verdicts = futures::future::join_all(messages.iter().map(|m| publisher.publish(m))).await;
    assert!(verdicts[0].is_ok() && verdicts[2].is_ok(), "{verdicts:?}");
    assert!(
        matches!(verdicts[1], Err(Error::Rejected(_))),
        "{verdicts:?}"
    );
    assert_eq!(
        batch.num_calls(),
        1,
        "a refusal of the batch's shape is not retried as a batch"
    );
    assert_eq!(single.num_calls() + bad.num_calls(), 3);
}

/// A publish whose caller gave up (the API answered 503 `publish_timeout`) before it left
/// is not sent: its client was told it failed.
#[tokio::test]
async fn an_sns_publish_whose_caller_gave_up_is_not_sent() {
    let rule = mock!(aws_sdk_sns::Client::publish)
        .then_output(|| PublishOutput::builder().message_id("single").build());
    let gave_up = mock!(aws_sdk_sns::Client::publish)
        .match_requests(|req| req.message() == Some("gave up"))
        .then_output(|| PublishOutput::builder().message_id("x").build());
    let client = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&gave_up, &rule]);
    let publisher = SnsPublisher::with_client(client, "arn:aws:sns:us-east-1:123456789012:t", 3);
    let abandoned = message("gave up");
    let mut first = Box::pin(publisher.publish(&abandoned));
    assert!(
        futures::poll!(&mut first).is_pending(),
        "queued, not yet sent"
    );
    drop(first);
    publisher.publish(&message("kept")).await.unwrap();
    assert_eq!(gave_up.num_calls(), 0);
    assert_eq!(rule.num_calls(), 1);
}

/// A batch SNS fails on its side every time fails each of its POSTs as unavailable (503),
/// after the retry budget, and takes the publisher out of readiness until a publish succeeds.
#[tokio::test]
async fn a_failing_sns_batch_fails_its_messages_and_readiness() {
    use aws_sdk_sns::operation::publish_batch::PublishBatchError;
    let batch = mock!(aws_sdk_sns::Client::publish_batch).then_error(|| {
        PublishBatchError::generic(
            ErrorMetadata::builder()
                .code("InternalError")
                .message("try again")
                .build(),
        )
    });
    let single = mock!(aws_sdk_sns::Client::publish)
        .then_output(|| PublishOutput::builder().message_id("single").build());
    let client = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&batch, &single], |c| c
        .retry_config(aws_smithy_types::retry::RetryConfig::disabled()));
    let publisher = SnsPublisher::with_client(client, "arn:aws:sns:us-east-1:123456789012:t", 2);
    publisher.ready().await.unwrap();
    let messages: Vec<_> = (0..5).map(|i| message(&format!("m{i}"))).collect();
    for v in futures::future::join_all(messages.iter().map(|m| publisher.publish(m))).await {
        assert!(matches!(v, Err(Error::Unavailable(_))), "{v:?}");
    }
    assert_eq!(batch.num_calls(), 2, "one batch, two attempts");
    assert!(matches!(
        publisher.ready().await,
        Err(Error::Unavailable(_))
    ));
    publisher.publish(&message("alone")).await.unwrap();
    publisher.ready().await.unwrap();
}
