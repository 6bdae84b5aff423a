//! The one binary of every function: `JOB_FUNCTION` names the handler to run.
// The handlers' async state machines nest deeply (the reconciler's slot path calls the job path).
#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> Result<(), functions::lambda::Error> {
    let name = std::env::var(names::env::FUNCTION).unwrap_or_default();
    // JSON lines on stderr, which Lambda sends to the function's log group.
    logging::init(logging::level_from_env(), std::io::stderr);
    logging::set_global("function", &name);
    let Some(function) = names::Function::parse(&name) else {
        let all: Vec<&str> = names::Function::ALL.iter().map(|f| f.as_str()).collect();
        return Err(format!("{} must be one of {}, got {name:?}", names::env::FUNCTION, all.join(", ")).into());
    };
    functions::lambda::run(function).await
}
