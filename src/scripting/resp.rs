//! RESP reply bytes (from the host) -> Lua values, per Redis's
//! redisProtocolToLuaType rules.
//!
//! Safety: the `unsafe` blocks follow the invariants listed in the docs of
//! `scripting::engine` (own-thread lua_State, checked stack, no drop across
//! a raising call).

use std::os::raw::c_int;

use mlua::ffi::*;

use super::lua::{push_bytes, push_error_buff, set_bool_field};

struct P<'a> {
    b: &'a [u8],
    i: usize,
}

impl P<'_> {
    fn line(&mut self) -> &[u8] {
        let start = self.i;
        while self.i < self.b.len() && self.b[self.i] != b'\r' {
            self.i += 1;
        }
        let l = &self.b[start..self.i];
        self.i = (self.i + 2).min(self.b.len());
        l
    }
    fn num(&mut self) -> i64 {
        let l = self.line();
        std::str::from_utf8(l)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
    fn bulk(&mut self, n: i64) -> &[u8] {
        let n = n.max(0) as usize;
        let start = self.i.min(self.b.len());
        let end = (start + n).min(self.b.len());
        self.i = (end + 2).min(self.b.len());
        &self.b[start..end]
    }
}

/// Pushes the Lua value for one reply. A failed stack growth panics in
/// Redis; here the element is dropped instead (replies that deep cannot come
/// from real commands).
///
/// # Safety
/// `l` must be a valid Lua state.
pub unsafe fn push_reply(l: *mut lua_State, reply: &[u8]) {
    let mut p = P { b: reply, i: 0 };
    unsafe { parse(l, &mut p, true) }
}

unsafe fn parse(l: *mut lua_State, p: &mut P, push: bool) {
    unsafe {
        if push && lua_checkstack(l, 5) == 0 {
            return;
        }
        let Some(&t) = p.b.get(p.i) else {
            if push {
                lua_pushnil(l);
            }
            return;
        };
        p.i += 1;
        match t {
            b':' => {
                let n = p.num();
                if push {
                    lua_pushnumber(l, n as f64);
                }
            }
            b'$' => {
                let n = p.num();
                if n < 0 {
                    if push {
                        lua_pushboolean(l, 0);
                    }
                } else {
                    let s = p.bulk(n);
                    if push {
                        push_bytes(l, s);
                    }
                }
            }
            b'*' | b'>' => {
                let n = p.num();
                if n < 0 {
                    if push {
                        lua_pushboolean(l, 0);
                    }
                    return;
                }
                if push {
                    lua_newtable(l);
                }
                for j in 0..n {
                    if push {
                        lua_pushnumber(l, (j + 1) as f64);
                    }
                    parse(l, p, push);
                    if push {
                        settable_checked(l);
                    }
                }
            }
            b'+' => {
                let s = p.line();
                if push {
                    lua_newtable(l);
                    push_bytes(l, b"ok");
                    push_bytes(l, s);
                    lua_settable(l, -3);
                }
            }
            b'-' => {
                let s = p.line();
                if push {
                    let mut e = Vec::with_capacity(s.len() + 1);
                    e.push(b'-');
                    e.extend_from_slice(s);
                    push_error_buff(l, &e);
                    set_bool_field(l, c"ignore_error_stats_update", true);
                }
            }
            b'%' => {
                let n = p.num();
                if push {
                    lua_newtable(l);
                    push_bytes(l, b"map");
                    lua_newtable(l);
                }
                for _ in 0..n.max(0) {
                    parse(l, p, push);
                    parse(l, p, push);
                    if push {
                        settable_checked(l);
                    }
                }
                if push {
                    lua_settable(l, -3);
                }
            }
            b'~' => {
                let n = p.num();
                if push {
                    lua_newtable(l);
                    push_bytes(l, b"set");
                    lua_newtable(l);
                }
                for _ in 0..n.max(0) {
                    parse(l, p, push);
                    if push {
                        lua_pushboolean(l, 1);
                        settable_checked(l);
                    }
                }
                if push {
                    lua_settable(l, -3);
                }
            }
            b'|' => {
                // Attributes are skipped; the reply after them is returned.
                let n = p.num();
                for _ in 0..n.max(0) {
                    parse(l, p, false);
                    parse(l, p, false);
                }
                parse(l, p, push);
            }
            b'_' => {
                p.line();
                if push {
                    lua_pushnil(l);
                }
            }
            b'#' => {
                let s = p.line();
                if push {
                    lua_pushboolean(l, (s == b"t") as c_int);
                }
            }
            b',' => {
                let s = p.line();
                if push {
                    let d = parse_double(s);
                    lua_newtable(l);
                    push_bytes(l, b"double");
                    lua_pushnumber(l, d);
                    lua_settable(l, -3);
                }
            }
            b'(' => {
                let s = p.line();
                if push {
                    lua_newtable(l);
                    push_bytes(l, b"big_number");
                    push_bytes(l, s);
                    lua_settable(l, -3);
                }
            }
            b'=' => {
                let n = p.num();
                let s = p.bulk(n);
                if push {
                    let (fmt, body) = if s.len() >= 4 {
                        (&s[..3], &s[4..])
                    } else {
                        (s, &b""[..])
                    };
                    lua_newtable(l);
                    push_bytes(l, b"verbatim_string");
                    lua_newtable(l);
                    push_bytes(l, b"string");
                    push_bytes(l, body);
                    lua_settable(l, -3);
                    push_bytes(l, b"format");
                    push_bytes(l, fmt);
                    lua_settable(l, -3);
                    lua_settable(l, -3);
                }
            }
            _ => {
                if push {
                    lua_pushnil(l);
                }
            }
        }
    }
}

/// lua_settable on a fresh table; a nil or NaN key (impossible from real
/// replies) would raise a Lua error, so such pairs are dropped.
unsafe fn settable_checked(l: *mut lua_State) {
    unsafe {
        let kt = lua_type(l, -2);
        if kt == LUA_TNIL || (kt == LUA_TNUMBER && lua_tonumber(l, -2).is_nan()) {
            lua_pop(l, 2);
        } else {
            lua_settable(l, -3);
        }
    }
}

fn parse_double(s: &[u8]) -> f64 {
    match s {
        b"inf" => f64::INFINITY,
        b"-inf" => f64::NEG_INFINITY,
        _ => std::str::from_utf8(s)
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(f64::NAN),
    }
}
