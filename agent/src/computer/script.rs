//! Record, then replay without the model: a finished run as a scripted job in this project's step
//! format (`names::step`). Every action that hit an element was recorded with a selector for it
//! (`execute::TARGET`: an id, a test id, a name, the field a label is for, an ARIA label, a
//! link's address; else its position in the page, which is not robust); the script clicks and
//! types by those, types secrets by name, presses the keys a step can press, and says in `notes`
//! what it could not keep or could not make robust.

use names::job::Viewport;
use names::step::{self, Step};
use serde_json::{json, Value};

use super::run;

/// The script of a run: a submit body (`job`), whether every target in it is robust, and notes.
pub fn script(start_url: Option<&str>, viewport: Viewport, turns: &[run::Step]) -> Value {
    let mut notes = Vec::new();
    let Some(start) = start_url else {
        notes.push("the job had no start_url: a script must begin with a `goto`, so there is none".to_owned());
        return json!({ "job": Value::Null, "robust": false, "notes": notes });
    };
    let mut steps = vec![Step::Goto { url: start.to_owned() }];
    let mut robust = true;
    let mut scrolled = false;
    for turn in turns {
        for acted in turn.actions.iter().filter(|a| a.outcome.is_ok()) {
            let at = format!("turn {}", turn.turn);
            let input = &acted.input;
            let action = input["action"].as_str().unwrap_or_default();
            let target = acted.target.as_ref().and_then(|t| Some((t["selector"].as_str()?.to_owned(), t["robust"] == true)));
            if let Some((selector, false)) = &target {
                if matches!(action, "left_click" | "type") {
                    robust = false;
                    notes.push(format!("{at}: the element is found by its position in the page (`{selector}`), which a change to the page can move"));
                }
            }
            match action {
                "left_click" => match target {
                    Some((selector, _)) => steps.push(Step::Click { selector }),
                    None => {
                        robust = false;
                        notes.push(format!("{at}: a click at {} found no element; left out", input["coordinate"]));
                    }
                },
                "type" => {
                    let text = input["text"].as_str().unwrap_or_default();
                    match target {
                        Some((selector, _)) => steps.extend(typing(&selector, text)),
                        None => {
                            robust = false;
                            notes.push(format!("{at}: text typed with no field focused; left out"));
                        }
                    }
                }
                "key" => match press(input["text"].as_str().unwrap_or_default()) {
                    Some(key) => steps.push(Step::Press { key }),
                    None => {
                        robust = false;
                        notes.push(format!("{at}: the key `{}` is not one a `press` step sends; left out", input["text"].as_str().unwrap_or_default()));
                    }
                },
                "scroll" => scrolled = true,
                "right_click" | "middle_click" | "double_click" | "triple_click" | "left_click_drag" | "left_mouse_down" | "left_mouse_up" | "hold_key" => {
                    robust = false;
                    notes.push(format!("{at}: `{action}` has no step; left out"));
                }
                // Looking, waiting and moving the pointer change nothing a step must redo.
                _ => {}
            }
        }
    }
    if scrolled {
        notes.push("scrolls are left out: each step finds its element wherever it is on the page".to_owned());
    }
    if steps.len() > step::MAX_STEPS {
        robust = false;
        notes.push(format!("the run took {} steps; a script holds {}: the rest are left out", steps.len(), step::MAX_STEPS));
        steps.truncate(step::MAX_STEPS);
    }
    // A step that breaks the rules (a selector over their length, say) is dropped, not sent.
    let mut kept = Vec::new();
    for s in steps {
        let mut with = kept.clone();
        with.push(s.clone());
        match step::check_all(&with) {
            Ok(()) => kept.push(s),
            Err(e) => {
                robust = false;
                notes.push(format!("a `{}` step breaks the steps' rules ({}); left out", s.action(), e.message));
            }
        }
    }
    json!({
        "job": { "steps": kept, "options": { "viewport": { "width": viewport.width, "height": viewport.height } } },
        "robust": robust,
        "notes": notes,
    })
}

/// `type` steps for `text` into `selector`: literal runs as text, each `{{secret:NAME}}` as that
/// secret (the steps append, as the model's typing did).
fn typing(selector: &str, text: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut rest = text;
    let literal = |s: &str, steps: &mut Vec<Step>| {
        if !s.is_empty() {
            steps.push(Step::Type { selector: selector.to_owned(), text: Some(s.to_owned()), secret: None });
        }
    };
    while let Some(start) = rest.find("{{secret:") {
        let after = &rest[start + "{{secret:".len()..];
        let Some(end) = after.find("}}") else { break };
        literal(&rest[..start], &mut steps);
        steps.push(Step::Type { selector: selector.to_owned(), text: None, secret: Some(after[..end].to_owned()) });
        rest = &after[end + 2..];
    }
    literal(rest, &mut steps);
    steps
}

