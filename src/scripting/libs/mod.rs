//! The libraries Redis preloads for scripts, reimplemented in Rust over the
//! Lua C API with the same behaviour and error messages: cjson (lua-cjson
//! 2.1.0), cmsgpack (lua-cmsgpack 0.4.0), bit (LuaBitOp), struct.

pub mod bit;
pub mod cjson;
pub mod cmsgpack;
pub mod structlib;
