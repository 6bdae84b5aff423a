//! The model credential of a computer-use job on Amazon Bedrock: a short-term Bedrock API key
//! (a bearer token) minted per job from a session of the model role whose session policy allows
//! `bedrock:InvokeModel` on the job's model alone, for no longer than the job's links. The agent
//! gets it in the job's secrets object; it holds no AWS credentials.
//!
//! The key is what AWS's token generators make: a SigV4 query-signed request of the action
//! `CallWithBearerToken` to `bedrock.amazonaws.com`, without its scheme, with `&Version=1`,
//! base64, after `bedrock-api-key-` (Amazon Bedrock User Guide, "Generate a short-term Amazon
//! Bedrock API key"). Bedrock authorizes each call it carries with the signing session's
//! permissions, and refuses it once the signature or the session expires.

use super::*;
use aws_credential_types::provider::ProvideCredentials;
use std::time::SystemTime;

/// The host the key's request is signed for, and the action.
pub const TOKEN_HOST: &str = "bedrock.amazonaws.com";
pub const TOKEN_ACTION: &str = "CallWithBearerToken";
pub const TOKEN_PREFIX: &str = "bedrock-api-key-";
/// `sts:AssumeRole`'s shortest session.
pub const MIN_SESSION: Duration = Duration::from_secs(900);

/// Mints model keys from sessions of the model role.
#[derive(Clone, Debug)]
pub struct Models {
    pub sdk: aws_config::SdkConfig,
    /// The role the sessions are of (empty: no Bedrock models here).
    pub role: String,
}

impl Models {
    /// A key for `job` that can call `model_id` (a foundation model or an inference profile id)
    /// in this region for `lifetime` (at least `sts:AssumeRole`'s 15 minutes) and nothing else.
    pub async fn bedrock_key(&self, job: &Job, model_id: &str, lifetime: Duration) -> Result<String, AwsError> {
        let op = "sts:AssumeRole";
        let err = |detail: String| AwsError { op, code: None, detail };
        if self.role.is_empty() {
            return Err(err(format!("no model role is configured ({})", names::env::MODEL_ROLE_ARN)));
        }
        let region = self.sdk.region().map(|r| r.to_string()).ok_or_else(|| err("no region configured".into()))?;
        let policy = session_policy(model_id, &region);
        let provider = aws_config::sts::AssumeRoleProvider::builder(&self.role)
            // One session per job, named by it (CloudTrail shows whose calls these are).
            .session_name(format!("job-{}", job.task_id))
            .session_length(lifetime.max(MIN_SESSION))
            .policy(policy.to_string())
            .configure(&self.sdk)
            .build()
            .await;
        let creds = provider.provide_credentials().await.map_err(|e| err(format!("{e}: {}", std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default())))?;
        bearer_key(&creds, &region, SystemTime::now(), lifetime.max(MIN_SESSION)).map_err(|e| AwsError { op: "bedrock key (SigV4)", code: None, detail: e })
    }
}

/// The session policy: `bedrock:InvokeModel` (and the bearer token's own action) on the model,
/// as a foundation model in any region (an inference profile routes to several) and as an
/// inference profile of this account. A session's permissions are its role's and this policy's
/// intersection.
pub fn session_policy(model_id: &str, region: &str) -> serde_json::Value {
    let partition = if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    };
    // `us.anthropic.claude-...` is a cross-region profile of `anthropic.claude-...`.
    let foundation = match model_id.split_once('.') {
        Some((geo, rest)) if geo.len() <= 4 && rest.contains('.') => rest,
        _ => model_id,
    };
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "InvokeTheJobsModel",
                "Effect": "Allow",
                "Action": ["bedrock:InvokeModel"],
                "Resource": [
                    format!("arn:{partition}:bedrock:*::foundation-model/{foundation}"),
                    format!("arn:{partition}:bedrock:*:*:inference-profile/{model_id}"),
                ],
            },
            { "Sid": "UseTheKey", "Effect": "Allow", "Action": ["bedrock:CallWithBearerToken"], "Resource": "*" },
        ],
    })
}

