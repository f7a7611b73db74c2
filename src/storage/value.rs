//! A key's value: one variant per Redis type.

use super::strval::Str;

/// A value: one variant per Redis type (HyperLogLog is a Str, as in Redis).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Short strings inline (see `Str`).
    Str(Str),
    // Small collections sit in the 40 bytes a string needs anyway (one
    // allocation fewer per key); lists and streams are boxed to keep the
    // enum at 40 bytes.
    List(Box<super::list::List>),
    Hash(super::hash::Hash),
    Set(super::set::Set),
    ZSet(super::zset::ZSet),
    Stream(Box<super::stream::Stream>),
}

impl Value {
    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }
}

const _: () = assert!(std::mem::size_of::<Value>() == 40);
