//! A bounded fuzz run of every target in the test suite: the checks of
//! `keel::fuzzing` (the same the cargo-fuzz targets in `fuzz/` call) over
//! their seeds and a few seconds of random mutations of them. Long runs
//! with libFuzzer's coverage feedback are `bench-scripts/fuzz`.
//!
//! `KEEL_FUZZ_SECS` sets the time per target (default 2), `KEEL_FUZZ_SEED`
//! the mutation seed (default: fresh, printed), `KEEL_FUZZ_TARGETS` a
//! comma-separated subset of the targets (default: all). A failing input is written
//! to `target/fuzz-smoke/<target>-<n>` before the panic is passed on.

use std::time::{Duration, Instant};

use keel::fuzzing::{TARGETS, mutate};

/// Seeds per target: hand-written protocol samples, the stock Redis RDB
/// fixtures, and DUMP payloads of every value they hold.
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let fixtures: Vec<Vec<u8>> = std::fs::read_dir("tests/fixtures/rdb")
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "rdb").then(|| std::fs::read(p).unwrap())
        })
        .collect();
    let strings = |v: &[&[u8]]| v.iter().map(|s| s.to_vec()).collect();
    match target {
        "parser" => strings(&[
            b"\x00\x00*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n",
            b"\x00\x03\x01\x05\x02*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\n",
            b"\x01\x00SET k \"a\\x41b\\n\" 'c d'\r\n\r\nPING\n",
            b"\x02\x00*20\r\n$1\r\na\r\n",
            b"\x00\x00*-1\r\n*0\r\n*1\r\n$-1\r\n",
            b"\x03\x02\x07\x01*2\r\n$3\r\nGET\r\n$100\r\nabc",
        ]),
        "split_args" => strings(&[
            b"set \"a\\x41\\n\" 'it\\'s' plain",
            b"\"unbalanced",
            b"save 900 1 300 10",
            b"  a\t\"b c\"  'd' \"\\\"\" ",
        ]),
        // flags (bit 0 nocase, bits 2.. repeat count), pattern length, pattern, string.
        "glob" => strings(&[
            b"\x00\x05h?llohello",
            b"\x01\x0ah[^e]l[A-Z]ohallo",
            b"\x50\x02a*aaaaaaaaaaaaaaab",
            b"\xfc\x02*?aaaaaaaaaaaaaaaa",
            b"\x00\x09[a-\\]x]*\\x]]]",
            b"\x03\x04[^z-aZZZ",
            b"\x00\x06a\\*b[?a*bxx",
            // Slow under libFuzzer's instrumentation (its wall-clock check
            // failed): an unclosed class after the first star spans the
            // rest of the pattern and is tried at every string offset.
            b"A\n*[^\xff\xdf\xff\xff\xff\x00\x00\x00\x03\x00\x00\x00P\x02[\x03\x00\x00",
        ]),
        // Real messages without the signature, length and version (the
        // target puts its own).
        "cluster_bus" => keel::cluster::codec::samples()
            .iter()
            .map(|m| keel::cluster::codec::encode(m)[10..].to_vec())
            .collect(),
        "rdb_load" => fixtures,
        "restore" => {
            let mut out = Vec::new();
            for f in &fixtures {
                let mut r = &f[..];
                let opts = keel::rdb::LoadOpts {
                    drop_expired: false,
                    ..Default::default()
                };
                let _ = keel::rdb::load(
                    &mut r,
                    &opts,
                    |_, _, e| {
                        out.push(keel::rdb::dump_payload(
                            &e.value,
                            &keel::rdb::Limits::default(),
                            out.len() % 2 == 0,
                        ))
                    },
                    |_, _| {},
                );
            }
            assert!(
                out.len() > 10,
                "the fixtures gave only {} values",
                out.len()
            );
            out
        }
        _ => (0..64u8)
            .map(|i| {
                (0..64)
                    .map(|j| i.wrapping_mul(31).wrapping_add(j * 7))
                    .collect()
            })
            .collect(),
    }
}

#[test]
fn every_fuzz_target_survives_its_seeds_and_mutations() {
    let secs: u64 = std::env::var("KEEL_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let seed: u64 = std::env::var("KEEL_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    // KEEL_FUZZ_TARGETS=glob,parser runs only those (a long run of one).
    let only = std::env::var("KEEL_FUZZ_TARGETS").unwrap_or_default();
    eprintln!("fuzz smoke: KEEL_FUZZ_SEED={seed} KEEL_FUZZ_SECS={secs}");
    let mut rng = fastrand::Rng::with_seed(seed);
    for (name, check) in TARGETS {
        if !only.is_empty() && !only.split(',').any(|t| t == *name) {
            continue;
        }
        let seeds = seeds(name);
        assert!(!seeds.is_empty(), "{name}: no seeds");
        let run = |input: &[u8], n: usize| {
            let r = std::panic::catch_unwind(|| check(input));
            if let Err(e) = r {
                let dir = std::path::Path::new("target/fuzz-smoke");
                let _ = std::fs::create_dir_all(dir);
                let path = dir.join(format!("{name}-{n}"));
                let _ = std::fs::write(&path, input);
                eprintln!("{name}: input {n} failed, saved to {}", path.display());
                std::panic::resume_unwind(e);
            }
        };
        for (i, s) in seeds.iter().enumerate() {
            run(s, i);
        }
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut n = 0;
        while Instant::now() < deadline {
            let a = &seeds[rng.usize(..seeds.len())];
            let b = &seeds[rng.usize(..seeds.len())];
            let input = mutate(&mut rng, a, b);
            run(&input, seeds.len() + n);
            n += 1;
        }
        eprintln!("{name}: {} seeds, {n} mutated inputs", seeds.len());
        assert!(n > 0, "{name}: no mutated input ran");
    }
}
