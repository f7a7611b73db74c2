//! RESP parsing and reply encoding, the work every command pays for.

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use keel::protocol::{Out, Parser, ParserLimits};

fn pipeline(n: usize, value_len: usize) -> Vec<u8> {
    let value = vec![b'x'; value_len];
    let mut buf = Vec::new();
    for i in 0..n {
        let key = format!("key:{i:012}");
        buf.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{}\r\n${}\r\n",
                key.len(),
                key,
                value.len()
            )
            .as_bytes(),
        );
        buf.extend_from_slice(&value);
        buf.extend_from_slice(b"\r\n");
    }
    buf
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("resp_parse");
    for (n, vlen) in [(1usize, 32usize), (16, 32), (16, 1024)] {
        let input = pipeline(n, vlen);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("set_x{n}_{vlen}B"), |b| {
            b.iter(|| {
                let mut p = Parser::new();
                let mut buf = BytesMut::from(&input[..]);
                let mut count = 0;
                while let Ok(Some(cmd)) = p.parse(&mut buf, ParserLimits::default()) {
                    count += cmd.len();
                }
                count
            })
        });
    }
    g.bench_function("inline_ping", |b| {
        b.iter(|| {
            let mut p = Parser::new();
            let mut buf = BytesMut::from(&b"PING\r\n"[..]);
            p.parse(&mut buf, ParserLimits::default()).unwrap()
        })
    });
    g.finish();
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("resp_encode");
    let value = vec![b'v'; 32];
    g.bench_function("bulk_32B", |b| {
        b.iter(|| {
            let mut o = Out::new(false);
            o.bulk(&value);
            o.buf.len()
        })
    });
    g.bench_function("array_of_100_ints", |b| {
        b.iter(|| {
            let mut o = Out::new(false);
            o.array(100);
            for i in 0..100 {
                o.int(i);
            }
            o.buf.len()
        })
    });
    g.bench_function("double_resp3", |b| {
        b.iter(|| {
            let mut o = Out::new(true);
            o.double(std::f64::consts::PI);
            o.buf.len()
        })
    });
    g.finish();
}

criterion_group!(benches, parse, encode);
criterion_main!(benches);
