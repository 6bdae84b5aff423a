//! Parsing at the edge: raw bodies, headers and parameters become validated types or an
//! [`ApiError`] that names the field. Nothing here does I/O.

use super::error::ApiError;
use crate::model::{JobRequest, Target, TaskId};
use names::job::{self, JobOptions, Viewport};
use names::{spec, step};
use serde_json::{Map, Value};

/// What a submit body asks for, once valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubmitBody {
    pub request: JobRequest,
    /// The tenant the body names, if any; it must equal the API key's tenant.
    pub tenant_id: Option<String>,
}

const BODY_FIELDS: &[&str] = &[
    "query", "tenant_id", "url", "options", "steps", "webhook", "goal", "start_url", "allowed_domains", "secrets", "output_schema", "model", "limits",
];
/// The fields of a computer-use job, beside `goal`.
const GOAL_FIELDS: &[&str] = &["start_url", "allowed_domains", "secrets", "output_schema", "model", "limits"];
const MODEL_FIELDS: &[&str] = &["provider", "id", "api_key_secret"];
const LIMIT_FIELDS: &[&str] = &["max_steps", "max_tokens", "max_cost_usd"];
const WEBHOOK_FIELDS: &[&str] = &["url"];
const OPTION_FIELDS: &[&str] = &["full_page", "viewport", "timeout_seconds", "capture_html"];
const VIEWPORT_FIELDS: &[&str] = &["width", "height"];

/// The longest Idempotency-Key accepted.
pub const IDEMPOTENCY_KEY_MAX: usize = 255;

/// A submit body, by the rules of `names` and, for a computer-use job, the deployment's models
/// and limits (`computer`).
pub fn parse_submit(body: &[u8], content_type: Option<&str>, computer: &names::goal::Settings) -> Result<SubmitBody, ApiError> {
    if body.len() > job::BODY_MAX_BYTES {
        return Err(ApiError::PayloadTooLarge { limit: job::BODY_MAX_BYTES });
    }
    if let Some(ct) = content_type {
        let media = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if media != "application/json" && !media.is_empty() {
            return Err(ApiError::UnsupportedMediaType(media));
        }
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        // serde's message names line and column, which helps; it never echoes the input.
        ApiError::MalformedJson(e.to_string())
    })?;
    let Value::Object(obj) = value else {
        return Err(ApiError::MalformedJson("expected a JSON object".into()));
    };
    reject_unknown(&obj, BODY_FIELDS, "")?;

    let query = opt_string(&obj, "query")?;
    let url = opt_string(&obj, "url")?;
    let tenant_id = opt_string(&obj, "tenant_id")?;
    let computer_job = match opt_string(&obj, "goal")? {
        Some(goal) => Some(parse_goal(&obj, goal, computer)?),
        None => match GOAL_FIELDS.iter().find(|f| present(&obj, f).is_some()) {
            Some(f) => return Err(ApiError::invalid(f, format!("`{f}` is for computer-use jobs: it needs a `goal`"))),
            None => None,
        },
    };
    let steps = match obj.get("steps") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => parse_steps(a)?,
        Some(_) => return Err(ApiError::InvalidType { field: "steps".into(), expected: "an array of steps" }),
    };
    if query.is_none() && url.is_none() && steps.is_empty() && computer_job.is_none() {
        return Err(ApiError::MissingField { field: "query".into(), message: "`query`, `url`, `steps` or `goal` is required".into() });
    }
    let target = if let Some(goal) = computer_job {
        if let Some(f) = [("query", query.is_some()), ("url", url.is_some()), ("steps", !steps.is_empty())].iter().find(|(_, given)| *given).map(|(f, _)| *f) {
            return Err(ApiError::invalid(f, format!("`goal` takes no `{f}`: the model decides what to open (`start_url` sets the first page)")));
        }
        Target::Goal(Box::new(goal))
    } else {
        // The one set of rules (names::job): the target, then every step, by field.
        match spec::target(query, url, &steps)? {
        spec::ValidTarget::Query(q) => Target::Query(q),
        // Stored as the client wrote it; the agent parses it by the same rules.
        spec::ValidTarget::Url(_) => Target::Url(url.unwrap_or_default().to_owned()),
        spec::ValidTarget::Steps => Target::Script,
        spec::ValidTarget::Goal => unreachable!("a spec without a goal is no goal job"),
        }
    };
    let options = match obj.get("options") {
        None | Some(Value::Null) => JobOptions::default(),
        Some(Value::Object(o)) => parse_options(o)?,
        Some(_) => return Err(ApiError::InvalidType { field: "options".into(), expected: "an object" }),
    };
    let webhook_url = match obj.get("webhook") {
        None | Some(Value::Null) => None,
        Some(Value::Object(w)) => {
            reject_unknown(w, WEBHOOK_FIELDS, "webhook.")?;
            match opt_string(w, "url").map_err(|_| ApiError::InvalidType { field: "webhook.url".into(), expected: "a string" })? {
                Some(u) => Some(job::rules::url_field("webhook.url", u)?.to_string()),
                None => return Err(ApiError::MissingField { field: "webhook.url".into(), message: "`webhook.url` is required".into() }),
            }
        }
        Some(_) => return Err(ApiError::InvalidType { field: "webhook".into(), expected: "an object with a `url`" }),
    };
    Ok(SubmitBody { request: JobRequest { target, options, steps, webhook_url }, tenant_id: tenant_id.map(str::to_owned) })
}

