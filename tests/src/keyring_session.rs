//! A real Secret Service for tests: every command runs in its own private D-Bus session with a
//! gnome-keyring-daemon unlocked from a password, over a keyring kept on disk in a temp folder — as a desktop
//! user's keychain persists across logins.

use std::path::Path;
use std::process::{Command, Output, Stdio};

pub struct KeyringHome {
    dir: tempfile::TempDir,
}

const UNLOCK_PASSWORD: &str = "syncflow-test-keyring";

impl KeyringHome {
    pub fn new() -> KeyringHome {
        let dir = tempfile::Builder::new()
            .prefix("syncflow-keyring-")
            .tempdir()
            .expect("temp dir");
        for sub in ["runtime", "data", "config", "home"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("keyring dirs");
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.path().join("runtime"),
            std::fs::Permissions::from_mode(0o700),
        )
        .expect("chmod");
        KeyringHome { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `program args…` inside a fresh D-Bus session with the keyring unlocked; `stdin` is piped in.
    pub fn run(
        &self,
        program: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
        stdin: Option<&str>,
    ) -> Output {
        let script = format!(
            "printf %s '{UNLOCK_PASSWORD}' | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1 || exit 97; exec \"$@\""
        );
        let mut cmd = Command::new("dbus-run-session");
        cmd.args(["--", "sh", "-c", &script, "sh"])
            .arg(program)
            .args(args)
            .env("XDG_RUNTIME_DIR", self.dir.path().join("runtime"))
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("HOME", self.dir.path().join("home"))
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .expect("dbus-run-session (apt-get install dbus gnome-keyring)");
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            use std::io::Write;
            pipe.write_all(text.as_bytes()).expect("write stdin");
        }
        let out = child.wait_with_output().expect("wait");
        assert_ne!(
            out.status.code(),
            Some(97),
            "gnome-keyring-daemon did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Default for KeyringHome {
    fn default() -> Self {
        KeyringHome::new()
    }
}
