use super::*;

fn load_text(
    text: &str,
    env: &[(&str, &str)],
    o: &Overrides,
) -> Result<(RawConfig, Config), ConfigErrors> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outrider.toml");
    std::fs::write(&path, text).unwrap();
    load(
        Some(&path),
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        o,
    )
}

#[test]
fn defaults_are_valid() {
    let (_, c) = load(None, Vec::new(), &Overrides::default()).unwrap();
    assert_eq!(c.listen, DEFAULT_LISTEN.parse().unwrap());
    assert_eq!(c.interval, Duration::from_secs(5));
    assert_eq!(c.shutdown_grace, Duration::from_secs(1));
    assert!(c.targets.is_empty());
}

#[test]
fn the_documented_example_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/outrider.toml");
    let (_, c) = load(Some(&path), Vec::new(), &Overrides::default()).unwrap();
    assert_eq!(c.targets.len(), 1);
}

#[test]
fn every_error_is_listed_with_its_key() {
    let text = r#"
        bogus = 1
        [http]
        listen = "nowhere"
        [sampling]
        interval = "soon"
        colour = "red"
        [[targets]]
        name = "app"
        cmdline = "python("
        [[targets]]
        name = "app"
        pid = 5
        pid_file = "/run/app.pid"
        [resources]
        cpu_request = "lots"
        memory_limit = "512Qi"
    "#;
    let errors = load_text(text, &[], &Overrides::default()).unwrap_err().0;
    let joined = errors.join("\n");
    for needle in [
        "bogus: unknown key",
        "sampling.colour: unknown key",
        "http.listen: \"nowhere\"",
        "sampling.interval: \"soon\" is not a duration",
        "targets[0].cmdline: bad regex",
        "targets[1].name: \"app\" is used by another target",
        "targets[1]: pid, pid_file and comm/exe/cmdline exclude one another",
        "resources.cpu_request: \"lots\"",
        "resources.memory_limit: \"512Qi\"",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
    assert_eq!(errors.len(), 9, "{joined}");
}

/// A value of the wrong type stops deserializing; every one is still listed,
/// each located in the file, and the problems the rest has after them (it listed
/// the first type error alone).
#[test]
fn every_type_error_is_listed_with_the_rest() {
    let text = "[cost]\ncurrency = 5\nreplicas = \"many\"\n[sampling]\ninterval = 3\n\
                [[targets]]\nname = \"a\"\npid = \"x\"\n[analysis]\nleak_window = \"soon\"\nbogus = 1\n";
    let errors = load_text(text, &[], &Overrides::default()).unwrap_err().0;
    let joined = errors.join("\n");
    for needle in [
        ", line 2, column 12): invalid type: integer, expected a string",
        "sampling.interval (config file ",
        ", line 5, column 12): invalid type: integer, expected a string",
        "targets.0.pid (config file ",
        ", line 8, column 7): is not a whole number",
        "analysis.bogus: unknown key",
        "analysis.leak_window: \"soon\" is not a duration",
        "cost.replicas: \"many\" is not a whole number",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
    // Not "targets[0]: needs one of pid, …": it has one, of the wrong type.
    assert_eq!(errors.len(), 6, "{joined}");
}

/// A key with dots in it (a Kubernetes label name) is taken out like any other:
/// the problems after it are still listed (the loop stopped at it).
#[test]
fn a_type_error_under_a_key_with_dots_does_not_hide_the_next() {
    let text = "[alerts]\nlabels = { \"app.kubernetes.io/name\" = 5, team = \"web\" }\n\
                [sampling]\ninterval = 7\n";
    let errors = load_text(text, &[], &Overrides::default()).unwrap_err().0;
    let joined = errors.join("\n");
    assert!(
        joined.contains("alerts.labels.app.kubernetes.io/name")
            && joined.contains("sampling.interval (config file "),
        "{joined}"
    );
    assert_eq!(errors.len(), 2, "{joined}");
}

/// The bad element of an array is the one named, located and taken out: the
/// first target's valid pid stays (toml's path, `targets.pid`, names no index).
#[test]
fn a_type_error_in_an_array_names_its_element() {
    let text = "[[targets]]\nname = \"a\"\npid = 1\n[[targets]]\nname = \"b\"\npid = \"x\"\n";
    let errors = load_text(text, &[], &Overrides::default()).unwrap_err().0;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("targets.1.pid (config file ")
            && errors[0].contains(", line 6, column 7): "),
        "{errors:?}"
    );
    let env = [("OUTRIDER_TARGETS__0__PID", "abc")];
    let errors = load_text("", &env, &Overrides::default()).unwrap_err().0;
    assert_eq!(
        errors,
        vec!["targets.0.pid (set by OUTRIDER_TARGETS__0__PID): is not a whole number".to_string()]
    );
}

#[test]
fn an_endless_config_file_is_an_error_not_a_hang() {
    // /dev/zero never ends: read whole, it would fill memory.
    let errors = load(
        Some(Path::new("/dev/zero")),
        Vec::new(),
        &Overrides::default(),
    )
    .unwrap_err()
    .0;
    assert_eq!(
        errors,
        ["config file /dev/zero: cannot read it: over 4 MiB, too large for a config file"]
    );
}

#[test]
fn a_missing_file_is_named() {
    let errors = load(
        Some(Path::new("/nonexistent/outrider.toml")),
        Vec::new(),
        &Overrides::default(),
    )
    .unwrap_err()
    .0;
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].contains("/nonexistent/outrider.toml"),
        "{errors:?}"
    );
}

