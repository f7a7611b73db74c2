//! Building the Lua states: the EVAL sandbox, the functions state with its
//! library API, and the globals protection (allow list, read-only tables).

use super::*;

/// Builds a sandboxed state like Redis's scriptingInit.
pub(super) unsafe fn new_state(ctx: *mut Ctx) -> *mut lua_State {
    unsafe {
        let l = luaL_newstate();
        lua_pushlightuserdata(l, ctx as *mut c_void);
        lua_setfield(l, LUA_REGISTRYINDEX, CTX_KEY.as_ptr());

        // While loading libraries, only allow-listed globals may be created.
        lua_pushvalue(l, LUA_GLOBALSINDEX);
        lua_newtable(l);
        set_fn(l, c"__newindex", g_newindex_allow);
        lua_setmetatable(l, -2);
        lua_pop(l, 1);

        let libs: [(&CStr, lua_CFunction); 9] = [
            (c"", luaopen_base),
            (c"table", luaopen_table),
            (c"string", luaopen_string),
            (c"math", luaopen_math),
            (c"debug", luaopen_debug),
            (c"cjson", crate::scripting::libs::cjson::open),
            (c"struct", crate::scripting::libs::structlib::open),
            (c"cmsgpack", crate::scripting::libs::cmsgpack::open),
            (c"bit", crate::scripting::libs::bit::open),
        ];
        for (name, f) in libs {
            lua_pushcfunction(l, f);
            lua_pushstring_(l, name.as_ptr());
            lua_call(l, 1, 0);
        }

        lua_pushcfunction(l, g_pcall);
        lua_setfield(l, LUA_GLOBALSINDEX, c"pcall".as_ptr());

        lua_newtable(l);
        set_fn(l, c"call", r_call);
        set_fn(l, c"pcall", r_pcall);
        set_fn(l, c"log", r_log);
        set_log_levels_and_version(l);
        set_fn(l, c"setresp", r_setresp);
        set_fn(l, c"sha1hex", r_sha1hex);
        set_fn(l, c"error_reply", r_error_reply);
        set_fn(l, c"status_reply", r_status_reply);
        set_fn(l, c"set_repl", r_set_repl);
        set_num(l, c"REPL_NONE", 0.0);
        set_num(l, c"REPL_AOF", 1.0);
        set_num(l, c"REPL_SLAVE", 2.0);
        set_num(l, c"REPL_REPLICA", 2.0);
        set_num(l, c"REPL_ALL", 3.0);
        set_fn(l, c"acl_check_cmd", r_acl_check_cmd);
        set_fn(l, c"breakpoint", r_breakpoint);
        set_fn(l, c"debug", r_debug);
        set_fn(l, c"replicate_commands", r_replicate_commands);
        lua_setfield(l, LUA_GLOBALSINDEX, c"redis".as_ptr());

        lua_getfield_(l, LUA_GLOBALSINDEX, c"math".as_ptr());
        set_fn(l, c"random", m_random);
        set_fn(l, c"randomseed", m_randomseed);
        lua_pop(l, 1);

        // The pcall error handler: turns any error into a table carrying the
        // position of the Lua code that failed (the caller of a C function).
        let handler = b"local dbg = debug\n\
            debug = nil\n\
            function __redis__err__handler(err)\n\
            \x20 local i = dbg.getinfo(2, 'nSl')\n\
            \x20 if i and i.what == 'C' then i = dbg.getinfo(3, 'nSl') end\n\
            \x20 if type(err) ~= 'table' then err = {err = 'ERR ' .. tostring(err)} end\n\
            \x20 if i then\n\
            \x20   err['source'] = i.source\n\
            \x20   err['line'] = i.currentline\n\
            \x20 end\n\
            \x20 return err\n\
            end\n";
        luaL_loadbuffer(
            l,
            handler.as_ptr() as *const c_char,
            handler.len(),
            c"@err_handler_def".as_ptr(),
        );
        lua_pcall(l, 0, 0, 0);

        // Lock the globals: reading a missing one errors, and every table
        // reachable from _G (and their metatables) becomes read-only.
        lua_pushvalue(l, LUA_GLOBALSINDEX);
        lua_newtable(l);
        set_fn(l, c"__index", g_missing_global);
        lua_setmetatable(l, -2);
        protect_recursively(l);
        lua_pop(l, 1);
        // The string metatable is locked too (Redis security fix for
        // metatable tampering, present in the packaged 7.0.15).
        push_bytes(l, b"");
        if lua_getmetatable(l, -1) != 0 {
            protect_recursively(l);
            lua_pop(l, 1);
        }
        lua_pop(l, 1);
        l
    }
}

/// The functions state, as Redis's luaEngineInitEngine: the full API, a
/// library API (`redis.register_function`, `redis.log`, the versions) that
/// a library load sees as its globals, and fresh read-only globals whose
/// `__index` switches between the two.
/// The `redis` table's log levels and version fields (table on top of the stack),
/// shared by the scripts' and the function loads' `redis`.
unsafe fn set_log_levels_and_version(l: *mut lua_State) {
    unsafe {
        set_num(l, c"LOG_DEBUG", 0.0);
        set_num(l, c"LOG_VERBOSE", 1.0);
        set_num(l, c"LOG_NOTICE", 2.0);
        set_num(l, c"LOG_WARNING", 3.0);
        set_num(l, c"REDIS_VERSION_NUM", REDIS_VERSION_NUM);
        push_bytes(l, crate::REDIS_VERSION.as_bytes());
        lua_setfield(l, -2, c"REDIS_VERSION".as_ptr());
    }
}

