//! cmsgpack (lua-cmsgpack 0.4.0 as shipped with Redis): MessagePack
//! pack / unpack / unpack_one / unpack_limit.

use std::os::raw::c_int;

use mlua::ffi::*;

use super::structlib::type_err;
use crate::scripting::lua::{LErr, cfn, d2ll, push_bytes, to_bytes};

const MAX_NESTING: u32 = 16;

fn enc_bytes(buf: &mut Vec<u8>, s: &[u8]) {
    let len = s.len();
    if len < 32 {
        buf.push(0xa0 | len as u8);
    } else if len <= 0xff {
        buf.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        buf.push(0xda);
        buf.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        buf.push(0xdb);
        buf.extend_from_slice(&(len as u32).to_be_bytes());
    }
    buf.extend_from_slice(s);
}

fn enc_double(buf: &mut Vec<u8>, d: f64) {
    let f = d as f32;
    if d == f as f64 {
        buf.push(0xca);
        buf.extend_from_slice(&f.to_be_bytes());
    } else {
        buf.push(0xcb);
        buf.extend_from_slice(&d.to_be_bytes());
    }
}

fn enc_int(buf: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        if n <= 127 {
            buf.push(n as u8);
        } else if n <= 0xff {
            buf.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            buf.push(0xcd);
            buf.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            buf.push(0xce);
            buf.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            buf.push(0xcf);
            buf.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        buf.push(n as i8 as u8);
    } else if n >= -128 {
        buf.extend_from_slice(&[0xd0, n as u8]);
    } else if n >= -32768 {
        buf.push(0xd1);
        buf.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        buf.push(0xd2);
        buf.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        buf.push(0xd3);
        buf.extend_from_slice(&n.to_be_bytes());
    }
}

fn enc_len(buf: &mut Vec<u8>, n: u64, fix: u8, b16: u8, b32: u8) {
    if n <= 15 {
        buf.push(fix | n as u8);
    } else if n <= 65535 {
        buf.push(b16);
        buf.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        buf.push(b32);
        buf.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

/// True when the table on top has exactly the keys 1..n.
unsafe fn is_array(l: *mut lua_State) -> bool {
    unsafe {
        let top = lua_gettop(l);
        lua_checkstack(l, 2);
        let (mut count, mut max) = (0i64, 0i64);
        lua_pushnil(l);
        while lua_next(l, -2) != 0 {
            lua_pop(l, 1);
            let n = lua_tonumber(l, -1);
            // IS_INT_EQUIVALENT: (int)n == n
            let as_int = if !(-2_147_483_648.0..2_147_483_648.0).contains(&n) {
                i32::MIN
            } else {
                n as i32
            };
            if lua_type(l, -1) != LUA_TNUMBER || n <= 0.0 || n.is_infinite() || as_int as f64 != n {
                lua_settop(l, top);
                return false;
            }
            max = max.max(n as i64);
            count += 1;
        }
        lua_settop(l, top);
        max == count
    }
}

/// Encodes and pops the value on top.
unsafe fn encode(l: *mut lua_State, buf: &mut Vec<u8>, level: u32) -> Result<(), LErr> {
    unsafe {
        let mut t = lua_type(l, -1);
        if t == LUA_TTABLE && level == MAX_NESTING {
            t = LUA_TNIL;
        }
        match t {
            LUA_TSTRING => enc_bytes(buf, to_bytes(l, -1).unwrap_or(b"")),
            LUA_TBOOLEAN => buf.push(if lua_toboolean(l, -1) != 0 {
                0xc3
            } else {
                0xc2
            }),
            LUA_TNUMBER => {
                let n = lua_tonumber(l, -1);
                if !n.is_infinite() && d2ll(n) as f64 == n {
                    enc_int(buf, d2ll(n));
                } else {
                    enc_double(buf, n);
                }
            }
            LUA_TTABLE => {
                if is_array(l) {
                    let len = lua_objlen(l, -1);
                    enc_len(buf, len as u64, 0x90, 0xdc, 0xdd);
                    if lua_checkstack(l, 1) == 0 {
                        return Err(LErr::Msg(
                            "stack overflow (in function mp_encode_lua_table_as_array)".into(),
                        ));
                    }
                    for j in 1..=len {
                        lua_pushnumber(l, j as f64);
                        lua_gettable_(l, -2);
                        encode(l, buf, level + 1)?;
                    }
                } else {
                    if lua_checkstack(l, 3) == 0 {
                        return Err(LErr::Msg(
                            "stack overflow (in function mp_encode_lua_table_as_map)".into(),
                        ));
                    }
                    let mut len = 0u64;
                    lua_pushnil(l);
                    while lua_next(l, -2) != 0 {
                        lua_pop(l, 1);
                        len += 1;
                    }
                    enc_len(buf, len, 0x80, 0xde, 0xdf);
                    lua_pushnil(l);
                    while lua_next(l, -2) != 0 {
                        lua_pushvalue(l, -2);
                        encode(l, buf, level + 1)?;
                        encode(l, buf, level + 1)?;
                    }
                }
            }
            _ => buf.push(0xc0),
        }
        lua_pop(l, 1);
        Ok(())
    }
}

unsafe fn pack_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        let nargs = lua_gettop(l);
        if nargs == 0 {
            return Err(LErr::Arg(0, "MessagePack pack needs input.".into()));
        }
        if lua_checkstack(l, nargs) == 0 {
            return Err(LErr::Arg(
                0,
                "Too many arguments for MessagePack pack.".into(),
            ));
        }
        let mut buf = Vec::new();
        for i in 1..=nargs {
            lua_pushvalue(l, i);
            encode(l, &mut buf, 0)?;
        }
        push_bytes(l, &buf);
        Ok(1)
    }
}
cfn!(pack, pack_);

