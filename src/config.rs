//! Configuration: redis.conf names, from a file and/or `--name value` flags,
//! readable and settable at run time (CONFIG GET/SET).

use std::collections::BTreeMap;

use crate::protocol::parser_split_args;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Int,
    /// Byte sizes with units (1gb, 512mb...).
    Memory,
    Str,
    /// One of a fixed set of words.
    Enum(&'static [&'static str]),
    /// Free-form list of words kept as typed (save, bind, client-output-buffer-limit...).
    List,
}

pub struct Param {
    pub name: &'static str,
    pub default: &'static str,
    pub kind: Kind,
    /// Cannot be changed by CONFIG SET.
    pub immutable: bool,
    pub alias: Option<&'static str>,
}

const fn p(name: &'static str, default: &'static str, kind: Kind) -> Param {
    Param {
        name,
        default,
        kind,
        immutable: false,
        alias: None,
    }
}
const fn imm(name: &'static str, default: &'static str, kind: Kind) -> Param {
    Param {
        name,
        default,
        kind,
        immutable: true,
        alias: None,
    }
}
const fn alias(name: &'static str, default: &'static str, kind: Kind, a: &'static str) -> Param {
    Param {
        name,
        default,
        kind,
        immutable: false,
        alias: Some(a),
    }
}

const YESNO: Kind = Kind::Bool;

