//! Redis Cluster membership: the bus protocol (`codec`, independent of the
//! server), the node table and nodes.conf (`state`), and the bus thread
//! (`bus`). The shards never touch this state: they read the slot map
//! snapshot the bus publishes (`server::cluster::Cluster`).

pub mod bus;
pub mod codec;
pub mod failover;
mod receive;
pub mod state;
