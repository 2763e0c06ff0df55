//! `/version`: buildDate and gitCommit come from the commit (or SOURCE_DATE_EPOCH), never
//! from the build time, so rebuilding one commit gives the same binary.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .env("TZ", "UTC")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

#[test]
fn build_date_and_commit_are_the_commits() {
    let v = kubelab_apiserver::version_info();
    let date = v["buildDate"].as_str().expect("buildDate");
    assert_eq!(date.len(), 20, "{date}");
    assert!(date.ends_with('Z') && date.as_bytes()[10] == b'T', "{date}");
    if std::env::var_os("SOURCE_DATE_EPOCH").is_some() {
        eprintln!("SKIP: SOURCE_DATE_EPOCH is set; buildDate follows it, not git");
        return;
    }
    let Some(committed) = git(&[
        "log",
        "-1",
        "--date=format-local:%Y-%m-%dT%H:%M:%SZ",
        "--format=%cd",
        "HEAD",
    ]) else {
        eprintln!("SKIP: no git repository here; buildDate falls back to the Unix epoch");
        return;
    };
    assert_eq!(date, committed);
    assert_eq!(
        v["gitCommit"].as_str(),
        git(&["rev-parse", "HEAD"]).as_deref()
    );
}
