//! redis-benchmark against keel --shards 2: it must finish cleanly with a
//! requests-per-second line for every test.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{RUN_ALL_HINT, Server, require_tool};

const TIMEOUT: Duration = Duration::from_secs(240);

fn run_benchmark(pipeline: Option<u32>) {
    require_tool("redis-benchmark");
    let keel = Server::keel(2, &[]);
    let mut cmd = Command::new("redis-benchmark");
    cmd.args(["-h", "127.0.0.1", "-p", &keel.port.to_string()])
        .args(["-t", "set,get,incr,mset", "-n", "20000", "-q"]);
    if let Some(p) = pipeline {
        cmd.args(["-P", &p.to_string()]);
    }
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run redis-benchmark ({e}): {RUN_ALL_HINT}"));
    // Drain both pipes on threads so a chatty benchmark cannot block.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = out_t.join().unwrap();
    let stderr = err_t.join().unwrap();
    let Some(status) = status else {
        panic!(
            "{shown} did not finish within {TIMEOUT:?}; output so far:\n{stdout}\nstderr:\n{stderr}"
        );
    };
    // -q prints progress with '\r' and the final result per test on its own line.
    let lines: Vec<&str> = stdout
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut problems = Vec::new();
    if !status.success() {
        problems.push(format!("exit status {status}"));
    }
    if !stderr.trim().is_empty() {
        problems.push(format!("error output: {stderr:?}"));
    }
    for test in ["SET", "GET", "INCR", "MSET (10 keys)"] {
        let want = format!("{test}: ");
        let ok = lines
            .iter()
            .any(|l| l.starts_with(&want) && l.contains(" requests per second"));
        if !ok {
            problems.push(format!("no requests-per-second line for {test}"));
        }
    }
    for l in &lines {
        let lower = l.to_ascii_lowercase();
        if lower.contains("error") || lower.contains("warning") {
            problems.push(format!("error in output: {l:?}"));
        }
    }
    if !problems.is_empty() {
        panic!(
            "{shown}:\n  {}\nstdout:\n{}\nstderr:\n{stderr}",
            problems.join("\n  "),
            lines.join("\n")
        );
    }
    let summary: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("requests per second"))
        .collect();
    println!("{shown}\n{summary:#?}");
}

#[test]
fn redis_benchmark_set_get_incr_mset() {
    run_benchmark(None);
}

#[test]
fn redis_benchmark_pipelined_16() {
    run_benchmark(Some(16));
}