/// A computer-use job's fields: each of the right type, the model and limits resolved from the
/// deployment's, then the rules (`names::goal`) and the schema compiled.
fn parse_goal(obj: &Map<String, Value>, goal: &str, computer: &names::goal::Settings) -> Result<names::goal::Goal, ApiError> {
    use names::goal;
    let strings = |field: &str| -> Result<Vec<String>, ApiError> {
        match present(obj, field) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, v)| v.as_str().map(str::to_owned).ok_or_else(|| ApiError::InvalidType { field: format!("{field}[{i}]"), expected: "a string" }))
                .collect(),
            Some(_) => Err(ApiError::InvalidType { field: field.into(), expected: "an array of strings" }),
        }
    };
    let model = match present(obj, "model") {
        None => None,
        Some(Value::Object(m)) => {
            reject_unknown(m, MODEL_FIELDS, "model.")?;
            let text = |f: &str| opt_string(m, f).map_err(|_| ApiError::InvalidType { field: format!("model.{f}"), expected: "a string" });
            let provider = match text("provider")? {
                Some(p) => goal::Provider::parse(p).ok_or_else(|| ApiError::invalid("model.provider", "`model.provider` must be `bedrock` or `anthropic`"))?,
                None => return Err(ApiError::MissingField { field: "model.provider".into(), message: "`model.provider` is required".into() }),
            };
            let Some(id) = text("id")? else {
                return Err(ApiError::MissingField { field: "model.id".into(), message: "`model.id` is required".into() });
            };
            Some(goal::ModelChoice { provider, id: id.to_owned(), api_key_secret: text("api_key_secret")?.map(str::to_owned) })
        }
        Some(_) => return Err(ApiError::InvalidType { field: "model".into(), expected: "an object with `provider` and `id`" }),
    };
    let mut asked = goal::AskedLimits::default();
    match present(obj, "limits") {
        None => {}
        Some(Value::Object(l)) => {
            reject_unknown(l, LIMIT_FIELDS, "limits.")?;
            let whole = |f: &str| -> Result<Option<u64>, ApiError> {
                present(l, f).map(|v| v.as_u64().ok_or_else(|| ApiError::InvalidType { field: format!("limits.{f}"), expected: "a whole number" })).transpose()
            };
            asked.max_steps = whole("max_steps")?.map(|v| u32::try_from(v).unwrap_or(u32::MAX));
            asked.max_tokens = whole("max_tokens")?;
            asked.max_cost_usd = present(l, "max_cost_usd")
                .map(|v| v.as_f64().map(goal::Usd).ok_or_else(|| ApiError::InvalidType { field: "limits.max_cost_usd".into(), expected: "a number" }))
                .transpose()?;
        }
        Some(_) => return Err(ApiError::InvalidType { field: "limits".into(), expected: "an object" }),
    }
    let (model, limits, _) = computer.resolve(model, asked)?;
    let output_schema = match present(obj, "output_schema") {
        None => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => return Err(ApiError::InvalidType { field: "output_schema".into(), expected: "a JSON Schema object" }),
    };
    let g = goal::Goal {
        goal: goal.to_owned(),
        start_url: opt_string(obj, "start_url")?.map(str::to_owned),
        allowed_domains: strings("allowed_domains")?,
        secrets: strings("secrets")?,
        output_schema,
        model,
        limits,
    };
    g.check()?;
    if let Some(schema) = &g.output_schema {
        jsonschema::validator_for(schema).map_err(|e| ApiError::invalid("output_schema", format!("`output_schema` is not a valid JSON Schema: {e}")))?;
    }
    Ok(g)
}

