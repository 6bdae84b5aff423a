//! A computer-use job in the agent: the model the manifest grants, reached through the egress
//! guard with the key from the job's secrets; the loop on the job's browser; then what the
//! client gets: the answer (checked against the job's `output_schema`), the usage and the
//! trajectory, each turn's screenshot a file of its own.

use std::collections::BTreeMap;

use base64::Engine;
use names::goal::{Goal, Provider};
use names::manifest::ModelGrant;
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
            trajectory.push(json!({
                "turn": step.turn,
                "text": step.text,
                "actions": step.actions.iter().map(|a| {
                    let mut v = match &a.outcome {
                        Ok(()) => json!({ "input": a.input, "ok": true }),
                        Err(e) => json!({ "input": a.input, "ok": false, "error": e }),
                    };
                    if let Some(t) = &a.target {
                        v["target"] = t.clone();
                    }
                    v
                }).collect::<Vec<_>>(),
                "usage": usage_json(&step.usage),
                "model_ms": step.model_ms,
                "screenshot": file,
            }));
        }
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
fn model(ctx: &Ctx, goal: &Goal, grant: &ModelGrant) -> Result<Model, AgentError> {
    let base = url::Url::parse(&grant.endpoint).map_err(|e| AgentError::InvalidJob(format!("the model's endpoint `{}` is not a URL: {e}", grant.endpoint)))?;
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
    let t: String = text.chars().take(200).collect();
    if t.len() < text.len() {
        format!("{t}...")
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
