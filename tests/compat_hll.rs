//! HyperLogLog: keel vs stock redis-server. The raw string values (sparse
//! and dense representations) are compared byte for byte with GET.
//!
//! Key names with `{a}` `{b}` `{c}` `{d}` hash tags land on shards 3, 0, 1, 2
//! of `--shards 4`.

#[macro_use]
mod common;

use common::{Pair, Resp};

pair_tests!(
    sparse_to_dense,
    merge_across_shards,
    pfdebug,
    errors_and_wrongtype,
    corrupted_values,
    sparse_max_bytes_config,
    ttl_kept,
    resp3,
);

/// `n` deterministic elements of mixed shapes (words, binary, numbers,
/// long runs), different for each `seed`.
fn elems(n: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        x >> 33
    };
    (0..n)
        .map(|i| match next() % 4 {
            0 => format!("ele:{seed}:{i}").into_bytes(),
            1 => (0..next() % 20).map(|_| next() as u8).collect(),
            2 => (next() % 1_000_000_000).to_string().into_bytes(),
            _ => vec![b'x'; 1 + (next() % 70) as usize],
        })
        .collect()
}

/// PFADD `es` to `key` on both in batches of `batch`, comparing each reply.
fn add(p: &mut Pair, key: &str, es: &[Vec<u8>], batch: usize) {
    for chunk in es.chunks(batch.max(1)) {
        let mut a = vec![b"PFADD".to_vec(), key.as_bytes().to_vec()];
        a.extend(chunk.iter().cloned());
        p.check_args(&a);
    }
}

fn sparse_to_dense(p: &mut Pair) {
    p.check("PFADD h0");
    p.check("GET h0");
    p.check("PFCOUNT h0");
    for n in [1usize, 2, 3, 10, 100, 300, 1000, 1500, 2500, 5000, 20000] {
        let key = format!("h{n}");
        // Single adds while sparse exercise the 0/1 reply per element.
        let batch = if n <= 300 { 1 } else { 500 };
        add(p, &key, &elems(n, n as u64), batch);
        p.check(&format!("GET {key}"));
        p.check(&format!("PFDEBUG ENCODING {key}"));
        p.check(&format!("PFCOUNT {key}"));
        // PFCOUNT caches the cardinality in the header.
        p.check(&format!("GET {key}"));
        add(p, &key, &elems(n.min(50), n as u64), 50);
        p.check(&format!("PFCOUNT {key}"));
        p.check(&format!("STRLEN {key}"));
    }
    // Dense is 12304 bytes; sparse stays under 3000 by default.
    let len = Resp::parse(&p.k.line("STRLEN h20000")).as_int();
    if len != 12304 {
        p.fail(format!("dense HLL length {len}, want 12304"));
    }
    p.check("PFCOUNT h1 h10 h100 h1000 h5000 h20000 missing");
    p.check("PFCOUNT missing1 missing2");
    p.check("PFCOUNT missing1");
}

fn merge_across_shards(p: &mut Pair) {
    let sizes = [("{a}h", 10u64), ("{b}h", 200), ("{c}h", 3000), ("{d}h", 40)];
    for (k, n) in sizes {
        add(p, k, &elems(n as usize, n), 500);
    }
    p.script(
        r#"
        PFMERGE {d}m1 {a}h {b}h {d}h
        GET {d}m1
        PFDEBUG ENCODING {d}m1
        PFCOUNT {d}m1
        PFMERGE {a}m2 {a}h {c}h
        GET {a}m2
        PFDEBUG ENCODING {a}m2
        PFCOUNT {a}m2
        PFMERGE {b}h {a}h {d}h
        GET {b}h
        PFMERGE {c}m3 {a}h {b}h {c}h {d}h {d}nokey
        GET {c}m3
        PFCOUNT {c}m3
        PFCOUNT {a}h {b}h {c}h {d}h
        PFCOUNT {a}h {b}h
        GET {a}h
        PFMERGE {b}only
        GET {b}only
        EXISTS {b}only
        PFMERGE {b}only2 {d}nokey
        GET {b}only2
        PFMERGE {a}h
        GET {a}h
        "#,
    );
}

fn pfdebug(p: &mut Pair) {
    add(p, "h", &elems(100, 7), 100);
    add(p, "small", &elems(10, 8), 10);
    p.script(
        r#"
        PFDEBUG ENCODING h
        PFDEBUG DECODE h
        PFDEBUG GETREG h
        GET h
        PFDEBUG ENCODING h
        PFDEBUG DECODE small
        PFDEBUG TODENSE small
        PFDEBUG TODENSE small
        PFDEBUG DECODE small
        PFDEBUG ENCODING small
        GET small
        PFDEBUG SIMD on
        PFDEBUG foo h
        PFDEBUG getreg nokey
        PFDEBUG foo nokey
        PFDEBUG getreg
        PFDEBUG
        SET str hello
        PFDEBUG getreg str
        PFDEBUG encoding str
        "#,
    );
}

