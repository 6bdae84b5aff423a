//! A bucket in the emulator, through `aws-sdk-s3`: created once, pre-signed PUT and GET links
//! signed by the SDK (as the process and status functions sign them), and objects read back. A
//! blocking face over a runtime of its own, for tests and benchmarks that are not async.

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
        runtime.block_on(client.create_bucket().bucket(name).send()).map_err(call("CreateBucket"))?;
        Ok(Bucket { name: name.to_string(), client, runtime })
    }

    /// A pre-signed PUT of `key`, valid an hour.
    pub fn presign_put(&self, key: &str) -> Result<String, S3Error> {
        let req = self.client.put_object().bucket(&self.name).key(key);
        let signed = self.runtime.block_on(req.presigned(expiry())).map_err(call("presign PUT"))?;
        Ok(signed.uri().to_string())
    }

    /// A pre-signed GET of `key`, valid an hour.
    pub fn presign_get(&self, key: &str) -> Result<String, S3Error> {
        let req = self.client.get_object().bucket(&self.name).key(key);
        let signed = self.runtime.block_on(req.presigned(expiry())).map_err(call("presign GET"))?;
        Ok(signed.uri().to_string())
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
