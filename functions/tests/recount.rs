//! The sweep's recount of the tenants' counters: drift injected and corrected once the counter
//! is quiet, and each tenant's own limits written onto its counter. A binary (so an emulator) of
//! its own: a sweep writes every tenant's limits from its configuration.

mod common;

use common::*;
use functions::process::{self, Outcome};
use functions::reconcile;
use functions::App;

async fn counts(app: &App, tenant: &str) -> (i64, i64) {
    let c = app.store.counter(tenant).await.unwrap();
    (c.queued, c.running)
}

#[tokio::test]
async fn drift_is_corrected_by_the_sweep_once_the_counter_is_quiet() {
    let tenant = unique("drift");
    let app = app(&[&tenant]).await.with_clock(functions::time::Clock::manual(functions::time::now_millis()));
    let queued = submit(&app, &tenant, r#"{"query": "a"}"#).await;
    let running = submit(&app, &tenant, r#"{"query": "b"}"#).await;
    process::message(&app, &process::Message { body: Some(&job_message(&running)), receive_count: 1 }).await;
    assert_eq!(counts(&app, &tenant).await, (1, 1));
    // A crash of the bookkeeping, or a hand edit: the counter says 7 running, 0 queued.
    let c = app.store.counter(&tenant).await.unwrap();
    assert!(app.store.correct_counts(&tenant, 0, 7, Some(c.counts_at)).await.unwrap());
    let sweep = serde_json::json!({"detail-type": reconcile::SCHEDULED_EVENT, "source": "aws.events", "detail": {}});
    // Just changed: left alone (it may be ahead of the index).
    reconcile::event(&app, &sweep).await.unwrap();
    assert_eq!(counts(&app, &tenant).await, (0, 7));
    app.clock.advance(reconcile::RECOUNT_QUIET_MILLIS + 1000);
    let out = reconcile::event(&app, &sweep).await.unwrap();
    assert!(matches!(out, reconcile::Outcome::Swept { corrected, .. } if corrected >= 1), "{out:?}");
    assert_eq!(counts(&app, &tenant).await, (1, 1));
    // A tenant's own limits reach its counter through the sweep, and hold there.
    common::limits_of(&app, &tenant, Some(1), Some(1)).await;
    reconcile::event(&app, &sweep).await.unwrap();
    let c = app.store.counter(&tenant).await.unwrap();
    assert_eq!((c.max_running, c.max_queued), (Some(1), Some(1)));
    let r = call(&app, &request(&tenant, "POST", "/jobs", r#"{"query": "over its own limit"}"#)).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("1 jobs queued"), "{}", r.body);
    assert!(matches!(process::message(&app, &process::Message { body: Some(&job_message(&queued)), receive_count: 1 }).await, Outcome::Waiting));
}
