//! Computer-use jobs: a goal in words, and a model that looks at the page and decides each
//! action (the agent's `computer` module runs the loop). What such a job may ask, as the API
//! accepts it, the table stores it and the agent receives it, and the rules both apply.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::job::{rules, SpecError};

/// The longest goal.
pub const GOAL_MAX_CHARS: usize = 4000;
/// Most domains `allowed_domains` may list, and most secrets a job may name.
pub const MAX_ALLOWED_DOMAINS: usize = 20;
pub const MAX_SECRETS: usize = 20;
/// The largest `output_schema`, as JSON.
pub const OUTPUT_SCHEMA_MAX_BYTES: usize = 16 * 1024;
pub const MODEL_ID_MAX_CHARS: usize = 128;
/// Most models a deployment may allow, and the longest endpoint URL: the settings travel in the
/// functions' environment, which Lambda caps at 4 KB in all.
pub const MAX_MODELS: usize = 8;
pub const ENDPOINT_MAX_CHARS: usize = 200;
/// What the limits may be at all; a deployment's ceilings (`computer_use`) are within these.
pub const STEPS: std::ops::RangeInclusive<u32> = 1..=500;
pub const TOKENS: std::ops::RangeInclusive<u64> = 1_000..=100_000_000;
pub const COST_USD: std::ops::RangeInclusive<f64> = 0.001..=1000.0;
/// Where a job's turn screenshots go, below its prefix: `files/turn-001.png` and on.
pub const TURN_FILE_PREFIX: &str = "turn-";
/// The largest turn screenshot (a PNG of at most 1568 px a side).
pub const TURN_FILE_MAX_BYTES: u64 = 8 * 1024 * 1024;
/// The name, in a job's secrets object, of the Bedrock API key the process function minted for
/// it: not a tenant secret's name (those start with a letter or digit), so none can shadow it.
pub const BEDROCK_KEY_SECRET: &str = "-bedrock-api-key";

spelled_enum! {
    /// Who serves the model: Amazon Bedrock in the deployment's account (a short-term key the
    /// process function mints per job), or Anthropic's API with the tenant's own key.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Provider {
        Bedrock = "bedrock",
        Anthropic = "anthropic",
    }
}

/// The model a job asks for, from those its deployment allows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelChoice {
    pub provider: Provider,
    /// The provider's model id (`claude-sonnet-4-5`; on Bedrock an inference profile such as
    /// `us.anthropic.claude-sonnet-4-5-20250929-v1:0`).
    #[schema(max_length = 128)]
    pub id: String,
    /// With `anthropic`: the tenant secret that holds its API key (never shown to the model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub api_key_secret: Option<String>,
}

impl ModelChoice {
    /// `provider/id`, as the deployment's table of models names it.
    pub fn key(&self) -> String {
        format!("{}/{}", self.provider, self.id)
    }
}

/// US dollars, compared by value (a limit or a price).
#[derive(Clone, Copy, Debug, Default, PartialOrd, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Usd(pub f64);

impl PartialEq for Usd {
    fn eq(&self, other: &Usd) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}
impl Eq for Usd {}

/// What the job may spend; the model's turn that crosses one ends it (`STEP_LIMIT`,
/// `TOKEN_LIMIT`, `COST_LIMIT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Model turns.
    #[schema(minimum = 1, maximum = 500)]
    pub max_steps: u32,
    /// Input (cache writes and reads included) and output tokens together.
    pub max_tokens: u64,
    /// The model's estimated cost, at the deployment's prices.
    #[schema(value_type = f64)]
    pub max_cost_usd: Usd,
}

/// A computer-use job. Serialized flat, as a submit body carries it (`goal`, `start_url`, ...);
/// stored with its model and limits resolved from the deployment's defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Goal {
    /// What to do, in words.
    #[schema(min_length = 1, max_length = 4000)]
    pub goal: String,
    /// The page the browser shows first (else a blank page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = Uri, nullable = false)]
    pub start_url: Option<String>,
    /// The only domains (each with its subdomains) the browser may reach in this job.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 20)]
    pub allowed_domains: Vec<String>,
    /// Tenant secrets the model may type by name (`{{secret:NAME}}`); it never sees their values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 20)]
    pub secrets: Vec<String>,
    /// A JSON Schema the final answer must satisfy (else the job ends `ANSWER_INVALID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>, nullable = false)]
    pub output_schema: Option<Value>,
    pub model: ModelChoice,
    pub limits: Limits,
}

