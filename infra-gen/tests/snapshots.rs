//! Snapshots of every synthesized file, stored in the workspace's `snapshots/` folder. A change
//! to the generated Terraform shows up here as a reviewed snapshot diff (`cargo insta review`).

#[test]
fn every_generated_file_matches_its_snapshot() {
    let files = infra_gen::synth().expect("the default stack synthesizes");
    assert!(files.len() >= 8, "expected the stack split by concern, got {:?}", files.keys());
    insta::with_settings!({
        snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"),
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        for (name, text) in &files {
            insta::assert_snapshot!(name.trim_end_matches(".tf.json"), text);
        }
    });
}
