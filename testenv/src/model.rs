//! The stand-in model service of the computer-use tests (`testenv/py/model_server.py`): both wire
//! formats the agent speaks (Anthropic's Messages API, Bedrock's InvokeModel), a strict server's
//! checks, and a policy that reads the screenshots it is sent by OCR (`tesseract`).

use std::path::Path;

use crate::pyserver::PyServer;

pub struct ModelServer {
    pub server: PyServer,
    /// The API key it takes (`x-api-key`).
    pub key: String,
}

impl ModelServer {
    /// Plays `scenario` (`sign-in`, `never-stops`, `gives-up`), answering the first `throttle`
    /// requests 529.
    pub fn start(root: &Path, scenario: &str, throttle: u32) -> Result<ModelServer, String> {
        let key = format!("sk-stand-in-{}", std::process::id());
        let args = ["--key", &key, "--scenario", scenario, "--throttle", &throttle.to_string()].map(String::from);
        let server = PyServer::start(root, "model_server.py", &args, "the stand-in model service (is tesseract installed? scripts/system-packages.sh)")?;
        Ok(ModelServer { server, key })
    }
}
