//! Redis 7.0 ACL: users, their rules, the permission check, the ACL log and
//! the ACL file.
//!
//! The ACL's command universe is Redis 7.0's command table (`cmdspec`: full
//! names, arity, categories with the flag-derived ones, key specs), in the
//! order of Redis's commands.c, so category rules, ACL CAT and the rule
//! descriptions of ACL LIST/GETUSER come out as Redis's. The command layer
//! registers its table's entries (name, NO_AUTH) once (`register_commands`);
//! this layer imports nothing from commands or server.
//!
//! Sharing: the users live in one process-wide table behind a lock that
//! only ACL commands, AUTH and connection set-up take. Each connection keeps
//! an `Arc<User>` snapshot and a copy of `generation()`; every change bumps
//! the generation, and a connection that sees a new one re-reads its user
//! before its next command.
//!
//! Modules: `universe` (the command table the rules are about), `user`
//! (flags, passwords, descriptions), `selector` (command/key/channel rules
//! and the check), `log` (ACL LOG), `file` (ACL file and `user` directives).

mod file;
mod log;
mod selector;
pub mod sha256;
mod universe;
mod user;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock};

use bytes::Bytes;

pub use file::{load_at_startup, load_file, save_file};
pub use log::{LogEntry, log_denial, reason_name};
pub use selector::{Denied, RuleError, Selector};
pub use universe::{
    AclCommand, CATEGORIES, KEY_FLAG_NAMES, Universe, category_bit, register_commands, universe,
};
pub use user::{
    FLAG_NOPASS, FLAG_OFF, FLAG_ON, FLAG_SANITIZE, FLAG_SKIP_SANITIZE, User, merge_selector_args,
};

/// The full check of a keel command by `user`: Ok when allowed or when the
/// request fails before Redis's ACL check would run (unknown subcommand).
/// On denial: the reason and the logged object.
pub fn check(user: &User, keel_idx: usize, args: &[Bytes]) -> Result<(), (Denied, String)> {
    if user.unrestricted {
        return Ok(());
    }
    let reg = universe::registered(keel_idx);
    check_id(user, reg.id, reg.no_auth, args)
}

/// `check` of ACL command `base` (a container resolves its subcommand).
fn check_id(
    user: &User,
    base: usize,
    no_auth: bool,
    args: &[Bytes],
) -> Result<(), (Denied, String)> {
    let u = universe();
    let Some(id) = u.resolve(base, args) else {
        return Ok(());
    };
    user.check_cmd(id, no_auth, args).map_err(|d| {
        let obj = match d {
            Denied::Command => u.cmds[id].fullname.clone(),
            Denied::Key(p) | Denied::Channel(p) => String::from_utf8_lossy(&args[p]).into_owned(),
        };
        (d, obj)
    })
}

/// Whether `user` may run this request of ACL command `name` with read
/// access to every key (SORT's BY and GET patterns).
pub fn read_all_keys(user: &User, name: &str, args: &[Bytes]) -> bool {
    if user.unrestricted {
        return true;
    }
    universe()
        .lookup(name)
        .is_some_and(|id| user.read_all_keys(id, false, args))
}

/// The full name of the command a request runs ("config|get").
pub fn fullname(keel_idx: usize, args: &[Bytes]) -> String {
    let u = universe();
    let base = universe::registered(keel_idx).id;
    let id = u.resolve(base, args).unwrap_or(base);
    u.cmds[id].fullname.clone()
}

pub struct State {
    pub users: BTreeMap<String, Arc<User>>,
    pub log: VecDeque<LogEntry>,
    /// The requirepass value last mirrored into the default user.
    requirepass: Option<String>,
}

pub(super) static STATE: LazyLock<RwLock<State>> = LazyLock::new(|| {
    let mut users = BTreeMap::new();
    users.insert("default".to_string(), Arc::new(User::default_user()));
    RwLock::new(State {
        users,
        log: VecDeque::new(),
        requirepass: None,
    })
});

static GENERATION: AtomicU64 = AtomicU64::new(1);

/// Bumped by every change of any user.
/// `acl-pubsub-default allchannels`: what new users (and `reset`) get.
pub(super) static PUBSUB_DEFAULT_ALL: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

pub fn set_pubsub_default(cfg_value: &str) {
    PUBSUB_DEFAULT_ALL.store(
        cfg_value == "allchannels",
        std::sync::atomic::Ordering::Relaxed,
    );
}

pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

pub fn read() -> std::sync::RwLockReadGuard<'static, State> {
    STATE.read().unwrap()
}

