//! A bucket in the emulator, through `aws-sdk-s3`: created once, pre-signed PUT and GET links
//! signed by the SDK and POST forms signed by `s3post` (as the process and status functions sign
//! them), job manifests written the process function's way, and objects read back. A blocking
//! face over a runtime of its own, for tests and benchmarks that are not async.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;

use crate::moto::Moto;

pub struct Bucket {
    pub name: String,
    client: aws_sdk_s3::Client,
    runtime: tokio::runtime::Runtime,
}

#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("S3 {0}")]
    Call(String),
}

fn call<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> S3Error {
    move |e| S3Error::Call(format!("{what}: {e}"))
}

/// Whether `generated/` versions the outputs bucket (`aws_s3_bucket_versioning.outputs`: every
/// overwrite and DELETE without a version id keeps the object as a noncurrent version).
pub fn outputs_versioned(generated: &std::path::Path) -> Result<bool, String> {
    let files = crate::taskdef::read_dir(generated).map_err(|e| e.to_string())?;
    Ok(files.values().any(|d| {
        d.pointer("/resource/aws_s3_bucket_versioning/outputs/versioning_configuration/status").and_then(|s| s.as_str()) == Some("Enabled")
    }))
}

/// Creates the outputs bucket `name` as `generated/` declares it (versioned when it is), so the
/// tests and the local stack see what S3 does with a DELETE there.
pub async fn create_outputs_bucket(client: &aws_sdk_s3::Client, name: &str) -> Result<(), String> {
    client.create_bucket().bucket(name).send().await.map_err(|e| format!("CreateBucket: {e}"))?;
    if outputs_versioned(&crate::root().join("generated"))? {
        let enabled = aws_sdk_s3::types::VersioningConfiguration::builder().status(aws_sdk_s3::types::BucketVersioningStatus::Enabled).build();
        client
            .put_bucket_versioning()
            .bucket(name)
            .versioning_configuration(enabled)
            .send()
            .await
            .map_err(|e| format!("PutBucketVersioning: {e}"))?;
    }
    Ok(())
}

