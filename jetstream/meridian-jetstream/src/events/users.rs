//! Events of the users service, on the users stream.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{envelope::Event, naming::StreamKind};

/// A person registered; the notifications worker welcomes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRegisteredV1 {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
}

impl Event for UserRegisteredV1 {
    const STREAM: StreamKind = StreamKind::Users;
    const TYPE: &'static str = "users.user_registered.v1";
}
