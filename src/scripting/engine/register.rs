//! FUNCTION LOAD: the load time limit and `redis.register_function`.

use super::*;

/// FUNCTION LOAD's time limit.
pub(super) unsafe extern "C-unwind" fn load_hook(l: *mut lua_State, _ar: *mut lua_Debug) {
    unsafe {
        let c = ctx(l);
        if c.load_timeout_ms > 0 && c.start.elapsed().as_millis() as u64 > c.load_timeout_ms {
            lua_sethook(l, Some(load_hook), LUA_MASKLINE, 0);
            push_error(l, "FUNCTION LOAD timeout");
            lua_error(l);
        }
    }
}

/// `redis.register_function(name, callback)` or
/// `redis.register_function{function_name=, callback=, flags=, description=}`.
pub(super) unsafe fn r_register_function_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        let c = ctx(l);
        if c.loading.is_none() {
            push_error(
                l,
                "redis.register_function can only be called on FUNCTION LOAD command",
            );
            return Err(LErr::Top);
        }
        let argc = lua_gettop(l);
        if !(1..=2).contains(&argc) {
            push_error(l, "wrong number of arguments to redis.register_function");
            return Err(LErr::Top);
        }
        let read = if argc == 1 {
            register_named_args(l)
        } else {
            register_positional_args(l)
        };
        let (name, desc, flags, fref) = match read {
            Ok(r) => r,
            Err(e) => {
                push_error(l, e);
                return Err(LErr::Top);
            }
        };
        let regs = c.loading.as_mut().expect("checked above");
        let err = if !functions::valid_name(&name) {
            Some(functions::NAME_ERR)
        } else if regs.iter().any(|r| r.info.name.as_bytes() == &name[..]) {
            Some("Function already exists in the library")
        } else {
            None
        };
        if let Some(e) = err {
            luaL_unref(l, LUA_REGISTRYINDEX, fref);
            drop((name, desc));
            push_error(l, e);
            return Err(LErr::Top);
        }
        regs.push(Registered {
            info: FunctionInfo {
                name: String::from_utf8_lossy(&name).into_owned(),
                desc: desc.map(Bytes::from),
                flags: ScriptFlags(flags),
            },
            fref,
        });
        Ok(0)
    }
}
cfn!(r_register_function, r_register_function_);

pub(super) type RegisterArgs = (Vec<u8>, Option<Vec<u8>>, u8, c_int);

pub(super) unsafe fn register_positional_args(
    l: *mut lua_State,
) -> Result<RegisterArgs, &'static str> {
    unsafe {
        if lua_isstring(l, 1) == 0 {
            return Err("first argument to redis.register_function must be a string");
        }
        let name = to_bytes(l, 1).unwrap_or(b"").to_vec();
        if lua_type(l, 2) != LUA_TFUNCTION {
            return Err("second argument to redis.register_function must be a function");
        }
        let fref = luaL_ref(l, LUA_REGISTRYINDEX);
        Ok((name, None, 0, fref))
    }
}

pub(super) unsafe fn register_named_args(l: *mut lua_State) -> Result<RegisterArgs, &'static str> {
    unsafe {
        if lua_type(l, 1) != LUA_TTABLE {
            return Err(
                "calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).",
            );
        }
        let mut name = None;
        let mut desc = None;
        let mut flags = 0u8;
        let mut fref: Option<c_int> = None;
        let fail = |l: *mut lua_State, fref: Option<c_int>, e: &'static str| {
            if let Some(r) = fref {
                luaL_unref(l, LUA_REGISTRYINDEX, r);
            }
            Err(e)
        };
        lua_pushnil(l);
        while lua_next(l, -2) != 0 {
            if lua_isstring(l, -2) == 0 {
                return fail(
                    l,
                    fref,
                    "named argument key given to redis.register_function is not a string",
                );
            }
            let key = to_cstr_bytes(l, -2).unwrap_or(b"").to_ascii_lowercase();
            if let Err(e) = check_named_arg(l, &key) {
                return fail(l, fref, e);
            }
            match key.as_slice() {
                b"function_name" => name = Some(to_bytes(l, -1).unwrap_or(b"").to_vec()),
                b"description" => desc = Some(to_bytes(l, -1).unwrap_or(b"").to_vec()),
                b"callback" => {
                    if let Some(old) = fref {
                        luaL_unref(l, LUA_REGISTRYINDEX, old);
                    }
                    fref = Some(luaL_ref(l, LUA_REGISTRYINDEX));
                    continue; // luaL_ref popped the value
                }
                _ => match read_flags(l) {
                    Some(f) => flags = f,
                    None => return fail(l, fref, "unknown flag given"),
                },
            }
            lua_pop(l, 1);
        }
        let Some(name) = name else {
            return fail(
                l,
                fref,
                "redis.register_function must get a function name argument",
            );
        };
        let Some(fref) = fref else {
            return Err("redis.register_function must get a callback argument");
        };
        Ok((name, desc, flags, fref))
    }
}

/// Checks the type of the value at the top for the named argument `key`
/// (lowercased); refuses unknown names.
unsafe fn check_named_arg(l: *mut lua_State, key: &[u8]) -> Result<(), &'static str> {
    let (ok, err) = unsafe {
        match key {
            b"function_name" => (
                lua_isstring(l, -1) != 0,
                "function_name argument given to redis.register_function must be a string",
            ),
            b"description" => (
                lua_isstring(l, -1) != 0,
                "description argument given to redis.register_function must be a string",
            ),
            b"callback" => (
                lua_type(l, -1) == LUA_TFUNCTION,
                "callback argument given to redis.register_function must be a function",
            ),
            b"flags" => (
                lua_type(l, -1) == LUA_TTABLE,
                "flags argument to redis.register_function must be a table representing function flags",
            ),
            _ => (false, "unknown argument given to redis.register_function"),
        }
    };
    if ok { Ok(()) } else { Err(err) }
}

/// The flags table at the top: a list of flag names.
pub(super) unsafe fn read_flags(l: *mut lua_State) -> Option<u8> {
    unsafe {
        let mut flags = 0u8;
        let mut j = 1;
        loop {
            lua_pushnumber(l, j as lua_Number);
            lua_gettable(l, -2);
            j += 1;
            match lua_type(l, -1) {
                LUA_TNIL => {
                    lua_pop(l, 1);
                    return Some(flags);
                }
                _ if lua_isstring(l, -1) == 0 => {
                    lua_pop(l, 1);
                    return None;
                }
                _ => {}
            }
            let bit = functions::flag_bit(to_cstr_bytes(l, -1).unwrap_or(b""));
            lua_pop(l, 1);
            flags |= bit?;
        }
    }
}

pub(super) unsafe fn protect_recursively(l: *mut lua_State) {
    unsafe {
        if lua_isreadonlytable(l, -1) != 0 {
            return;
        }
        lua_enablereadonlytable(l, -1, 1);
        lua_checkstack(l, 2);
        lua_pushnil(l);
        while lua_next(l, -2) != 0 {
            if lua_type(l, -1) == LUA_TTABLE {
                protect_recursively(l);
            }
            lua_pop(l, 1);
        }
        if lua_getmetatable(l, -1) != 0 {
            protect_recursively(l);
            lua_pop(l, 1);
        }
    }
}
