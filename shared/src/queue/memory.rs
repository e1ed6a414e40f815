//! In-process [`Queue`] with SQS standard-queue semantics, for unit tests and the dev stack.
//!
//! One mutex guards the queue's maps (never held across an `.await`); a `Notify` wakes
//! receivers waiting on an empty queue, and a receive that is waiting also wakes when the next
//! in-flight message's visibility timeout ends. Messages received more than `max_receives`
//! times move to the attached dead-letter queue, as an SQS redrive policy does.
//!
//! Like SQS, a receipt is valid only for its own delivery: acknowledging with the receipt of an
//! earlier delivery succeeds but deletes nothing.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Message, Queue, QueueError, MAX_MESSAGE_BYTES};

/// SQS returns at most this many messages per receive.
pub const MAX_RECEIVE_BATCH: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryQueueOptions {
    /// How long a received message stays invisible before it is delivered again.
    pub visibility_timeout: Duration,
    /// Receives after which the next receive moves the message to the dead-letter queue
    /// (SQS's `maxReceiveCount`); 0 disables the dead-letter redrive.
    pub max_receives: u32,
}

pub struct MemoryQueue {
    options: MemoryQueueOptions,
    state: Mutex<State>,
    arrived: Notify,
    dead_letters: Option<Arc<MemoryQueue>>,
}

struct Stored {
    id: String,
    body: String,
    receive_count: u32,
    /// Bumped on every delivery; a receipt names the delivery it came from.
    delivery: u32,
    in_flight: bool,
}

#[derive(Default)]
struct State {
    next_seq: u64,
    messages: HashMap<u64, Stored>,
    /// Visible messages, oldest first.
    ready: VecDeque<u64>,
    /// (visible again at, seq, delivery); stale entries (acked or redelivered) are skipped.
    in_flight: BinaryHeap<Reverse<(Instant, u64, u32)>>,
    in_flight_count: usize,
}

impl State {
    /// Makes messages whose visibility timeout has ended visible again.
    fn release_due(&mut self, now: Instant) {
        while let Some(Reverse((due, seq, delivery))) = self.in_flight.peek().copied() {
            if due > now {
                break;
            }
            self.in_flight.pop();
            if let Some(message) = self.messages.get_mut(&seq) {
                if message.in_flight && message.delivery == delivery {
                    message.in_flight = false;
                    self.in_flight_count -= 1;
                    self.ready.push_back(seq);
                }
            }
        }
    }

    /// When the next in-flight message becomes visible (a live entry or a stale one; both only
    /// cost a wake-up).
    fn next_due(&self) -> Option<Instant> {
        self.in_flight.peek().map(|Reverse((due, _, _))| *due)
    }

    fn push(&mut self, id: String, body: String, receive_count: u32) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.messages.insert(
            seq,
            Stored {
                id,
                body,
                receive_count,
                delivery: 0,
                in_flight: false,
            },
        );
        self.ready.push_back(seq);
    }
}

impl MemoryQueue {
    /// A queue with its own dead-letter queue (which has none itself).
    pub fn new(options: MemoryQueueOptions) -> MemoryQueue {
        let dead_letters = MemoryQueue::without_redrive(options.visibility_timeout);
        MemoryQueue {
            options,
            state: Mutex::default(),
            arrived: Notify::new(),
            dead_letters: Some(Arc::new(dead_letters)),
        }
    }

    fn without_redrive(visibility_timeout: Duration) -> MemoryQueue {
        MemoryQueue {
            options: MemoryQueueOptions {
                visibility_timeout,
                max_receives: 0,
            },
            state: Mutex::default(),
            arrived: Notify::new(),
            dead_letters: None,
        }
    }

    /// The dead-letter queue (an empty one without redrive, for a dead-letter queue itself).
    pub fn dead_letters(&self) -> Arc<MemoryQueue> {
        match &self.dead_letters {
            Some(queue) => queue.clone(),
            None => Arc::new(MemoryQueue::without_redrive(self.options.visibility_timeout)),
        }
    }

