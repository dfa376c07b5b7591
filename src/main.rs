//! The `contrastive` command line.

mod cli;

fn main() -> std::process::ExitCode {
    contrastive::backend::keep_freed_memory();
    cli::main()
}
