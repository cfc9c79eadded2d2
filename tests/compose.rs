//! The QA kit stays consistent with the binary: every shipped config passes `check`, the
//! drill configs keep the shipped windows and routes, and examples/compose/compose.yaml mounts
//! files that exist, builds from the repository's Dockerfile and runs subcommands the binary
//! has. (Images cannot be built here: no Docker daemon; this is what can be checked without.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use yaml_rust2::{Yaml, YamlLoader};

const TOKEN_VAR: &str = "WEBCOLLECT_SHIM_ADMIN_TOKEN";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn shim(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_webcollect-shim"));
    cmd.args(args)
        .current_dir(root())
        .env_remove("WEBCOLLECT_SHIM_CONFIG")
        .env_remove(TOKEN_VAR);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `dir/*.<ext>`, sorted, as paths relative to the repository root.
fn files(dir: &str, ext: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(&format!(".{ext}")))
        .map(|name| format!("{dir}/{name}"))
        .collect();
    out.sort();
    out
}

fn toml_file(path: &str) -> toml::Table {
    toml::from_str(&std::fs::read_to_string(root().join(path)).unwrap())
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_shipped_config_passes_check() {
    let mut configs = files("config", "toml");
    configs.extend(files("examples/compose", "toml"));
    for expected in [
        "config/webcollect-shim.toml",
        "config/test-gateway.toml",
        "config/drill.toml",
        "examples/compose/shim.toml",
    ] {
        assert!(
            configs.iter().any(|c| c == expected),
            "{expected} is missing"
        );
    }
    for config in &configs {
        // examples/compose/shim.toml publishes its admin listener, which needs a token.
        let out = shim(
            &["check", "--config", config],
            &[(TOKEN_VAR, "a-token-of-at-least-16-characters")],
        );
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{config} fails check:\n{}{stdout}",
            text(&out.stderr)
        );
        assert!(stdout.contains(&format!("{config}: ok")), "{stdout}");
        // Every one of them carries the notice's window.
        assert!(
            stdout.contains("4月20日(月) 2時00分～6時00分"),
            "{config}: {stdout}"
        );
    }

    // The drill configs start their clock before the window, so `check` (at the drill
    // clock's now) still sees the window ahead.
    for config in ["config/drill.toml", "examples/compose/shim.toml"] {
        let out = shim(
            &["check", "--config", config],
            &[(TOKEN_VAR, "a-token-of-at-least-16-characters")],
        );
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains(
                "2020-04-20 02:00:00 JST  (2020-04-19T17:00:00Z)  window 2020-04-20 starts"
            ),
            "{config}: {stdout}"
        );
    }
}