/// Parameters keel knows, with Redis 7.0 defaults.
pub const PARAMS: &[Param] = &[
    imm("port", "6379", Kind::Int),
    p("bind", "127.0.0.1 -::1", Kind::List),
    p("protected-mode", "yes", YESNO),
    imm("databases", "16", Kind::Int),
    p("requirepass", "", Kind::Str),
    p("masterauth", "", Kind::Str),
    p("masteruser", "", Kind::Str),
    imm("aclfile", "", Kind::Str),
    p("acllog-max-len", "128", Kind::Int),
    p(
        "acl-pubsub-default",
        "resetchannels",
        Kind::Enum(&["allchannels", "resetchannels"]),
    ),
    p("dir", ".", Kind::Str),
    p("dbfilename", "dump.rdb", Kind::Str),
    p("save", "3600 1 300 100 60 10000", Kind::List),
    p("rdbcompression", "yes", YESNO),
    p("rdbchecksum", "yes", YESNO),
    p("appendonly", "no", YESNO),
    p(
        "appendfsync",
        "everysec",
        Kind::Enum(&["everysec", "always", "no"]),
    ),
    p("maxmemory", "0", Kind::Memory),
    p(
        "maxmemory-policy",
        "noeviction",
        Kind::Enum(&[
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "noeviction",
        ]),
    ),
    p("maxmemory-samples", "5", Kind::Int),
    p("maxmemory-clients", "0", Kind::Memory),
    p("maxmemory-eviction-tenacity", "10", Kind::Int),
    p("maxclients", "10000", Kind::Int),
    p("timeout", "0", Kind::Int),
    p("tcp-keepalive", "300", Kind::Int),
    imm("tcp-backlog", "511", Kind::Int),
    p("hz", "10", Kind::Int),
    p(
        "loglevel",
        "notice",
        Kind::Enum(&["debug", "verbose", "notice", "warning", "nothing"]),
    ),
    p("logfile", "", Kind::Str),
    imm("daemonize", "no", YESNO),
    p("pidfile", "", Kind::Str),
    p("proto-max-bulk-len", "536870912", Kind::Memory),
    p("client-query-buffer-limit", "1073741824", Kind::Memory),
    p(
        "client-output-buffer-limit",
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        Kind::List,
    ),
    alias("replicaof", "", Kind::List, "slaveof"),
    alias("replica-read-only", "yes", YESNO, "slave-read-only"),
    alias(
        "replica-serve-stale-data",
        "yes",
        YESNO,
        "slave-serve-stale-data",
    ),
    alias("replica-priority", "100", Kind::Int, "slave-priority"),
    alias(
        "repl-ping-replica-period",
        "10",
        Kind::Int,
        "repl-ping-slave-period",
    ),
    p("repl-timeout", "60", Kind::Int),
    p("repl-backlog-size", "1048576", Kind::Memory),
    p("repl-backlog-ttl", "3600", Kind::Int),
    p("repl-diskless-sync", "yes", YESNO),
    p("repl-diskless-sync-delay", "5", Kind::Int),
    p(
        "repl-diskless-load",
        "disabled",
        Kind::Enum(&["disabled", "on-empty-db", "swapdb"]),
    ),
    p("min-replicas-to-write", "0", Kind::Int),
    p("lua-replicate-commands", "yes", YESNO),
    p("shutdown-timeout", "10", Kind::Int),
    p("min-replicas-max-lag", "10", Kind::Int),
    p("replica-announce-ip", "", Kind::Str),
    p("replica-announce-port", "0", Kind::Int),
    alias("busy-reply-threshold", "5000", Kind::Int, "lua-time-limit"),
    p("slowlog-log-slower-than", "10000", Kind::Int),
    p("slowlog-max-len", "128", Kind::Int),
    p("latency-monitor-threshold", "0", Kind::Int),
    p("latency-tracking", "yes", YESNO),
    p(
        "latency-tracking-info-percentiles",
        "50 99 99.9",
        Kind::List,
    ),
    p("notify-keyspace-events", "", Kind::Str),
    imm("disable-thp", "yes", YESNO),
    p("lazyfree-lazy-eviction", "no", YESNO),
    p("lazyfree-lazy-expire", "no", YESNO),
    p("lazyfree-lazy-server-del", "no", YESNO),
    p("lazyfree-lazy-user-del", "no", YESNO),
    p("lazyfree-lazy-user-flush", "no", YESNO),
    // RESTORE and RDB loading always validate every value in depth (values
    // are decoded, never kept as unchecked blobs): "no" and "clients"
    // behave as "yes".
    p(
        "sanitize-dump-payload",
        "no",
        Kind::Enum(&["no", "yes", "clients"]),
    ),
    p("active-expire-effort", "1", Kind::Int),
    alias(
        "list-max-listpack-size",
        "-2",
        Kind::Int,
        "list-max-ziplist-size",
    ),
    alias(
        "hash-max-listpack-entries",
        "512",
        Kind::Int,
        "hash-max-ziplist-entries",
    ),
    alias(
        "hash-max-listpack-value",
        "64",
        Kind::Int,
        "hash-max-ziplist-value",
    ),
    p("set-max-intset-entries", "512", Kind::Int),
    alias(
        "zset-max-listpack-entries",
        "128",
        Kind::Int,
        "zset-max-ziplist-entries",
    ),
    alias(
        "zset-max-listpack-value",
        "64",
        Kind::Int,
        "zset-max-ziplist-value",
    ),
    p("stream-node-max-bytes", "4096", Kind::Memory),
    p("hll-sparse-max-bytes", "3000", Kind::Memory),
    p("stream-node-max-entries", "100", Kind::Int),
    p("activerehashing", "yes", YESNO),
    p("appendfilename", "appendonly.aof", Kind::Str),
    p("io-threads", "1", Kind::Int),
    imm(
        "supervised",
        "no",
        Kind::Enum(&["upstart", "systemd", "auto", "no"]),
    ),
    p("always-show-logo", "no", YESNO),
    p("set-proc-title", "yes", YESNO),
    p("stop-writes-on-bgsave-error", "yes", YESNO),
    p("lfu-log-factor", "10", Kind::Int),
    p("lfu-decay-time", "1", Kind::Int),
    p("replica-ignore-maxmemory", "yes", YESNO),
    imm("cluster-enabled", "no", YESNO),
    // The emulated cluster's static slot map (keel's own, repeatable):
    // `cluster-node <host>:<port> <ranges>`; see server::cluster.
    imm("cluster-node", "", Kind::List),
    imm("cluster-announce-ip", "127.0.0.1", Kind::Str),
    imm("cluster-announce-port", "0", Kind::Int),
    imm("cluster-require-full-coverage", "yes", YESNO),
    imm("cluster-allow-reads-when-down", "no", YESNO),
    // Accepted for redis.conf compatibility; keel keeps no nodes file.
    imm("cluster-config-file", "nodes.conf", Kind::Str),
    p("unixsocket", "", Kind::Str),
    p(
        "enable-debug-command",
        "yes",
        Kind::Enum(&["yes", "no", "local"]),
    ),
    // keel's own: shard count, and how long an idle shard spins before parking (µs).
    imm("shards", "0", Kind::Int),
    p("hop-spin-us", "20", Kind::Int),
];

