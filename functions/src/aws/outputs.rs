//! The outputs bucket: what a job uploaded, its links, the secrets object, the slots' manifests.

use super::*;

/// The outputs bucket.
#[derive(Clone, Debug)]
pub struct Outputs {
    pub client: aws_sdk_s3::Client,
    pub bucket: String,
    /// What signs the links handed to agents (the manifests', the upload forms', the secrets',
    /// a slot's): a session of the signer role when one is configured, else the function's
    /// own credentials.
    pub links: aws_sdk_s3::Client,
    pub credentials: Option<aws_sdk_s3::config::SharedCredentialsProvider>,
    pub region: Option<String>,
}

impl Outputs {
    /// The bucket's client; the agents' links are signed by a session of `signer_role` (its
    /// ARN; empty: by the function's own credentials), renewed while less than `min_left`
    /// remains of it, so a link of up to `min_left` never outlives its credentials.
    pub fn new(sdk: &aws_config::SdkConfig, bucket: &str, signer_role: &str, min_left: Duration) -> Outputs {
        let (links, credentials) = if signer_role.is_empty() {
            (aws_sdk_s3::Client::new(sdk), sdk.credentials_provider())
        } else {
            let session = aws_sdk_s3::config::SharedCredentialsProvider::new(SignerSession::new(sdk, signer_role, min_left));
            let conf = aws_sdk_s3::config::Builder::from(sdk)
                .credentials_provider(session.clone())
                // The session provider keeps its own credentials and renews them early; the
                // client's cache would hold them until ten seconds before they expire.
                .identity_cache(aws_sdk_s3::config::IdentityCache::no_cache())
                .build();
            (aws_sdk_s3::Client::from_conf(conf), Some(session))
        };
        Outputs { client: aws_sdk_s3::Client::new(sdk), bucket: bucket.to_owned(), links, credentials, region: sdk.region().map(|r| r.to_string()) }
    }
}

/// How long a signer session lasts: the most `sts:AssumeRole` grants a role session assuming a
/// role (role chaining is capped at one hour).
pub const SIGNER_SESSION: Duration = Duration::from_secs(3600);

/// Credentials of a session of the signer role (`sts:AssumeRole`, by the function's own
/// credentials), whose expiry is known: Lambda's environment credentials carry none, so a link
/// they sign may stop working before its own expiry with nothing to tell. Kept while more than
/// `min_left` remains, then renewed.
#[derive(Debug)]
struct SignerSession {
    sdk: aws_config::SdkConfig,
    role: String,
    min_left: Duration,
    provider: tokio::sync::OnceCell<aws_config::sts::AssumeRoleProvider>,
    current: tokio::sync::Mutex<Option<aws_credential_types::Credentials>>,
}

impl SignerSession {
    fn new(sdk: &aws_config::SdkConfig, role: &str, min_left: Duration) -> SignerSession {
        SignerSession { sdk: sdk.clone(), role: role.to_owned(), min_left, provider: tokio::sync::OnceCell::new(), current: tokio::sync::Mutex::new(None) }
    }

    async fn credentials(&self) -> aws_credential_types::provider::Result {
        use aws_credential_types::provider::ProvideCredentials;
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_ref().filter(|c| fresh_enough(c.expiry(), std::time::SystemTime::now(), self.min_left)) {
            return Ok(c.clone());
        }
        let provider = self
            .provider
            .get_or_init(|| async {
                aws_config::sts::AssumeRoleProvider::builder(&self.role)
                    .session_name("agent-links")
                    .session_length(SIGNER_SESSION)
                    .configure(&self.sdk)
                    .build()
                    .await
            })
            .await;
        let fresh = provider.provide_credentials().await?;
        *current = Some(fresh.clone());
        Ok(fresh)
    }
}

/// Whether credentials expiring at `expiry` (None: never) have more than `min_left` to live.
pub fn fresh_enough(expiry: Option<std::time::SystemTime>, now: std::time::SystemTime, min_left: Duration) -> bool {
    expiry.is_none_or(|e| e.duration_since(now).is_ok_and(|left| left > min_left))
}

impl aws_credential_types::provider::ProvideCredentials for SignerSession {
    fn provide_credentials<'a>(&'a self) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::new(self.credentials())
    }
}

