//! Cluster bus messages (Redis 7.0's clusterMsg): hostile frames must be
//! refused or decoded, and a decoded message must round-trip.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keel::fuzzing::cluster_bus(data));
