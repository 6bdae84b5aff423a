//! The browser agent: runs one job inside its Fargate container. The browser-driving code arrives
//! with the agent issue; this entry point only names the container it runs in.

fn main() {
    eprintln!(
        "agent: container `{}` has no browser driver yet; see the agent issue",
        names::agent::CONTAINER_NAME
    );
    std::process::exit(2);
}
