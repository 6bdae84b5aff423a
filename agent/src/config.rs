//! The agent's configuration, read from its environment and validated before anything starts.

use names::egress::EgressPolicy;
use names::env::agent as env;
use names::job;
use names::spec::{self, JobSpec};
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// What the agent opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Search { query: String, url: Url },
    Page { url: Url },
}

impl Target {
    pub fn url(&self) -> &Url {
        match self {
            Target::Search { url, .. } | Target::Page { url } => url,
        }
    }
}

/// A computer-use job's model as the manifest grants it, its endpoint a URL.
#[derive(Clone, Debug)]
pub struct Granted {
    pub endpoint: url::Url,
    pub prices: names::goal::Prices,
}

impl Granted {
    /// The grant of a manifest with a goal: there must be one, at a URL with a host.
    pub fn of(grant: Option<&names::manifest::ModelGrant>) -> Result<Granted, String> {
        let grant = grant.ok_or("a computer-use job's manifest must grant its model")?;
        let endpoint = url::Url::parse(&grant.endpoint).map_err(|e| format!("the model's endpoint `{}` is not a URL: {e}", grant.endpoint))?;
        if endpoint.host_str().is_none_or(str::is_empty) {
            return Err(format!("the model's endpoint `{}` has no host", grant.endpoint));
        }
        Ok(Granted { endpoint, prices: grant.prices })
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub task_id: String,
    /// The first navigation; none when the steps begin with a `goto`.
    pub target: Option<Target>,
    pub steps: Vec<names::step::Step>,
    /// A computer-use job's goal (its `start_url` is the first navigation).
    pub goal: Option<names::goal::Goal>,
    /// Its model, as the manifest grants it: checked once, when the manifest is read.
    pub model: Option<Granted>,
    pub options: job::JobOptions,
    pub egress: EgressPolicy,
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
    pub scratch: PathBuf,
}

impl Config {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.options.timeout_seconds.into())
    }
}

/// Default Chromium binary: Debian's real binary, not its `/usr/bin/chromium` shell wrapper.
pub const DEFAULT_CHROMIUM: &str = "/usr/lib/chromium/chromium";
pub const DEFAULT_CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The task id for log lines before the manifest is read.
pub fn task_id_hint(get: &dyn Fn(&str) -> Option<String>) -> String {
    get(env::TASK_ID).unwrap_or_default()
}

/// The part of the configuration the environment alone gives: known before any job, so a warm
/// slot starts its egress guard and browser with it while it waits.
#[derive(Clone, Debug)]
pub struct Runtime {
    pub egress: EgressPolicy,
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
    pub scratch: PathBuf,
}

/// The environment's part of the configuration, validated.
pub fn runtime_from_env(get: &dyn Fn(&str) -> Option<String>) -> Result<Runtime, String> {
    let allow = get(env::EGRESS_ALLOW).unwrap_or_default();
    if !allow.trim().is_empty() && get(env::ECS_METADATA).is_some() {
        // The allow-list opens private addresses for tests and local mode; in AWS nothing may.
        return Err(format!("{} is set, but this is an ECS task ({} is set): refused", env::EGRESS_ALLOW, env::ECS_METADATA));
    }
    let mut egress = EgressPolicy::parse(&allow).map_err(|e| format!("{}: {e}", env::EGRESS_ALLOW))?;
    if let Some(ports) = get(env::EGRESS_PORTS).filter(|p| !p.trim().is_empty()) {
        egress = egress.with_ports(&ports).map_err(|e| format!("{}: {e}", env::EGRESS_PORTS))?;
    }
    let path = |name: &str, default: &str| {
        PathBuf::from(
            get(name)
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| default.to_string()),
        )
    };
    Ok(Runtime {
        egress,
        chromium: path(env::CHROMIUM_PATH, DEFAULT_CHROMIUM),
        chromedriver: path(env::CHROMEDRIVER_PATH, DEFAULT_CHROMEDRIVER),
        scratch: get(env::SCRATCH_DIR)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir),
    })
}

/// The job of the manifest (`job`), checked by the API's rules, and the rest of the
/// configuration from the environment.
pub fn from_env(get: &dyn Fn(&str) -> Option<String>, job: &serde_json::Value) -> Result<Config, String> {
    let spec: JobSpec = serde_json::from_value(job.clone()).map_err(|e| format!("the manifest's job is not a valid job: {e}"))?;
    // The API's rules, once more: the agent never opens what the API would not have accepted.
    let valid = spec.validate().map_err(|e| e.message)?;
    let options = spec.options;
    let template = get(env::SEARCH_URL_TEMPLATE)
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| names::agent::DEFAULT_SEARCH_URL_TEMPLATE.to_string());
    let target = match valid {
        spec::ValidTarget::Query(query) => {
            let url = search_url(&template, &query)?;
            Some(Target::Search { query, url })
        }
        spec::ValidTarget::Url(url) => Some(Target::Page { url }),
        spec::ValidTarget::Steps => None,
        spec::ValidTarget::Goal => match spec.computer.as_ref().and_then(|g| g.start_url.as_deref()) {
            Some(u) => Some(Target::Page { url: names::job::rules::url_field("start_url", u).map_err(|e| e.message)? }),
            None => None,
        },
    };
    let Runtime { mut egress, chromium, chromedriver, scratch } = runtime_from_env(get)?;
    if let Some(goal) = &spec.computer {
        egress = egress.within_domains(&goal.allowed_domains);
    }
    Ok(Config {
        task_id: spec.task_id,
        target,
        steps: spec.steps,
        goal: spec.computer,
        model: None,
        options,
        egress,
        chromium,
        chromedriver,
        scratch,
    })
}

