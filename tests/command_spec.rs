//! COMMAND, COMMAND INFO, COMMAND DOCS, COMMAND GETKEYS / GETKEYSANDFLAGS,
//! COMMAND COUNT and COMMAND LIST: keel vs stock redis-server for every
//! command and subcommand keel implements. Stock lists more commands than
//! keel has; those are printed (stderr) and each must be unknown to keel.

#[macro_use]
mod common;

use std::collections::BTreeSet;

use common::{Conn, Pair, Resp, encode, show, words};

pair_tests!(
    info_and_docs,
    count_and_list,
    getkeys_generated,
    getkeys_forms
);

/// COMMAND LIST of a server, as names.
fn list(c: &mut Conn, filter: &[&str]) -> BTreeSet<String> {
    let mut args = vec!["COMMAND", "LIST"];
    args.extend_from_slice(filter);
    match Resp::parse(&c.cmd(&args)) {
        Resp::Array(v) => v.iter().map(|x| x.as_str()).collect(),
        other => panic!("COMMAND LIST {filter:?}: {other:?}"),
    }
}

/// The names keel lists, after checking they are a subset of stock's and
/// that everything else stock has is unknown to keel.
fn keel_names(p: &mut Pair) -> BTreeSet<String> {
    let keel = list(&mut p.k, &[]);
    let stock = list(&mut p.r, &[]);
    let extra: Vec<&String> = keel.difference(&stock).collect();
    assert!(
        extra.is_empty(),
        "keel lists commands stock lacks: {extra:?}"
    );
    let missing: Vec<&String> = stock.difference(&keel).collect();
    eprintln!(
        "{} commands/subcommands compared; stock has {} more keel does not implement: {}",
        keel.len(),
        missing.len(),
        missing
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    );
    for name in &missing {
        // Only what keel does not list is sent bare, so nothing runs.
        let argv: Vec<&str> = name.split('|').collect();
        let reply = Resp::parse(&p.k.cmd(&argv));
        let unknown = matches!(&reply, Resp::Error(e)
            if e.starts_with(b"ERR unknown command") || e.starts_with(b"ERR unknown subcommand"));
        if !unknown {
            p.fail(format!(
                "{name}: not in keel's COMMAND LIST but keel runs it: {reply:?}"
            ));
        }
    }
    for name in keel.iter().filter(|n| n.contains('|')) {
        // A listed subcommand is implemented: never "unknown subcommand".
        // Without its arguments it only errors (or is harmless: LIST, HELP).
        let argv: Vec<&str> = name.split('|').collect();
        let reply = p.k.cmd(&argv);
        if reply.starts_with(b"-ERR unknown subcommand") {
            p.fail(format!(
                "{name}: listed but unknown to keel: {}",
                show(&reply)
            ));
        }
    }
    keel
}

/// `r` with the items of `r[idx]` (INFO's subcommands) or the pairs of its
/// "subcommands" map (DOCS) sorted: stock lists them in dict order.
fn sort_subcommands(r: Resp) -> Resp {
    match r {
        Resp::Array(mut v) if v.len() == 10 => {
            if let Resp::Array(subs) = &mut v[9] {
                subs.sort();
            }
            Resp::Array(v)
        }
        Resp::Map(mut m) => {
            for (k, v) in m.iter_mut() {
                if k.as_bytes() == b"subcommands"
                    && let Resp::Map(subs) = v
                {
                    subs.sort();
                }
            }
            Resp::Map(m)
        }
        other => other,
    }
}

/// Sends `args` to both; byte for byte, except that subcommand lists may
/// come in any order (then compared sorted, each entry still exact).
fn check_info(p: &mut Pair, args: &[&str]) {
    let req = encode(args);
    p.k.send(&req);
    p.r.send(&req);
    let (k, r) = (p.k.read_reply(), p.r.read_reply());
    if k == r {
        return;
    }
    let norm = |b: &[u8]| match Resp::parse(b) {
        Resp::Array(v) => Resp::Array(v.into_iter().map(sort_subcommands).collect()),
        Resp::Map(m) => Resp::Map(
            m.into_iter()
                .map(|(a, b)| (a, sort_subcommands(b)))
                .collect(),
        ),
        other => other,
    };
    if k.first() != r.first() || norm(&k) != norm(&r) {
        p.fail(format!(
            "{}\n    keel:  {}\n    redis: {}",
            args.join(" "),
            show(&k),
            show(&r)
        ));
    }
}

