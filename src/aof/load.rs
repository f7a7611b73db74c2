//! Loading the AOF at startup: the manifest, the base (an RDB, or commands)
//! and the incremental files in order, replayed on the main thread before
//! any shard runs (it owns every store then).

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use super::manifest::Manifest;
use crate::server::Server;
use crate::server::client::{Client, ClientInfo};
use crate::server::stores::View;

/// What loading one file gave.
enum Loaded {
    Ok,
    /// The file ended inside a command (or a MULTI without EXEC); it is
    /// valid up to this offset.
    Truncated(u64),
}

pub struct Outcome {
    pub base_size: u64,
    pub total_size: u64,
}

/// Loads every file the manifest names. Ok(None) when there is no AOF.
/// As stock while loading, nothing expires: a PEXPIREAT in the past sets
/// the expiry and later commands still see the key (the DBs run in replica
/// mode and the commands as the master's).
pub fn load_all(
    srv: &Server,
    dir: &Path,
    m: &Manifest,
    stores: &mut View<'_>,
) -> Result<Option<Outcome>, String> {
    let mut saved = Vec::new();
    for store in stores.all_mut() {
        for db in store.dbs.iter_mut() {
            saved.push(db.replica_mode);
            db.replica_mode = true;
        }
    }
    let r = {
        let _master = crate::replication::replica::MasterApply::enter();
        load_files(srv, dir, m, stores)
    };
    let mut saved = saved.into_iter();
    for store in stores.all_mut() {
        for db in store.dbs.iter_mut() {
            db.replica_mode = saved.next().unwrap_or(false);
        }
    }
    r
}

fn load_files(
    srv: &Server,
    dir: &Path,
    m: &Manifest,
    stores: &mut View<'_>,
) -> Result<Option<Outcome>, String> {
    let mut files: Vec<&super::manifest::FileInfo> = Vec::new();
    files.extend(m.base.iter());
    files.extend(m.incrs.iter());
    if files.is_empty() {
        return Ok(None);
    }
    let mut total = 0u64;
    let mut base_size = 0;
    for f in &files {
        match std::fs::metadata(dir.join(&f.name)) {
            Ok(md) => total += md.len(),
            Err(e) => {
                crate::log::warning(&format!(
                    "The append log file {} doesn't exist: {e}",
                    f.name
                ));
                return Err(format!(
                    "AOF file {} listed in the manifest is missing",
                    f.name
                ));
            }
        }
    }
    if total == 0 {
        return Ok(Some(Outcome {
            base_size: 0,
            total_size: 0,
        }));
    }
    let truncate_ok = srv.config.read().unwrap().get_bool("aof-load-truncated");
    let info = Arc::new(ClientInfo::new(0, String::new(), String::new(), -1, 0, 0));
    let mut client = Client::new(info, true);
    let n = files.len();
    for (i, f) in files.iter().enumerate() {
        let last = i + 1 == n;
        let path = dir.join(&f.name);
        let start = std::time::Instant::now();
        let data = std::fs::read(&path).map_err(|e| {
            format!(
                "Fatal error: can't open the append log file {} for reading: {e}",
                f.name
            )
        })?;
        if f.kind == b'b' {
            base_size = data.len() as u64;
        }
        if data.is_empty() {
            continue;
        }
        client.select(0);
        let r = if data.starts_with(b"REDIS") {
            crate::log::notice("Reading RDB base file on AOF loading...");
            let end = load_rdb(srv, &data, stores).map_err(|e| {
                crate::log::warning(&e);
                format!(
                    "Error reading the RDB base file {}, AOF loading aborted",
                    f.name
                )
            })?;
            // A pre-7.0 single file goes on with commands after its preamble.
            match replay(srv, &data[end..], &f.name, stores, &mut client)? {
                Loaded::Truncated(at) => Loaded::Truncated(end as u64 + at),
                Loaded::Ok => Loaded::Ok,
            }
        } else {
            replay(srv, &data, &f.name, stores, &mut client)?
        };
        if let Loaded::Truncated(valid) = r {
            if !truncate_ok {
                return Err(format!(
                    "Unexpected end of file reading the append only file {}. You can: 1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server.",
                    f.name
                ));
            }
            crate::log::warning(&format!(
                "!!! Warning: short read while loading the AOF file {}!!!",
                f.name
            ));
            crate::log::warning(&format!(
                "!!! Truncating the AOF {} at offset {valid} !!!",
                f.name
            ));
            if !last {
                return Err("Fatal error: the truncated file is not the last file".into());
            }
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|fh| fh.set_len(valid).map(|_| fh))
                .map_err(|e| format!("Error truncating the AOF file {}: {e}", f.name))?;
            drop(file);
            total -= data.len() as u64 - valid;
            crate::log::warning(&format!(
                "AOF {} loaded anyway because aof-load-truncated is enabled",
                f.name
            ));
        }
        srv.persist
            .progress
            .loaded_bytes
            .fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let what = if f.kind == b'b' { "base" } else { "incr" };
        crate::log::notice(&format!(
            "DB loaded from {what} file {}: {:.3} seconds",
            f.name,
            start.elapsed().as_secs_f64()
        ));
    }
    Ok(Some(Outcome {
        base_size,
        total_size: total,
    }))
}