#[test]
fn environment_overrides_file_and_flags_override_environment() {
    let text = "[http]\nlisten = \"127.0.0.1:1000\"\n[sampling]\ninterval = \"10s\"\n";
    let env = [
        ("OUTRIDER_HTTP__LISTEN", "127.0.0.1:2000"),
        ("OUTRIDER_SAMPLING__INTERVAL", "2s"),
        ("OUTRIDER_TARGETS__0__PID", "42"),
        ("OUTRIDER_TARGETS__0__NAME", "web"),
        ("OUTRIDER_RESOURCES__MEMORY_LIMIT", "1Gi"),
        ("OUTRIDER_LOG", "debug"),
        ("PATH", "/bin"),
    ];
    let o = Overrides {
        interval: Some("250ms".into()),
        ..Default::default()
    };
    let (_, c) = load_text(text, &env, &o).unwrap();
    assert_eq!(c.listen, "127.0.0.1:2000".parse().unwrap());
    assert_eq!(c.interval, Duration::from_millis(250));
    assert_eq!(c.targets.len(), 1);
    assert!(matches!(c.targets[0].selector, Selector::Pid(42)));
    assert_eq!(c.targets[0].name.as_deref(), Some("web"));
    assert_eq!(c.resources.memory_limit_bytes, Some(1 << 30));
}

#[test]
fn an_unknown_environment_key_is_an_error() {
    let env = [("OUTRIDER_HTTP__LISTN", "127.0.0.1:2000")];
    let errors = load_text("", &env, &Overrides::default()).unwrap_err().0;
    assert_eq!(
        errors,
        vec![
            "http.listn (set by OUTRIDER_HTTP__LISTN): unknown key (did you mean `http.listen`?)"
                .to_string()
        ]
    );
}

/// An unknown key a typo away from a known one of its table names it; one that
/// is not close to any (or is under an array of tables) is only unknown.
#[test]
fn an_unknown_key_names_the_known_one_a_typo_away() {
    let text = r#"
        samplng = 1
        sampling = { intervall = "1s", colour = "red" }
        alerts = { spooldir = "/var/spool" }
        targets = [{ name = "app", pid = 5, pidd = 6 }]
    "#;
    let errors = load_text(text, &[], &Overrides::default()).unwrap_err().0;
    assert_eq!(
        errors,
        [
            "alerts.spooldir: unknown key (did you mean `alerts.spool_dir`?)",
            "sampling.colour: unknown key",
            "sampling.intervall: unknown key (did you mean `sampling.interval`?)",
            "samplng: unknown key (did you mean `sampling`?)",
            "targets.0.pidd: unknown key",
        ]
    );
}

