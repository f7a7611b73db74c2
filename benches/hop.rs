//! Cross-shard hop latency: a command sent from shard 0 to shard 1 over the
//! real mesh (glommio shared channels, spin-before-park) and its reply back.
//! One job per message (a lone remote GET) and 64 per message (a pipeline).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use keel::commands::lookup;
use keel::config::Config;
use keel::server::shard::{Job, StoreRegistry};
use keel::server::{Server, build_mesh, start_shard};

enum Req {
    Run { iters: u64, batch: usize },
    Stop,
}

fn start(spin_us: u64) -> (mpsc::Sender<Req>, mpsc::Receiver<Duration>) {
    keel::commands::families::install();
    let mut cfg = Config::default();
    cfg.set("hop-spin-us", &spin_us.to_string()).unwrap();
    let srv: &'static Server = Box::leak(Box::new(Server::new(cfg, 2)));
    let stores = StoreRegistry::new(
        (0..2)
            .map(|i| keel::storage::ShardStore::new(i, 16))
            .collect(),
    );
    let (req_tx, req_rx) = mpsc::channel::<Req>();
    let (done_tx, done_rx) = mpsc::channel::<Duration>();
    let mut mesh = build_mesh(2).into_iter();
    let (s0, r0) = mesh.next().unwrap();
    let (s1, r1) = mesh.next().unwrap();
    let builder = |cpu| {
        let b = glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(cpu));
        if spin_us > 0 {
            b.spin_before_park(Duration::from_micros(spin_us))
        } else {
            b
        }
    };
    let st1 = stores.clone();
    builder(1)
        .spawn(move || async move {
            let _rt = start_shard(1, srv, st1, s1, r1).await;
            futures_lite::future::pending::<()>().await;
        })
        .unwrap();
    builder(0)
        .spawn(move || async move {
            let rt = start_shard(0, srv, stores, s0, r0).await;
            let (idx, cmd) = lookup(b"echo").unwrap();
            while let Ok(Req::Run { iters, batch }) = req_rx.recv() {
                let t = Instant::now();
                for _ in 0..iters {
                    let jobs = (0..batch)
                        .map(|_| {
                            let args = vec![Bytes::from_static(b"echo"), Bytes::from_static(b"x")];
                            Job::new(idx, cmd, args, 0, false)
                        })
                        .collect();
                    let fut = rt.exec_remote(1, jobs).await;
                    fut.await;
                }
                done_tx.send(t.elapsed()).unwrap();
            }
        })
        .unwrap();
    (req_tx, done_rx)
}

fn hop(c: &mut Criterion) {
    for spin in [0u64, 20] {
        let (tx, rx) = start(spin);
        let mut g = c.benchmark_group(format!("hop_spin{spin}us"));
        g.measurement_time(Duration::from_secs(3));
        for batch in [1usize, 64] {
            g.bench_function(format!("roundtrip_batch{batch}"), |b| {
                b.iter_custom(|iters| {
                    tx.send(Req::Run { iters, batch }).unwrap();
                    rx.recv().unwrap()
                })
            });
        }
        g.finish();
        let _ = tx.send(Req::Stop);
    }
}

criterion_group!(benches, hop);
criterion_main!(benches);
