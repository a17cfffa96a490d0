//! Pure domain types: no I/O, no async. Each parses once at the edge so that the rest of
//! the gateway never handles an unchecked code, address, status or tier.

pub mod email_address;
pub mod event;
pub mod language;
pub mod load;
pub mod reference_code;
pub mod service_level;
pub mod ticket;

pub use email_address::EmailAddress;
pub use event::{Actor, EventKind};
pub use language::Language;
pub use load::Load;
pub use reference_code::{CodePrefix, ReferenceCode};
pub use service_level::{Dues, Fired, SelfServiceHold, TicketClock};
pub use ticket::{Category, Priority, Refusal, StatusMove, TicketStatus, Tier, TierMove};
