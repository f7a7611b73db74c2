//! cjson (lua-cjson 2.1.0 as shipped with Redis, ENABLE_CJSON_GLOBAL).

use std::ffi::CStr;
use std::os::raw::{c_char, c_int};

use mlua::ffi::*;

use super::structlib::type_err;
use crate::scripting::lua::{LErr, cfn, fmt_g, push_bytes, to_bytes};

#[repr(C)]
#[derive(Clone, Copy)]
struct Cfg {
    sparse_convert: c_int,
    sparse_ratio: c_int,
    sparse_safe: c_int,
    encode_max_depth: c_int,
    decode_max_depth: c_int,
    encode_invalid_numbers: c_int,
    decode_invalid_numbers: c_int,
    encode_keep_buffer: c_int,
    encode_number_precision: c_int,
}

const DEFAULT: Cfg = Cfg {
    sparse_convert: 0,
    sparse_ratio: 2,
    sparse_safe: 10,
    encode_max_depth: 1000,
    decode_max_depth: 1000,
    encode_invalid_numbers: 0,
    decode_invalid_numbers: 1,
    encode_keep_buffer: 1,
    encode_number_precision: 14,
};

const UPVALUE1: c_int = LUA_GLOBALSINDEX - 1;

unsafe fn cfg<'a>(l: *mut lua_State) -> Result<&'a mut Cfg, LErr> {
    unsafe {
        let p = lua_touserdata(l, UPVALUE1) as *mut Cfg;
        if p.is_null() {
            return Err(LErr::Msg("BUG: Unable to fetch CJSON configuration".into()));
        }
        Ok(&mut *p)
    }
}

unsafe fn typename(l: *mut lua_State, idx: c_int) -> String {
    unsafe {
        CStr::from_ptr(lua_typename(l, lua_type(l, idx)))
            .to_string_lossy()
            .into_owned()
    }
}

// ---- configuration ----

unsafe fn arg_init<'a>(l: *mut lua_State, args: c_int) -> Result<&'a mut Cfg, LErr> {
    unsafe {
        if lua_gettop(l) > args {
            return Err(LErr::Arg(args + 1, "found too many arguments".into()));
        }
        while lua_gettop(l) < args {
            lua_pushnil(l);
        }
        cfg(l)
    }
}

unsafe fn int_option(
    l: *mut lua_State,
    idx: c_int,
    setting: &mut c_int,
    min: c_int,
    max: c_int,
) -> Result<(), LErr> {
    unsafe {
        if lua_type(l, idx) != LUA_TNIL {
            let d = lua_tonumber(l, idx);
            if d == 0.0 && lua_isnumber(l, idx) == 0 {
                return Err(LErr::Arg(idx, type_err(l, lua_type(l, idx), "number")));
            }
            let v = crate::scripting::lua::d2ll(d) as c_int;
            if !(min <= v && v <= max) {
                return Err(LErr::Arg(
                    1,
                    format!("expected integer between {min} and {max}"),
                ));
            }
            *setting = v;
        }
        lua_pushinteger(l, *setting as _);
        Ok(())
    }
}

/// luaL_checkoption: Err is the argerror.
unsafe fn check_option(l: *mut lua_State, idx: c_int, opts: &[&str]) -> Result<c_int, LErr> {
    unsafe {
        let s = match lua_type(l, idx) {
            LUA_TSTRING | LUA_TNUMBER => to_bytes(l, idx).unwrap_or(b""),
            t => return Err(LErr::Arg(idx, type_err(l, t, "string"))),
        };
        let s = match s.iter().position(|&c| c == 0) {
            Some(n) => &s[..n],
            None => s,
        };
        match opts.iter().position(|o| o.as_bytes() == s) {
            Some(i) => Ok(i as c_int),
            None => Err(LErr::Arg(
                idx,
                format!("invalid option '{}'", String::from_utf8_lossy(s)),
            )),
        }
    }
}

unsafe fn enum_option(
    l: *mut lua_State,
    idx: c_int,
    setting: &mut c_int,
    opts: Option<&[&str]>,
) -> Result<(), LErr> {
    unsafe {
        let opts = opts.unwrap_or(&["off", "on"]);
        if lua_type(l, idx) != LUA_TNIL {
            if lua_type(l, idx) == LUA_TBOOLEAN {
                *setting = lua_toboolean(l, idx);
            } else {
                *setting = check_option(l, idx, opts)?;
            }
        }
        if *setting == 0 || *setting == 1 {
            lua_pushboolean(l, *setting);
        } else {
            push_bytes(l, opts[*setting as usize].as_bytes());
        }
        Ok(())
    }
}

