//! The QA kit stays consistent with the binary: every shipped config passes `check`, the
//! drill configs keep the shipped windows and routes, and examples/compose/compose.yaml mounts
//! files that exist, builds from the repository's Dockerfile, runs subcommands the binary has
//! and writes only to the volumes it mounts. These are the checks that need no container
//! engine; .ci/container.sh builds the images and runs both compose files.

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
        "examples/compose/shim-unmodified.toml",
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
    for config in [
        "config/drill.toml",
        "examples/compose/shim.toml",
        "examples/compose/shim-unmodified.toml",
    ] {
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
    for path in [
        "config/drill.toml",
        "examples/compose/shim.toml",
        "examples/compose/shim-unmodified.toml",
    ] {
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
    // Every shipped config fronts the same names when its TLS listener is on: the gateway's.
    let hosts = |table: &toml::Table| table["tls"]["hosts"].clone();
    let gateway: Vec<toml::Value> = webcollect_shim::config::GATEWAY_HOSTS
        .iter()
        .map(|h| toml::Value::String((*h).to_string()))
        .collect();
    assert_eq!(hosts(&shipped), toml::Value::Array(gateway));
    for path in [
        "config/drill.toml",
        "config/test-gateway.toml",
        "examples/compose/shim.toml",
        "examples/compose/shim-unmodified.toml",
    ] {
        assert_eq!(
            hosts(&toml_file(path)),
            hosts(&shipped),
            "{path}: [tls] hosts"
        );
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
        "examples/compose/shim-unmodified.toml",
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
    compose_file("compose.yaml")
}

fn compose_file(name: &str) -> Yaml {
    let path = root().join("examples/compose").join(name);
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

/// A service that runs the repository's image: built from the repository root with its
/// Dockerfile, and every command (and health check) one the binary accepts. Returns the
/// command.
fn check_image_service(name: &str, service: &Yaml, dir: &Path) -> Vec<String> {
    let build = &service["build"];
    let context = dir.join(build["context"].as_str().unwrap());
    assert!(
        context.is_dir(),
        "build context {} missing",
        context.display()
    );
    assert_eq!(
        context.canonicalize().unwrap(),
        root().canonicalize().unwrap(),
        "{name}: build from the repository root"
    );
    let dockerfile = context.join(build["dockerfile"].as_str().unwrap_or("Dockerfile"));
    let dockerfile = std::fs::read_to_string(&dockerfile)
        .unwrap_or_else(|_| panic!("{} missing", dockerfile.display()));
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
    command
}

/// The stand-in's port, from its `--listen 0.0.0.0:PORT` (reachable from other containers).
fn mock_gateway_port(command: &[String]) -> String {
    assert_eq!(command[0], "mock-gateway");
    let listen = &command[command.iter().position(|a| a == "--listen").unwrap() + 1];
    assert!(
        listen.starts_with("0.0.0.0:"),
        "reachable from the shim's container"
    );
    listen.rsplit(':').next().unwrap().to_string()
}

/// A service's `environment`, `${NAME:-default}` read as its default.
fn environment(service: &Yaml) -> BTreeMap<String, String> {
    service["environment"]
        .as_hash()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().unwrap().to_string(),
                compose_value(v.as_str().unwrap()),
            )
        })
        .collect()
}

