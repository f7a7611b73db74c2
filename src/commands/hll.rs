//! hll commands.

use super::table::Command;

pub fn commands() -> Vec<Command> {
    vec![]
}