enum DErr {
    Eof,
    BadFmt,
    Lua(LErr),
}

struct Cur<'a> {
    b: &'a [u8],
    p: usize,
}

impl Cur<'_> {
    fn left(&self) -> usize {
        self.b.len() - self.p
    }
    fn at(&self, i: usize) -> u8 {
        *self.b.get(self.p + i).unwrap_or(&0)
    }
    fn need(&self, n: usize) -> Result<(), DErr> {
        if self.left() < n {
            Err(DErr::Eof)
        } else {
            Ok(())
        }
    }
    fn be(&self, from: usize, n: usize) -> u64 {
        (0..n).fold(0u64, |a, i| (a << 8) | self.at(from + i) as u64)
    }
}

unsafe fn settable(l: *mut lua_State) -> Result<(), DErr> {
    unsafe {
        let kt = lua_type(l, -2);
        if kt == LUA_TNIL {
            return Err(DErr::Lua(LErr::Raw("table index is nil".into())));
        }
        if kt == LUA_TNUMBER && lua_tonumber(l, -2).is_nan() {
            return Err(DErr::Lua(LErr::Raw("table index is NaN".into())));
        }
        lua_settable(l, -3);
        Ok(())
    }
}

unsafe fn dec_array(l: *mut lua_State, c: &mut Cur, len: usize) -> Result<(), DErr> {
    unsafe {
        lua_newtable(l);
        if lua_checkstack(l, 1) == 0 {
            return Err(DErr::Lua(LErr::Msg(
                "stack overflow (in function mp_decode_to_lua_array)".into(),
            )));
        }
        for i in 1..=len {
            lua_pushnumber(l, i as f64);
            decode(l, c)?;
            lua_settable(l, -3);
        }
        Ok(())
    }
}

unsafe fn dec_map(l: *mut lua_State, c: &mut Cur, len: usize) -> Result<(), DErr> {
    unsafe {
        lua_newtable(l);
        for _ in 0..len {
            decode(l, c)?;
            decode(l, c)?;
            settable(l)?;
        }
        Ok(())
    }
}

