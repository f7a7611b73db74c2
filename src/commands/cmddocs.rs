//! Argument documentation for COMMAND DOCS (redis-cli builds its hints from it).
//!
//! Each command's syntax is written once as a compact usage line and turned into
//! Redis 7's argument tree at run time:
//! - `name` is an argument (type string); `name:int`, `:dbl`, `:key`, `:pat`,
//!   `:ts` give integer, double, key, pattern, unix-time; `key` alone is a key.
//! - An UPPER-case word is a token: alone it is a pure-token, before an argument
//!   or a `( )` group it is that argument's token.
//! - `[ ... ]` optional, `( ... )` group, `a|b` one-of, `x...` repeated;
//!   `[n= ...]` / `(n= ...)` names the group.

use crate::protocol::Out;

/// (command, usage). Commands absent here get no "arguments" entry.
const USAGE: &[(&str, &str)] = &[
    // connection
    ("auth", "[username] password"),
    ("echo", "message"),
    ("ping", "[message]"),
    ("quit", ""),
    ("reset", ""),
    ("select", "index:int"),
    (
        "hello",
        "[arguments=protover:int [AUTH (username password)] [SETNAME clientname]]",
    ),
    ("client", ""),
    // server
    ("info", "[section...]"),
    ("config", ""),
    ("command", ""),
    ("time", ""),
    ("lastsave", ""),
    ("module", ""),
    ("lolwut", "[VERSION version:int]"),
    ("dbsize", ""),
    ("flushdb", "[flush-type=ASYNC|SYNC]"),
    ("flushall", "[flush-type=ASYNC|SYNC]"),
    ("save", ""),
    ("bgsave", "[SCHEDULE]"),
    ("bgrewriteaof", ""),
    (
        "shutdown",
        "[nosave-save=NOSAVE|SAVE] [NOW] [FORCE] [ABORT]",
    ),
    ("swapdb", "index1:int index2:int"),
    ("monitor", ""),
    ("debug", ""),
    ("slowlog", ""),
    ("latency", ""),
    ("memory", ""),
    ("object", ""),
    ("role", ""),
    ("failover", ""),
    ("replicaof", "host port:int"),
    ("slaveof", "host port:int"),
    ("sync", ""),
    ("psync", "replicationid offset:int"),
    ("wait", "numreplicas:int timeout:int"),
    ("readonly", ""),
    ("readwrite", ""),
    ("asking", ""),
    ("cluster", ""),
    // transactions, pubsub
    ("multi", ""),
    ("exec", ""),
    ("discard", ""),
    ("watch", "key..."),
    ("unwatch", ""),
    ("subscribe", "channel..."),
    ("unsubscribe", "[channel...]"),
    ("psubscribe", "pattern:pat..."),
    ("punsubscribe", "[pattern:pat...]"),
    ("publish", "channel message"),
    ("pubsub", ""),
    // generic
    ("del", "key..."),
    ("unlink", "key..."),
    ("exists", "key..."),
    ("touch", "key..."),
    ("type", "key"),
    ("keys", "pattern:pat"),
    (
        "scan",
        "cursor:int [MATCH pattern:pat] [COUNT count:int] [TYPE type]",
    ),
    ("randomkey", ""),
    ("rename", "key newkey:key"),
    ("renamenx", "key newkey:key"),
    ("move", "key db:int"),
    (
        "copy",
        "source:key destination:key [DB destination-db:int] [REPLACE]",
    ),
    ("expire", "key seconds:int [condition=NX|XX|GT|LT]"),
    ("pexpire", "key milliseconds:int [condition=NX|XX|GT|LT]"),
    (
        "expireat",
        "key unix-time-seconds:ts [condition=NX|XX|GT|LT]",
    ),
    (
        "pexpireat",
        "key unix-time-milliseconds:ts [condition=NX|XX|GT|LT]",
    ),
    ("expiretime", "key"),
    ("pexpiretime", "key"),
    ("ttl", "key"),
    ("pttl", "key"),
    ("persist", "key"),
    ("dump", "key"),
    (
        "restore",
        "key ttl:int serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds:int] [FREQ frequency:int]",
    ),
    (
        "sort",
        "key [BY pattern:pat] [LIMIT (offset:int count:int)] [GET pattern:pat]... [order=ASC|DESC] [sorting=ALPHA] [STORE destination:key]",
    ),
    (
        "sort_ro",
        "key [BY pattern:pat] [LIMIT (offset:int count:int)] [GET pattern:pat]... [order=ASC|DESC] [sorting=ALPHA]",
    ),
    // string
    ("get", "key"),
    (
        "set",
        "key value [condition=NX|XX] [GET] [expiration=EX seconds:int|PX milliseconds:int|EXAT unix-time-seconds:ts|PXAT unix-time-milliseconds:ts|KEEPTTL]",
    ),
    ("setnx", "key value"),
    ("setex", "key seconds:int value"),
    ("psetex", "key milliseconds:int value"),
    ("getset", "key value"),
    ("getdel", "key"),
    (
        "getex",
        "key [expiration=EX seconds:int|PX milliseconds:int|EXAT unix-time-seconds:ts|PXAT unix-time-milliseconds:ts|PERSIST]",
    ),
    ("mget", "key..."),
    ("mset", "(data=key value)..."),
    ("msetnx", "(data=key value)..."),
    ("incr", "key"),
    ("decr", "key"),
    ("incrby", "key increment:int"),
    ("decrby", "key decrement:int"),
    ("incrbyfloat", "key increment:dbl"),
    ("append", "key value"),
    ("strlen", "key"),
    ("getrange", "key start:int end:int"),
    ("substr", "key start:int end:int"),
    ("setrange", "key offset:int value"),
    (
        "lcs",
        "key1:key key2:key [LEN] [IDX] [MINMATCHLEN len:int] [WITHMATCHLEN]",
    ),
    // bitmap
    ("getbit", "key offset:int"),
    ("setbit", "key offset:int value:int"),
    ("bitcount", "key [index=start:int end:int [unit=BYTE|BIT]]"),
    (
        "bitpos",
        "key bit:int [index=start:int [end-unit-block=end:int [unit=BYTE|BIT]]]",
    ),
    ("bitop", "operation destkey:key key..."),
    // list
    ("lpush", "key element..."),
    ("rpush", "key element..."),
    ("lpushx", "key element..."),
    ("rpushx", "key element..."),
    ("lpop", "key [count:int]"),
    ("rpop", "key [count:int]"),
    ("llen", "key"),
    ("lindex", "key index:int"),
    ("lset", "key index:int element"),
    ("lrange", "key start:int stop:int"),
    ("ltrim", "key start:int stop:int"),
    ("lrem", "key count:int element"),
    ("linsert", "key (where=BEFORE|AFTER) pivot element"),
    (
        "lpos",
        "key element [RANK rank:int] [COUNT num-matches:int] [MAXLEN len:int]",
    ),
    ("rpoplpush", "source:key destination:key"),
    (
        "lmove",
        "source:key destination:key (wherefrom=LEFT|RIGHT) (whereto=LEFT|RIGHT)",
    ),
    (
        "blmove",
        "source:key destination:key (wherefrom=LEFT|RIGHT) (whereto=LEFT|RIGHT) timeout:dbl",
    ),
    ("blpop", "key... timeout:dbl"),
    ("brpop", "key... timeout:dbl"),
    ("brpoplpush", "source:key destination:key timeout:dbl"),
    // hash
    ("hset", "key (data=field value)..."),
    ("hsetnx", "key field value"),
    ("hmset", "key (data=field value)..."),
    ("hget", "key field"),
    ("hmget", "key field..."),
    ("hdel", "key field..."),
    ("hlen", "key"),
    ("hstrlen", "key field"),
    ("hexists", "key field"),
    ("hkeys", "key"),
    ("hvals", "key"),
    ("hgetall", "key"),
    ("hincrby", "key field increment:int"),
    ("hincrbyfloat", "key field increment:dbl"),
    ("hrandfield", "key [options=count:int [WITHVALUES]]"),
    (
        "hscan",
        "key cursor:int [MATCH pattern:pat] [COUNT count:int]",
    ),
    // set
    ("sadd", "key member..."),
    ("srem", "key member..."),
    ("smembers", "key"),
    ("sismember", "key member"),
    ("smismember", "key member..."),
    ("scard", "key"),
    ("spop", "key [count:int]"),
    ("srandmember", "key [count:int]"),
    ("smove", "source:key destination:key member"),
    ("sinter", "key..."),
    ("sintercard", "numkeys:int key... [LIMIT limit:int]"),
    ("sunion", "key..."),
    ("sdiff", "key..."),
    ("sinterstore", "destination:key key..."),
    ("sunionstore", "destination:key key..."),
    ("sdiffstore", "destination:key key..."),
    (
        "sscan",
        "key cursor:int [MATCH pattern:pat] [COUNT count:int]",
    ),
    // sorted set
    (
        "zadd",
        "key [condition=NX|XX] [comparison=GT|LT] [CH] [INCR] (data=score:dbl member)...",
    ),
    ("zrem", "key member..."),
    ("zcard", "key"),
    ("zscore", "key member"),
    ("zmscore", "key member..."),
    ("zincrby", "key increment:int member"),
    ("zrank", "key member"),
    ("zrevrank", "key member"),
    ("zcount", "key min:dbl max:dbl"),
    ("zlexcount", "key min max"),
    (
        "zrange",
        "key start stop [sortby=BYSCORE|BYLEX] [REV] [LIMIT (offset:int count:int)] [WITHSCORES]",
    ),
    ("zrevrange", "key start:int stop:int [WITHSCORES]"),
    (
        "zrangebyscore",
        "key min:dbl max:dbl [WITHSCORES] [LIMIT (offset:int count:int)]",
    ),
    (
        "zrevrangebyscore",
        "key max:dbl min:dbl [WITHSCORES] [LIMIT (offset:int count:int)]",
    ),
    ("zpopmin", "key [count:int]"),
    ("zpopmax", "key [count:int]"),
    ("zremrangebyrank", "key start:int stop:int"),
    ("zremrangebyscore", "key min:dbl max:dbl"),
    ("zremrangebylex", "key min max"),
    (
        "zscan",
        "key cursor:int [MATCH pattern:pat] [COUNT count:int]",
    ),
];

