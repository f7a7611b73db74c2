//! MIGRATE: keys serialized as DUMP payloads and sent to another server as
//! RESTORE (RESTORE-ASKING in cluster mode), deleted here once the target
//! acknowledged them; replicated as a DEL of those keys. Like Redis the
//! call is synchronous: the key's shard waits for the target, bounded by
//! the timeout. Each call opens its own connection (stock caches one per
//! target for 10 s; only the cost differs).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::Bytes;

use super::super::{Ctx, eq_ic, errors, parse_i64};
use crate::rdb::{self, Limits};

const KEYS_NEEDS_EMPTY_KEY: &str =
    "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string";

struct Options {
    copy: bool,
    replace: bool,
    /// (username for AUTH2, password).
    auth: Option<(Option<Bytes>, Bytes)>,
    keys: std::ops::Range<usize>,
}

fn parse_options(args: &[Bytes]) -> Result<Options, &'static str> {
    let mut o = Options {
        copy: false,
        replace: false,
        auth: None,
        keys: 3..4,
    };
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let a = &args[j];
        if eq_ic(a, "copy") {
            o.copy = true;
        } else if eq_ic(a, "replace") {
            o.replace = true;
        } else if eq_ic(a, "auth") {
            if more == 0 {
                return Err(errors::SYNTAX);
            }
            o.auth = Some((None, args[j + 1].clone()));
            j += 1;
        } else if eq_ic(a, "auth2") {
            if more < 2 {
                return Err(errors::SYNTAX);
            }
            o.auth = Some((Some(args[j + 1].clone()), args[j + 2].clone()));
            j += 2;
        } else if eq_ic(a, "keys") {
            if !args[3].is_empty() {
                return Err(KEYS_NEEDS_EMPTY_KEY);
            }
            o.keys = j + 1..args.len();
            break;
        } else {
            return Err(errors::SYNTAX);
        }
        j += 1;
    }
    Ok(o)
}

fn push_command(buf: &mut Vec<u8>, parts: &[&[u8]]) {
    buf.extend_from_slice(format!("*{}\r\n", parts.len()).as_bytes());
    for p in parts {
        buf.extend_from_slice(format!("${}\r\n", p.len()).as_bytes());
        buf.extend_from_slice(p);
        buf.extend_from_slice(b"\r\n");
    }
}

/// The error Redis's MIGRATE gives when the target cannot be reached.
const CONNECT_ERR: &str = "IOERR error or timeout connecting to the client";
const WRITE_ERR: &str = "IOERR error or timeout writing to target instance";
const READ_ERR: &str = "IOERR error or timeout reading to target instance";

/// Err: the reply. Redis connects without blocking and waits for the
/// socket to be writable, so a refused connection shows up as a write
/// error; a bad address or a connect timeout as a connect error.
fn connect(host: &[u8], port: &[u8], timeout: Duration) -> Result<TcpStream, &'static str> {
    let host = std::str::from_utf8(host).map_err(|_| CONNECT_ERR)?;
    // Redis reads the port with atoi: anything else is port 0, which fails.
    let port: u16 = std::str::from_utf8(port)
        .ok()
        .and_then(|p| p.parse().ok())
        .ok_or(CONNECT_ERR)?;
    let addr = (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or(CONNECT_ERR)?;
    let s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| match e.kind() {
        std::io::ErrorKind::ConnectionRefused => WRITE_ERR,
        _ => CONNECT_ERR,
    })?;
    let set = |s: &TcpStream| -> std::io::Result<()> {
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        s.set_nodelay(true)
    };
    set(&s).map_err(|_| CONNECT_ERR)?;
    Ok(s)
}

/// One reply line without its CRLF; None on a socket error, timeout or EOF.
fn read_line(r: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut line = Vec::new();
    match r.read_until(b'\n', &mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) if line.last() != Some(&b'\n') => None,
        Ok(_) => {
            while matches!(line.last(), Some(b'\n' | b'\r')) {
                line.pop();
            }
            Some(line)
        }
    }
}

