//! The ACL log (ACL LOG).

use super::{Denied, STATE};

pub struct LogEntry {
    pub count: u64,
    pub reason: &'static str,
    pub context: &'static str,
    pub object: String,
    pub username: String,
    pub ctime_ms: u64,
    pub cinfo: String,
}

/// ACL LOG: adds a denial, merging with a recent similar entry.
pub fn log_denial(
    reason: &'static str,
    context: &'static str,
    object: String,
    username: String,
    cinfo: String,
    max_len: usize,
) {
    let now = crate::storage::now_ms();
    let mut s = STATE.write().unwrap();
    let found = s.log.iter().take(10).position(|e| {
        e.reason == reason
            && e.context == context
            && e.ctime_ms.abs_diff(now) <= 60_000
            && e.object == object
            && e.username == username
    });
    if let Some(i) = found {
        let mut e = s.log.remove(i).expect("found above");
        e.count += 1;
        e.ctime_ms = now;
        e.cinfo = cinfo;
        s.log.push_front(e);
        return;
    }
    s.log.push_front(LogEntry {
        count: 1,
        reason,
        context,
        object,
        username,
        ctime_ms: now,
        cinfo,
    });
    s.log.truncate(max_len);
}

pub fn reason_name(d: Denied) -> &'static str {
    match d {
        Denied::Command => "command",
        Denied::Key(_) => "key",
        Denied::Channel(_) => "channel",
    }
}
