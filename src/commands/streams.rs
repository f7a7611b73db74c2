//! streams commands.

use super::table::Command;

pub fn commands() -> Vec<Command> {
    vec![]
}