fn load_rdb(srv: &Server, data: &[u8], stores: &mut View<'_>) -> Result<usize, String> {
    let opts = crate::rdb::LoadOpts {
        limits: crate::server::persist::limits(srv),
        // As Redis with an AOF preamble: expired keys load, then expire.
        drop_expired: false,
        now_ms: crate::storage::now_ms(),
        verify_checksum: srv.config.read().unwrap().get_bool("rdbchecksum"),
        databases: srv.databases,
        skip_modules: false,
    };
    let n = stores.len();
    let mut r = std::io::Cursor::new(data);
    let info = crate::rdb::load(
        &mut r,
        &opts,
        |db, key, entry| {
            let s = crate::storage::slot::key_shard(&key, n);
            let store = stores.store(s);
            store.dbs[db].insert_entry(&key, entry);
        },
        |_k, _v| {},
    )
    .map_err(|e| e.to_string())?;
    crate::server::persist::load_scripts(&info.lua);
    // The base is the first file: its libraries are the whole set so far.
    crate::server::persist::load_functions(&info.functions);
    Ok(r.position() as usize)
}

/// Cuts the next line (without CR LF) at `*pos`; None at the end of data.
fn line<'a>(data: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let rest = &data[*pos..];
    let nl = rest.iter().position(|&c| c == b'\n')?;
    *pos += nl + 1;
    let l = &rest[..nl];
    Some(l.strip_suffix(b"\r").unwrap_or(l))
}

/// atoi/strtol: leading digits (with a sign), 0 when none.
fn number(s: &[u8]) -> i64 {
    let s = std::str::from_utf8(s).unwrap_or("");
    let s = s.trim_start();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    let v = digits[..end]
        .parse::<i64>()
        .unwrap_or(if end > 0 { i64::MAX } else { 0 });
    if neg { -v } else { v }
}

fn bad_format(name: &str) -> String {
    format!(
        "Bad file format reading the append only file {name}: make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>"
    )
}

/// Replays a file of commands (as Redis's loadSingleAppendOnlyFile).
fn replay(
    srv: &Server,
    data: &[u8],
    name: &str,
    stores: &mut View<'_>,
    client: &mut Client,
) -> Result<Loaded, String> {
    let mut pos = 0usize;
    let mut valid_up_to = 0u64;
    let mut valid_before_multi = 0u64;
    let mut multi: Option<Vec<Vec<Bytes>>> = None;
    let whole = Bytes::copy_from_slice(data);
    while pos < data.len() {
        let Some(l) = line(data, &mut pos) else {
            return Ok(Loaded::Truncated(valid_up_to));
        };
        if l.first() == Some(&b'#') {
            continue;
        }
        if l.first() != Some(&b'*') {
            return Err(bad_format(name));
        }
        let argc = number(&l[1..]);
        if argc < 1 || argc > (data.len() as i64) {
            return Err(bad_format(name));
        }
        let mut args = Vec::with_capacity(argc as usize);
        for _ in 0..argc {
            let Some(l) = line(data, &mut pos) else {
                return Ok(Loaded::Truncated(valid_up_to));
            };
            if l.first() != Some(&b'$') {
                return Err(bad_format(name));
            }
            let len = number(&l[1..]);
            if len < 0 {
                return Err(bad_format(name));
            }
            let len = len as usize;
            if data.len() - pos < len.saturating_add(2) {
                return Ok(Loaded::Truncated(valid_up_to));
            }
            args.push(whole.slice(pos..pos + len));
            pos += len + 2;
        }
        let cmd_name = args[0].clone();
        if cmd_name.eq_ignore_ascii_case(b"multi") {
            valid_before_multi = valid_up_to;
            multi = Some(Vec::new());
        } else if cmd_name.eq_ignore_ascii_case(b"exec") {
            for a in multi.take().unwrap_or_default() {
                run(srv, &a, name, stores, client)?;
            }
        } else if let Some(q) = multi.as_mut() {
            if crate::commands::lookup(&cmd_name).is_none() {
                return Err(unknown(&cmd_name, name));
            }
            q.push(args);
        } else {
            run(srv, &args, name, stores, client)?;
        }
        valid_up_to = pos as u64;
    }
    if multi.is_some() {
        crate::log::warning(&format!(
            "Revert incomplete MULTI/EXEC transaction in AOF file {name}"
        ));
        return Ok(Loaded::Truncated(valid_before_multi));
    }
    Ok(Loaded::Ok)
}

fn unknown(cmd: &[u8], file: &str) -> String {
    format!(
        "Unknown command '{}' reading the append only file {file}",
        String::from_utf8_lossy(cmd)
    )
}

/// Runs one command of the file; its reply is dropped.
fn run(
    srv: &Server,
    args: &[Bytes],
    file: &str,
    stores: &mut View<'_>,
    client: &mut Client,
) -> Result<(), String> {
    let name = &args[0];
    if name.eq_ignore_ascii_case(b"select") {
        let db = args
            .get(1)
            .and_then(|a| std::str::from_utf8(a).ok())
            .and_then(|d| d.parse::<usize>().ok())
            .filter(|&d| d < srv.databases);
        match db {
            Some(d) => client.select(d),
            None => crate::log::warning(&format!("Bad SELECT in the append only file {file}")),
        }
        return Ok(());
    }
    let Some((_idx, cmd)) = crate::commands::lookup(name) else {
        return Err(unknown(name, file));
    };
    if !cmd.arity_ok(args.len()) {
        crate::log::warning(&format!(
            "Wrong number of arguments for '{}' in the append only file {file}",
            cmd.name
        ));
        return Ok(());
    }
    let mut out = crate::protocol::Out::new(false);
    let db = client.db;
    let mut ctx =
        crate::commands::Ctx::new(&mut out, db, srv, Some(&mut *client), stores.reborrow());
    ctx.no_block = true;
    (cmd.handler)(&mut ctx, args);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_atoi() {
        assert_eq!(number(b"3"), 3);
        assert_eq!(number(b"3x"), 3);
        assert_eq!(number(b"x"), 0);
        assert_eq!(number(b"-2"), -2);
    }
}
