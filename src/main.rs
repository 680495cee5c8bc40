//! The `leap` command line: a thin front-end over the `leap` library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
