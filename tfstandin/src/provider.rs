//! The provider that tf-provider serves: the committed schema for the provider block, every resource type and
//! every data source, with plans that leave computed values unknown. It never applies and never calls AWS.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use rmpv::Value;
use tf_provider::schema::Schema;
use tf_provider::{
    AttributePath, DataSource, Diagnostic, Diagnostics, DynamicDataSource, DynamicResource,
    Provider, Resource,
};

use crate::data;
use crate::schema::{to_schema, BlockDef, SchemaFile};
use crate::values::{check_item_limits, plan};

/// tf-provider's `serve("aws", ..)` names each registered type `aws_<name>`.
const PREFIX: &str = "aws_";

pub struct AwsStandin {
    schema: Arc<SchemaFile>,
    /// The provider block's `region`, known once Terraform configures the provider (plan, not validate).
    region: Arc<OnceLock<String>>,
}

impl AwsStandin {
    pub fn new() -> Self {
        Self {
            schema: Arc::new(SchemaFile::aws()),
            region: Arc::default(),
        }
    }
}

impl Default for AwsStandin {
    fn default() -> Self {
        Self::new()
    }
}

fn unprefixed(name: &str) -> String {
    name.strip_prefix(PREFIX).unwrap_or(name).to_owned()
}

#[async_trait]
impl Provider for AwsStandin {
    type Config<'a> = Value;
    type MetaState<'a> = Value;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        Some(to_schema(&self.schema.provider))
    }

    async fn configure<'a>(
        &self,
        _diags: &mut Diagnostics,
        _terraform_version: String,
        config: Self::Config<'a>,
    ) -> Option<()> {
        let region = crate::values::get(&config, "region").and_then(Value::as_str);
        let _ = self
            .region
            .set(region.unwrap_or(data::DEFAULT_REGION).to_owned());
        Some(())
    }

    fn get_resources(
        &self,
        _diags: &mut Diagnostics,
    ) -> Option<HashMap<String, Box<dyn DynamicResource>>> {
        Some(
            self.schema
                .resources
                .keys()
                .map(|name| {
                    let r = StandinResource {
                        schema: self.schema.clone(),
                        name: name.clone(),
                    };
                    (unprefixed(name), Box::new(r) as Box<dyn DynamicResource>)
                })
                .collect(),
        )
    }

    fn get_data_sources(
        &self,
        _diags: &mut Diagnostics,
    ) -> Option<HashMap<String, Box<dyn DynamicDataSource>>> {
        Some(
            self.schema
                .data_sources
                .keys()
                .map(|name| {
                    let d = StandinDataSource {
                        schema: self.schema.clone(),
                        name: name.clone(),
                        region: self.region.clone(),
                    };
                    (unprefixed(name), Box::new(d) as Box<dyn DynamicDataSource>)
                })
                .collect(),
        )
    }
}

struct StandinResource {
    schema: Arc<SchemaFile>,
    name: String,
}

impl StandinResource {
    fn def(&self) -> &BlockDef {
        &self.schema.resources[&self.name]
    }

    fn never_applies(&self, diags: &mut Diagnostics) {
        diags.add_error(Diagnostic {
            summary: "The AWS provider stand-in cannot apply".into(),
            detail: format!(
                "tfstandin serves the schema of {} for validate and plan only.",
                self.name
            )
            .into(),
            attribute: AttributePath::root(),
        });
    }
}

#[async_trait]
impl Resource for StandinResource {
    type State<'a> = Value;
    type PrivateState<'a> = Value;
    type ProviderMetaState<'a> = Value;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        Some(to_schema(self.def()))
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Self::State<'a>) -> Option<()> {
        check_item_limits(self.def(), &config, &AttributePath::root(), diags);
        Some(())
    }

    async fn read<'a>(
        &self,
        _diags: &mut Diagnostics,
        state: Self::State<'a>,
        private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        Some((state, private_state))
    }

    async fn plan_create<'a>(
        &self,
        _diags: &mut Diagnostics,
        proposed_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        Some((plan(self.def(), proposed_state), Value::Nil))
    }

    async fn plan_update<'a>(
        &self,
        _diags: &mut Diagnostics,
        _prior_state: Self::State<'a>,
        proposed_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        prior_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>, Vec<AttributePath>)> {
        Some((
            plan(self.def(), proposed_state),
            prior_private_state,
            Vec::new(),
        ))
    }

    async fn plan_destroy<'a>(
        &self,
        _diags: &mut Diagnostics,
        _prior_state: Self::State<'a>,
        prior_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<Self::PrivateState<'a>> {
        Some(prior_private_state)
    }

    async fn create<'a>(
        &self,
        diags: &mut Diagnostics,
        _planned_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        _planned_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        self.never_applies(diags);
        None
    }

    async fn update<'a>(
        &self,
        diags: &mut Diagnostics,
        _prior_state: Self::State<'a>,
        _planned_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        _planned_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        self.never_applies(diags);
        None
    }

    async fn destroy<'a>(
        &self,
        diags: &mut Diagnostics,
        _prior_state: Self::State<'a>,
        _planned_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<()> {
        self.never_applies(diags);
        None
    }
}

struct StandinDataSource {
    schema: Arc<SchemaFile>,
    name: String,
    region: Arc<OnceLock<String>>,
}

impl StandinDataSource {
    fn def(&self) -> &BlockDef {
        &self.schema.data_sources[&self.name]
    }
}

#[async_trait]
impl DataSource for StandinDataSource {
    type State<'a> = Value;
    type ProviderMetaState<'a> = Value;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        Some(to_schema(self.def()))
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Self::State<'a>) -> Option<()> {
        check_item_limits(self.def(), &config, &AttributePath::root(), diags);
        Some(())
    }

    async fn read<'a>(
        &self,
        _diags: &mut Diagnostics,
        config: Self::State<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<Self::State<'a>> {
        let region = self
            .region
            .get()
            .map(String::as_str)
            .unwrap_or(data::DEFAULT_REGION);
        Some(data::read(&self.name, self.def(), config, region))
    }
}