impl Outputs {
    /// A pre-signed POST form for the job's file `name` (`screenshot.png`, `files/a.pdf`): its
    /// policy binds the key, the content type and at most `max_bytes` (signing needs
    /// `s3:PutObject` on the key; no AWS call is made). The SDK addresses the bucket as it
    /// addresses every request (virtual-hosted in AWS, path-style at an emulator), so the form's
    /// endpoint is read off a pre-signed PUT of the same key.
    pub async fn presign_post(
        &self,
        task_id: &TaskId,
        name: &str,
        content_type: &str,
        max_bytes: u64,
        expires: Duration,
    ) -> Result<names::manifest::Upload, AwsError> {
        use aws_sdk_s3::config::ProvideCredentials;
        let op = "s3:PutObject (POST form)";
        let err = |detail: String| AwsError { op, code: None, detail };
        let key = names::bucket::file_key(task_id.as_str(), name);
        let put = self
            .links
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .presigned(presigning(expires)?)
            .await
            .map_err(|e| AwsError::from_sdk(op, e))?;
        let presigned = url::Url::parse(put.uri()).map_err(|e| err(e.to_string()))?;
        let endpoint = s3post::endpoint_of(&presigned, &key).map_err(|e| err(e.to_string()))?;
        let region = self.region.as_deref().ok_or_else(|| err("no region configured".into()))?;
        let provider = self.credentials.as_ref().ok_or_else(|| err("no credentials provider".into()))?;
        let creds = provider.provide_credentials().await.map_err(|e| err(format!("credentials: {e}")))?;
        let object = s3post::Object { endpoint, region, bucket: &self.bucket, key: &key, content_type, max_bytes };
        let credentials = s3post::Credentials {
            access_key_id: creds.access_key_id(),
            secret_access_key: creds.secret_access_key(),
            session_token: creds.session_token(),
        };
        s3post::form(&object, &credentials, std::time::SystemTime::now(), expires).map_err(|e| err(e.to_string()))
    }

    /// `s3:PutObject` of the job's manifest.
    pub async fn put_manifest(&self, task_id: &TaskId, manifest: &names::manifest::Manifest) -> Result<(), AwsError> {
        self.put_json(names::bucket::manifest_key(task_id.as_str()), manifest).await.map(|_| ())
    }

