fn main() {
    println!("cargo:rerun-if-changed=src/commands/ldouble.c");
    cc::Build::new()
        .file("src/commands/ldouble.c")
        .warnings(true)
        .compile("keel_ldouble");
}
