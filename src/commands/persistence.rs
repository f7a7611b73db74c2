//! DUMP and RESTORE (the RDB value serialization; see `crate::rdb`).

use bytes::Bytes;

use crate::storage::notify as ev;

use super::table::{Command, cmd, flags::*};
use super::{Ctx, eq_ic, errors, parse_i64};
use crate::rdb::{self, Limits, RestoreError};
use crate::storage::{Record, Value};

pub fn commands() -> Vec<Command> {
    vec![
        cmd("dump", 2, READONLY, dump).keys(1, 1, 1),
        cmd("restore", -4, WRITE | DENYOOM, restore).keys(1, 1, 1),
    ]
}

fn limits_and_compression(ctx: &Ctx) -> (Limits, bool) {
    let cfg = ctx.srv.config.read().unwrap();
    (Limits::from_config(&cfg), cfg.get_bool("rdbcompression"))
}

fn dump(ctx: &mut Ctx, args: &[Bytes]) {
    let (lim, compression) = limits_and_compression(ctx);
    let payload = match ctx.lookup_read(&args[1]) {
        None => {
            ctx.out.null();
            return;
        }
        Some(e) => rdb::dump_payload(&e.value, &lim, compression),
    };
    ctx.out.bulk(&payload);
}

pub(crate) fn restore(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1][..];
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq): (Option<i64>, Option<i64>) = (None, None);
    let mut j = 4;
    while j < args.len() {
        let more = j + 1 < args.len();
        let a = &args[j];
        if eq_ic(a, "replace") {
            replace = true;
        } else if eq_ic(a, "absttl") {
            absttl = true;
        } else if eq_ic(a, "idletime") && more && freq.is_none() {
            let Some(v) = parse_i64(&args[j + 1]) else {
                ctx.out.err(errors::NOT_INT);
                return;
            };
            if v < 0 {
                ctx.out.err("ERR Invalid IDLETIME value, must be >= 0");
                return;
            }
            idle = Some(v);
            j += 1;
        } else if eq_ic(a, "freq") && more && idle.is_none() {
            let Some(v) = parse_i64(&args[j + 1]) else {
                ctx.out.err(errors::NOT_INT);
                return;
            };
            if !(0..=255).contains(&v) {
                ctx.out
                    .err("ERR Invalid FREQ value, must be >= 0 and <= 255");
                return;
            }
            freq = Some(v);
            j += 1;
        } else {
            ctx.out.err(errors::SYNTAX);
            return;
        }
        j += 1;
    }
    if !replace && ctx.lookup_write(key).is_some() {
        ctx.out.err("BUSYKEY Target key name already exists.");
        return;
    }
    let Some(mut ttl) = parse_i64(&args[2]) else {
        ctx.out.err(errors::NOT_INT);
        return;
    };
    if ttl < 0 {
        ctx.out.err("ERR Invalid TTL value, must be >= 0");
        return;
    }
    let (lim, _) = limits_and_compression(ctx);
    let value: Value = match rdb::restore_payload(&args[3], &lim) {
        Err(RestoreError::Footer) => {
            ctx.out
                .err("ERR DUMP payload version or checksum are wrong");
            return;
        }
        Err(RestoreError::Data(_)) | Ok(None) => {
            ctx.out.err("ERR Bad data format");
            return;
        }
        Ok(Some(v)) => v,
    };
    let now = ctx.now;
    let dbi = ctx.db;
    let deleted = replace && ctx.db(key).remove(key).is_some();
    if ttl != 0 && !absttl {
        ttl = ttl.saturating_add(now as i64);
    }
    if ttl != 0 && ttl as u64 <= now {
        if deleted {
            ctx.dirty(key, 1);
            crate::replication::propagate(dbi, &[b"DEL", key]);
            ctx.notify(ev::GENERIC, "del", key);
        }
        ctx.out.ok();
        return;
    }
    let servable = matches!(value, Value::List(_) | Value::ZSet(_));
    // As Redis's objectSetLRUOrLFU: FREQ counts under an LFU policy,
    // IDLETIME under any other; the one that does not apply is ignored.
    let now_s = (now / 1000) as u32;
    let lfu = crate::storage::evict::lfu();
    let lru = match idle {
        Some(i) if !lfu => now_s.saturating_sub(i.min(u32::MAX as i64) as u32),
        _ => now_s,
    };
    let freq = match freq {
        Some(f) if lfu => f as u8,
        _ => crate::storage::evict::LFU_INIT_VAL,
    };
    ctx.db_n(key, dbi).insert_entry(
        key,
        Record {
            freq,
            value,
            expire_at: ttl as u64,
            lru,
            raw: false,
        },
    );
    ctx.notify(ev::NEW, "new", key);
    ctx.notify(ev::GENERIC, "restore", key);
    if servable {
        ctx.signal_ready(key);
    }
    ctx.dirty(key, 1);
    if ttl != 0 && !absttl && crate::replication::active() {
        // Redis 7: the TTL as an absolute time, with ABSTTL appended.
        let abs = ttl.to_string();
        let mut eff: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
        eff[2] = abs.as_bytes();
        eff.push(b"ABSTTL");
        crate::replication::propagate(dbi, &eff);
    }
    ctx.out.ok();
}
