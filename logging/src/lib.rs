//! The one JSON logger of the functions and the agent, through `tracing`: one object per line with
//! `ts`, `level`, `msg`, the process's own fields (`function`, `task_id`), the fields of the spans
//! the event is in and the event's fields, all at the top level, so CloudWatch Logs Insights
//! queries `task_id`, `tenant`, `function` and `level` directly (`filter level = "error"`).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// Fields on every line of this process (`function`, `task_id`), set once known.
fn globals() -> &'static RwLock<Map<String, Value>> {
    static GLOBALS: OnceLock<RwLock<Map<String, Value>>> = OnceLock::new();
    GLOBALS.get_or_init(Default::default)
}

/// Puts `key` = `value` on every line from now on.
pub fn set_global(key: &str, value: &str) {
    if let Ok(mut g) = globals().write() {
        g.insert(key.to_string(), Value::String(value.to_string()));
    }
}

/// The line format: flat JSON.
pub struct FlatJson;

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let mut line = Map::new();
        line.insert("ts".into(), Value::String(now_rfc3339()));
        line.insert("level".into(), Value::String(event.metadata().level().as_str().to_ascii_lowercase()));
        if let Ok(g) = globals().read() {
            line.extend(g.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>() {
                    if let Ok(Value::Object(f)) = serde_json::from_str::<Value>(fields) {
                        line.extend(f);
                    }
                }
            }
        }
        event.record(&mut Fields(&mut line));
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// An event's fields into the line; `message` becomes `msg`, a field given with `%` or `?` whose
/// text is a JSON object or array is kept as that value, and the object of a field named `fields`
/// is merged into the line (for callers whose fields are JSON values already, as the agent's).
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        let value = match serde_json::from_str::<Value>(&text) {
            Ok(v @ (Value::Object(_) | Value::Array(_))) => v,
            _ => Value::String(text),
        };
        self.put(field, value);
    }
}

impl Fields<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        match (field.name(), value) {
            ("fields", Value::Object(m)) => {
                for (k, v) in m {
                    if !matches!(k.as_str(), "ts" | "level" | "msg") {
                        self.0.insert(k, v);
                    }
                }
            }
            ("message", v) => {
                self.0.insert("msg".into(), v);
            }
            (name, v) => {
                self.0.insert(name.to_string(), v);
            }
        }
    }
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Installs the logger for the process, writing to `writer`, at `level` and above.
pub fn init<W>(level: tracing::Level, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    // Metric lines are written whatever the level: a quieter log must not lose the metrics.
    let filter = tracing_subscriber::filter::Targets::new().with_default(level).with_target(metrics::TARGET, tracing::Level::INFO);
    let layer = tracing_subscriber::fmt::layer().fmt_fields(JsonFields::new()).event_format(FlatJson).with_writer(writer).with_filter(filter);
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// Metric values: CloudWatch Embedded Metric Format lines (built by `names::metrics`), written
/// as log lines at any level (CloudWatch Logs turns them into metrics) and handed to the
/// collector when one is installed: the local stack's, which has no CloudWatch to do it.
pub mod metrics {
    use serde_json::Value;
    use std::sync::{Arc, Mutex, RwLock};

    /// The `tracing` target of metric lines.
    pub const TARGET: &str = "metrics";

    type Sink = Arc<dyn Fn(&Value) + Send + Sync>;

    fn sinks() -> &'static RwLock<Vec<(usize, Sink)>> {
        static SINKS: RwLock<Vec<(usize, Sink)>> = RwLock::new(Vec::new());
        &SINKS
    }

    /// Writes one EMF line.
    pub fn emit(line: Value) {
        collected(&line);
        tracing::info!(target: TARGET, fields = %line, "metric");
    }

    /// Hands a line written elsewhere (an agent's, read from its output) to the collectors, as
    /// CloudWatch Logs would extract it; writes nothing.
    pub fn collected(line: &Value) {
        let sinks: Vec<Sink> = sinks().read().map(|s| s.iter().map(|(_, f)| f.clone()).collect()).unwrap_or_default();
        for s in sinks {
            s(line);
        }
    }

    /// From now on every line emitted in this process is also given to `f`, until
    /// [`stop_collecting`] with the id returned.
    pub fn collect_into(f: impl Fn(&Value) + Send + Sync + 'static) -> usize {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut s) = sinks().write() {
            s.push((id, Arc::new(f)));
        }
        id
    }

    pub fn stop_collecting(id: usize) {
        if let Ok(mut s) = sinks().write() {
            s.retain(|(i, _)| *i != id);
        }
    }

    /// A collector that keeps every line: [`collect_into`] a buffer, for tests.
    pub fn buffer() -> Arc<Mutex<Vec<Value>>> {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let b = buf.clone();
        collect_into(move |l| b.lock().unwrap_or_else(|e| e.into_inner()).push(l.clone()));
        buf
    }
}

