//! How librdkafka's errors become [`LogError`]s: one deliberate table ([`classify`]), so that
//! callers above the `Log` trait can trust [`LogError::is_retriable`] and the HTTP layer's
//! 500-vs-503 split.
//!
//! - Transport failures, timeouts, leaders or coordinators moving or loading, rebalances in
//!   progress, full queues → [`LogError::Timeout`] / [`LogError::Backend`] (retriable).
//! - Invalid configuration or arguments, unknown topics and partitions, records too large,
//!   offsets out of range, authorization failures, unknown members and stale generations →
//!   the matching non-retriable variant.
//! - A client in a fatal state, or an answer this crate should have handled before asking
//!   (e.g. a partition EOF event reaching the error path) → [`LogError::Internal`].
//! - A code not in the table → [`LogError::Backend`] naming the code: an unknown broker
//!   complaint is treated as transient rather than as the caller's fault.

use fleetwatch_core::{LogError, Watermarks};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use std::fmt;

/// What was being done when an error came back, with what is known of the target. Only the
/// fields a variant needs are read; the rest only enrich the message.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Op<'a> {
    /// The action, e.g. "producing to", "reading", "committing offsets of".
    pub what: &'a str,
    pub topic: Option<&'a str>,
    pub partition: Option<i32>,
    /// The topic's partition count, when known.
    pub partitions: Option<i32>,
    pub offset: Option<i64>,
    /// The partition's range when the request was made, when known.
    pub range: Option<Watermarks>,
    /// (record size, limit) of a produce.
    pub record: Option<(usize, usize)>,
    pub group: Option<&'a str>,
    pub member: Option<&'a str>,
    pub generation: Option<i32>,
}

impl<'a> Op<'a> {
    pub(crate) fn new(what: &'a str) -> Self {
        Op {
            what,
            ..Op::default()
        }
    }

    pub(crate) fn topic(mut self, topic: &'a str) -> Self {
        self.topic = Some(topic);
        self
    }

    pub(crate) fn partition(mut self, topic: &'a str, partition: i32) -> Self {
        self.topic = Some(topic);
        self.partition = Some(partition);
        self
    }

    pub(crate) fn partitions(mut self, partitions: i32) -> Self {
        self.partitions = Some(partitions);
        self
    }

    pub(crate) fn offset(mut self, offset: i64) -> Self {
        self.offset = Some(offset);
        self
    }

    pub(crate) fn range(mut self, range: Watermarks) -> Self {
        self.range = Some(range);
        self
    }

    pub(crate) fn record(mut self, size: usize, limit: usize) -> Self {
        self.record = Some((size, limit));
        self
    }

    pub(crate) fn group(mut self, group: &'a str) -> Self {
        self.group = Some(group);
        self
    }

    pub(crate) fn member(mut self, member: &'a str, generation: i32) -> Self {
        self.member = Some(member);
        self.generation = Some(generation);
        self
    }
}

impl fmt::Display for Op<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)?;
        match (self.topic, self.partition) {
            (Some(t), Some(p)) => write!(f, " {t}-{p}")?,
            (Some(t), None) => write!(f, " {t}")?,
            _ => {}
        }
        if let Some(o) = self.offset {
            write!(f, " at {o}")?;
        }
        if let Some(g) = self.group {
            write!(f, " (group {g})")?;
        }
        Ok(())
    }
}

/// The [`LogError`] for `e`, which came back while doing `op` (see the module doc).
pub(crate) fn classify(e: &KafkaError, op: &Op<'_>) -> LogError {
    let msg = || format!("{op}: {e}");
    match e {
        KafkaError::Canceled => LogError::Closed,
        KafkaError::ClientConfig(_, desc, key, value) => LogError::invalid(
            format!("kafka client property {key} = {value:?}"),
            desc.clone(),
        ),
        KafkaError::ClientCreation(s) => LogError::invalid("kafka client configuration", s),
        KafkaError::AdminOpCreation(s) | KafkaError::Subscription(s) => {
            LogError::invalid(op.to_string(), s)
        }
        KafkaError::Nul(_) => LogError::invalid(op.to_string(), "a name contains a NUL byte"),
        KafkaError::NoMessageReceived => LogError::Timeout(msg()),
        KafkaError::PartitionEOF(p) => LogError::Internal(format!(
            "{op}: end of partition {p} reached the error path (it is not an error)"
        )),
        // String-only state errors ("Erroneous state" while a fetch position is set up).
        KafkaError::Seek(_) | KafkaError::PauseResume(_) => LogError::Backend(msg()),
        KafkaError::MessageConsumptionFatal(_) => LogError::Internal(msg()),
        KafkaError::Transaction(t) => classify_code(t.code(), op, &msg()),
        KafkaError::AdminOp(code) => classify_code(*code, op, &msg()),
        other => match other.rdkafka_error_code() {
            Some(code) => classify_code(code, op, &msg()),
            None => LogError::Backend(msg()),
        },
    }
}

