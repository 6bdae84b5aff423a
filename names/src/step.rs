//! The steps of a scripted job: what each may ask and the rules the API and the agent both apply
//! (the API when a job is submitted, the agent again before it starts one).

use serde::{Deserialize, Serialize};

use crate::job::{rules, SpecError};

/// Most steps a job may carry.
pub const MAX_STEPS: usize = 50;
/// The longest CSS selector.
pub const SELECTOR_MAX_CHARS: usize = 1024;
/// The longest text a `type`, `wait_for` or `assert` step may carry.
pub const TEXT_MAX_CHARS: usize = 4096;
/// A `wait_for` step's own timeout, in milliseconds, and its default.
pub const WAIT_TIMEOUT_MS: std::ops::RangeInclusive<u32> = 100..=60_000;
pub const DEFAULT_WAIT_TIMEOUT_MS: u32 = 10_000;
/// How long any other step may take before it fails with `STEP_TIMEOUT`.
pub const STEP_CAP_MS: u32 = 20_000;
/// Names of files (`after-login` -> `files/after-login.png`), extracted values and secrets.
pub const NAME_MAX_CHARS: usize = 64;

/// The keys a `press` step may send (WebDriver's names for them), plus any single printable
/// character.
pub const KEYS: &[&str] = &[
    "Enter", "Tab", "Escape", "Backspace", "Delete", "Space", "ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "Home", "End",
    "PageUp", "PageDown",
];

/// One step. Serialized as `{"action": "<name>", ...fields}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Navigate (the egress guard applies to it, every redirect and subresource).
    Goto { url: String },
    /// Click the first element the selector matches.
    Click { selector: String },
    /// Type `text`, or the value of the tenant secret `secret`, into the element.
    Type {
        selector: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
    },
    /// Send a key to the focused element.
    Press { key: String },
    /// Choose the option with this value of a `<select>`.
    Select { selector: String, value: String },
    /// Wait until a selector is visible, a text is in the page, or the URL contains a string.
    WaitFor {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        selector: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u32>,
    },
    /// Scroll to the bottom (in steps, so lazy content loads) or to an element.
    Scroll {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<ScrollTo>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        selector: Option<String>,
    },
    /// A named PNG of the viewport, the full page or one element.
    Screenshot {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        full_page: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        selector: Option<String>,
    },
    /// A named value of `result.json`: the text (or `attribute`) of the first match, or of all.
    Extract {
        name: String,
        selector: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attribute: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        all: Option<bool>,
    },
    /// The page printed to a named PDF.
    Pdf { name: String },
    /// Fail the job unless an element or a text is present.
    Assert {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        selector: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
}

/// What JSON a step field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    String,
    Bool,
    /// A whole number from 0.
    Count,
}

impl Kind {
    /// For messages: "a string", ...
    pub fn expected(self) -> &'static str {
        match self {
            Kind::String => "a string",
            Kind::Bool => "true or false",
            Kind::Count => "a whole number",
        }
    }
}

use Kind::{Bool, Count, String as Str};

/// Every action and the fields it takes besides `action`, with their kinds (the API names
/// unknown fields and fields of the wrong kind by path).
pub const ACTIONS: &[(&str, &[(&str, Kind)])] = &[
    ("goto", &[("url", Str)]),
    ("click", &[("selector", Str)]),
    ("type", &[("selector", Str), ("text", Str), ("secret", Str)]),
    ("press", &[("key", Str)]),
    ("select", &[("selector", Str), ("value", Str)]),
    ("wait_for", &[("selector", Str), ("text", Str), ("url", Str), ("timeout_ms", Count)]),
    ("scroll", &[("to", Str), ("selector", Str)]),
    ("screenshot", &[("name", Str), ("full_page", Bool), ("selector", Str)]),
    ("extract", &[("name", Str), ("selector", Str), ("attribute", Str), ("all", Bool)]),
    ("pdf", &[("name", Str)]),
    ("assert", &[("selector", Str), ("text", Str)]),
];

