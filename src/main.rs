//! The `skill-fleet` binary: parses the command line and hands over to [`skill_fleet::cli`].

fn main() -> std::process::ExitCode {
    skill_fleet::cli::main()
}
