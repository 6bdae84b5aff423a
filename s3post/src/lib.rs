//! Pre-signed S3 POST forms (browser-based uploads, AWS Signature Version 4): a form lets whoever
//! holds it upload one object, under one key, of one content type and at most `max_bytes`, until
//! it expires. A pre-signed PUT binds neither size (S3 has no bucket-policy condition on an
//! object's size) nor, unless signed, the content type; the POST policy binds both.
//!
//! The policy is JSON; the string to sign is its base64; the signature is HMAC-SHA256 with the
//! SigV4 signing key of the date, region and `s3` (AWS's own `aws-sigv4` derives the key and
//! computes the HMAC). Nothing here calls AWS.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use base64::Engine;
use names::manifest::Upload;
use serde_json::{json, Value};
use time::OffsetDateTime;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The credentials that sign the form: the signer's permissions are the upload's.
#[derive(Clone, Debug)]
pub struct Credentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    /// Temporary credentials (a Lambda's role) carry a session token; it goes into the form.
    pub session_token: Option<&'a str>,
}

/// What the form uploads.
#[derive(Clone, Debug)]
pub struct Object<'a> {
    /// The bucket's endpoint, where the form is POSTed: `https://<bucket>.s3.<region>.amazonaws.com/`,
    /// or path-style `http://127.0.0.1:5000/<bucket>` for an emulator.
    pub endpoint: url::Url,
    pub region: &'a str,
    pub bucket: &'a str,
    pub key: &'a str,
    pub content_type: &'a str,
    pub max_bytes: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum FormError {
    /// `endpoint_of` was given a URL that does not end in the key.
    NotThisKey { url: String, key: String },
    Time(String),
}

impl std::fmt::Display for FormError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FormError::NotThisKey { key, .. } => write!(f, "the pre-signed URL is not one of `{key}`"),
            FormError::Time(e) => write!(f, "formatting the form's time: {e}"),
        }
    }
}

impl std::error::Error for FormError {}