pub fn find_param(name: &str) -> Option<&'static Param> {
    let name = name.to_ascii_lowercase();
    PARAMS
        .iter()
        .find(|p| p.name == name || p.alias == Some(name.as_str()))
}

/// Parses "1gb", "100mb", "1k", "42" like Redis's memtoull.
pub fn parse_memory(s: &str) -> Option<i64> {
    let s = s.to_ascii_lowercase();
    let (num, mul): (&str, i64) = if let Some(n) = s.strip_suffix("gb") {
        (n, 1 << 30)
    } else if let Some(n) = s.strip_suffix("mb") {
        (n, 1 << 20)
    } else if let Some(n) = s.strip_suffix("kb") {
        (n, 1 << 10)
    } else if let Some(n) = s.strip_suffix('g') {
        (n, 1_000_000_000)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 1_000_000)
    } else if let Some(n) = s.strip_suffix('k') {
        (n, 1000)
    } else if let Some(n) = s.strip_suffix('b') {
        (n, 1)
    } else {
        (s.as_str(), 1)
    };
    // Memory values are never negative.
    num.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)?
        .checked_mul(mul)
}

#[derive(Clone, Debug)]
pub struct Config {
    values: BTreeMap<&'static str, String>,
    /// Path of the config file keel was started with (CONFIG REWRITE target).
    pub file: Option<String>,
    /// `user <name> <rules...>` directives, loaded into the ACL at start.
    pub users: Vec<Vec<String>>,
}

impl Default for Config {
    fn default() -> Self {
        let values = PARAMS
            .iter()
            .map(|p| (p.name, p.default.to_string()))
            .collect();
        Config {
            values,
            file: None,
            users: Vec::new(),
        }
    }
}

impl Config {
    /// Builds the config from `keel [config-file] [--name value ...]`.
    pub fn from_args(args: &[String]) -> Result<Config, String> {
        let mut cfg = Config::default();
        let mut rest = args;
        if let Some(first) = rest.first()
            && !first.starts_with("--")
        {
            let text = std::fs::read_to_string(first)
                .map_err(|e| format!("Fatal error, can't open config file '{first}': {e}"))?;
            cfg.load_text(&text)?;
            cfg.file = Some(first.clone());
            rest = &rest[1..];
        }
        // `--name v1 v2 --other v` becomes "name v1 v2\nother v" as redis-server does.
        let mut text = String::new();
        for a in rest {
            if let Some(name) = a.strip_prefix("--") {
                text.push('\n');
                text.push_str(name);
            } else {
                text.push(' ');
                text.push_str(&quote_arg(a));
            }
        }
        cfg.load_text(&text)?;
        // The slot map spans several directives: checked once all are read.
        crate::server::cluster::ClusterMap::from_config(&cfg)
            .map_err(|e| format!("Fatal config error: {e}"))?;
        Ok(cfg)
    }

