//! Link options for the `countersign` binary.
//!
//! Packed relative relocations (`-z pack-relative-relocs`, DT_RELR): the
//! binary is position-independent, and with the usual RELA table the
//! loader reads 260-400 KiB of relocation entries (24 bytes each; the
//! figure depends on the build) at every start, all of which then stays
//! resident (S8, idle RSS; see
//! benches/README.md, "S8: where the bytes go"). Packed, the same
//! relocations take 3-5 KiB. The code and what the relocations write
//! are the same; only the table the loader reads shrinks.
//!
//! A binary linked this way needs glibc 2.36 or later (it names the
//! `GLIBC_ABI_DT_RELR` version), so the option is passed only when
//! building for the machine we build on (not cross-compiling) and that
//! machine's glibc has that version: a build on an older glibc links as
//! before. The Docker image builds on and runs Debian 12 (glibc 2.36).

use std::env;
use std::fs;

/// Where distributions keep the C library the linker links against.
const LIBC_PATHS: [&str; 4] = [
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
    "/lib64/libc.so.6",
    "/usr/lib64/libc.so.6",
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = env::var("TARGET").unwrap_or_default();
    let host = env::var("HOST").unwrap_or_default();
    if target == host && target == "x86_64-unknown-linux-gnu" && libc_has_relr() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether the host's glibc understands packed relative relocations.
fn libc_has_relr() -> bool {
    let needle = b"GLIBC_ABI_DT_RELR";
    LIBC_PATHS.iter().any(|path| {
        fs::read(path).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
    })
}
