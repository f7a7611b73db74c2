//! LuaBitOp: 32-bit operations on Lua numbers.

use std::os::raw::c_int;

use mlua::ffi::*;

use crate::scripting::lua::push_bytes;

/// Argument as 32 bits: the double's low word after adding 2^52+2^51
/// (wraps modulo 2^32 the way LuaBitOp does).
unsafe fn barg(l: *mut lua_State, idx: c_int) -> u32 {
    unsafe {
        let n = lua_tonumber(l, idx) + 6_755_399_441_055_744.0;
        let b = n.to_bits() as u32;
        if b == 0 && lua_isnumber(l, idx) == 0 {
            luaL_typerror(l, idx, c"number".as_ptr());
        }
        b
    }
}

unsafe fn ret(l: *mut lua_State, b: u32) -> c_int {
    unsafe { lua_pushnumber(l, b as i32 as f64) };
    1
}

unsafe extern "C-unwind" fn tobit(l: *mut lua_State) -> c_int {
    unsafe { ret(l, barg(l, 1)) }
}
unsafe extern "C-unwind" fn bnot(l: *mut lua_State) -> c_int {
    unsafe { ret(l, !barg(l, 1)) }
}

macro_rules! fold {
    ($name:ident, $op:tt) => {
        #[allow(clippy::assign_op_pattern)]
        unsafe extern "C-unwind" fn $name(l: *mut lua_State) -> c_int {
            unsafe {
                let mut b = barg(l, 1);
                let mut i = lua_gettop(l);
                while i > 1 {
                    b = b $op barg(l, i);
                    i -= 1;
                }
                ret(l, b)
            }
        }
    };
}
fold!(band, &);
fold!(bor, |);
fold!(bxor, ^);

macro_rules! shift {
    ($name:ident, $f:expr) => {
        unsafe extern "C-unwind" fn $name(l: *mut lua_State) -> c_int {
            unsafe {
                let b = barg(l, 1);
                let n = barg(l, 2) & 31;
                let f: fn(u32, u32) -> u32 = $f;
                ret(l, f(b, n))
            }
        }
    };
}
shift!(lshift, |b, n| b << n);
shift!(rshift, |b, n| b >> n);
shift!(arshift, |b, n| ((b as i32) >> n) as u32);
shift!(rol, |b, n| b.rotate_left(n));
shift!(ror, |b, n| b.rotate_right(n));

unsafe extern "C-unwind" fn bswap(l: *mut lua_State) -> c_int {
    unsafe { ret(l, barg(l, 1).swap_bytes()) }
}

unsafe extern "C-unwind" fn tohex(l: *mut lua_State) -> c_int {
    unsafe {
        let mut b = barg(l, 1);
        let mut n: i32 = if lua_type(l, 2) == LUA_TNONE {
            8
        } else {
            barg(l, 2) as i32
        };
        let mut digits: &[u8; 16] = b"0123456789abcdef";
        if n == i32::MIN {
            // CVE-2024-31449 fix: -INT32_MIN overflows.
            n = i32::MIN + 1;
        }
        if n < 0 {
            n = n.wrapping_neg();
            digits = b"0123456789ABCDEF";
        }
        let n = n.clamp(0, 8) as usize;
        let mut buf = [0u8; 8];
        for i in (0..n).rev() {
            buf[i] = digits[(b & 15) as usize];
            b >>= 4;
        }
        push_bytes(l, &buf[..n]);
        1
    }
}

pub unsafe extern "C-unwind" fn open(l: *mut lua_State) -> c_int {
    unsafe {
        let funcs: [(&std::ffi::CStr, lua_CFunction); 12] = [
            (c"tobit", tobit),
            (c"bnot", bnot),
            (c"band", band),
            (c"bor", bor),
            (c"bxor", bxor),
            (c"lshift", lshift),
            (c"rshift", rshift),
            (c"arshift", arshift),
            (c"rol", rol),
            (c"ror", ror),
            (c"bswap", bswap),
            (c"tohex", tohex),
        ];
        lua_newtable(l);
        for (n, f) in funcs {
            lua_pushcfunction(l, f);
            lua_setfield(l, -2, n.as_ptr());
        }
        lua_pushvalue(l, -1);
        lua_setfield(l, LUA_GLOBALSINDEX, c"bit".as_ptr());
        1
    }
}
