//! The hasher of keys, fields and members (the keyspace dict, hashtable
//! hashes and sets).

/// Keys are user-controlled: a keyed hash (random per process) keeps
/// collision attacks out, and aHash costs a fraction of SipHash.
pub type KeyHasher = ahash::RandomState;