/// The usage line for `name`, when keel documents its arguments.
pub fn usage(name: &str) -> Option<&'static str> {
    USAGE.iter().find(|(n, _)| *n == name).map(|(_, u)| *u)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    pub name: String,
    pub kind: &'static str,
    pub token: Option<String>,
    pub optional: bool,
    pub multiple: bool,
    pub multiple_token: bool,
    pub sub: Vec<Arg>,
}

impl Arg {
    fn new(name: &str, kind: &'static str) -> Arg {
        Arg {
            name: name.to_string(),
            kind,
            token: None,
            optional: false,
            multiple: false,
            multiple_token: false,
            sub: Vec::new(),
        }
    }
}

fn tokenize(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let flush = |cur: &mut String, out: &mut Vec<String>| {
        if let Some(stem) = cur.strip_suffix("...") {
            if !stem.is_empty() {
                out.push(stem.to_string());
            }
            out.push("...".to_string());
        } else if !cur.is_empty() {
            out.push(cur.clone());
        }
        cur.clear();
    };
    for c in s.chars() {
        match c {
            '[' | ']' | '(' | ')' | '|' => {
                flush(&mut cur, &mut out);
                out.push(c.to_string());
            }
            c if c.is_whitespace() => flush(&mut cur, &mut out),
            c => cur.push(c),
        }
    }
    flush(&mut cur, &mut out);
    out
}

