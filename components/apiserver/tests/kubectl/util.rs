//! Running kubectl.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use crate::support;

/// The kubectl binary: `$KUBECTL`, else the first `kubectl` of /usr/local/bin, /usr/bin, PATH.
pub fn kubectl_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("KUBECTL") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["/usr/local/bin".into(), "/usr/bin".into()]
        .into_iter()
        .chain(std::env::split_paths(&path))
        .map(|d: PathBuf| d.join("kubectl"))
        .find(|p| p.is_file())
}

/// True (after printing why) when this suite cannot run here on `backend`.
pub fn skip(backend: support::Backend) -> bool {
    if kubectl_path().is_none() {
        eprintln!(
            "SKIP: kubectl is not installed (looked in $KUBECTL, /usr/local/bin, /usr/bin, PATH)"
        );
        return true;
    }
    backend.missing()
}

/// A kubectl bound to one server's kubeconfig, with its own HOME (discovery cache).
pub struct Kubectl {
    binary: PathBuf,
    kubeconfig: PathBuf,
    home: PathBuf,
}

/// One kubectl run.
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Panics unless the run succeeded and stdout contains every needle.
    #[track_caller]
    pub fn ok(&self, needles: &[&str]) -> &Run {
        assert_eq!(
            self.code, 0,
            "kubectl failed\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        for n in needles {
            assert!(
                self.stdout.contains(n),
                "{n:?} not in stdout:\n{}\nstderr: {}",
                self.stdout,
                self.stderr
            );
        }
        self
    }

    /// Panics unless the run failed and stderr contains every needle.
    #[track_caller]
    pub fn fails(&self, needles: &[&str]) -> &Run {
        assert_ne!(
            self.code, 0,
            "kubectl should have failed\nstdout: {}",
            self.stdout
        );
        for n in needles {
            assert!(
                self.stderr.contains(n),
                "{n:?} not in stderr:\n{}",
                self.stderr
            );
        }
        self
    }
}

impl Kubectl {
    /// For a running server, as its admin.
    pub fn new(server: &support::Server) -> Kubectl {
        Kubectl::with_kubeconfig(server, server.kubeconfig(), "home")
    }

    /// For a running server with another kubeconfig (another user); `home` names its own
    /// HOME (discovery cache) under the server's scratch dir.
    pub fn with_kubeconfig(server: &support::Server, kubeconfig: PathBuf, home: &str) -> Kubectl {
        let home = server.dir.path().join(home);
        std::fs::create_dir_all(&home).expect("kubectl home");
        let binary = kubectl_path().expect("checked by skip()");
        Kubectl {
            binary,
            kubeconfig,
            home,
        }
    }

    /// A command with the environment set.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.binary);
        c.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", &self.home)
            .env_remove("KUBECTL_EXTERNAL_DIFF")
            .stdin(Stdio::null());
        c
    }

    /// Runs kubectl to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    /// Runs kubectl with extra environment.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.command(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let Output {
            status,
            stdout,
            stderr,
        } = c.output().expect("running kubectl");
        Run {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// A file in the scratch dir.
    pub fn file(&self, name: &str, text: &str) -> String {
        let p = self.home.join(name);
        std::fs::write(&p, text).expect("writing manifest");
        p.display().to_string()
    }
}

/// The multi-document manifest of the suite; `replicas`, `image` and `value` vary per apply.
pub fn manifest(ns: &str, name: &str, replicas: u32, image: &str, value: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {ns}
  labels:
    app: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
      - name: main
        image: {image}
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {ns}
spec:
  selector:
    app: {name}
  ports:
  - port: 80
    targetPort: 80
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}-config
  namespace: {ns}
data:
  key: {value}
---
apiVersion: v1
kind: Secret
metadata:
  name: {name}-secret
  namespace: {ns}
stringData:
  password: {value}
"#
    )
}
