//! Fuzzes TOML parsing and validation: any input yields a config or located errors, never a
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webcollect_shim::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml_with_env(std::path::Path::new("fuzz.toml"), text, &|_| None) {
        Ok(config) => {
            let _ = webcollect_shim::decide::snapshot::Snapshot::new(
                std::sync::Arc::new(config),
                &[],
                1,
                chrono::DateTime::UNIX_EPOCH,
            );
        }
        Err(err) => {
            assert!(!err.is_empty());
            for line in err.lines() {
                assert!(line.starts_with("fuzz.toml:"), "{line}");
            }
        }
    }
});
