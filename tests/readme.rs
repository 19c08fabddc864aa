//! The README is for users, and its examples must work: every rules example in it
//! validates, and the two set-up commands are there.

use std::path::Path;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// The ```yaml blocks that hold rules (they start with `- name:`).
fn rule_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        match (&mut cur, line.trim_end()) {
            (None, "```yaml") => cur = Some(String::new()),
            (Some(b), "```") => {
                if b.trim_start().starts_with("- name:") {
                    out.push(b.clone());
                }
                cur = None;
            }
            (Some(b), l) => {
                b.push_str(l);
                b.push('\n');
            }
            _ => {}
        }
    }
    out
}

#[test]
fn every_rules_example_in_the_readme_validates() {
    let text = readme();
    let blocks = rule_blocks(&text);
    assert!(
        blocks.len() >= 3,
        "the README's rule examples were not found"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scripts = atmate::script::ScriptSet::load_dir(
        &root.join("scripts"),
        &atmate::script::Limits::default(),
    )
    .unwrap_or_else(|d| panic!("{}", d.render()));
    let ctx = atmate::rules::ValidationContext {
        modems: vec!["main".into()],
        default_modem: Some("main".into()),
        timezone: None,
        scripts: Some(&scripts),
        allow_senders: vec!["+4917612345678".into()],
    };
    for (i, b) in blocks.iter().enumerate() {
        let name = format!("README.md (rules example {})", i + 1);
        if let Err(d) = atmate::rules::load_sources(&[(Path::new(&name), b)], &ctx) {
            panic!("{}\n\n{b}", d.render());
        }
    }
}

#[test]
fn the_readme_gives_the_two_commands() {
    let text = readme();
    assert!(text.contains("\n    cargo run -- run\n"), "the run command");
    assert!(
        text.contains("\n    cargo test --locked\n"),
        "the test command"
    );
    let ci =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/run")).unwrap();
    assert!(
        ci.contains("\ncargo test --locked\n"),
        ".ci/run runs the README's test command verbatim"
    );
}