/// The shim service's config: mounted read-only where the image reads it, passing `check`
/// with the environment compose gives it, every upstream at the stand-in. Returns the file
/// on the host, the path in the container and the parsed file.
fn check_shim_config(
    shim_service: &Yaml,
    dir: &Path,
    mock_port: &str,
) -> (PathBuf, String, toml::Table) {
    assert_eq!(strings(&shim_service["command"]), ["run"]);
    let env = environment(shim_service);
    let config_in_container = env
        .get("WEBCOLLECT_SHIM_CONFIG")
        .cloned()
        .unwrap_or_else(|| "/etc/webcollect-shim/webcollect-shim.toml".to_string());
    let mut mounted_config = None;
    for volume in strings(&shim_service["volumes"]) {
        let parts: Vec<&str> = volume.split(':').collect();
        if !parts[0].starts_with('.') {
            continue; // a named volume
        }
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
    for (name, upstream) in config["upstreams"].as_table().unwrap() {
        assert_eq!(
            upstream["url"].as_str().unwrap(),
            format!("http://mock-gateway:{mock_port}"),
            "upstream {name}"
        );
    }
    (mounted_config, config_in_container, config)
}

/// `(host port, container port)` of each published port.
fn published(service: &Yaml) -> Vec<(String, String)> {
    strings(&service["ports"])
        .iter()
        .map(|p| {
            let mut parts = p.rsplit(':');
            let container = parts.next().unwrap().to_string();
            (parts.next().unwrap().to_string(), container)
        })
        .collect()
}

/// A `read_only: true` service whose only writable mounts are named volumes at `writable`,
/// each a directory the Dockerfile creates for uid 10001 (so a fresh volume is the shim
/// user's); everything else is mounted read-only. The shim also gets a stop grace period no
/// shorter than its shutdown_grace.
fn check_read_only(name: &str, service: &Yaml, writable: &[String]) {
    assert_eq!(
        service["read_only"].as_bool(),
        Some(true),
        "{name}: read_only: true"
    );
    assert!(
        service["tmpfs"].is_badvalue(),
        "{name}: the shim writes nowhere a tmpfs would be needed"
    );
    let volumes = match &service["volumes"] {
        Yaml::BadValue => Vec::new(),
        v => strings(v),
    };
    let mut mounted = Vec::new();
    for volume in &volumes {
        let parts: Vec<&str> = volume.split(':').collect();
        if parts.get(2) == Some(&"ro") {
            continue;
        }
        assert!(
            !parts[0].starts_with('.') && !parts[0].starts_with('/'),
            "{name}: {volume}: a writable mount is a named volume"
        );
        assert!(
            writable.iter().any(|w| w == parts[1]),
            "{name}: {volume}: writable, but not where the shim writes ({writable:?})"
        );
        mounted.push(parts[1].to_string());
    }
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let created: Vec<&str> = dockerfile
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("RUN install -d -o 10001 -g 10001 -m 0700 ")
        })
        .flat_map(str::split_whitespace)
        .collect();
    for dir in writable {
        assert!(mounted.contains(dir), "{name}: no volume at {dir}");
        assert!(
            created.contains(&dir.as_str()),
            "{name}: the Dockerfile does not create {dir} for uid 10001 ({created:?})"
        );
    }
}

/// The shim's [admin] state_dir in the container: WEBCOLLECT_SHIM_STATE_DIR.
fn state_dir(shim_service: &Yaml) -> String {
    environment(shim_service)
        .get("WEBCOLLECT_SHIM_STATE_DIR")
        .cloned()
        .expect("WEBCOLLECT_SHIM_STATE_DIR: the shim keeps its drills in a volume")
}

/// compose's default stop timeout (10 s) would kill the shim in the middle of its
/// shutdown_grace (30 s by default, unset in the kit's configs).
fn check_stop_grace(service: &Yaml, config: &toml::Table) {
    assert!(
        config
            .get("server")
            .and_then(|s| s.get("shutdown_grace"))
            .is_none(),
        "the kit's configs keep the default shutdown_grace (30s)"
    );
    let grace = service["stop_grace_period"]
        .as_str()
        .expect("stop_grace_period is set");
    let seconds: u64 = grace.strip_suffix('s').unwrap().parse().unwrap();
    assert!(seconds > 30, "stop_grace_period {grace} ≤ shutdown_grace");
}

