//! What llama.cpp says. Its loader throws with a reason ("tensor 'x' has wrong shape") that the
//! C API turns into a bare null pointer, and logs the reason just before; this keeps the last
//! error lines it logged, so that a load failure can name its cause. Nothing is printed unless
//! `LEAP_LLAMA_LOG` is set (then everything llama.cpp logs goes to stderr, as it would itself).

use std::ffi::{CStr, c_char, c_void};
use std::sync::{Mutex, Once};

use llama_cpp_sys_2 as sys;

/// Environment variable that lets llama.cpp's own log through to stderr.
pub const LOG_ENV: &str = "LEAP_LLAMA_LOG";

/// The error lines logged since the last [`take_errors`], at most this many bytes.
const KEEP: usize = 4096;

static ERRORS: Mutex<String> = Mutex::new(String::new());
/// Whether the last message was an error, so that its continuations (`GGML_LOG_LEVEL_CONT`)
/// are kept with it.
static IN_ERROR: Mutex<bool> = Mutex::new(false);

/// Routes llama.cpp's and ggml's log through [`capture`], once per process. Call before
/// anything that may log; later calls do nothing.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: the callback is a plain function that lives for the whole process and only
        // reads the NUL-terminated text it is given.
        unsafe { sys::llama_log_set(Some(capture), std::ptr::null_mut()) };
    });
}

unsafe extern "C" fn capture(level: sys::ggml_log_level, text: *const c_char, _: *mut c_void) {
    if text.is_null() {
        return;
    }
    // SAFETY: llama.cpp passes a NUL-terminated string valid for the call.
    let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    if std::env::var_os(LOG_ENV).is_some() {
        eprint!("{text}");
    }
    let Ok(mut in_error) = IN_ERROR.lock() else {
        return;
    };
    *in_error = match level {
        sys::GGML_LOG_LEVEL_ERROR => true,
        sys::GGML_LOG_LEVEL_CONT => *in_error,
        _ => false,
    };
    if *in_error && let Ok(mut errors) = ERRORS.lock() {
        errors.push_str(&text);
        if errors.len() > KEEP {
            let cut = errors.len() - KEEP;
            let cut = (cut..errors.len())
                .find(|&i| errors.is_char_boundary(i))
                .unwrap_or(0);
            errors.drain(..cut);
        }
    }
}

/// Forgets the errors logged so far (call before a load whose failure should be explained).
pub fn clear_errors() {
    if let Ok(mut errors) = ERRORS.lock() {
        errors.clear();
    }
}

/// The error lines llama.cpp logged since [`clear_errors`], joined with "; " (`None` if none).
pub fn take_errors() -> Option<String> {
    let text = std::mem::take(&mut *ERRORS.lock().ok()?);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    (!lines.is_empty()).then(|| lines.join("; "))
}

/// Why a call failed: what llama.cpp logged about it, else `bare`, the error the C API
/// returned (often a bare "null result").
pub fn explain(bare: impl std::fmt::Display) -> String {
    take_errors().unwrap_or_else(|| bare.to_string())
}