/// The bucket's endpoint from a pre-signed URL of `key` (which the SDK addressed as it addresses
/// every request: virtual-hosted in AWS, path-style for an emulator): the URL without the key
/// and without the query.
pub fn endpoint_of(presigned: &url::Url, key: &str) -> Result<url::Url, FormError> {
    let not = || FormError::NotThisKey { url: presigned.as_str().split('?').next().unwrap_or_default().to_string(), key: key.to_string() };
    let encoded: String = key.split('/').map(|s| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")).collect::<Vec<_>>().join("/");
    let path = presigned.path();
    let base = path.strip_suffix(&encoded).or_else(|| path.strip_suffix(key)).ok_or_else(not)?;
    let mut endpoint = presigned.clone();
    endpoint.set_query(None);
    endpoint.set_fragment(None);
    endpoint.set_path(base);
    Ok(endpoint)
}

/// The form for `object`, valid for `expires` from `now`.
pub fn form(object: &Object<'_>, credentials: &Credentials<'_>, now: SystemTime, expires: Duration) -> Result<Upload, FormError> {
    let at = OffsetDateTime::from(now);
    let fmt = |f: &[time::format_description::FormatItem<'_>], t: OffsetDateTime| t.format(f).map_err(|e| FormError::Time(e.to_string()));
    let date = fmt(time::macros::format_description!("[year][month][day]"), at)?;
    let amz_date = fmt(time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"), at)?;
    let expiration = fmt(time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].000Z"), at + expires)?;
    let credential = format!("{}/{date}/{}/s3/aws4_request", credentials.access_key_id, object.region);

    let mut fields = BTreeMap::from([
        ("key".to_string(), object.key.to_string()),
        ("Content-Type".to_string(), object.content_type.to_string()),
        ("x-amz-algorithm".to_string(), ALGORITHM.to_string()),
        ("x-amz-credential".to_string(), credential.clone()),
        ("x-amz-date".to_string(), amz_date.clone()),
    ]);
    let mut conditions = vec![
        json!({ "bucket": object.bucket }),
        json!({ "key": object.key }),
        json!({ "Content-Type": object.content_type }),
        json!(["content-length-range", 0, object.max_bytes]),
        json!({ "x-amz-algorithm": ALGORITHM }),
        json!({ "x-amz-credential": credential }),
        json!({ "x-amz-date": amz_date }),
    ];
    if let Some(token) = credentials.session_token {
        conditions.push(json!({ "x-amz-security-token": token }));
        fields.insert("x-amz-security-token".to_string(), token.to_string());
    }
    let policy = json!({ "expiration": expiration, "conditions": conditions }).to_string();
    let policy = base64::engine::general_purpose::STANDARD.encode(policy);
    let signature = signature(credentials.secret_access_key, now, object.region, &policy);
    fields.insert("policy".to_string(), policy);
    fields.insert("x-amz-signature".to_string(), signature);
    Ok(Upload { url: object.endpoint.to_string(), fields, max_bytes: object.max_bytes })
}

/// The SigV4 signature of a (base64) POST policy.
pub fn signature(secret_access_key: &str, at: SystemTime, region: &str, policy_base64: &str) -> String {
    let key = aws_sigv4::sign::v4::generate_signing_key(secret_access_key, at, region, "s3");
    aws_sigv4::sign::v4::calculate_signature(key, policy_base64.as_bytes())
}

/// The policy of a form, decoded (for tests and logs: it holds no secret but the session token).
pub fn policy_of(upload: &Upload) -> Option<Value> {
    let raw = base64::engine::general_purpose::STANDARD.decode(upload.fields.get("policy")?).ok()?;
    serde_json::from_slice(&raw).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn object(endpoint: &str) -> Object<'static> {
        Object {
            endpoint: url::Url::parse(endpoint).unwrap(),
            region: "eu-west-1",
            bucket: "outputs",
            key: "jobs/t/screenshot.png",
            content_type: "image/png",
            max_bytes: 1024,
        }
    }

    #[test]
    fn the_policy_binds_bucket_key_type_size_and_expiry() {
        // 2026-12-02T01:02:03Z
        let now = at(1_796_173_323);
        let creds = Credentials { access_key_id: AKID, secret_access_key: SECRET, session_token: Some("tok") };
        let upload = form(&object("https://outputs.s3.eu-west-1.amazonaws.com/"), &creds, now, Duration::from_secs(3600)).unwrap();
        assert_eq!(upload.url, "https://outputs.s3.eu-west-1.amazonaws.com/");
        assert_eq!(upload.max_bytes, 1024);
        let policy = policy_of(&upload).unwrap();
        assert_eq!(policy["expiration"], "2026-12-02T02:02:03.000Z");
        let conditions = policy["conditions"].as_array().unwrap();
        for c in [
            json!({"bucket": "outputs"}),
            json!({"key": "jobs/t/screenshot.png"}),
            json!({"Content-Type": "image/png"}),
            json!(["content-length-range", 0, 1024]),
            json!({"x-amz-credential": format!("{AKID}/20261202/eu-west-1/s3/aws4_request")}),
            json!({"x-amz-date": "20261202T010203Z"}),
            json!({"x-amz-security-token": "tok"}),
        ] {
            assert!(conditions.contains(&c), "{c} missing from {policy}");
        }
        // Every field S3 checks against the policy is in the form, with the same value.
        assert_eq!(upload.fields["key"], "jobs/t/screenshot.png");
        assert_eq!(upload.fields["Content-Type"], "image/png");
        assert_eq!(upload.fields["x-amz-security-token"], "tok");
        assert_eq!(upload.fields["x-amz-signature"], signature(SECRET, now, "eu-west-1", &upload.fields["policy"]));
        // Without a session token there is no token field or condition.
        let long_term = Credentials { session_token: None, ..creds };
        let upload = form(&object("https://outputs.s3.eu-west-1.amazonaws.com/"), &long_term, now, Duration::from_secs(60)).unwrap();
        assert!(!upload.fields.contains_key("x-amz-security-token"));
        assert!(!policy_of(&upload).unwrap().to_string().contains("security-token"));
    }

    #[test]
    fn the_endpoint_is_the_presigned_url_without_the_key() {
        let hosted = url::Url::parse("https://outputs.s3.eu-west-1.amazonaws.com/jobs/t/screenshot.png?X-Amz-Signature=abc").unwrap();
        assert_eq!(endpoint_of(&hosted, "jobs/t/screenshot.png").unwrap().as_str(), "https://outputs.s3.eu-west-1.amazonaws.com/");
        let path_style = url::Url::parse("http://127.0.0.1:5000/outputs/jobs/t/files/a%20b.png?X-Amz-Date=1").unwrap();
        assert_eq!(endpoint_of(&path_style, "jobs/t/files/a b.png").unwrap().as_str(), "http://127.0.0.1:5000/outputs/");
        assert!(endpoint_of(&hosted, "jobs/other/screenshot.png").is_err());
    }

    /// The signature equals botocore's (the AWS SDK for Python, from the project's virtualenv) for
    /// the same policy, credentials, date and region.
    #[test]
    fn the_signature_is_the_one_botocore_computes() {
        let Some(python) = testenv::botocore_python("the botocore cross-check") else { return };
        let now = at(1_796_173_323);
        let policy = base64::engine::general_purpose::STANDARD.encode(r#"{"expiration": "2026-12-02T02:02:03.000Z", "conditions": [{"bucket": "outputs"}]}"#);
        let script = r#"
import sys, datetime
from botocore.auth import S3SigV4PostAuth
from botocore.credentials import Credentials
from botocore.awsrequest import AWSRequest
auth = S3SigV4PostAuth(Credentials(sys.argv[1], sys.argv[2]), "s3", "eu-west-1")
req = AWSRequest(method="POST", url="https://outputs.s3.eu-west-1.amazonaws.com/")
req.context["timestamp"] = "20261202T010203Z"
print(auth.signature(sys.argv[3], req))
"#;
        let out = std::process::Command::new(python).args(["-c", script, AKID, SECRET, &policy]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), signature(SECRET, now, "eu-west-1", &policy));
    }
}
