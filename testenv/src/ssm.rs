//! SSM parameters as an operator writes them: the tenants' secrets and webhook signing secrets
//! (`aws ssm put-parameter --type SecureString --overwrite`). The tests and the local stack write
//! them through this one function.

/// A SecureString parameter `name` holding `value`, written over any before it.
pub async fn put_secure(ssm: &aws_sdk_ssm::Client, name: &str, value: &str) -> Result<(), String> {
    ssm.put_parameter()
        .name(name)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("ssm:PutParameter {name}: {}", aws_sdk_ssm::error::DisplayErrorContext(e)))
}
