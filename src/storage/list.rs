//! List values.

use std::collections::VecDeque;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct List {
    pub items: VecDeque<Vec<u8>>,
}
