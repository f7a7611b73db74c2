// keel: the Lua sources are compiled by mlua-sys's build script through this
// crate, and cargo only fingerprints this crate's Rust files. Watching the C
// sources here makes an edit to them rebuild this crate, which reruns
// mlua-sys's build script and so recompiles Lua.
fn main() {
    println!("cargo:rerun-if-changed=lua-5.1.5");
}
