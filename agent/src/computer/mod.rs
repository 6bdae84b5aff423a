//! Computer-use jobs (issue 26), the model's side: a goal in words, a model that looks at the page
//! and decides each action. This is the protocol layer, free of the browser and the network so
//! each rule is tested on its own; the job's loop (capture, send, execute, answer) is built on it.
//!
//! - [`models`]: which computer-use tool version each model takes, in one table.
//! - [`screen`]: the size a screenshot is sent at, and the mapping of the model's coordinates
//!   back to the page (the model answers in the pixel space of the image it was sent).
//! - [`action`]: the model's actions, parsed and checked, in the page's coordinates.
//! - [`execute`]: the actions done in the browser (DevTools input events), secrets typed by name,
//!   and the screenshots the model sees, captured by Chromium at the size they are sent at.
//! - [`model`]: the model service (Anthropic's API, or Bedrock's InvokeModel with a bearer
//!   token), retried with backoff within the job's time.
//! - [`run`]: the loop: turns, actions in order, budgets (steps, tokens, cost), the trajectory.
//! - [`script`]: the finished run as a scripted job that redoes it without the model.
//! - [`job`]: the job: the granted model and its key, the loop on the job's browser, and what the
//!   client gets (the answer checked against `output_schema`, usage, the trajectory).
//! - [`messages`]: the conversation as Anthropic's Messages API carries it (directly, or as an
//!   Amazon Bedrock InvokeModel body): requests, the model's turns kept verbatim (thinking blocks
//!   included), tool results with screenshots, old screenshots pruned, tokens counted.
//!
//! Sources (read 2026-12-06): Anthropic's computer-use tool documentation,
//! <https://platform.claude.com/docs/en/agents-and-tools/tool-use/computer-use-tool>; its vision
//! documentation (image limits, resizing), <https://platform.claude.com/docs/en/build-with-claude/vision>;
//! Amazon Bedrock's Anthropic Messages request format,
//! <https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages-request-response.html>.

pub mod action;
pub mod execute;
pub mod job;
pub mod messages;
pub mod model;
/// The tool versions by model (`names::tools`: the API refuses a model the table lacks).
pub use names::tools as models;
pub mod run;
pub mod screen;
pub mod script;