/// The level named by `RUST_LOG` (`error`, `warn`, `info`, `debug`, `trace`), else `info`.
pub fn level_from_env() -> tracing::Level {
    std::env::var("RUST_LOG").ok().and_then(|l| l.trim().parse().ok()).unwrap_or(tracing::Level::INFO)
}

/// Replaces secret values wherever they appear in text (log lines, JSON, HTML, URLs, form
/// bodies) with `[secret:<name>]`: the value itself, and as JSON or HTML escapes it; in any of
/// these, each byte may also appear percent-encoded (`%40` or `%4a`, as a URL or a GET form puts
/// it into `final_url` and the page), a space as `+` (form encoding), and letters in either case
/// (a page that upper-cases what was typed). Over-matching a look-alike only hides text; missing
/// a form of the secret leaks it.
#[derive(Clone, Default)]
pub struct Redactor {
    /// (pattern, replacement), longest pattern first.
    pairs: Arc<RwLock<Vec<(Vec<u8>, Vec<u8>)>>>,
}

/// Where `pattern` ends when it matches `hay` at its start: byte by byte, each literally (ASCII
/// letters in either case), percent-encoded (either case of hex digit), or a space as `+`.
fn match_len(hay: &[u8], pattern: &[u8]) -> Option<usize> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut j = 0;
    for &p in pattern {
        let at = |k: usize| hay.get(j + k).copied();
        match at(0) {
            Some(h) if h.eq_ignore_ascii_case(&p) => j += 1,
            Some(b'%') => match (at(1).and_then(hex), at(2).and_then(hex)) {
                (Some(hi), Some(lo)) if (hi << 4 | lo).eq_ignore_ascii_case(&p) => j += 3,
                _ => return None,
            },
            Some(b'+') if p == b' ' => j += 1,
            _ => return None,
        }
    }
    Some(j)
}

impl Redactor {
    /// From now on, `value` reads `[secret:<name>]`.
    pub fn add(&self, name: &str, value: &str) {
        if value.is_empty() {
            return;
        }
        let replacement = format!("[secret:{name}]").into_bytes();
        let json = serde_json::to_string(value).unwrap_or_default();
        let json = json.get(1..json.len().saturating_sub(1)).unwrap_or(value).to_string();
        let html = value.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
        let mut pairs = self.pairs.write().unwrap_or_else(|e| e.into_inner());
        for form in [value.to_string(), json, html] {
            let form = form.into_bytes();
            if !pairs.iter().any(|(p, _)| *p == form) {
                pairs.push((form, replacement.clone()));
            }
        }
        pairs.sort_by(|a, b| b.0.len().cmp(&a.0.len()));
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.read().map_or(true, |p| p.is_empty())
    }

