//! `flake.nix` is checked as far as this machine can: parsed by Nix, and its pure
//! `lib.debSpecs` evaluated against the real lock (every package, with the lock's sha256 and
//! archive path). Building its derivations needs nixpkgs, which CI cannot reach; see
//! docs/images.md.

use std::path::Path;
use std::process::Command;

use kubelab::image::Lock;

#[test]
fn flake_parses_and_maps_every_locked_package_to_a_fetch() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    if Command::new("nix-instantiate")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!(
            "SKIPPED flake check: `nix-instantiate` is not installed (nix-bin, scripts/setup-host)"
        );
        return;
    }
    let parse = Command::new("nix-instantiate")
        .current_dir(repo)
        .args(["--parse", "flake.nix"])
        .output()
        .unwrap();
    assert!(
        parse.status.success(),
        "flake.nix does not parse:\n{}",
        String::from_utf8_lossy(&parse.stderr)
    );

    let expr = r#"let f = (import ./flake.nix).outputs { self = {}; nixpkgs = throw "lib.debSpecs must not need nixpkgs"; };
                 in f.lib.debSpecs { lockFile = ./images/debian.lock; securityMirror = "SECURITY"; }"#;
    let eval = Command::new("nix-instantiate")
        .current_dir(repo)
        .args(["--eval", "--strict", "--json", "-E", expr])
        .output()
        .unwrap();
    assert!(
        eval.status.success(),
        "evaluating lib.debSpecs failed:\n{}",
        String::from_utf8_lossy(&eval.stderr)
    );
    let specs: Vec<serde_json::Value> = serde_json::from_slice(&eval.stdout).unwrap();
    let lock = Lock::load(&repo.join("images/debian.lock")).unwrap();
    assert_eq!(specs.len(), lock.packages.len());
    for (spec, package) in specs.iter().zip(&lock.packages) {
        assert_eq!(spec["name"], package.name.as_str());
        assert_eq!(spec["sha256"], package.sha256.as_str());
        let url = spec["url"].as_str().unwrap();
        assert!(url.ends_with(&package.filename), "{url}");
        let expected_base = if package.filename.starts_with("pool/updates/") {
            "SECURITY/"
        } else {
            "mirror://debian/"
        };
        assert!(url.starts_with(expected_base), "{url}");
    }
}
