//! Which computer-use tool each model takes: one table, which the API reads to refuse a model no
//! tool is known for and the agent's request builder reads to declare it. A model the table does
//! not name is refused with the names it does (a new model is a line here).

/// A version of Anthropic's `computer` tool: its `type`, the beta its requests must name (the
/// `anthropic-beta` header, or Bedrock's `anthropic_beta` body list), and whether it has the
/// `zoom` action (enabled with `enable_zoom`).
#[derive(Debug, PartialEq, Eq)]
pub struct ToolVersion {
    pub tool_type: &'static str,
    pub beta: &'static str,
    pub zoom: bool,
}

pub const COMPUTER_20250124: ToolVersion = ToolVersion { tool_type: "computer_20250124", beta: "computer-use-2025-01-24", zoom: false };
pub const COMPUTER_20251124: ToolVersion = ToolVersion { tool_type: "computer_20251124", beta: "computer-use-2025-11-24", zoom: true };

/// Model families (a model id without its provider prefix, date and version) and their tool, as
/// Anthropic's documentation lists them.
const MODELS: &[(&str, &ToolVersion)] = &[
    ("claude-opus-4-7", &COMPUTER_20251124),
    ("claude-opus-4-6", &COMPUTER_20251124),
    ("claude-sonnet-4-6", &COMPUTER_20251124),
    ("claude-opus-4-5", &COMPUTER_20251124),
    ("claude-sonnet-4-5", &COMPUTER_20250124),
    ("claude-haiku-4-5", &COMPUTER_20250124),
    ("claude-opus-4-1", &COMPUTER_20250124),
    ("claude-sonnet-4", &COMPUTER_20250124),
    ("claude-opus-4", &COMPUTER_20250124),
];

/// A model id's family, as Anthropic or Bedrock spell the id: `claude-sonnet-4-5-20250929`,
/// `anthropic.claude-sonnet-4-5-20250929-v1:0` and `us.anthropic.claude-sonnet-4-5-20250929-v1:0`
/// are all `claude-sonnet-4-5`.
pub fn family(model: &str) -> &str {
    let mut id = model.rsplit_once("anthropic.").map_or(model, |(_, rest)| rest);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some((head, version)) = id.rsplit_once("-v") {
        if version.split(':').all(digits) {
            id = head;
        }
    }
    if let Some((head, date)) = id.rsplit_once('-') {
        if date.len() == 8 && digits(date) {
            id = head;
        }
    }
    id
}

/// The tool version `model` takes.
pub fn tool_for(model: &str) -> Result<&'static ToolVersion, String> {
    let f = family(model);
    MODELS.iter().find(|(family, _)| *family == f).map(|(_, tool)| *tool).ok_or_else(|| {
        let known: Vec<&str> = MODELS.iter().map(|(f, _)| *f).collect();
        format!("model `{model}` has no computer-use tool this release knows (model families: {})", known.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_is_known_by_its_family_however_its_provider_spells_it() {
        for (id, family_of) in [
            ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
            ("anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
            ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
            ("anthropic.claude-opus-4-6-v1", "claude-opus-4-6"),
            ("claude-opus-4-20250514", "claude-opus-4"),
            ("claude-opus-4-1-20250805", "claude-opus-4-1"),
            ("claude-sonnet-4-6", "claude-sonnet-4-6"),
        ] {
            assert_eq!(family(id), family_of, "{id}");
        }
    }

    #[test]
    fn each_model_takes_its_tool_and_an_unknown_one_is_refused_with_the_known_ones() {
        assert_eq!(tool_for("claude-opus-4-6").unwrap(), &COMPUTER_20251124);
        assert_eq!(tool_for("global.anthropic.claude-opus-4-5-20251101-v1:0").unwrap(), &COMPUTER_20251124);
        assert_eq!(tool_for("claude-sonnet-4-5-20250929").unwrap(), &COMPUTER_20250124);
        assert_eq!(tool_for("claude-opus-4-20250514").unwrap(), &COMPUTER_20250124);
        // A later minor version is not its major's: refused, not guessed.
        let e = tool_for("claude-opus-4-9").unwrap_err();
        assert!(e.contains("`claude-opus-4-9`") && e.contains("claude-opus-4-6"), "{e}");
        assert!(tool_for("gpt-5").is_err());
    }
}
