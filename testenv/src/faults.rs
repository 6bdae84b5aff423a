//! Faults in the functions' AWS calls, chosen by a seed: a call that fails before it is sent, one
//! whose response is lost after AWS applied it (the SDK then retries it, as it does a timeout), and
//! an invocation that dies before or after a call (a Lambda crash: nothing after that point runs,
//! and the event source delivers again).
//!
//! The faults are made by an HTTP client that wraps the SDK's ([`FaultyClient`]), so they strike
//! every AWS call of every handler without a line of the handlers knowing. A crash needs the
//! invocation it ends: the harness runs each handler invocation through [`invoke`], which drops
//! the handler's future when a call of it crashes; a crashed invocation makes no further call.
//!
//! A fault point is a function and the operation it calls (`process` `dynamodb:TransactWriteItems`).
//! A [`Plan`] made from a seed aims at one point (the seed picks it in turn from [`points`]) with
//! one kind of fault, often, and strikes every other point rarely. Whether the n-th call of a point
//! is struck depends only on the seed, the point and n, so a seed's faults do not depend on how
//! the calls of other points interleave.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use names::Function;

/// What happens to a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// The call fails before it reaches AWS (a reset connection): nothing was applied.
    Fail,
    /// AWS applies the call, and its response is lost (a timeout): the caller sees an error and
    /// the SDK sends it again.
    LoseResponse,
    /// The invocation dies before the call is sent.
    CrashBefore,
    /// The invocation dies after AWS applied the call, before its response is read.
    CrashAfter,
}

impl Fault {
    pub const ALL: [Fault; 4] = [Fault::Fail, Fault::LoseResponse, Fault::CrashBefore, Fault::CrashAfter];
}

/// A function and an operation it calls, spelled `service:Operation`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Point {
    pub function: Function,
    pub operation: String,
}

impl std::fmt::Display for Point {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.function.as_str(), self.operation)
    }
}

/// Every fault point: each call of `names::contract::calls` as the operation that makes it (a
/// PassRole or TagResource is part of RunTask; an item write may also be a transaction's), for the
/// functions that handle events (the API's are called by clients, which see the error).
pub fn points() -> Vec<Point> {
    use names::contract::Action::*;
    let mut all = BTreeSet::new();
    for function in [Function::Submit, Function::Cancel, Function::Process, Function::Reconcile, Function::Webhook] {
        for (action, _) in names::contract::calls(function) {
            let operations: Vec<&str> = match action {
                IamPassRole | EcsTagResource => vec![],
                DynamodbUpdateItem | DynamodbPutItem => vec![action.as_str(), "dynamodb:TransactWriteItems"],
                // The event source's own calls are Lambda's, not the function's.
                SqsReceiveMessage | SqsDeleteMessage | SqsGetQueueAttributes => vec![],
                _ => vec![action.as_str()],
            };
            for operation in operations {
                all.insert(Point { function, operation: operation.to_string() });
            }
        }
    }
    all.into_iter().collect()
}

/// The operation an SDK request makes, as `service:Operation` (None for what is not an AWS call).
pub fn operation(request: &HttpRequest) -> Option<String> {
    if let Some(target) = request.headers().get("x-amz-target") {
        let (prefix, op) = target.split_once('.')?;
        let service = match prefix {
            p if p.starts_with("DynamoDB") => "dynamodb",
            "AmazonSQS" => "sqs",
            p if p.starts_with("AmazonEC2ContainerService") => "ecs",
            "AmazonSSM" => "ssm",
            p if p.starts_with("Logs") => "logs",
            other => other,
        };
        return Some(format!("{service}:{op}"));
    }
    // STS (its query protocol): the signature's scope names the service, the form's Action the call.
    let scope = request.headers().get("authorization").and_then(|a| a.split("Credential=").nth(1)).and_then(|c| c.split('/').nth(3));
    if scope == Some("sts") {
        let body = request.body().bytes().map(String::from_utf8_lossy).unwrap_or_default();
        let action = url::form_urlencoded::parse(body.as_bytes()).find(|(k, _)| k == "Action").map(|(_, v)| v.into_owned())?;
        return Some(format!("sts:{action}"));
    }
    // S3's REST calls: the method, the path and the query say which.
    let uri = url::Url::parse(request.uri()).ok()?;
    let query: BTreeSet<String> = uri.query_pairs().map(|(k, _)| k.into_owned()).collect();
    // Path-style (the emulator) or virtual-hosted: a key is a second path segment or a first one.
    let segments = uri.path().trim_matches('/').split('/').filter(|s| !s.is_empty()).count();
    let key = segments >= 2 || (segments == 1 && uri.host_str().is_some_and(|h| h.contains(".s3")));
    let op = match request.method() {
        "GET" if query.contains("versions") => "ListBucketVersions",
        "GET" | "HEAD" if !key => "ListBucket",
        "GET" | "HEAD" => "GetObject",
        "PUT" => "PutObject",
        "DELETE" if query.contains("versionId") => "DeleteObjectVersion",
        "DELETE" => "DeleteObject",
        "POST" if query.contains("delete") => "DeleteObject",
        "POST" => "PutObject",
        _ => return None,
    };
    Some(format!("s3:{op}"))
}