    /// `s3:PutObject` of `value` as JSON at `key`: the version it made (the bucket is versioned).
    async fn put_json<T: serde::Serialize>(&self, key: String, value: &T) -> Result<Option<String>, AwsError> {
        let body = serde_json::to_vec(value).map_err(|e| AwsError { op: "s3:PutObject", code: None, detail: e.to_string() })?;
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(body.into())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("s3:PutObject", e))?;
        Ok(put.version_id().map(str::to_owned))
    }

    /// The job's manifest at a warm slot's place (`s3:PutObject`), where the slot's agent polls.
    pub async fn put_slot_manifest(&self, slot_id: &str, manifest: &names::manifest::Manifest) -> Result<(), AwsError> {
        self.put_json(names::bucket::slot_manifest_key(slot_id), manifest).await.map(|_| ())
    }

    /// A slot's links: a pre-signed GET and DELETE of its manifest's place (signing needs
    /// `s3:GetObject` and `s3:DeleteObject` there; no AWS call is made).
    pub async fn presign_slot(&self, slot_id: &str, expires: Duration) -> Result<(String, String), AwsError> {
        let key = names::bucket::slot_manifest_key(slot_id);
        let get = self.links.get_object().bucket(&self.bucket).key(&key).presigned(presigning(expires)?).await;
        let get = get.map_err(|e| AwsError::from_sdk("s3:GetObject (presign)", e))?;
        let delete = self.links.delete_object().bucket(&self.bucket).key(&key).presigned(presigning(expires)?).await;
        let delete = delete.map_err(|e| AwsError::from_sdk("s3:DeleteObject (presign)", e))?;
        Ok((get.uri().to_owned(), delete.uri().to_owned()))
    }

    /// The credentials the agents' links are signed with now (the wake links are signed by
    /// hand with them: the SQS client has no pre-signing).
    pub async fn signing_credentials(&self) -> Result<aws_credential_types::Credentials, AwsError> {
        use aws_sdk_s3::config::ProvideCredentials;
        let provider = self.credentials.as_ref().ok_or_else(|| AwsError { op: "sqs:ReceiveMessage (presign)", code: None, detail: "no credentials to sign with".into() })?;
        provider.provide_credentials().await.map_err(|e| AwsError { op: "sqs:ReceiveMessage (presign)", code: None, detail: e.to_string() })
    }

    /// Seconds until the credentials this client signs with expire (None: they do not, as
    /// static keys). A pre-signed link stops working when they do, whatever its own expiry.
    pub async fn signing_seconds_left(&self) -> Option<u64> {
        use aws_sdk_s3::config::ProvideCredentials;
        let creds = self.credentials.as_ref()?.provide_credentials().await.ok()?;
        Some(creds.expiry()?.duration_since(std::time::SystemTime::now()).map_or(0, |d| d.as_secs()))
    }

    /// Whether a slot's manifest was ever deleted (`s3:ListBucketVersions` under `slots/`): the
    /// bucket is versioned, so the agent's DELETE through its release link leaves a delete
    /// marker that a later write of the manifest (a duplicate delivery's) does not hide.
    pub async fn slot_manifest_released(&self, slot_id: &str) -> Result<bool, AwsError> {
        let key = names::bucket::slot_manifest_key(slot_id);
        Ok(self.versions_of(&key).await?.delete_markers().iter().any(|m| m.key() == Some(key.as_str())))
    }

    /// The jobs with a secrets object or version in the bucket (`s3:ListBucketVersions` under
    /// `secrets/`, the first thousand).
    pub async fn secret_holders(&self) -> Result<Vec<TaskId>, AwsError> {
        let listed = self.versions_of(names::bucket::SECRETS_PREFIX).await?;
        let keys = listed.versions().iter().filter_map(|v| v.key()).chain(listed.delete_markers().iter().filter_map(|m| m.key()));
        let mut ids: Vec<TaskId> = keys
            .filter_map(|k| k.strip_prefix(names::bucket::SECRETS_PREFIX)?.strip_suffix(".json").and_then(TaskId::parse))
            .collect();
        ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        ids.dedup_by(|a, b| a.as_str() == b.as_str());
        Ok(ids)
    }

    /// `s3:ListBucketVersions` with `key` as the prefix: its versions and delete markers (and
    /// those of longer keys, which the callers filter out).
    async fn versions_of(&self, key: &str) -> Result<aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput, AwsError> {
        self.client
            .list_object_versions()
            .bucket(&self.bucket)
            .prefix(key)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("s3:ListBucketVersions", e))
    }

    /// Whether `key` exists, asked by listing it (`s3:ListBucket` with the key as prefix), not by
    /// reading it: S3 answers a GET or HEAD of a missing key with 403 AccessDenied, not 404, to a
    /// principal that may not list the bucket, and the functions may list only below a prefix.
    pub async fn exists(&self, key: &str) -> Result<bool, AwsError> {
        let listed = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(key)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("s3:ListBucket", e))?;
        Ok(listed.contents().iter().any(|o| o.key() == Some(key)))
    }

    /// `s3:DeleteObject` of a slot's manifest (none there is not an error).
    pub async fn delete_slot_manifest(&self, slot_id: &str) -> Result<(), AwsError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(names::bucket::slot_manifest_key(slot_id))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("s3:DeleteObject", e))?;
        Ok(())
    }

    /// A pre-signed `GET` of the job's manifest (signing needs `s3:GetObject` on it).
    pub async fn presign_manifest(&self, task_id: &TaskId, expires: Duration) -> Result<String, AwsError> {
        let r = self
            .links
            .get_object()
            .bucket(&self.bucket)
            .key(names::bucket::manifest_key(task_id.as_str()))
            .presigned(presigning(expires)?)
            .await
            .map_err(|e| AwsError::from_sdk("s3:GetObject (presign)", e))?;
        Ok(r.uri().to_owned())
    }

    /// A pre-signed `GET` URL (signing needs `s3:GetObject` on the key; no AWS call is made). The
    /// captured HTML is served as a download: a page opened from the bucket's origin could run its
    /// scripts there.
    pub async fn presign_get(&self, task_id: &TaskId, output: Output, expires: Duration) -> Result<String, AwsError> {
        let cfg = presigning(expires)?;
        let mut req = self.client.get_object().bucket(&self.bucket).key(names::bucket::output_key(task_id.as_str(), output));
        if output == Output::Html {
            req = req.response_content_disposition(format!("attachment; filename=\"{}\"", output.file_name()));
        }
        let r = req
            .presigned(cfg)
            .await
            .map_err(|e| AwsError::from_sdk("s3:GetObject (presign)", e))?;
        Ok(r.uri().to_owned())
    }

    /// `s3:ListBucket` (ListObjectsV2 under the job's prefix): the outputs and the named files
    /// (`after-login.png`, from `files/`) that exist.
    pub async fn existing(&self, task_id: &TaskId) -> Result<Existing, AwsError> {
        let prefix = names::bucket::job_prefix(task_id.as_str());
        let r = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&prefix)
            .max_keys(1000)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("s3:ListBucket", e))?;
        let names: Vec<&str> = r.contents().iter().filter_map(|o| o.key()?.strip_prefix(&prefix)).collect();
        let mut outputs: Vec<Output> = names.iter().filter_map(|name| Output::ALL.into_iter().find(|o| o.file_name() == *name)).collect();
        outputs.sort();
        outputs.dedup();
        let mut files: Vec<String> = names.iter().filter_map(|n| n.strip_prefix(names::step::FILES_DIR)).map(str::to_owned).collect();
        files.sort();
        Ok(Existing { outputs, files })
    }

    /// A pre-signed `GET` of one of the job's named files (`files/<name>`).
    pub async fn presign_get_file(&self, task_id: &TaskId, name: &str, expires: Duration) -> Result<String, AwsError> {
        let key = names::bucket::file_key(task_id.as_str(), &format!("{}{name}", names::step::FILES_DIR));
        let r = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(presigning(expires)?)
            .await
            .map_err(|e| AwsError::from_sdk("s3:GetObject (presign)", e))?;
        Ok(r.uri().to_owned())
    }
}