#[test]
fn compose_file_matches_the_repository_and_the_binary() {
    let compose = compose();
    let dir = root().join("examples/compose");
    let services = compose["services"].as_hash().unwrap();
    let names: Vec<&str> = services.keys().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(names, ["mock-gateway", "shim"]);
    let mut mock_port = None;
    for (name, service) in services {
        let name = name.as_str().unwrap();
        let command = check_image_service(name, service, &dir);
        if name == "mock-gateway" {
            mock_port = Some(mock_gateway_port(&command));
        }
    }

    // The shim: its mounted config exists, is where the image reads it, passes `check` with
    // the environment compose gives it, and points at the stand-in's service and port.
    let shim_service = &compose["services"]["shim"];
    let (_, _, config) = check_shim_config(shim_service, &dir, &mock_port.unwrap());
    // Published ports reach listeners bound to all interfaces inside the container.
    let listen = config["listen"].as_table().unwrap();
    let mut listen_ports = Vec::new();
    for key in ["proxy", "admin"] {
        let addr = listen[key].as_str().unwrap();
        assert!(addr.starts_with("0.0.0.0:"), "[listen] {key} = {addr}");
        listen_ports.push(addr.rsplit(':').next().unwrap().to_string());
    }
    let ports: Vec<String> = published(shim_service)
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    assert_eq!(ports, listen_ports);

    let depends = shim_service["depends_on"].as_hash().unwrap();
    assert!(depends.contains_key(&Yaml::String("mock-gateway".into())));

    // Read-only roots: the stand-in writes nothing, the shim only its state_dir.
    check_read_only("mock-gateway", &compose["services"]["mock-gateway"], &[]);
    let state = state_dir(shim_service);
    check_read_only("shim", shim_service, std::slice::from_ref(&state));
    assert!(
        compose["volumes"]
            .as_hash()
            .unwrap()
            .contains_key(&Yaml::String("state".into()))
    );
    check_stop_grace(shim_service, &config);
}