impl Goal {
    /// The tenant secrets the job reads: those the model may type and the model's API key.
    pub fn secret_names(&self) -> impl Iterator<Item = &str> {
        self.secrets.iter().map(String::as_str).chain(self.model.api_key_secret.as_deref())
    }

    /// Whether `host` is one the job may reach (every host when `allowed_domains` is empty).
    pub fn allows(&self, host: &str) -> bool {
        allows(&self.allowed_domains, host)
    }

    /// The rules, each naming its field.
    pub fn check(&self) -> Result<(), SpecError> {
        let g = self.goal.trim();
        if g.is_empty() {
            return Err(SpecError::new("goal", "`goal` must not be empty"));
        }
        if self.goal.chars().count() > GOAL_MAX_CHARS {
            return Err(SpecError::new("goal", format!("`goal` must be at most {GOAL_MAX_CHARS} characters")));
        }
        if self.goal.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            return Err(SpecError::new("goal", "`goal` must not contain control characters other than newlines and tabs"));
        }
        if self.allowed_domains.len() > MAX_ALLOWED_DOMAINS {
            return Err(SpecError::new("allowed_domains", format!("`allowed_domains` may list at most {MAX_ALLOWED_DOMAINS} domains")));
        }
        for (i, d) in self.allowed_domains.iter().enumerate() {
            domain(&format!("allowed_domains[{i}]"), d)?;
        }
        if let Some(u) = &self.start_url {
            let url = rules::url_field("start_url", u)?;
            let host = url.host_str().unwrap_or_default();
            if !self.allows(host) {
                return Err(SpecError::new("start_url", format!("`start_url`'s host `{host}` is not within `allowed_domains`")));
            }
        }
        if self.secrets.len() > MAX_SECRETS {
            return Err(SpecError::new("secrets", format!("`secrets` may name at most {MAX_SECRETS} secrets")));
        }
        for (i, s) in self.secrets.iter().enumerate() {
            secret_name(&format!("secrets[{i}]"), s)?;
            if self.secrets[..i].contains(s) {
                return Err(SpecError::new(&format!("secrets[{i}]"), format!("`secrets` names `{s}` twice")));
            }
        }
        if let Some(schema) = &self.output_schema {
            if !schema.is_object() {
                return Err(SpecError::new("output_schema", "`output_schema` must be a JSON Schema object"));
            }
            if schema.to_string().len() > OUTPUT_SCHEMA_MAX_BYTES {
                return Err(SpecError::new("output_schema", format!("`output_schema` must be at most {OUTPUT_SCHEMA_MAX_BYTES} bytes as JSON")));
            }
        }
        let m = &self.model;
        let id_ok = !m.id.is_empty()
            && m.id.chars().count() <= MODEL_ID_MAX_CHARS
            && m.id.chars().all(|c| c.is_ascii_alphanumeric() || "._:-/".contains(c));
        if !id_ok {
            return Err(SpecError::new("model.id", format!("`model.id` must be 1 to {MODEL_ID_MAX_CHARS} letters, digits and `._:-/`")));
        }
        match (m.provider, &m.api_key_secret) {
            (Provider::Anthropic, None) => {
                return Err(SpecError::new("model.api_key_secret", "`model.api_key_secret` is required with `anthropic`: the tenant secret that holds the API key"));
            }
            (Provider::Anthropic, Some(k)) => {
                secret_name("model.api_key_secret", k)?;
                if self.secrets.contains(k) {
                    return Err(SpecError::new("secrets", format!("`secrets` names `{k}`, the model's API key: the model may not type it")));
                }
            }
            (Provider::Bedrock, Some(_)) => {
                return Err(SpecError::new("model.api_key_secret", "`model.api_key_secret` is for `anthropic` only: Bedrock is called with a key minted for the job"));
            }
            (Provider::Bedrock, None) => {}
        }
        let l = &self.limits;
        if !STEPS.contains(&l.max_steps) {
            return Err(SpecError::new("limits.max_steps", format!("`limits.max_steps` must be between {} and {}", STEPS.start(), STEPS.end())));
        }
        if !TOKENS.contains(&l.max_tokens) {
            return Err(SpecError::new("limits.max_tokens", format!("`limits.max_tokens` must be between {} and {}", TOKENS.start(), TOKENS.end())));
        }
        if !COST_USD.contains(&l.max_cost_usd.0) {
            return Err(SpecError::new("limits.max_cost_usd", format!("`limits.max_cost_usd` must be between {} and {}", COST_USD.start(), COST_USD.end())));
        }
        Ok(())
    }

    /// The upload of each turn's screenshot: `files/turn-001.png` to the last turn's.
    pub fn files(&self) -> impl Iterator<Item = crate::step::StepFile> {
        (1..=self.limits.max_steps).map(|turn| crate::step::StepFile {
            path: format!("{}{}.png", crate::step::FILES_DIR, turn_file(turn)),
            content_type: "image/png",
            max_bytes: TURN_FILE_MAX_BYTES,
        })
    }
}

