#[global_allocator]
static GLOBAL: keel::memory::CountingAlloc = keel::memory::CountingAlloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match keel::config::Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    std::process::exit(keel::server::run(cfg));
}
