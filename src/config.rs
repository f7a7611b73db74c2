//! Configuration: redis.conf names, from a file and/or `--name value` flags,
//! readable and settable at run time (CONFIG GET/SET).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::protocol::parser_split_args;

mod text;
use text::{fatal, merge_output_limits, options_text, quote_arg, strerror};
pub use text::{parse_memory, peer_is_local, protected_allowed};

/// Checks of a config that need the layers above it (the command table,
/// the cluster map). The server hands them down before the config is read
/// (`register_checks`, called by the server's start), so that config, which storage and
/// rdb read, imports nothing above it. Unregistered: not checked.
#[derive(Clone, Copy)]
pub struct UpperChecks {
    /// The `rename-command` lines so far, checked at each such line.
    pub renames: fn(&[Rename]) -> Result<(), &'static str>,
    /// The whole config once every line is read (the cluster slot map).
    pub loaded: fn(&Config) -> Result<(), String>,
}

/// One `rename-command` line: the name and its new name ("" = disabled).
pub type Rename = (String, String);

static UPPER: OnceLock<UpperChecks> = OnceLock::new();

/// Installs the checks of the layers above (once; later calls are no-ops).
pub fn register_checks(checks: UpperChecks) {
    let _ = UPPER.set(checks);
}

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
    /// An octal number (unixsocketperm), kept as typed in octal.
    Octal,
}

pub struct Param {
    pub name: &'static str,
    pub default: &'static str,
    pub kind: Kind,
    /// Cannot be changed by CONFIG SET.
    pub immutable: bool,
    pub alias: Option<&'static str>,
    /// CONFIG SET needs `enable-protected-configs` (Redis's PROTECTED_CONFIG).
    pub protected: bool,
    /// The only values keel acts on as Redis does; any other is refused
    /// (a setting keel would silently ignore).
    pub only: Option<&'static [&'static str]>,
    /// Accepted for compatibility although keel does not act on it: a value
    /// other than the default is kept (CONFIG GET/REWRITE) and logged as a
    /// warning saying why it has no effect.
    pub no_effect: Option<&'static str>,
    /// Left out of CONFIG GET's pattern matches (Redis's HIDDEN_CONFIG,
    /// e.g. the DEBUG-only `key-load-delay`); an exact name still answers.
    pub hidden: bool,
}

impl Param {
    const fn protected(self) -> Param {
        Param {
            protected: true,
            ..self
        }
    }
    const fn only(self, values: &'static [&'static str]) -> Param {
        Param {
            only: Some(values),
            ..self
        }
    }
    const fn no_effect(self, why: &'static str) -> Param {
        Param {
            no_effect: Some(why),
            ..self
        }
    }
    const fn hidden(self) -> Param {
        Param {
            hidden: true,
            ..self
        }
    }
}

