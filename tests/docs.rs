//! docs/config.md documents exactly the keys the parser accepts.

use webcollect_shim::config::keys;

#[test]
fn every_config_key_is_documented_and_every_documented_key_exists() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/config.md")).unwrap();
    // Split the doc into sections by their `## `[...]`` headings.
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for line in doc.lines() {
        if let Some(heading) = line.strip_prefix("## `").and_then(|h| h.strip_suffix('`')) {
            sections.push((heading.to_string(), Vec::new()));
        } else if let (Some(row), Some((_, keys))) = (line.strip_prefix("| `"), sections.last_mut())
        {
            keys.push(row.split('`').next().unwrap().to_string());
        }
    }
    let accepted = keys::sections();
    for (section, keys) in &accepted {
        let documented = sections
            .iter()
            .find(|(s, _)| s == section)
            .unwrap_or_else(|| panic!("docs/config.md has no `## `{section}`` section"));
        for key in keys {
            assert!(
                documented.1.iter().any(|k| k == key),
                "{section} {key} is accepted but not documented"
            );
        }
        for key in &documented.1 {
            assert!(
                keys.contains(&key.as_str()),
                "{section} {key} is documented but not accepted"
            );
        }
    }
    for (section, _) in &sections {
        assert!(
            accepted.iter().any(|(s, _)| s == section),
            "docs/config.md documents unknown section {section}"
        );
    }
}
