//! Script results to RESP: the error reply of a failed run and Redis's
//! luaReplyToRedisReply.

use super::*;

/// Redis's error reply for a failed run (luaCallFunction).
pub(super) unsafe fn error_reply(l: *mut lua_State, sha: &str, out: &mut Out) {
    unsafe {
        if lua_type(l, -1) != LUA_TTABLE {
            let msg = if lua_isstring(l, -1) != 0 {
                to_cstr_bytes(l, -1).unwrap_or(b"").to_vec()
            } else {
                b"execution failure".to_vec()
            };
            let msg = &msg[..msg.len().min(100)];
            let mut e = format!("Error running script {sha}, ").into_bytes();
            e.extend_from_slice(msg);
            let mut line = b"ERR ".to_vec();
            line.extend_from_slice(trim_crlf(&e));
            crate::protocol::err_line(&mut out.buf, &line);
            return;
        }
        let info = error_info(l);
        let mut e = vec![b'-'];
        e.extend_from_slice(&info.msg);
        if let (Some(line), Some(source)) = (&info.line, &info.source) {
            e.extend_from_slice(b" script: ");
            e.extend_from_slice(sha.as_bytes());
            e.extend_from_slice(b", on ");
            e.extend_from_slice(source);
            e.push(b':');
            e.extend_from_slice(line);
            e.push(b'.');
        }
        // addReplyErrorFormat("-%s ..."): trimmed after the '-' is in
        // front, newlines become spaces (the packaged 7.0.15 does so;
        // upstream 7.0.15 sent them raw and broke the protocol).
        crate::protocol::err_line(&mut out.buf, &trim_crlf(&e)[1..]);
    }
}

pub(super) struct ErrInfo {
    pub(super) msg: Vec<u8>,
    pub(super) source: Option<Vec<u8>>,
    pub(super) line: Option<Vec<u8>>,
}

/// luaExtractErrorInformation on the value at the top.
pub(super) unsafe fn error_info(l: *mut lua_State) -> ErrInfo {
    unsafe {
        let mut info = ErrInfo {
            msg: Vec::new(),
            source: None,
            line: None,
        };
        if lua_isstring(l, -1) != 0 {
            info.msg = b"ERR ".to_vec();
            info.msg
                .extend_from_slice(to_cstr_bytes(l, -1).unwrap_or(b""));
        }
        let field = |k: &CStr| -> Option<Vec<u8>> {
            lua_getfield_(l, -1, k.as_ptr());
            let r = if lua_isstring(l, -1) != 0 {
                Some(to_cstr_bytes(l, -1).unwrap_or(b"").to_vec())
            } else {
                None
            };
            lua_pop(l, 1);
            r
        };
        if let Some(m) = field(c"err") {
            info.msg = m;
        }
        info.source = field(c"source");
        info.line = field(c"line");
        info
    }
}

/// luaReplyToRedisReply: converts and pops the top value.
pub(super) unsafe fn lua_to_resp(
    l: *mut lua_State,
    w: &mut Vec<u8>,
    resp3: bool,
    script_resp: i32,
) {
    unsafe {
        if lua_checkstack(l, 4) == 0 {
            w.extend_from_slice(b"-ERR reached lua stack limit\r\n");
            lua_pop(l, 1);
            return;
        }
        match lua_type(l, -1) {
            LUA_TSTRING => {
                let b = to_bytes(l, -1).unwrap_or(b"");
                bulk(w, b);
            }
            LUA_TBOOLEAN => {
                let b = lua_toboolean(l, -1) != 0;
                if script_resp == 2 {
                    if b {
                        w.extend_from_slice(b":1\r\n");
                    } else {
                        null(w, resp3);
                    }
                } else if resp3 {
                    w.extend_from_slice(if b { b"#t\r\n" } else { b"#f\r\n" });
                } else {
                    w.extend_from_slice(if b { b":1\r\n" } else { b":0\r\n" });
                }
            }
            LUA_TNUMBER => {
                let n = d2ll(lua_tonumber(l, -1));
                w.extend_from_slice(format!(":{n}\r\n").as_bytes());
            }
            LUA_TTABLE => {
                table_to_resp(l, w, resp3, script_resp);
                return;
            }
            _ => null(w, resp3),
        }
        lua_pop(l, 1);
    }
}

pub(super) fn null(w: &mut Vec<u8>, resp3: bool) {
    w.extend_from_slice(if resp3 { b"_\r\n" } else { b"$-1\r\n" });
}

pub(super) fn bulk(w: &mut Vec<u8>, b: &[u8]) {
    w.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
    w.extend_from_slice(b);
    w.extend_from_slice(b"\r\n");
}

/// Pushes t[k] (raw) and returns its type.
pub(super) unsafe fn rawget_str(l: *mut lua_State, idx: c_int, k: &[u8]) -> c_int {
    unsafe {
        push_bytes(l, k);
        lua_rawget_(l, idx - 1);
        lua_type(l, -1)
    }
}

