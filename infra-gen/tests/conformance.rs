//! Provider conformance: every type, argument and nested block infra-gen emits exists in the AWS
//! provider's schema (extracted from the pinned CDKTF provider package, see
//! `scripts/provider-schema.sh`), every required argument is present, block shapes match their
//! nesting, and every reference resolves to a declaration and an attribute its type exports.

use tfjson::schema::Schema;

#[test]
fn generated_stack_conforms_to_the_provider_schema() {
    let schema = Schema::aws();
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

/// The committed schema covers exactly the types the stack emits: a type added to the stack must be
/// added to `types.txt` (and the schema re-extracted), and one no longer used is dropped from both.
#[test]
fn schema_covers_exactly_the_emitted_types() {
    let schema = Schema::aws();
    let mut emitted = std::collections::BTreeSet::new();
    for config in [infra_gen::AppConfig::default(), infra_gen::AppConfig { nat_per_az: true, ..Default::default() }] {
        for doc in infra_gen::build(&config).unwrap().documents().unwrap().values() {
            for (section, prefix) in [("resource", ""), ("data", "data.")] {
                if let Some(types) = doc.get(section).and_then(|v| v.as_object()) {
                    emitted.extend(types.keys().map(|t| format!("{prefix}{t}")));
                }
            }
        }
    }
    let in_schema: std::collections::BTreeSet<String> = schema.types.keys().cloned().collect();
    assert_eq!(emitted, in_schema, "update tfjson/provider-schema/types.txt and run scripts/provider-schema.sh");
}