#[test]
fn pid_flag_replaces_targets() {
    let text = "[[targets]]\nname = \"a\"\ncomm = \"x\"\n";
    let o = Overrides {
        pid: Some(7),
        ..Default::default()
    };
    let (_, c) = load_text(text, &[], &o).unwrap();
    assert_eq!(c.targets.len(), 1);
    assert!(matches!(c.targets[0].selector, Selector::Pid(7)));
    assert_eq!(c.targets[0].name, None);
}

#[test]
fn comm_names_a_target_by_default() {
    let (_, c) = load_text(
        "[[targets]]\ncomm = \"nginx\"\n",
        &[],
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(c.targets[0].name.as_deref(), Some("nginx"));
    let errors = load_text("[[targets]]\ncmdline = \"x\"\n", &[], &Overrides::default())
        .unwrap_err()
        .0;
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("targets[0].name: is required"),
        "{errors:?}"
    );
}

#[test]
fn log_paths_expand_the_environment_and_name_their_checkpoint() {
    std::env::set_var("OUTRIDER_TEST_POD", "web-1");
    let text = "[log_options]\nstate_dir = \"/state\"\n[[logs]]\nname = \"app\"\npath = \"/var/log/pods/${OUTRIDER_TEST_POD}/*.log\"\nstart_at = \"beginning\"\n";
    let (_, c) = load_text(text, &[], &Overrides::default()).unwrap();
    assert_eq!(
        c.logs[0].source,
        LogSource::Files {
            pattern: "/var/log/pods/web-1/*.log".into(),
            start_at_beginning: true,
            checkpoint: Some(PathBuf::from("/state/app.offsets.json")),
        }
    );
    let bad = "[[logs]]\npath = \"/x/${OUTRIDER_TEST_NOPE}\"\n";
    let errors = load_text(bad, &[], &Overrides::default()).unwrap_err().0;
    assert!(
        errors[0].contains("OUTRIDER_TEST_NOPE is not set"),
        "{errors:?}"
    );
    let (_, c) = load_text("[[logs]]\npath = \"-\"\n", &[], &Overrides::default()).unwrap();
    assert_eq!(c.logs[0].name, "stdin");
}

#[test]
fn list_keys_take_toml_arrays_from_the_environment() {
    let env = [
        ("OUTRIDER_RECEIVERS__0__NAME", "ops"),
        ("OUTRIDER_RECEIVERS__0__KIND", "webhook"),
        ("OUTRIDER_RECEIVERS__0__URL", "http://127.0.0.1:9/hook"),
        (
            "OUTRIDER_RECEIVERS__0__ALERTNAMES",
            r#"["TargetDown", "OOMKilled"]"#,
        ),
        // Not an array after all: stays a string, and the key's own check names it.
        ("OUTRIDER_RECEIVERS__0__SEVERITIES", "[critical"),
    ];
    let errors = load_text("", &env, &Overrides::default()).unwrap_err().0;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("severities"), "{errors:?}");
    let env = &env[..4];
    let (_, c) = load_text("", env, &Overrides::default()).unwrap();
    assert_eq!(c.receivers[0].alertnames, ["TargetDown", "OOMKilled"]);
}