/// examples/compose/compose.unmodified.yaml: a merchant container whose integration keeps the
/// gateway's URLs reaches the shim by host name. Its extra_hosts send every name the shim's
/// TLS listener serves to the shim's fixed address; the shim listens on 443 there (an
/// unprivileged user may bind it); the merchant trusts the CA the shim writes into the
/// shared volume before its own command starts.
#[test]
fn unmodified_variant_sends_the_gateway_names_to_the_shim_and_trusts_its_ca() {
    let compose = compose_file("compose.unmodified.yaml");
    let dir = root().join("examples/compose");
    let services = compose["services"].as_hash().unwrap();
    let names: Vec<&str> = services.keys().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(names, ["mock-gateway", "shim", "merchant"]);
    let services = &compose["services"];
    let mock_port = mock_gateway_port(&check_image_service(
        "mock-gateway",
        &services["mock-gateway"],
        &dir,
    ));
    let shim_service = &services["shim"];
    check_image_service("shim", shim_service, &dir);
    let (_, config_in_container, config) = check_shim_config(shim_service, &dir, &mock_port);

    // The TLS listener: on all interfaces, on a port the image's user may bind, published.
    let tls_addr = config["listen"]["tls"]
        .as_str()
        .expect("[listen] tls is set");
    assert!(tls_addr.starts_with("0.0.0.0:"), "{tls_addr}");
    let tls_port: u16 = tls_addr.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(tls_port, 443, "the integration's https URLs mean port 443");
    let unprivileged = shim_service["sysctls"]["net.ipv4.ip_unprivileged_port_start"]
        .as_i64()
        .expect("sysctls lets uid 10001 bind below 1024");
    assert!(i64::from(tls_port) >= unprivileged);
    assert!(published(shim_service).contains(&("8443".to_string(), "443".to_string())));

    // The CA directory is the named volume `ca`, where [tls] ca_dir resolves in the container.
    let ca_dir = Path::new(&config_in_container)
        .parent()
        .unwrap()
        .join(config["tls"]["ca_dir"].as_str().unwrap());
    let shim_volumes = strings(&shim_service["volumes"]);
    assert!(
        shim_volumes.contains(&format!("ca:{}", ca_dir.display())),
        "{shim_volumes:?}"
    );
    assert!(
        compose["volumes"]
            .as_hash()
            .unwrap()
            .contains_key(&Yaml::String("ca".into()))
    );
    // Read-only roots: the shim writes its CA and its state_dir, both volumes the image makes
    // the shim user's, so fresh named volumes are writable.
    check_read_only("mock-gateway", &services["mock-gateway"], &[]);
    check_read_only(
        "shim",
        shim_service,
        &[ca_dir.display().to_string(), state_dir(shim_service)],
    );
    check_stop_grace(shim_service, &config);

    // The merchant: every [tls] hosts name goes to the shim's fixed address.
    let merchant = &services["merchant"];
    // Its image is built here, from Debian's slim image (no other base to pull).
    assert!(merchant["image"].as_str().is_some());
    let merchant_dockerfile = dir
        .join(merchant["build"]["context"].as_str().unwrap())
        .join("Dockerfile");
    let merchant_dockerfile = std::fs::read_to_string(&merchant_dockerfile)
        .unwrap_or_else(|_| panic!("{} missing", merchant_dockerfile.display()));
    assert!(merchant_dockerfile.contains("\nFROM debian:bookworm-slim\n"));
    assert!(merchant_dockerfile.contains("php-cli ca-certificates"));
    let shim_ip = shim_service["networks"]["qa"]["ipv4_address"]
        .as_str()
        .unwrap()
        .to_string();
    let subnet = compose["networks"]["qa"]["ipam"]["config"][0]["subnet"]
        .as_str()
        .unwrap();
    let net: ipnet::Ipv4Net = subnet.parse().unwrap();
    assert!(net.contains(&shim_ip.parse::<std::net::Ipv4Addr>().unwrap()));
    let mut extra: Vec<String> = strings(&merchant["extra_hosts"]);
    extra.sort();
    let mut want: Vec<String> = config["tls"]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| format!("{}:{shim_ip}", h.as_str().unwrap()))
        .collect();
    want.sort();
    assert_eq!(extra, want);
    assert_eq!(strings(&merchant["networks"]), ["qa"]);
    assert_eq!(
        merchant["depends_on"]["shim"]["condition"].as_str(),
        Some("service_healthy")
    );

    // It mounts the CA volume read-only, and its entrypoint trusts $WEBCOLLECT_SHIM_CA, a
    // file in that volume, before running the command.
    let env = environment(merchant);
    let ca_pem = &env["WEBCOLLECT_SHIM_CA"];
    let mut ca_mount = None;
    let mut qa_dir = None;
    for volume in strings(&merchant["volumes"]) {
        let parts: Vec<&str> = volume.split(':').collect();
        assert_eq!(parts.get(2), Some(&"ro"), "{volume}: read-only");
        if parts[0] == "ca" {
            ca_mount = Some(parts[1].to_string());
        } else {
            qa_dir = Some((dir.join(parts[0]), parts[1].to_string()));
        }
    }
    assert_eq!(
        Path::new(ca_pem),
        Path::new(&ca_mount.expect("the ca volume is mounted")).join("ca.pem")
    );
    let (qa_host, qa_container) = qa_dir.unwrap();
    let in_repo = |path: &str| qa_host.join(Path::new(path).strip_prefix(&qa_container).unwrap());
    let entrypoint = strings(&merchant["entrypoint"]);
    assert_eq!(entrypoint[0], "/bin/sh");
    let script = in_repo(&entrypoint[1]);
    let script_text = std::fs::read_to_string(&script).unwrap();
    assert!(script_text.contains("WEBCOLLECT_SHIM_CA"));
    assert!(script_text.contains("update-ca-certificates"));
    assert!(script_text.trim_end().ends_with("exec \"$@\""));
    let syntax = Command::new("sh").arg("-n").arg(&script).output().unwrap();
    assert!(syntax.status.success(), "{}", text(&syntax.stderr));
    // The integration keeps the gateway's URL: no other address in it.
    let command = strings(&merchant["command"]);
    let integration = std::fs::read_to_string(in_repo(&command[1])).unwrap();
    assert!(integration.contains("const URL = 'https://api.kuronekoyamato.co.jp/api/';"));
    assert_eq!(integration.matches("://").count(), 1, "{integration}");
}

