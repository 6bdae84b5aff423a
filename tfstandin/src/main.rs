//! `terraform-provider-aws`: the binary Terraform starts through a CLI config's `dev_overrides`.
//! `terraform-provider-aws --summary` prints what it serves instead.

use tfstandin::provider::AwsStandin;
use tfstandin::schema::SchemaFile;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--summary") {
        let schema = SchemaFile::aws();
        let (types, attributes, blocks) = tfstandin::schema::size(&schema);
        println!(
            "tfstandin: AWS provider {} schema from {}: {} resource types, {} data sources \
             ({types} types), {attributes} attributes, {blocks} nested blocks",
            schema.source.provider_version,
            schema.source.package,
            schema.resources.len(),
            schema.data_sources.len(),
        );
        return Ok(());
    }
    // Terraform's automatic mTLS: with both of rustls' crypto providers compiled in (the workspace
    // unifies features), rustls needs to be told which one to use.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tf_provider::serve("aws", AwsStandin::new()).await
}