/// A model's prices, US dollars per million tokens: what a job's estimated model cost (and its
/// `max_cost_usd`) is counted at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    pub input: Usd,
    pub output: Usd,
    pub cache_write: Usd,
    pub cache_read: Usd,
}

/// What a job asks of the limits: each one it gives, the deployment's default for the others,
/// none above the deployment's ceiling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AskedLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 500, nullable = false)]
    pub max_steps: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub max_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>, nullable = false)]
    pub max_cost_usd: Option<Usd>,
}

/// The limits a job gets when it asks for none, and the most it may ask for, when the
/// deployment sets neither (Terraform variable `computer_use_limits`).
pub const DEFAULT_LIMITS: Limits = Limits { max_steps: 30, max_tokens: 1_000_000, max_cost_usd: Usd(5.0) };
pub const MAX_LIMITS: Limits = Limits { max_steps: 200, max_tokens: 10_000_000, max_cost_usd: Usd(50.0) };

/// A deployment's computer-use settings (`COMPUTER_USE` of the submit and process functions,
/// from the Terraform variables `computer_use_models`, `computer_use_default_model` and
/// `computer_use_limits`). No models: computer-use jobs are refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The models jobs may use, by `provider/id`, with their prices.
    pub models: std::collections::BTreeMap<String, Prices>,
    /// `provider/id` of the model a job that names none gets ("" for none: jobs must name one).
    #[serde(default)]
    pub default_model: String,
    pub default_limits: Limits,
    pub max_limits: Limits,
    /// Base URLs by provider over the services' own (the local stack's stand-in model).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub endpoints: std::collections::BTreeMap<String, String>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings { models: Default::default(), default_model: String::new(), default_limits: DEFAULT_LIMITS, max_limits: MAX_LIMITS, endpoints: Default::default() }
    }
}

impl Settings {
    /// The model and limits a job gets: its own within the deployment's, the defaults for the
    /// rest.
    pub fn resolve(&self, model: Option<ModelChoice>, asked: AskedLimits) -> Result<(ModelChoice, Limits, Prices), SpecError> {
        if self.models.is_empty() {
            return Err(SpecError::new("goal", "computer-use jobs are not enabled in this deployment (Terraform variable `computer_use_models` lists no model)"));
        }
        let model = match model {
            Some(m) => m,
            None => {
                let (provider, id) = self.default_model.split_once('/').and_then(|(p, id)| Some((Provider::parse(p)?, id))).ok_or_else(|| {
                    SpecError::new("model", "`model` is required: this deployment has no default model")
                })?;
                ModelChoice { provider, id: id.to_owned(), api_key_secret: None }
            }
        };
        crate::tools::tool_for(&model.id).map_err(|e| SpecError::new("model", e))?;
        let prices = *self.models.get(&model.key()).ok_or_else(|| {
            let allowed: Vec<&str> = self.models.keys().map(String::as_str).collect();
            SpecError::new("model", format!("model `{}` is not one this deployment allows ({})", model.key(), allowed.join(", ")))
        })?;
        let max = &self.max_limits;
        let over = |field: &str, ceiling: String| SpecError::new(field, format!("`{field}` must be at most {ceiling}, this deployment's ceiling"));
        let limits = Limits {
            max_steps: match asked.max_steps {
                Some(v) if v > max.max_steps => return Err(over("limits.max_steps", max.max_steps.to_string())),
                Some(v) => v,
                None => self.default_limits.max_steps.min(max.max_steps),
            },
            max_tokens: match asked.max_tokens {
                Some(v) if v > max.max_tokens => return Err(over("limits.max_tokens", max.max_tokens.to_string())),
                Some(v) => v,
                None => self.default_limits.max_tokens.min(max.max_tokens),
            },
            max_cost_usd: match asked.max_cost_usd {
                Some(v) if v.0 > max.max_cost_usd.0 => return Err(over("limits.max_cost_usd", max.max_cost_usd.0.to_string())),
                Some(v) => v,
                None => Usd(self.default_limits.max_cost_usd.0.min(max.max_cost_usd.0)),
            },
        };
        Ok((model, limits, prices))
    }

