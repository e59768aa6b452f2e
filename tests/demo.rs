//! `bash scripts/demo.sh` — the README's first command — runs to the end and exits 0 (issue 9:
//! it used to exit 1 after a successful run, its last line being `[ $KEEP = 1 ] && …`).

use std::path::Path;
use std::process::Command;

#[test]
fn demo_script_succeeds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("scripts/demo.sh"))
        .current_dir(root)
        .output()
        .expect("run scripts/demo.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo.sh exited with {:?}\n{stdout}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    // It did the job: tickets listed, one shown in full, replies read back from the senders.
    assert!(stdout.contains("== mailintake tickets\n#1 "), "{stdout}");
    assert!(stdout.contains("Заявка #1"), "{stdout}");
    assert!(
        stdout.contains("== replies that reached the senders\n-- to "),
        "{stdout}"
    );
}