/// The drill configs are the shipped config with other upstreams, listeners and clock:
/// same windows, maintenance answers and routes (so the drill rehearses what production
/// will do). The staging config keeps the shipped window and the test-gateway routes.
#[test]
fn drill_and_staging_configs_keep_the_shipped_windows_and_routes() {
    let shipped = toml_file("config/webcollect-shim.toml");
    for path in ["config/drill.toml", "examples/compose/shim.toml"] {
        let drill = toml_file(path);
        for key in ["windows", "routes", "maintenance", "drill"] {
            assert_eq!(drill.get(key), shipped.get(key), "{path}: [{key}] differs");
        }
        let upstreams = drill["upstreams"].as_table().unwrap();
        assert_eq!(
            upstreams.keys().collect::<Vec<_>>(),
            shipped["upstreams"]
                .as_table()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            "{path}"
        );
        // The 4-hour window lasts a few real minutes, with a real minute before it.
        let clock = drill["clock"].as_table().unwrap();
        assert_eq!(
            clock["start_at"].as_str(),
            Some("2020-04-20T01:00:00+09:00")
        );
        assert_eq!(clock["speed"].as_integer(), Some(60));
    }
    let drill = toml_file("config/drill.toml");
    for upstream in drill["upstreams"].as_table().unwrap().values() {
        assert_eq!(upstream["url"].as_str(), Some("http://127.0.0.1:8081"));
    }

    let staging = toml_file("config/test-gateway.toml");
    for key in ["windows", "maintenance", "drill"] {
        assert_eq!(staging.get(key), shipped.get(key), "[{key}] differs");
    }
    let test_routes: Vec<&toml::Value> = shipped["routes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| matches!(r["upstream"].as_str(), Some("test_gateway" | "atobarai")))
        .collect();
    let staging_routes: Vec<&toml::Value> = staging["routes"].as_array().unwrap().iter().collect();
    assert_eq!(staging_routes, test_routes);
    let urls: BTreeMap<&str, &str> = staging["upstreams"]
        .as_table()
        .unwrap()
        .iter()
        .map(|(name, u)| (name.as_str(), u["url"].as_str().unwrap()))
        .collect();
    assert_eq!(
        urls,
        BTreeMap::from([
            ("atobarai", "https://atobarai-test.kuronekoyamato.co.jp"),
            ("test_gateway", "https://ptwebcollect.jp"),
        ])
    );
}

/// Every shipped config carries the merchant admin screen (加盟店管理画面) as a commented
/// example: uncommented, it is valid and routes its path as a `page` of the service
/// `webcollect.admin_screen`, which the notice's window covers.
#[test]
fn shipped_configs_carry_a_commented_admin_screen_route() {
    for path in [
        "config/webcollect-shim.toml",
        "config/test-gateway.toml",
        "config/drill.toml",
        "examples/compose/shim.toml",
    ] {
        let text = std::fs::read_to_string(root().join(path)).unwrap();
        // As shipped, no such route.
        let shipped = toml_file(path);
        assert!(
            !shipped["routes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["id"].as_str() == Some("admin-screen")),
            "{path}"
        );
        let uncommented =
            crate::support::gateway::uncomment_block(&text, "[upstreams.admin_screen]");
        let env = |name: &str| {
            (name == TOKEN_VAR).then(|| "a-token-of-at-least-16-characters".to_string())
        };
        if let Err(e) = webcollect_shim::config::Config::from_toml_with_env(
            &root().join(path),
            &uncommented,
            &env,
        ) {
            panic!("{path} with the admin screen uncommented:\n{e}");
        }
        let table: toml::Table = toml::from_str(&uncommented).unwrap();
        let route = table["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"].as_str() == Some("admin-screen"))
            .unwrap_or_else(|| panic!("{path}: no admin-screen route"));
        assert_eq!(route["kind"].as_str(), Some("page"), "{path}");
        assert_eq!(
            route["service"].as_str(),
            Some("webcollect.admin_screen"),
            "{path}"
        );
        assert_eq!(route["path_prefix"].as_str(), Some("/webcollect-admin/"));
        assert!(table["upstreams"].get("admin_screen").is_some(), "{path}");
    }
}

fn compose() -> Yaml {
    let path = root().join("examples/compose/compose.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut docs = YamlLoader::load_from_str(&text).unwrap();
    assert_eq!(docs.len(), 1);
    docs.remove(0)
}

fn strings(node: &Yaml) -> Vec<String> {
    node.as_vec()
        .unwrap_or_else(|| panic!("expected a list, got {node:?}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// `${NAME:-default}` → default; anything else as written.
fn compose_value(value: &str) -> String {
    match value.strip_prefix("${").and_then(|v| v.strip_suffix('}')) {
        Some(inner) => inner
            .split_once(":-")
            .map(|(_, default)| default.to_string())
            .unwrap_or_default(),
        None => value.to_string(),
    }
}

/// Runs `webcollect-shim ARGS... --help`: succeeds only if the subcommand and every option
/// before `--help` exist.
fn assert_binary_accepts(args: &[String], what: &str) {
    let mut with_help: Vec<&str> = args.iter().map(String::as_str).collect();
    with_help.push("--help");
    let out = shim(&with_help, &[]);
    assert!(
        out.status.success(),
        "{what}: `webcollect-shim {}` is not accepted by the binary:\n{}",
        with_help.join(" "),
        text(&out.stderr)
    );
}

#[test]
fn compose_file_matches_the_repository_and_the_binary() {
    let compose = compose();
    let dir = root().join("examples/compose");
    let services = compose["services"].as_hash().unwrap();
    let names: Vec<&str> = services.keys().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(names, ["mock-gateway", "shim"]);

    let dockerfile_text = |service: &Yaml| -> (PathBuf, String) {
        let build = &service["build"];
        let context = dir.join(build["context"].as_str().unwrap());
        assert!(
            context.is_dir(),
            "build context {} missing",
            context.display()
        );
        let dockerfile = context.join(build["dockerfile"].as_str().unwrap_or("Dockerfile"));
        let text = std::fs::read_to_string(&dockerfile)
            .unwrap_or_else(|_| panic!("{} missing", dockerfile.display()));
        (context, text)
    };

    let mut mock_port = None;
    for (name, service) in services {
        let name = name.as_str().unwrap();
        let (context, dockerfile) = dockerfile_text(service);
        assert_eq!(
            context.canonicalize().unwrap(),
            root().canonicalize().unwrap(),
            "{name}: build from the repository root"
        );
        // `command` is handed to the image's ENTRYPOINT, the binary.
        assert!(
            dockerfile.contains("ENTRYPOINT [\"webcollect-shim\"]"),
            "Dockerfile ENTRYPOINT changed"
        );
        let command = strings(&service["command"]);
        assert_binary_accepts(&command, name);

        let health = &service["healthcheck"];
        if health["disable"].as_bool() != Some(true) {
            let test = strings(&health["test"]);
            assert_eq!(test[0], "CMD", "{name}");
            assert_eq!(test[1], "webcollect-shim", "{name}");
            assert_binary_accepts(&test[2..], name);
        }

        if name == "mock-gateway" {
            assert_eq!(command[0], "mock-gateway");
            let listen = &command[command.iter().position(|a| a == "--listen").unwrap() + 1];
            assert!(
                listen.starts_with("0.0.0.0:"),
                "reachable from the shim's container"
            );
            mock_port = Some(listen.rsplit(':').next().unwrap().to_string());
        }
    }

    // The shim: its mounted config exists, is where the image reads it, passes `check` with
    // the environment compose gives it, and points at the stand-in's service and port.
    let shim_service = &compose["services"]["shim"];
    assert_eq!(strings(&shim_service["command"]), ["run"]);
    let env: BTreeMap<String, String> = shim_service["environment"]
        .as_hash()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().unwrap().to_string(),
                compose_value(v.as_str().unwrap()),
            )
        })
        .collect();
    let config_in_container = env
        .get("WEBCOLLECT_SHIM_CONFIG")
        .cloned()
        .unwrap_or_else(|| "/etc/webcollect-shim/webcollect-shim.toml".to_string());
    let mut mounted_config = None;
    for volume in strings(&shim_service["volumes"]) {
        let parts: Vec<&str> = volume.split(':').collect();
        let host = dir.join(parts[0]);
        assert!(host.exists(), "mounted {} does not exist", host.display());
        if parts[1] == config_in_container {
            assert_eq!(parts.get(2), Some(&"ro"), "mount the config read-only");
            mounted_config = Some(host);
        }
    }
    let mounted_config = mounted_config.expect("the config is mounted where the shim reads it");
    let token = &env[TOKEN_VAR];
    assert!(
        token.len() >= 16,
        "the default admin token must be ≥ 16 characters"
    );
    let config_arg = mounted_config.to_string_lossy().into_owned();
    let out = shim(&["check", "--config", &config_arg], &[(TOKEN_VAR, token)]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let config: toml::Table =
        toml::from_str(&std::fs::read_to_string(&mounted_config).unwrap()).unwrap();
    let mock_port = mock_port.unwrap();
    for (name, upstream) in config["upstreams"].as_table().unwrap() {
        assert_eq!(
            upstream["url"].as_str().unwrap(),
            format!("http://mock-gateway:{mock_port}"),
            "upstream {name}"
        );
    }
    // Published ports reach listeners bound to all interfaces inside the container.
    let listen = config["listen"].as_table().unwrap();
    let mut listen_ports = Vec::new();
    for key in ["proxy", "admin"] {
        let addr = listen[key].as_str().unwrap();
        assert!(addr.starts_with("0.0.0.0:"), "[listen] {key} = {addr}");
        listen_ports.push(addr.rsplit(':').next().unwrap().to_string());
    }
    let published: Vec<String> = strings(&shim_service["ports"])
        .iter()
        .map(|p| p.rsplit(':').next().unwrap().to_string())
        .collect();
    assert_eq!(published, listen_ports);

    let depends = shim_service["depends_on"].as_hash().unwrap();
    assert!(depends.contains_key(&Yaml::String("mock-gateway".into())));
}

/// The image builds from what the Dockerfile copies: every file the crate compiles in with
/// `include_str!` lies under a copied directory that .dockerignore does not exclude.
#[test]
fn dockerfile_copies_everything_the_binary_compiles_in() {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let builder = dockerfile.split("\nFROM ").nth(1).unwrap_or(&dockerfile);
    let copied: Vec<&str> = builder
        .lines()
        .filter_map(|l| l.strip_prefix("COPY "))
        .filter(|l| !l.starts_with("--from"))
        .flat_map(|l| {
            let mut parts: Vec<&str> = l.split_whitespace().collect();
            parts.pop(); // the destination
            parts
        })
        .collect();
    let ignored = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    let ignored: Vec<&str> = ignored
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();

    let mut includes = Vec::new();
    let mut stack = vec![root().join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            for (i, _) in source.match_indices("include_str!(\"") {
                let rest = &source[i + "include_str!(\"".len()..];
                let target = &rest[..rest.find('"').unwrap()];
                let file = path.parent().unwrap().join(target).canonicalize().unwrap();
                includes.push(file);
            }
        }
    }
    assert!(!includes.is_empty());
    let root = root().canonicalize().unwrap();
    for file in includes {
        let relative = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let top = relative.split('/').next().unwrap();
        assert!(
            copied
                .iter()
                .any(|c| c.trim_end_matches('/') == top || *c == relative),
            "{relative} is compiled in but the Dockerfile's builder stage does not COPY it ({copied:?})"
        );
        assert!(
            !ignored.iter().any(|i| i.trim_end_matches('/') == top),
            "{relative} is excluded by .dockerignore"
        );
    }
}
