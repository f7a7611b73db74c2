//! Stream values.

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stream {
    /// Entries as (ms, seq) -> field/value pairs, in ID order.
    pub entries: std::collections::BTreeMap<(u64, u64), Vec<(Vec<u8>, Vec<u8>)>>,
}