/// The fields of `action`, if it is one.
pub fn fields(action: &str) -> Option<&'static [(&'static str, Kind)]> {
    ACTIONS.iter().find(|(a, _)| *a == action).map(|(_, f)| *f)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScrollTo {
    Bottom,
}

/// A file a job's steps produce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepFile {
    /// Below the job's prefix: `files/<name>.png`.
    pub path: String,
    pub content_type: &'static str,
    pub max_bytes: u64,
}

/// Where a job's named files live below its prefix.
pub const FILES_DIR: &str = "files/";
const MIB: u64 = 1024 * 1024;

impl Step {
    pub fn action(&self) -> &'static str {
        match self {
            Step::Goto { .. } => "goto",
            Step::Click { .. } => "click",
            Step::Type { .. } => "type",
            Step::Press { .. } => "press",
            Step::Select { .. } => "select",
            Step::WaitFor { .. } => "wait_for",
            Step::Scroll { .. } => "scroll",
            Step::Screenshot { .. } => "screenshot",
            Step::Extract { .. } => "extract",
            Step::Pdf { .. } => "pdf",
            Step::Assert { .. } => "assert",
        }
    }

    /// The file the step writes, if any.
    pub fn file(&self) -> Option<StepFile> {
        match self {
            Step::Screenshot { name, .. } => Some(StepFile { path: format!("{FILES_DIR}{name}.png"), content_type: "image/png", max_bytes: 40 * MIB }),
            Step::Pdf { name } => Some(StepFile { path: format!("{FILES_DIR}{name}.pdf"), content_type: "application/pdf", max_bytes: 50 * MIB }),
            _ => None,
        }
    }

    /// The tenant secret the step types, if any.
    pub fn secret(&self) -> Option<&str> {
        match self {
            Step::Type { secret: Some(s), .. } => Some(s),
            _ => None,
        }
    }
}

fn at(i: usize, field: &str) -> String {
    if field.is_empty() {
        format!("steps[{i}]")
    } else {
        format!("steps[{i}].{field}")
    }
}

fn err(i: usize, field: &str, message: impl Into<String>) -> SpecError {
    SpecError { field: at(i, field), message: message.into() }
}

fn nonempty(i: usize, field: &str, v: &str, max: usize) -> Result<(), SpecError> {
    let path = at(i, field);
    if v.trim().is_empty() {
        return Err(err(i, field, format!("`{path}` must not be empty")));
    }
    if v.chars().count() > max {
        return Err(err(i, field, format!("`{path}` must be at most {max} characters")));
    }
    Ok(())
}

/// A name of a file, value or secret: 1-64 letters, digits, `-` and `_`, starting with a letter
/// or digit (so it is safe as a file name and an object key).
pub fn name(i: usize, field: &str, v: &str) -> Result<(), SpecError> {
    let ok = !v.is_empty()
        && v.len() <= NAME_MAX_CHARS
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && v.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(err(i, field, format!("`{}` must be 1 to {NAME_MAX_CHARS} letters, digits, `-` and `_`, starting with a letter or digit", at(i, field))))
    }
}

fn one_of(i: usize, fields: &[(&str, bool)]) -> Result<(), SpecError> {
    let given: Vec<&str> = fields.iter().filter(|(_, g)| *g).map(|(f, _)| *f).collect();
    let names: Vec<String> = fields.iter().map(|(f, _)| format!("`{f}`")).collect();
    match given.len() {
        1 => Ok(()),
        0 => Err(err(i, fields[0].0, format!("`{}` needs one of {}", at(i, ""), names.join(", ")))),
        _ => Err(err(i, given[1], format!("`{}` takes only one of {}", at(i, ""), names.join(", ")))),
    }
}

