//! Everything the CLI prints goes through here: text from a model or an environment is shown
//! with its control characters escaped ([`leap::shown::escape_controls`]), and a reader that
//! has gone away (`leap episodes list | head`) ends the program quietly, as Unix tools do,
//! instead of a panic about a broken pipe.

use std::fmt;
use std::io::{self, Write};

/// Prints to stdout, like `print!`.
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::print::stdout(format_args!($($arg)*)) };
}

/// Prints a line to stdout, like `println!`.
macro_rules! outln {
    () => { $crate::cli::print::stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::print::stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Prints a line to stderr, like `eprintln!`.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::cli::print::stderr(format_args!("{}\n", format_args!($($arg)*))) };
}

pub(crate) use {errln, out, outln};

pub fn stdout(args: fmt::Arguments) {
    write_shown(&mut io::stdout().lock(), args);
}

pub fn stderr(args: fmt::Arguments) {
    write_shown(&mut io::stderr().lock(), args);
}

fn write_shown(w: &mut impl Write, args: fmt::Arguments) {
    let text = args.to_string();
    let shown = leap::shown::escape_controls(&text);
    // Flushed at once, so that a reader gone away is noticed here and not at exit.
    if let Err(e) = w.write_all(shown.as_bytes()).and_then(|()| w.flush()) {
        cannot_write(e);
    }
}

/// Whether `err` is, or was caused by, a write to a reader that has gone away.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Ends the program after a failed write: quietly by SIGPIPE when the reader has gone (the
/// shell says nothing, `set -o pipefail` sees 141), else with the reason on stderr.
pub fn cannot_write(err: io::Error) -> ! {
    if err.kind() == io::ErrorKind::BrokenPipe {
        end_by_sigpipe();
    }
    let _ = writeln!(io::stderr(), "error: cannot write the output: {err}");
    std::process::exit(1)
}

/// Ends the program as a Unix tool whose reader has gone: by SIGPIPE, with its default action.
/// (Rust ignores SIGPIPE so that writes fail instead; that stays so for the rest of the run,
/// where a child's closed pipe must be an error, not the end of leap.)
pub fn end_by_sigpipe() -> ! {
    // SAFETY: restoring a signal's default action and raising it in this thread; nothing
    // runs after it but the fallback exit.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    std::process::exit(128 + libc::SIGPIPE)
}