/// `.dockerignore`'s verdict on a path of the build context: the last pattern that matches
/// it or one of its parent directories decides, `!` re-includes. Patterns: `*` within one
/// path segment, `**` across segments, as docker and podman read them.
fn dockerignore_excludes(patterns: &[&str], path: &str) -> bool {
    fn glob(pattern: &[u8], text: &[u8]) -> bool {
        match (pattern.first(), text.first()) {
            (None, None) => true,
            (Some(b'*'), _) if pattern.get(1) == Some(&b'*') => {
                let rest = pattern[2..].strip_prefix(b"/").unwrap_or(&pattern[2..]);
                (0..=text.len()).any(|i| glob(rest, &text[i..]))
            }
            (Some(b'*'), _) => (0..=text.len())
                .any(|i| !text[..i].contains(&b'/') && glob(&pattern[1..], &text[i..])),
            (Some(p), Some(t)) if p == t => glob(&pattern[1..], &text[1..]),
            _ => false,
        }
    }
    let mut excluded = false;
    let segments: Vec<&str> = path.split('/').collect();
    for pattern in patterns {
        let (negate, pattern) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, *pattern),
        };
        let pattern = pattern.trim_end_matches('/');
        let matches = (1..=segments.len())
            .any(|n| glob(pattern.as_bytes(), segments[..n].join("/").as_bytes()));
        if matches {
            excluded = !negate;
        }
    }
    excluded
}

/// The image builds from what the Dockerfile copies: every file the crate compiles in with
/// `include_str!` or `include_bytes!` lies under a directory the builder stage copies, and
/// .dockerignore (an allowlist) keeps it, and every other file the stages copy, in the
/// build context. (.ci/container.sh builds the image itself.)
#[test]
fn dockerfile_copies_everything_the_binary_compiles_in() {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let stages: Vec<&str> = dockerfile.split("\nFROM ").skip(1).collect();
    assert_eq!(stages.len(), 2, "a builder and a runtime stage");
    let copies = |stage: &str| -> Vec<String> {
        stage
            .lines()
            .filter_map(|l| l.strip_prefix("COPY "))
            .filter(|l| !l.starts_with("--from"))
            .flat_map(|l| {
                let mut parts: Vec<String> = l
                    .split_whitespace()
                    .map(|p| p.trim_end_matches('/').to_string())
                    .collect();
                parts.pop(); // the destination
                parts
            })
            .collect()
    };
    let copied = copies(stages[0]);
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    let ignore: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    // The matcher reads an allowlist the way the engines do.
    assert!(dockerignore_excludes(
        &ignore,
        "target/release/webcollect-shim"
    ));
    assert!(dockerignore_excludes(&ignore, "tests/compose.rs"));
    assert!(!dockerignore_excludes(&ignore, "src/main.rs"));
    assert!(dockerignore_excludes(&ignore, "src/main.rs.bk"));

    for file in copied.iter().chain(&copies(stages[1])) {
        assert!(
            root().join(file).exists(),
            "the Dockerfile copies {file}, which is missing"
        );
        assert!(
            !dockerignore_excludes(&ignore, file),
            "the Dockerfile copies {file}, which .dockerignore excludes"
        );
    }

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
            for mac in ["include_str!(\"", "include_bytes!(\""] {
                for (i, _) in source.match_indices(mac) {
                    let rest = &source[i + mac.len()..];
                    let target = &rest[..rest.find('"').unwrap()];
                    let file = path.parent().unwrap().join(target).canonicalize().unwrap();
                    includes.push(file);
                }
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
        assert!(
            copied
                .iter()
                .any(|c| relative == *c || relative.starts_with(&format!("{c}/"))),
            "{relative} is compiled in but the Dockerfile's builder stage does not COPY it ({copied:?})"
        );
        assert!(
            !dockerignore_excludes(&ignore, &relative),
            "{relative} is excluded by .dockerignore"
        );
    }
}