const fn p(name: &'static str, default: &'static str, kind: Kind) -> Param {
    Param {
        name,
        default,
        kind,
        immutable: false,
        alias: None,
        protected: false,
        only: None,
        no_effect: None,
        hidden: false,
    }
}
const fn imm(name: &'static str, default: &'static str, kind: Kind) -> Param {
    Param {
        name,
        default,
        kind,
        immutable: true,
        alias: None,
        protected: false,
        only: None,
        no_effect: None,
        hidden: false,
    }
}
const fn alias(name: &'static str, default: &'static str, kind: Kind, a: &'static str) -> Param {
    Param {
        name,
        default,
        kind,
        immutable: false,
        alias: Some(a),
        protected: false,
        only: None,
        no_effect: None,
        hidden: false,
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
    p("dir", ".", Kind::Str).protected(),
    p("dbfilename", "dump.rdb", Kind::Str).protected(),
    p("save", "3600 1 300 100 60 10000", Kind::List),
    p("rdbcompression", "yes", YESNO),
    p("rdbchecksum", "yes", YESNO),
    p("appendonly", "no", YESNO),
    imm("appenddirname", "appendonlydir", Kind::Str),
    p("aof-load-truncated", "yes", YESNO),
    p("aof-use-rdb-preamble", "yes", YESNO),
    p("no-appendfsync-on-rewrite", "no", YESNO),
    p("aof-timestamp-enabled", "no", YESNO),
    p("aof-disable-auto-gc", "no", YESNO),
    p("auto-aof-rewrite-percentage", "100", Kind::Int),
    p("auto-aof-rewrite-min-size", "64mb", Kind::Memory),
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
    p("tracking-table-max-keys", "1000000", Kind::Int),
    p("maxmemory-clients", "0", Kind::Memory).only(&["0"]),
    p("maxmemory-eviction-tenacity", "10", Kind::Int).only(&["10"]),
    p("maxclients", "10000", Kind::Int),
    p("timeout", "0", Kind::Int),
    p("tcp-keepalive", "300", Kind::Int),
    imm("tcp-backlog", "511", Kind::Int),
    p("hz", "10", Kind::Int),
    // Loading: how often a load serves clients (bytes read between two
    // turns), and a delay per loaded key (µs; negative: 1 µs once per
    // -n keys), as Redis's DEBUG-only config.
    p(
        "loading-process-events-interval-bytes",
        "2097152",
        Kind::Int,
    )
    .hidden(),
    p("key-load-delay", "0", Kind::Int).hidden(),
    // µs slept per key while saving an RDB or an AOF base (in the child),
    // as Redis's DEBUG-only config: tests catch a save in progress.
    p("rdb-key-save-delay", "0", Kind::Int).hidden(),
    p(
        "loglevel",
        "notice",
        Kind::Enum(&["debug", "verbose", "notice", "warning", "nothing"]),
    ),
    p("logfile", "", Kind::Str),
    imm("daemonize", "no", YESNO),
    imm("pidfile", "", Kind::Str),
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
    p("repl-diskless-sync-max-replicas", "0", Kind::Int),
    p(
        "repl-diskless-load",
        "disabled",
        Kind::Enum(&["disabled", "on-empty-db", "swapdb"]),
    ),
    alias(
        "min-replicas-to-write",
        "0",
        Kind::Int,
        "min-slaves-to-write",
    ),
    // Redis 7.2's: what a replica does with a command of its master's
    // stream it cannot apply (see replication::replica::not_applied).
    p(
        "propagation-error-behavior",
        "ignore",
        Kind::Enum(&["ignore", "panic", "panic-on-replicas"]),
    ),
    p("lua-replicate-commands", "yes", YESNO),
    p("shutdown-timeout", "10", Kind::Int),
    alias(
        "min-replicas-max-lag",
        "10",
        Kind::Int,
        "min-slaves-max-lag",
    ),
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
    // Keyspace notifications are not implemented.
    p("notify-keyspace-events", "", Kind::Str),
    imm("disable-thp", "yes", YESNO),
    p("lazyfree-lazy-eviction", "no", YESNO).only(&["no"]),
    p("lazyfree-lazy-expire", "no", YESNO).only(&["no"]),
    p("lazyfree-lazy-server-del", "no", YESNO).only(&["no"]),
    p("lazyfree-lazy-user-del", "no", YESNO).only(&["no"]),
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
    // Lists have one representation in keel (no quicklist nodes), and in
    // Redis 7.0 the node size shows nowhere but in memory figures: accepted,
    // with a warning, so configs and test suites that tune it still load.
    alias(
        "list-max-listpack-size",
        "-2",
        Kind::Int,
        "list-max-ziplist-size",
    )
    .no_effect("keel's lists have no quicklist nodes to size"),
    // Node compression only changes memory figures: accepted with a warning.
    p("list-compress-depth", "0", Kind::Int)
        .no_effect("keel's lists have no quicklist nodes to compress"),
    alias(
        "hash-max-listpack-entries",
        "512",
        Kind::Int,
        "hash-max-ziplist-entries",
    ),
    alias(
        "hash-max-listpack-value",
        "64",
        Kind::Memory,
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
        Kind::Memory,
        "zset-max-ziplist-value",
    ),
    p("stream-node-max-bytes", "4096", Kind::Memory),
    p("hll-sparse-max-bytes", "3000", Kind::Memory),
    p("stream-node-max-entries", "100", Kind::Int),
    // Tables resize at once (no incremental rehash to drive).
    p("activerehashing", "yes", YESNO).only(&["yes"]),
    imm("appendfilename", "appendonly.aof", Kind::Str),
    // Thread per core: see `shards`.
    p("io-threads", "1", Kind::Int).only(&["1"]),
    // keel does not talk to a supervisor (no sd_notify).
    imm(
        "supervised",
        "no",
        Kind::Enum(&["upstart", "systemd", "auto", "no"]),
    )
    .only(&["no"]),
    imm("always-show-logo", "no", YESNO),
    // keel does not rewrite its process title.
    p("set-proc-title", "no", YESNO).only(&["no"]),
    p("stop-writes-on-bgsave-error", "yes", YESNO),
    p("lfu-log-factor", "10", Kind::Int),
    p("lfu-decay-time", "1", Kind::Int),
    p("replica-ignore-maxmemory", "yes", YESNO),
    imm("cluster-enabled", "no", YESNO),
    // The emulated cluster's static slot map (keel's own, repeatable):
    // `cluster-node <host>:<port> <ranges>`; the server's cluster map reads it.
    imm("cluster-node", "", Kind::List),
    // Empty: learned from the first MEET (the static map reads it as
    // 127.0.0.1).
    imm("cluster-announce-ip", "", Kind::Str),
    // Settable at runtime: the bus announces the new value (as stock).
    p("cluster-announce-hostname", "", Kind::Str),
    imm("cluster-port", "0", Kind::Int),
    p("cluster-node-timeout", "15000", Kind::Int),
    p("cluster-announce-port", "0", Kind::Int),
    p("cluster-announce-bus-port", "0", Kind::Int),
    // Stock announces it only with tls-cluster yes; keel has no TLS.
    p("cluster-announce-tls-port", "0", Kind::Int)
        .no_effect("keel has no TLS (stock reads it only with tls-cluster yes)"),
    imm("cluster-require-full-coverage", "yes", YESNO),
    imm("cluster-allow-reads-when-down", "no", YESNO),
    alias(
        "cluster-replica-validity-factor",
        "10",
        Kind::Int,
        "cluster-slave-validity-factor",
    ),
    imm("cluster-replica-no-failover", "no", YESNO),
    p("cluster-allow-replica-migration", "yes", YESNO),
    // The bus's node table (relative to `dir`); unused by the static map.
    imm("cluster-config-file", "nodes.conf", Kind::Str),
    imm("unixsocket", "", Kind::Str),
    imm("unixsocketperm", "0", Kind::Octal),
    imm(
        "enable-module-command",
        "no",
        Kind::Enum(&["yes", "no", "local"]),
    ),
    imm(
        "enable-debug-command",
        "no",
        Kind::Enum(&["no", "yes", "local"]),
    ),
    imm(
        "enable-protected-configs",
        "no",
        Kind::Enum(&["no", "yes", "local"]),
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

#[derive(Clone, Debug)]
pub struct Config {
    values: BTreeMap<&'static str, String>,
    /// Path of the config file keel was started with (CONFIG REWRITE target).
    pub file: Option<String>,
    /// `user <name> <rules...>` directives, loaded into the ACL at start.
    pub users: Vec<Vec<String>>,
    /// `rename-command <name> <new-name>` directives in file order ("" = disabled).
    pub renames: Vec<(String, String)>,
    /// notify-keyspace-events as set: its shown form drops 'n' next to 'A'
    /// (as stock's does), the setting keeps it.
    pub notify_flags: u32,
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
            renames: Vec::new(),
            notify_flags: 0,
        }
    }
}

impl Config {
    /// Builds the config from `keel [config-file] [--name value ...]`: as
    /// redis-server, the options become lines appended to the file's text,
    /// so an error names the line of the whole.
    pub fn from_args(args: &[String]) -> Result<Config, String> {
        let mut cfg = Config::default();
        let mut rest = args;
        let mut text = String::new();
        if let Some(first) = rest.first()
            && !first.starts_with('-')
        {
            text = std::fs::read_to_string(first).map_err(|e| {
                format!(
                    "Fatal error, can't open config file '{first}': {}",
                    strerror(&e)
                )
            })?;
            cfg.file = Some(first.clone());
            rest = &rest[1..];
        }
        text.push('\n');
        text.push_str(&options_text(rest));
        cfg.load_text(&text)?;
        cfg.check_loaded()?;
        Ok(cfg)
    }

    /// Checks after every line is read (loadServerConfigFromString's tail).
    fn check_loaded(&self) -> Result<(), String> {
        let log = self.get("logfile");
        if !log.is_empty()
            && let Err(e) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
        {
            return Err(fatal(
                None,
                &format!("Can't open the log file: {}", strerror(&e)),
            ));
        }
        // The slot map spans several directives: checked once all are read.
        if let Some(up) = UPPER.get() {
            (up.loaded)(self).map_err(|e| format!("Fatal config error: {e}"))?;
        }
        Ok(())
    }

    /// Applies redis.conf text; the first bad line refuses the whole, with
    /// redis-server's message.
    pub fn load_text(&mut self, text: &str) -> Result<(), String> {
        // Directives whose repeated lines accumulate, as `save` in redis.conf.
        let mut seen: Vec<&'static str> = Vec::new();
        for (i, line) in text.split('\n').enumerate() {
            let line = line.trim_matches([' ', '\t', '\r', '\n']);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = Some((i + 1, line));
            let Some(words) = parser_split_args(line.as_bytes()) else {
                return Err(fatal(at, "Unbalanced quotes in configuration line"));
            };
            let words: Vec<String> = words
                .into_iter()
                .map(|w| String::from_utf8_lossy(&w).into_owned())
                .collect();
            let Some(name) = words.first() else { continue };
            let name = name.to_ascii_lowercase();
            let argc = words.len();
            if let Some(param) = find_param(&name) {
                let multi = matches!(param.kind, Kind::List);
                if !multi && argc != 2 {
                    return Err(fatal(at, "wrong number of arguments"));
                }
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
                self.set_checked(param, &value).map_err(|e| fatal(at, &e))?;
                continue;
            }
            match name.as_str() {
                "user" if argc >= 2 => {
                    self.check_user_directive(&words[1..])
                        .map_err(|e| fatal(at, &e))?;
                    self.users.push(words[1..].to_vec());
                }
                "rename-command" if argc == 3 => {
                    self.renames.push((words[1].clone(), words[2].clone()));
                    if let Some(up) = UPPER.get() {
                        (up.renames)(&self.renames).map_err(|e| fatal(at, e))?;
                    }
                }
                "include" if argc == 2 => {
                    let inc = std::fs::read_to_string(&words[1]).map_err(|e| {
                        format!(
                            "Fatal error, can't open config file '{}': {}",
                            words[1],
                            strerror(&e)
                        )
                    })?;
                    self.load_text(&inc)?;
                }
                // Deprecated: redis-server skips them.
                "list-max-ziplist-entries" | "list-max-ziplist-value" if argc == 2 => {}
                _ => return Err(fatal(at, "Bad directive or wrong number of arguments")),
            }
        }
        Ok(())
    }

    /// ACLAppendUserForLoading: rules must parse (unknown commands aside).
    /// Redis 7.0 names the user, not the bad rule, in its message.
    fn check_user_directive(&self, words: &[String]) -> Result<(), String> {
        let Some(name) = words.first() else {
            return Err("Bad directive or wrong number of arguments".into());
        };
        let refuse = |why: &str| Err(format!("Error in user declaration '{name}': {why}"));
        if self.users.iter().any(|u| u.first() == Some(name)) {
            return refuse("Duplicate user found. A user can only be defined once in config files");
        }
        let mut u = crate::acl::User::new(name);
        let Ok(ops) = crate::acl::merge_selector_args(&words[1..]) else {
            return refuse("Unmatched parenthesis in acl selector");
        };
        for w in &ops {
            if let Err(e) = u.apply(w)
                && !matches!(e, crate::acl::RuleError::Unknown)
            {
                return refuse(e.message());
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
            Kind::Str if param.name == "notify-keyspace-events" => {
                let flags = crate::storage::notify::parse(value)
                    .ok_or("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")?;
                self.notify_flags = flags;
                crate::storage::notify::to_string(flags)
            }
            // isValidAnnouncedHostname
            Kind::Str if param.name == "cluster-announce-hostname" => {
                if value.len() >= 256 {
                    return Err("Hostnames must be less than 256 characters".into());
                }
                if !value
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
                {
                    return Err(
                        "Hostnames may only contain alphanumeric characters, hyphens or dots"
                            .into(),
                    );
                }
                value.to_string()
            }
            Kind::List if param.name == "client-output-buffer-limit" => {
                merge_output_limits(self.get(param.name), value)?
            }
            Kind::Octal => match u32::from_str_radix(value, 8) {
                Ok(n) if n <= 0o777 => format!("{n:o}"),
                Ok(_) => return Err("argument must be between 0 and 777 inclusive".into()),
                Err(_) => return Err("argument couldn't be parsed as an octal number".into()),
            },
            Kind::Str | Kind::List => value.to_string(),
        };
        if let (Some((lo, hi)), Ok(n)) = (int_bounds(param.name), v.parse::<i64>())
            && !(lo..=hi).contains(&n)
        {
            return Err(format!("argument must be between {lo} and {hi} inclusive"));
        }
        if let Some(ok) = param.only
            && !ok.contains(&v.as_str())
        {
            return Err(not_implemented(param, ok));
        }
        if let Some(why) = param.no_effect
            && v != param.default
        {
            crate::log::warning(&format!(
                "'{} {v}' has no effect in keel: {why}",
                param.name
            ));
        }
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

/// Redis 7.0's bounds of numeric configs (numericBoundaryCheck).
fn int_bounds(name: &str) -> Option<(i64, i64)> {
    const INT: i64 = i32::MAX as i64;
    const LONG: i64 = i64::MAX;
    Some(match name {
        "port"
        | "cluster-announce-port"
        | "cluster-announce-bus-port"
        | "cluster-announce-tls-port"
        | "replica-announce-port"
        | "cluster-port" => (0, 65535),
        "databases" | "maxmemory-samples" | "repl-ping-replica-period" | "repl-timeout" => (1, INT),
        "active-expire-effort" => (1, 10),
        "cluster-node-timeout" => (0, LONG),
        "cluster-replica-validity-factor" => (0, INT),
        "loading-process-events-interval-bytes" => (1024, INT),
        "key-load-delay" | "rdb-key-save-delay" => (i32::MIN as i64, INT),
        "io-threads" => (1, 128),
        "maxclients" => (1, u32::MAX as i64),
        "maxmemory-eviction-tenacity" => (0, 100),
        "client-query-buffer-limit" | "proto-max-bulk-len" => (1 << 20, LONG),
        "repl-backlog-size" => (1, LONG),
        "tracking-table-max-keys" => (0, LONG),
        "slowlog-log-slower-than" => (-1, LONG),
        "list-max-listpack-size" => (i32::MIN as i64, INT),
        "list-compress-depth" => (0, INT),
        "hz"
        | "lfu-decay-time"
        | "lfu-log-factor"
        | "min-replicas-max-lag"
        | "min-replicas-to-write"
        | "repl-diskless-sync-delay"
        | "repl-diskless-sync-max-replicas"
        | "replica-priority"
        | "shutdown-timeout"
        | "tcp-backlog"
        | "tcp-keepalive"
        | "timeout" => (0, INT),
        "acllog-max-len"
        | "busy-reply-threshold"
        | "hash-max-listpack-entries"
        | "hash-max-listpack-value"
        | "hll-sparse-max-bytes"
        | "latency-monitor-threshold"
        | "repl-backlog-ttl"
        | "set-max-intset-entries"
        | "slowlog-max-len"
        | "stream-node-max-bytes"
        | "stream-node-max-entries"
        | "zset-max-listpack-entries"
        | "zset-max-listpack-value" => (0, LONG),
        _ => return None,
    })
}

/// Why a value keel would not act on is refused.
fn not_implemented(param: &Param, ok: &[&str]) -> String {
    let values: Vec<String> = ok
        .iter()
        .map(|v| {
            if v.is_empty() {
                "\"\"".to_string()
            } else {
                format!("'{v}'")
            }
        })
        .collect();
    format!(
        "keel does not implement other values of '{}': only {} is accepted",
        param.name,
        values.join(", ")
    )
}

#[cfg(test)]
pub(crate) mod tests {
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
        let args = two_node_map_args();
        let cc = Config::from_args(&args).unwrap();
        assert_eq!(
            cc.get("cluster-node"),
            "127.0.0.1:7000 0-8191 127.0.0.1:7001 8192-16000,16001-16383"
        );
        let text = cc.rewrite_text("");
        assert!(text.contains("cluster-node 127.0.0.1:7000 0-8191\ncluster-node 127.0.0.1:7001 8192-16000,16001-16383\n"));
        assert!(c.set("maxmemory-policy", "bogus").is_err());
    }

    /// Flags of a node in a static two-node slot map (also the server's
    /// map-check test starts from them).
    pub(crate) fn two_node_map_args() -> Vec<String> {
        [
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
        .collect()
    }
}
