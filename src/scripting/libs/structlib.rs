//! The `struct` library (Roberto Ierusalimschy's struct.c as shipped with
//! Redis): pack / unpack / size of binary records.

use std::os::raw::c_int;

use mlua::ffi::*;

use crate::scripting::lua::{LErr, cfn, push_bytes, to_bytes};

const MAXINTSIZE: usize = 32;
/// max(alignment of double in a struct, sizeof(int)) on x86-64.
const MAXALIGN: usize = 8;

#[derive(Clone, Copy)]
struct Header {
    little: bool,
    align: usize,
}

impl Default for Header {
    fn default() -> Self {
        Header {
            little: true,
            align: 1,
        }
    }
}

fn getnum(fmt: &[u8], i: &mut usize, df: usize) -> Result<usize, LErr> {
    if *i >= fmt.len() || !fmt[*i].is_ascii_digit() {
        return Ok(df);
    }
    let mut a: i32 = 0;
    while *i < fmt.len() && fmt[*i].is_ascii_digit() {
        let d = (fmt[*i] - b'0') as i32;
        if a > i32::MAX / 10 || a * 10 > i32::MAX - d {
            return Err(LErr::Msg("integral size overflow".into()));
        }
        a = a * 10 + d;
        *i += 1;
    }
    Ok(a as usize)
}

fn optsize(opt: u8, fmt: &[u8], i: &mut usize) -> Result<usize, LErr> {
    Ok(match opt {
        b'B' | b'b' | b'x' => 1,
        b'H' | b'h' => 2,
        b'L' | b'l' | b'T' | b'd' => 8,
        b'f' => 4,
        b'c' => getnum(fmt, i, 1)?,
        b'i' | b'I' => {
            let sz = getnum(fmt, i, 4)?;
            if sz > MAXINTSIZE {
                return Err(LErr::Msg(format!(
                    "integral size {} is larger than limit of {MAXINTSIZE}",
                    sz as i32
                )));
            }
            sz
        }
        _ => 0,
    })
}

fn gettoalign(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    (size - (len & (size - 1))) & (size - 1)
}

fn controloptions(opt: u8, fmt: &[u8], i: &mut usize, h: &mut Header) -> Result<(), LErr> {
    match opt {
        b' ' => Ok(()),
        b'>' => {
            h.little = false;
            Ok(())
        }
        b'<' => {
            h.little = true;
            Ok(())
        }
        b'!' => {
            let a = getnum(fmt, i, MAXALIGN)?;
            if a == 0 || a & (a - 1) != 0 {
                return Err(LErr::Msg(format!(
                    "alignment {} is not a power of 2",
                    a as i32
                )));
            }
            h.align = a;
            Ok(())
        }
        _ => Err(LErr::Arg(
            1,
            format!("invalid format option '{}'", opt as char),
        )),
    }
}

/// luaL_checklstring without raising: Err is the argerror.
unsafe fn check_str<'a>(l: *mut lua_State, n: c_int) -> Result<&'a [u8], LErr> {
    unsafe {
        match lua_type(l, n) {
            LUA_TSTRING | LUA_TNUMBER => Ok(to_bytes(l, n).unwrap_or(b"")),
            t => Err(LErr::Arg(n, type_err(l, t, "string"))),
        }
    }
}

unsafe fn check_num(l: *mut lua_State, n: c_int) -> Result<f64, LErr> {
    unsafe {
        let d = lua_tonumber(l, n);
        if d == 0.0 && lua_isnumber(l, n) == 0 {
            return Err(LErr::Arg(n, type_err(l, lua_type(l, n), "number")));
        }
        Ok(d)
    }
}

pub(crate) unsafe fn type_err(l: *mut lua_State, t: c_int, expected: &str) -> String {
    unsafe {
        let tn = std::ffi::CStr::from_ptr(lua_typename(l, t)).to_string_lossy();
        format!("{expected} expected, got {tn}")
    }
}

/// Lua string data stays valid while it is on the stack; C strings stop at NUL.
fn cstr(b: &[u8]) -> &[u8] {
    match b.iter().position(|&c| c == 0) {
        Some(n) => &b[..n],
        None => b,
    }
}

