//! The model's actions: the `input` of a `computer` tool use, parsed and checked, its coordinates
//! mapped from the screenshot to the page. A malformed action is the model's mistake: its error
//! goes back to the model as the tool's result (`is_error`), and the job goes on.

use serde_json::Value;

use super::models::ToolVersion;
use super::screen::{Point, Scale};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Button {
    Left,
    Right,
    Middle,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
    Left,
    Right,
}

/// One action, in the page's coordinates (CSS pixels).
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Screenshot,
    CursorPosition,
    /// A click (`count` 1 to 3), where the pointer is when `at` is absent, with a key held.
    Click { button: Button, count: u8, at: Option<Point>, hold: Option<String> },
    MouseDown,
    MouseUp,
    Move { to: Point },
    /// From `from` (or where the pointer is) to `to`.
    Drag { from: Option<Point>, to: Point },
    Scroll { at: Option<Point>, direction: Direction, amount: u32, hold: Option<String> },
    Type { text: String },
    /// A key or a combination, in xdotool's names (`Return`, `ctrl+a`).
    Key { keys: String },
    HoldKey { key: String, seconds: f64 },
    Wait { seconds: f64 },
    /// A screenshot of the region, at the full resolution of the page.
    Zoom { from: Point, to: Point },
}

/// The longest wait or key hold an action may ask for.
pub const MAX_SECONDS: f64 = 100.0;
/// The most scroll steps one action may ask for.
pub const MAX_SCROLL: u32 = 100;
/// The longest text one `type` may carry.
pub const MAX_TEXT: usize = 10_000;

/// The action a tool use's `input` asks for, under `tool` (its action set) with screenshots sent
/// at `scale`.
pub fn parse(input: &Value, tool: &ToolVersion, scale: &Scale) -> Result<Action, String> {
    let name = input.get("action").and_then(Value::as_str).ok_or("the input has no `action`")?;
    let point = |field: &str| -> Result<Option<Point>, String> {
        match input.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => {
                let xy = v.as_array().filter(|a| a.len() == 2).and_then(|a| Some((a[0].as_i64()?, a[1].as_i64()?)));
                let (x, y) = xy.ok_or_else(|| format!("`{field}` is not [x, y] in whole pixels: {v}"))?;
                scale.to_viewport(x, y).map(Some)
            }
        }
    };
    let need = |field: &str| point(field)?.ok_or_else(|| format!("`{name}` needs `{field}`"));
    let text = |field: &str| -> Result<String, String> {
        let t = input.get(field).and_then(Value::as_str).ok_or_else(|| format!("`{name}` needs `{field}` as text"))?;
        if t.chars().count() > MAX_TEXT {
            return Err(format!("`{field}` is over {MAX_TEXT} characters"));
        }
        Ok(t.to_owned())
    };
    let hold = || input.get("key").or_else(|| input.get("text")).and_then(Value::as_str).filter(|k| !k.is_empty()).map(str::to_owned);
    let seconds = || -> Result<f64, String> {
        let d = input.get("duration").and_then(Value::as_f64).ok_or_else(|| format!("`{name}` needs `duration` in seconds"))?;
        if !(0.0..=MAX_SECONDS).contains(&d) {
            return Err(format!("`duration` {d} is not within 0 to {MAX_SECONDS} seconds"));
        }
        Ok(d)
    };
    let click = |button, count| -> Result<Action, String> {
        Ok(Action::Click { button, count, at: point("coordinate")?, hold: input.get("key").and_then(Value::as_str).map(str::to_owned) })
    };
    Ok(match name {
        "screenshot" => Action::Screenshot,
        "cursor_position" => Action::CursorPosition,
        "left_click" => click(Button::Left, 1)?,
        "right_click" => click(Button::Right, 1)?,
        "middle_click" => click(Button::Middle, 1)?,
        "double_click" => click(Button::Left, 2)?,
        "triple_click" => click(Button::Left, 3)?,
        "left_mouse_down" => Action::MouseDown,
        "left_mouse_up" => Action::MouseUp,
        "mouse_move" => Action::Move { to: need("coordinate")? },
        "left_click_drag" => Action::Drag { from: point("start_coordinate")?, to: need("coordinate")? },
        "scroll" => {
            let direction = match input.get("scroll_direction").and_then(Value::as_str) {
                Some("up") => Direction::Up,
                Some("down") => Direction::Down,
                Some("left") => Direction::Left,
                Some("right") => Direction::Right,
                other => return Err(format!("`scroll_direction` is up, down, left or right, not {other:?}")),
            };
            let amount = input.get("scroll_amount").and_then(Value::as_u64).ok_or("`scroll` needs `scroll_amount`, a whole number")?;
            if amount > u64::from(MAX_SCROLL) {
                return Err(format!("`scroll_amount` {amount} is over {MAX_SCROLL}"));
            }
            Action::Scroll { at: point("coordinate")?, direction, amount: amount as u32, hold: input.get("text").and_then(Value::as_str).map(str::to_owned) }
        }
        "type" => Action::Type { text: text("text")? },
        "key" => Action::Key { keys: text("text")? },
        "hold_key" => Action::HoldKey { key: hold().ok_or("`hold_key` needs `text`, the key")?, seconds: seconds()? },
        "wait" => Action::Wait { seconds: seconds()? },
        "zoom" if tool.zoom => {
            let r = input.get("region").and_then(Value::as_array).filter(|r| r.len() == 4).and_then(|r| r.iter().map(Value::as_i64).collect::<Option<Vec<i64>>>());
            let r = r.ok_or("`zoom` needs `region`, [x0, y0, x1, y1] in whole pixels")?;
            if r[0] >= r[2] || r[1] >= r[3] {
                return Err(format!("`region` {r:?} is empty: x0 < x1 and y0 < y1"));
            }
            let last = |v: i64, max: u32| v.min(i64::from(max) - 1);
            Action::Zoom { from: scale.to_viewport(r[0], r[1])?, to: scale.to_viewport(last(r[2], scale.sent.0), last(r[3], scale.sent.1))? }
        }
        other => return Err(format!("`{other}` is not an action of {}", tool.tool_type)),
    })
}