    /// Applies redis.conf lines. Unknown directives are reported, not fatal,
    /// so existing redis.conf files load.
    pub fn load_text(&mut self, text: &str) -> Result<(), String> {
        // Directives whose repeated lines accumulate, as `save` in redis.conf.
        let mut seen: Vec<&'static str> = Vec::new();
        for (lineno, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some(words) = parser_split_args(line.as_bytes()) else {
                return Err(format!(
                    "Unbalanced quotes in configuration line {}",
                    lineno + 1
                ));
            };
            let words: Vec<String> = words
                .into_iter()
                .map(|w| String::from_utf8_lossy(&w).into_owned())
                .collect();
            let Some(name) = words.first() else { continue };
            if name.eq_ignore_ascii_case("user") {
                self.check_user_directive(&words[1..]).map_err(|e| {
                    format!("Bad directive or wrong number of arguments: user: {e}")
                })?;
                self.users.push(words[1..].to_vec());
                continue;
            }
            let Some(param) = find_param(name) else {
                crate::log::warning(&format!(
                    "Unknown config directive '{name}' (line {}), ignored",
                    lineno + 1
                ));
                continue;
            };
            let value = words[1..].join(" ");
            let repeatable = matches!(param.name, "save" | "cluster-node");
            let value = if repeatable && seen.contains(&param.name) {
                format!("{} {}", self.get(param.name), value)
            } else {
                value
            };
            if repeatable {
                seen.push(param.name);
            }
            self.set_checked(param, &value)
                .map_err(|e| format!("Bad directive or wrong number of arguments: {name}: {e}"))?;
        }
        Ok(())
    }

    /// ACLAppendUserForLoading: rules must parse (unknown commands aside).
    fn check_user_directive(&self, words: &[String]) -> Result<(), String> {
        let Some(name) = words.first() else {
            return Err("missing username".into());
        };
        if self.users.iter().any(|u| u.first() == Some(name)) {
            return Err(
                "Duplicate user found. A user can only be defined once in config files".into(),
            );
        }
        let mut u = crate::acl::User::new(name);
        for w in &words[1..] {
            if let Err(e) = u.apply(w.as_bytes())
                && !matches!(e, crate::acl::RuleError::Unknown)
            {
                return Err(format!("Error in user declaration '{w}': {}", e.message()));
            }
        }
        Ok(())
    }

    fn set_checked(&mut self, param: &'static Param, value: &str) -> Result<(), String> {
        let v = match param.kind {
            Kind::Bool => match value.to_ascii_lowercase().as_str() {
                "yes" => "yes".to_string(),
                "no" => "no".to_string(),
                _ => return Err("argument must be 'yes' or 'no'".into()),
            },
            Kind::Int => {
                value
                    .parse::<i64>()
                    .map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
                value.to_string()
            }
            Kind::Memory => parse_memory(value)
                .ok_or_else(|| "argument must be a memory value".to_string())?
                .to_string(),
            Kind::Enum(choices) => {
                let l = value.to_ascii_lowercase();
                if !choices.contains(&l.as_str()) {
                    return Err("argument(s) must be one of the following: ".to_string()
                        + &choices.join(", "));
                }
                l
            }
            Kind::List if param.name == "client-output-buffer-limit" => {
                merge_output_limits(self.get(param.name), value)?
            }
            Kind::Str | Kind::List => value.to_string(),
        };
        self.values.insert(param.name, v);
        Ok(())
    }

