//! The system BLAS's choice of kernels. OpenBLAS built for many CPUs (Debian's) picks its
//! kernels from the CPU's model number when it loads; a CPU newer than the library, or one a
//! hypervisor names only "Intel Xeon Processor", gets its generic Prescott kernels, several
//! times slower than the AVX2 or AVX-512 ones the CPU runs (on the development machine, F32
//! training at 42 against 144 tokens/s). It must be told before it loads, by the environment
//! variable `OPENBLAS_CORETYPE`: [`better_core`] says what to tell it, and the `leap` binary
//! starts itself again with it set.

/// Kernels OpenBLAS falls back to for a CPU it does not know.
const GENERIC: [&str; 8] = [
    "Prescott",
    "Core2",
    "Penryn",
    "Dunnington",
    "Katmai",
    "Coppermine",
    "Northwood",
    "Banias",
];

/// The kernels OpenBLAS chose in this process.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub fn openblas_core() -> Option<String> {
    unsafe extern "C" {
        fn openblas_get_corename() -> *const std::ffi::c_char;
    }
    // SAFETY: OpenBLAS returns a static NUL-terminated name (or null).
    unsafe {
        let name = openblas_get_corename();
        (!name.is_null()).then(|| {
            std::ffi::CStr::from_ptr(name)
                .to_string_lossy()
                .into_owned()
        })
    }
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
pub fn openblas_core() -> Option<String> {
    None
}

/// The `OPENBLAS_CORETYPE` to start with when OpenBLAS chose generic kernels for a CPU that
/// runs faster ones (and nobody set the variable): SkylakeX with AVX-512, Haswell with AVX2.
pub fn better_core() -> Option<&'static str> {
    if std::env::var_os("OPENBLAS_CORETYPE").is_some() {
        return None;
    }
    let core = openblas_core()?;
    if !GENERIC.iter().any(|g| core.eq_ignore_ascii_case(g)) {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            return Some("SkylakeX");
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Some("Haswell");
        }
    }
    None
}