#[test]
fn connection_scans_default_to_15s_and_can_be_turned_off() {
    let (_, c) = load(None, Vec::new(), &Overrides::default()).unwrap();
    assert_eq!(c.connections_interval, Some(Duration::from_secs(15)));
    assert_eq!(c.analysis.connections.min_growth, 20.0);
    for off in ["off", "0", "0s"] {
        let env = [("OUTRIDER_SAMPLING__CONNECTIONS_INTERVAL", off)];
        let (_, c) = load_text("", &env, &Overrides::default()).unwrap();
        assert_eq!(c.connections_interval, None, "{off}");
    }
    let env = [
        ("OUTRIDER_SAMPLING__CONNECTIONS_INTERVAL", "10ms"),
        ("OUTRIDER_ANALYSIS__CONNECTIONS_MIN_GROWTH", "-1"),
    ];
    let errors = load_text("", &env, &Overrides::default()).unwrap_err().0;
    let joined = errors.join("\n");
    assert!(
        joined.contains("sampling.connections_interval: must be at least 100ms"),
        "{joined}"
    );
    assert!(
        joined.contains("analysis.connections_min_growth: must be zero or more"),
        "{joined}"
    );
    let env = [("OUTRIDER_SAMPLING__CONNECTIONS_INTERVAL", "often")];
    let errors = load_text("", &env, &Overrides::default()).unwrap_err().0;
    assert!(
        errors[0].starts_with("sampling.connections_interval: \"often\" is not a duration"),
        "{errors:?}"
    );
}