/// A fault that struck: where, which, and the how-many-th call of its point it was.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Injected {
    pub point: Point,
    pub fault: Fault,
    pub nth: u64,
}

/// Where a plan aims: its seed, the point and fault it aims at, and how often it strikes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aim {
    pub seed: u64,
    /// The point the seed aims at and the fault it gets there.
    pub target: Option<(Point, Fault)>,
    /// How often the target's calls are struck, and every other point's (per thousand calls).
    pub target_per_mille: u64,
    pub background_per_mille: u64,
    /// How often an event is delivered twice (per thousand deliveries).
    pub duplicate_per_mille: u64,
    /// No more faults than this (None: no bound); a directed test strikes once.
    pub most: Option<usize>,
}

impl Aim {
    /// The aim of `seed`: `points()[seed % n]` with the fault `seed / n` picks, on one call in
    /// three; any call anywhere one time in a hundred; one delivery in seven twice.
    pub fn for_seed(seed: u64) -> Aim {
        let points = points();
        let n = points.len() as u64;
        let point = points[(seed % n) as usize].clone();
        let fault = Fault::ALL[((seed / n) % Fault::ALL.len() as u64) as usize];
        Aim { seed, target: Some((point, fault)), target_per_mille: 330, background_per_mille: 10, duplicate_per_mille: 150, most: None }
    }
}

/// Which calls fail, and how (see the module's doc). A harness may aim it anew between runs.
#[derive(Debug)]
pub struct Plan {
    aim: Mutex<Aim>,
    enabled: AtomicBool,
    calls: Mutex<BTreeMap<Point, u64>>,
    injected: Mutex<Vec<Injected>>,
}

impl Plan {
    pub fn new(aim: Aim) -> Plan {
        Plan { aim: Mutex::new(aim), enabled: AtomicBool::new(true), calls: Mutex::default(), injected: Mutex::default() }
    }

    pub fn for_seed(seed: u64) -> Plan {
        Plan::new(Aim::for_seed(seed))
    }

    pub fn aim(&self) -> Aim {
        self.aim.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Aims anew, with the counts of calls and the faults struck started over, and enabled.
    pub fn aim_at(&self, aim: Aim) {
        *self.aim.lock().unwrap_or_else(|e| e.into_inner()) = aim;
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.injected.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.set_enabled(true);
    }

    /// No faults (a harness winding down); calls are still counted.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::SeqCst);
    }

    /// The fault for the next call of `point`, if any.
    pub fn decide(&self, point: Point) -> Option<Fault> {
        let nth = {
            let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
            let c = calls.entry(point.clone()).or_default();
            *c += 1;
            *c
        };
        if !self.enabled.load(Ordering::SeqCst) {
            return None;
        }
        let aim = self.aim();
        let roll = |salt: &str| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (aim.seed, &point, nth, salt).hash(&mut h);
            h.finish() % 1000
        };
        let fault = match &aim.target {
            Some((target, fault)) if *target == point => (roll("target") < aim.target_per_mille).then_some(*fault),
            _ => (roll("background") < aim.background_per_mille).then(|| Fault::ALL[(roll("kind") % 4) as usize]),
        }?;
        let mut injected = self.injected.lock().unwrap_or_else(|e| e.into_inner());
        if aim.most.is_some_and(|most| injected.len() >= most) {
            return None;
        }
        injected.push(Injected { point, fault, nth });
        Some(fault)
    }

    /// Whether the delivery `what` (an SQS message, an event) is delivered twice, at once.
    pub fn duplicate(&self, what: &str) -> bool {
        if !self.enabled.load(Ordering::SeqCst) {
            return false;
        }
        let aim = self.aim();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (aim.seed, what, "duplicate").hash(&mut h);
        h.finish() % 1000 < aim.duplicate_per_mille
    }

    /// Every fault that struck so far.
    pub fn injected(&self) -> Vec<Injected> {
        self.injected.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Calls made so far, by point.
    pub fn calls(&self) -> BTreeMap<Point, u64> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// An invocation of a handler, which a crash ends.
#[derive(Debug, Default)]
struct Invocation {
    crashed: AtomicBool,
    notify: tokio::sync::Notify,
}

impl Invocation {
    fn crash(&self) {
        self.crashed.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }
}

tokio::task_local! {
    static INVOCATION: Arc<Invocation>;
}

/// The invocation died at a fault point: the event source sees a failed invocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crashed;

impl std::fmt::Display for Crashed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the invocation crashed (injected fault)")
    }
}

