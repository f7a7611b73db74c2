//! Hash values.

use indexmap::IndexMap;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hash {
    pub fields: IndexMap<Vec<u8>, Vec<u8>>,
}