/// The short-term key for `creds`, valid in `region` for `expires` from `now`.
pub fn bearer_key(creds: &aws_credential_types::Credentials, region: &str, now: SystemTime, expires: Duration) -> Result<String, String> {
    use base64::Engine;
    let mut signed = url::Url::parse(&format!("https://{TOKEN_HOST}/?Action={TOKEN_ACTION}")).map_err(|e| e.to_string())?;
    sign_query(creds, region, "bedrock", "POST", &mut signed, now, expires)?;
    let without_scheme = signed.as_str().trim_start_matches("https://");
    Ok(format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(format!("{without_scheme}&Version=1"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    const AKID: &str = "ASIAEXAMPLEEXAMPLE01";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn decode(key: &str) -> url::Url {
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD.decode(key.strip_prefix(TOKEN_PREFIX).expect("the prefix")).unwrap();
        url::Url::parse(&format!("https://{}", String::from_utf8(raw).unwrap())).unwrap()
    }

    #[test]
    fn the_key_is_a_presigned_call_with_bearer_token_of_the_session() {
        let creds = aws_credential_types::Credentials::new(AKID, SECRET, Some("session-token".into()), None, "test");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_173_323);
        let key = bearer_key(&creds, "eu-west-1", now, Duration::from_secs(1200)).unwrap();
        let url = decode(&key);
        let q: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(url.host_str(), Some(TOKEN_HOST));
        assert_eq!(q["Action"], TOKEN_ACTION);
        assert_eq!(q["Version"], "1");
        assert_eq!(q["X-Amz-Credential"], format!("{AKID}/20261202/eu-west-1/bedrock/aws4_request"));
        assert_eq!((q["X-Amz-Expires"].as_str(), q["X-Amz-Date"].as_str()), ("1200", "20261202T010203Z"));
        assert_eq!(q["X-Amz-Security-Token"], "session-token");
        assert_eq!(q["X-Amz-Signature"].len(), 64);
    }

    /// The signature equals botocore's SigV4 query signing of the same request (what AWS's own
    /// token generator for Python does), from the project's virtualenv.
    #[test]
    fn the_signature_is_the_one_botocore_computes() {
        let Some(python) = testenv::botocore_python("the botocore cross-check") else { return };
        let creds = aws_credential_types::Credentials::new(AKID, SECRET, Some("tok".into()), None, "test");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_173_323);
        let ours = decode(&bearer_key(&creds, "us-west-2", now, Duration::from_secs(900)).unwrap());
        let script = r#"
import sys, datetime
from unittest import mock
import botocore.auth
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
fixed = datetime.datetime(2026, 12, 2, 1, 2, 3)
req = AWSRequest(method="POST", url="https://bedrock.amazonaws.com/", headers={"host": "bedrock.amazonaws.com"}, params={"Action": "CallWithBearerToken"})
with mock.patch.object(botocore.auth, "datetime", mock.Mock(wraps=datetime)) as d:
    d.datetime = mock.Mock(wraps=datetime.datetime)
    d.datetime.utcnow.return_value = fixed
    d.datetime.now.return_value = fixed.replace(tzinfo=datetime.timezone.utc)
    if hasattr(botocore.auth, "get_current_datetime"):
        with mock.patch.object(botocore.auth, "get_current_datetime", return_value=fixed):
            SigV4QueryAuth(Credentials(sys.argv[1], sys.argv[2], "tok"), "bedrock", "us-west-2", expires=900).add_auth(req)
    else:
        SigV4QueryAuth(Credentials(sys.argv[1], sys.argv[2], "tok"), "bedrock", "us-west-2", expires=900).add_auth(req)
print(req.prepare().url)
"#;
        let out = std::process::Command::new(python).args(["-c", script, AKID, SECRET]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let theirs = url::Url::parse(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
        let q = |u: &url::Url| -> BTreeMap<String, String> { u.query_pairs().into_owned().filter(|(k, _)| k != "Version").collect() };
        assert_eq!(q(&ours), q(&theirs));
    }

    #[test]
    fn the_session_policy_names_the_model_alone() {
        let p = session_policy("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "us-east-1");
        let resources = &p["Statement"][0]["Resource"];
        assert_eq!(resources[0], "arn:aws:bedrock:*::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0");
        assert_eq!(resources[1], "arn:aws:bedrock:*:*:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0");
        assert_eq!(session_policy("anthropic.claude-haiku-4-5-20251001-v1:0", "cn-north-1")["Statement"][0]["Resource"][0], "arn:aws-cn:bedrock:*::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0");
    }
}
