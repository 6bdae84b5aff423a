//! `make deploy`'s Terraform state backend, against moto: scripts/deploy.sh makes the state bucket
//! private, TLS-only, versioned and encrypted (and says so again on a second run without changing
//! anything), refuses a named bucket that does not exist, and gives `terraform init` the settings
//! of generated/'s partial S3 backend. Then Terraform itself (where it is installed) moves a local
//! state into the bucket, keeps it there, and refuses to run while another holds the S3 lock
//! (`use_lockfile`). The AWS CLI comes from the project's virtualenv (scripts/tools.sh).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

const REGION: &str = "eu-west-1";
const ACCOUNT: &str = "123456789012";

struct Env {
    moto: testenv::moto::Moto,
    path: String,
}

impl Env {
    fn new() -> Env {
        let root = testenv::root();
        let moto = testenv::moto::Moto::start(&root).expect("moto starts");
        let path = format!("{}:{}", testenv::venv_bin(&root).display(), std::env::var("PATH").unwrap_or_default());
        Env { moto, path }
    }

    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.current_dir(testenv::root()).env("PATH", &self.path).envs(self.moto.sdk_env());
        c.env("AWS_REGION", REGION).env("AWS_DEFAULT_REGION", REGION).env("PROJECT_NAME", "demo").env("ENVIRONMENT", "staging");
        c.env_remove("TF_STATE_BUCKET").env_remove("TF_STATE_KMS_KEY").env_remove("AWS_PROFILE");
        c
    }

    fn state_backend(&self, extra: &[(&str, &str)]) -> Output {
        let mut c = self.command("scripts/deploy.sh");
        c.arg("state-backend").envs(extra.iter().copied());
        c.output().expect("deploy.sh runs")
    }

    fn aws(&self, args: &[&str]) -> Value {
        let out = self.command("aws").args(["--region", REGION, "--output", "json"]).args(args).output().expect("aws runs");
        assert!(out.status.success(), "aws {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn the_state_bucket_is_private_tls_only_versioned_and_encrypted() {
    let env = Env::new();
    let bucket = format!("infra-gen-tfstate-{ACCOUNT}-{REGION}");
    let out = env.state_backend(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let args = text(&out.stdout);
    for want in [
        format!("-backend-config=bucket={bucket}"),
        "-backend-config=key=demo/staging/terraform.tfstate".to_string(),
        format!("-backend-config=region={REGION}"),
        "-reconfigure".to_string(),
    ] {
        assert!(args.split_whitespace().any(|a| a == want), "{want} missing from {args}");
    }
    assert!(text(&out.stderr).contains("creating the Terraform state bucket"), "{}", text(&out.stderr));

    let pab = &env.aws(&["s3api", "get-public-access-block", "--bucket", &bucket])["PublicAccessBlockConfiguration"];
    for k in ["BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"] {
        assert_eq!(pab[k], true, "{k}: {pab}");
    }
    assert_eq!(env.aws(&["s3api", "get-bucket-versioning", "--bucket", &bucket])["Status"], "Enabled");
    let sse = env.aws(&["s3api", "get-bucket-encryption", "--bucket", &bucket]);
    assert_eq!(sse["ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"], "AES256");
    assert_eq!(env.aws(&["s3api", "get-bucket-ownership-controls", "--bucket", &bucket])["OwnershipControls"]["Rules"][0]["ObjectOwnership"], "BucketOwnerEnforced");
    let policy: Value = serde_json::from_str(env.aws(&["s3api", "get-bucket-policy", "--bucket", &bucket])["Policy"].as_str().unwrap()).unwrap();
    let deny = &policy["Statement"][0];
    assert_eq!((deny["Effect"].as_str(), deny["Condition"]["Bool"]["aws:SecureTransport"].as_str()), (Some("Deny"), Some("false")), "{policy}");
    assert_eq!(deny["Resource"], json!([format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")]));
    let lifecycle = env.aws(&["s3api", "get-bucket-lifecycle-configuration", "--bucket", &bucket]);
    assert_eq!(lifecycle["Rules"][0]["NoncurrentVersionExpiration"]["NoncurrentDays"], 90, "{lifecycle}");

    // Again: the same bucket and settings, nothing created.
    let again = env.state_backend(&[]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(text(&again.stdout), args);
    assert!(!text(&again.stderr).contains("creating"), "{}", text(&again.stderr));

    // A bucket of the operator's that is not there stops the deploy before Terraform runs.
    let missing = env.state_backend(&[("TF_STATE_BUCKET", "no-such-state-bucket")]);
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("TF_STATE_BUCKET=no-such-state-bucket does not exist"), "{}", text(&missing.stderr));
    // One that is: used as it is, with the KMS key asked for.
    let own = env.state_backend(&[("TF_STATE_BUCKET", bucket.as_str()), ("TF_STATE_KMS_KEY", "arn:aws:kms:eu-west-1:123456789012:key/k")]);
    assert!(own.status.success(), "{}", text(&own.stderr));
    assert!(text(&own.stdout).contains("-backend-config=kms_key_id=arn:aws:kms:eu-west-1:123456789012:key/k"), "{}", text(&own.stdout));

    terraform_keeps_its_state_there(&env, &bucket);
}

/// generated/'s `terraform` block (backend included) with one resource of Terraform's own
/// (`terraform_data`: no provider to download).
fn config(dir: &Path, input: &str, backend: bool) {
    let versions: Value = serde_json::from_str(&std::fs::read_to_string(testenv::root().join("generated/versions.tf.json")).unwrap()).unwrap();
    let mut terraform = versions["terraform"].clone();
    let block = terraform["backend"]["s3"].clone();
    assert_eq!((block["encrypt"].as_bool(), block["use_lockfile"].as_bool()), (Some(true), Some(true)), "generated/'s backend: {block}");
    terraform.as_object_mut().unwrap().remove("required_providers");
    if !backend {
        terraform.as_object_mut().unwrap().remove("backend");
    }
    let doc = json!({"terraform": terraform, "resource": {"terraform_data": {"marker": {"input": input}}}});
    std::fs::write(dir.join("main.tf.json"), serde_json::to_string_pretty(&doc).unwrap()).unwrap();
}

fn terraform_keeps_its_state_there(env: &Env, bucket: &str) {
    let Some(terraform) = testenv::terraform() else {
        assert!(!testenv::is_ci(), "no terraform binary on PATH (CI=true)");
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "note: no terraform binary on PATH; the backend is not exercised by Terraform");
        return;
    };
    let scratch = std::env::temp_dir().join(format!("state-backend-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let dir = scratch.join("config");
    std::fs::create_dir_all(&dir).unwrap();
    let tf = |args: &[&str]| -> Output {
        let mut c = env.command(&terraform);
        c.arg(format!("-chdir={}", dir.display())).args(args).arg("-no-color");
        c.env("TF_DATA_DIR", scratch.join(".terraform")).env("HOME", &scratch).env("CHECKPOINT_DISABLE", "1").env("TF_IN_AUTOMATION", "1");
        c.output().expect("terraform runs")
    };
    let ok = |o: Output, what: &str| {
        assert!(o.status.success(), "terraform {what}:\n{}{}", text(&o.stdout), text(&o.stderr));
        text(&o.stdout)
    };

    // A stack deployed before the backend existed: its state is local.
    config(&dir, "v1", false);
    ok(tf(&["init", "-input=false"]), "init (local)");
    ok(tf(&["apply", "-auto-approve", "-input=false"]), "apply (local)");
    let local_state: PathBuf = dir.join("terraform.tfstate");
    assert!(local_state.exists());

    // The next deploy: deploy.sh sees it and has Terraform move it into the bucket.
    config(&dir, "v1", true);
    let out = env.state_backend(&[("TF_LOCAL_STATE", local_state.to_str().unwrap())]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let args = text(&out.stdout);
    assert!(args.contains("-migrate-state -force-copy"), "{args}");
    // moto listens on plain HTTP, and it enforces the TLS-only policy checked above: Terraform
    // could not read its state through it, so that one statement goes for this part.
    env.aws(&["s3api", "delete-bucket-policy", "--bucket", bucket]);
    let endpoint = format!("endpoints={{s3=\"{}\"}}", env.moto.endpoint);
    let mut init = vec!["init", "-input=false"];
    init.extend(args.split_whitespace());
    // Only for moto: its endpoint, path-style addressing, no account lookup through STS.
    init.extend(["-backend-config", &endpoint, "-backend-config=use_path_style=true", "-backend-config=skip_credentials_validation=true", "-backend-config=skip_requesting_account_id=true", "-backend-config=skip_metadata_api_check=true"]);
    ok(tf(&init), "init (S3 backend, migrating)");
    let key = "demo/staging/terraform.tfstate";
    let head = env.aws(&["s3api", "head-object", "--bucket", bucket, "--key", key]);
    assert!(head["ServerSideEncryption"].is_string(), "the state is encrypted: {head}");
    let plan = ok(tf(&["plan", "-input=false"]), "plan");
    assert!(plan.contains("No changes."), "the moved state has the resource:\n{plan}");

    // A change is written to the bucket, as a new version of the state.
    config(&dir, "v2", true);
    ok(tf(&["apply", "-auto-approve", "-input=false"]), "apply (S3 backend)");
    let versions = env.aws(&["s3api", "list-object-versions", "--bucket", bucket, "--prefix", key]);
    assert!(versions["Versions"].as_array().unwrap().len() >= 2, "{versions}");

    // Someone else's run holds the lock: Terraform will not touch the state.
    let lock = json!({"ID": "other", "Operation": "OperationTypeApply", "Info": "", "Who": "someone@elsewhere", "Version": "1.11.4", "Created": "2026-12-01T00:00:00Z", "Path": format!("{bucket}/{key}")});
    let lock_file = scratch.join("lock.json");
    std::fs::write(&lock_file, lock.to_string()).unwrap();
    env.aws(&["s3api", "put-object", "--bucket", bucket, "--key", &format!("{key}.tflock"), "--body", lock_file.to_str().unwrap()]);
    let locked = tf(&["plan", "-input=false", "-lock-timeout=0s"]);
    assert!(!locked.status.success());
    let said = text(&locked.stderr) + &text(&locked.stdout);
    assert!(said.contains("Error acquiring the state lock") && said.contains("someone@elsewhere"), "{said}");
    let _ = std::fs::remove_dir_all(&scratch);
}

/// Issue 24: the default state bucket's name is predictable and bucket names are global, so
/// another account could make it first and receive the state (every API key). deploy.sh checks
/// the owner with S3's bucket owner condition on every call (the emulator answers a mismatch 403
/// as S3 does): a bucket of another account than the expected one is refused, by name or by
/// default, and nothing is written to it.
#[test]
fn a_state_bucket_of_another_account_is_refused() {
    let env = Env::new();
    // The default bucket, held by "another account" (the emulator's buckets are all one
    // account's: expecting another owner is the same check failing).
    let out = env.state_backend(&[("TF_STATE_BUCKET_OWNER", "210987654321")]);
    assert!(!out.status.success(), "deploy went on with a bucket of another account");
    assert!(text(&out.stderr).contains("is not account 210987654321's"), "{}", text(&out.stderr));
    // The bucket was made by the emulator's account, and nothing of the settings was written as if
    // it were the expected one's: no versioning set.
    let bucket = format!("infra-gen-tfstate-{ACCOUNT}-{REGION}");
    let versioning = env.aws(&["s3api", "get-bucket-versioning", "--bucket", &bucket]);
    assert_ne!(versioning["Status"], "Enabled", "{versioning}");
    // A named bucket of another account, likewise.
    let out = env.state_backend(&[("TF_STATE_BUCKET", &bucket), ("TF_STATE_BUCKET_OWNER", "210987654321")]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("is not account 210987654321's"), "{}", text(&out.stderr));
    // The expected owner (the caller's account by default) passes.
    assert!(env.state_backend(&[]).status.success());
    assert!(env.state_backend(&[("TF_STATE_BUCKET", &bucket)]).status.success());
}
