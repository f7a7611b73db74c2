//! Value and text helpers of the config: memory sizes, protected-action
//! settings, client-output-buffer-limit merging, quoting for CONFIG
//! REWRITE, and redis-server's command-line and fatal-error texts.

/// islocalClient: a unix socket or a loopback address ("ip:port").
pub fn peer_is_local(addr: &str) -> bool {
    if addr.starts_with('/') {
        return true;
    }
    let ip = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    ip.starts_with("127.") || ip == "::1" || ip.starts_with("::ffff:127.")
}

/// allowProtectedAction: `enable-debug-command` / `enable-protected-configs`.
pub fn protected_allowed(setting: &str, local: bool) -> bool {
    setting == "yes" || (setting == "local" && local)
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

/// An I/O error as C's strerror words it (no " (os error N)").
pub(super) fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Stock's startup refusal, naming the line (printed to stderr, exit 1).
pub(super) fn fatal(at: Option<(usize, &str)>, err: &str) -> String {
    let mut s = format!(
        "\n*** FATAL CONFIG FILE ERROR (Redis {}) ***\n",
        crate::REDIS_VERSION
    );
    if let Some((n, line)) = at {
        s.push_str(&format!(
            "Reading the configuration file, at line {n}\n>>> '{line}'\n"
        ));
    }
    s.push_str(err);
    s
}

/// The config text redis-server builds from its command line: each
/// `--name` starts a line, the words after it are quoted values.
pub(super) fn options_text(args: &[String]) -> String {
    let mut text = String::new();
    // After a bare `--name`, the next word is its value even if it starts with "--".
    let mut have_value = true;
    for (j, a) in args.iter().enumerate() {
        if have_value && let Some(name) = a.strip_prefix("--") {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(name);
            text.push(' ');
            have_value = name.split_whitespace().count() > 1;
            if !have_value && name.eq_ignore_ascii_case("save") {
                // `--save` followed by another option or nothing: `save ""`.
                let next_is_option = args.get(j + 1).is_none_or(|n| n.starts_with("--"));
                if next_is_option {
                    text.push_str("\"\"");
                    have_value = true;
                }
            }
        } else {
            text.push_str(&crate::util::repr(a.as_bytes()));
            text.push(' ');
            have_value = true;
        }
    }
    text
}

/// `client-output-buffer-limit` as Redis keeps it: the classes given are
/// replaced, the others kept, sizes in bytes, always all three classes.
pub(super) fn merge_output_limits(current: &str, value: &str) -> Result<String, String> {
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

pub(super) fn quote_arg(a: &str) -> String {
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