/// The table by error code; `msg` is the full message (operation and librdkafka's text).
pub(crate) fn classify_code(code: RDKafkaErrorCode, op: &Op<'_>, msg: &str) -> LogError {
    use RDKafkaErrorCode as C;
    let msg = msg.to_string();
    match code {
        C::OperationTimedOut | C::MessageTimedOut | C::RequestTimedOut | C::TimedOutQueue => {
            LogError::Timeout(msg)
        }
        C::BrokerTransportFailure
        | C::AllBrokersDown
        | C::Resolve
        | C::NetworkException
        | C::BrokerNotAvailable
        | C::LeaderNotAvailable
        | C::NotLeaderForPartition
        | C::ReplicaNotAvailable
        | C::PreferredLeaderNotAvailable
        | C::CoordinatorLoadInProgress
        | C::CoordinatorNotAvailable
        | C::NotCoordinator
        | C::WaitingForCoordinator
        | C::NotController
        | C::NotEnoughReplicas
        | C::NotEnoughReplicasAfterAppend
        | C::ISRInsufficient
        | C::KafkaStorageError
        | C::RebalanceInProgress
        | C::QueueFull
        | C::ThrottlingQuotaExceeded
        | C::FencedLeaderEpoch
        | C::UnknownLeaderEpoch
        | C::OffsetNotAvailable
        | C::UnstableOffsetCommit
        | C::InvalidMessage
        | C::Retry
        | C::InProgress
        | C::PreviousInProgress
        | C::NodeUpdate
        | C::Interrupted
        | C::State
        | C::AssignmentLost
        | C::MemberIdRequired
        | C::RebootstrapRequired => LogError::Backend(msg),
        C::BrokerDestroy | C::DestroyBroker => LogError::Closed,
        C::UnknownTopicOrPartition | C::UnknownTopic | C::UnknownTopicId => {
            match (op.topic, op.partition, op.partitions) {
                (Some(t), Some(p), Some(n)) if code == C::UnknownTopicOrPartition && p >= n => {
                    LogError::UnknownPartition {
                        topic: t.to_string(),
                        partition: p,
                        partitions: n,
                    }
                }
                (Some(t), _, _) => LogError::UnknownTopic(t.to_string()),
                (None, _, _) => LogError::invalid("topic", msg),
            }
        }
        C::UnknownPartition => match (op.topic, op.partition) {
            (Some(t), Some(p)) => LogError::UnknownPartition {
                topic: t.to_string(),
                partition: p,
                partitions: op.partitions.unwrap_or(-1),
            },
            _ => LogError::invalid("partition", msg),
        },
        C::MessageSizeTooLarge | C::InvalidMessageSize | C::MessageBatchTooLarge => {
            match (op.topic, op.record) {
                (Some(t), Some((size, limit))) => LogError::RecordTooLarge {
                    topic: t.to_string(),
                    size,
                    limit,
                },
                _ => LogError::invalid("record size", msg),
            }
        }
        C::OffsetOutOfRange | C::AutoOffsetReset | C::LogTruncation => {
            match (op.topic, op.partition, op.offset, op.range) {
                (Some(t), Some(p), Some(o), Some(r)) => LogError::OffsetOutOfRange {
                    topic: t.to_string(),
                    partition: p,
                    offset: o,
                    log_start: r.log_start,
                    high_watermark: r.high,
                },
                _ => LogError::invalid("offset", msg),
            }
        }
        C::TopicAlreadyExists => LogError::TopicExists(op.topic.unwrap_or_default().to_string()),
        C::InvalidTopic => LogError::InvalidTopicName {
            name: op.topic.unwrap_or_default().to_string(),
            reason: msg,
        },
        C::TopicAuthorizationFailed
        | C::GroupAuthorizationFailed
        | C::ClusterAuthorizationFailed
        | C::TransactionalIdAuthorizationFailed
        | C::SaslAuthenticationFailed
        | C::Authentication
        | C::SSL
        | C::UnsupportedSASLMechanism
        | C::IllegalSASLState
        | C::SecurityDisabled => LogError::invalid("kafka credentials or ACLs", msg),
        C::InvalidPartitions
        | C::InvalidReplicationFactor
        | C::InvalidReplicaAssignment
        | C::InvalidConfig
        | C::InvalidRequiredAcks
        | C::InvalidArgument
        | C::InvalidTimestamp
        | C::InvalidRequest
        | C::InvalidRecord
        | C::PolicyViolation
        | C::InvalidGroupId
        | C::InvalidSessionTimeout
        | C::InconsistentGroupProtocol
        | C::InvalidCommitOffsetSize
        | C::OffsetMetadataTooLarge
        | C::UnsupportedCompressionType
        | C::GroupMaxSizeReached
        | C::InvalidType
        | C::ExistingSubscription
        | C::NotConfigured
        | C::Conflict => LogError::invalid(op.to_string(), msg),
        C::UnknownMemberId | C::FencedInstanceId => LogError::UnknownMember {
            group: op.group.unwrap_or_default().to_string(),
            member: op.member.unwrap_or_default().to_string(),
        },
        // The broker does not say which generation is current: -1.
        C::IllegalGeneration | C::StaleMemberEpoch | C::FencedMemberEpoch => {
            LogError::IllegalGeneration {
                group: op.group.unwrap_or_default().to_string(),
                generation: op.generation.unwrap_or(-1),
                current: -1,
            }
        }
        C::UnsupportedVersion
        | C::NotImplemented
        | C::UnsupportedFeature
        | C::UnsupportedForMessageFormat
        | C::TopicDeletionDisabled
        | C::UnsupportedAssignor
        | C::UnknownProtocol => LogError::Unsupported(msg),
        // The client is in a state it cannot leave (idempotence broken, fenced, fatal).
        C::Fatal
        | C::OutOfOrderSequenceNumber
        | C::ProducerFenced
        | C::InvalidProducerEpoch
        | C::Fenced
        | C::Inconsistent
        | C::GaplessGuarantee
        | C::PartitionEOF => LogError::Internal(msg),
        _ => LogError::Backend(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::types::RDKafkaConfRes;

    /// Which variant, by name, so the table reads as one.
    fn kind(e: &LogError) -> &'static str {
        match e {
            LogError::InvalidTopicName { .. } => "InvalidTopicName",
            LogError::Invalid { .. } => "Invalid",
            LogError::UnknownTopic(_) => "UnknownTopic",
            LogError::TopicExists(_) => "TopicExists",
            LogError::UnknownPartition { .. } => "UnknownPartition",
            LogError::OffsetOutOfRange { .. } => "OffsetOutOfRange",
            LogError::RecordTooLarge { .. } => "RecordTooLarge",
            LogError::UnknownMember { .. } => "UnknownMember",
            LogError::IllegalGeneration { .. } => "IllegalGeneration",
            LogError::Backend(_) => "Backend",
            LogError::Timeout(_) => "Timeout",
            LogError::Internal(_) => "Internal",
            LogError::Unsupported(_) => "Unsupported",
            LogError::Closed => "Closed",
            _ => "other",
        }
    }

    #[test]
    fn codes_map_to_deliberate_variants() {
        use RDKafkaErrorCode as C;
        let produce = Op::new("producing to")
            .partition("t", 3)
            .partitions(2)
            .record(2_000_000, 1_048_576);
        let read = Op::new("reading")
            .partition("t", 0)
            .offset(7)
            .range(Watermarks {
                log_start: 2,
                high: 5,
            });
        let commit = Op::new("committing offsets of").group("g").member("m-1", 4);
        let bare = Op::new("fetching metadata");
        #[rustfmt::skip]
        let table: &[(KafkaError, &Op<'_>, &str, bool)] = &[
            // transport, timeouts, leadership and coordinators: retriable
            (KafkaError::MessageProduction(C::BrokerTransportFailure), &produce, "Backend", true),
            (KafkaError::MetadataFetch(C::AllBrokersDown), &bare, "Backend", true),
            (KafkaError::MetadataFetch(C::OperationTimedOut), &bare, "Timeout", true),
            (KafkaError::MessageProduction(C::MessageTimedOut), &produce, "Timeout", true),
            (KafkaError::MessageProduction(C::RequestTimedOut), &produce, "Timeout", true),
            (KafkaError::MessageProduction(C::NotLeaderForPartition), &produce, "Backend", true),
            (KafkaError::MessageProduction(C::LeaderNotAvailable), &produce, "Backend", true),
            (KafkaError::ConsumerCommit(C::CoordinatorLoadInProgress), &commit, "Backend", true),
            (KafkaError::ConsumerCommit(C::NotCoordinator), &commit, "Backend", true),
            (KafkaError::ConsumerCommit(C::RebalanceInProgress), &commit, "Backend", true),
            (KafkaError::MessageProduction(C::QueueFull), &produce, "Backend", true),
            (KafkaError::MessageProduction(C::NotEnoughReplicas), &produce, "Backend", true),
            (KafkaError::NoMessageReceived, &read, "Timeout", true),
            (KafkaError::Seek("Local: Erroneous state".into()), &read, "Backend", true),
            (KafkaError::MessageProduction(C::Unknown), &produce, "Backend", true),
            // the caller's mistake, or a name that does not exist: not retriable
            (KafkaError::ClientConfig(RDKafkaConfRes::RD_KAFKA_CONF_INVALID, "bad".into(), "acks".into(), "x".into()), &bare, "Invalid", false),
            (KafkaError::ClientCreation("no such property".into()), &bare, "Invalid", false),
            (KafkaError::AdminOp(C::InvalidConfig), &bare, "Invalid", false),
            (KafkaError::AdminOp(C::InvalidReplicationFactor), &bare, "Invalid", false),
            (KafkaError::MessageProduction(C::UnknownPartition), &produce, "UnknownPartition", false),
            (KafkaError::MessageProduction(C::UnknownTopicOrPartition), &produce, "UnknownPartition", false),
            (KafkaError::MessageConsumption(C::UnknownTopicOrPartition), &read, "UnknownTopic", false),
            (KafkaError::MessageProduction(C::UnknownTopic), &produce, "UnknownTopic", false),
            (KafkaError::MetadataFetch(C::UnknownTopic), &bare, "Invalid", false),
            (KafkaError::MessageProduction(C::MessageSizeTooLarge), &produce, "RecordTooLarge", false),
            (KafkaError::MessageProduction(C::MessageSizeTooLarge), &bare, "Invalid", false),
            (KafkaError::MessageConsumption(C::OffsetOutOfRange), &read, "OffsetOutOfRange", false),
            (KafkaError::MessageConsumption(C::AutoOffsetReset), &read, "OffsetOutOfRange", false),
            (KafkaError::MessageConsumption(C::OffsetOutOfRange), &bare, "Invalid", false),
            (KafkaError::AdminOp(C::TopicAlreadyExists), &Op::new("creating topic").topic("t"), "TopicExists", false),
            (KafkaError::AdminOp(C::InvalidTopic), &Op::new("creating topic").topic("t"), "InvalidTopicName", false),
            (KafkaError::MetadataFetch(C::TopicAuthorizationFailed), &bare, "Invalid", false),
            (KafkaError::ConsumerCommit(C::UnknownMemberId), &commit, "UnknownMember", false),
            (KafkaError::ConsumerCommit(C::IllegalGeneration), &commit, "IllegalGeneration", false),
            (KafkaError::AdminOp(C::UnsupportedVersion), &bare, "Unsupported", false),
            // broken client state or invariants: Internal
            (KafkaError::MessageProduction(C::Fatal), &produce, "Internal", false),
            (KafkaError::MessageProduction(C::OutOfOrderSequenceNumber), &produce, "Internal", false),
            (KafkaError::MessageConsumptionFatal(C::Fatal), &read, "Internal", false),
            (KafkaError::PartitionEOF(0), &read, "Internal", false),
            (KafkaError::Canceled, &produce, "Closed", false),
        ];
        for (e, op, want, retriable) in table {
            let got = classify(e, op);
            assert_eq!(kind(&got), *want, "{e:?} while {op}: got {got:?}");
            assert_eq!(got.is_retriable(), *retriable, "{e:?}: {got:?}");
        }
    }

    #[test]
    fn variants_carry_what_the_operation_knew() {
        let produce = Op::new("producing to")
            .partition("t", 3)
            .partitions(2)
            .record(2_000_000, 1_048_576);
        match classify(
            &KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
            &produce,
        ) {
            LogError::RecordTooLarge { topic, size, limit } => {
                assert_eq!((topic.as_str(), size, limit), ("t", 2_000_000, 1_048_576));
            }
            other => panic!("{other:?}"),
        }
        let commit = Op::new("committing offsets of").group("g").member("m-1", 4);
        match classify(
            &KafkaError::ConsumerCommit(RDKafkaErrorCode::IllegalGeneration),
            &commit,
        ) {
            LogError::IllegalGeneration {
                group, generation, ..
            } => assert_eq!((group.as_str(), generation), ("g", 4)),
            other => panic!("{other:?}"),
        }
        let e = classify(
            &KafkaError::MessageProduction(RDKafkaErrorCode::BrokerTransportFailure),
            &produce,
        );
        assert!(e.to_string().contains("producing to t-3"), "{e}");
    }
}
