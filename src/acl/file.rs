//! The ACL file (ACL LOAD / SAVE, `aclfile`) and the `user` directives
//! of the config file.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{
    RuleError, User, build_user, default_user, merge_selector_args, mirror_requirepass, read, write,
};

/// Splits a `user` line as Redis's ACL file loader: on single spaces.
fn file_words(line: &str) -> Vec<&str> {
    line.split(' ').filter(|w| !w.is_empty()).collect()
}

/// ACLLoadFromFile: every line checked; on any error nothing changes and
/// the errors are returned in one line.
pub fn load_file(path: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let msg = e.to_string();
        let msg = msg.split(" (os error").next().unwrap_or("").to_string();
        format!("Error loading ACLs, opening file '{path}': {msg}")
    })?;
    let mut users: BTreeMap<String, Arc<User>> = BTreeMap::new();
    let mut errors = String::new();
    for (i, line) in text.split('\n').enumerate() {
        let line = line.trim_matches(|c| " \t\r\n".contains(c));
        let n = i + 1;
        if line.is_empty() {
            continue;
        }
        let w = file_words(line);
        if w.is_empty() {
            continue;
        }
        if w[0] != "user" || w.len() < 2 {
            errors.push_str(&format!(
                "{path}:{n} should start with user keyword followed by the username. "
            ));
            continue;
        }
        if users.contains_key(w[1]) {
            errors.push_str(&format!(
                "WARNING: Duplicate user '{}' found on line {n}. ",
                w[1]
            ));
            continue;
        }
        let mut u = User::new(w[1]);
        let ops = merge_selector_args(&w[2..]).unwrap_or_else(|_| {
            errors.push_str(&format!(
                "{path}:{n}: Unmatched parenthesis in selector definition."
            ));
            Vec::new()
        });
        let mut syntax = false;
        for op in &ops {
            let op = String::from_utf8_lossy(op);
            let op = op.trim_matches(|c| "\t\r\n".contains(c));
            if let Err(e) = u.apply(op.as_bytes()) {
                if matches!(e, RuleError::Unknown) {
                    errors.push_str(&format!(
                        "{path}:{n}: Error in applying operation '{op}': {}. ",
                        e.message()
                    ));
                } else if !syntax {
                    errors.push_str(&format!("{path}:{n}: {}. ", e.message()));
                    syntax = true;
                }
            }
        }
        users.insert(w[1].to_string(), Arc::new(u));
    }
    if !errors.is_empty() {
        errors.push_str(
            "WARNING: ACL errors detected, no change to the previously active ACL rules was performed",
        );
        return Err(errors);
    }
    users
        .entry("default".into())
        .or_insert_with(|| Arc::new(User::default_user()));
    write(|s| s.users = users);
    Ok(())
}

/// ACLSaveToFile: one `user` line per user, written to a temp file and
/// renamed over the ACL file.
pub fn save_file(path: &str) -> std::io::Result<()> {
    let mut text = String::new();
    for (name, u) in read().users.iter() {
        text.push_str(&format!("user {name} {}\n", u.describe()));
    }
    let tmp = format!(
        "{path}.tmp-{}-{}",
        std::process::id(),
        crate::storage::now_ms()
    );
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Startup: `user` directives of the config file, then the ACL file.
/// Errors are fatal, as in Redis.
pub fn load_at_startup(
    requirepass: &str,
    aclfile: &str,
    users: &[Vec<String>],
) -> Result<(), String> {
    mirror_requirepass(requirepass);
    if !aclfile.is_empty() && !users.is_empty() {
        return Err("Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.".into());
    }
    for words in users {
        let Some(name) = words.first() else { continue };
        let base = if name == "default" {
            let mut d = (*default_user()).clone();
            let _ = d.apply(b"reset");
            Some(d)
        } else {
            None
        };
        let ops: Vec<&[u8]> = words[1..].iter().map(|w| w.as_bytes()).collect();
        let u = build_user(name, base.as_ref(), &ops)
            .map_err(|e| format!("Error loading ACL rule for the user named '{name}': {e}"))?;
        write(|s| s.users.insert(name.clone(), Arc::new(u)));
    }
    if !aclfile.is_empty() {
        load_file(aclfile)
            .map_err(|e| format!("Aborting Redis startup because of ACL errors: {e}"))?;
    }
    Ok(())
}
