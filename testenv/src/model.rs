//! The stand-in model service of the computer-use tests (`testenv/py/model_server.py`): both wire
//! formats the agent speaks (Anthropic's Messages API, Bedrock's InvokeModel), a strict server's
//! checks, and a policy that reads the screenshots it is sent by OCR (`tesseract`). With an
//! emulator to ask, Bedrock keys are authorized as Bedrock does (the emulator's IAM).

use std::path::Path;

use crate::pyserver::PyServer;

pub struct ModelServer {
    pub server: PyServer,
    /// The API key it takes (`x-api-key`).
    pub key: String,
}

/// The model ids the stand-in serves under each provider, as a deployment lists them.
pub const ANTHROPIC_MODEL: &str = "claude-sonnet-4-5";

impl ModelServer {
    /// Plays `scenario` (`sign-in`, `never-stops`, `gives-up`), answering the first `throttle`
    /// requests 529.
    pub fn start(root: &Path, scenario: &str, throttle: u32) -> Result<ModelServer, String> {
        ModelServer::start_with(root, scenario, throttle, None)
    }

    /// As [`ModelServer::start`]; Bedrock keys authorized by the emulator at `emulator` when given.
    pub fn start_with(root: &Path, scenario: &str, throttle: u32, emulator: Option<&str>) -> Result<ModelServer, String> {
        let key = format!("sk-stand-in-{}", std::process::id());
        let mut args = vec!["--key".to_owned(), key.clone(), "--scenario".into(), scenario.into(), "--throttle".into(), throttle.to_string()];
        if let Some(e) = emulator {
            args.extend(["--authorize".to_owned(), e.to_owned()]);
        }
        let server = PyServer::start(root, "model_server.py", &args, "the stand-in model service (is tesseract installed? scripts/system-packages.sh)")?;
        Ok(ModelServer { server, key })
    }

    /// `127.0.0.1:<port>`, for an egress allow-list.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.server.port)
    }

    /// A deployment's computer-use settings with this service as both providers: the default
    /// Bedrock model and [`ANTHROPIC_MODEL`] at Sonnet 4.5's prices, the default limits.
    pub fn settings(&self) -> names::goal::Settings {
        settings(Some(&self.server.url("")))
    }
}

/// The settings of [`ModelServer::settings`], at `endpoint` (none: the services' own).
pub fn settings(endpoint: Option<&str>) -> names::goal::Settings {
    use names::goal;
    let prices = goal::SONNET_4_5_PRICES;
    goal::Settings {
        models: [(goal::DEFAULT_BEDROCK_MODEL.to_owned(), prices), (format!("anthropic/{ANTHROPIC_MODEL}"), prices)].into(),
        default_model: goal::DEFAULT_BEDROCK_MODEL.to_owned(),
        endpoints: endpoint.map(|e| [("bedrock".to_owned(), e.to_owned()), ("anthropic".to_owned(), e.to_owned())].into()).unwrap_or_default(),
        ..goal::Settings::default()
    }
}
