use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The manifest's format; an agent refuses one it does not know.
pub const VERSION: u32 = 1;

/// Every file a job may write, each of which gets an upload form: the outputs its options
/// ask for and one per file a step writes. Its name below the job's prefix, content type
/// and largest size.
pub fn files(spec: &super::spec::JobSpec) -> Vec<super::step::StepFile> {
    let mut files: Vec<super::step::StepFile> = super::job::possible_outputs(&spec.options)
        .into_iter()
        .map(|o| super::step::StepFile { path: o.file_name().to_owned(), content_type: o.content_type(), max_bytes: o.max_bytes() })
        .collect();
    files.extend(spec.steps.iter().filter_map(super::step::Step::file));
    files.extend(spec.computer.iter().flat_map(super::goal::Goal::files));
    files
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub version: u32,
    pub job: super::spec::JobSpec,
    /// One upload form per file the job can produce, by its name below the job's prefix
    /// (`screenshot.png`, `files/invoice.pdf`).
    pub uploads: BTreeMap<String, Upload>,
    /// The tenant secrets the job names: an object of their own, read once and deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<SecretLinks>,
    /// A computer-use job's model: where to reach it and its prices (its key is in the
    /// secrets object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelGrant>,
}

/// How a computer-use job reaches its model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelGrant {
    /// The service's base URL (`https://bedrock-runtime.<region>.amazonaws.com`,
    /// `https://api.anthropic.com`).
    pub endpoint: String,
    pub prices: super::goal::Prices,
}

/// A pre-signed S3 POST form: the policy binds the key, the content type and the size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upload {
    /// Where the form goes: the bucket's endpoint.
    pub url: String,
    /// The form's fields, sent before the file.
    pub fields: BTreeMap<String, String>,
    /// The largest file the policy allows (`content-length-range`).
    pub max_bytes: u64,
}

/// Pre-signed links to the job's secrets object: read it, then delete it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretLinks {
    pub get: String,
    pub delete: String,
}