    /// Messages waiting to be received (SQS's ApproximateNumberOfMessages).
    pub fn len(&self) -> usize {
        let mut state = self.lock();
        state.release_due(Instant::now());
        state.ready.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Messages received and neither acknowledged nor visible again
    /// (SQS's ApproximateNumberOfMessagesNotVisible).
    pub fn in_flight(&self) -> usize {
        let mut state = self.lock();
        state.release_due(Instant::now());
        state.in_flight_count
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; recover the state if something ever did.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn enqueue(&self, id: String, body: String, receive_count: u32) {
        self.lock().push(id, body, receive_count);
        self.arrived.notify_waiters();
    }

    /// Takes up to `max` visible messages now; `Err(next_due)` when there are none.
    fn take(&self, max: usize) -> Result<Vec<Message>, Option<Instant>> {
        let now = Instant::now();
        let mut dead = Vec::new();
        let mut taken = Vec::new();
        let next_due = {
            let mut state = self.lock();
            state.release_due(now);
            let max_receives = self.options.max_receives;
            let visible_at = now + self.options.visibility_timeout;
            while taken.len() < max {
                let Some(seq) = state.ready.pop_front() else { break };
                let Some(message) = state.messages.get_mut(&seq) else {
                    continue;
                };
                if self.dead_letters.is_some() && max_receives > 0 && message.receive_count >= max_receives {
                    if let Some(message) = state.messages.remove(&seq) {
                        dead.push(message);
                    }
                    continue;
                }
                message.receive_count = message.receive_count.saturating_add(1);
                message.delivery = message.delivery.wrapping_add(1);
                message.in_flight = true;
                taken.push(Message {
                    id: message.id.clone(),
                    body: message.body.clone(),
                    receipt: format!("{seq}.{}", message.delivery),
                    receive_count: message.receive_count,
                });
                let delivery = message.delivery;
                state.in_flight.push(Reverse((visible_at, seq, delivery)));
                state.in_flight_count += 1;
            }
            state.next_due()
        };
        // Outside our lock: the dead-letter queue has its own.
        if let Some(dead_letters) = &self.dead_letters {
            for message in dead {
                // The message keeps its id and receive count, as SQS's redrive does.
                dead_letters.enqueue(message.id, message.body, message.receive_count);
            }
        }
        if taken.is_empty() {
            Err(next_due)
        } else {
            Ok(taken)
        }
    }
}

/// SQS accepts 1 byte to 256 KiB of XML-safe Unicode; refusing the same here keeps the dev
/// stack honest.
pub(crate) fn validate_body(body: &str) -> Result<(), QueueError> {
    if body.is_empty() {
        return Err(QueueError::Refused("empty message body".into()));
    }
    if body.len() > MAX_MESSAGE_BYTES {
        return Err(QueueError::Refused(format!(
            "message body is {} bytes (max {MAX_MESSAGE_BYTES})",
            body.len()
        )));
    }
    let allowed =
        |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..);
    if let Some(position) = body.chars().position(|c| !allowed(c)) {
        return Err(QueueError::Refused(format!(
            "message body has a character SQS refuses at position {position}"
        )));
    }
    Ok(())
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn send(&self, body: &str) -> Result<String, QueueError> {
        validate_body(body)?;
        let id = ulid::Ulid::new().to_string();
        self.enqueue(id.clone(), body.to_owned(), 0);
        Ok(id)
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Message>, QueueError> {
        let max = max.min(MAX_RECEIVE_BATCH);
        if max == 0 {
            return Ok(Vec::new());
        }
        let deadline = Instant::now() + wait;
        loop {
            // Register interest before looking, so a send between the look and the wait is
            // not missed.
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let next_due = match self.take(max) {
                Ok(messages) => return Ok(messages),
                Err(next_due) => next_due,
            };
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let wake = next_due.map_or(deadline, |due| due.min(deadline)).max(now);
            let _ = tokio::time::timeout_at(wake, arrived).await;
        }
    }

    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        let parsed = receipt
            .split_once('.')
            .and_then(|(seq, delivery)| Some((seq.parse::<u64>().ok()?, delivery.parse::<u32>().ok()?)));
        let Some((seq, delivery)) = parsed else {
            return Err(QueueError::Refused("receipt handle is invalid".into()));
        };
        let mut state = self.lock();
        let current = state
            .messages
            .get(&seq)
            .is_some_and(|m: &Stored| m.delivery == delivery);
        if current {
            if let Some(message) = state.messages.remove(&seq) {
                if message.in_flight {
                    state.in_flight_count -= 1;
                } else {
                    // Visible again but not yet redelivered: SQS still honours the receipt.
                    state.ready.retain(|s| *s != seq);
                }
            }
        }
        Ok(())
    }

    async fn depth(&self) -> Result<u64, QueueError> {
        Ok(self.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(max_receives: u32) -> MemoryQueue {
        MemoryQueue::new(MemoryQueueOptions {
            visibility_timeout: Duration::from_millis(300),
            max_receives,
        })
    }

    #[tokio::test]
    async fn stale_receipts_delete_nothing() {
        let q = queue(0);
        q.send("a").await.unwrap();
        let first = q.receive(1, Duration::ZERO).await.unwrap();
        tokio::time::sleep(Duration::from_millis(350)).await;
        let second = q.receive(1, Duration::ZERO).await.unwrap();
        assert_eq!(second[0].receive_count, 2);
        q.ack(&first[0].receipt).await.unwrap();
        assert_eq!(q.in_flight(), 1);
        q.ack(&second[0].receipt).await.unwrap();
        assert_eq!((q.len(), q.in_flight()), (0, 0));
        assert!(q.ack("nonsense").await.is_err());
    }

    #[tokio::test]
    async fn bodies_sqs_refuses_are_refused() {
        let q = queue(0);
        assert!(q.send("").await.is_err());
        assert!(q.send("a\u{0}b").await.is_err());
        assert!(q.send(&"x".repeat(MAX_MESSAGE_BYTES + 1)).await.is_err());
        assert!(q.send("ünïcødé ✓ 🙂").await.is_ok());
    }

    #[tokio::test]
    async fn a_waiting_receive_wakes_when_visibility_ends() {
        let q = queue(0);
        q.send("a").await.unwrap();
        q.receive(1, Duration::ZERO).await.unwrap();
        let started = Instant::now();
        let again = q.receive(1, Duration::from_secs(2)).await.unwrap();
        assert_eq!(again.len(), 1);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
