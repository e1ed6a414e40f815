//! The queue contract: each test is one generic function over the [`Queue`] port, run against
//! [`MemoryQueue`] and against [`SqsQueue`] on moto (`MOTO_ENDPOINT`).

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use checkout::queue::memory::{MemoryQueue, MemoryQueueOptions};
use checkout::queue::sqs::{create_queue_with_dlq, SqsQueue};
use checkout::queue::{Queue, QueueError, MAX_MESSAGE_BYTES};

/// A queue, its dead-letter queue, and the settings it was made with.
struct Fixture {
    queue: Arc<dyn Queue>,
    dead_letters: Arc<dyn Queue>,
    visibility: Duration,
    max_receives: u32,
}

impl Fixture {
    /// Long enough for an invisible message to be visible again, with margin.
    fn after_visibility(&self) -> Duration {
        self.visibility + Duration::from_millis(300)
    }
}

const MAX_RECEIVES: u32 = 2;

fn memory() -> Fixture {
    // Long enough that a stalled CI machine does not make an in-flight message visible early.
    let visibility = Duration::from_millis(500);
    let queue = Arc::new(MemoryQueue::new(MemoryQueueOptions {
        visibility_timeout: visibility,
        max_receives: MAX_RECEIVES,
    }));
    Fixture {
        dead_letters: queue.dead_letters(),
        queue,
        visibility,
        max_receives: MAX_RECEIVES,
    }
}

async fn sqs() -> Fixture {
    let client = support::sqs_client().await;
    let name = support::unique("contract");
    let (url, dlq_url) = match create_queue_with_dlq(&client, &name, 1, MAX_RECEIVES).await {
        Ok(urls) => urls,
        Err(error) => panic!(
            "creating queue {name} on moto at {} failed: {error}",
            support::moto_endpoint()
        ),
    };
    Fixture {
        queue: Arc::new(SqsQueue::new(client.clone(), url)),
        dead_letters: Arc::new(SqsQueue::new(client, dlq_url)),
        visibility: Duration::from_secs(1),
        max_receives: MAX_RECEIVES,
    }
}

async fn send_receive_ack(f: Fixture) {
    let id = f.queue.send(r#"{"kind":"callback","n":1}"#).await.unwrap();
    let received = f.queue.receive(10, Duration::from_secs(1)).await.unwrap();
    assert_eq!(received.len(), 1);
    let message = &received[0];
    assert_eq!(
        (message.id.as_str(), message.body.as_str()),
        (id.as_str(), r#"{"kind":"callback","n":1}"#)
    );
    assert_eq!(message.receive_count, 1);
    assert!(!message.receipt.is_empty());
    f.queue.ack(&message.receipt).await.unwrap();
    // Acknowledged: never delivered again, even after the visibility timeout.
    tokio::time::sleep(f.after_visibility()).await;
    assert!(f.queue.receive(10, Duration::ZERO).await.unwrap().is_empty());
    // A second ack of the same receipt is harmless.
    f.queue.ack(&message.receipt).await.unwrap();
}

async fn unacked_messages_come_back_after_the_visibility_timeout(f: Fixture) {
    let id = f.queue.send("retry me").await.unwrap();
    let first = f.queue.receive(1, Duration::from_secs(1)).await.unwrap();
    assert_eq!(first.len(), 1);
    // In flight: invisible to other receivers.
    assert!(f.queue.receive(1, Duration::ZERO).await.unwrap().is_empty());
    tokio::time::sleep(f.after_visibility()).await;
    let second = f.queue.receive(1, Duration::from_secs(1)).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(
        (second[0].id.as_str(), second[0].body.as_str()),
        (id.as_str(), "retry me")
    );
    assert_eq!(second[0].receive_count, 2);
    assert_ne!(second[0].receipt, first[0].receipt, "each delivery has its own receipt");
    f.queue.ack(&second[0].receipt).await.unwrap();
    tokio::time::sleep(f.after_visibility()).await;
    assert!(f.queue.receive(1, Duration::ZERO).await.unwrap().is_empty());
}

async fn messages_move_to_the_dead_letter_queue_after_max_receives(f: Fixture) {
    let id = f.queue.send("poison").await.unwrap();
    for attempt in 1..=f.max_receives {
        let received = f.queue.receive(1, Duration::from_secs(1)).await.unwrap();
        assert_eq!(received.len(), 1, "delivery {attempt}");
        assert_eq!(received[0].receive_count, attempt);
        tokio::time::sleep(f.after_visibility()).await;
    }
    // Received max_receives times and never acknowledged: the next receive moves it.
    assert!(f.queue.receive(1, Duration::ZERO).await.unwrap().is_empty());
    let dead = f.dead_letters.receive(10, Duration::from_secs(1)).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].id.as_str(), dead[0].body.as_str()), (id.as_str(), "poison"));
    f.dead_letters.ack(&dead[0].receipt).await.unwrap();
    assert!(f.queue.receive(1, Duration::ZERO).await.unwrap().is_empty());
}