fn is_token(w: &str) -> bool {
    !w.is_empty()
        && !w.bytes().any(|b| b.is_ascii_lowercase())
        && !matches!(w, "[" | "]" | "(" | ")" | "|" | "...")
}

fn is_name(w: &str) -> bool {
    w.bytes().any(|b| b.is_ascii_lowercase()) && !w.contains('=')
}

fn plain_arg(w: &str) -> Arg {
    let (name, kind) = match w.split_once(':') {
        Some((n, "int")) => (n, "integer"),
        Some((n, "dbl")) => (n, "double"),
        Some((n, "key")) => (n, "key"),
        Some((n, "pat")) => (n, "pattern"),
        Some((n, "ts")) => (n, "unix-time"),
        Some((n, _)) => (n, "string"),
        None if w == "key" => (w, "key"),
        None => (w, "string"),
    };
    Arg::new(name, kind)
}

struct Parser {
    toks: Vec<String>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&str> {
        self.toks.get(self.pos).map(|s| s.as_str())
    }

    /// Items until `]`, `)`, `|` or the end.
    fn seq(&mut self) -> Vec<Arg> {
        let mut items = Vec::new();
        while let Some(t) = self.peek() {
            if matches!(t, "]" | ")" | "|") {
                break;
            }
            let Some(mut item) = self.item() else { break };
            if self.peek() == Some("...") {
                self.pos += 1;
                item.multiple = true;
                item.multiple_token = item.token.is_some();
            }
            items.push(item);
        }
        items
    }