pub(super) unsafe fn table_to_resp(
    l: *mut lua_State,
    w: &mut Vec<u8>,
    resp3: bool,
    script_resp: i32,
) {
    unsafe {
        if rawget_str(l, -1, b"err") == LUA_TSTRING {
            lua_pop(l, 1);
            let info = error_info(l);
            // addReplyErrorFormatEx("-%s"): trimmed with the '-' in front
            // (so a leading CR/LF stays, as a space), newlines mapped.
            let mut e = vec![b'-'];
            e.extend_from_slice(&info.msg);
            crate::protocol::err_line(w, &trim_crlf(&e)[1..]);
            lua_pop(l, 1);
            return;
        }
        lua_pop(l, 1);
        if rawget_str(l, -1, b"ok") == LUA_TSTRING {
            let s = map_crlf(to_cstr_bytes(l, -1).unwrap_or(b""));
            w.push(b'+');
            w.extend_from_slice(&s);
            w.extend_from_slice(b"\r\n");
            lua_pop(l, 2);
            return;
        }
        lua_pop(l, 1);
        if rawget_str(l, -1, b"double") == LUA_TNUMBER {
            let d = lua_tonumber(l, -1);
            double(w, d, resp3);
            lua_pop(l, 2);
            return;
        }
        lua_pop(l, 1);
        if rawget_str(l, -1, b"big_number") == LUA_TSTRING {
            let s = map_crlf(to_bytes(l, -1).unwrap_or(b""));
            if resp3 {
                w.push(b'(');
                w.extend_from_slice(&s);
                w.extend_from_slice(b"\r\n");
            } else {
                bulk(w, &s);
            }
            lua_pop(l, 2);
            return;
        }
        lua_pop(l, 1);
        if rawget_str(l, -1, b"verbatim_string") == LUA_TTABLE {
            if rawget_str(l, -1, b"format") == LUA_TSTRING {
                let fmt = to_cstr_bytes(l, -1).unwrap_or(b"").to_vec();
                if rawget_str(l, -2, b"string") == LUA_TSTRING {
                    let s = to_bytes(l, -1).unwrap_or(b"");
                    if resp3 {
                        w.extend_from_slice(format!("={}\r\n", s.len() + 4).as_bytes());
                        for i in 0..3 {
                            w.push(*fmt.get(i).unwrap_or(&b' '));
                        }
                        w.push(b':');
                        w.extend_from_slice(s);
                        w.extend_from_slice(b"\r\n");
                    } else {
                        bulk(w, s);
                    }
                    lua_pop(l, 4);
                    return;
                }
                lua_pop(l, 1);
            }
            lua_pop(l, 1);
        }
        lua_pop(l, 1);
        if rawget_str(l, -1, b"map") == LUA_TTABLE {
            let mut body = Vec::new();
            let mut n = 0usize;
            lua_pushnil(l);
            while lua_next(l, -2) != 0 {
                lua_pushvalue(l, -2);
                lua_to_resp(l, &mut body, resp3, script_resp);
                lua_to_resp(l, &mut body, resp3, script_resp);
                n += 1;
            }
            if resp3 {
                w.extend_from_slice(format!("%{n}\r\n").as_bytes());
            } else {
                w.extend_from_slice(format!("*{}\r\n", n * 2).as_bytes());
            }
            w.extend_from_slice(&body);
            lua_pop(l, 2);
            return;
        }
        lua_pop(l, 1);
        if rawget_str(l, -1, b"set") == LUA_TTABLE {
            let mut body = Vec::new();
            let mut n = 0usize;
            lua_pushnil(l);
            while lua_next(l, -2) != 0 {
                lua_pop(l, 1);
                lua_pushvalue(l, -1);
                lua_to_resp(l, &mut body, resp3, script_resp);
                n += 1;
            }
            w.extend_from_slice(format!("{}{n}\r\n", if resp3 { '~' } else { '*' }).as_bytes());
            w.extend_from_slice(&body);
            lua_pop(l, 2);
            return;
        }
        lua_pop(l, 1);
        // Array: stops at the first nil.
        let mut body = Vec::new();
        let mut j = 1;
        loop {
            lua_pushnumber(l, j as f64);
            lua_rawget_(l, -2);
            if lua_type(l, -1) == LUA_TNIL {
                lua_pop(l, 1);
                break;
            }
            lua_to_resp(l, &mut body, resp3, script_resp);
            j += 1;
        }
        w.extend_from_slice(format!("*{}\r\n", j - 1).as_bytes());
        w.extend_from_slice(&body);
        lua_pop(l, 1);
    }
}

pub(super) fn double(w: &mut Vec<u8>, d: f64, resp3: bool) {
    if d.is_infinite() {
        let s: &[u8] = if d > 0.0 { b"inf" } else { b"-inf" };
        if resp3 {
            w.push(b',');
            w.extend_from_slice(s);
            w.extend_from_slice(b"\r\n");
        } else {
            bulk(w, s);
        }
    } else {
        let s = fmt_g(d, 17);
        if resp3 {
            w.push(b',');
            w.extend_from_slice(s.as_bytes());
            w.extend_from_slice(b"\r\n");
        } else {
            bulk(w, s.as_bytes());
        }
    }
}
