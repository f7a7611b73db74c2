//! Every command family's list, handed to the table once at startup.
//!
//! The families sit on top of the runtime (they run through `Ctx` and call
//! into server, replication, aof, cluster); the table and the request path
//! sit below them. So the table does not name the families: the program's
//! entry point calls `install` before anything looks a command up.

use super::table::{Command, register_families};

/// Registers every family with the command table. Idempotent.
pub fn install() {
    register_families(all);
}

fn all() -> Vec<Command> {
    let mut commands = Vec::new();
    commands.extend(super::connection::commands());
    commands.extend(super::server::commands());
    commands.extend(super::strings::commands());
    commands.extend(super::bits::commands());
    commands.extend(super::keys::commands());
    commands.extend(super::sort::commands());
    commands.extend(super::transactions::commands());
    commands.extend(super::scripting::commands());
    commands.extend(super::snapshot::commands());
    commands.extend(super::pubsub::commands());
    commands.extend(super::lists::commands());
    commands.extend(super::hashes::commands());
    commands.extend(super::sets::commands());
    commands.extend(super::zsets::commands());
    commands.extend(super::geo::commands());
    commands.extend(super::hll::commands());
    commands.extend(super::streams::commands());
    commands.extend(super::persistence::commands());
    commands.extend(super::replication::commands());
    commands.extend(super::cluster::commands());
    commands.extend(super::acl::commands());
    commands.extend(super::ops::commands());
    commands
}
