//! An AOF base made of commands (`aof-use-rdb-preamble no`), in stock's
//! rewrite order: function libraries, then per DB a SELECT and each key's
//! commands (variadic ones in batches of 64 items) with PEXPIREAT after.

use std::io::{BufWriter, Write};
use std::path::Path;

use crate::rdb::Form;
use crate::rdb::stream::{Id, StreamData};
use crate::server::Server;
use crate::storage::ShardStore;

/// Items per variadic command (stock's AOF_REWRITE_ITEMS_PER_CMD).
const ITEMS_PER_CMD: usize = 64;

struct Cmds<W: Write> {
    w: W,
}

impl<W: Write> Cmds<W> {
    fn cmd(&mut self, args: &[&[u8]]) -> std::io::Result<()> {
        write!(self.w, "*{}\r\n", args.len())?;
        for a in args {
            write!(self.w, "${}\r\n", a.len())?;
            self.w.write_all(a)?;
            self.w.write_all(b"\r\n")?;
        }
        Ok(())
    }

    /// `name key item...` in batches of ITEMS_PER_CMD items (an item may be
    /// several arguments, as ZADD's score and member).
    fn batched(&mut self, name: &[u8], key: &[u8], items: &[Vec<Vec<u8>>]) -> std::io::Result<()> {
        for chunk in items.chunks(ITEMS_PER_CMD) {
            let mut args: Vec<&[u8]> = vec![name, key];
            for it in chunk {
                args.extend(it.iter().map(|a| a.as_slice()));
            }
            self.cmd(&args)?;
        }
        Ok(())
    }
}

fn id(i: Id) -> Vec<u8> {
    format!("{}-{}", i.0, i.1).into_bytes()
}

fn num(n: impl ToString) -> Vec<u8> {
    n.to_string().into_bytes()
}

/// Writes the base file of commands for `stores` at `path` (through a
/// temp file, fsynced, renamed).
pub fn write_base(srv: &Server, stores: &[&ShardStore], path: &Path) -> std::io::Result<()> {
    let tmp = path.with_file_name(format!("temp-rewriteaof-{}.aof", std::process::id()));
    let r = (|| {
        let f = std::fs::File::create(&tmp)?;
        let mut c = Cmds {
            w: BufWriter::with_capacity(1 << 20, f),
        };
        write_all(&mut c, srv, stores)?;
        c.w.flush()?;
        c.w.get_ref().sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

fn write_all<W: Write>(
    c: &mut Cmds<W>,
    srv: &Server,
    stores: &[&ShardStore],
) -> std::io::Result<()> {
    if super::TIMESTAMPS.load(std::sync::atomic::Ordering::Relaxed) {
        write!(c.w, "#TS:{}\r\n", crate::storage::now_ms() / 1000)?;
    }
    for code in crate::scripting::functions::codes() {
        c.cmd(&[b"FUNCTION", b"LOAD", &code[..]])?;
    }
    let lim = crate::server::persist::limits(srv);
    let delay = srv.config.read().unwrap().get_i64("rdb-key-save-delay");
    let mut nkeys = 0u64;
    for j in 0..srv.databases {
        if stores.iter().all(|s| s.dbs[j].is_empty()) {
            continue;
        }
        c.cmd(&[b"SELECT", &num(j)])?;
        for s in stores {
            for (k, e, expire_at) in s.dbs[j].dict.iter_with_expire() {
                write_key(c, k, crate::rdb::form(&e.value, &lim))?;
                if expire_at != 0 {
                    c.cmd(&[b"PEXPIREAT", k, &num(expire_at)])?;
                }
                nkeys += 1;
                let us = crate::rdb::key_delay_us(delay, nkeys);
                if us > 0 {
                    c.w.flush()?;
                    std::thread::sleep(std::time::Duration::from_micros(us));
                }
            }
        }
    }
    Ok(())
}

fn write_key<W: Write>(c: &mut Cmds<W>, k: &[u8], f: Form<'_>) -> std::io::Result<()> {
    let one = |b: &[u8]| vec![b.to_vec()];
    match f {
        Form::Str(s) => c.cmd(&[b"SET", k, s]),
        Form::List(items) => {
            let v: Vec<_> = items.into_iter().map(one).collect();
            c.batched(b"RPUSH", k, &v)
        }
        Form::Intset(v) => {
            let v: Vec<_> = v.into_iter().map(|i| vec![num(i)]).collect();
            c.batched(b"SADD", k, &v)
        }
        Form::SetHt(m) => {
            let v: Vec<_> = m.into_iter().map(one).collect();
            c.batched(b"SADD", k, &v)
        }
        Form::HashLp(p) | Form::HashHt(p) => {
            let v: Vec<_> = p
                .into_iter()
                .map(|(f, v)| vec![f.to_vec(), v.to_vec()])
                .collect();
            c.batched(b"HMSET", k, &v)
        }
        Form::ZsetLp(p) | Form::ZsetSkip(p) => {
            let v: Vec<_> = p
                .into_iter()
                .map(|(m, s)| vec![crate::protocol::fmt_double(s).into_bytes(), m.to_vec()])
                .collect();
            c.batched(b"ZADD", k, &v)
        }
        Form::Stream(s) => write_stream(c, k, &s),
    }
}

/// XADDs of every entry (or the MAXLEN 0 trick for an empty stream), the
/// XSETID that restores the last ID and counters, then each group with its
/// consumers: XCLAIM ... JUSTID FORCE per pending entry, XGROUP
/// CREATECONSUMER for one without.
fn write_stream<W: Write>(c: &mut Cmds<W>, k: &[u8], s: &StreamData) -> std::io::Result<()> {
    if s.entries.is_empty() {
        c.cmd(&[b"XADD", k, b"MAXLEN", b"0", b"0-1", b"x", b"y"])?;
    }
    for (eid, fields) in &s.entries {
        let eid = id(*eid);
        let mut args: Vec<&[u8]> = vec![b"XADD", k, &eid];
        for (f, v) in fields {
            args.push(f);
            args.push(v);
        }
        c.cmd(&args)?;
    }
    c.cmd(&[
        b"XSETID",
        k,
        &id(s.last_id),
        b"ENTRIESADDED",
        &num(s.entries_added),
        b"MAXDELETEDID",
        &id(s.max_deleted_id),
    ])?;
    for g in &s.groups {
        let pel: std::collections::HashMap<Id, &crate::rdb::stream::PendingData> =
            g.pel.iter().map(|p| (p.id, p)).collect();
        c.cmd(&[
            b"XGROUP",
            b"CREATE",
            k,
            &g.name,
            &id(g.last_id),
            b"ENTRIESREAD",
            &num(g.entries_read),
        ])?;
        for cons in &g.consumers {
            if cons.pel.is_empty() {
                c.cmd(&[b"XGROUP", b"CREATECONSUMER", k, &g.name, &cons.name])?;
                continue;
            }
            for pid in &cons.pel {
                let Some(p) = pel.get(pid) else {
                    continue;
                };
                c.cmd(&[
                    b"XCLAIM",
                    k,
                    &g.name,
                    &cons.name,
                    b"0",
                    &id(p.id),
                    b"TIME",
                    &num(p.delivery_time),
                    b"RETRYCOUNT",
                    &num(p.delivery_count),
                    b"JUSTID",
                    b"FORCE",
                ])?;
            }
        }
    }
    Ok(())
}
