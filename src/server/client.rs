//! Per-connection state, and the cross-thread view of it that CLIENT LIST /
//! CLIENT KILL use.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, AtomicUsize, Ordering};

/// What other threads may see or do to a client. Written by the owning thread
/// with relaxed stores (one writer), read by CLIENT LIST / INFO.
pub struct ClientInfo {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub fd: AtomicI32,
    pub shard: usize,
    pub created_ms: u64,
    pub name: Mutex<String>,
    pub db: AtomicUsize,
    pub last_interaction_ms: AtomicU64,
    /// Command table index of the last command (usize::MAX: none yet).
    pub last_cmd: AtomicUsize,
    /// For container commands, the interned "container|sub" name (usize::MAX: none).
    pub last_sub: AtomicUsize,
    pub qbuf: AtomicUsize,
    pub resp: AtomicUsize,
    /// Subscriptions: channels, patterns, shard channels (CLIENT LIST
    /// sub/psub/ssub; any makes the client TYPE pubsub).
    pub subs: [AtomicUsize; 3],
    pub flags: Mutex<String>,
    /// Set by CLIENT KILL; the connection closes at its next step.
    pub killed: AtomicBool,
    /// The ACL user the connection is authenticated as (CLIENT LIST user=).
    pub user: Mutex<String>,
    /// Free bytes of the query buffer's allocation (qbuf-free).
    pub qbuf_free: AtomicUsize,
    /// The reply buffer's allocation and the most it held since it was
    /// last given back (rbs, rbp).
    pub rbs: AtomicUsize,
    pub rbp: AtomicUsize,
    /// Bytes of the arguments of the command being run or blocked (argv-mem).
    pub argv_mem: AtomicUsize,
    /// Commands queued since MULTI (-1: not in a transaction) and their bytes.
    pub multi: AtomicI64,
    pub multi_mem: AtomicUsize,
    /// Waiting in a blocking command (flag b).
    pub blocked: AtomicBool,
    /// CLIENT NO-EVICT on (flag e).
    pub no_evict: AtomicBool,
    /// Pushed messages not yet written to the socket (omem, oll).
    pub omem: AtomicUsize,
    pub oll: AtomicUsize,
    /// CLIENT UNBLOCK request for a blocked client: 1 TIMEOUT, 2 ERROR.
    pub unblock: std::sync::atomic::AtomicU8,
    /// CLIENT TRACKING flags (`server::tracking::ON`...), the redirection
    /// target (0: none) and the BCAST prefixes.
    pub tracking: std::sync::atomic::AtomicU32,
    pub tracking_redir: AtomicU64,
    pub tracking_prefixes: Mutex<Vec<bytes::Bytes>>,
    /// Some tracking client redirects its invalidations here: the
    /// connection waits on its push queue as a subscriber does.
    pub push_target: AtomicBool,
    /// Invalidations for this connection not yet in its push queue.
    pub tracking_out: Mutex<Vec<u8>>,
}

