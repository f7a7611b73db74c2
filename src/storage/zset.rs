//! Sorted set values.

use std::collections::HashMap;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ZSet {
    pub scores: HashMap<Vec<u8>, f64>,
}