unsafe fn cfg_sparse_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        let c = arg_init(l, 3)?;
        enum_option(l, 1, &mut c.sparse_convert, None)?;
        int_option(l, 2, &mut c.sparse_ratio, 0, c_int::MAX)?;
        int_option(l, 3, &mut c.sparse_safe, 0, c_int::MAX)?;
        Ok(3)
    }
}
cfn!(cfg_sparse, cfg_sparse_);

unsafe fn cfg_encode_depth_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        let c = arg_init(l, 1)?;
        int_option(l, 1, &mut c.encode_max_depth, 1, c_int::MAX)?;
        Ok(1)
    }
}
cfn!(cfg_encode_depth, cfg_encode_depth_);

unsafe fn cfg_decode_depth_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        let c = arg_init(l, 1)?;
        int_option(l, 1, &mut c.decode_max_depth, 1, c_int::MAX)?;
        Ok(1)
    }
}
cfn!(cfg_decode_depth, cfg_decode_depth_);

unsafe fn cfg_precision_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        let c = arg_init(l, 1)?;
        int_option(l, 1, &mut c.encode_number_precision, 1, 14)?;
        Ok(1)
    }
}
cfn!(cfg_precision, cfg_precision_);

unsafe fn cfg_keep_buffer_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        let c = arg_init(l, 1)?;
        // The buffer itself is an implementation detail; only the setting shows.
        enum_option(l, 1, &mut c.encode_keep_buffer, None)?;
        Ok(1)
    }
}
cfn!(cfg_keep_buffer, cfg_keep_buffer_);

unsafe fn cfg_encode_invalid_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        let c = arg_init(l, 1)?;
        enum_option(
            l,
            1,
            &mut c.encode_invalid_numbers,
            Some(&["off", "on", "null"]),
        )?;
        Ok(1)
    }
}
cfn!(cfg_encode_invalid, cfg_encode_invalid_);

unsafe fn cfg_decode_invalid_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        let c = arg_init(l, 1)?;
        enum_option(l, 1, &mut c.decode_invalid_numbers, None)?;
        Ok(1)
    }
}
cfn!(cfg_decode_invalid, cfg_decode_invalid_);

// ---- encoding ----

fn escape(b: u8) -> Option<&'static [u8]> {
    Some(match b {
        b'\x08' => b"\\b",
        b'\t' => b"\\t",
        b'\n' => b"\\n",
        b'\x0c' => b"\\f",
        b'\r' => b"\\r",
        b'"' => b"\\\"",
        b'/' => b"\\/",
        b'\\' => b"\\\\",
        _ => return None,
    })
}

fn enc_string(buf: &mut Vec<u8>, s: &[u8]) {
    buf.push(b'"');
    for &c in s {
        if let Some(e) = escape(c) {
            buf.extend_from_slice(e);
        } else if c < 0x20 || c == 0x7f {
            buf.extend_from_slice(format!("\\u{:04x}", c).as_bytes());
        } else {
            buf.push(c);
        }
    }
    buf.push(b'"');
}

unsafe fn enc_number(
    l: *mut lua_State,
    c: &Cfg,
    buf: &mut Vec<u8>,
    idx: c_int,
) -> Result<(), LErr> {
    unsafe {
        let n = lua_tonumber(l, idx);
        match c.encode_invalid_numbers {
            0 => {
                if n.is_infinite() || n.is_nan() {
                    return Err(LErr::Msg(format!(
                        "Cannot serialise {}: must not be NaN or Inf",
                        typename(l, idx)
                    )));
                }
            }
            1 => {
                if n.is_nan() {
                    buf.extend_from_slice(b"nan");
                    return Ok(());
                }
            }
            _ => {
                if n.is_infinite() || n.is_nan() {
                    buf.extend_from_slice(b"null");
                    return Ok(());
                }
            }
        }
        buf.extend_from_slice(fmt_g(n, c.encode_number_precision).as_bytes());
        Ok(())
    }
}

