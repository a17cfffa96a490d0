//! The stages of filing a mail, and what a panic in one of them said: named so that a
//! quarantine reason says where filing failed, and a test can make any stage panic.

/// The stages of filing a mail, named so a failure says where it happened (and so a test
/// can make one of them panic: [`Pipeline::with_stage_hook`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Stage {
    Routing = 0,
    Classify = 1,
    Decide = 2,
    Apply = 3,
    Render = 4,
}

impl Stage {
    /// "while …", for a quarantine reason.
    pub fn doing(self) -> &'static str {
        match self {
            Stage::Routing => "routing it",
            Stage::Classify => "classifying it",
            Stage::Decide => "deciding what it becomes",
            Stage::Apply => "writing it",
            Stage::Render => "rendering a mail about it",
        }
    }

    pub(crate) fn from_u8(n: u8) -> Stage {
        match n {
            0 => Stage::Routing,
            1 => Stage::Classify,
            2 => Stage::Decide,
            4 => Stage::Render,
            _ => Stage::Apply,
        }
    }
}

/// Called as each stage starts, with the mail's subject. Does nothing in the gateway; a
/// test gives one that panics at the stage it checks.
pub type StageHook = fn(Stage, &str);

pub(crate) fn no_hook(_: Stage, _: &str) {}

/// What a panic said, for the log line that reports it.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}
