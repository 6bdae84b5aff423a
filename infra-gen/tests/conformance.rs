//! Provider conformance: every type, argument and nested block infra-gen emits exists in the AWS
//! provider's schema (extracted from the pinned CDKTF provider package, see
//! `scripts/provider-schema.sh`), every required argument is present, block shapes match their
//! nesting, and every reference resolves to a declaration and an attribute its type exports.

use tfjson::schema::Schema;

const SCHEMA: &str = include_str!("../provider-schema/aws.json");

#[test]
fn generated_stack_conforms_to_the_provider_schema() {
    let schema = Schema::from_json(SCHEMA).expect("the committed schema parses");
    for config in [infra_gen::AppConfig::default(), infra_gen::AppConfig { nat_per_az: true, ..Default::default() }] {
        let docs = infra_gen::build(&config).unwrap().documents().unwrap();
        let report = tfjson::check(&docs, &schema);
        println!("{report}");
        assert!(report.is_ok(), "conformance violations:\n{report}");
        assert!(report.counts.types >= 50, "suspiciously few types checked: {report}");
        assert!(report.counts.arguments > 500, "suspiciously few arguments checked: {report}");
        assert!(report.counts.references > 200, "suspiciously few references checked: {report}");
    }
}