unsafe fn decode(l: *mut lua_State, c: &mut Cur) -> Result<(), DErr> {
    unsafe {
        if lua_checkstack(l, 1) == 0 {
            return Err(DErr::Lua(LErr::Msg(
                "stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)"
                    .into(),
            )));
        }
        let t = c.at(0);
        match t {
            0xcc => {
                c.need(2)?;
                lua_pushnumber(l, c.at(1) as f64);
                c.p += 2;
            }
            0xd0 => {
                c.need(2)?;
                lua_pushnumber(l, c.at(1) as i8 as f64);
                c.p += 2;
            }
            0xcd => {
                c.need(3)?;
                lua_pushnumber(l, c.be(1, 2) as f64);
                c.p += 3;
            }
            0xd1 => {
                c.need(3)?;
                lua_pushnumber(l, c.be(1, 2) as u16 as i16 as f64);
                c.p += 3;
            }
            0xce => {
                c.need(5)?;
                lua_pushnumber(l, c.be(1, 4) as f64);
                c.p += 5;
            }
            0xd2 => {
                c.need(5)?;
                lua_pushnumber(l, c.be(1, 4) as u32 as i32 as f64);
                c.p += 5;
            }
            0xcf | 0xd3 => {
                // uint64 goes through lua_Integer: values past i64::MAX wrap.
                c.need(9)?;
                lua_pushnumber(l, c.be(1, 8) as i64 as f64);
                c.p += 9;
            }
            0xc0 => {
                c.need(1)?;
                lua_pushnil(l);
                c.p += 1;
            }
            0xc3 | 0xc2 => {
                c.need(1)?;
                lua_pushboolean(l, (t == 0xc3) as c_int);
                c.p += 1;
            }
            0xca => {
                c.need(5)?;
                let f = f32::from_bits(c.be(1, 4) as u32);
                lua_pushnumber(l, f as f64);
                c.p += 5;
            }
            0xcb => {
                c.need(9)?;
                lua_pushnumber(l, f64::from_bits(c.be(1, 8)));
                c.p += 9;
            }
            0xd9..=0xdb => {
                let h = match t {
                    0xd9 => 2,
                    0xda => 3,
                    _ => 5,
                };
                c.need(h)?;
                let len = c.be(1, h - 1) as usize;
                c.need(h + len)?;
                push_bytes(l, &c.b[c.p + h..c.p + h + len]);
                c.p += h + len;
            }
            0xdc..=0xdf => {
                let h = if t == 0xdc || t == 0xde { 3 } else { 5 };
                c.need(h)?;
                let len = c.be(1, h - 1) as usize;
                c.p += h;
                if t <= 0xdd {
                    dec_array(l, c, len)?;
                } else {
                    dec_map(l, c, len)?;
                }
            }
            _ => {
                if t & 0x80 == 0 {
                    c.need(1)?;
                    lua_pushnumber(l, t as f64);
                    c.p += 1;
                } else if t & 0xe0 == 0xe0 {
                    c.need(1)?;
                    lua_pushnumber(l, t as i8 as f64);
                    c.p += 1;
                } else if t & 0xe0 == 0xa0 {
                    let len = (t & 0x1f) as usize;
                    c.need(1 + len)?;
                    push_bytes(l, &c.b[c.p + 1..c.p + 1 + len]);
                    c.p += 1 + len;
                } else if t & 0xf0 == 0x90 {
                    c.need(1)?;
                    c.p += 1;
                    dec_array(l, c, (t & 0xf) as usize)?;
                } else if t & 0xf0 == 0x80 {
                    c.need(1)?;
                    c.p += 1;
                    dec_map(l, c, (t & 0xf) as usize)?;
                } else {
                    return Err(DErr::BadFmt);
                }
            }
        }
        Ok(())
    }
}