/// Runs `f` on the state and publishes its changes to every connection.
pub fn write<R>(f: impl FnOnce(&mut State) -> R) -> R {
    let r = {
        let mut s = STATE.write().unwrap();
        let r = f(&mut s);
        GENERATION.fetch_add(1, Ordering::AcqRel);
        r
    };
    // Subscribers that lost a channel are disconnected, as Redis does (the
    // server's hook has every shard check its own subscriptions).
    if let Some(f) = ON_CHANGE.get() {
        f();
    }
    r
}

static ON_CHANGE: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// What runs after every change of the users (set once by the server).
pub fn on_change(f: fn()) {
    let _ = ON_CHANGE.set(f);
}

pub fn get_user(name: &str) -> Option<Arc<User>> {
    read().users.get(name).cloned()
}

pub fn default_user() -> Arc<User> {
    get_user("default").unwrap_or_else(|| Arc::new(User::default_user()))
}

/// Whether new connections must authenticate (Redis's authRequired for a
/// connection still on the default user).
pub fn auth_required() -> bool {
    let d = default_user();
    !d.nopass() || !d.enabled()
}

/// ACLUpdateDefaultUserPassword, when requirepass changed.
pub fn mirror_requirepass(pass: &str) {
    if read().requirepass.as_deref() == Some(pass) {
        return;
    }
    write(|s| {
        s.requirepass = Some(pass.to_string());
        let mut d = s
            .users
            .get("default")
            .map(|u| (**u).clone())
            .unwrap_or_else(User::default_user);
        let _ = d.apply(b"resetpass");
        if pass.is_empty() {
            let _ = d.apply(b"nopass");
        } else {
            let mut op = b">".to_vec();
            op.extend_from_slice(pass.as_bytes());
            let _ = d.apply(&op);
        }
        s.users.insert("default".into(), Arc::new(d));
    });
}

/// Applies rules to a copy of `base` (or a new user); nothing changes on error.
pub fn build_user<T: AsRef<[u8]>>(
    name: &str,
    base: Option<&User>,
    ops: &[T],
) -> Result<User, String> {
    let ops = merge_selector_args(ops).map_err(|i| {
        format!(
            "Unmatched parenthesis in acl selector starting at '{}'.",
            String::from_utf8_lossy(ops[i].as_ref())
        )
    })?;
    let mut u = base.cloned().unwrap_or_else(|| User::new(name));
    for op in &ops {
        if let Err(e) = u.apply(op) {
            return Err(format!(
                "Error in ACL SETUSER modifier '{}': {}",
                String::from_utf8_lossy(op),
                e.message()
            ));
        }
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(ops: &str) -> User {
        let ops: Vec<&[u8]> = ops.split(' ').map(|s| s.as_bytes()).collect();
        build_user("u", None, &ops).unwrap()
    }

    #[test]
    fn describe_basic() {
        assert_eq!(User::default_user().describe(), "on nopass ~* &* +@all");
        assert_eq!(User::new("x").describe(), "off resetchannels -@all");
        assert_eq!(
            user("on >p ~a* %R~b %W~c &ch +get").describe(),
            "on #5a3d3bd4c2b1b5a1b9b9d3f6b7c3b56c2b0c7c6b6e1ccd3d2a89d01f39e98a09 ~a* %R~b %W~c resetchannels &ch -@all +get"
                .replace(
                    "5a3d3bd4c2b1b5a1b9b9d3f6b7c3b56c2b0c7c6b6e1ccd3d2a89d01f39e98a09",
                    &sha256::hex(b"p")
                )
        );
        assert_eq!(
            user("+@all -@string").root().describe_commands(),
            "+@all -@string"
        );
        assert_eq!(
            user("-@all +@string").root().describe_commands(),
            "-@all +@string"
        );
    }

    #[test]
    fn checks() {
        let a =
            |v: &[&str]| -> Vec<Bytes> { v.iter().map(|s| Bytes::from(s.to_string())).collect() };
        let check = |u: &User, name: &str, args: &[Bytes]| {
            check_id(u, universe().lookup(name).unwrap(), false, args)
        };
        let u = user("on nopass %R~r* %W~w* +@all");
        assert!(check(&u, "get", &a(&["get", "r1"])).is_ok());
        assert!(check(&u, "get", &a(&["get", "w1"])).is_err());
        assert!(check(&u, "set", &a(&["set", "w1", "v"])).is_ok());
        assert!(check(&u, "set", &a(&["set", "w1", "v", "get"])).is_err());
        assert!(check(&u, "copy", &a(&["copy", "r1", "w1"])).is_ok());
        assert_eq!(
            check(&u, "copy", &a(&["copy", "w1", "r1"])).unwrap_err().0,
            Denied::Key(1)
        );
        let c = user("on nopass -@all +config|get");
        assert!(check(&c, "config", &a(&["config", "get", "x"])).is_ok());
        assert_eq!(
            check(&c, "config", &a(&["config", "set", "x", "y"])).unwrap_err(),
            (Denied::Command, "config|set".to_string())
        );
    }
}