impl Bucket {
    /// Creates `name` in the emulator. The runtime's threads (and so the SDK's connections) live
    /// in the calling thread's network namespace.
    pub fn create(moto: &Moto, name: &str) -> Result<Bucket, S3Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(call("runtime"))?;
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .endpoint_url(&moto.endpoint)
            .region(aws_sdk_s3::config::Region::new(names::defaults::AWS_REGION))
            .credentials_provider(aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "testenv"))
            .force_path_style(true)
            .build();
        let client = aws_sdk_s3::Client::from_conf(config);
        runtime.block_on(create_outputs_bucket(&client, name)).map_err(S3Error::Call)?;
        Ok(Bucket { name: name.to_string(), client, runtime })
    }

    /// A pre-signed PUT of `key`, valid an hour.
    pub fn presign_put(&self, key: &str) -> Result<String, S3Error> {
        let req = self.client.put_object().bucket(&self.name).key(key);
        let signed = self.runtime.block_on(req.presigned(expiry())).map_err(call("presign PUT"))?;
        Ok(signed.uri().to_string())
    }

    /// A POST form for `key` of `content_type`, at most `max_bytes`, valid an hour.
    pub fn presign_post(&self, key: &str, content_type: &str, max_bytes: u64) -> Result<names::manifest::Upload, S3Error> {
        let presigned = url::Url::parse(&self.presign_put(key)?).map_err(call("presigned URL"))?;
        let object = s3post::Object {
            endpoint: s3post::endpoint_of(&presigned, key).map_err(call("endpoint"))?,
            region: names::defaults::AWS_REGION,
            bucket: &self.name,
            key,
            content_type,
            max_bytes,
        };
        let creds = s3post::Credentials { access_key_id: "testing", secret_access_key: "testing", session_token: None };
        s3post::form(&object, &creds, std::time::SystemTime::now(), Duration::from_secs(3600)).map_err(call("POST form"))
    }

    /// Writes `body` to `key`.
    pub fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), S3Error> {
        let req = self.client.put_object().bucket(&self.name).key(key).content_type(content_type).body(body.into());
        self.runtime.block_on(req.send()).map_err(|e| S3Error::Call(format!("PutObject: {}", aws_sdk_s3::error::DisplayErrorContext(e))))?;
        Ok(())
    }

    /// The manifest of a job as the process function writes it (the `job` as given, so tests can
    /// hand the agent an invalid one), with a form for each of the job's fixed outputs, and a
    /// pre-signed GET of it: the value of `AGENT_MANIFEST_URL`.
    pub fn manifest(&self, task_id: &str, job: &serde_json::Value) -> Result<String, S3Error> {
        self.manifest_with_caps(task_id, job, &[], &[])
    }

    /// As [`manifest`](Self::manifest), with smaller size caps for some outputs, and the job's
    /// secrets (name, value) in an object of their own that the manifest links to, as the
    /// process function writes them.
    pub fn manifest_with_caps(
        &self,
        task_id: &str,
        job: &serde_json::Value,
        caps: &[(names::Output, u64)],
        secrets: &[(String, String)],
    ) -> Result<String, S3Error> {
        // The forms the process function would make; every output's when the job is not valid
        // (the agent must still be able to write its error.json).
        let files = match serde_json::from_value::<names::spec::JobSpec>(job.clone()) {
            Ok(spec) => names::manifest::files(&spec),
            Err(_) => names::Output::ALL
                .into_iter()
                .map(|o| names::step::StepFile { path: o.file_name().to_string(), content_type: o.content_type(), max_bytes: o.max_bytes() })
                .collect(),
        };
        let mut uploads = serde_json::Map::new();
        for file in files {
            let max = caps.iter().find(|(c, _)| c.file_name() == file.path).map_or(file.max_bytes, |(_, m)| *m);
            let form = self.presign_post(&names::bucket::file_key(task_id, &file.path), file.content_type, max)?;
            uploads.insert(file.path, serde_json::to_value(form).map_err(call("form"))?);
        }
        let mut manifest = serde_json::json!({ "version": names::manifest::VERSION, "job": job, "uploads": uploads });
        if !secrets.is_empty() {
            let key = names::bucket::secrets_key(task_id);
            let values: serde_json::Map<String, serde_json::Value> = secrets.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
            self.put(&key, serde_json::Value::Object(values).to_string().into_bytes(), "application/json")?;
            let delete = self.client.delete_object().bucket(&self.name).key(&key);
            let delete = self.runtime.block_on(delete.presigned(expiry())).map_err(call("presign DELETE"))?;
            manifest["secrets"] = serde_json::json!({ "get": self.presign_get(&key)?, "delete": delete.uri() });
        }
        let key = names::bucket::manifest_key(task_id);
        self.put(&key, manifest.to_string().into_bytes(), "application/json")?;
        self.presign_get(&key)
    }

    /// The job's manifest written at `key` instead (a warm slot's place), as the dispatcher
    /// writes it there.
    pub fn manifest_at(&self, key: &str, task_id: &str, job: &serde_json::Value) -> Result<(), S3Error> {
        self.manifest(task_id, job)?;
        let body = self.get(&names::bucket::manifest_key(task_id))?.ok_or_else(|| S3Error::Call("the manifest just written is missing".into()))?;
        self.put(key, body, "application/json")
    }

    /// A pre-signed DELETE of `key`, valid `seconds`.
    pub fn presign_delete(&self, key: &str, seconds: u64) -> Result<String, S3Error> {
        let req = self.client.delete_object().bucket(&self.name).key(key);
        let config = PresigningConfig::expires_in(Duration::from_secs(seconds)).map_err(call("expiry"))?;
        let signed = self.runtime.block_on(req.presigned(config)).map_err(call("presign DELETE"))?;
        Ok(signed.uri().to_string())
    }

    /// A pre-signed GET of `key`, valid `seconds`.
    pub fn presign_get_for(&self, key: &str, seconds: u64) -> Result<String, S3Error> {
        let req = self.client.get_object().bucket(&self.name).key(key);
        let config = PresigningConfig::expires_in(Duration::from_secs(seconds)).map_err(call("expiry"))?;
        let signed = self.runtime.block_on(req.presigned(config)).map_err(call("presign GET"))?;
        Ok(signed.uri().to_string())
    }

    /// A pre-signed GET of `key`, valid an hour.
    pub fn presign_get(&self, key: &str) -> Result<String, S3Error> {
        self.presign_get_for(key, 3600)
    }

    /// The object's bytes, `None` when it does not exist.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, S3Error> {
        self.runtime.block_on(async {
            match self.client.get_object().bucket(&self.name).key(key).send().await {
                Ok(o) => Ok(Some(o.body.collect().await.map_err(call("GetObject body"))?.into_bytes().to_vec())),
                Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
                Err(e) => Err(call("GetObject")(aws_sdk_s3::error::DisplayErrorContext(e))),
            }
        })
    }
}

fn expiry() -> PresigningConfig {
    PresigningConfig::expires_in(Duration::from_secs(3600)).expect("an hour is a valid expiry")
}