    /// Where `provider` is reached from `region`.
    pub fn endpoint(&self, provider: Provider, region: &str) -> String {
        if let Some(e) = self.endpoints.get(provider.as_str()) {
            return e.clone();
        }
        match provider {
            Provider::Bedrock => format!("https://bedrock-runtime.{region}.amazonaws.com"),
            Provider::Anthropic => "https://api.anthropic.com".to_owned(),
        }
    }
}

/// The role whose sessions mint computer-use jobs' Bedrock keys (`<prefix>-model-access`).
pub fn model_role_name(prefix: &str) -> String {
    format!("{prefix}-model-access")
}

/// The Bedrock model the deployment allows by default, and its prices (Claude Sonnet 4.5 through
/// the US cross-region inference profile; US dollars per million tokens, as of 2026-12).
pub const DEFAULT_BEDROCK_MODEL: &str = "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0";
pub const SONNET_4_5_PRICES: Prices = Prices { input: Usd(3.0), output: Usd(15.0), cache_write: Usd(3.75), cache_read: Usd(0.3) };

/// The name of turn `turn`'s screenshot (`turn-007`), below `files/`.
pub fn turn_file(turn: u32) -> String {
    format!("{TURN_FILE_PREFIX}{turn:03}")
}

/// Whether `host` is `domains`' own or a subdomain of one (every host when there are none).
pub fn allows(domains: &[String], host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    domains.is_empty() || domains.iter().any(|d| host == *d || host.strip_suffix(d.as_str()).is_some_and(|rest| rest.ends_with('.')))
}

