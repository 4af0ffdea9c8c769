//! Where a batch taken from a broker lies: per partition, its first and last offset. A batch is
//! committed past (the group will not hand it out again) once handled, or rewound to (read again)
//! when its handling failed. Both wait on the broker, so they run off the runtime's threads.

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use std::sync::Arc;
use std::time::Duration;

/// How long a failed batch's partitions may take to rewind.
const SEEK_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Default, Clone)]
pub struct Spans(Vec<(String, i32, i64, i64)>);

impl Spans {
    /// Notes a message taken at `offset` of `topic`'s `partition`.
    pub fn note(&mut self, topic: &str, partition: i32, offset: i64) {
        match self.0.iter_mut().find(|s| s.0 == topic && s.1 == partition) {
            Some(span) => span.3 = offset,
            None => self.0.push((topic.to_owned(), partition, offset, offset)),
        }
    }

    /// Commits `consumer`'s offsets past the batch.
    pub async fn commit(&self, consumer: &Arc<StreamConsumer>) -> Result<(), KafkaError> {
        let mut offsets = TopicPartitionList::with_capacity(self.0.len());
        for (topic, partition, _, last) in &self.0 {
            offsets.add_partition_offset(topic, *partition, Offset::Offset(last + 1))?;
        }
        let consumer = consumer.clone();
        tokio::task::spawn_blocking(move || consumer.commit(&offsets, CommitMode::Sync))
            .await
            .unwrap_or(Err(KafkaError::Canceled))
    }

    /// Reads the batch's partitions again from its first offsets. A partition the group has
    /// meanwhile moved elsewhere starts from its committed offset there instead.
    pub async fn rewind(&self, consumer: &Arc<StreamConsumer>) {
        let (consumer, spans) = (consumer.clone(), self.0.clone());
        let _ = tokio::task::spawn_blocking(move || {
            for (topic, partition, first, _) in spans {
                if let Err(e) =
                    consumer.seek(&topic, partition, Offset::Offset(first), SEEK_TIMEOUT)
                {
                    tracing::warn!(topic, partition, error = %e, "rewinding a failed batch");
                }
            }
        })
        .await;
    }
}