/// -1: object; else the array length.
unsafe fn array_length(l: *mut lua_State, c: &Cfg) -> Result<i64, LErr> {
    unsafe {
        let (mut max, mut items) = (0i64, 0i64);
        lua_pushnil(l);
        while lua_next(l, -2) != 0 {
            if lua_type(l, -2) == LUA_TNUMBER {
                let k = lua_tonumber(l, -2);
                if k != 0.0 && k.floor() == k && k >= 1.0 {
                    // C stores the max in an int: a key beyond int range
                    // converts to INT_MIN (x86 cvttsd2si), which later makes
                    // the table an object, not a sparse array.
                    if k > max as f64 {
                        max = if k < 2_147_483_648.0 {
                            k as i64
                        } else {
                            c_int::MIN as i64
                        };
                    }
                    items += 1;
                    lua_pop(l, 1);
                    continue;
                }
            }
            lua_pop(l, 2);
            return Ok(-1);
        }
        if c.sparse_ratio > 0 && max > items * c.sparse_ratio as i64 && max > c.sparse_safe as i64 {
            if c.sparse_convert == 0 {
                return Err(LErr::Msg(format!(
                    "Cannot serialise {}: excessively sparse array",
                    typename(l, -1)
                )));
            }
            return Ok(-1);
        }
        Ok(max)
    }
}

unsafe fn enc_value(
    l: *mut lua_State,
    c: &Cfg,
    depth: c_int,
    buf: &mut Vec<u8>,
) -> Result<(), LErr> {
    unsafe {
        match lua_type(l, -1) {
            LUA_TSTRING => enc_string(buf, to_bytes(l, -1).unwrap_or(b"")),
            LUA_TNUMBER => enc_number(l, c, buf, -1)?,
            LUA_TBOOLEAN => buf.extend_from_slice(if lua_toboolean(l, -1) != 0 {
                b"true"
            } else {
                b"false"
            }),
            LUA_TTABLE => {
                let depth = depth + 1;
                if depth > c.encode_max_depth || lua_checkstack(l, 3) == 0 {
                    return Err(LErr::Msg(format!(
                        "Cannot serialise, excessive nesting ({depth})"
                    )));
                }
                let len = array_length(l, c)?;
                if len > 0 {
                    buf.push(b'[');
                    for i in 1..=len {
                        if i > 1 {
                            buf.push(b',');
                        }
                        lua_rawgeti_(l, -1, i as c_int);
                        enc_value(l, c, depth, buf)?;
                        lua_pop(l, 1);
                    }
                    buf.push(b']');
                } else {
                    buf.push(b'{');
                    let mut comma = false;
                    lua_pushnil(l);
                    while lua_next(l, -2) != 0 {
                        if comma {
                            buf.push(b',');
                        }
                        comma = true;
                        match lua_type(l, -2) {
                            LUA_TNUMBER => {
                                buf.push(b'"');
                                enc_number(l, c, buf, -2)?;
                                buf.extend_from_slice(b"\":");
                            }
                            LUA_TSTRING => {
                                enc_string(buf, to_bytes(l, -2).unwrap_or(b""));
                                buf.push(b':');
                            }
                            _ => {
                                return Err(LErr::Msg(format!(
                                    "Cannot serialise {}: table key must be a number or string",
                                    typename(l, -2)
                                )));
                            }
                        }
                        enc_value(l, c, depth, buf)?;
                        lua_pop(l, 1);
                    }
                    buf.push(b'}');
                }
            }
            LUA_TNIL => buf.extend_from_slice(b"null"),
            LUA_TLIGHTUSERDATA if lua_touserdata(l, -1).is_null() => buf.extend_from_slice(b"null"),
            _ => {
                return Err(LErr::Msg(format!(
                    "Cannot serialise {}: type not supported",
                    typename(l, -1)
                )));
            }
        }
        Ok(())
    }
}

unsafe fn encode_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        let c = *cfg(l)?;
        if lua_gettop(l) != 1 {
            return Err(LErr::Arg(1, "expected 1 argument".into()));
        }
        let mut buf = Vec::new();
        enc_value(l, &c, 0, &mut buf)?;
        push_bytes(l, &buf);
        Ok(1)
    }
}
cfn!(encode, encode_);

// ---- decoding ----

#[derive(Clone, Copy, PartialEq)]
enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str,
    Num,
    Bool,
    Null,
    Colon,
    Comma,
    End,
    Error,
}

