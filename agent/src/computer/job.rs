//! A computer-use job in the agent: the model the manifest grants, reached through the egress
//! guard with the key from the job's secrets; the loop on the job's browser; then what the
//! client gets: the answer (checked against the job's `output_schema`), the usage and the
//! trajectory, each turn's screenshot a file of its own.

use std::collections::BTreeMap;

use base64::Engine;
use names::goal::{Goal, Provider};
use crate::config::Granted;
use serde_json::{json, Value};

use super::execute::Executor;
use super::messages::{Conversation, Usage};
use super::model::{Endpoint, Model};
use super::run::{self, Budget, Ended, Limits, Prices};
use super::screen::Scale;
use crate::browser::Browser;
use crate::error::AgentError;
use crate::page::Ctx;

/// The most output tokens one turn may take.
pub const TURN_MAX_TOKENS: u32 = 4096;

/// Runs the job's goal on `browser` until the model answers or a limit ends it. What the
/// client gets is in the job's artifacts either way (`computer`, and the turns' files); the
/// error, when the task did not end in a valid answer.
pub async fn run(ctx: &Ctx, browser: &Browser, goal: &Goal) -> Result<(), AgentError> {
    let grant = ctx.config.model.as_ref().ok_or_else(|| AgentError::InvalidJob("a computer-use job's manifest must grant its model".into()))?;
    let model = model(ctx, goal, grant)?;
    let tool = super::models::tool_for(&goal.model.id).map_err(AgentError::InvalidJob)?;
    let viewport = ctx.config.options.viewport;
    let scale = Scale::for_viewport(viewport.width, viewport.height);
    // The model may type only the secrets the job names for it (never its own key).
    let typed: BTreeMap<String, String> = goal.secrets.iter().filter_map(|n| Some((n.clone(), ctx.secrets.get(n)?.clone()))).collect();
    if let Some(missing) = goal.secrets.iter().find(|n| !typed.contains_key(*n)) {
        return Err(AgentError::SecretsUnavailable(format!("the secret `{missing}` the job names was not handed to it")));
    }
    let names: Vec<&str> = typed.keys().map(String::as_str).collect();
    let mut conversation = Conversation::new(&goal.goal, tool, scale, &names);
    if let Some(schema) = &goal.output_schema {
        conversation.instruct(&format!(
            "When the task is done, your last message must be only a JSON value (no other text) that satisfies this JSON Schema: {schema}"
        ));
    }
    let mut screen = Executor::new(browser, scale, &typed);
    let p = grant.prices;
    let budget = Budget {
        limits: Limits { max_steps: goal.limits.max_steps, max_tokens: goal.limits.max_tokens, max_cost_usd: goal.limits.max_cost_usd.0 },
        prices: Prices { input: p.input.0, output: p.output.0, cache_write: p.cache_write.0, cache_read: p.cache_read.0 },
        deadline: ctx.work_deadline,
    };
    ctx.log.info("the model takes the job", json!({ "model": goal.model.key(), "tool": tool.tool_type, "sent_size": [scale.sent.0, scale.sent.1] }));
    // Each turn in the job's log as it ends: what a client following the logs sees happen.
    let mut on_turn = |step: &run::Step| {
        let actions: Vec<&str> = step.actions.iter().map(|a| a.input["action"].as_str().unwrap_or("?")).collect();
        let failed = step.actions.iter().filter(|a| a.outcome.is_err()).count();
        ctx.log.info(
            names::logs::MODEL_TURN,
            json!({ "turn": step.turn, "text": clip(&step.text), "actions": actions, "failed": failed, "tokens": usage_json(&step.usage), "model_ms": step.model_ms }),
        );
    };
    let (ended, steps) = run::run_with(&mut conversation, &model, &mut screen, budget, &mut on_turn).await;
    let usage = conversation.usage;
    let cost = budget.prices.cost(&usage);
    let mut trajectory = Vec::new();
    {
        let mut artifacts = ctx.artifacts();
        for step in &steps {
            let file = step.screenshots.last().and_then(|png| base64::engine::general_purpose::STANDARD.decode(png).ok()).map(|bytes| {
                let path = format!("{}{}.png", names::step::FILES_DIR, names::goal::turn_file(step.turn));
                artifacts.files.push((path.clone(), "image/png", bytes));
                path
            });
            trajectory.push(turn_record(step, file));
        }
    }
    let trimmed = fit(&mut trajectory, TRAJECTORY_MAX_BYTES);
    if trimmed > 0 {
        ctx.log.warn("the trajectory is long: its oldest turns keep their action names only", json!({ "turns_trimmed": trimmed }));
    }
    let outcome = match ended {
        Ended::Answered(text) => answer(&text, goal.output_schema.as_ref()),
        Ended::Refused(text) => Err(AgentError::ModelFailed(format!("the model declined the task: {text}"))),
        Ended::StepLimit => Err(AgentError::StepLimit(goal.limits.max_steps)),
        Ended::TokenLimit => Err(AgentError::TokenLimit(goal.limits.max_tokens)),
        Ended::CostLimit => Err(AgentError::CostLimit(goal.limits.max_cost_usd.0)),
        Ended::ModelFailed(e) => Err(AgentError::ModelFailed(e)),
        Ended::ScreenFailed(e) => Err(AgentError::StepFailed(e)),
    };
    let mut computer = json!({
        "goal": goal.goal,
        "model": goal.model.key(),
        "tool": tool.tool_type,
        "turns": steps.len(),
        "usage": names::api::ModelUsage {
            model: goal.model.key(),
            turns: steps.len() as u32,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cache_creation_input_tokens: usage.cache_creation_input_tokens,
            cache_read_input_tokens: usage.cache_read_input_tokens,
            estimated_cost_usd: names::goal::Usd((cost * 1e6).round() / 1e6),
        },
        "trajectory": trajectory,
        "script": super::script::script(goal.start_url.as_deref(), viewport, &steps),
    });
    if let Ok(a) = &outcome {
        computer["answer"] = a.clone();
    }
    ctx.log.info("the model's task ended", json!({ "turns": steps.len(), "tokens": usage_json(&usage), "estimated_cost_usd": cost, "ok": outcome.is_ok() }));
    ctx.artifacts().computer = Some(computer);
    outcome.map(drop)
}

