//! RESP2/RESP3 wire protocol: request parsing and reply encoding.
//! Knows nothing of the server; limits are passed in.

mod parser;
mod writer;

pub use parser::{ParseError, Parser, ParserLimits, split_args as parser_split_args};
pub use writer::{Out, err_line, fmt_double, fmt_i64};
