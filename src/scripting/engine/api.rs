//! The `redis` table scripts call (call/pcall, replies, log, setresp...),
//! math.random as Redis seeds it, and the instruction-count hook.

use super::*;

/// Arguments of redis.call & co as a command argv (numbers as %.17g).
pub(super) unsafe fn lua_args(l: *mut lua_State) -> Result<Vec<Bytes>, &'static str> {
    unsafe {
        let argc = lua_gettop(l);
        if argc == 0 {
            return Err("Please specify at least one argument for this redis lib call");
        }
        let mut args = Vec::with_capacity(argc as usize);
        for j in 1..=argc {
            if lua_type(l, j) == LUA_TNUMBER {
                args.push(Bytes::from(fmt_g(lua_tonumber(l, j), 17)));
            } else {
                match to_bytes(l, j) {
                    Some(b) => args.push(Bytes::copy_from_slice(b)),
                    None => break,
                }
            }
        }
        lua_settop(l, 0);
        if args.len() != argc as usize {
            return Err("Lua redis lib command arguments must be strings or integers");
        }
        Ok(args)
    }
}

pub(super) unsafe fn redis_generic(l: *mut lua_State, raise_error: bool) -> Result<c_int, LErr> {
    unsafe {
        let c = ctx(l);
        let Some(host) = c.host else {
            push_error(
                l,
                "redis.call/pcall can only be called inside a script invocation",
            );
            return Err(LErr::Top);
        };
        let args = match lua_args(l) {
            Ok(a) => a,
            Err(e) => {
                push_error(l, e);
                return if raise_error { Err(LErr::Top) } else { Ok(1) };
            }
        };
        let resp3 = c.resp == 3;
        let host = &mut *host;
        let res =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| host.call(&args, resp3)))
                .unwrap_or_else(|_| Err("command panicked".to_string()));
        drop(args);
        let is_err = match res {
            Err(e) => {
                push_error(l, &e);
                set_bool_field(l, c"ignore_error_stats_update", true);
                true
            }
            Ok(reply) => {
                crate::scripting::resp::push_reply(l, &reply);
                reply.first() == Some(&b'-')
            }
        };
        if raise_error && is_err {
            Err(LErr::Top)
        } else {
            Ok(1)
        }
    }
}

pub(super) unsafe fn r_call_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe { redis_generic(l, true) }
}
pub(super) unsafe fn r_pcall_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe { redis_generic(l, false) }
}
cfn!(r_call, r_call_);
cfn!(r_pcall, r_pcall_);

pub(super) unsafe fn r_sha1hex_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        if lua_gettop(l) != 1 {
            push_error(l, "wrong number of arguments");
            return Err(LErr::Top);
        }
        let h = sha1hex(to_bytes(l, 1).unwrap_or(b""));
        push_bytes(l, h.as_bytes());
        Ok(1)
    }
}
cfn!(r_sha1hex, r_sha1hex_);

pub(super) unsafe extern "C-unwind" fn r_error_reply(l: *mut lua_State) -> c_int {
    unsafe {
        if lua_gettop(l) != 1 || lua_type(l, -1) != LUA_TSTRING {
            push_error(l, "wrong number or type of arguments");
            return 1;
        }
        let e = to_cstr_bytes(l, -1).unwrap_or(b"");
        if e.first() == Some(&b'-') {
            let e = e.to_vec();
            push_error_buff(l, &e);
        } else {
            let mut v = vec![b'-'];
            v.extend_from_slice(e);
            push_error_buff(l, &v);
        }
        1
    }
}

pub(super) unsafe extern "C-unwind" fn r_status_reply(l: *mut lua_State) -> c_int {
    unsafe {
        if lua_gettop(l) != 1 || lua_type(l, -1) != LUA_TSTRING {
            push_error(l, "wrong number or type of arguments");
            return 1;
        }
        lua_newtable(l);
        push_bytes(l, b"ok");
        lua_pushvalue(l, -3);
        lua_settable(l, -3);
        1
    }
}

pub(super) unsafe fn r_log_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        let argc = lua_gettop(l);
        if argc < 2 {
            push_error(l, "redis.log() requires two arguments or more.");
            return Err(LErr::Top);
        }
        if lua_isnumber(l, -argc) == 0 {
            push_error(l, "First argument must be a number (log level).");
            return Err(LErr::Top);
        }
        let level = lua_tonumber(l, -argc) as i32;
        if !(0..=3).contains(&level) {
            push_error(l, "Invalid debug level.");
            return Err(LErr::Top);
        }
        let mut msg = Vec::new();
        for j in 1..argc {
            if let Some(s) = to_bytes(l, -argc + j) {
                if j != 1 {
                    msg.push(b' ');
                }
                msg.extend_from_slice(s);
            }
        }
        if let Some(h) = ctx(l).host {
            (*h).log(level, &String::from_utf8_lossy(&msg));
        }
        Ok(0)
    }
}
cfn!(r_log, r_log_);

pub(super) unsafe fn r_setresp_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        let c = ctx(l);
        if c.host.is_none() {
            push_error(
                l,
                "redis.setresp can only be called inside a script invocation",
            );
            return Err(LErr::Top);
        }
        if lua_gettop(l) != 1 {
            push_error(l, "redis.setresp() requires one argument.");
            return Err(LErr::Top);
        }
        let resp = lua_tonumber(l, -1) as i32;
        if resp != 2 && resp != 3 {
            push_error(l, "RESP version must be 2 or 3.");
            return Err(LErr::Top);
        }
        c.resp = resp;
        Ok(0)
    }
}
cfn!(r_setresp, r_setresp_);