impl ClientInfo {
    /// Closes the connection from another task: flags it and shuts its
    /// socket down so the owning task wakes up and ends.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Relaxed);
        // SAFETY: shutdown(2) on the client's socket fd; the fd stays open
        // until the owning task closes it, so it cannot refer to another file.
        unsafe {
            libc::shutdown(self.fd.load(Ordering::Relaxed), libc::SHUT_RDWR);
        }
    }

    /// CLIENT LIST / KILL TYPE: normal, replica, master or pubsub.
    pub fn kind(&self) -> &'static str {
        let f = self.flags.lock().unwrap();
        if f.contains('M') {
            "master"
        } else if f.contains('S') {
            "replica"
        } else if self.subscribed() {
            "pubsub"
        } else {
            "normal"
        }
    }

    fn subscribed(&self) -> bool {
        self.subs.iter().any(|n| n.load(Ordering::Relaxed) > 0)
    }

    pub fn touch(&self, now_ms: u64, cmd_idx: usize, args: &[bytes::Bytes]) {
        self.last_interaction_ms.store(now_ms, Ordering::Relaxed);
        self.last_cmd.store(cmd_idx, Ordering::Relaxed);
        let sub = if args.len() > 1 && crate::commands::is_container(cmd_idx) {
            intern_subcommand(crate::commands::table().get(cmd_idx).name, &args[1])
        } else {
            usize::MAX
        };
        self.last_sub.store(sub, Ordering::Relaxed);
    }

    /// A new client's view (id, addresses, socket, shard, creation time).
    pub fn new(id: u64, addr: String, laddr: String, fd: i32, shard: usize, now: u64) -> Self {
        ClientInfo {
            id,
            addr,
            laddr,
            fd: AtomicI32::new(fd),
            shard,
            created_ms: now,
            name: Default::default(),
            db: Default::default(),
            last_interaction_ms: now.into(),
            last_cmd: usize::MAX.into(),
            last_sub: usize::MAX.into(),
            qbuf: Default::default(),
            resp: 2.into(),
            subs: Default::default(),
            flags: Default::default(),
            killed: Default::default(),
            qbuf_free: Default::default(),
            rbs: Default::default(),
            rbp: Default::default(),
            argv_mem: Default::default(),
            multi: AtomicI64::new(-1),
            multi_mem: Default::default(),
            blocked: Default::default(),
            no_evict: Default::default(),
            omem: Default::default(),
            oll: Default::default(),
            unblock: Default::default(),
            tracking: Default::default(),
            tracking_redir: Default::default(),
            tracking_prefixes: Default::default(),
            push_target: Default::default(),
            tracking_out: Default::default(),
            user: Mutex::new("default".into()),
        }
    }

    /// One CLIENT LIST line, Redis 7.0 fields.
    pub fn list_line(&self, now_ms: u64) -> String {
        let age = now_ms.saturating_sub(self.created_ms) / 1000;
        let idle = now_ms.saturating_sub(self.last_interaction_ms.load(Ordering::Relaxed)) / 1000;
        // Redis's order: S/O, M, P, x, b, ..., e.
        let mut flags = self.flags.lock().unwrap().clone();
        if self.subscribed() {
            flags.push('P');
        }
        let multi = self.multi.load(Ordering::Relaxed);
        if multi >= 0 {
            flags.push('x');
        }
        if self.blocked.load(Ordering::Relaxed) {
            flags.push('b');
        }
        let tracking = self.tracking.load(Ordering::Relaxed);
        for (bit, c) in [
            (super::tracking::ON, 't'),
            (super::tracking::BROKEN_REDIR, 'R'),
            (super::tracking::BCAST, 'B'),
        ] {
            if tracking & bit != 0 {
                flags.push(c);
            }
        }
        let redir = if tracking & super::tracking::ON != 0 {
            self.tracking_redir.load(Ordering::Relaxed) as i64
        } else {
            -1
        };
        if self.addr.starts_with('/') {
            flags.push('U');
        }
        if self.no_evict.load(Ordering::Relaxed) {
            flags.push('e');
        }
        let subs = |i: usize| self.subs[i].load(Ordering::Relaxed);
        let ld = |a: &AtomicUsize| a.load(Ordering::Relaxed);
        let (qbuf, qfree, argv, mmem, omem, rbs, rbp) = (
            ld(&self.qbuf),
            ld(&self.qbuf_free),
            ld(&self.argv_mem),
            ld(&self.multi_mem),
            ld(&self.omem),
            ld(&self.rbs),
            ld(&self.rbp),
        );
        // The read buffer, the reply buffer, pending output and the
        // client's own state, as Redis's getClientMemoryUsage adds them up.
        let tot = qbuf + qfree + argv + mmem + omem + rbs + 1024;
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={multi} qbuf={qbuf} qbuf-free={qfree} argv-mem={argv} multi-mem={mmem} rbs={rbs} rbp={rbp} obl=0 oll={} omem={omem} tot-mem={tot} events=r cmd={} user={} redir={redir} resp={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd.load(Ordering::Relaxed),
            self.name.lock().unwrap(),
            age,
            idle,
            if flags.is_empty() {
                "N".to_string()
            } else {
                flags
            },
            self.db.load(Ordering::Relaxed),
            subs(0),
            subs(1),
            subs(2),
            ld(&self.oll),
            match self.last_sub.load(Ordering::Relaxed) {
                usize::MAX => match self.last_cmd.load(Ordering::Relaxed) {
                    usize::MAX => "NULL",
                    i => crate::commands::table().get(i).name,
                },
                i => subcommand_name(i),
            },
            self.user.lock().unwrap(),
            self.resp.load(Ordering::Relaxed),
        )
    }
}

/// Interned "container|sub" names (only container commands get here: rare).
static SUBNAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

fn intern_subcommand(container: &str, sub: &[u8]) -> usize {
    let full = format!(
        "{container}|{}",
        String::from_utf8_lossy(sub).to_ascii_lowercase()
    );
    let mut names = SUBNAMES.lock().unwrap();
    if let Some(i) = names.iter().position(|n| *n == full) {
        return i;
    }
    // Bounded: arbitrary garbage subcommands must not grow it forever.
    if names.len() >= 1024 {
        return usize::MAX;
    }
    names.push(Box::leak(full.into_boxed_str()));
    names.len() - 1
}