/// The rules of step `i`.
pub fn check(i: usize, step: &Step) -> Result<(), SpecError> {
    let selector = |v: &str| nonempty(i, "selector", v, SELECTOR_MAX_CHARS);
    match step {
        Step::Goto { url } => rules::url_field(&at(i, "url"), url).map(|_| ()),
        Step::Click { selector: s } => selector(s),
        Step::Type { selector: s, text, secret } => {
            selector(s)?;
            one_of(i, &[("text", text.is_some()), ("secret", secret.is_some())])?;
            if let Some(t) = text {
                if t.chars().count() > TEXT_MAX_CHARS {
                    return Err(err(i, "text", format!("`{}` must be at most {TEXT_MAX_CHARS} characters", at(i, "text"))));
                }
            }
            match secret {
                Some(s) => name(i, "secret", s),
                None => Ok(()),
            }
        }
        Step::Press { key } => {
            let single = key.chars().count() == 1 && !key.chars().any(char::is_control);
            if single || KEYS.contains(&key.as_str()) {
                Ok(())
            } else {
                Err(err(i, "key", format!("`{}` must be one character or one of {}", at(i, "key"), KEYS.join(", "))))
            }
        }
        Step::Select { selector: s, value } => {
            selector(s)?;
            if value.chars().count() > TEXT_MAX_CHARS {
                return Err(err(i, "value", format!("`{}` must be at most {TEXT_MAX_CHARS} characters", at(i, "value"))));
            }
            Ok(())
        }
        Step::WaitFor { selector: s, text, url, timeout_ms } => {
            one_of(i, &[("selector", s.is_some()), ("text", text.is_some()), ("url", url.is_some())])?;
            if let Some(s) = s {
                selector(s)?;
            }
            if let Some(t) = text {
                nonempty(i, "text", t, TEXT_MAX_CHARS)?;
            }
            if let Some(u) = url {
                nonempty(i, "url", u, crate::job::URL_MAX_CHARS)?;
            }
            if let Some(ms) = timeout_ms {
                rules::bounded(&at(i, "timeout_ms"), i64::from(*ms), &WAIT_TIMEOUT_MS)?;
            }
            Ok(())
        }
        Step::Scroll { to, selector: s } => {
            one_of(i, &[("to", to.is_some()), ("selector", s.is_some())])?;
            match s {
                Some(s) => selector(s),
                None => Ok(()),
            }
        }
        Step::Screenshot { name: n, full_page, selector: s } => {
            name(i, "name", n)?;
            if let Some(s) = s {
                selector(s)?;
                if *full_page == Some(true) {
                    return Err(err(i, "full_page", format!("`{}` is either the full page or one element (`selector`), not both", at(i, "")))) ;
                }
            }
            Ok(())
        }
        Step::Extract { name: n, selector: s, attribute, .. } => {
            name(i, "name", n)?;
            selector(s)?;
            match attribute {
                Some(a) if a.is_empty() || a.len() > 128 || !a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == ':') => {
                    Err(err(i, "attribute", format!("`{}` must be an attribute name", at(i, "attribute"))))
                }
                _ => Ok(()),
            }
        }
        Step::Pdf { name: n } => name(i, "name", n),
        Step::Assert { selector: s, text } => {
            one_of(i, &[("selector", s.is_some()), ("text", text.is_some())])?;
            if let Some(s) = s {
                selector(s)?;
            }
            match text {
                Some(t) => nonempty(i, "text", t, TEXT_MAX_CHARS),
                None => Ok(()),
            }
        }
    }
}

