//! The warm slots' wake queues (`names::queue::wake_name`): one SQS queue per slot, made when its
//! task is started and deleted when the task stops. The slot's agent long-polls it through a
//! pre-signed `ReceiveMessage` (it holds no AWS credentials), and the dispatcher sends it one
//! message once the slot's manifest is written: the agent then reads the manifest at once,
//! instead of at its next look (it looked every 250 ms, 14,400 GETs an idle hour; a long poll of
//! 20 s makes 180 receives and 180 GETs).
//!
//! A queue per slot, not per seat: a claim hands its seat to a new slot at once, and two slots
//! receiving from one queue would hide a wake from each other. Queues made here are not
//! Terraform's: SQS-managed encryption is set at creation (a wake carries nothing), and the grant
//! is by name (`<prefix>-wake-*`). One left by a function that died between its creation and
//! the slot's record is deleted by SQS itself after 30 days without a call (SQS Developer Guide,
//! "DeleteQueue": a queue unused for 30 consecutive days may be deleted), and costs nothing
//! meanwhile (SQS charges by request).

use super::*;
use names::pool as p;

/// The wake queues' calls (`sqs:CreateQueue`, `SendMessage`, `DeleteQueue`).
#[derive(Clone, Debug)]
pub struct WakeQueues {
    pub client: aws_sdk_sqs::Client,
    /// The deployment's name prefix; empty: slots get no wake queue (they poll).
    pub prefix: String,
}

impl WakeQueues {
    pub fn enabled(&self) -> bool {
        !self.prefix.is_empty()
    }

    /// `sqs:CreateQueue` of the slot's queue (made again with the same attributes, SQS answers
    /// the queue that exists): its URL.
    pub async fn create(&self, slot_id: &str) -> Result<String, AwsError> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let made = self
            .client
            .create_queue()
            .queue_name(names::queue::wake_name(&self.prefix, slot_id))
            .attributes(A::SqsManagedSseEnabled, "true")
            .attributes(A::MessageRetentionPeriod, p::WAKE_RETENTION_SECONDS.to_string())
            .attributes(A::VisibilityTimeout, p::WAKE_VISIBILITY_SECONDS.to_string())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("sqs:CreateQueue", e))?;
        made.queue_url.ok_or_else(|| AwsError { op: "sqs:CreateQueue", code: None, detail: "no queue URL in the answer".into() })
    }

    /// `sqs:SendMessage` of a wake to the slot's queue.
    pub async fn wake(&self, url: &str) -> Result<(), AwsError> {
        self.client.send_message().queue_url(url).message_body("wake").send().await.map_err(|e| AwsError::from_sdk("sqs:SendMessage", e))?;
        Ok(())
    }

    /// `sqs:DeleteQueue` of the slot's queue; one already gone is deleted.
    pub async fn delete(&self, url: &str) -> Result<(), AwsError> {
        match self.client.delete_queue().queue_url(url).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = AwsError::from_sdk("sqs:DeleteQueue", e);
                if e.code_is(&["AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"]) {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }
}

/// The slot's wake link: a `ReceiveMessage` of the queue at `queue_url` (SQS's query API, a GET)
/// with a long poll of `names::pool::WAKE_WAIT_SECONDS`, signed in its query string (SigV4) by
/// `creds` at `now`, valid for `expires`.
pub fn presign_receive(creds: &aws_credential_types::Credentials, region: &str, queue_url: &str, now: std::time::SystemTime, expires: Duration) -> Result<String, String> {
    let mut url = url::Url::parse(queue_url).map_err(|e| format!("the queue URL {queue_url:?}: {e}"))?;
    url.query_pairs_mut()
        .append_pair("Action", "ReceiveMessage")
        .append_pair("Version", "2012-11-05")
        .append_pair("MaxNumberOfMessages", "1")
        .append_pair("WaitTimeSeconds", &p::WAKE_WAIT_SECONDS.to_string())
        .append_pair("VisibilityTimeout", &p::WAKE_VISIBILITY_SECONDS.to_string());
    sign_query(creds, region, "sqs", "GET", &mut url, now, expires)?;
    Ok(url.into())
}

/// Signs `url` (its query as it is) for a `method` request to `service` in `region` by `creds` at
/// `now`, valid for `expires`, in its query string (SigV4, an empty payload): the signing
/// parameters are appended to it. The agents' links and keys that no SDK pre-signs.
pub(crate) fn sign_query(creds: &aws_credential_types::Credentials, region: &str, service: &str, method: &str, url: &mut url::Url, now: std::time::SystemTime, expires: Duration) -> Result<(), String> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings};
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(port)) => format!("{h}:{port}"),
        (Some(h), None) => h.to_owned(),
        (None, _) => return Err(format!("{url} has no host")),
    };
    let identity: aws_smithy_runtime_api::client::identity::Identity = creds.clone().into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(expires);
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let request = SignableRequest::new(method, url.as_str(), std::iter::once(("host", host.as_str())), SignableBody::Bytes(&[])).map_err(|e| e.to_string())?;
    let (instructions, _) = sign(request, &params).map_err(|e| e.to_string())?.into_parts();
    for (name, value) in instructions.params() {
        url.query_pairs_mut().append_pair(name, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wake_link_is_a_long_poll_signed_for_sqs_in_its_query() {
        let creds = aws_credential_types::Credentials::new("ASIAEXAMPLEEXAMPLE01", "secret", Some("token".into()), None, "test");
        let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_173_323);
        let url = presign_receive(&creds, "eu-west-1", "https://sqs.eu-west-1.amazonaws.com/123456789012/p-dev-wake-abc", now, Duration::from_secs(1200)).unwrap();
        let url = url::Url::parse(&url).unwrap();
        let q: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(url.path(), "/123456789012/p-dev-wake-abc");
        assert_eq!(q["Action"], "ReceiveMessage");
        assert_eq!(q["WaitTimeSeconds"], "20");
        assert_eq!(q["VisibilityTimeout"], "43200");
        assert_eq!(q["X-Amz-Credential"], "ASIAEXAMPLEEXAMPLE01/20261202/eu-west-1/sqs/aws4_request");
        assert_eq!(q["X-Amz-Expires"], "1200");
        assert_eq!(q["X-Amz-Security-Token"], "token");
        assert_eq!(q["X-Amz-SignedHeaders"], "host");
        assert_eq!(q["X-Amz-Signature"].len(), 64);
        assert!(presign_receive(&creds, "eu-west-1", "not a url", now, Duration::from_secs(1)).is_err());
    }
}
