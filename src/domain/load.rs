//! How busy an agent is, as the store counts it and the roster weighs it.

use crate::clock::Millis;

/// How busy an agent is now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Load {
    pub open_tickets: u32,
    pub last_assigned_at: Option<Millis>,
}