fn http_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s.trim()).map_err(|e| format!("`{s}` is not a URL: {e}"))?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        _ => Err(format!("`{s}` is not an http(s) URL")),
    }
}

/// Fills the template's `{query}` with the form-encoded query.
pub fn search_url(template: &str, query: &str) -> Result<Url, String> {
    if !template.contains(names::agent::QUERY_PLACEHOLDER) {
        return Err(format!(
            "{} has no {{query}} placeholder",
            env::SEARCH_URL_TEMPLATE
        ));
    }
    let encoded: String = url::form_urlencoded::byte_serialize(query.as_bytes()).collect();
    http_url(&template.replace(names::agent::QUERY_PLACEHOLDER, &encoded))
        .map_err(|e| format!("{}: {e}", env::SEARCH_URL_TEMPLATE))
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_goal_jobs_model_grant_is_checked_once_when_the_manifest_is_read() {
        let grant = |endpoint: &str| names::manifest::ModelGrant { endpoint: endpoint.into(), prices: names::goal::SONNET_4_5_PRICES };
        let ok = Granted::of(Some(&grant("https://bedrock-runtime.eu-west-1.amazonaws.com"))).unwrap();
        assert_eq!(ok.endpoint.host_str(), Some("bedrock-runtime.eu-west-1.amazonaws.com"));
        assert_eq!(Granted::of(None).unwrap_err(), "a computer-use job's manifest must grant its model");
        assert!(Granted::of(Some(&grant("bedrock"))).unwrap_err().starts_with("the model's endpoint `bedrock` is not a URL"));
        assert_eq!(Granted::of(Some(&grant("mailto:x@example.com"))).unwrap_err(), "the model's endpoint `mailto:x@example.com` has no host");
    }
    use super::*;
    use std::collections::BTreeMap;

    fn from(job: &str, pairs: &[(&str, &str)]) -> Result<Config, String> {
        let job: serde_json::Value = serde_json::from_str(job).unwrap_or(serde_json::Value::String(job.to_string()));
        from_env(&env_of(pairs), &job)
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn the_allow_list_is_refused_in_ecs_and_ports_are_read() {
        let job = r#"{"task_id":"t","url":"https://x.org"}"#;
        let e = from(job, &[(env::EGRESS_ALLOW, "10.0.0.1"), (env::ECS_METADATA, "http://169.254.170.2/v4/x")]).unwrap_err();
        assert!(e.contains("refused"), "{e}");
        assert!(from(job, &[(env::ECS_METADATA, "http://169.254.170.2/v4/x")]).is_ok());
        let c = from(job, &[(env::EGRESS_PORTS, "443")]).unwrap();
        assert!(c.egress.check("x.org", "1.1.1.1".parse().unwrap(), 80).is_err());
        assert!(from(job, &[(env::EGRESS_PORTS, "http")]).unwrap_err().contains(env::EGRESS_PORTS));
    }

    #[test]
    fn jobs_table() {
        let cases: &[(&str, Result<(), &str>)] = &[
            (r#"{"task_id":"t","query":"rust lang"}"#, Ok(())),
            (
                r#"{"task_id":"t","url":"https://example.com/a?b=c"}"#,
                Ok(()),
            ),
            (r#"{"task_id":"t"}"#, Err("`query`, `url` or `steps` is required")),
            (
                r#"{"task_id":"t","steps":[{"action":"goto","url":"https://x.org"},{"action":"click","selector":"a"}]}"#,
                Ok(()),
            ),
            (
                r#"{"task_id":"t","steps":[{"action":"click","selector":"a"}]}"#,
                Err("the first step must be a `goto`"),
            ),
            (
                r#"{"task_id":"t","query":"a","url":"https://x.org"}"#,
                Err("not both"),
            ),
            (
                r#"{"task_id":"t","query":"   "}"#,
                Err("`query` must not be empty"),
            ),
            (
                r#"{"task_id":"t","url":"file:///etc/passwd"}"#,
                Err("must be an http or https URL"),
            ),
            (
                r#"{"task_id":"t","url":"javascript:alert(1)"}"#,
                Err("must be an http or https URL"),
            ),
            (
                r#"{"task_id":"t","url":"https://user:pw@x.org/"}"#,
                Err("must not carry credentials"),
            ),
            (
                r#"{"task_id":"t","url":"https://x.org","options":{"timeout_seconds":5}}"#,
                Err("timeout_seconds"),
            ),
            (
                r#"{"task_id":"t","url":"https://x.org","options":{"viewport":{"width":100,"height":800}}}"#,
                Err("viewport.width"),
            ),
            (
                r#"{"task_id":"t","url":"https://x.org","extra":1}"#,
                Err("unknown field"),
            ),
            (r#"{"task_id":"","url":"https://x.org"}"#, Err("task_id")),
            ("not json", Err("not a valid job")),
        ];
        for (job, expected) in cases {
            let got = from(job, &[]);
            match (expected, got) {
                (Ok(()), Ok(_)) => {}
                (Err(want), Err(e)) => assert!(e.contains(want), "{job}: {e}"),
                (want, got) => panic!("{job}: expected {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn search_url_is_encoded_into_the_template() {
        let u = search_url("http://127.0.0.1:9/search?q={query}", "a b&c=d").unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:9/search?q=a+b%26c%3Dd");
        assert!(search_url("http://x/search", "a").is_err());
    }
}