impl Tok {
    fn name(self) -> &'static str {
        match self {
            Tok::ObjBegin => "T_OBJ_BEGIN",
            Tok::ObjEnd => "T_OBJ_END",
            Tok::ArrBegin => "T_ARR_BEGIN",
            Tok::ArrEnd => "T_ARR_END",
            Tok::Str => "T_STRING",
            Tok::Num => "T_NUMBER",
            Tok::Bool => "T_BOOLEAN",
            Tok::Null => "T_NULL",
            Tok::Colon => "T_COLON",
            Tok::Comma => "T_COMMA",
            Tok::End => "T_END",
            Tok::Error => "T_ERROR",
        }
    }
}

struct Token {
    t: Tok,
    index: usize,
    num: f64,
    boolean: bool,
    err: &'static str,
}

struct Parser<'a> {
    /// The input up to its first NUL, followed by one NUL (C string view).
    d: &'a [u8],
    p: usize,
    cfg: Cfg,
    depth: c_int,
    tmp: Vec<u8>,
}

fn hexval(c: u8) -> Option<u32> {
    (c as char).to_digit(16)
}

impl Parser<'_> {
    fn at(&self, i: usize) -> u8 {
        *self.d.get(i).unwrap_or(&0)
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let mut v = 0;
        for i in 0..4 {
            v = (v << 4) | hexval(self.at(at + i))?;
        }
        Some(v)
    }

    fn unicode_escape(&mut self) -> bool {
        let Some(mut cp) = self.hex4(self.p + 2) else {
            return false;
        };
        let mut esc = 6;
        if cp & 0xF800 == 0xD800 {
            if cp & 0x400 != 0 {
                return false;
            }
            if self.at(self.p + 6) != b'\\' || self.at(self.p + 7) != b'u' {
                return false;
            }
            let Some(lo) = self.hex4(self.p + 8) else {
                return false;
            };
            if lo & 0xFC00 != 0xDC00 {
                return false;
            }
            cp = (((cp & 0x3FF) << 10) | (lo & 0x3FF)) + 0x10000;
            esc = 12;
        }
        let t = &mut self.tmp;
        if cp <= 0x7F {
            t.push(cp as u8);
        } else if cp <= 0x7FF {
            t.push(((cp >> 6) | 0xC0) as u8);
            t.push(((cp & 0x3F) | 0x80) as u8);
        } else if cp <= 0xFFFF {
            t.push(((cp >> 12) | 0xE0) as u8);
            t.push((((cp >> 6) & 0x3F) | 0x80) as u8);
            t.push(((cp & 0x3F) | 0x80) as u8);
        } else {
            t.push(((cp >> 18) | 0xF0) as u8);
            t.push((((cp >> 12) & 0x3F) | 0x80) as u8);
            t.push((((cp >> 6) & 0x3F) | 0x80) as u8);
            t.push(((cp & 0x3F) | 0x80) as u8);
        }
        self.p += esc;
        true
    }

    fn error(&self, tok: &mut Token, e: &'static str) {
        tok.t = Tok::Error;
        tok.index = self.p;
        tok.err = e;
    }

    fn string(&mut self, tok: &mut Token) {
        self.p += 1;
        self.tmp.clear();
        loop {
            let ch = self.at(self.p);
            if ch == b'"' {
                break;
            }
            if ch == 0 {
                self.error(tok, "unexpected end of string");
                return;
            }
            let mut out = ch;
            if ch == b'\\' {
                out = match self.at(self.p + 1) {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'/' => b'/',
                    b'b' => 8,
                    b't' => b'\t',
                    b'n' => b'\n',
                    b'f' => 12,
                    b'r' => b'\r',
                    b'u' => {
                        if self.unicode_escape() {
                            continue;
                        }
                        self.error(tok, "invalid unicode escape code");
                        return;
                    }
                    _ => {
                        self.error(tok, "invalid escape code");
                        return;
                    }
                };
                self.p += 1;
            }
            self.tmp.push(out);
            self.p += 1;
        }
        self.p += 1;
        tok.t = Tok::Str;
    }

    fn invalid_number(&self) -> bool {
        let mut p = self.p;
        if self.at(p) == b'+' {
            return true;
        }
        if self.at(p) == b'-' {
            p += 1;
        }
        let c = self.at(p);
        if c == b'0' {
            let c2 = self.at(p + 1);
            return (c2 | 0x20) == b'x' || c2.is_ascii_digit();
        } else if c <= b'9' {
            return false;
        }
        let rest = &self.d[p.min(self.d.len())..];
        let ci = |w: &[u8]| rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(w);
        ci(b"inf") || ci(b"nan")
    }

    fn number(&mut self, tok: &mut Token) {
        tok.t = Tok::Num;
        let start = self.d[self.p..].as_ptr() as *const c_char;
        let mut end: *mut c_char = std::ptr::null_mut();
        // SAFETY: `d` ends with a NUL, so strtod stops inside it.
        tok.num = unsafe { libc::strtod(start, &mut end) };
        let used = end as usize - start as usize;
        if used == 0 {
            self.error(tok, "invalid number");
        } else {
            self.p += used;
        }
    }

    fn next(&mut self) -> Token {
        let mut tok = Token {
            t: Tok::End,
            index: 0,
            num: 0.0,
            boolean: false,
            err: "",
        };
        while matches!(self.at(self.p), b' ' | b'\t' | b'\n' | b'\r') {
            self.p += 1;
        }
        tok.index = self.p;
        let ch = self.at(self.p);
        let simple = match ch {
            b'{' => Some(Tok::ObjBegin),
            b'}' => Some(Tok::ObjEnd),
            b'[' => Some(Tok::ArrBegin),
            b']' => Some(Tok::ArrEnd),
            b',' => Some(Tok::Comma),
            b':' => Some(Tok::Colon),
            _ => None,
        };
        if let Some(t) = simple {
            tok.t = t;
            self.p += 1;
            return tok;
        }
        if ch == 0 {
            tok.t = Tok::End;
            return tok;
        }
        if !matches!(
            ch,
            b'f' | b'i' | b'I' | b'n' | b'N' | b't' | b'"' | b'+' | b'-' | b'0'..=b'9'
        ) {
            self.error(&mut tok, "invalid token");
            return tok;
        }
        let rest = &self.d[self.p..];
        if ch == b'"' {
            self.string(&mut tok);
        } else if ch == b'-' || ch.is_ascii_digit() {
            if self.cfg.decode_invalid_numbers == 0 && self.invalid_number() {
                self.error(&mut tok, "invalid number");
            } else {
                self.number(&mut tok);
            }
        } else if rest.starts_with(b"true") {
            tok.t = Tok::Bool;
            tok.boolean = true;
            self.p += 4;
        } else if rest.starts_with(b"false") {
            tok.t = Tok::Bool;
            self.p += 5;
        } else if rest.starts_with(b"null") {
            tok.t = Tok::Null;
            self.p += 4;
        } else if self.cfg.decode_invalid_numbers != 0 && self.invalid_number() {
            self.number(&mut tok);
        } else {
            self.error(&mut tok, "invalid token");
        }
        tok
    }

    fn parse_error(&self, exp: &str, tok: &Token) -> LErr {
        let found = if tok.t == Tok::Error {
            tok.err
        } else {
            tok.t.name()
        };
        LErr::Msg(format!(
            "Expected {exp} but found {found} at character {}",
            tok.index as i32 + 1
        ))
    }

    unsafe fn descend(&mut self, l: *mut lua_State, slots: c_int) -> Result<(), LErr> {
        self.depth += 1;
        if self.depth <= self.cfg.decode_max_depth && unsafe { lua_checkstack(l, slots) } != 0 {
            return Ok(());
        }
        Err(LErr::Msg(format!(
            "Found too many nested data structures ({}) at character {}",
            self.depth, self.p as i32
        )))
    }

    unsafe fn object(&mut self, l: *mut lua_State) -> Result<(), LErr> {
        unsafe {
            self.descend(l, 3)?;
            lua_newtable(l);
            let mut tok = self.next();
            if tok.t == Tok::ObjEnd {
                self.depth -= 1;
                return Ok(());
            }
            loop {
                if tok.t != Tok::Str {
                    return Err(self.parse_error("object key string", &tok));
                }
                push_bytes(l, &self.tmp);
                tok = self.next();
                if tok.t != Tok::Colon {
                    return Err(self.parse_error("colon", &tok));
                }
                tok = self.next();
                self.value(l, &tok)?;
                lua_rawset(l, -3);
                tok = self.next();
                if tok.t == Tok::ObjEnd {
                    self.depth -= 1;
                    return Ok(());
                }
                if tok.t != Tok::Comma {
                    return Err(self.parse_error("comma or object end", &tok));
                }
                tok = self.next();
            }
        }
    }

    unsafe fn array(&mut self, l: *mut lua_State) -> Result<(), LErr> {
        unsafe {
            self.descend(l, 2)?;
            lua_newtable(l);
            let mut tok = self.next();
            if tok.t == Tok::ArrEnd {
                self.depth -= 1;
                return Ok(());
            }
            let mut i = 1;
            loop {
                self.value(l, &tok)?;
                lua_rawseti_(l, -2, i);
                i += 1;
                tok = self.next();
                if tok.t == Tok::ArrEnd {
                    self.depth -= 1;
                    return Ok(());
                }
                if tok.t != Tok::Comma {
                    return Err(self.parse_error("comma or array end", &tok));
                }
                tok = self.next();
            }
        }
    }

    unsafe fn value(&mut self, l: *mut lua_State, tok: &Token) -> Result<(), LErr> {
        unsafe {
            match tok.t {
                Tok::Str => push_bytes(l, &self.tmp),
                Tok::Num => lua_pushnumber(l, tok.num),
                Tok::Bool => lua_pushboolean(l, tok.boolean as c_int),
                Tok::ObjBegin => self.object(l)?,
                Tok::ArrBegin => self.array(l)?,
                Tok::Null => lua_pushlightuserdata(l, std::ptr::null_mut()),
                _ => return Err(self.parse_error("value", tok)),
            }
            Ok(())
        }
    }
}