impl Outputs {
    /// `s3:PutObject` of the job's secrets (`secrets/<task_id>.json`, a JSON object of name ->
    /// value), encrypted by the bucket's key like every object. Returns the version the write
    /// made (the bucket is versioned), which the agent's DELETE removes for good.
    pub async fn put_secrets(&self, task_id: &TaskId, secrets: &BTreeMap<String, String>) -> Result<Option<String>, AwsError> {
        self.put_json(names::bucket::secrets_key(task_id.as_str()), secrets).await
    }

    /// Pre-signed links to the job's secrets: a GET to read them (the current version), a DELETE
    /// to remove them once read: of `version` when the write made one, so that nothing of it
    /// stays behind as a noncurrent version (signing needs `s3:GetObject` and
    /// `s3:DeleteObjectVersion`).
    pub async fn presign_secrets(&self, task_id: &TaskId, version: Option<&str>, expires: Duration) -> Result<names::manifest::SecretLinks, AwsError> {
        let key = names::bucket::secrets_key(task_id.as_str());
        let get = self
            .links
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .presigned(presigning(expires)?)
            .await
            .map_err(|e| AwsError::from_sdk("s3:GetObject (presign)", e))?;
        let delete = self
            .links
            .delete_object()
            .bucket(&self.bucket)
            .key(&key)
            .set_version_id(version.map(str::to_owned))
            .presigned(presigning(expires)?)
            .await
            .map_err(|e| AwsError::from_sdk("s3:DeleteObjectVersion (presign)", e))?;
        Ok(names::manifest::SecretLinks { get: get.uri().to_owned(), delete: delete.uri().to_owned() })
    }

