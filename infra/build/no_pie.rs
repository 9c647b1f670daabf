//! The build script of each Lambda function (and of the bench's hello-world
//! reference, built alike): links its binary as a position-dependent
//! executable on Linux with glibc.
//!
//! Why: a position-independent executable is relocated by the dynamic loader
//! at every start. For a function (31 to 44 MiB, about 50 000 to 60 000
//! relative relocations) that is the loader writing every pointer of
//! `.data.rel.ro` and the GOT, each written page a copy-on-write fault, before
//! `main`. Linked at a fixed address the same pages stay clean, file-backed
//! and read on demand. The code is still compiled position-independent (the
//! dependencies are built as they always are); only the final link changes.
//! The cost: the binary's own code and data are not placed at a random
//! address (ASLR still randomises the heap, the stack and the libraries).
//! See docs/performance.md.
fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
