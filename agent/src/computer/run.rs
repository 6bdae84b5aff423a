//! A computer-use job's loop: send the conversation, do the actions the model's turn asks for in
//! order, answer each, until the model ends its task or a budget is spent. Each turn is kept for
//! the job's trajectory; the budgets are checked after every turn, so the turn that crosses one
//! is the last.

use std::time::Instant;

use serde_json::Value;

use super::action::{self, Action};
use super::execute::Done;
use super::messages::{Conversation, ToolResult, Usage};
use super::model::{send_with_retries, ModelApi};

/// What a job may spend.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Model turns.
    pub max_steps: u32,
    /// Input (cache writes and reads included) and output tokens, together.
    pub max_tokens: u64,
    pub max_cost_usd: f64,
}

/// What a job may spend, at what prices, until when.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub limits: Limits,
    pub prices: Prices,
    pub deadline: tokio::time::Instant,
}

/// A model's prices, US dollars per million tokens.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prices {
    pub input: f64,
    pub output: f64,
    pub cache_write: f64,
    pub cache_read: f64,
}

impl Prices {
    pub fn cost(&self, u: &Usage) -> f64 {
        let m = |tokens: u64, price: f64| tokens as f64 * price / 1_000_000.0;
        m(u.input_tokens, self.input) + m(u.output_tokens, self.output) + m(u.cache_creation_input_tokens, self.cache_write) + m(u.cache_read_input_tokens, self.cache_read)
    }
}

/// Total tokens of a usage, as the token budget counts them.
pub fn tokens(u: &Usage) -> u64 {
    u.input_tokens + u.output_tokens + u.cache_creation_input_tokens + u.cache_read_input_tokens
}

/// The page, as the loop acts on it (the browser's [`super::execute::Executor`], or a test's).
pub trait Screen {
    fn act(&mut self, action: &Action) -> impl std::future::Future<Output = Result<Done, String>>;
    /// The screenshot the model sees, a base64 PNG at the sent size.
    fn screenshot(&mut self) -> impl std::future::Future<Output = Result<String, String>>;
}

impl Screen for super::execute::Executor<'_> {
    async fn act(&mut self, action: &Action) -> Result<Done, String> {
        self.run(action).await
    }
    async fn screenshot(&mut self) -> Result<String, String> {
        super::execute::Executor::screenshot(self).await
    }
}

/// How the task ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Ended {
    /// The model ended its turn without an action: its last words are the answer.
    Answered(String),
    /// The model declined the task (`refusal`).
    Refused(String),
    StepLimit,
    TokenLimit,
    CostLimit,
    /// The model service failed for good, or not in the job's time.
    ModelFailed(String),
    /// The page failed under an action (the browser, not the model's mistake).
    ScreenFailed(String),
}

/// One model turn of the trajectory.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub turn: u32,
    /// The model's visible text.
    pub text: String,
    /// Each action asked for and what it came to.
    pub actions: Vec<Acted>,
    /// Tokens of this turn's response.
    pub usage: Usage,
    pub model_ms: u64,
    /// The screenshots sent back after this turn (base64 PNG), in order.
    pub screenshots: Vec<String>,
}

/// An action of a turn: its input as the model sent it, what it came to, and the element it
/// acted on, when it found one (`execute::Done::target`).
#[derive(Clone, Debug, PartialEq)]
pub struct Acted {
    pub input: Value,
    pub outcome: Result<(), String>,
    pub target: Option<Value>,
}

fn delta(after: &Usage, before: &Usage) -> Usage {
    Usage {
        input_tokens: after.input_tokens - before.input_tokens,
        output_tokens: after.output_tokens - before.output_tokens,
        cache_creation_input_tokens: after.cache_creation_input_tokens - before.cache_creation_input_tokens,
        cache_read_input_tokens: after.cache_read_input_tokens - before.cache_read_input_tokens,
    }
}

/// Screenshots kept in the conversation at least, and how many more come before older ones go.
pub const KEEP_SCREENSHOTS: usize = 3;
pub const PRUNE_BATCH: usize = 10;

