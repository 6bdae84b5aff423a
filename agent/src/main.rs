//! Entry point of the agent binary; see the library for what it does and its exit codes.

fn main() {
    std::process::exit(agent::main_entry());
}
