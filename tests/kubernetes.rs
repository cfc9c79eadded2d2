//! deploy/kubernetes/ agrees with the shim: the pods' config is config/test-gateway.toml plus
//! what pods need, and the manifests use that config's ports, token variable, state
//! directory and drain time. (.ci/run validates the manifests against the Kubernetes
//! schemas; this is what a schema cannot know.)

use std::path::{Path, PathBuf};
use std::time::Duration;

use webcollect_shim::config::Config;
use yaml_rust2::{Yaml, YamlLoader};

use crate::support::test_env;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes")
}

fn yaml(name: &str) -> Yaml {
    let text = std::fs::read_to_string(dir().join(name)).unwrap();
    let mut docs = YamlLoader::load_from_str(&text).unwrap();
    assert_eq!(docs.len(), 1, "{name}: one object per file");
    docs.remove(0)
}

fn str_of<'a>(node: &'a Yaml, what: &str) -> &'a str {
    node.as_str()
        .unwrap_or_else(|| panic!("{what}: expected a string, got {node:?}"))
}

fn list(node: &Yaml) -> &[Yaml] {
    node.as_vec().map_or(&[][..], Vec::as_slice)
}

fn named<'a>(items: &'a Yaml, name: &str) -> &'a Yaml {
    list(items)
        .iter()
        .find(|i| i["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("nothing named {name:?} in {items:?}"))
}

fn pods_config() -> Config {
    Config::load_with_env(&dir().join("webcollect-shim.toml"), &test_env)
        .unwrap_or_else(|e| panic!("deploy/kubernetes/webcollect-shim.toml is invalid:\n{e}"))
}

fn toml_table(path: &Path) -> toml::Table {
    toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_pods_config_is_the_staging_config_plus_what_pods_need() {
    let mut pods = toml_table(&dir().join("webcollect-shim.toml"));
    let mut staging =
        toml_table(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config/test-gateway.toml"));
    // The only differences: the admin listener on the pod's address (with its token), the
    // state directory, the server and log settings.
    for table in [&mut pods, &mut staging] {
        for section in ["admin", "server", "log"] {
            table.remove(section);
        }
        table["listen"].as_table_mut().unwrap().remove("admin");
    }
    assert_eq!(pods, staging);
    // From [maintenance] on, the files are the same text, comments included.
    let from_maintenance = |path: &Path| {
        let text = std::fs::read_to_string(path).unwrap();
        text[text.find("\n[maintenance]\n").unwrap()..].to_string()
    };
    assert!(
        from_maintenance(&dir().join("webcollect-shim.toml"))
            == from_maintenance(
                &Path::new(env!("CARGO_MANIFEST_DIR")).join("config/test-gateway.toml")
            ),
        "deploy/kubernetes/webcollect-shim.toml differs from config/test-gateway.toml after [maintenance]"
    );

    let config = pods_config();
    assert_eq!(config.listen.admin.to_string(), "0.0.0.0:9090");
    assert!(config.server.watch_config);
    assert_eq!(
        config.admin.token_env.as_deref(),
        Some("WEBCOLLECT_SHIM_ADMIN_TOKEN")
    );
    assert!(config.admin.state_dir.is_some());
}

#[test]
fn the_manifests_use_the_pods_config() {
    let config = pods_config();
    let kustomization = yaml("kustomization.yaml");
    let deployment = yaml("deployment.yaml");
    let pod = &deployment["spec"]["template"];
    let labels = &pod["metadata"]["labels"];
    assert_eq!(&deployment["spec"]["selector"]["matchLabels"], labels);
    assert_eq!(deployment["spec"]["replicas"].as_i64(), Some(2));
    let container = &list(&pod["spec"]["containers"])[0];

    // Every resource file is listed, and the ConfigMap is this config, under a fixed name so
    // edits update it in place.
    let mut files: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    files.sort();
    let mut resources: Vec<String> = list(&kustomization["resources"])
        .iter()
        .map(|r| str_of(r, "resources").to_string())
        .collect();
    resources.sort();
    assert_eq!(resources, files);
    let generator = &list(&kustomization["configMapGenerator"])[0];
    assert_eq!(
        list(&generator["files"])
            .iter()
            .map(|f| str_of(f, "files"))
            .collect::<Vec<_>>(),
        ["webcollect-shim.toml"]
    );
    assert_eq!(
        kustomization["generatorOptions"]["disableNameSuffixHash"].as_bool(),
        Some(true)
    );

    // The config file is read from the mounted ConfigMap directory: no subPath, which would
    // never see an update.
    let volumes = &pod["spec"]["volumes"];
    let config_volume = named(volumes, "config");
    assert_eq!(config_volume["configMap"]["name"], generator["name"]);
    let config_mount = named(&container["volumeMounts"], "config");
    assert!(config_mount["subPath"].is_badvalue(), "{config_mount:?}");
    let env = &container["env"];
    assert_eq!(
        str_of(
            &named(env, "WEBCOLLECT_SHIM_CONFIG")["value"],
            "WEBCOLLECT_SHIM_CONFIG"
        ),
        format!(
            "{}/webcollect-shim.toml",
            str_of(&config_mount["mountPath"], "mountPath")
        )
    );

    // The token variable the config names comes from a Secret.
    let token = named(env, config.admin.token_env.as_deref().unwrap());
    assert!(
        token["valueFrom"]["secretKeyRef"]["name"]
            .as_str()
            .is_some()
    );

    // state_dir is a writable volume.
    let state_mount = list(&container["volumeMounts"])
        .iter()
        .find(|m| m["mountPath"].as_str().map(PathBuf::from) == config.admin.state_dir)
        .expect("a volume mounted at [admin] state_dir");
    assert!(state_mount["readOnly"].as_bool() != Some(true));
    let state_volume = named(volumes, str_of(&state_mount["name"], "name"));
    assert!(!state_volume["emptyDir"].is_badvalue(), "{state_volume:?}");

    // Ports, probes and scrape annotations are the config's listeners.
    let port = |name: &str| named(&container["ports"], name)["containerPort"].as_i64();
    assert_eq!(port("http"), Some(i64::from(config.listen.proxy.port())));
    assert_eq!(port("admin"), Some(i64::from(config.listen.admin.port())));
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        let get = &container[probe]["httpGet"];
        assert_eq!(
            (get["path"].as_str(), get["port"].as_str()),
            (Some(path), Some("admin"))
        );
    }
    let annotations = &pod["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"].as_str(), Some("true"));
    assert_eq!(
        annotations["prometheus.io/port"].as_str(),
        Some(config.listen.admin.port().to_string().as_str())
    );
    assert_eq!(annotations["prometheus.io/path"].as_str(), Some("/metrics"));

    // SIGTERM comes after the preStop pause; the kubelet's grace period must cover the
    // pause and the shim's drain, or in-flight requests are killed.
    let pause: u64 = list(&container["lifecycle"]["preStop"]["exec"]["command"])
        .iter()
        .filter_map(|a| a.as_str()?.parse().ok())
        .next()
        .expect("a preStop sleep");
    let grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_i64()
        .unwrap();
    assert!(
        Duration::from_secs(u64::try_from(grace).unwrap())
            > Duration::from_secs(pause) + config.server.shutdown_grace,
        "terminationGracePeriodSeconds {grace} <= preStop {pause}s + shutdown_grace {:?}",
        config.server.shutdown_grace
    );

    // Hardening, and the image's own user.
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(security["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(
        list(&security["capabilities"]["drop"])
            .iter()
            .map(|c| str_of(c, "drop"))
            .collect::<Vec<_>>(),
        ["ALL"]
    );
    assert_eq!(
        pod["spec"]["securityContext"]["runAsNonRoot"].as_bool(),
        Some(true)
    );
    let dockerfile =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile")).unwrap();
    let uid = pod["spec"]["securityContext"]["runAsUser"]
        .as_i64()
        .unwrap();
    assert!(
        dockerfile.contains(&format!("\nUSER {uid}:")),
        "runAsUser {uid} is not the Dockerfile's USER"
    );
    for kind in ["requests", "limits"] {
        let r = &container["resources"][kind];
        assert!(
            r["cpu"].as_str().is_some() && r["memory"].as_str().is_some(),
            "{kind}: {r:?}"
        );
    }
    assert_eq!(
        str_of(&container["image"], "image"),
        concat!("webcollect-shim:", env!("CARGO_PKG_VERSION"))
    );

    // The Services and the PodDisruptionBudget select these pods.
    let merchant = yaml("service.yaml");
    assert_eq!(&merchant["spec"]["selector"], labels);
    assert_eq!(
        list(&merchant["spec"]["ports"])[0]["targetPort"].as_str(),
        Some("http")
    );
    let admin = yaml("service-admin.yaml");
    assert_eq!(&admin["spec"]["selector"], labels);
    assert_eq!(admin["spec"]["clusterIP"].as_str(), Some("None"));
    assert_eq!(
        list(&admin["spec"]["ports"])[0]["targetPort"].as_str(),
        Some("admin")
    );
    let pdb = yaml("poddisruptionbudget.yaml");
    assert_eq!(&pdb["spec"]["selector"]["matchLabels"], labels);
    assert_eq!(pdb["spec"]["minAvailable"].as_i64(), Some(1));
}