/// A domain: lowercase DNS labels (ASCII; punycode for others), at least two, no port or scheme.
fn domain(field: &str, d: &str) -> Result<(), SpecError> {
    let label_ok = |l: &str| {
        !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-') && l.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    let labels: Vec<&str> = d.split('.').collect();
    if d.len() > 253 || labels.len() < 2 || !labels.iter().all(|l| label_ok(l)) {
        return Err(SpecError::new(field, format!("`{field}` must be a domain name such as `example.com` (lowercase, no scheme, port or wildcard; it covers its subdomains)")));
    }
    Ok(())
}

fn secret_name(field: &str, v: &str) -> Result<(), SpecError> {
    crate::step::name(0, "", v).map_err(|_| {
        SpecError::new(field, format!("`{field}` must be 1 to {} letters, digits, `-` and `_`, starting with a letter or digit", crate::step::NAME_MAX_CHARS))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn goal(v: Value) -> Result<(), String> {
        let mut base = json!({
            "goal": "Find the price", "model": {"provider": "bedrock", "id": "us.anthropic.claude-sonnet-4-5-20250929-v1:0"},
            "limits": {"max_steps": 30, "max_tokens": 500000, "max_cost_usd": 2.0}
        });
        for (k, val) in v.as_object().unwrap() {
            base[k] = val.clone();
        }
        let g: Goal = serde_json::from_value(base).map_err(|e| e.to_string())?;
        g.check().map_err(|e| format!("{}: {}", e.field, e.message))
    }

    #[test]
    fn each_rule_names_its_field() {
        assert_eq!(goal(json!({})), Ok(()));
        let cases = [
            (json!({"goal": "  "}), "goal: `goal` must not be empty"),
            (json!({"goal": "a\u{7}b"}), "goal: "),
            (json!({"goal": "x".repeat(4001)}), "goal: `goal` must be at most 4000"),
            (json!({"start_url": "ftp://x.org"}), "start_url: "),
            (json!({"allowed_domains": ["Example.com"]}), "allowed_domains[0]: "),
            (json!({"allowed_domains": ["example.com:443"]}), "allowed_domains[0]: "),
            (json!({"allowed_domains": ["*.example.com"]}), "allowed_domains[0]: "),
            (json!({"allowed_domains": ["com"]}), "allowed_domains[0]: "),
            (json!({"allowed_domains": ["example.com"], "start_url": "https://evil.org/"}), "start_url: `start_url`'s host `evil.org` is not within"),
            (json!({"secrets": ["pw", "pw"]}), "secrets[1]: "),
            (json!({"secrets": ["../x"]}), "secrets[0]: "),
            (json!({"output_schema": [1]}), "output_schema: "),
            (json!({"model": {"provider": "anthropic", "id": "claude-sonnet-4-5"}}), "model.api_key_secret: `model.api_key_secret` is required"),
            (json!({"model": {"provider": "bedrock", "id": "m", "api_key_secret": "k"}}), "model.api_key_secret: "),
            (json!({"model": {"provider": "anthropic", "id": "m", "api_key_secret": "k"}, "secrets": ["k"]}), "secrets: `secrets` names `k`, the model's API key"),
            (json!({"model": {"provider": "bedrock", "id": "m m"}}), "model.id: "),
            (json!({"limits": {"max_steps": 0, "max_tokens": 500000, "max_cost_usd": 2.0}}), "limits.max_steps: "),
            (json!({"limits": {"max_steps": 5, "max_tokens": 10, "max_cost_usd": 2.0}}), "limits.max_tokens: "),
            (json!({"limits": {"max_steps": 5, "max_tokens": 5000, "max_cost_usd": 5000.0}}), "limits.max_cost_usd: "),
        ];
        for (v, want) in cases {
            let got = goal(v.clone()).unwrap_err();
            assert!(got.starts_with(want), "{v}: {got}");
        }
        assert_eq!(goal(json!({"allowed_domains": ["example.com"], "start_url": "https://shop.example.com/a"})), Ok(()));
    }

    #[test]
    fn a_job_gets_an_allowed_model_with_a_known_tool_and_limits_within_the_ceilings() {
        let settings = Settings {
            models: [(DEFAULT_BEDROCK_MODEL.to_owned(), SONNET_4_5_PRICES), ("anthropic/claude-next-1".to_owned(), SONNET_4_5_PRICES)].into(),
            default_model: DEFAULT_BEDROCK_MODEL.to_owned(),
            ..Settings::default()
        };
        let (m, l, p) = settings.resolve(None, AskedLimits { max_steps: Some(7), ..AskedLimits::default() }).unwrap();
        assert_eq!((m.key().as_str(), l.max_steps, l.max_tokens, p), (DEFAULT_BEDROCK_MODEL, 7, DEFAULT_LIMITS.max_tokens, SONNET_4_5_PRICES));
        let err = |model: Option<ModelChoice>, asked: AskedLimits| settings.resolve(model, asked).unwrap_err();
        let anthropic = |id: &str| Some(ModelChoice { provider: Provider::Anthropic, id: id.into(), api_key_secret: Some("k".into()) });
        // Allowed by the deployment, but no tool version is known for it: refused, not guessed.
        let e = err(anthropic("claude-next-1"), AskedLimits::default());
        assert!(e.field == "model" && e.message.contains("no computer-use tool"), "{e:?}");
        let e = err(anthropic("claude-opus-4-6"), AskedLimits::default());
        assert!(e.field == "model" && e.message.contains("not one this deployment allows"), "{e:?}");
        let e = err(None, AskedLimits { max_cost_usd: Some(Usd(MAX_LIMITS.max_cost_usd.0 + 1.0)), ..AskedLimits::default() });
        assert_eq!(e.field, "limits.max_cost_usd");
        let off = Settings::default().resolve(None, AskedLimits::default()).unwrap_err();
        assert!(off.message.contains("not enabled"), "{off:?}");
    }

    #[test]
    fn a_domain_covers_its_subdomains_and_nothing_else() {
        let d = vec!["example.com".to_string()];
        assert!(allows(&d, "example.com") && allows(&d, "a.b.example.com") && allows(&d, "EXAMPLE.com."));
        assert!(!allows(&d, "badexample.com") && !allows(&d, "example.com.evil.org") && !allows(&d, "com"));
        assert!(allows(&[], "anything.org"));
    }
}