pub fn migrate(ctx: &mut Ctx, args: &[Bytes]) {
    // Never replayed as MIGRATE: a DEL of the moved keys, or nothing.
    crate::replication::custom();
    let o = match parse_options(args) {
        Ok(o) => o,
        Err(e) => return ctx.out.err(e),
    };
    let (Some(timeout), Some(dbid)) = (parse_i64(&args[5]), parse_i64(&args[4])) else {
        return ctx.out.err(errors::NOT_INT);
    };
    let timeout = Duration::from_millis(if timeout <= 0 { 1000 } else { timeout as u64 });
    let (lim, compression) = {
        let cfg = ctx.srv.config.read().unwrap();
        (Limits::from_config(&cfg), cfg.get_bool("rdbcompression"))
    };
    // The keys present, with their payload and absolute expiry (0: none).
    let mut found: Vec<(Bytes, Vec<u8>, u64)> = Vec::new();
    for k in &args[o.keys.clone()] {
        let Some(e) = ctx.lookup_read(k) else {
            continue;
        };
        let payload = rdb::dump_payload(&e.value, &lim, compression);
        let at = ctx.db(k).expire_of(k);
        found.push((k.clone(), payload, at));
    }
    if found.is_empty() {
        return ctx.out.simple("NOKEY");
    }
    let stream = match connect(&args[1], &args[2], timeout) {
        Ok(s) => s,
        Err(e) => return ctx.out.err(e),
    };
    let mut buf = Vec::new();
    if let Some((user, pass)) = &o.auth {
        match user {
            Some(u) => push_command(&mut buf, &[b"AUTH", u, pass]),
            None => push_command(&mut buf, &[b"AUTH", pass]),
        }
    }
    push_command(&mut buf, &[b"SELECT", dbid.to_string().as_bytes()]);
    let restore: &[u8] = if ctx.srv.cluster.is_some() {
        b"RESTORE-ASKING"
    } else {
        b"RESTORE"
    };
    let now = ctx.now;
    let mut sent: Vec<Bytes> = Vec::new();
    for (k, payload, at) in &found {
        let mut ttl = 0i64;
        if *at != 0 {
            ttl = *at as i64 - now as i64;
            // Expired since the lookup: not sent.
            if ttl < 0 {
                continue;
            }
            ttl = ttl.max(1);
        }
        let ttl = ttl.to_string();
        let mut parts: Vec<&[u8]> = vec![restore, k, ttl.as_bytes(), payload];
        if o.replace {
            parts.push(b"REPLACE");
        }
        push_command(&mut buf, &parts);
        sent.push(k.clone());
    }
    if (&stream).write_all(&buf).is_err() {
        return ctx.out.err(WRITE_ERR);
    }
    let mut r = BufReader::new(&stream);
    let auth_reply = match o.auth {
        Some(_) => match read_line(&mut r) {
            Some(l) => Some(l),
            None => return ctx.out.err(READ_ERR),
        },
        None => None,
    };
    let Some(select_reply) = read_line(&mut r) else {
        return ctx.out.err(READ_ERR);
    };
    let mut target_err: Option<Vec<u8>> = None;
    let mut socket_err = false;
    let mut deleted: Vec<Bytes> = Vec::new();
    let dbi = ctx.db;
    for k in &sent {
        let Some(reply) = read_line(&mut r) else {
            socket_err = true;
            break;
        };
        let failed = [
            auth_reply.as_deref(),
            Some(&select_reply[..]),
            Some(&reply[..]),
        ]
        .into_iter()
        .flatten()
        .find(|l| l.first() == Some(&b'-'));
        if let Some(e) = failed {
            target_err.get_or_insert_with(|| e[1..].to_vec());
        } else if !o.copy {
            let store = ctx.store_of(k);
            if store.dbs[dbi].remove(k).is_some() {
                store.dirty += 1;
                // XREADGROUP waiters on a moved stream must be told.
                let dbkey = (dbi, Box::<[u8]>::from(&k[..]));
                if !store.blocked.is_empty() && store.blocked.contains_key(&dbkey) {
                    store.ready_keys.push(dbkey);
                }
            }
            ctx.notify(crate::storage::notify::GENERIC, "del", k);
            deleted.push(k.clone());
        }
    }
    if !deleted.is_empty() {
        let mut del: Vec<&[u8]> = vec![b"DEL"];
        del.extend(deleted.iter().map(|k| &k[..]));
        crate::replication::propagate(dbi, &del);
    }
    match target_err {
        Some(e) => ctx.out.err(&format!(
            "ERR Target instance replied with error: {}",
            String::from_utf8_lossy(&e)
        )),
        None if socket_err => ctx.out.err(READ_ERR),
        None => ctx.out.ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<Bytes> {
        s.iter().map(|a| Bytes::from(a.to_string())).collect()
    }

    #[test]
    fn options() {
        let o = parse_options(&args(&[
            "migrate", "h", "1", "", "0", "5", "copy", "keys", "a", "b",
        ]))
        .unwrap();
        assert!(o.copy && !o.replace && o.auth.is_none());
        assert_eq!(o.keys, 8..10);
        let o = parse_options(&args(&[
            "migrate", "h", "1", "k", "0", "5", "auth2", "u", "p",
        ]))
        .unwrap();
        assert_eq!(o.keys, 3..4);
        assert_eq!(o.auth.unwrap().0.as_deref(), Some(&b"u"[..]));
        assert_eq!(
            parse_options(&args(&["migrate", "h", "1", "k", "0", "5", "keys", "a"])).err(),
            Some(KEYS_NEEDS_EMPTY_KEY)
        );
        assert_eq!(
            parse_options(&args(&["migrate", "h", "1", "k", "0", "5", "auth2", "u"])).err(),
            Some(errors::SYNTAX)
        );
        assert_eq!(
            parse_options(&args(&["migrate", "h", "1", "k", "0", "5", "bogus"])).err(),
            Some(errors::SYNTAX)
        );
    }
}