fn usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cache_creation_input_tokens": u.cache_creation_input_tokens,
        "cache_read_input_tokens": u.cache_read_input_tokens,
    })
}

/// The model at the granted endpoint, with the key the job's secrets carry, through the guard.
fn model(ctx: &Ctx, goal: &Goal, grant: &Granted) -> Result<Model, AgentError> {
    let base = grant.endpoint.clone();
    let secret = |name: &str| ctx.secrets.get(name).cloned().ok_or_else(|| AgentError::SecretsUnavailable(format!("the model's key (`{name}`) was not handed to the job")));
    let endpoint = match goal.model.provider {
        Provider::Bedrock => Endpoint::Bedrock { base, bearer: secret(names::goal::BEDROCK_KEY_SECRET)? },
        Provider::Anthropic => {
            let name = goal.model.api_key_secret.as_deref().ok_or_else(|| AgentError::InvalidJob("`model.api_key_secret` is required with `anthropic`".into()))?;
            Endpoint::Anthropic { base, api_key: secret(name)? }
        }
    };
    Model::new(endpoint, &goal.model.id, TURN_MAX_TOKENS, Some(ctx.guard.addr)).map_err(AgentError::Internal)
}

/// The answer: the model's last words, or with an `output_schema` the JSON value in them
/// (alone, or in a fenced block), valid against it.
pub fn answer(text: &str, schema: Option<&Value>) -> Result<Value, AgentError> {
    let Some(schema) = schema else {
        return Ok(Value::String(text.trim().to_owned()));
    };
    let value = json_in(text).ok_or_else(|| AgentError::AnswerInvalid(format!("the answer is not JSON: {}", clip(text))))?;
    let validator = jsonschema::validator_for(schema).map_err(|e| AgentError::InvalidJob(format!("`output_schema` is not a valid JSON Schema: {e}")))?;
    let errors: Vec<String> = validator.iter_errors(&value).take(5).map(|e| format!("{} (at `{}`)", e, e.instance_path())).collect();
    if errors.is_empty() {
        Ok(value)
    } else {
        Err(AgentError::AnswerInvalid(format!("the answer does not satisfy `output_schema`: {}", errors.join("; "))))
    }
}

/// The JSON value of `text`: all of it, or the last fenced block.
fn json_in(text: &str) -> Option<Value> {
    let t = text.trim();
    if let Ok(v) = serde_json::from_str(t) {
        return Some(v);
    }
    let fenced = t.rsplit("```").nth(1)?;
    let body = fenced.strip_prefix("json").unwrap_or(fenced);
    serde_json::from_str(body.trim()).ok()
}

fn clip(text: &str) -> String {
    clip_to(text, 200)
}

/// `text`, cut after `max` characters (marked so).
fn clip_to(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}... ({} characters in all)", &text[..at], text.chars().count()),
        None => text.to_owned(),
    }
}

/// The longest model text, and the longest text of an action's input or error, a turn of the
/// trajectory keeps.
pub const TURN_TEXT_MAX_CHARS: usize = 2000;
pub const ACTION_TEXT_MAX_CHARS: usize = 500;
/// The most the trajectory may take of `result.json`'s 4 MiB; past it, the oldest turns are
/// trimmed to their action names (`fit`).
pub const TRAJECTORY_MAX_BYTES: usize = 3 * 1024 * 1024;