/// The rules of a whole script: at most [`MAX_STEPS`], each step's own, and names unique among
/// the files and among the extracted values.
pub fn check_all(steps: &[Step]) -> Result<(), SpecError> {
    if steps.len() > MAX_STEPS {
        return Err(SpecError { field: "steps".into(), message: format!("`steps` may hold at most {MAX_STEPS} steps") });
    }
    let mut files = std::collections::BTreeSet::new();
    let mut values = std::collections::BTreeSet::new();
    for (i, step) in steps.iter().enumerate() {
        check(i, step)?;
        if let Some(f) = step.file() {
            if !files.insert(f.path.clone()) {
                return Err(err(i, "name", format!("`{}`: another step already writes {}", at(i, "name"), f.path)));
            }
        }
        if let Step::Extract { name, .. } = step {
            if !values.insert(name.clone()) {
                return Err(err(i, "name", format!("`{}`: another step already extracts `{name}`", at(i, "name"))));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_in_the_table_with_its_fields() {
        // A step of each action, with every field it takes, round-trips through its JSON.
        let all = [
            Step::Goto { url: "https://x.org".into() },
            Step::Click { selector: "a".into() },
            Step::Type { selector: "#u".into(), text: Some("t".into()), secret: None },
            Step::Press { key: "Enter".into() },
            Step::Select { selector: "s".into(), value: "v".into() },
            Step::WaitFor { selector: Some("a".into()), text: None, url: None, timeout_ms: Some(100) },
            Step::Scroll { to: Some(ScrollTo::Bottom), selector: None },
            Step::Screenshot { name: "n".into(), full_page: Some(true), selector: None },
            Step::Extract { name: "n".into(), selector: "a".into(), attribute: Some("href".into()), all: Some(true) },
            Step::Pdf { name: "n".into() },
            Step::Assert { selector: None, text: Some("t".into()) },
        ];
        assert_eq!(all.len(), ACTIONS.len());
        for step in all {
            let json = serde_json::to_value(&step).unwrap();
            let fields = fields(step.action()).unwrap();
            for (key, value) in json.as_object().unwrap().iter().filter(|(k, _)| *k != "action") {
                let kind = fields.iter().find(|(f, _)| f == key).unwrap_or_else(|| panic!("{}: {key} not in the table", step.action())).1;
                let fits = match kind {
                    Kind::String => value.is_string(),
                    Kind::Bool => value.is_boolean(),
                    Kind::Count => value.is_u64(),
                };
                assert!(fits, "{}.{key}: {value} is not {}", step.action(), kind.expected());
            }
            assert_eq!(serde_json::from_value::<Step>(json).unwrap(), step);
        }
    }

    #[test]
    fn rules_name_the_field_that_breaks_them() {
        let cases: Vec<(Step, &str, &str)> = vec![
            (Step::Click { selector: " ".into() }, "steps[0].selector", "must not be empty"),
            (Step::Type { selector: "a".into(), text: Some("x".into()), secret: Some("s".into()) }, "steps[0].secret", "only one of"),
            (Step::Type { selector: "a".into(), text: None, secret: None }, "steps[0].text", "needs one of"),
            (Step::Type { selector: "a".into(), text: None, secret: Some("../etc".into()) }, "steps[0].secret", "letters, digits"),
            (Step::Press { key: "Hyper".into() }, "steps[0].key", "one character"),
            (Step::WaitFor { selector: None, text: Some("x".into()), url: None, timeout_ms: Some(99) }, "steps[0].timeout_ms", "between 100 and 60000"),
            (Step::Screenshot { name: "a b".into(), full_page: None, selector: None }, "steps[0].name", "letters, digits"),
            (Step::Screenshot { name: "a".into(), full_page: Some(true), selector: Some("x".into()) }, "steps[0].full_page", "not both"),
            (Step::Goto { url: "file:///etc/passwd".into() }, "steps[0].url", "http or https"),
            (Step::Extract { name: "n".into(), selector: "a".into(), attribute: Some("on click".into()), all: None }, "steps[0].attribute", "attribute name"),
        ];
        for (step, field, message) in cases {
            let e = check_all(&[step.clone()]).unwrap_err();
            assert_eq!(e.field, field, "{step:?}: {e:?}");
            assert!(e.message.contains(message), "{step:?}: {}", e.message);
        }
        let twice = [Step::Pdf { name: "a".into() }, Step::Pdf { name: "a".into() }];
        assert_eq!(check_all(&twice).unwrap_err().field, "steps[1].name");
        let many: Vec<Step> = (0..=MAX_STEPS).map(|_| Step::Click { selector: "a".into() }).collect();
        assert_eq!(check_all(&many).unwrap_err().field, "steps");
    }
}