    fn item(&mut self) -> Option<Arg> {
        let t = self.peek()?.to_string();
        self.pos += 1;
        match t.as_str() {
            "[" | "(" => {
                let close = if t == "[" { "]" } else { ")" };
                let mut a = self.group();
                if self.peek() == Some(close) {
                    self.pos += 1;
                }
                if t == "[" {
                    a.optional = true;
                }
                Some(a)
            }
            _ if is_token(&t) => {
                let next = self.peek().map(|s| s.to_string());
                match next.as_deref() {
                    Some(n) if is_name(n) => {
                        self.pos += 1;
                        let mut a = plain_arg(n);
                        a.token = Some(t);
                        Some(a)
                    }
                    Some("(") => {
                        self.pos += 1;
                        let mut a = self.group();
                        if self.peek() == Some(")") {
                            self.pos += 1;
                        }
                        a.name = t.to_ascii_lowercase();
                        a.token = Some(t);
                        Some(a)
                    }
                    _ => {
                        let mut a = Arg::new(&t.to_ascii_lowercase(), "pure-token");
                        a.token = Some(t);
                        Some(a)
                    }
                }
            }
            _ => Some(plain_arg(&t)),
        }
    }

    /// The inside of a `[ ]` or `( )`: an optional `name=`, then alternatives.
    fn group(&mut self) -> Arg {
        let mut label = None;
        if let Some(t) = self.peek()
            && let Some((n, rest)) = t.split_once('=')
        {
            label = Some(n.to_string());
            let rest = rest.to_string();
            if rest.is_empty() {
                self.pos += 1;
            } else {
                self.toks[self.pos] = rest;
            }
        }
        let mut alts = vec![self.seq()];
        while self.peek() == Some("|") {
            self.pos += 1;
            alts.push(self.seq());
        }
        let mut a = if alts.len() == 1 {
            let seq = alts.pop().unwrap();
            if seq.len() == 1 && label.is_none() {
                seq.into_iter().next().unwrap()
            } else {
                block(seq)
            }
        } else {
            let sub: Vec<Arg> = alts
                .into_iter()
                .map(|s| {
                    if s.len() == 1 {
                        s.into_iter().next().unwrap()
                    } else {
                        block(s)
                    }
                })
                .collect();
            let mut a = Arg::new(&sub[0].name, "oneof");
            a.sub = sub;
            a
        };
        if let Some(l) = label {
            a.name = l;
        }
        a
    }
}

fn block(seq: Vec<Arg>) -> Arg {
    let name = seq.first().map(|a| a.name.clone()).unwrap_or_default();
    let mut a = Arg::new(&name, "block");
    a.sub = seq;
    a
}