pub(super) unsafe fn r_set_repl_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        let c = ctx(l);
        let Some(h) = c.host else {
            push_error(
                l,
                "redis.set_repl can only be called inside a script invocation",
            );
            return Err(LErr::Top);
        };
        if lua_gettop(l) != 1 {
            push_error(l, "redis.set_repl() requires two arguments.");
            return Err(LErr::Top);
        }
        let flags = lua_tonumber(l, -1) as i32;
        if flags & !3 != 0 {
            push_error(
                l,
                "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
            );
            return Err(LErr::Top);
        }
        (*h).set_repl(flags);
        Ok(0)
    }
}
cfn!(r_set_repl, r_set_repl_);

pub(super) unsafe fn r_acl_check_cmd_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        let Some(h) = ctx(l).host else {
            push_error(
                l,
                "redis.acl_check_cmd can only be called inside a script invocation",
            );
            return Err(LErr::Top);
        };
        let args = match lua_args(l) {
            Ok(a) => a,
            Err(e) => {
                push_error(l, e);
                return Err(LErr::Top);
            }
        };
        let r = (*h).acl_check_cmd(&args);
        drop(args);
        match r {
            None => {
                push_error(l, "Invalid command passed to redis.acl_check_cmd()");
                Err(LErr::Top)
            }
            Some(ok) => {
                lua_pushboolean(l, ok as c_int);
                Ok(1)
            }
        }
    }
}
cfn!(r_acl_check_cmd, r_acl_check_cmd_);

/// The debugger (SCRIPT DEBUG) is not supported: never active.
pub(super) unsafe extern "C-unwind" fn r_breakpoint(l: *mut lua_State) -> c_int {
    unsafe {
        lua_pushboolean(l, 0);
        1
    }
}

pub(super) unsafe extern "C-unwind" fn r_debug(_l: *mut lua_State) -> c_int {
    0
}

pub(super) unsafe extern "C-unwind" fn r_replicate_commands(l: *mut lua_State) -> c_int {
    unsafe {
        lua_pushboolean(l, 1);
        1
    }
}

pub(super) unsafe fn m_random_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        let c = ctx(l);
        if c.host.is_none() {
            return Err(LErr::Msg(
                "math.random can only be called inside a script invocation".into(),
            ));
        }
        let r = (c.rand.next() % LRAND48_MAX) as f64 / LRAND48_MAX as f64;
        match lua_gettop(l) {
            0 => lua_pushnumber(l, r),
            1 => {
                let u = luaL_checkinteger(l, 1) as c_int;
                if u < 1 {
                    return Err(LErr::Arg(1, "interval is empty".into()));
                }
                lua_pushnumber(l, (r * u as f64).floor() + 1.0);
            }
            2 => {
                let lo = luaL_checkinteger(l, 1) as c_int;
                let u = luaL_checkinteger(l, 2) as c_int;
                if lo > u {
                    return Err(LErr::Arg(2, "interval is empty".into()));
                }
                lua_pushnumber(l, (r * (u as f64 - lo as f64 + 1.0)).floor() + lo as f64);
            }
            _ => return Err(LErr::Msg("wrong number of arguments".into())),
        }
        Ok(1)
    }
}
cfn!(m_random, m_random_);

pub(super) unsafe fn m_randomseed_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        let c = ctx(l);
        if c.host.is_none() {
            return Err(LErr::Msg(
                "math.randomseed can only be called inside a script invocation".into(),
            ));
        }
        let s = luaL_checkinteger(l, 1) as c_int;
        c.rand.seed(s);
        Ok(0)
    }
}
cfn!(m_randomseed, m_randomseed_);

/// Runs every 100000 instructions: SCRIPT KILL and the busy threshold.
pub(super) unsafe extern "C-unwind" fn count_hook(l: *mut lua_State, _ar: *mut lua_Debug) {
    unsafe {
        let c = ctx(l);
        if !c.timed_out {
            let elapsed = c.start.elapsed().as_millis() as u64;
            if elapsed < c.busy_ms {
                return;
            }
            c.timed_out = true;
            c.status
                .timed_out
                .store(true, std::sync::atomic::Ordering::SeqCst);
            if let Some(h) = c.host {
                let msg = format!(
                    "Slow script detected: still in execution after {elapsed} milliseconds. You can try killing the script using the SCRIPT KILL command. Script name is: {}.",
                    c.sha
                );
                (*h).log(crate::scripting::LOG_WARNING, &msg);
            }
        }
        if let Some(h) = c.host {
            (*h).busy(c.start.elapsed().as_millis() as u64);
        }
        if c.status.killed.load(std::sync::atomic::Ordering::SeqCst) {
            if let Some(h) = c.host {
                (*h).log(
                    crate::scripting::LOG_WARNING,
                    "Lua script killed by user with SCRIPT KILL.",
                );
            }
            // From now on fire on every line so pcall cannot swallow the kill.
            lua_sethook(l, Some(count_hook), LUA_MASKLINE, 0);
            push_error(l, "Script killed by user with SCRIPT KILL...");
            lua_error(l);
        }
    }
}