/// Trims the oldest turns (their text to 100 characters, their actions to their names, marked
/// `trimmed`) until the trajectory takes at most `budget` bytes as JSON; how many were trimmed.
fn fit(trajectory: &mut [Value], budget: usize) -> usize {
    let size = |v: &Value| v.to_string().len();
    let mut total: usize = trajectory.iter().map(size).sum();
    let mut trimmed = 0;
    for turn in trajectory.iter_mut() {
        if total <= budget {
            break;
        }
        let before = size(turn);
        turn["text"] = json!(clip_to(turn["text"].as_str().unwrap_or(""), 100));
        let names: Vec<Value> = turn["actions"].as_array().into_iter().flatten().map(|a| a["input"]["action"].clone()).collect();
        turn["actions"] = json!(names);
        turn["trimmed"] = json!(true);
        total = total - before + size(turn);
        trimmed += 1;
    }
    trimmed
}

/// One turn of `result.json`'s trajectory: the model's text, each action (its input, whether it
/// worked, the element it acted on), tokens, time and its screenshot's file.
fn turn_record(step: &run::Step, screenshot: Option<String>) -> Value {
    let actions: Vec<Value> = step
        .actions
        .iter()
        .map(|a| {
            let mut input = a.input.clone();
            if let Some(t) = input.get("text").and_then(Value::as_str).map(|t| clip_to(t, ACTION_TEXT_MAX_CHARS)) {
                input["text"] = json!(t);
            }
            let mut v = match &a.outcome {
                Ok(()) => json!({ "input": input, "ok": true }),
                Err(e) => json!({ "input": input, "ok": false, "error": clip_to(e, ACTION_TEXT_MAX_CHARS) }),
            };
            if let Some(t) = &a.target {
                v["target"] = t.clone();
            }
            v
        })
        .collect();
    json!({
        "turn": step.turn,
        "text": clip_to(&step.text, TURN_TEXT_MAX_CHARS),
        "actions": actions,
        "usage": usage_json(&step.usage),
        "model_ms": step.model_ms,
        "screenshot": screenshot,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The most turns a job may take, each with the longest text a model turn can have and ten
    /// actions typing the most an action may: the result stays within its upload's limit.
    #[test]
    fn the_longest_trajectory_fits_result_json() {
        let long = "x".repeat(super::super::action::MAX_TEXT);
        let step = run::Step {
            turn: 1,
            text: "y".repeat(4 * TURN_MAX_TOKENS as usize * 4),
            actions: (0..10).map(|_| run::Acted { input: json!({"action": "type", "text": long}), outcome: Err(long.clone()), target: Some(json!({"selector": "#a", "robust": true, "by": "id"})) }).collect(),
            usage: Usage::default(),
            model_ms: 1,
            screenshots: Vec::new(),
        };
        let one = turn_record(&step, Some("files/turn-001.png".into()));
        assert!(one["text"].as_str().unwrap().ends_with("(65536 characters in all)"));
        assert_eq!(one["actions"][0]["input"]["text"].as_str().unwrap().chars().count(), ACTION_TEXT_MAX_CHARS + "... (10000 characters in all)".len());
        let mut all: Vec<Value> = (0..*names::goal::STEPS.end()).map(|_| one.clone()).collect();
        let trimmed = fit(&mut all, TRAJECTORY_MAX_BYTES);
        let total: usize = all.iter().map(|t| t.to_string().len()).sum();
        assert!(total <= TRAJECTORY_MAX_BYTES && TRAJECTORY_MAX_BYTES < names::Output::Result.max_bytes() as usize, "{total} bytes");
        assert!(trimmed > 0 && all[0]["trimmed"] == true && all[0]["actions"][0] == "type", "{}", all[0]);
        assert!(all[all.len() - 1].get("trimmed").is_none(), "the newest turns are kept whole");
        // A run of ordinary size is kept whole.
        let mut short = vec![turn_record(&run::Step { text: "Signing in.".into(), ..step.clone() }, None); 30];
        short.iter_mut().for_each(|t| t["actions"] = json!([]));
        assert_eq!(fit(&mut short, TRAJECTORY_MAX_BYTES), 0);
    }

    #[test]
    fn an_answer_is_checked_against_the_schema() {
        let schema = json!({"type": "object", "required": ["price"], "properties": {"price": {"type": "number"}}});
        assert_eq!(answer(" 12 EUR ", None).unwrap(), json!("12 EUR"));
        assert_eq!(answer(r#"{"price": 12}"#, Some(&schema)).unwrap(), json!({"price": 12}));
        assert_eq!(answer("Done.\n```json\n{\"price\": 3.5}\n```\n", Some(&schema)).unwrap(), json!({"price": 3.5}));
        let e = answer(r#"{"price": "twelve"}"#, Some(&schema)).unwrap_err();
        assert_eq!(e.code(), names::job::ErrorCode::AnswerInvalid);
        assert!(e.to_string().contains("/price"), "{e}");
        let e = answer("It costs twelve euros.", Some(&schema)).unwrap_err();
        assert!(e.to_string().contains("not JSON"), "{e}");
    }
}
