//! Stream values.

/// An entry's field/value pairs.
pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stream {
    /// Entries as (ms, seq) -> field/value pairs, in ID order.
    pub entries: std::collections::BTreeMap<(u64, u64), Fields>,
}
