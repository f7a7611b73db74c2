#[global_allocator]
static GLOBAL: keel::memory::CountingAlloc = keel::memory::CountingAlloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    keel::commands::families::install();
    keel::server::register_config_checks();
    let cfg = match keel::config::Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            // As redis-server: a file it cannot open is logged (stdout),
            // a bad line gets the FATAL CONFIG FILE ERROR block on stderr.
            if e.starts_with("Fatal error, can't open config file") {
                keel::log::warning(&e);
            } else {
                eprintln!("{e}");
            }
            std::process::exit(1);
        }
    };
    std::process::exit(keel::server::run(cfg));
}