fn info_and_docs(p: &mut Pair) {
    let names = keel_names(p);
    assert!(
        names.len() > 150,
        "keel lists only {} commands",
        names.len()
    );
    for name in &names {
        check_info(p, &["COMMAND", "INFO", name]);
        check_info(p, &["COMMAND", "DOCS", name]);
    }
    // Several at once, upper case, unknown names and subcommand forms.
    p.checks(&[
        "COMMAND INFO get SET nosuch",
        "COMMAND DOCS get nosuch SET",
        "COMMAND DOCS nosuch",
        "COMMAND INFO config|get CONFIG|SET config|nosuch get|x a|b|c",
        "COMMAND DOCS config|get get|x",
    ]);
    // RESP3: sets and maps.
    p.proto(true);
    for name in [
        "get",
        "set",
        "zunionstore",
        "georadius",
        "sort",
        "xread",
        "config",
    ] {
        check_info(p, &["COMMAND", "INFO", name]);
        check_info(p, &["COMMAND", "DOCS", name]);
    }
    for name in names.iter().filter(|n| n.contains('|')).take(30) {
        check_info(p, &["COMMAND", "INFO", name]);
    }
    p.proto(false);
}

fn count_and_list(p: &mut Pair) {
    let names = keel_names(p);
    let top = names.iter().filter(|n| !n.contains('|')).count() as i64;
    assert_eq!(Resp::parse(&p.k.line("COMMAND COUNT")).as_int(), top);
    match Resp::parse(&p.k.line("COMMAND")) {
        Resp::Array(v) => assert_eq!(v.len() as i64, top, "COMMAND's length"),
        other => panic!("COMMAND: {other:?}"),
    }
    match Resp::parse(&p.k.line("COMMAND INFO")) {
        Resp::Array(v) => assert_eq!(v.len() as i64, top, "COMMAND INFO's length"),
        other => panic!("COMMAND INFO: {other:?}"),
    }
    match Resp::parse(&p.k.line("COMMAND DOCS")) {
        Resp::Map(v) => assert_eq!(v.len() as i64, top, "COMMAND DOCS's length"),
        Resp::Array(v) => assert_eq!(v.len() as i64, 2 * top, "COMMAND DOCS's length"),
        other => panic!("COMMAND DOCS: {other:?}"),
    }
    // Filters: stock's answer restricted to what keel has.
    let cats = match Resp::parse(&p.r.line("ACL CAT")) {
        Resp::Array(v) => v.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        other => panic!("ACL CAT: {other:?}"),
    };
    let mut filters: Vec<Vec<String>> = cats
        .iter()
        .map(|c| vec!["FILTERBY".into(), "ACLCAT".into(), c.clone()])
        .collect();
    for pat in ["*", "x*", "*|*", "config|*", "z?ange*", "[a-c]*", "nosuch"] {
        filters.push(vec!["FILTERBY".into(), "PATTERN".into(), pat.into()]);
    }
    filters.push(vec!["FILTERBY".into(), "ACLCAT".into(), "nosuchcat".into()]);
    filters.push(vec!["FILTERBY".into(), "MODULE".into(), "nosuch".into()]);
    for f in &filters {
        let f: Vec<&str> = f.iter().map(|s| s.as_str()).collect();
        let k = list(&mut p.k, &f);
        let r: BTreeSet<String> = list(&mut p.r, &f).intersection(&names).cloned().collect();
        if k != r {
            p.fail(format!(
                "COMMAND LIST {}\n    keel:  {k:?}\n    redis: {r:?}",
                f.join(" ")
            ));
        }
    }
    p.checks(&[
        "COMMAND LIST FILTERBY",
        "COMMAND LIST FILTERBY ACLCAT",
        "COMMAND LIST FILTERBY NOSUCH x",
        "COMMAND LIST x",
        "COMMAND COUNT x",
        "COMMAND NOSUCH",
        "COMMAND INFO|x",
    ]);
}