    /// Every version of the job's secrets, and any delete marker, deleted for good
    /// (`s3:ListBucketVersions` under `secrets/`, `s3:DeleteObjectVersion`): what a crashed agent
    /// or an earlier attempt left. Returns how many were deleted (none there is fine).
    pub async fn purge_secrets(&self, task_id: &TaskId) -> Result<usize, AwsError> {
        let key = names::bucket::secrets_key(task_id.as_str());
        let listed = self.versions_of(&key).await?;
        let versions = listed.versions().iter().filter(|v| v.key() == Some(key.as_str())).filter_map(|v| v.version_id());
        let markers = listed.delete_markers().iter().filter(|m| m.key() == Some(key.as_str())).filter_map(|m| m.version_id());
        let ids: Vec<String> = versions.chain(markers).map(str::to_owned).collect();
        for id in &ids {
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(&key)
                .version_id(id)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("s3:DeleteObjectVersion", e))?;
        }
        Ok(ids.len())
    }

    /// The job's `result.json` as JSON, when it is there and is JSON (written by the agent, which
    /// runs pages of the internet: read, never trusted).
    pub async fn result(&self, task_id: &TaskId) -> Result<Option<serde_json::Value>, AwsError> {
        let key = names::bucket::output_key(task_id.as_str(), Output::Result);
        let body = match self.client.get_object().bucket(&self.bucket).key(&key).send().await {
            Ok(o) if o.content_length().is_some_and(|n| n as u64 > Output::Result.max_bytes()) => return Ok(None),
            Ok(o) => o.body.collect().await.map_err(|e| AwsError { op: "s3:GetObject", code: None, detail: e.to_string() })?.into_bytes(),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(AwsError::from_sdk("s3:GetObject", e)),
        };
        Ok(serde_json::from_slice(&body).ok())
    }

    /// A computer-use job's model usage as its agent reports it in `result.json`, when it wrote
    /// one (a crashed agent, a job cancelled before its end, may not). Written by the agent, which
    /// runs pages of the internet: only counts that read as counts are taken.
    pub async fn model_usage(&self, task_id: &TaskId) -> Result<Option<names::api::ModelUsage>, AwsError> {
        // Asked first, as `error_report` does: without the listing, S3 answers a missing key 403.
        if !self.exists(&names::bucket::output_key(task_id.as_str(), Output::Result)).await? {
            return Ok(None);
        }
        Ok(self.result(task_id).await?.and_then(|r| model_usage_of(&r)))
    }

    /// The agent's `error.json` of the job, when it wrote one that reads as a report.
    pub async fn error_report(&self, task_id: &TaskId) -> Result<Option<AgentReport>, AwsError> {
        let key = names::bucket::output_key(task_id.as_str(), Output::Error);
        // Most failed jobs have none: asked first (see `exists`), read only when there.
        if !self.exists(&key).await? {
            return Ok(None);
        }
        let body = match self.client.get_object().bucket(&self.bucket).key(&key).send().await {
            Ok(o) => o.body.collect().await.map_err(|e| AwsError { op: "s3:GetObject", code: None, detail: e.to_string() })?.into_bytes(),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(AwsError::from_sdk("s3:GetObject", e)),
        };
        // Written by the agent, which runs pages of the internet: read, never trusted (an
        // unknown code or a malformed file is as if there were none).
        Ok(serde_json::from_slice::<AgentReport>(&body).ok().filter(|r| names::job::ErrorCode::parse(&r.code).is_some()))
    }
}

/// `result.json`'s `usage`, when it reads as a model's usage (a cost that is a finite amount, not
/// below zero).
pub fn model_usage_of(result: &serde_json::Value) -> Option<names::api::ModelUsage> {
    let usage = serde_json::from_value::<names::api::ModelUsage>(result.get("usage")?.clone()).ok()?;
    let cost = usage.estimated_cost_usd.0;
    (cost.is_finite() && cost >= 0.0).then_some(usage)
}

/// What the agent reports in `error.json`: an error code of `names::job::ErrorCode`, a message
/// for the client, the failed step of a script.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct AgentReport {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub step: Option<u32>,
}

/// What a job has uploaded so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Existing {
    pub outputs: Vec<Output>,
    /// Named files of its steps, by file name (`invoice.pdf`).
    pub files: Vec<String>,
}

fn presigning(expires: Duration) -> Result<aws_sdk_s3::presigning::PresigningConfig, AwsError> {
    aws_sdk_s3::presigning::PresigningConfig::expires_in(expires)
        .map_err(|e| AwsError { op: "presign", code: None, detail: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn a_signing_session_is_renewed_before_its_longest_link_could_outlive_it() {
        let now = SystemTime::now();
        let min_left = Duration::from_secs(1380);
        assert!(fresh_enough(None, now, min_left), "credentials without an expiry (static keys) never need renewing");
        assert!(fresh_enough(Some(now + SIGNER_SESSION), now, min_left), "a fresh session");
        assert!(fresh_enough(Some(now + Duration::from_secs(1381)), now, min_left));
        assert!(!fresh_enough(Some(now + Duration::from_secs(1380)), now, min_left), "a link of min_left would end with it");
        assert!(!fresh_enough(Some(now - Duration::from_secs(1)), now, min_left), "expired");
    }
}