/// The argument tree of a usage line.
pub fn parse(usage: &str) -> Vec<Arg> {
    let mut p = Parser {
        toks: tokenize(usage),
        pos: 0,
    };
    p.seq()
}

/// Writes an argument list as COMMAND DOCS does.
pub fn write_args(out: &mut Out, args: &[Arg]) {
    out.array(args.len());
    for a in args {
        let mut n = 2;
        if a.kind == "key" {
            n += 1;
        }
        if a.token.is_some() {
            n += 1;
        }
        let has_flags = a.optional || a.multiple || a.multiple_token;
        if has_flags {
            n += 1;
        }
        let nested = a.kind == "oneof" || a.kind == "block";
        if nested {
            n += 1;
        }
        out.map(n);
        out.bulk_str("name");
        out.bulk_str(&a.name);
        out.bulk_str("type");
        out.bulk_str(a.kind);
        if a.kind == "key" {
            // keel reports one key spec per command, so every key points at it.
            out.bulk_str("key_spec_index");
            out.int(0);
        }
        if let Some(t) = &a.token {
            out.bulk_str("token");
            out.bulk_str(t);
        }
        if has_flags {
            out.bulk_str("flags");
            let flags: Vec<&str> = [
                (a.optional, "optional"),
                (a.multiple, "multiple"),
                (a.multiple_token, "multiple_token"),
            ]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, f)| *f)
            .collect();
            out.set(flags.len());
            for f in flags {
                out.simple(f);
            }
        }
        if nested {
            out.bulk_str("arguments");
            write_args(out, &a.sub);
        }
    }
}

/// Renders an argument list the way redis-cli prints hints (for tests).
pub fn render(args: &[Arg]) -> String {
    args.iter().map(render_one).collect::<Vec<_>>().join(" ")
}

fn render_one(a: &Arg) -> String {
    let rep = match a.kind {
        "oneof" => a.sub.iter().map(render_one).collect::<Vec<_>>().join("|"),
        "block" => render(&a.sub),
        "pure-token" => String::new(),
        _ => a.name.clone(),
    };
    let tok = match (&a.token, a.kind) {
        (Some(t), "pure-token") => t.clone(),
        (Some(t), _) => format!("{t} "),
        (None, _) => String::new(),
    };
    let mut s = String::new();
    if a.optional {
        s.push('[');
    }
    s.push_str(&tok);
    s.push_str(&rep);
    if a.multiple {
        s.push_str(" [");
        if a.multiple_token {
            s.push_str(&tok);
        }
        s.push_str(&rep);
        s.push_str(" ...]");
    }
    if a.optional {
        s.push(']');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_redis_help() {
        let r = |n| render(&parse(usage(n).unwrap()));
        assert_eq!(
            r("set"),
            "key value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]"
        );
        assert_eq!(r("del"), "key [key ...]");
        assert_eq!(r("mset"), "key value [key value ...]");
        assert_eq!(
            r("sort"),
            "key [BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]] [ASC|DESC] [ALPHA] [STORE destination]"
        );
        assert_eq!(
            r("hello"),
            "[protover [AUTH username password] [SETNAME clientname]]"
        );
        assert_eq!(r("ping"), "[message]");
        assert_eq!(r("info"), "[section [section ...]]");
        assert_eq!(r("bitpos"), "key bit [start [end [BYTE|BIT]]]");
        assert_eq!(r("shutdown"), "[NOSAVE|SAVE] [NOW] [FORCE] [ABORT]");
        let set = parse(usage("set").unwrap());
        assert_eq!(set[2].name, "condition");
        assert_eq!(set[2].kind, "oneof");
        assert_eq!(set[4].sub[0].token.as_deref(), Some("EX"));
        assert_eq!(set[4].sub[0].kind, "integer");
    }

    #[test]
    fn every_usage_parses_whole() {
        for (name, u) in USAGE {
            let mut p = Parser {
                toks: tokenize(u),
                pos: 0,
            };
            p.seq();
            assert_eq!(p.pos, p.toks.len(), "{name}: unparsed tail");
        }
    }
}