    /// `bytes` with every secret replaced.
    pub fn apply(&self, bytes: &[u8]) -> Vec<u8> {
        let pairs = self.pairs.read().unwrap_or_else(|e| e.into_inner());
        if pairs.is_empty() {
            return bytes.to_vec();
        }
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        'next: while i < bytes.len() {
            for (pattern, replacement) in pairs.iter() {
                if let Some(len) = match_len(&bytes[i..], pattern) {
                    out.extend_from_slice(replacement);
                    i += len;
                    continue 'next;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        out
    }
}

/// Every line, to stdout and into a buffer as well (the agent uploads it as `agent.log`), with
/// secrets redacted from both.
#[derive(Clone, Default)]
pub struct Tee {
    buffer: Arc<Mutex<Vec<u8>>>,
    pub redactor: Redactor,
}

impl Tee {
    /// Everything written so far.
    pub fn contents(&self) -> Vec<u8> {
        self.buffer.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

pub struct TeeWriter {
    buffer: Arc<Mutex<Vec<u8>>>,
    redactor: Redactor,
}

impl Write for TeeWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // A line is written whole (the formatter writes each event at once), so a secret is
        // never split across two writes.
        let line = self.redactor.apply(buf);
        // stdout first: if the upload never happens, CloudWatch still has the line.
        let mut out = std::io::stdout().lock();
        out.write_all(&line)?;
        out.flush()?;
        self.buffer.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(&line);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}

impl<'a> MakeWriter<'a> for Tee {
    type Writer = TeeWriter;
    fn make_writer(&'a self) -> TeeWriter {
        TeeWriter { buffer: self.buffer.clone(), redactor: self.redactor.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    struct BufWriter(Arc<Mutex<Vec<u8>>>);
    impl Write for BufWriter {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl<'a> MakeWriter<'a> for Buf {
        type Writer = BufWriter;
        fn make_writer(&'a self) -> BufWriter {
            BufWriter(self.0.clone())
        }
    }

    #[test]
    fn lines_are_flat_json_with_globals_span_and_event_fields() {
        let buf = Buf::default();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .with_max_level(tracing::Level::INFO)
            .with_writer(buf.clone())
            .finish();
        set_global("function", "submit");
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", tenant = "acme", request_id = "r-1");
            let _g = span.enter();
            tracing::warn!(task_id = "t-1", attempt = 2, options = %r#"{"full_page":true}"#, "retrying");
            tracing::debug!("not at this level");
            tracing::info!(fields = %serde_json::json!({"stage": "launch", "level": "x"}), "merged");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!((lines[1]["stage"].as_str(), lines[1]["level"].as_str()), (Some("launch"), Some("info")), "merged, never over the line's own");
        let l = &lines[0];
        assert_eq!(l["level"], "warn");
        assert_eq!(l["msg"], "retrying");
        assert_eq!((l["function"].as_str(), l["tenant"].as_str(), l["task_id"].as_str()), (Some("submit"), Some("acme"), Some("t-1")));
        assert_eq!(l["attempt"], 2);
        assert_eq!(l["options"]["full_page"], true, "a JSON object given as text stays an object");
        assert!(l["ts"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn secrets_are_redacted_raw_json_escaped_and_html_escaped() {
        let r = Redactor::default();
        assert_eq!(r.apply(b"nothing to hide"), b"nothing to hide");
        r.add("pw", "p\"a<ss>");
        r.add("token", "tok-123");
        r.add("long", "tok-123456");
        let text = String::from_utf8(r.apply(br#"raw p"a<ss> json "p\"a<ss>" html p&quot;a&lt;ss&gt; tok-123456 tok-123."#)).unwrap();
        assert_eq!(text, "raw [secret:pw] json \"[secret:pw]\" html [secret:pw] [secret:long] [secret:token].");
        r.add("empty", "");
        assert!(!r.is_empty());
    }

    /// The forms a secret takes on its way through a browser: a GET form's query (`final_url`,
    /// the page's own links), a form body, either case of hex digit, and a page that changed the
    /// case of what was typed.
    #[test]
    fn secrets_are_redacted_percent_and_form_encoded_and_in_any_case() {
        let r = Redactor::default();
        r.add("pw", "p@ss w/rd");
        r.add("mail", "Ada@Example.org");
        let text = String::from_utf8(r.apply(
            b"url ?pw=p%40ss%20w%2Frd form pw=p%40ss+w%2frd upper P@SS W/RD mixed p%40SS+W%2FRD mail ada%40example.org MAIL ADA@EXAMPLE.ORG",
        ))
        .unwrap();
        assert_eq!(text, "url ?pw=[secret:pw] form pw=[secret:pw] upper [secret:pw] mixed [secret:pw] mail [secret:mail] MAIL [secret:mail]");
        // Non-ASCII, byte by byte: `é` is %C3%A9.
        r.add("accent", "caf\u{e9}");
        assert_eq!(r.apply(b"q=caf%C3%A9 and caf%c3%a9"), b"q=[secret:accent] and [secret:accent]");
        // What is not the secret stays: a prefix, a broken escape.
        assert_eq!(r.apply(b"p%40s p%4"), b"p%40s p%4");
    }
}
