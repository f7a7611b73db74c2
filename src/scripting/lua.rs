//! Lua C API helpers shared by the engine and the libraries: raising errors
//! once the Rust frame is gone, pushing and reading strings, number formats.

use std::ffi::CStr;
use std::os::raw::{c_char, c_int};

use mlua::ffi::*;

unsafe extern "C-unwind" {
    // Added to the vendored Lua (vendor/lua-src), as in Redis's Lua.
    pub(crate) fn lua_enablereadonlytable(l: *mut lua_State, idx: c_int, enabled: c_int);
    pub(crate) fn lua_isreadonlytable(l: *mut lua_State, idx: c_int) -> c_int;
}

/// An error to raise in Lua once the Rust frame is gone.
pub(crate) enum LErr {
    /// A message raised like luaL_error ("user_script:1: " prefix).
    Msg(String),
    /// A message raised without position (luaG_runerror inside a C function).
    Raw(String),
    /// luaL_argerror(narg, msg).
    Arg(c_int, String),
    /// The error value is already on the stack top.
    Top,
}

/// Raises `e`. Only Lua-owned data is alive when lua_error jumps.
pub(crate) unsafe fn raise(l: *mut lua_State, e: LErr) -> c_int {
    unsafe {
        // Room for the message even when the failure was a full stack.
        lua_checkstack(l, 4);
        match e {
            LErr::Msg(s) => {
                // luaL_error: position of the calling Lua code first.
                luaL_where(l, 1);
                push_bytes(l, s.as_bytes());
                drop(s);
                lua_concat(l, 2);
                lua_error(l)
            }
            LErr::Raw(s) => {
                push_bytes(l, s.as_bytes());
                drop(s);
                lua_error(l)
            }
            LErr::Arg(n, s) => {
                push_bytes(l, s.as_bytes());
                drop(s);
                let p = lua_tolstring(l, -1, std::ptr::null_mut());
                luaL_argerror(l, n, p)
            }
            LErr::Top => lua_error(l),
        }
    }
}

/// Defines an `extern "C-unwind"` Lua function from a
/// `unsafe fn(*mut lua_State) -> Result<c_int, LErr>`.
macro_rules! cfn {
    ($name:ident, $inner:path) => {
        pub(crate) unsafe extern "C-unwind" fn $name(l: *mut mlua::ffi::lua_State) -> c_int {
            let r = unsafe { $inner(l) };
            match r {
                Ok(n) => n,
                Err(e) => unsafe { $crate::scripting::lua::raise(l, e) },
            }
        }
    };
}
pub(crate) use cfn;

pub(crate) unsafe fn push_bytes(l: *mut lua_State, b: &[u8]) {
    unsafe { lua_pushlstring_(l, b.as_ptr() as *const c_char, b.len()) }
}

/// The bytes of the string (or number, converted in place) at `idx`.
pub(crate) unsafe fn to_bytes<'a>(l: *mut lua_State, idx: c_int) -> Option<&'a [u8]> {
    unsafe {
        let mut len = 0usize;
        let p = lua_tolstring(l, idx, &mut len);
        if p.is_null() {
            None
        } else {
            Some(std::slice::from_raw_parts(p as *const u8, len))
        }
    }
}

/// Like lua_tostring seen as a C string: stops at the first NUL.
pub(crate) unsafe fn to_cstr_bytes<'a>(l: *mut lua_State, idx: c_int) -> Option<&'a [u8]> {
    unsafe {
        to_bytes(l, idx).map(|b| match b.iter().position(|&c| c == 0) {
            Some(n) => &b[..n],
            None => b,
        })
    }
}

pub(crate) unsafe fn set_bool_field(l: *mut lua_State, k: &CStr, v: bool) {
    unsafe {
        lua_pushboolean(l, v as c_int);
        lua_setfield(l, -2, k.as_ptr());
    }
}

pub(crate) unsafe fn set_fn(l: *mut lua_State, k: &CStr, f: lua_CFunction) {
    unsafe {
        lua_pushcfunction(l, f);
        lua_setfield(l, -2, k.as_ptr());
    }
}

pub(crate) unsafe fn set_num(l: *mut lua_State, k: &CStr, n: f64) {
    unsafe {
        lua_pushnumber(l, n);
        lua_setfield(l, -2, k.as_ptr());
    }
}

/// C's (long long) cast of a double as x86-64 does it (out of range and NaN
/// give i64::MIN), which is what Redis's replies show.
pub(crate) fn d2ll(d: f64) -> i64 {
    const LIM: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if !(-LIM..LIM).contains(&d) {
        i64::MIN
    } else {
        d as i64
    }
}

/// printf-style `%.<prec>g`.
pub(crate) fn fmt_g(d: f64, prec: i32) -> String {
    let mut buf = [0u8; 64];
    // SAFETY: one int and one double argument matching "%.*g"; snprintf
    // writes at most buf.len() bytes including the NUL.
    let n = unsafe {
        libc::snprintf(
            buf.as_mut_ptr() as *mut c_char,
            buf.len(),
            c"%.*g".as_ptr(),
            prec as c_int,
            d,
        )
    };
    String::from_utf8_lossy(&buf[..(n.max(0) as usize).min(63)]).into_owned()
}

/// Redis's luaPushErrorBuff: pushes `{err = "<CODE> <msg>"}` from either
/// "-CODE msg" or "msg" (code ERR).
pub(crate) unsafe fn push_error_buff(l: *mut lua_State, e: &[u8]) {
    // The C code works on NUL-terminated strings.
    let e = match e.iter().position(|&c| c == 0) {
        Some(n) => &e[..n],
        None => e,
    };
    let (code, msg): (&[u8], &[u8]) = if e.first() == Some(&b'-') {
        match e.iter().position(|&c| c == b' ') {
            Some(sp) => (&e[1..sp], &e[sp + 1..]),
            None => (b"ERR", &e[1..]),
        }
    } else {
        (b"ERR", e)
    };
    let msg = trim_crlf(msg);
    let mut fin = Vec::with_capacity(code.len() + msg.len() + 1);
    fin.extend_from_slice(code);
    fin.push(b' ');
    fin.extend_from_slice(msg);
    unsafe {
        lua_newtable(l);
        push_bytes(l, b"err");
        push_bytes(l, &fin);
        lua_settable(l, -3);
    }
}

pub(crate) unsafe fn push_error(l: *mut lua_State, e: &str) {
    unsafe { push_error_buff(l, e.as_bytes()) }
}

/// sdstrim(s, "\r\n"): both ends.
pub(crate) fn trim_crlf(s: &[u8]) -> &[u8] {
    let mut a = 0;
    let mut b = s.len();
    while a < b && (s[a] == b'\r' || s[a] == b'\n') {
        a += 1;
    }
    while b > a && (s[b - 1] == b'\r' || s[b - 1] == b'\n') {
        b -= 1;
    }
    &s[a..b]
}

pub(crate) fn map_crlf(s: &[u8]) -> Vec<u8> {
    s.iter()
        .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c })
        .collect()
}