/// Each step: an object with a known `action` and that action's fields only (named with their
/// path, `steps[3].selector`), of the right types. The rules come after, with the target's.
fn parse_steps(raw: &[Value]) -> Result<Vec<step::Step>, ApiError> {
    if raw.len() > step::MAX_STEPS {
        return Err(ApiError::invalid("steps", format!("`steps` may hold at most {} steps", step::MAX_STEPS)));
    }
    let mut steps = Vec::with_capacity(raw.len());
    for (i, v) in raw.iter().enumerate() {
        let at = format!("steps[{i}]");
        let Value::Object(o) = v else {
            return Err(ApiError::InvalidType { field: at, expected: "an object with an `action`" });
        };
        let action = match o.get("action") {
            Some(Value::String(a)) => a.as_str(),
            Some(_) => return Err(ApiError::InvalidType { field: format!("{at}.action"), expected: "a string" }),
            None => return Err(ApiError::MissingField { message: format!("`{at}.action` is required"), field: format!("{at}.action") }),
        };
        let Some(fields) = names::step::fields(action) else {
            let known: Vec<&str> = names::step::ACTIONS.iter().map(|(a, _)| *a).collect();
            return Err(ApiError::invalid(&format!("{at}.action"), format!("`{at}.action`: unknown action `{action}`; one of {}", known.join(", "))));
        };
        let mut known = vec!["action"];
        known.extend(fields.iter().map(|(f, _)| *f));
        reject_unknown(o, &known, &format!("{at}."))?;
        for (f, kind) in fields {
            let fits = match (o.get(*f), kind) {
                (None | Some(Value::Null), _) => true,
                (Some(v), names::step::Kind::String) => v.is_string(),
                (Some(v), names::step::Kind::Bool) => v.is_boolean(),
                (Some(v), names::step::Kind::Count) => v.is_u64(),
            };
            if !fits {
                return Err(ApiError::InvalidType { field: format!("{at}.{f}"), expected: kind.expected() });
            }
        }
        if let Some(to) = o.get("to").and_then(Value::as_str).filter(|t| action == "scroll" && *t != "bottom") {
            return Err(ApiError::invalid(&format!("{at}.to"), format!("`{at}.to` can only be `bottom` (not `{to}`); use `selector` to scroll to an element")));
        }
        let step: step::Step = serde_json::from_value(v.clone()).map_err(|e| {
            // serde names the field in backticks: `missing field `selector``, `unknown variant ...`.
            let text = e.to_string();
            let field = text.split('`').nth(1).filter(|f| fields.iter().any(|(k, _)| k == f)).map(|f| format!("{at}.{f}")).unwrap_or(at.clone());
            if text.starts_with("missing field") {
                ApiError::MissingField { message: format!("`{field}` is required for `{action}`"), field }
            } else {
                ApiError::invalid(&field, format!("`{field}`: {text}"))
            }
        })?;
        steps.push(step);
    }
    Ok(steps)
}

fn reject_unknown(obj: &Map<String, Value>, known: &[&str], prefix: &str) -> Result<(), ApiError> {
    let unknown: Vec<String> = obj
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .map(|k| format!("{prefix}{k}"))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(ApiError::UnknownFields(unknown))
    }
}

fn opt_string<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, ApiError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::InvalidType { field: field.into(), expected: "a string" }),
    }
}

impl From<job::SpecError> for ApiError {
    fn from(e: job::SpecError) -> ApiError {
        ApiError::invalid(&e.field, e.message)
    }
}

fn parse_options(o: &Map<String, Value>) -> Result<JobOptions, ApiError> {
    reject_unknown(o, OPTION_FIELDS, "options.")?;
    let mut options = JobOptions::default();
    if let Some(v) = present(o, "full_page") {
        options.full_page = boolean(v, "options.full_page")?;
    }
    if let Some(v) = present(o, "capture_html") {
        options.capture_html = boolean(v, "options.capture_html")?;
    }
    if let Some(v) = present(o, "timeout_seconds") {
        options.timeout_seconds = bounded(v, "options.timeout_seconds", job::TIMEOUT_SECONDS)?;
    }
    if let Some(v) = present(o, "viewport") {
        let Value::Object(vp) = v else {
            return Err(ApiError::InvalidType { field: "options.viewport".into(), expected: "an object" });
        };
        reject_unknown(vp, VIEWPORT_FIELDS, "options.viewport.")?;
        let dim = |name: &str, range| -> Result<u32, ApiError> {
            let field = format!("options.viewport.{name}");
            match present(vp, name) {
                Some(v) => bounded(v, &field, range),
                None => Err(ApiError::MissingField {
                    message: format!("`{field}` is required when a viewport is given"),
                    field,
                }),
            }
        };
        options.viewport = Viewport {
            width: dim("width", job::VIEWPORT_WIDTH)?,
            height: dim("height", job::VIEWPORT_HEIGHT)?,
        };
    }
    Ok(options)
}

