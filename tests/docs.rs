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

/// docs/architecture.md's layer table lists the stack's layers, in the stack's order, by the
/// names `proxy::LAYERS` gives them, and each row's file exists.
#[test]
fn the_architecture_layer_table_is_the_stack() {
    let root = env!("CARGO_MANIFEST_DIR");
    let doc = std::fs::read_to_string(format!("{root}/docs/architecture.md")).unwrap();
    let section = doc
        .split("## The request path")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a request-path section");
    // Rows: | # | `name` | `Layer` | `file` | what |
    let rows: Vec<(String, String)> = section
        .lines()
        .filter(|l| l.starts_with("| ") && l.chars().nth(2).is_some_and(|c| c.is_ascii_digit()))
        .map(|l| {
            let cells: Vec<&str> = l.split(" | ").collect();
            (
                cells[1].trim_matches('`').to_string(),
                cells[3].trim_matches('`').to_string(),
            )
        })
        .collect();
    let names: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        webcollect_shim::proxy::LAYERS,
        "docs/architecture.md"
    );
    for (name, file) in &rows {
        assert!(
            std::path::Path::new(&format!("{root}/src/{file}")).exists(),
            "{name}: src/{file} does not exist"
        );
    }
}