unsafe fn decode_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        if lua_gettop(l) != 1 {
            return Err(LErr::Arg(1, "expected 1 argument".into()));
        }
        let c = *cfg(l)?;
        let s = match lua_type(l, 1) {
            LUA_TSTRING | LUA_TNUMBER => to_bytes(l, 1).unwrap_or(b""),
            t => return Err(LErr::Arg(1, type_err(l, t, "string"))),
        };
        if s.len() >= 2 && (s[0] == 0 || s[1] == 0) {
            return Err(LErr::Msg(
                "JSON parser does not support UTF-16 or UTF-32".into(),
            ));
        }
        let n = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        let mut d = Vec::with_capacity(n + 1);
        d.extend_from_slice(&s[..n]);
        d.push(0);
        let mut p = Parser {
            d: &d,
            p: 0,
            cfg: c,
            depth: 0,
            tmp: Vec::new(),
        };
        let tok = p.next();
        p.value(l, &tok)?;
        let tok = p.next();
        if tok.t != Tok::End {
            return Err(p.parse_error("the end", &tok));
        }
        Ok(1)
    }
}
cfn!(decode, decode_);

unsafe fn new_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        create(l);
        Ok(1)
    }
}
cfn!(new, new_);

/// Pushes a new cjson module table with its own configuration.
unsafe fn create(l: *mut lua_State) {
    unsafe {
        lua_newtable(l);
        let ud = lua_newuserdata(l, std::mem::size_of::<Cfg>()) as *mut Cfg;
        ud.write(DEFAULT);
        let funcs: [(&CStr, lua_CFunction); 10] = [
            (c"encode", encode),
            (c"decode", decode),
            (c"encode_sparse_array", cfg_sparse),
            (c"encode_max_depth", cfg_encode_depth),
            (c"decode_max_depth", cfg_decode_depth),
            (c"encode_number_precision", cfg_precision),
            (c"encode_keep_buffer", cfg_keep_buffer),
            (c"encode_invalid_numbers", cfg_encode_invalid),
            (c"decode_invalid_numbers", cfg_decode_invalid),
            (c"new", new),
        ];
        for (name, f) in funcs {
            lua_pushvalue(l, -1);
            lua_pushcclosure(l, f, 1);
            lua_setfield(l, -3, name.as_ptr());
        }
        lua_pop(l, 1);
        lua_pushlightuserdata(l, std::ptr::null_mut());
        lua_setfield(l, -2, c"null".as_ptr());
        push_bytes(l, b"cjson");
        lua_setfield(l, -2, c"_NAME".as_ptr());
        push_bytes(l, b"2.1.0");
        lua_setfield(l, -2, c"_VERSION".as_ptr());
    }
}

pub unsafe extern "C-unwind" fn open(l: *mut lua_State) -> c_int {
    unsafe {
        create(l);
        lua_pushvalue(l, -1);
        lua_setfield(l, LUA_GLOBALSINDEX, c"cjson".as_ptr());
        1
    }
}
