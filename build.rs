//! Compiles the small C++ shim of the trainer (`src/train/shim.cpp`) against the llama.cpp source
//! vendored in `llama-cpp-sys-2`.
//!
//! The shim reads a field of llama.cpp's internal LoRA adapter struct (`src/llama-adapter.h`),
//! which is no public API: it must be compiled against exactly the source the library was built
//! from. That source is found through what `llama-cpp-sys-2` tells its dependents (its CMake
//! build directory, whose cache names the source directory), else through `cargo metadata`; never
//! by guessing paths. The crate version is checked, since the struct may change in any release.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `llama-cpp-sys-2` release the shim was written against (pinned with `=` in Cargo.toml).
const SYS_VERSION: &str = "0.1.161";
const SYS_CRATE: &str = "llama-cpp-sys-2";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/train/shim.cpp");
    println!("cargo:rerun-if-changed=src/train/bf16.cpp");
    println!("cargo:rerun-if-env-changed=DEP_LLAMA_GGML_CMAKE_DIR");

    let src = llama_source().unwrap_or_else(|why| {
        panic!("cannot find the llama.cpp source vendored in {SYS_CRATE} {SYS_VERSION}: {why}")
    });
    for header in [
        "src/llama-adapter.h",
        "include/llama.h",
        "ggml/include/ggml.h",
    ] {
        assert!(
            src.join(header).is_file(),
            "{}: no {header}; is this the llama.cpp of {SYS_CRATE} {SYS_VERSION}?",
            src.display()
        );
    }
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++17")
        .file("src/train/shim.cpp")
        .file("src/train/bf16.cpp")
        .include(src.join("include"))
        .include(src.join("src"))
        .include(src.join("ggml/include"))
        // The shim holds a kernel of the training step: optimised even in debug builds, as
        // llama.cpp itself is.
        .opt_level(3)
        .warnings(false);
    // Vector instructions of this CPU when the crate is built for it (.cargo/config.toml).
    let rustflags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if rustflags.contains("target-cpu=native") {
        build.flag_if_supported("-march=native");
    }
    build.compile("leap_train_shim");

    // The shim runs the training step's matrix products through CBLAS: the system OpenBLAS
    // (Debian: libopenblas-dev), or Accelerate on macOS.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("macos") {
        println!("cargo:rustc-link-lib=framework=Accelerate");
    } else {
        println!("cargo:rustc-link-lib=openblas");
        let dirs = std::env::var("LIBRARY_PATH").unwrap_or_default();
        let found = dirs
            .split(':')
            .chain([
                "/usr/lib/x86_64-linux-gnu",
                "/usr/lib/aarch64-linux-gnu",
                "/usr/lib64",
                "/usr/lib",
                "/usr/local/lib",
            ])
            .any(|d| {
                ["libopenblas.so", "libopenblas.a"]
                    .iter()
                    .any(|f| Path::new(d).join(f).exists())
            });
        if !found {
            println!(
                "cargo:warning=OpenBLAS not found: linking will fail; install it with `just deps` (Debian: libopenblas-dev)"
            );
        }
    }
}

/// The `llama.cpp` directory of `llama-cpp-sys-2`, checked to be of the pinned version.
fn llama_source() -> Result<PathBuf, String> {
    let from_cmake = std::env::var_os("DEP_LLAMA_GGML_CMAKE_DIR")
        .and_then(|dir| source_from_cmake_cache(Path::new(&dir)));
    let src = match from_cmake {
        Some(src) => src,
        None => source_from_cargo_metadata()?,
    };
    let manifest = src.parent().map(|p| p.join("Cargo.toml"));
    let version = manifest
        .as_deref()
        .and_then(|m| std::fs::read_to_string(m).ok())
        .and_then(|text| package_version(&text))
        .ok_or_else(|| format!("{}: no crate version beside it", src.display()))?;
    if version != SYS_VERSION {
        return Err(format!(
            "found {SYS_CRATE} {version} at {}, but src/train/shim.cpp is written for {SYS_VERSION}",
            src.display()
        ));
    }
    Ok(src)
}

/// `DEP_LLAMA_GGML_CMAKE_DIR` is `<OUT_DIR>/lib/cmake` of the sys crate; its CMake cache in
/// `<OUT_DIR>/build` records the source directory it configured.
fn source_from_cmake_cache(cmake_dir: &Path) -> Option<PathBuf> {
    let out_dir = cmake_dir.parent()?.parent()?;
    let cache = std::fs::read_to_string(out_dir.join("build/CMakeCache.txt")).ok()?;
    cache.lines().find_map(|line| {
        let value = line.strip_prefix("CMAKE_HOME_DIRECTORY:INTERNAL=")?;
        let dir = PathBuf::from(value.trim());
        dir.is_dir().then_some(dir)
    })
}

fn source_from_cargo_metadata() -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR unset")?;
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(&manifest_dir)
        .output()
        .map_err(|e| format!("running cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    let packages = meta["packages"]
        .as_array()
        .ok_or("cargo metadata: no packages")?;
    let package = packages
        .iter()
        .find(|p| p["name"] == SYS_CRATE && p["version"] == SYS_VERSION)
        .ok_or_else(|| format!("cargo metadata lists no {SYS_CRATE} {SYS_VERSION}"))?;
    let manifest = package["manifest_path"]
        .as_str()
        .ok_or("cargo metadata: no manifest_path")?;
    Path::new(manifest)
        .parent()
        .map(|dir| dir.join("llama.cpp"))
        .ok_or_else(|| format!("{manifest}: no parent directory"))
}

/// The `version` of the `[package]` table of a Cargo.toml.
fn package_version(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package && let Some(rest) = line.strip_prefix("version") {
            let value = rest.trim_start().strip_prefix('=')?.trim();
            return Some(value.trim_matches('"').to_owned());
        }
    }
    None
}