#[test]
fn duration_settings_are_validated_and_read_from_the_environment() {
    let text = r#"
        [log_options]
        duration_regex = "took (?P<seconds>\\d+)"
        gunicorn_access_log_format = "%(h)s \"%(r)s\" %(s)s"
        duration_buckets = [0.5, 0.1]
        [analysis]
        latency_window = "0s"
        [[logs]]
        name = "web"
        path = "/var/log/web.log"
        duration_regex = "("
    "#;
    let errors = load_text(text, &[], &Overrides::default()).unwrap_err().0;
    let joined = errors.join("\n");
    for needle in [
        "log_options.duration_regex: needs exactly one named capture",
        "log_options.gunicorn_access_log_format: has no duration atom",
        "log_options.duration_buckets: bounds must increase (0.5 is followed by 0.1)",
        "analysis.latency_window: must be above zero",
        "logs[0].duration_regex: bad regex",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
    let env = [
        ("OUTRIDER_LOG_OPTIONS__DURATION_BUCKETS", "0.05, 0.2,1"),
        ("OUTRIDER_ANALYSIS__LATENCY_WINDOW", "10m"),
    ];
    let text = "[[logs]]\nname = \"web\"\npath = \"/var/log/web.log\"\nduration_regex = 'took=(?P<duration_ms>\\d+)'\n";
    let (_, c) = load_text(text, &env, &Overrides::default()).unwrap();
    assert_eq!(
        c.log_settings.classifier.duration_buckets().0,
        vec![0.05, 0.2, 1.0]
    );
    assert_eq!(c.analysis.latency_window, 600.0);
    let own = c.logs[0].settings.as_ref().expect("the log's own regex");
    let req = own.classifier.request(b"GET / took=250", None);
    assert_eq!(req, None, "no status: not a request");
    let req = own.classifier.request(
        b"GET / took=250",
        Some(crate::logs::classify::StatusClass::Success),
    );
    assert_eq!(req.map(|r| r.1), Some(0.25));
}

/// One wrong value in every section: all are reported at once, each led by its key
/// path, section after section in `validate`'s order (and in file order within one).
#[test]
fn errors_in_every_section_are_listed_in_order() {
    let text = r#"
        [http]
        listen = "nowhere"
        [sampling]
        interval = "10ms"
        connections_interval = "often"
        proc_root = ""
        pss_interval = "10ms"
        [lifecycle]
        shutdown_grace = "later"
        [[targets]]
        name = "a b"
        comm = "x"
        [[targets]]
        comm = "y"
        pid = 3
        [[logs]]
        name = "stdout"
        path = "/var/log/app.log"
        format = "xml"
        start_at = "middle"
        duration_regex = "("
        [resources]
        cpu_limit = "two"
        downward_api_cpu_divisor = 0
        [analysis]
        leak_window = "0s"
        oom_bump = "big"
        [log_options]
        max_line_bytes = 10
        [[log_options.rules]]
        pattern = "("
        action = "error"
        [[receivers]]
        name = ""
        kind = "webhook"
        url = "http://127.0.0.1:9/hook"
        [capacity]
        memory_margin = 2
    "#;
    let errors = load_text(text, &[], &Overrides::default()).unwrap_err().0;
    let keys: Vec<&str> = errors
        .iter()
        .map(|e| e.split(": ").next().unwrap_or(e))
        .collect();
    assert_eq!(
        keys,
        [
            "http.listen",
            "sampling.interval",
            "sampling.connections_interval",
            "lifecycle.shutdown_grace",
            "sampling.proc_root",
            "targets[0].name",
            "targets[1]",
            "logs[0].name",
            "logs[0].format",
            "logs[0].start_at",
            "resources.cpu_limit",
            "resources.downward_api_cpu_divisor",
            "analysis.leak_window",
            "analysis.oom_bump",
            "log_options.max_line_bytes",
            "log_options.rules[0].pattern",
            "logs[0].duration_regex",
            "receivers[0].name",
            "sampling.pss_interval",
            "capacity.memory_margin",
        ],
        "{errors:#?}"
    );
    for exact in [
        "sampling.interval: must be at least 100ms",
        "sampling.proc_root: must not be empty",
        "targets[0].name: \"a b\" must be 1-64 characters of letters, digits, '_', '-', '.'",
        "targets[1]: pid, pid_file and comm/exe/cmdline exclude one another",
        "logs[0].name: \"stdout\" is already a stream name",
        "logs[0].format: \"xml\" is not one of auto, cri, docker, plain",
        "logs[0].start_at: \"middle\" is not one of end, beginning",
        "resources.downward_api_cpu_divisor: must be above zero",
        "analysis.leak_window: must be above zero",
        "log_options.max_line_bytes: must be at least 256",
        "sampling.pss_interval: must be at least 1s, or off",
        "capacity.memory_margin: must be above 0 and at most 1",
    ] {
        assert!(
            errors.iter().any(|e| e == exact),
            "no {exact:?} in {errors:#?}"
        );
    }
}

/// A receiver's URL, header or token that no request can carry failed every
/// send forever ("builder error") after a start that said nothing: each is
/// refused at start with its key, and no value is quoted (it may be a secret).
#[test]
fn a_receiver_no_request_can_carry_is_refused_without_quoting_it() {
    let text = r#"
        [alerts]
        external_url = "outrider pod 7"
        [[receivers]]
        name = "spaced"
        kind = "webhook"
        url = "http://exa mple.com/hook/SECRET-PATH"
        [[receivers]]
        name = "portless"
        kind = "webhook"
        url = "http://127.0.0.1:99999/hook/SECRET-PATH"
        [[receivers]]
        name = "headers"
        kind = "webhook"
        url = "http://127.0.0.1:9/hook"
        headers = { "X Team" = "shop", X-Key = "SECRET\nVALUE" }
        [[receivers]]
        name = "token"
        kind = "webhook"
        url = "http://127.0.0.1:9/hook"
        bearer_token = "SECRET\nTOKEN"
    "#;
    let errors = load_text(text, &[], &Overrides::default()).unwrap_err().0;
    for start in [
        "alerts.external_url: not a URL (",
        "receivers[0].url: not a URL (",
        "receivers[1].url: not a URL (",
        "receivers[2].headers: \"X Team\" is not a header name",
        "receivers[2].headers.X-Key: not a header value",
        "receivers[3].bearer_token: not a header value",
    ] {
        assert!(
            errors.iter().any(|e| e.starts_with(start)),
            "no {start:?} in {errors:#?}"
        );
    }
    assert!(!errors.join("\n").contains("SECRET"), "{errors:#?}");
    // A good one passes.
    let good = r#"
        [alerts]
        external_url = "https://outrider.example.com/"
        [[receivers]]
        name = "hook"
        kind = "webhook"
        url = "https://hooks.example.com/T0/B1/xyz?token=abc"
        headers = { X-Team = "shop" }
        bearer_token = "abc.def-ghi"
    "#;
    load_text(good, &[], &Overrides::default()).unwrap();
}
