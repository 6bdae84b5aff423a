//! A job as the API shows it and a webhook event carries it: its record, with pre-signed links to
//! what it has uploaded.

use crate::aws::AwsError;
use crate::model::Job;
use crate::App;
use names::{api, JobStatus};
use std::time::Duration;

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
        for o in existing.outputs {
            outputs.set(o, out.presign_get(task_id, o, OUTPUT_LINK_TTL).await?);
        }
        // The steps' named screenshots and PDFs.
        for name in existing.files {
            let url = out.presign_get_file(task_id, &name, OUTPUT_LINK_TTL).await?;
            outputs.files.insert(name, url);
        }
    }
    view.outputs = Some(outputs);
    Ok(view)
}