async fn receive_waits_then_returns_empty(f: Fixture) {
    let started = Instant::now();
    let received = f.queue.receive(10, Duration::from_secs(1)).await.unwrap();
    let waited = started.elapsed();
    assert!(received.is_empty());
    assert!(
        waited >= Duration::from_millis(900),
        "returned after {waited:?}, before the wait was over"
    );
    assert!(waited < Duration::from_secs(4), "waited {waited:?}");
}

async fn a_waiting_receive_returns_when_a_message_arrives(f: Fixture) {
    let sender = f.queue.clone();
    let send = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        sender.send("late").await
    });
    let started = Instant::now();
    let received = f.queue.receive(10, Duration::from_secs(10)).await.unwrap();
    let waited = started.elapsed();
    send.await.unwrap().unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body, "late");
    assert!(
        waited < Duration::from_secs(3),
        "waited {waited:?} for a message sent after 300ms"
    );
}

async fn a_receive_returns_at_most_ten(f: Fixture) {
    let mut sent = BTreeSet::new();
    for i in 0..15 {
        sent.insert(f.queue.send(&format!("m{i}")).await.unwrap());
    }
    let mut seen = BTreeSet::new();
    for _ in 0..10 {
        let batch = f.queue.receive(15, Duration::from_secs(1)).await.unwrap();
        assert!(batch.len() <= 10, "got {} messages in one receive", batch.len());
        for message in batch {
            assert!(
                seen.insert(message.id.clone()),
                "message {} delivered twice while in flight",
                message.id
            );
            f.queue.ack(&message.receipt).await.unwrap();
        }
        if seen.len() == sent.len() {
            break;
        }
    }
    assert_eq!(seen, sent);
    assert!(
        f.queue.receive(0, Duration::from_secs(1)).await.unwrap().is_empty(),
        "max 0 asks for nothing"
    );
}

async fn bodies_are_kept_exactly_and_bad_ones_refused(f: Fixture) {
    let unicode = "Malipo ✓ — KSh 1,000 🙂 \"quoted\" <xml> & tabs\tand\nlines";
    f.queue.send(unicode).await.unwrap();
    let received = f.queue.receive(1, Duration::from_secs(1)).await.unwrap();
    assert_eq!(received[0].body, unicode);
    assert!(matches!(f.queue.send("").await, Err(QueueError::Refused(_))));
    assert!(matches!(
        f.queue.send("nul \u{0} byte").await,
        Err(QueueError::Refused(_))
    ));
    assert!(matches!(
        f.queue.send(&"x".repeat(MAX_MESSAGE_BYTES + 1)).await,
        Err(QueueError::Refused(_))
    ));
    f.queue.send(&"x".repeat(MAX_MESSAGE_BYTES)).await.unwrap();
    assert!(matches!(
        f.queue.ack("not-a-receipt").await,
        Err(QueueError::Refused(_))
    ));
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        /// The in-memory adapter.
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::memory()).await
                }
            )*
        }

        /// The SQS adapter, on moto.
        mod sqs {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::sqs().await).await
                }
            )*
        }
    };
}

contract!(
    send_receive_ack,
    unacked_messages_come_back_after_the_visibility_timeout,
    messages_move_to_the_dead_letter_queue_after_max_receives,
    receive_waits_then_returns_empty,
    a_waiting_receive_returns_when_a_message_arrives,
    a_receive_returns_at_most_ten,
    bodies_are_kept_exactly_and_bad_ones_refused,
);

/// The memory queue's helpers track where messages are.
#[tokio::test]
async fn memory_queue_counts_visible_and_in_flight_messages() {
    let queue = MemoryQueue::new(MemoryQueueOptions {
        visibility_timeout: Duration::from_millis(500),
        max_receives: 1,
    });
    queue.send("a").await.unwrap();
    queue.send("b").await.unwrap();
    assert_eq!((queue.len(), queue.in_flight()), (2, 0));
    let received = queue.receive(1, Duration::ZERO).await.unwrap();
    assert_eq!((queue.len(), queue.in_flight()), (1, 1));
    queue.ack(&received[0].receipt).await.unwrap();
    assert_eq!((queue.len(), queue.in_flight()), (1, 0));
    queue.receive(1, Duration::ZERO).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!((queue.len(), queue.in_flight()), (1, 0));
    assert!(queue.receive(1, Duration::ZERO).await.unwrap().is_empty());
    assert_eq!((queue.len(), queue.dead_letters().len()), (0, 1));
}