/// The interned "container|sub" name (None once the table is full).
pub fn subcommand_full_name(container: &str, sub: &[u8]) -> Option<&'static str> {
    match intern_subcommand(container, sub) {
        usize::MAX => None,
        i => Some(subcommand_name(i)),
    }
}

fn subcommand_name(i: usize) -> &'static str {
    SUBNAMES.lock().unwrap().get(i).copied().unwrap_or("NULL")
}

/// How replies are sent (CLIENT REPLY).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyMode {
    On,
    Off,
    /// Skip the reply of the next command only.
    Skip,
    SkipNext,
}

/// A key under WATCH.
pub struct Watched {
    pub db: usize,
    pub key: bytes::Bytes,
    /// Its expiry when watched (0: none, or already expired then).
    pub expire_at: u64,
}

/// A command queued after MULTI.
pub struct Queued {
    pub idx: usize,
    pub cmd: &'static crate::commands::Command,
    pub args: Vec<bytes::Bytes>,
}

/// The connection's own state, owned by its task.
pub struct Client {
    pub id: u64,
    pub db: usize,
    pub resp3: bool,
    pub authenticated: bool,
    pub reply_mode: ReplyMode,
    /// Close after the replies pending now are written (QUIT, CLIENT KILL of self).
    pub close_after_reply: bool,
    pub info: Arc<ClientInfo>,
    pub no_evict: bool,
    pub monitor: bool,
    /// Commands queued since MULTI (None: not in a transaction).
    pub multi: Option<Vec<Queued>>,
    /// A command failed to queue: EXEC answers EXECABORT.
    pub multi_error: bool,
    /// Set by any write to a watched key.
    pub watch_flag: Option<Arc<AtomicBool>>,
    pub watched: Vec<Watched>,
    pub subs: super::pubsub::Subscriptions,
    /// What REPLCONF announced (a replica's handshake).
    pub replconf: ReplConf,
    /// PSYNC/SYNC arrived: the connection turns into a replica link.
    pub sync_request: Option<Vec<bytes::Bytes>>,
    /// The socket now belongs to the replication threads.
    pub handed_off: bool,
    /// Snapshot of the ACL user, valid while `acl_gen` is the ACL's
    /// generation (re-read before a command otherwise).
    pub user: Arc<crate::acl::User>,
    pub acl_gen: u64,
    /// ASKING was sent: the next command (or the transaction it opens)
    /// may touch a slot being imported here.
    pub asking: bool,
    /// READONLY: a cluster replica serves reads of its master's slots.
    pub readonly: bool,
    /// The last command was CLIENT: a CLIENT CACHING given before it still
    /// applies to the next command.
    pub after_client_cmd: bool,
}

/// A replica's REPLCONF announcements.
#[derive(Default)]
pub struct ReplConf {
    pub port: i64,
    pub ip: Option<String>,
    pub capa_eof: bool,
    pub capa_psync2: bool,
    /// A keel replica: it keeps script bodies across restarts (RDB `lua`
    /// AUX), so verbatim EVALSHA is safe for it. Stock Redis 7 drops them.
    pub capa_keel_scripts: bool,
}

impl Client {
    pub fn new(info: Arc<ClientInfo>, authenticated: bool) -> Client {
        Client {
            id: info.id,
            db: 0,
            resp3: false,
            authenticated,
            reply_mode: ReplyMode::On,
            close_after_reply: false,
            info,
            no_evict: false,
            monitor: false,
            multi: None,
            multi_error: false,
            watch_flag: None,
            watched: Vec::new(),
            subs: Default::default(),
            replconf: ReplConf::default(),
            sync_request: None,
            handed_off: false,
            // The generation first: a change in between makes us re-read.
            acl_gen: crate::acl::generation(),
            after_client_cmd: false,
            user: crate::acl::default_user(),
            asking: false,
            readonly: false,
        }
    }

    /// Switches the connection to `user` (AUTH, HELLO AUTH, RESET).
    pub fn set_user(&mut self, user: Arc<crate::acl::User>) {
        *self.info.user.lock().unwrap() = user.name.clone();
        self.user = user;
    }

    pub fn select(&mut self, db: usize) {
        self.db = db;
        self.info.db.store(db, Ordering::Relaxed);
    }
}

/// CLIENT REPLY ON: its +OK is sent even from OFF or SKIP (the pipeline
/// decides suppression before the command runs).
pub fn is_reply_on(args: &[bytes::Bytes]) -> bool {
    args.len() == 3 && args[1].eq_ignore_ascii_case(b"reply") && args[2].eq_ignore_ascii_case(b"on")
}