/// A map reply's pairs (RESP2 sends maps as flat arrays).
fn pairs(r: &Resp) -> Vec<(Resp, Resp)> {
    match r {
        Resp::Map(m) => m.clone(),
        Resp::Array(v) => v.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect(),
        _ => Vec::new(),
    }
}

/// A minimal argument vector following a command's documented arguments:
/// required ones only, the first choice of a oneof, multiples once.
/// Keys are named k0, k1, ...; values are "1" (a valid number too).
fn sample_args(args: &Resp, out: &mut Vec<String>, nkeys: &mut usize) {
    let Resp::Array(list) = args else { return };
    for a in list {
        let fields = pairs(a);
        let get = |k: &str| {
            fields
                .iter()
                .find(|(f, _)| f.as_bytes() == k.as_bytes())
                .map(|(_, v)| v)
        };
        let flags = match get("flags") {
            Some(Resp::Array(f)) => f.iter().map(|x| x.as_str()).collect(),
            _ => Vec::new(),
        };
        if flags.iter().any(|f| f == "optional") {
            continue;
        }
        if let Some(t) = get("token") {
            out.push(t.as_str());
        }
        match get("type").map(|t| t.as_str()).as_deref() {
            Some("pure-token") => {}
            Some("key") => {
                out.push(format!("k{nkeys}"));
                *nkeys += 1;
            }
            Some("oneof") => {
                if let Some(Resp::Array(subs)) = get("arguments")
                    && let Some(first) = subs.first()
                {
                    sample_args(&Resp::Array(vec![first.clone()]), out, nkeys);
                }
            }
            Some("block") => {
                if let Some(subs) = get("arguments") {
                    sample_args(subs, out, nkeys);
                }
            }
            _ => out.push("1".into()),
        }
    }
}

/// Each command and subcommand keel has, with an argument vector built
/// from its (stock) documentation: GETKEYS and GETKEYSANDFLAGS compared.
fn getkeys_generated(p: &mut Pair) {
    let names = keel_names(p);
    let mut sent = 0;
    for name in &names {
        let docs = pairs(&Resp::parse(&p.r.cmd(&["COMMAND", "DOCS", name])));
        let Some((_, body)) = docs.first() else {
            panic!("{name}: no DOCS")
        };
        let fields = pairs(body);
        if fields.iter().any(|(k, _)| k.as_bytes() == b"subcommands") {
            // A container alone: compared too (its own errors).
            let mut argv = vec!["COMMAND".to_string(), "GETKEYS".into(), name.clone()];
            p.check_args(&argv);
            argv[1] = "GETKEYSANDFLAGS".into();
            p.check_args(&argv);
            continue;
        }
        let mut argv: Vec<String> = name.split('|').map(String::from).collect();
        if let Some((_, args)) = fields.iter().find(|(k, _)| k.as_bytes() == b"arguments") {
            sample_args(args, &mut argv, &mut 0);
        }
        for sub in ["GETKEYS", "GETKEYSANDFLAGS"] {
            let mut req = vec!["COMMAND".to_string(), sub.into()];
            req.extend(argv.iter().cloned());
            p.check_args(&req);
        }
        sent += 1;
    }
    assert!(sent > 150, "only {sent} commands had an argument vector");
}