#[cfg(test)]
mod tests {
    use super::super::models::{COMPUTER_20250124, COMPUTER_20251124};
    use super::*;
    use serde_json::json;

    #[test]
    fn actions_are_parsed_with_their_coordinates_in_the_page() {
        // Sent at 1456x819 for a 1920x1080 viewport: the model's pixels are scaled back.
        let scale = Scale::for_viewport(1920, 1080);
        let a = parse(&json!({"action": "left_click", "coordinate": [728, 400]}), &COMPUTER_20250124, &scale).unwrap();
        let Action::Click { button: Button::Left, count: 1, at: Some(p), hold: None } = a else { panic!("{a:?}") };
        assert!((p.x - 960.0).abs() < 1.5 && (p.y - 527.5).abs() < 1.5, "{p:?}");
        let same = Scale::for_viewport(1280, 800);
        let at = |x, y| Point { x, y };
        for (input, want) in [
            (json!({"action": "screenshot"}), Action::Screenshot),
            (json!({"action": "double_click", "coordinate": [10, 20]}), Action::Click { button: Button::Left, count: 2, at: Some(at(10.0, 20.0)), hold: None }),
            (json!({"action": "triple_click", "coordinate": [10, 20], "key": "shift"}), Action::Click { button: Button::Left, count: 3, at: Some(at(10.0, 20.0)), hold: Some("shift".into()) }),
            (json!({"action": "right_click"}), Action::Click { button: Button::Right, count: 1, at: None, hold: None }),
            (json!({"action": "left_click_drag", "start_coordinate": [1, 2], "coordinate": [3, 4]}), Action::Drag { from: Some(at(1.0, 2.0)), to: at(3.0, 4.0) }),
            (json!({"action": "scroll", "coordinate": [5, 6], "scroll_direction": "down", "scroll_amount": 3}), Action::Scroll { at: Some(at(5.0, 6.0)), direction: Direction::Down, amount: 3, hold: None }),
            (json!({"action": "type", "text": "hello"}), Action::Type { text: "hello".into() }),
            (json!({"action": "key", "text": "ctrl+a"}), Action::Key { keys: "ctrl+a".into() }),
            (json!({"action": "hold_key", "text": "shift", "duration": 1.5}), Action::HoldKey { key: "shift".into(), seconds: 1.5 }),
            (json!({"action": "wait", "duration": 2}), Action::Wait { seconds: 2.0 }),
        ] {
            assert_eq!(parse(&input, &COMPUTER_20250124, &same), Ok(want), "{input}");
        }
    }

    #[test]
    fn a_malformed_action_says_what_is_wrong() {
        let s = Scale::for_viewport(1280, 800);
        for (input, says) in [
            (json!({}), "no `action`"),
            (json!({"action": "fly"}), "`fly` is not an action of computer_20250124"),
            (json!({"action": "mouse_move"}), "`mouse_move` needs `coordinate`"),
            (json!({"action": "left_click", "coordinate": [1.5, 2]}), "not [x, y] in whole pixels"),
            (json!({"action": "left_click", "coordinate": [1280, 2]}), "outside the 1280x800 screenshot"),
            (json!({"action": "scroll", "scroll_direction": "sideways", "scroll_amount": 1}), "up, down, left or right"),
            (json!({"action": "scroll", "scroll_direction": "up", "scroll_amount": 1000}), "over 100"),
            (json!({"action": "wait", "duration": 1000}), "not within 0 to 100 seconds"),
            (json!({"action": "type"}), "`type` needs `text`"),
            // zoom is computer_20251124's.
            (json!({"action": "zoom", "region": [0, 0, 10, 10]}), "not an action of computer_20250124"),
        ] {
            let e = parse(&input, &COMPUTER_20250124, &s).unwrap_err();
            assert!(e.contains(says), "{input}: {e}");
        }
        let z = parse(&json!({"action": "zoom", "region": [0, 0, 1280, 800]}), &COMPUTER_20251124, &s).unwrap();
        assert_eq!(z, Action::Zoom { from: Point { x: 0.0, y: 0.0 }, to: Point { x: 1279.0, y: 799.0 } });
        assert!(parse(&json!({"action": "zoom", "region": [10, 0, 10, 5]}), &COMPUTER_20251124, &s).unwrap_err().contains("empty"));
    }
}