    /// CONFIG SET of one parameter. Errors are the text after "ERR ".
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let param = find_param(name).ok_or_else(|| {
            format!("Unknown option or number of arguments for CONFIG SET - '{name}'")
        })?;
        if param.immutable {
            return Err(format!("can't set immutable config - '{}'", param.name));
        }
        self.set_checked(param, value)
            .map_err(|e| format!("Invalid argument '{value}' for CONFIG SET '{name}' - {e}"))
    }

    /// Sets a known parameter, checking the value; the error is the bare
    /// reason ("argument must be 'yes' or 'no'"), for CONFIG SET's wording.
    pub fn set_param(&mut self, param: &'static Param, value: &str) -> Result<(), String> {
        self.set_checked(param, value)
    }

    /// The config file as it would be after CONFIG REWRITE: `old` is the
    /// file's text. Comments and unknown lines stay; known options are
    /// rewritten in place (first occurrence; repeats dropped) and options that
    /// differ from their default and are not in the file are appended.
    pub fn rewrite_text(&self, old: &str) -> String {
        const MARK: &str = "# Generated by CONFIG REWRITE";
        let mut out: Vec<String> = Vec::new();
        let mut done: Vec<&'static str> = Vec::new();
        for line in old.lines() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                out.push(line.to_string());
                continue;
            }
            let name = parser_split_args(t.as_bytes())
                .and_then(|w| w.into_iter().next())
                .map(|w| String::from_utf8_lossy(&w).into_owned());
            match name.as_deref().and_then(find_param) {
                Some(p) if done.contains(&p.name) => {}
                Some(p) => {
                    done.push(p.name);
                    out.extend(self.option_lines(p));
                }
                None => out.push(line.to_string()),
            }
        }
        let mut extra = Vec::new();
        for p in PARAMS {
            if !done.contains(&p.name) && self.get(p.name) != p.default {
                extra.extend(self.option_lines(p));
            }
        }
        if !extra.is_empty() {
            if !out.iter().any(|l| l == MARK) {
                out.push(MARK.to_string());
            }
            out.extend(extra);
        }
        let mut s = out.join("\n");
        s.push('\n');
        s
    }

    /// The redis.conf line(s) for one option's current value.
    fn option_lines(&self, p: &'static Param) -> Vec<String> {
        let v = self.get(p.name);
        match p.kind {
            Kind::List if p.name == "save" => {
                let w: Vec<&str> = v.split_whitespace().collect();
                if w.is_empty() {
                    return vec!["save \"\"".to_string()];
                }
                w.chunks(2)
                    .map(|c| format!("save {}", c.join(" ")))
                    .collect()
            }
            // One line per node: a word with ':' starts the next node.
            Kind::List if p.name == "cluster-node" => {
                let mut lines: Vec<String> = Vec::new();
                for w in v.split_whitespace() {
                    match lines.last_mut() {
                        Some(l) if !w.contains(':') => {
                            l.push(' ');
                            l.push_str(w);
                        }
                        _ => lines.push(format!("cluster-node {w}")),
                    }
                }
                lines
            }
            Kind::List if !v.is_empty() => vec![format!("{} {}", p.name, v)],
            // A master drops its `replicaof` line (Redis removes it too).
            Kind::List => vec![],
            // Redis writes sizes in the largest exact unit: 10mb, not 10485760.
            Kind::Memory => {
                let n: i64 = v.parse().unwrap_or(0);
                let unit = [(1i64 << 30, "gb"), (1 << 20, "mb"), (1 << 10, "kb")]
                    .into_iter()
                    .find(|(u, _)| n != 0 && n % u == 0);
                match unit {
                    Some((u, name)) => vec![format!("{} {}{}", p.name, n / u, name)],
                    None => vec![format!("{} {}", p.name, n)],
                }
            }
            _ => vec![format!("{} {}", p.name, quote_arg(v))],
        }
    }

    pub fn get(&self, name: &str) -> &str {
        self.values.get(name).map(|s| s.as_str()).unwrap_or("")
    }

    pub fn get_i64(&self, name: &str) -> i64 {
        self.get(name).parse().unwrap_or(0)
    }

    pub fn get_bool(&self, name: &str) -> bool {
        self.get(name) == "yes"
    }

    /// All (name, value) pairs, for CONFIG GET patterns.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.values.iter().map(|(k, v)| (*k, v.as_str()))
    }

    pub fn reset_to_default(&mut self, name: &'static str) {
        if let Some(p) = find_param(name) {
            self.values.insert(p.name, p.default.to_string());
        }
    }
}

