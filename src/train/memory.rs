//! How much memory there is and how much the process has used: to choose the training copy of
//! the base, and to report the peak.

use llama_cpp_sys_2 as sys;

/// Memory the system can give without swapping (`MemAvailable`), where the OS says.
pub fn available_bytes() -> Option<u64> {
    proc_kib("/proc/meminfo", "MemAvailable:")
}

/// The process's peak resident memory so far (`VmHWM`), where the OS says.
pub fn peak_rss_bytes() -> Option<u64> {
    proc_kib("/proc/self/status", "VmHWM:")
}

fn proc_kib(file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Free memory on the first GPU ggml sees (CUDA or Metal builds), if any.
pub fn gpu_free_bytes() -> Option<u64> {
    crate::agent::local::backend();
    // SAFETY: ggml's device registry is initialised by the backend above; indices are in range.
    unsafe {
        (0..sys::ggml_backend_dev_count())
            .map(|i| sys::ggml_backend_dev_get(i))
            .find(|&d| {
                let t = sys::ggml_backend_dev_type(d);
                t == sys::GGML_BACKEND_DEVICE_TYPE_GPU || t == sys::GGML_BACKEND_DEVICE_TYPE_IGPU
            })
            .map(|d| {
                let (mut free, mut total) = (0usize, 0usize);
                sys::ggml_backend_dev_memory(d, &mut free, &mut total);
                free as u64
            })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn linux_reports_memory() {
        if cfg!(target_os = "linux") {
            assert!(super::available_bytes().unwrap() > 0);
            assert!(super::peak_rss_bytes().unwrap() > 0);
        }
    }
}