unsafe fn pack_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        let fmt = cstr(check_str(l, 1)?);
        // As struct.c: a nil separates the arguments from its buffer, so a
        // missing argument reads as nil rather than "no value".
        lua_pushnil(l);
        let mut h = Header::default();
        let mut arg = 2;
        let mut total = 0usize;
        let mut out = Vec::new();
        let mut i = 0;
        while i < fmt.len() {
            let opt = fmt[i];
            i += 1;
            let mut size = optsize(opt, fmt, &mut i)?;
            let toalign = gettoalign(total, &h, opt, size);
            total += toalign;
            out.resize(out.len() + toalign, 0);
            match opt {
                b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                    let n = check_num(l, arg)?;
                    arg += 1;
                    let mut v: u64 = if n < 0.0 {
                        crate::scripting::lua::d2ll(n) as u64
                    } else {
                        d2ull(n)
                    };
                    let mut buf = vec![0u8; size];
                    if h.little {
                        for b in buf.iter_mut() {
                            *b = v as u8;
                            v >>= 8;
                        }
                    } else {
                        for b in buf.iter_mut().rev() {
                            *b = v as u8;
                            v >>= 8;
                        }
                    }
                    out.extend_from_slice(&buf);
                }
                b'x' => out.push(0),
                b'f' => {
                    let f = check_num(l, arg)? as f32;
                    arg += 1;
                    out.extend_from_slice(&if h.little {
                        f.to_le_bytes()
                    } else {
                        f.to_be_bytes()
                    });
                }
                b'd' => {
                    let d = check_num(l, arg)?;
                    arg += 1;
                    out.extend_from_slice(&if h.little {
                        d.to_le_bytes()
                    } else {
                        d.to_be_bytes()
                    });
                }
                b'c' | b's' => {
                    let s = check_str(l, arg)?;
                    arg += 1;
                    if size == 0 {
                        size = s.len();
                    }
                    if s.len() < size {
                        return Err(LErr::Arg(arg, "string too short".into()));
                    }
                    out.extend_from_slice(&s[..size]);
                    if opt == b's' {
                        out.push(0);
                        size += 1;
                    }
                }
                _ => controloptions(opt, fmt, &mut i, &mut h)?,
            }
            total += size;
        }
        push_bytes(l, &out);
        Ok(1)
    }
}
cfn!(pack, pack_);

/// C's (unsigned long) cast of a non-negative double on x86-64 (values past
/// 2^64 and NaN as the compiler's conversion sequence gives them).
fn d2ull(n: f64) -> u64 {
    use crate::scripting::lua::d2ll;
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    if n.is_nan() {
        1 << 63
    } else if n < TWO63 {
        d2ll(n) as u64
    } else {
        (d2ll(n - TWO63) as u64) ^ (1 << 63)
    }
}

fn getinteger(b: &[u8], little: bool, signed: bool) -> f64 {
    let size = b.len();
    let mut v: u64 = 0;
    if !little {
        for &c in b {
            v = (v << 8) | c as u64;
        }
    } else {
        for &c in b.iter().rev() {
            v = (v << 8) | c as u64;
        }
    }
    if !signed {
        v as f64
    } else {
        let mask = (!0u64).wrapping_shl((size * 8).wrapping_sub(1) as u32);
        if v & mask != 0 {
            v |= mask;
        }
        v as i64 as f64
    }
}

