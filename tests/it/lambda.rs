//! The Lambda handler with recorded SQS events: all good, some poison, database down, one
//! database node down.

use std::time::Duration;

use latamctl::lambda::{BatchItemFailure, SqsEvent, handle};
use latamctl::store::Store;
use latamctl::store::sqlite::SqliteStore;
use serde_json::{Value, json};
use uuid::Uuid;

/// An SQS event record as Lambda delivers it for a raw SNS→SQS subscription.
fn record(message_id: &str, body: &str, transaction_id: Option<Uuid>) -> Value {
    let mut attrs = json!({});
    if let Some(id) = transaction_id {
        attrs = json!({
            "latamctl.transaction_id": {"stringValue": id.to_string(), "stringListValues": [], "binaryListValues": [], "dataType": "String"},
            "latamctl.topic": {"stringValue": "data-ingestion-topic", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
            "latamctl.received_at": {"stringValue": "2026-11-27T10:00:00.000000Z", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
            "source": {"stringValue": "lambda-test", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
        });
    }
    json!({
        "messageId": message_id,
        "receiptHandle": format!("AQEB{message_id}"),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1795800000000",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1795800000100"
        },
        "messageAttributes": attrs,
        "md5OfBody": "7b270e59b47ff90a553787216d55d91d",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:latam-prod-ingest",
        "awsRegion": "us-east-1"
    })
}

fn event(records: Vec<Value>) -> SqsEvent {
    serde_json::from_value(json!({ "Records": records })).expect("a valid SQS event")
}

fn failures(ids: &[&str]) -> Vec<BatchItemFailure> {
    ids.iter()
        .map(|id| BatchItemFailure {
            item_identifier: (*id).to_owned(),
        })
        .collect()
}

async fn sqlite() -> (SqliteStore, tempfile::TempDir) {
    let dir = super::support::tempdir();
    (
        SqliteStore::open(dir.path(), Duration::from_secs(5))
            .await
            .unwrap(),
        dir,
    )
}

#[tokio::test]
async fn all_good_messages_are_stored_and_none_fail() {
    let (store, _dir) = sqlite().await;
    let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    let ev = event(
        ids.iter()
            .enumerate()
            .map(|(i, id)| record(&format!("m{i}"), "hola", Some(*id)))
            .collect(),
    );
    let response = handle(&store, ev).await;
    assert!(response.batch_item_failures.is_empty());
    for id in &ids {
        let r = store.get(*id).await.unwrap().expect("stored");
        assert_eq!(r.message, "hola");
        assert_eq!(r.attributes["source"], "lambda-test");
    }
    // A redelivered batch stores nothing twice.
    let ev = event(
        ids.iter()
            .enumerate()
            .map(|(i, id)| record(&format!("m{i}"), "hola", Some(*id)))
            .collect(),
    );
    assert!(handle(&store, ev).await.batch_item_failures.is_empty());
    assert_eq!(store.count().await.unwrap(), 3);
}

#[tokio::test]
async fn only_poison_messages_are_reported_as_failures() {
    let (store, _dir) = sqlite().await;
    let good = Uuid::now_v7();
    let ev = event(vec![
        record("good", "hola", Some(good)),
        record("poison-1", "not a latamctl message", None),
        record("poison-2", "{\"Type\":\"Notification\"}", None),
    ]);
    let response = handle(&store, ev).await;
    assert_eq!(
        response.batch_item_failures,
        failures(&["poison-1", "poison-2"])
    );
    assert!(store.get(good).await.unwrap().is_some());
    let text = serde_json::to_value(&response).unwrap();
    assert_eq!(text["batchItemFailures"][0]["itemIdentifier"], "poison-1");
}

#[tokio::test]
async fn sns_enveloped_bodies_are_understood() {
    let (store, _dir) = sqlite().await;
    let id = Uuid::now_v7();
    let body = json!({
        "Type": "Notification", "MessageId": "x", "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
        "Message": "enveloped",
        "MessageAttributes": {
            "latamctl.transaction_id": {"Type": "String", "Value": id.to_string()},
            "latamctl.topic": {"Type": "String", "Value": "data-ingestion-topic"},
            "latamctl.received_at": {"Type": "String", "Value": "2026-11-27T10:00:00Z"},
        }
    })
    .to_string();
    let response = handle(&store, event(vec![record("env", &body, None)])).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(store.get(id).await.unwrap().unwrap().message, "enveloped");
}

#[tokio::test]
async fn database_down_fails_every_message() {
    let store = super::store::unreachable_postgres().await;
    let ev = event(vec![
        record("a", "x", Some(Uuid::now_v7())),
        record("b", "y", Some(Uuid::now_v7())),
        record("poison", "z", None),
    ]);
    let response = handle(&store, ev).await;
    assert_eq!(
        response.batch_item_failures,
        failures(&["a", "b", "poison"])
    );
}

/// One database node down (a Citus worker: the coordinator answers SQLSTATE 08006 naming
/// it) fails only the messages whose rows live there: the rest of the batch is stored and
/// acknowledged, the poison still fails. Real PostgreSQL: a trigger refuses the rows the
/// "dead node" holds (ids whose last byte is even) with the coordinator's error text.
#[tokio::test]
async fn a_dead_node_fails_only_its_own_messages() {
    let Some(url) = super::store::fresh_database().await else {
        return;
    };
    let store = super::store::connect(&url).await;
    store.apply_migrations().await.unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::raw_sql(
        "CREATE FUNCTION dead_node() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF get_byte(uuid_send(NEW.transaction_id), 15) % 2 = 0 THEN
             RAISE EXCEPTION 'connection to the remote node worker-3:5432 failed with the following error: Connection refused'
               USING ERRCODE = '08006';
           END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER dead_node BEFORE INSERT ON records FOR EACH ROW EXECUTE FUNCTION dead_node();",
    )
    .execute(&pool)
    .await
    .unwrap();
    let (mut dead, mut alive) = (Vec::new(), Vec::new());
    while dead.len() < 3 || alive.len() < 5 {
        let id = Uuid::now_v7();
        match id.as_bytes()[15] % 2 {
            0 if dead.len() < 3 => dead.push(id),
            1 if alive.len() < 5 => alive.push(id),
            _ => {}
        }
    }
    // Interleaved, so that no half of the batch is one node's.
    let mut records = Vec::new();
    let mut want = Vec::new();
    for i in 0..5 {
        records.push(record(&format!("alive{i}"), "hola", Some(alive[i])));
        if i < 3 {
            records.push(record(&format!("dead{i}"), "hola", Some(dead[i])));
            want.push(format!("dead{i}"));
        }
        if i == 1 {
            records.push(record("poison", "z", None));
            want.push("poison".into());
        }
    }
    let response = handle(&store, event(records)).await;
    let mut got: Vec<String> = response
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    got.sort();
    want.sort();
    assert_eq!(
        got, want,
        "only the dead node's messages and the poison fail"
    );
    for id in &alive {
        assert!(store.get(*id).await.unwrap().is_some(), "{id} not stored");
    }
    for id in &dead {
        assert!(store.get(*id).await.unwrap().is_none());
    }
}

/// During a store outage the handler keeps the batch invisible for the hold (through
/// ChangeMessageVisibility) instead of letting it return after the queue's visibility
/// timeout, which would spend a receive toward the DLQ every few seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_holds_the_batch_instead_of_burning_receives() {
    use latamctl::bus::OutboundMessage;
    let Some(moto) = super::cloud::Moto::new().await else {
        return;
    };
    let bus = moto.bus();
    for i in 0..3 {
        bus.publisher
            .publish(&OutboundMessage {
                transaction_id: Uuid::now_v7(),
                topic: "data-ingestion-topic".into(),
                message: format!("held {i}"),
                attributes: Default::default(),
                received_at: chrono::Utc::now(),
                traceparent: None,
            })
            .await
            .unwrap();
    }
    let mut received = Vec::new();
    while received.len() < 3 {
        received.extend(
            bus.queue
                .receive(10, Duration::from_secs(2), Duration::from_secs(1))
                .await
                .unwrap(),
        );
    }
    let ev = event_of(&received);
    let store = super::store::unreachable_postgres().await;
    let response = latamctl::lambda::handle_with_hold(
        &store,
        Some((bus.queue.as_ref(), Duration::from_secs(60))),
        ev,
    )
    .await;
    assert_eq!(response.batch_item_failures.len(), 3, "{response:?}");
    // Well past the 1 s visibility timeout the messages are still held, not redelivered.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again = bus
        .queue
        .receive(10, Duration::from_secs(1), Duration::from_secs(1))
        .await
        .unwrap();
    assert!(again.is_empty(), "redelivered during the hold: {again:?}");
    let stats = bus.queue.stats().await.unwrap();
    assert_eq!((stats.visible, stats.in_flight), (0, 3), "{stats:?}");
}

/// The SQS event the event source mapping would build from these received messages.
pub fn event_of(received: &[latamctl::bus::Delivery]) -> SqsEvent {
    serde_json::from_value(json!({
        "Records": received.iter().map(|d| json!({
            "messageId": d.message_id,
            "receiptHandle": d.receipt,
            "body": d.body,
            "attributes": {"ApproximateReceiveCount": d.receive_count.to_string()},
            "messageAttributes": d.attributes.iter().map(|(k, v)| (k.clone(), json!({"stringValue": v, "dataType": "String"}))).collect::<serde_json::Map<_, _>>(),
        })).collect::<Vec<_>>(),
    }))
    .expect("a valid SQS event")
}