fn present<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a Value> {
    o.get(k).filter(|v| !v.is_null())
}

fn boolean(v: &Value, field: &str) -> Result<bool, ApiError> {
    v.as_bool().ok_or_else(|| ApiError::InvalidType { field: field.into(), expected: "true or false" })
}

fn bounded(v: &Value, field: &str, range: std::ops::RangeInclusive<u32>) -> Result<u32, ApiError> {
    let Some(n) = v.as_i64().or_else(|| v.as_u64().map(|u| u.min(i64::MAX as u64) as i64)) else {
        return Err(ApiError::InvalidType { field: field.into(), expected: "an integer" });
    };
    Ok(job::rules::bounded(field, n, &range)?)
}

/// The `Idempotency-Key` header: 1..=255 visible ASCII characters.
pub fn idempotency_key(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let field = names::routes::IDEMPOTENCY_KEY_HEADER;
    if raw.is_empty() || raw.len() > IDEMPOTENCY_KEY_MAX || !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid(
            field,
            format!("`{field}` must be 1 to {IDEMPOTENCY_KEY_MAX} visible ASCII characters"),
        ));
    }
    Ok(Some(raw.to_owned()))
}

pub fn task_id(raw: Option<&str>) -> Result<TaskId, ApiError> {
    let field = names::routes::TASK_ID_PARAM;
    raw.and_then(TaskId::parse)
        .ok_or_else(|| ApiError::invalid(field, format!("`{field}` must be a UUID")))
}

/// Query-string parameters of the GET routes, checked against the names a route accepts.
pub struct Params<'a> {
    pairs: &'a [(String, String)],
}

impl<'a> Params<'a> {
    pub fn new(pairs: &'a [(String, String)], known: &[&str]) -> Result<Params<'a>, ApiError> {
        let mut unknown: Vec<String> =
            pairs.iter().filter(|(k, _)| !known.contains(&k.as_str())).map(|(k, _)| k.clone()).collect();
        unknown.dedup();
        if !unknown.is_empty() {
            return Err(ApiError::UnknownFields(unknown));
        }
        Ok(Params { pairs })
    }

    pub fn get(&self, name: &str) -> Result<Option<&'a str>, ApiError> {
        let mut values = self.pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::invalid(name, format!("`{name}` may be given only once")));
        }
        Ok(first)
    }

    pub fn limit(&self, range: std::ops::RangeInclusive<u32>, default: u32) -> Result<u32, ApiError> {
        let Some(raw) = self.get("limit")? else { return Ok(default) };
        match raw.parse::<u32>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(ApiError::invalid(
                "limit",
                format!("`limit` must be an integer between {} and {}", range.start(), range.end()),
            )),
        }
    }

    /// An opaque pagination token: non-empty, printable ASCII, bounded.
    pub fn next_token(&self) -> Result<Option<&'a str>, ApiError> {
        let Some(raw) = self.get("next_token")? else { return Ok(None) };
        if raw.is_empty() || raw.len() > 2048 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiError::invalid("next_token", "`next_token` is not a token this API issued"));
        }
        Ok(Some(raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The parser above and the document's `SubmitRequest` (`names::api`) describe one body.
    #[test]
    fn the_documented_submit_body_is_the_parsed_one() {
        let doc = serde_json::to_value(names::api::openapi()).unwrap();
        let props = |name: &str| -> BTreeSet<String> {
            doc["components"]["schemas"][name]["properties"].as_object().unwrap_or_else(|| panic!("no schema {name}")).keys().cloned().collect()
        };
        let set = |fields: &[&str]| -> BTreeSet<String> { fields.iter().map(|f| f.to_string()).collect() };
        assert_eq!(props("SubmitRequest"), set(BODY_FIELDS));
        assert_eq!(props("WebhookRequest"), set(WEBHOOK_FIELDS));
        assert_eq!(props("JobOptions"), set(OPTION_FIELDS));
        assert_eq!(props("Viewport"), set(VIEWPORT_FIELDS));
    }
}