unsafe fn unpack_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        let fmt = cstr(check_str(l, 1)?);
        let data = check_str(l, 2)?;
        let ld = data.len();
        let pos0: i64 = match lua_type(l, 3) {
            LUA_TNONE | LUA_TNIL => 1,
            _ => {
                let d = lua_tonumber(l, 3);
                if d == 0.0 && lua_isnumber(l, 3) == 0 {
                    return Err(LErr::Arg(3, type_err(l, lua_type(l, 3), "number")));
                }
                crate::scripting::lua::d2ll(d)
            }
        };
        // size_t arithmetic as in C: negative offsets wrap to huge values.
        let mut pos = pos0 as u64 as usize;
        if pos == 0 {
            return Err(LErr::Arg(3, "offset must be 1 or greater".into()));
        }
        pos -= 1;
        let mut n = 0;
        let mut h = Header::default();
        let mut i = 0;
        while i < fmt.len() {
            let opt = fmt[i];
            i += 1;
            let mut size = optsize(opt, fmt, &mut i)?;
            pos = pos.wrapping_add(gettoalign(pos, &h, opt, size));
            if !(size <= ld && pos <= ld - size) {
                return Err(LErr::Arg(2, "data string too short".into()));
            }
            if lua_checkstack(l, 2) == 0 {
                return Err(LErr::Msg("stack overflow (too many results)".into()));
            }
            match opt {
                b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                    let v = getinteger(&data[pos..pos + size], h.little, opt.is_ascii_lowercase());
                    lua_pushnumber(l, v);
                    n += 1;
                }
                b'x' => {}
                b'f' => {
                    let mut b = [0u8; 4];
                    b.copy_from_slice(&data[pos..pos + 4]);
                    let f = if h.little {
                        f32::from_le_bytes(b)
                    } else {
                        f32::from_be_bytes(b)
                    };
                    lua_pushnumber(l, f as f64);
                    n += 1;
                }
                b'd' => {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&data[pos..pos + 8]);
                    let d = if h.little {
                        f64::from_le_bytes(b)
                    } else {
                        f64::from_be_bytes(b)
                    };
                    lua_pushnumber(l, d);
                    n += 1;
                }
                b'c' => {
                    if size == 0 {
                        if n == 0 || lua_isnumber(l, -1) == 0 {
                            return Err(LErr::Msg("format 'c0' needs a previous size".into()));
                        }
                        // C's (size_t) cast: -1 is huge ("too short"), where
                        // Rust's saturating cast would give 0.
                        size = d2size(lua_tonumber(l, -1));
                        lua_pop(l, 1);
                        n -= 1;
                        if !(size <= ld && pos <= ld - size) {
                            return Err(LErr::Arg(2, "data string too short".into()));
                        }
                    }
                    push_bytes(l, &data[pos..pos + size]);
                    n += 1;
                }
                b's' => {
                    let Some(e) = data[pos..].iter().position(|&c| c == 0) else {
                        return Err(LErr::Msg("unfinished string in data".into()));
                    };
                    size = e + 1;
                    push_bytes(l, &data[pos..pos + e]);
                    n += 1;
                }
                _ => controloptions(opt, fmt, &mut i, &mut h)?,
            }
            pos += size;
        }
        lua_pushinteger(l, (pos + 1) as isize as _);
        Ok(n + 1)
    }
}
cfn!(unpack, unpack_);

unsafe fn size_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        let fmt = cstr(check_str(l, 1)?);
        let mut h = Header::default();
        let mut pos = 0usize;
        let mut i = 0;
        while i < fmt.len() {
            let opt = fmt[i];
            i += 1;
            let size = optsize(opt, fmt, &mut i)?;
            pos += gettoalign(pos, &h, opt, size);
            if opt == b's' {
                return Err(LErr::Arg(1, "option 's' has no fixed size".into()));
            } else if opt == b'c' && size == 0 {
                return Err(LErr::Arg(1, "option 'c0' has no fixed size".into()));
            }
            if !opt.is_ascii_alphanumeric() {
                controloptions(opt, fmt, &mut i, &mut h)?;
            }
            pos += size;
        }
        lua_pushinteger(l, pos as _);
        Ok(1)
    }
}
cfn!(size, size_);

pub unsafe extern "C-unwind" fn open(l: *mut lua_State) -> c_int {
    unsafe {
        lua_newtable(l);
        let funcs: [(&std::ffi::CStr, lua_CFunction); 3] =
            [(c"pack", pack), (c"unpack", unpack), (c"size", size)];
        for (n, f) in funcs {
            lua_pushcfunction(l, f);
            lua_setfield(l, -2, n.as_ptr());
        }
        lua_pushvalue(l, -1);
        lua_setfield(l, LUA_GLOBALSINDEX, c"struct".as_ptr());
        1
    }
}

/// C's (size_t) cast of a double as x86-64 does it: below 2^63 through the
/// signed conversion (negative values wrap, NaN and out of range give 2^63),
/// above it through the offset trick gcc emits.
fn d2size(d: f64) -> usize {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    let v = if d >= TWO63 {
        (crate::scripting::lua::d2ll(d - TWO63) as u64) ^ (1 << 63)
    } else {
        crate::scripting::lua::d2ll(d) as u64
    };
    v as usize
}

#[cfg(test)]
mod d2size_tests {
    use super::d2size;

    #[test]
    fn matches_x86_casts() {
        assert_eq!(d2size(3.0), 3);
        assert_eq!(d2size(-1.0), usize::MAX);
        assert_eq!(d2size(f64::NAN), 1 << 63);
        assert_eq!(d2size(1e300), 0);
        assert_eq!(d2size(9_223_372_036_854_775_808.0), 1 << 63);
    }
}