/// `client-output-buffer-limit` as Redis keeps it: the classes given are
/// replaced, the others kept, sizes in bytes, always all three classes.
fn merge_output_limits(current: &str, value: &str) -> Result<String, String> {
    let mut classes: Vec<(&str, [u64; 3])> = vec![
        ("normal", [0, 0, 0]),
        ("slave", [256 << 20, 64 << 20, 60]),
        ("pubsub", [32 << 20, 8 << 20, 60]),
    ];
    let mut apply = |words: &[&str]| -> Result<(), String> {
        if !words.len().is_multiple_of(4) {
            return Err("Wrong number of arguments in buffer limit configuration.".into());
        }
        for c in words.chunks(4) {
            let name = match c[0].to_ascii_lowercase().as_str() {
                "normal" => "normal",
                "slave" | "replica" => "slave",
                "pubsub" => "pubsub",
                _ => {
                    return Err(
                        "Invalid client class specified in buffer limit configuration.".into(),
                    );
                }
            };
            let hard = parse_memory(c[1]);
            let soft = parse_memory(c[2]);
            let secs = c[3].parse::<i64>().ok().filter(|s| *s >= 0);
            let (Some(h), Some(s), Some(t)) = (hard, soft, secs) else {
                return Err(
                    "Error in hard, soft or soft_seconds setting in buffer limit configuration."
                        .into(),
                );
            };
            if let Some(e) = classes.iter_mut().find(|(n, _)| *n == name) {
                e.1 = [h as u64, s as u64, t as u64];
            }
        }
        Ok(())
    };
    let cur: Vec<&str> = current.split_whitespace().collect();
    apply(&cur)?;
    let new: Vec<&str> = value.split_whitespace().collect();
    apply(&new)?;
    Ok(classes
        .iter()
        .map(|(n, v)| format!("{n} {} {} {}", v[0], v[1], v[2]))
        .collect::<Vec<_>>()
        .join(" "))
}

fn quote_arg(a: &str) -> String {
    if a.is_empty() {
        return "\"\"".into();
    }
    if a.bytes()
        .any(|b| b.is_ascii_whitespace() || b == b'"' || b == b'\'')
    {
        let mut s = String::from("\"");
        for c in a.chars() {
            if c == '"' || c == '\\' {
                s.push('\\');
            }
            s.push(c);
        }
        s.push('"');
        s
    } else {
        a.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_file_syntax() {
        let args: Vec<String> = [
            "--port",
            "7000",
            "--shards",
            "2",
            "--save",
            "",
            "--maxmemory",
            "1gb",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let c = Config::from_args(&args).unwrap();
        assert_eq!(c.get_i64("port"), 7000);
        assert_eq!(c.get_i64("shards"), 2);
        assert_eq!(c.get("save"), "");
        assert_eq!(c.get_i64("maxmemory"), 1 << 30);
        let mut c = Config::default();
        c.load_text("save 900 1\nsave 300 10\nslaveof 127.0.0.1 6380\n")
            .unwrap();
        assert_eq!(c.get("save"), "900 1 300 10");
        assert_eq!(c.get("replicaof"), "127.0.0.1 6380");
        assert!(c.set("port", "1").is_err());
        // The slot map: repeated flags (each one quoted word) or lines accumulate.
        let args: Vec<String> = [
            "--port",
            "7001",
            "--cluster-enabled",
            "yes",
            "--cluster-node",
            "127.0.0.1:7000 0-8191",
            "--cluster-node",
            "127.0.0.1:7001 8192-16000,16001-16383",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let cc = Config::from_args(&args).unwrap();
        assert_eq!(
            cc.get("cluster-node"),
            "127.0.0.1:7000 0-8191 127.0.0.1:7001 8192-16000,16001-16383"
        );
        let text = cc.rewrite_text("");
        assert!(text.contains("cluster-node 127.0.0.1:7000 0-8191\ncluster-node 127.0.0.1:7001 8192-16000,16001-16383\n"));
        let bad = |extra: &str| {
            let mut a = args.clone();
            a.extend(["--cluster-node".to_string(), extra.to_string()]);
            Config::from_args(&a).unwrap_err()
        };
        assert!(bad("127.0.0.1:7002 100").contains("already assigned"));
        assert!(bad("127.0.0.1:7002 16384").contains("out of range"));
        assert!(c.set("maxmemory-policy", "bogus").is_err());
    }
}