/// Runs the task to its end. Every tool use of a turn is answered: an action the model got wrong
/// is answered with its error (the model may correct it); after a turn's last action (and for a
/// `screenshot` or `zoom`) the answer carries the page as it is now.
pub async fn run<M: ModelApi, S: Screen>(conversation: &mut Conversation, model: &M, screen: &mut S, budget: Budget) -> (Ended, Vec<Step>) {
    run_with(conversation, model, screen, budget, &mut |_| ()).await
}

/// [`run`], telling `on_turn` of each turn as soon as its actions are done (the job's log).
pub async fn run_with<M: ModelApi, S: Screen>(conversation: &mut Conversation, model: &M, screen: &mut S, budget: Budget, on_turn: &mut (dyn FnMut(&Step) + Send)) -> (Ended, Vec<Step>) {
    let Budget { limits, prices, deadline } = budget;
    let (tool, scale) = (conversation.tool(), conversation.scale());
    let mut steps: Vec<Step> = Vec::new();
    for turn in 1.. {
        if turn > limits.max_steps {
            return (Ended::StepLimit, steps);
        }
        let before = conversation.usage;
        let started = Instant::now();
        let response = match send_with_retries(model, conversation, deadline).await {
            Ok(r) => r,
            Err(e) => return (Ended::ModelFailed(e), steps),
        };
        let model_ms = started.elapsed().as_millis() as u64;
        let t = match conversation.record(&response) {
            Ok(t) => t,
            Err(e) => return (Ended::ModelFailed(format!("the model's answer is not a turn: {e}")), steps),
        };
        let mut step = Step { turn, text: t.text.clone(), actions: Vec::new(), usage: delta(&conversation.usage, &before), model_ms, screenshots: Vec::new() };
        let over = if tokens(&conversation.usage) > limits.max_tokens {
            Some(Ended::TokenLimit)
        } else if prices.cost(&conversation.usage) > limits.max_cost_usd {
            Some(Ended::CostLimit)
        } else {
            None
        };
        if t.tool_uses.is_empty() {
            on_turn(&step);
            steps.push(step);
            let ended = match t.stop_reason.as_str() {
                "refusal" => Ended::Refused(t.text),
                // The service paused a long turn: send it again to go on.
                "pause_turn" => {
                    if let Some(o) = over {
                        return (o, steps);
                    }
                    continue;
                }
                "max_tokens" => Ended::ModelFailed("the model's turn was cut off at max_tokens before it acted or answered".into()),
                _ => over.unwrap_or(Ended::Answered(t.text)),
            };
            return (ended, steps);
        }
        let mut results = Vec::new();
        let last = t.tool_uses.len() - 1;
        for (i, used) in t.tool_uses.iter().enumerate() {
            let parsed = if used.name == "computer" { action::parse(&used.input, tool, &scale) } else { Err(format!("there is no tool `{}`; use `computer`", used.name)) };
            let outcome = match &parsed {
                Ok(a) => screen.act(a).await,
                Err(e) => Err(e.clone()),
            };
            let wants_picture = matches!(parsed, Ok(Action::Screenshot | Action::Zoom { .. })) || i == last;
            let (outcome, zoomed, target) = match outcome {
                Ok(done) => (Ok(done.text), done.zoomed_png_base64, done.target),
                Err(e) => (Err(e), None, None),
            };
            let picture = match zoomed {
                Some(z) => Some(z),
                None if wants_picture => match screen.screenshot().await {
                    Ok(png) => Some(png),
                    Err(e) => {
                        on_turn(&step);
                        steps.push(step);
                        return (Ended::ScreenFailed(format!("the screenshot failed: {e}")), steps);
                    }
                },
                None => None,
            };
            step.actions.push(Acted { input: used.input.clone(), outcome: outcome.as_ref().map(drop).map_err(Clone::clone), target });
            step.screenshots.extend(picture.clone());
            results.push(ToolResult { tool_use_id: used.id.clone(), outcome, screenshot_png_base64: picture });
        }
        on_turn(&step);
        steps.push(step);
        if let Some(o) = over {
            return (o, steps);
        }
        if let Err(e) = conversation.answer(results) {
            return (Ended::ModelFailed(e), steps);
        }
        conversation.prune_screenshots(KEEP_SCREENSHOTS, PRUNE_BATCH);
    }
    unreachable!("the loop returns")
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::super::model::ModelError;
    use super::super::models::COMPUTER_20250124;
    use super::super::screen::Scale;
    use super::*;

    /// A model that plays its turns in order and keeps every request it was sent.
    struct Scripted {
        turns: Mutex<Vec<Result<Value, ModelError>>>,
        seen: Mutex<Vec<Value>>,
    }

    impl Scripted {
        fn new(turns: Vec<Result<Value, ModelError>>) -> Scripted {
            Scripted { turns: Mutex::new(turns.into_iter().rev().collect()), seen: Mutex::new(Vec::new()) }
        }
    }

    impl ModelApi for Scripted {
        async fn send(&self, c: &Conversation) -> Result<Value, ModelError> {
            self.seen.lock().unwrap().push(c.request("m", 1024).unwrap());
            self.turns.lock().unwrap().pop().unwrap_or_else(|| Ok(act("tu_again", json!({"action": "screenshot"}))))
        }
    }

    /// A page that records what was done to it.
    #[derive(Default)]
    struct Page {
        done: Vec<Action>,
        shots: u32,
    }

    impl Screen for Page {
        async fn act(&mut self, a: &Action) -> Result<Done, String> {
            self.done.push(a.clone());
            Ok(Done::default())
        }
        async fn screenshot(&mut self) -> Result<String, String> {
            self.shots += 1;
            Ok(format!("shot{}", self.shots))
        }
    }

    fn turn(content: Value, stop: &str, input_tokens: u64) -> Value {
        json!({"content": content, "stop_reason": stop, "usage": {"input_tokens": input_tokens, "output_tokens": 100}})
    }

    fn act(id: &str, input: Value) -> Value {
        turn(json!([{"type": "tool_use", "id": id, "name": "computer", "input": input}]), "tool_use", 1000)
    }

    const LIMITS: Limits = Limits { max_steps: 10, max_tokens: 1_000_000, max_cost_usd: 10.0 };
    const PRICES: Prices = Prices { input: 3.0, output: 15.0, cache_write: 3.75, cache_read: 0.3 };

    async fn play(turns: Vec<Result<Value, ModelError>>, limits: Limits) -> (Ended, Vec<Step>, Page, Scripted) {
        play_until(turns, limits, std::time::Duration::from_secs(60)).await
    }

    async fn play_until(turns: Vec<Result<Value, ModelError>>, limits: Limits, time: std::time::Duration) -> (Ended, Vec<Step>, Page, Scripted) {
        let scale = Scale::for_viewport(1280, 800);
        let mut c = Conversation::new("find it", &COMPUTER_20250124, scale, &[]);
        let model = Scripted::new(turns);
        let mut page = Page::default();
        let deadline = tokio::time::Instant::now() + time;
        let (ended, steps) = run(&mut c, &model, &mut page, Budget { limits, prices: PRICES, deadline }).await;
        (ended, steps, page, model)
    }

    #[tokio::test]
    async fn the_model_acts_until_it_answers_and_each_turn_is_kept() {
        let (ended, steps, page, model) = play(
            vec![
                Ok(act("tu_1", json!({"action": "screenshot"}))),
                Ok(turn(
                    json!([
                        {"type": "text", "text": "Typing it."},
                        {"type": "tool_use", "id": "tu_2", "name": "computer", "input": {"action": "left_click", "coordinate": [10, 20]}},
                        {"type": "tool_use", "id": "tu_3", "name": "computer", "input": {"action": "type", "text": "abc"}}
                    ]),
                    "tool_use",
                    1000,
                )),
                Ok(turn(json!([{"type": "text", "text": "It costs 12 EUR."}]), "end_turn", 1000)),
            ],
            LIMITS,
        )
        .await;
        assert_eq!(ended, Ended::Answered("It costs 12 EUR.".into()));
        assert_eq!(steps.len(), 3);
        assert_eq!(page.done.len(), 3, "{:?}", page.done);
        // A batch's actions in order; the page is pictured after the last one only.
        assert_eq!(steps[1].actions.len(), 2);
        assert_eq!(steps[1].screenshots, vec!["shot2".to_string()]);
        assert_eq!((steps[1].text.as_str(), steps[1].usage.input_tokens), ("Typing it.", 1000));
        // The third request answered both tool uses, the picture with the last.
        let sent = model.seen.lock().unwrap();
        let answers = &sent[2]["messages"][4]["content"];
        assert_eq!(answers[0], json!({"type": "tool_result", "tool_use_id": "tu_2"}));
        assert_eq!(answers[1]["content"][0]["source"]["data"], "shot2");
    }

    #[tokio::test]
    async fn a_mistaken_action_is_answered_with_its_error_and_the_model_goes_on() {
        let (ended, steps, page, model) = play(
            vec![
                Ok(act("tu_1", json!({"action": "left_click", "coordinate": [5000, 20]}))),
                Ok(turn(json!([{"type": "tool_use", "id": "tu_2", "name": "browser", "input": {}}]), "tool_use", 10)),
                Ok(turn(json!([{"type": "text", "text": "done"}]), "end_turn", 10)),
            ],
            LIMITS,
        )
        .await;
        assert_eq!(ended, Ended::Answered("done".into()));
        assert!(page.done.is_empty());
        assert!(steps[0].actions[0].outcome.as_ref().unwrap_err().contains("outside the 1280x800 screenshot"));
        let sent = model.seen.lock().unwrap();
        assert_eq!(sent[1]["messages"][2]["content"][0]["is_error"], true);
        assert!(sent[2]["messages"][4]["content"][0]["content"][0]["text"].as_str().unwrap().contains("there is no tool `browser`"));
    }

    #[tokio::test]
    async fn each_budget_ends_the_job_at_the_turn_that_spends_it() {
        // A model that never stops.
        let (ended, steps, _, _) = play(Vec::new(), Limits { max_steps: 4, ..LIMITS }).await;
        assert_eq!((ended, steps.len()), (Ended::StepLimit, 4));
        // 1,100 tokens a turn: the third turn crosses 3,000.
        let (ended, steps, _, _) = play(Vec::new(), Limits { max_tokens: 3000, ..LIMITS }).await;
        assert_eq!((ended, steps.len()), (Ended::TokenLimit, 3));
        // $0.0045 a turn (1,000 in at $3, 100 out at $15 per million): the third crosses $0.01.
        let (ended, steps, _, _) = play(Vec::new(), Limits { max_cost_usd: 0.01, ..LIMITS }).await;
        assert_eq!((ended, steps.len()), (Ended::CostLimit, 3));
        assert!((PRICES.cost(&Usage { input_tokens: 1000, output_tokens: 100, ..Usage::default() }) - 0.0045).abs() < 1e-12);
    }

    #[tokio::test]
    async fn a_throttled_model_is_waited_for_and_a_refused_request_ends_the_job() {
        // (As long as the service's `retry-after` says.)
        let retry = |m: &str| Err(ModelError::Retryable { message: m.into(), wait: Some(std::time::Duration::from_millis(300)) });
        let (ended, _, _, model) = play(vec![retry("HTTP 529: overloaded"), retry("HTTP 429: slow down"), Ok(turn(json!([{"type": "text", "text": "ok"}]), "end_turn", 1))], LIMITS).await;
        assert_eq!(ended, Ended::Answered("ok".into()));
        assert_eq!(model.seen.lock().unwrap().len(), 3);
        let (ended, _, _, _) = play(vec![Err(ModelError::Fatal("HTTP 400: bad image".into()))], LIMITS).await;
        assert_eq!(ended, Ended::ModelFailed("the model refused the request: HTTP 400: bad image".into()));
        let (ended, _, _, _) = play(vec![Ok(turn(json!([{"type": "text", "text": "I cannot help with that."}]), "refusal", 1))], LIMITS).await;
        assert_eq!(ended, Ended::Refused("I cannot help with that.".into()));
        // Throttled past the job's time (1 s): ends with what it saw.
        let (ended, _, _, model) = play_until((0..20).map(|_| retry("HTTP 529: overloaded")).collect(), LIMITS, std::time::Duration::from_secs(1)).await;
        assert_eq!(model.seen.lock().unwrap().len(), 4, "tried at 0, 0.3, 0.6 and 0.9 s");
        let Ended::ModelFailed(e) = ended else { panic!("{ended:?}") };
        assert!(e.contains("did not answer in the job's time") && e.contains("529"), "{e}");
    }
}