/// Runs one handler invocation; a crash at one of its calls drops it where it stands.
pub async fn invoke<F: Future>(work: F) -> Result<F::Output, Crashed> {
    let invocation = Arc::new(Invocation::default());
    let watch = invocation.clone();
    INVOCATION
        .scope(invocation, async move {
            let work = std::pin::pin!(work);
            tokio::select! {
                biased;
                _ = watch.notify.notified() => Err(Crashed),
                out = work => if watch.crashed.load(Ordering::SeqCst) { Err(Crashed) } else { Ok(out) },
            }
        })
        .await
}

/// Who is calling: the function whose work makes the call (None: the harness itself, which is
/// never struck).
pub type Caller = Arc<dyn Fn() -> Option<Function> + Send + Sync>;

/// An HTTP client that strikes the calls `plan` chooses and passes the rest to `inner`.
#[derive(Clone)]
pub struct FaultyClient {
    inner: SharedHttpClient,
    plan: Arc<Plan>,
    caller: Caller,
}

impl std::fmt::Debug for FaultyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyClient").field("aim", &self.plan.aim()).finish()
    }
}

impl FaultyClient {
    /// Wraps the SDK's default HTTPS client.
    pub fn new(plan: Arc<Plan>, caller: Caller) -> FaultyClient {
        let inner = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc))
            .build_https();
        FaultyClient { inner, plan, caller }
    }
}

impl HttpClient for FaultyClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultyConnector {
            inner: self.inner.http_connector(settings, components),
            plan: self.plan.clone(),
            caller: self.caller.clone(),
        })
    }
}

struct FaultyConnector {
    inner: SharedHttpConnector,
    plan: Arc<Plan>,
    caller: Caller,
}

impl std::fmt::Debug for FaultyConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FaultyConnector")
    }
}

fn never() -> HttpConnectorFuture {
    HttpConnectorFuture::new(std::future::pending())
}

