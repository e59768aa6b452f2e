//! The Debian package: built by `scripts/package.sh` (cargo-deb) from the debug binary this test
//! run already has, then checked as an administrator's tools see it — its control data and
//! conffiles (`dpkg-deb -I`), its file list (`dpkg-deb -c`), its units (`systemd-analyze verify`
//! against the unpacked tree), its maintainer scripts (`sh -n`), and the packed binary run on the
//! packed rules. No clean Debian chroot can be made here quickly, so the package is not installed.

mod common;

use std::path::Path;
use std::process::Command;

use common::root;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const UNITS: [&str; 5] = [
    "mailintake.service",
    "mailintake-backup.service",
    "mailintake-backup.timer",
    "mailintake-prune.service",
    "mailintake-prune.timer",
];

#[test]
fn the_deb_holds_the_binary_hardened_units_and_conffiles() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    run(Command::new("bash")
        .arg(root().join("scripts/package.sh"))
        .arg("--test")
        .arg(&out));
    let deb = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .expect("a .deb was written");

    // Control data and conffiles.
    let info = run(Command::new("dpkg-deb").arg("-I").arg(&deb));
    for want in [
        "Package: mailintake",
        &format!("Version: {}-1", env!("CARGO_PKG_VERSION")),
        "adduser",
        "ca-certificates",
        "conffiles",
        "postinst",
        "postrm",
        "prerm",
    ] {
        assert!(info.contains(want), "{want:?} not in dpkg-deb -I:\n{info}");
    }
    let conffiles = run(Command::new("dpkg-deb")
        .arg("-I")
        .arg(&deb)
        .arg("conffiles"));
    for want in [
        "/etc/mailintake/mailintake.toml",
        "/etc/mailintake/rules/intake.toml",
        "/etc/mailintake/rules/replies/accept.txt",
    ] {
        assert!(
            conffiles.lines().any(|l| l == want),
            "{want} is not a conffile:\n{conffiles}"
        );
    }

    // The file list.
    let files = run(Command::new("dpkg-deb").arg("-c").arg(&deb));
    let mut wanted = vec![
        "./usr/bin/mailintake".to_string(),
        "./usr/share/doc/mailintake/README.md".into(),
        "./usr/share/doc/mailintake/copyright".into(),
        "./etc/mailintake/rules/calendar.toml".into(),
    ];
    wanted.extend(
        UNITS
            .iter()
            .map(|u| format!("./usr/lib/systemd/system/{u}")),
    );
    for want in &wanted {
        assert!(
            files.lines().any(|l| l.ends_with(want.as_str())),
            "{want} missing from dpkg-deb -c:\n{files}"
        );
    }
    // No password file is shipped: postinst creates empty ones, the admin fills them.
    assert!(!files.contains(".pass"), "{files}");

    // Unpacked: the units verify, the hardening is there, the scripts parse, the binary runs.
    let tree = work.path().join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree));
    run(Command::new("dpkg-deb")
        .arg("-e")
        .arg(&deb)
        .arg(tree.join("DEBIAN")));
    for script in ["postinst", "postrm", "prerm"] {
        run(Command::new("sh")
            .arg("-n")
            .arg(tree.join("DEBIAN").join(script)));
    }
    let postinst = std::fs::read_to_string(tree.join("DEBIAN/postinst")).unwrap();
    assert!(
        postinst.contains("adduser --system") && postinst.contains("try-restart"),
        "postinst creates the user and restarts a running daemon after an upgrade:\n{postinst}"
    );

    let units = tree.join("usr/lib/systemd/system");
    let unit = std::fs::read_to_string(units.join("mailintake.service")).unwrap();
    for line in [
        "User=mailintake",
        "ExecStart=/usr/bin/mailintake run --config /etc/mailintake/mailintake.toml",
        "StateDirectory=mailintake",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=",
        "AmbientCapabilities=",
        "LoadCredential=imap:/etc/mailintake/imap.pass",
        "RestartPreventExitStatus=2",
    ] {
        assert!(
            unit.lines().any(|l| l == line),
            "{line:?} missing from mailintake.service"
        );
    }
    let backup = std::fs::read_to_string(units.join("mailintake-backup.service")).unwrap();
    assert!(backup.contains("mailintake backup --config /etc/mailintake/mailintake.toml"));

    verify_units(&tree);

    let bin = tree.join("usr/bin/mailintake");
    let version = run(Command::new(&bin).arg("--version"));
    assert!(version.contains("store schema"), "{version}");
    run(Command::new(&bin)
        .args(["rules", "check", "--rules"])
        .arg(tree.join("etc/mailintake/rules")));
    // The packed config names the store and rules where the package puts them.
    let cfg = std::fs::read_to_string(tree.join("etc/mailintake/mailintake.toml")).unwrap();
    assert!(cfg.contains("path = \"/var/lib/mailintake/mailintake.db\""));
    assert!(cfg.contains("/run/credentials/mailintake.service/imap"));
}

/// `systemd-analyze verify` with the unpacked package as its root. The root gets the host's own
/// units (targets, sockets) so that the dependencies resolve; any message fails the test.
fn verify_units(tree: &Path) {
    let host_units = Path::new("/usr/lib/systemd/system");
    let units = tree.join("usr/lib/systemd/system");
    for e in std::fs::read_dir(host_units).unwrap().flatten() {
        let dest = units.join(e.file_name());
        if !dest.exists() {
            // Symlinks stay symlinks (aliases); their targets are host paths inside the root.
            let _ = Command::new("cp")
                .arg("-a")
                .arg(e.path())
                .arg(&dest)
                .status();
        }
    }
    std::fs::create_dir_all(tree.join("etc/systemd/system")).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", tree.display()))
        .args(UNITS.iter().map(|u| units.join(u)))
        .output()
        .expect("systemd-analyze (Debian package systemd)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify:\n{said}"
    );
    // systemd's own hardening score: "1.5 OK" or better (the scale is 0 safe … 10 unsafe; the
    // threshold is in tenths).
    for service in UNITS.iter().filter(|u| u.ends_with(".service")) {
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--threshold=15"])
            .arg(format!("--root={}", tree.display()))
            .arg(units.join(service))
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{service} is exposed above 1.5:\n{}",
            said.lines().last().unwrap_or_default()
        );
    }
}