fn errors_and_wrongtype(p: &mut Pair) {
    add(p, "h1", &elems(5, 1), 5);
    p.script(
        r#"
        SET str hello
        SET num 12345
        SADD set a
        PFADD str a
        PFADD num
        PFCOUNT str
        PFCOUNT h1 str
        PFCOUNT num
        PFMERGE str h1
        PFMERGE h1 str
        PFMERGE d set
        EXISTS d
        PFADD set a
        PFCOUNT set
        PFCOUNT h1 set
        PFADD
        PFCOUNT
        PFMERGE
        SET empty ""
        PFADD empty a
        PFCOUNT empty
        SET almost HYLL
        PFCOUNT almost
        "#,
    );
}

fn corrupted_values(p: &mut Pair) {
    p.check("PFADD e");
    let empty = p.r.cmd(&["GET", "e"]);
    let empty = Resp::parse(&empty).as_bytes().to_vec();
    let hdr = &empty[..16];
    let cat = |parts: &[&[u8]]| parts.concat();
    let dense_hdr = cat(&[b"HYLL\x00", &hdr[5..]]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("c_trunc", hdr.to_vec()),
        ("c_short", cat(&[hdr, b"\x7f\xfe"])),
        ("c_long", cat(&[hdr, b"\x7f\xff\x00"])),
        ("c_valover", cat(&[hdr, b"\x7f\xfe\x83"])),
        ("c_halfx", cat(&[hdr, b"\x7f"])),
        ("c_enc2", cat(&[b"HYLL\x02", &hdr[5..], b"\x7f\xff"])),
        ("c_magic", cat(&[b"HYLX", &hdr[4..], b"\x7f\xff"])),
        ("c_dense_small", cat(&[&dense_hdr, &[0u8; 100]])),
        (
            "c_dense_ff",
            cat(&[&dense_hdr[..15], b"\x80", &[0xffu8; 12288]]),
        ),
        ("c_dense_ff_cached", cat(&[&dense_hdr, &[0xffu8; 12288]])),
        (
            "c_sparse_cached",
            cat(&[&hdr[..8], b"\x39\x30\0\0\0\0\0\0", b"\x7f\xff"]),
        ),
        ("c_short15", cat(&[b"HYLL\x01", &[0u8; 10]])),
    ];
    for (name, val) in &cases {
        p.check_args(&[b"SET".as_slice(), name.as_bytes(), val]);
    }
    let many = elems(40, 5);
    let lots = elems(3000, 6);
    for (name, _) in &cases {
        p.check(&format!("PFCOUNT {name}"));
        p.check(&format!("PFCOUNT {name} e"));
        p.check(&format!("PFMERGE cm_{name} {name}"));
        p.check(&format!("GET cm_{name}"));
        p.check(&format!("PFADD {name} a b c"));
        add(p, name, &many, 40);
        add(p, name, &lots, 3000);
        p.check(&format!("GET {name}"));
        p.check(&format!("PFDEBUG TODENSE {name}"));
        p.check(&format!("PFDEBUG DECODE {name}"));
        p.check(&format!("GET {name}"));
    }
}

fn sparse_max_bytes_config(p: &mut Pair) {
    add(p, "src1", &elems(100, 11), 100);
    add(p, "src2", &elems(1000, 12), 500);
    for mx in ["0", "100", "20000", "3000"] {
        p.check(&format!("CONFIG SET hll-sparse-max-bytes {mx}"));
        p.check("CONFIG GET hll-sparse-max-bytes");
        let key = format!("cfg{mx}");
        add(p, &key, &elems(4000, 42), 200);
        p.check(&format!("GET {key}"));
        p.check(&format!("PFDEBUG ENCODING {key}"));
        p.check(&format!("PFMERGE {key}m src1 src2"));
        p.check(&format!("GET {key}m"));
    }
    p.checks(&[
        "CONFIG SET hll-sparse-max-bytes -1",
        "CONFIG SET hll-sparse-max-bytes abc",
    ]);
}

fn ttl_kept(p: &mut Pair) {
    p.checks(&[
        "PFADD t a",
        "EXPIRE t 1000",
        "PFADD t b c",
        "TTL t",
        "PFADD src x y",
        "PFMERGE t src",
        "TTL t",
        "PFCOUNT t",
        "TTL t",
    ]);
}

fn resp3(p: &mut Pair) {
    p.script(
        r#"
        !resp3
        PFADD h a b c
        PFCOUNT h
        PFDEBUG GETREG h
        PFDEBUG DECODE h
        PFMERGE d h
        PFCOUNT nokey
        "#,
    );
}