unsafe fn unpack_full(l: *mut lua_State, limit: i64, offset: i64) -> Result<c_int, LErr> {
    unsafe {
        let s = match lua_type(l, 1) {
            LUA_TSTRING | LUA_TNUMBER => to_bytes(l, 1).unwrap_or(b""),
            t => return Err(LErr::Arg(1, type_err(l, t, "string"))),
        };
        let len = s.len();
        let decode_all = limit == 0 && offset == 0;
        if offset < 0 || limit < 0 {
            return Err(LErr::Msg(format!(
                "Invalid request to unpack with offset of {} and limit of {}.",
                offset as i32, len as i32
            )));
        } else if offset as u64 > len as u64 {
            return Err(LErr::Msg(format!(
                "Start offset {} greater than input length {}.",
                offset as i32, len as i32
            )));
        }
        let limit = if decode_all { i32::MAX as i64 } else { limit };
        let mut c = Cur {
            b: &s[offset as usize..],
            p: 0,
        };
        let mut cnt = 0;
        while c.left() > 0 && (cnt as i64) < limit {
            match decode(l, &mut c) {
                Ok(()) => {}
                Err(DErr::Eof) => return Err(LErr::Msg("Missing bytes in input.".into())),
                Err(DErr::BadFmt) => return Err(LErr::Msg("Bad data format in input.".into())),
                Err(DErr::Lua(e)) => return Err(e),
            }
            cnt += 1;
        }
        if !decode_all {
            let new_offset = len - c.left();
            lua_pushinteger(l, if c.left() == 0 { -1 } else { new_offset as _ });
            lua_insert(l, 2);
            cnt += 1;
        }
        Ok(cnt)
    }
}

unsafe fn opt_int(l: *mut lua_State, n: c_int, def: i64) -> Result<i64, LErr> {
    unsafe {
        if lua_type(l, n) <= LUA_TNIL {
            return Ok(def);
        }
        let d = lua_tonumber(l, n);
        if d == 0.0 && lua_isnumber(l, n) == 0 {
            return Err(LErr::Arg(n, type_err(l, lua_type(l, n), "number")));
        }
        Ok(d2ll(d))
    }
}

unsafe fn unpack_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe { unpack_full(l, 0, 0) }
}
cfn!(unpack, unpack_);

unsafe fn unpack_one_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        let offset = opt_int(l, 2, 0)?;
        lua_settop(l, 1);
        unpack_full(l, 1, offset)
    }
}
cfn!(unpack_one, unpack_one_);

unsafe fn unpack_limit_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        let d = lua_tonumber(l, 2);
        if d == 0.0 && lua_isnumber(l, 2) == 0 {
            return Err(LErr::Arg(2, type_err(l, lua_type(l, 2), "number")));
        }
        let limit = d2ll(d);
        let offset = opt_int(l, 3, 0)?;
        lua_settop(l, 1);
        unpack_full(l, limit, offset)
    }
}
cfn!(unpack_limit, unpack_limit_);

pub unsafe extern "C-unwind" fn open(l: *mut lua_State) -> c_int {
    unsafe {
        lua_newtable(l);
        let funcs: [(&std::ffi::CStr, lua_CFunction); 4] = [
            (c"pack", pack),
            (c"unpack", unpack),
            (c"unpack_one", unpack_one),
            (c"unpack_limit", unpack_limit),
        ];
        for (n, f) in funcs {
            lua_pushcfunction(l, f);
            lua_setfield(l, -2, n.as_ptr());
        }
        for (k, v) in [
            (c"_NAME", &b"cmsgpack"[..]),
            (c"_VERSION", b"lua-cmsgpack 0.4.0"),
            (c"_COPYRIGHT", b"Copyright (C) 2012, Salvatore Sanfilippo"),
            (c"_DESCRIPTION", b"MessagePack C implementation for Lua"),
        ] {
            push_bytes(l, v);
            lua_setfield(l, -2, k.as_ptr());
        }
        lua_pushvalue(l, -1);
        lua_setfield(l, LUA_GLOBALSINDEX, c"cmsgpack".as_ptr());
        1
    }
}