/// The `press` step's key for an xdotool key name, if a step can press it.
fn press(keys: &str) -> Option<String> {
    let key = match keys {
        "Return" | "Enter" | "KP_Enter" => "Enter",
        "Tab" => "Tab",
        "Escape" | "Esc" => "Escape",
        "BackSpace" | "Backspace" => "Backspace",
        "Delete" => "Delete",
        "space" | "Space" => "Space",
        "Up" => "ArrowUp",
        "Down" => "ArrowDown",
        "Left" => "ArrowLeft",
        "Right" => "ArrowRight",
        "Home" => "Home",
        "End" => "End",
        "Page_Up" | "Prior" => "PageUp",
        "Page_Down" | "Next" => "PageDown",
        k if k.chars().count() == 1 && !k.chars().all(char::is_control) => k,
        _ => return None,
    };
    Some(key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::super::messages::Usage;
    use super::*;

    fn turn(n: u32, actions: Vec<(Value, Option<Value>)>) -> run::Step {
        run::Step {
            turn: n,
            text: String::new(),
            actions: actions.into_iter().map(|(input, target)| run::Acted { input, outcome: Ok(()), target }).collect(),
            usage: Usage::default(),
            model_ms: 0,
            screenshots: Vec::new(),
        }
    }

    fn robust(selector: &str) -> Option<Value> {
        Some(json!({"selector": selector, "robust": true, "by": "id"}))
    }

    const VIEWPORT: Viewport = Viewport { width: 1920, height: 1080 };

    #[test]
    fn a_run_becomes_the_steps_that_redo_it() {
        let turns = vec![
            turn(1, vec![(json!({"action": "screenshot"}), None)]),
            turn(
                2,
                vec![
                    (json!({"action": "left_click", "coordinate": [800, 400]}), robust("label[for=\"user\"]")),
                    (json!({"action": "type", "text": "alice"}), robust("#user")),
                    (json!({"action": "left_click", "coordinate": [800, 460]}), robust("label[for=\"password\"]")),
                    (json!({"action": "type", "text": "x{{secret:pw}}!"}), robust("#password")),
                    (json!({"action": "scroll", "scroll_direction": "down", "scroll_amount": 3}), None),
                    (json!({"action": "key", "text": "Return"}), None),
                ],
            ),
        ];
        let s = script(Some("http://127.0.0.1:9/desk"), VIEWPORT, &turns);
        let steps: Vec<Step> = serde_json::from_value(s["job"]["steps"].clone()).unwrap();
        let t = |text: Option<&str>, secret: Option<&str>| Step::Type { selector: "#password".into(), text: text.map(Into::into), secret: secret.map(Into::into) };
        assert_eq!(
            steps,
            vec![
                Step::Goto { url: "http://127.0.0.1:9/desk".into() },
                Step::Click { selector: "label[for=\"user\"]".into() },
                Step::Type { selector: "#user".into(), text: Some("alice".into()), secret: None },
                Step::Click { selector: "label[for=\"password\"]".into() },
                t(Some("x"), None),
                t(None, Some("pw")),
                t(Some("!"), None),
                Step::Press { key: "Enter".into() },
            ]
        );
        assert_eq!(s["robust"], true);
        assert_eq!(s["notes"], json!(["scrolls are left out: each step finds its element wherever it is on the page"]));
        assert_eq!(s["job"]["options"]["viewport"], json!({"width": 1920, "height": 1080}));
    }

    #[test]
    fn what_cannot_be_kept_or_made_robust_is_said() {
        let turns = vec![turn(
            1,
            vec![
                (json!({"action": "left_click", "coordinate": [5, 5]}), Some(json!({"selector": "div:nth-of-type(2) > a:nth-of-type(1)", "robust": false, "by": "position"}))),
                (json!({"action": "left_click", "coordinate": [9, 9]}), None),
                (json!({"action": "double_click", "coordinate": [9, 9]}), robust("#x")),
                (json!({"action": "key", "text": "ctrl+a"}), None),
            ],
        )];
        let s = script(Some("https://example.com/"), VIEWPORT, &turns);
        assert_eq!(s["robust"], false);
        let notes: Vec<&str> = s["notes"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
        assert!(notes[0].contains("by its position") && notes[1].contains("found no element") && notes[2].contains("`double_click` has no step") && notes[3].contains("`ctrl+a`"), "{notes:?}");
        assert_eq!(s["job"]["steps"].as_array().unwrap().len(), 2, "the goto and the positional click");
        let none = script(None, VIEWPORT, &turns);
        assert!(none["job"].is_null() && none["notes"][0].as_str().unwrap().contains("no start_url"));
    }
}