impl HttpConnector for FaultyConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let invocation = INVOCATION.try_with(Arc::clone).ok();
        // A crashed invocation is gone: nothing it would still do reaches AWS.
        if invocation.as_ref().is_some_and(|i| i.crashed.load(Ordering::SeqCst)) {
            return never();
        }
        let fault = match ((self.caller)(), operation(&request)) {
            (Some(function), Some(operation)) => self.plan.decide(Point { function, operation }),
            _ => None,
        };
        // Outside an invocation (an event source's own calls) there is nothing to crash: the
        // call fails instead.
        let fault = match (fault, &invocation) {
            (Some(Fault::CrashBefore), None) => Some(Fault::Fail),
            (Some(Fault::CrashAfter), None) => Some(Fault::LoseResponse),
            (f, _) => f,
        };
        let inner = self.inner.clone();
        match fault {
            None => inner.call(request),
            Some(Fault::Fail) => HttpConnectorFuture::ready(Err(ConnectorError::io("injected fault: connection reset before the request was sent".into()))),
            Some(Fault::LoseResponse) => HttpConnectorFuture::new(async move {
                let _ = inner.call(request).await;
                Err(ConnectorError::timeout("injected fault: the response was lost after the request was applied".into()))
            }),
            Some(Fault::CrashBefore) => {
                if let Some(i) = invocation {
                    i.crash();
                }
                never()
            }
            Some(Fault::CrashAfter) => HttpConnectorFuture::new(async move {
                let _ = inner.call(request).await;
                if let Some(i) = invocation {
                    i.crash();
                }
                std::future::pending().await
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_handling_function_has_points_and_seeds_take_them_in_turn() {
        let all = points();
        for f in [Function::Process, Function::Reconcile, Function::Webhook] {
            assert!(all.iter().any(|p| p.function == f), "{f:?}");
        }
        assert!(all.contains(&Point { function: Function::Process, operation: "dynamodb:TransactWriteItems".into() }));
        assert!(!all.iter().any(|p| p.operation.starts_with("iam:")));
        let n = all.len() as u64;
        let targets: BTreeSet<(Point, Fault)> = (0..n * 4).map(|s| Aim::for_seed(s).target.unwrap()).collect();
        assert_eq!(targets.len() as u64, n * 4, "each seed of a cycle aims at another point or fault");
    }

    #[test]
    fn a_seed_strikes_the_same_calls_of_a_point_whatever_else_runs() {
        let p = |op: &str| Point { function: Function::Process, operation: op.into() };
        let aim = Aim { target: Some((p("ecs:RunTask"), Fault::CrashAfter)), ..Aim::for_seed(7) };
        let a = Plan::new(aim.clone());
        let b = Plan::new(aim);
        let mut first = Vec::new();
        let mut second = Vec::new();
        for i in 0..300 {
            first.push(a.decide(p("ecs:RunTask")));
            if i % 3 == 0 {
                b.decide(p("s3:PutObject"));
            }
            second.push(b.decide(p("ecs:RunTask")));
        }
        assert_eq!(first, second);
        let struck = first.iter().filter(|f| **f == Some(Fault::CrashAfter)).count();
        assert!((70..130).contains(&struck), "about a third of 300: {struck}");
        a.set_enabled(false);
        assert!((0..100).all(|_| a.decide(p("ecs:RunTask")).is_none()));
    }

    #[test]
    fn requests_are_named_by_their_operation() {
        let req = |method: &str, uri: &str, target: Option<&str>| {
            let mut r = HttpRequest::empty();
            r.set_method(method).unwrap();
            r.set_uri(uri.to_string()).unwrap();
            if let Some(t) = target {
                r.headers_mut().insert("x-amz-target", t.to_string());
            }
            operation(&r)
        };
        assert_eq!(req("POST", "http://127.0.0.1:5000/", Some("DynamoDB_20120810.TransactWriteItems")).as_deref(), Some("dynamodb:TransactWriteItems"));
        assert_eq!(req("POST", "http://127.0.0.1:5000/", Some("AmazonEC2ContainerServiceV20141113.RunTask")).as_deref(), Some("ecs:RunTask"));
        assert_eq!(req("POST", "http://127.0.0.1:5000/", Some("AmazonSQS.SendMessage")).as_deref(), Some("sqs:SendMessage"));
        assert_eq!(req("GET", "http://127.0.0.1:5000/b?list-type=2&prefix=jobs/", None).as_deref(), Some("s3:ListBucket"));
        assert_eq!(req("GET", "http://127.0.0.1:5000/b?versions&prefix=secrets/", None).as_deref(), Some("s3:ListBucketVersions"));
        assert_eq!(req("GET", "http://127.0.0.1:5000/b/jobs/t/result.json", None).as_deref(), Some("s3:GetObject"));
        assert_eq!(req("PUT", "http://127.0.0.1:5000/b/slots/s/manifest.json", None).as_deref(), Some("s3:PutObject"));
        assert_eq!(req("DELETE", "http://127.0.0.1:5000/b/secrets/t.json?versionId=v1", None).as_deref(), Some("s3:DeleteObjectVersion"));
        assert_eq!(req("DELETE", "http://127.0.0.1:5000/b/slots/s/manifest.json", None).as_deref(), Some("s3:DeleteObject"));
        // STS's query protocol: a POST to "/" like an S3 upload's, told apart by its signature's scope.
        let mut sts = HttpRequest::new(aws_smithy_types::body::SdkBody::from("Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr"));
        sts.set_method("POST").unwrap();
        sts.set_uri("http://127.0.0.1:5000/".to_string()).unwrap();
        sts.headers_mut().insert("authorization", "AWS4-HMAC-SHA256 Credential=AKIA/20261206/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=x".to_string());
        assert_eq!(operation(&sts).as_deref(), Some("sts:AssumeRole"));
        assert!(points().contains(&Point { function: Function::Process, operation: "sts:AssumeRole".into() }));
    }

    #[tokio::test]
    async fn a_crash_ends_the_invocation_where_it_stands() {
        let plan = Arc::new(Plan::new(Aim { target: None, ..Aim::for_seed(1) }));
        let inv = invoke(async {
            INVOCATION.with(|i| i.crash());
            std::future::pending::<()>().await
        });
        assert_eq!(inv.await, Err(Crashed));
        assert_eq!(invoke(async { 5 }).await, Ok(5));
        assert!(plan.injected().is_empty());
    }
}
