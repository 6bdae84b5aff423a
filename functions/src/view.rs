//! A job as the API shows it and a webhook event carries it: its record, with pre-signed links to
//! what it has uploaded.

use crate::aws::AwsError;
use crate::model::Job;
use crate::App;
use names::{api, JobStatus};
use std::time::Duration;

/// The largest answer the status shows (a larger one is in `result.json` alone).
pub const ANSWER_MAX_BYTES: usize = 64 * 1024;

/// Pre-signed GET links to outputs last this long.
pub const OUTPUT_LINK_TTL: Duration = Duration::from_secs(3600);

/// The job as `GET /jobs/{id}` shows it, with pre-signed links to what it has uploaded (the
/// webhook event's body too).
pub async fn status_body(app: &App, job: &Job) -> Result<api::JobView, AwsError> {
    let task_id = &job.task_id;
    let mut view = job.view();
    let mut outputs = api::Outputs::default();
    // Nothing can exist before the agent runs: skip the listing for a job still queued.
    if job.status != JobStatus::Queued {
        let out = &app.outputs;
        let existing = out.existing(task_id).await?;
        for o in existing.outputs.iter().copied() {
            outputs.set(o, out.presign_get(task_id, o, OUTPUT_LINK_TTL).await?);
        }
        // The steps' named screenshots and PDFs.
        for name in existing.files {
            let url = out.presign_get_file(task_id, &name, OUTPUT_LINK_TTL).await?;
            outputs.files.insert(name, url);
        }
        // A computer-use job's answer and model usage, from its result.
        if job.target.goal().is_some() && existing.outputs.contains(&names::Output::Result) {
            if let Some(result) = out.result(task_id).await? {
                view.answer = result.get("answer").filter(|a| a.to_string().len() <= ANSWER_MAX_BYTES).cloned();
                view.model_usage = crate::aws::model_usage_of(&result);
            }
        }
    }
    if job.target.goal().is_some() && (view.usage.is_some() || view.model_usage.is_some()) {
        use names::goal::Usd;
        let task = view.usage.map_or(0.0, |u| u.estimated_cost_usd);
        let model = view.model_usage.as_ref().map_or(0.0, |u| u.estimated_cost_usd.0);
        let round = |v: f64| (v * 1e6).round() / 1e6;
        view.cost = Some(api::JobCost { task_usd: Usd(round(task)), model_usd: Usd(round(model)), total_usd: Usd(round(task + model)) });
    }
    view.outputs = Some(outputs);
    Ok(view)
}
