//! Events of the notifications service, on the notifications stream: what it is asked to send,
//! and what it could not.

use serde::{Deserialize, Serialize};

use crate::{envelope::Event, envelope::RawEnvelope, naming::StreamKind};

/// An admin asked for a message (`POST /notifications/send`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendRequestedV1 {
    /// `email`, `sms` or `push`.
    pub channel: String,
    /// An e-mail address, an E.164 phone number or a device token.
    pub to: String,
    pub template: String,
    pub data: serde_json::Value,
}

impl Event for SendRequestedV1 {
    const STREAM: StreamKind = StreamKind::Notifications;
    const TYPE: &'static str = "notifications.send_requested.v1";
}

/// An event the notifications worker gave up on after its last delivery (or at once, when it
/// could never be sent): the original, whole, with why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetteredV1 {
    pub original: RawEnvelope,
    /// The durable consumer that gave up.
    pub consumer: String,
    pub attempts: u32,
    pub error: String,
}

impl Event for DeadLetteredV1 {
    const STREAM: StreamKind = StreamKind::Notifications;
    const TYPE: &'static str = "notifications.dead_lettered.v1";
}

/// An admin asked for a dead letter to be tried again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayRequestedV1 {
    pub original: RawEnvelope,
}

impl Event for ReplayRequestedV1 {
    const STREAM: StreamKind = StreamKind::Notifications;
    const TYPE: &'static str = "notifications.replay_requested.v1";
}