/// Keyword, numkeys and finder forms, valid and broken, including the
/// errors (no keys, arity, unknown command).
fn getkeys_forms(p: &mut Pair) {
    let names = keel_names(p);
    let forms = [
        "ZUNIONSTORE d 2 a b WEIGHTS 1 2",
        "ZUNIONSTORE d 0 a",
        "ZUNIONSTORE d 3 a b",
        "ZUNIONSTORE d 2abc a b",
        "ZUNIONSTORE d -1 a b",
        "ZINTERSTORE d 1 a AGGREGATE MIN",
        "ZDIFFSTORE d 2 a b",
        "ZUNION 2 a b WITHSCORES",
        "ZINTER 1 a",
        "ZDIFF 2 a b",
        "ZINTERCARD 2 a b LIMIT 1",
        "SINTERCARD 2 a b LIMIT 1",
        "SINTERCARD 5 a b",
        "EVAL s 2 a b c",
        "EVAL s 0",
        "EVAL s 5 a",
        "EVAL s x a",
        "EVALSHA abc 1 a b",
        "EVAL_RO s 1 a",
        "EVALSHA_RO abc 2 a b",
        "XREAD COUNT 1 STREAMS a b 0 0",
        "XREAD BLOCK 0 STREAMS a 0",
        "XREAD STREAMS a",
        "XREAD STREAMS a b 0",
        "XREAD STREAMS streams 0",
        "XREADGROUP GROUP g c STREAMS a 0",
        "XREADGROUP GROUP g c COUNT 1 NOACK STREAMS a b > >",
        "MIGRATE h 1 k 0 5",
        "MIGRATE h 1 \"\" 0 5 KEYS a b",
        "MIGRATE h 1 \"\" 0 5 COPY REPLACE AUTH pw KEYS a b",
        "MIGRATE h 1 \"\" 0 5 AUTH2 u pw KEYS a",
        "MIGRATE h 1 x 0 5 KEYS a b",
        "MIGRATE h 1 \"\" 0 5 KEYS",
        "SORT k",
        "SORT k BY w STORE d",
        "SORT k STORE d STORE e",
        "SORT k LIMIT 0 1 GET # STORE d",
        "SORT k GET store x",
        "SORT k STORE",
        "SORT_RO k BY x GET y",
        "LMPOP 2 a b LEFT",
        "LMPOP 3 a b LEFT",
        "BLMPOP 0 2 a b RIGHT COUNT 2",
        "ZMPOP 1 a MIN",
        "BZMPOP 0 2 a b MAX",
        "GEORADIUS k 1 2 3 m STORE d",
        "GEORADIUS k 1 2 3 m STORE d STOREDIST e",
        "GEORADIUS k 1 2 3 m STORE d STORE e",
        "GEORADIUS k 1 2 3 m STORE",
        "GEORADIUSBYMEMBER k m 3 km STOREDIST d",
        "GEORADIUS_RO k 1 2 3 m",
        "GEOSEARCHSTORE d s FROMMEMBER m BYRADIUS 1 m",
        "SET k v GET",
        "SET k v EX 1",
        "SET k v get",
        "BITFIELD k GET u8 0",
        "BITFIELD k SET u8 0 1",
        "BITFIELD k OVERFLOW WRAP GET u8 0",
        "BITFIELD k GET u8",
        "BITFIELD k FOO",
        "BITFIELD_RO k GET u8 0",
        "BITOP AND d a b",
        "MSET a 1 b 2",
        "MSETNX a 1 b 2",
        "MGET a b c",
        "DEL a b",
        "BLPOP a b 0",
        "BRPOPLPUSH a b 0",
        "LMOVE a b LEFT RIGHT",
        "RENAME a b",
        "COPY a b DB 1",
        "SMOVE a b m",
        "OBJECT ENCODING k",
        "OBJECT HELP",
        "MEMORY USAGE k SAMPLES 1",
        "MEMORY STATS",
        "XINFO STREAM k FULL",
        "XGROUP CREATE k g $ MKSTREAM",
        "XGROUP HELP",
        "CONFIG GET x",
        "CONFIG NOSUCH",
        "PUBLISH ch m",
        "SPUBLISH ch m",
        "SSUBSCRIBE a b",
        "WATCH a b",
        "PFCOUNT a b",
        "PFMERGE d a b",
        "GET",
        "GET a b",
        "NOSUCH a",
        "get A",
    ];
    for f in forms {
        let w = words(f);
        let known = names.contains(&String::from_utf8_lossy(&w[0]).to_ascii_lowercase());
        for sub in ["GETKEYS", "GETKEYSANDFLAGS"] {
            let mut req: Vec<Vec<u8>> = vec![b"COMMAND".to_vec(), sub.as_bytes().to_vec()];
            req.extend(w.iter().cloned());
            if known || f.starts_with("NOSUCH") {
                p.check_args(&req);
            } else {
                // A command keel lacks (MIGRATE): unknown to GETKEYS too.
                let reply = p.k.cmd(&req);
                p.expect_eq(f, &reply, b"-ERR Invalid command specified\r\n");
            }
        }
    }
    p.checks(&["COMMAND GETKEYS", "COMMAND GETKEYSANDFLAGS get"]);
}
