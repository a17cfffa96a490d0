//! `contrib/helpdesk.service`: systemd accepts it, it confines the gateway, and what it
//! promises (reload on SIGHUP, no restart loop on a wrong configuration) is what the
//! gateway does.

use std::process::Command;

fn unit() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contrib/helpdesk.service"
    ))
    .unwrap()
}

/// The unit with ExecStart pointing at the binary under test (verify checks that the
/// command exists and is executable).
fn unit_here(dir: &std::path::Path) -> std::path::PathBuf {
    let text = unit().replace("/usr/local/bin/helpdesk", env!("CARGO_BIN_EXE_helpdesk"));
    let path = dir.join("helpdesk.service");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn systemd_analyze_verifies_the_unit_without_a_word() {
    let dir = tempfile::tempdir().unwrap();
    let path = unit_here(dir.path());
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze (scripts/test installs systemd)");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.trim().is_empty(), "warnings: {said}");
    // A missing binary is an error, so the check above is not a formality.
    let missing = unit().replace("/usr/local/bin/helpdesk", "/nonexistent/helpdesk");
    std::fs::write(&path, missing).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn the_unit_confines_the_gateway_to_its_state_directory() {
    let text = unit();
    for line in [
        "User=helpdesk",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/helpdesk",
        "NoNewPrivileges=yes",
        "Restart=on-failure",
        "RestartPreventExitStatus=78",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "CapabilityBoundingSet=",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}");
    }
    // The exit code the unit does not restart on is the CLI's configuration error.
    assert_eq!(helpdesk::cli::exit::CONFIG, 78);
    // systemd's own measure of the exposure (0 best, 10 worst).
    let dir = tempfile::tempdir().unwrap();
    let path = unit_here(dir.path());
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&path)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let level: f64 = report
        .lines()
        .find_map(|l| l.split("exposure level for helpdesk.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{report}"));
    assert!(level <= 2.0, "exposure {level}:\n{report}");
}