pub(super) unsafe fn new_function_state(ctx: *mut Ctx) -> *mut lua_State {
    unsafe {
        let l = new_state(ctx);
        lua_newtable(l); // the load's globals
        lua_newtable(l); // its `redis`
        set_fn(l, c"register_function", r_register_function);
        set_fn(l, c"log", r_log);
        set_log_levels_and_version(l);
        set_error_metatable(l);
        lua_setfield(l, -2, c"redis".as_ptr());
        set_error_metatable(l);
        protect_recursively(l);
        lua_setfield(l, LUA_REGISTRYINDEX, LIBRARY_API.as_ptr());

        lua_pushvalue(l, LUA_GLOBALSINDEX);
        lua_setfield(l, LUA_REGISTRYINDEX, GLOBALS_API.as_ptr());

        lua_newtable(l); // new globals
        lua_newtable(l); // their metatable
        lua_pushvalue(l, LUA_GLOBALSINDEX);
        lua_setfield(l, -2, c"__index".as_ptr());
        lua_enablereadonlytable(l, -1, 1);
        lua_setmetatable(l, -2);
        lua_enablereadonlytable(l, -1, 1);
        lua_replace(l, LUA_GLOBALSINDEX);
        l
    }
}

/// A metatable on the table at the top whose `__index` raises Redis's
/// "nonexistent global variable" error.
pub(super) unsafe fn set_error_metatable(l: *mut lua_State) {
    unsafe {
        lua_newtable(l);
        set_fn(l, c"__index", g_missing_global);
        lua_setmetatable(l, -2);
    }
}

/// Points the globals' `__index` at the registry table `key`.
pub(super) unsafe fn set_globals_index(l: *mut lua_State, key: &CStr) {
    unsafe {
        if lua_getmetatable(l, LUA_GLOBALSINDEX) == 0 {
            return;
        }
        lua_enablereadonlytable(l, -1, 0);
        lua_getfield_(l, LUA_REGISTRYINDEX, key.as_ptr());
        lua_setfield(l, -2, c"__index".as_ptr());
        lua_enablereadonlytable(l, -1, 1);
        lua_pop(l, 1);
    }
}

/// Redis's globals allow list (getfenv, setfenv and newproxy were dropped by
/// a later security fix the packaged 7.0.15 carries).
pub(super) const GLOBALS_ALLOWED: &[&[u8]] = &[
    b"string",
    b"cjson",
    b"bit",
    b"cmsgpack",
    b"math",
    b"table",
    b"struct",
    b"redis",
    b"__redis__err__handler",
    b"xpcall",
    b"tostring",
    b"setmetatable",
    b"next",
    b"assert",
    b"tonumber",
    b"rawequal",
    b"collectgarbage",
    b"getmetatable",
    b"rawset",
    b"pcall",
    b"coroutine",
    b"type",
    b"_G",
    b"select",
    b"unpack",
    b"gcinfo",
    b"pairs",
    b"rawget",
    b"loadstring",
    b"ipairs",
    b"_VERSION",
    b"load",
    b"error",
    b"debug",
];

pub(super) unsafe fn g_newindex_allow_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        if lua_gettop(l) != 3 {
            return Err(LErr::Msg(
                "Wrong number of arguments to luaNewIndexAllowList".into(),
            ));
        }
        if lua_type(l, -3) != LUA_TTABLE {
            return Err(LErr::Msg(
                "first argument to luaNewIndexAllowList must be a table".into(),
            ));
        }
        if lua_isstring(l, -2) == 0 {
            return Err(LErr::Msg(
                "Second argument to luaNewIndexAllowList must be a string or number".into(),
            ));
        }
        let name = to_cstr_bytes(l, -2).unwrap_or(b"");
        if GLOBALS_ALLOWED.contains(&name) {
            lua_rawset(l, -3);
        }
        // Others (print, dofile, loadfile...) are silently left out.
        Ok(0)
    }
}
cfn!(g_newindex_allow, g_newindex_allow_);

pub(super) unsafe fn g_missing_global_(l: *mut lua_State) -> Result<c_int, LErr> {
    unsafe {
        if lua_gettop(l) != 2 {
            return Err(LErr::Msg(
                "Wrong number of arguments to luaProtectedTableError".into(),
            ));
        }
        if lua_isstring(l, -1) == 0 {
            return Err(LErr::Msg(
                "Second argument to luaProtectedTableError must be a string or number".into(),
            ));
        }
        let name = String::from_utf8_lossy(to_cstr_bytes(l, -1).unwrap_or(b"")).into_owned();
        Err(LErr::Msg(format!(
            "Script attempted to access nonexistent global variable '{name}'"
        )))
    }
}
cfn!(g_missing_global, g_missing_global_);

/// The global `pcall`: Redis 7 errors are tables; pcall hands back their
/// `err` string as earlier versions did.
pub(super) unsafe extern "C-unwind" fn g_pcall(l: *mut lua_State) -> c_int {
    unsafe {
        let argc = lua_gettop(l);
        if argc == 0 {
            lua_pushboolean(l, 0);
            // Redis's version calls the slot past the stack top, which holds
            // the placeholder boolean.
            push_bytes(l, b"attempt to call a boolean value");
            return 2;
        }
        lua_pushboolean(l, 1);
        lua_insert(l, 1);
        if lua_pcall(l, argc - 1, LUA_MULTRET, 0) != 0 {
            lua_remove(l, 1);
            if lua_type(l, -1) == LUA_TTABLE {
                lua_getfield_(l, -1, c"err".as_ptr());
                if lua_isstring(l, -1) != 0 {
                    lua_replace(l, -2);
                } else {
                    lua_pop(l, 1);
                }
            }
            lua_pushboolean(l, 0);
            lua_insert(l, 1);
        }
        lua_gettop(l)
    }
}
