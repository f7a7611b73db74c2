//! Set values.

use indexmap::IndexSet;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Set {
    pub members: IndexSet<Vec<u8>>,
}
