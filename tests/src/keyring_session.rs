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

/// A D-Bus session bus of its own with the keyring unlocked on it, for a long-lived process (the app under test);
/// the bus and the keyring daemon stop when this is dropped.
pub struct SessionBus {
    pid: u32,
    pub address: String,
}

impl KeyringHome {
    pub fn start_bus(&self) -> SessionBus {
        let envs = [
            ("XDG_RUNTIME_DIR", self.dir.path().join("runtime")),
            ("XDG_DATA_HOME", self.dir.path().join("data")),
            ("XDG_CONFIG_HOME", self.dir.path().join("config")),
            ("HOME", self.dir.path().join("home")),
        ];
        let out = Command::new("dbus-daemon")
            .args(["--session", "--fork", "--print-address=1", "--print-pid=1"])
            .envs(envs.iter().map(|(k, v)| (*k, v.as_os_str())))
            .output()
            .expect("dbus-daemon (apt-get install dbus)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut lines = text.lines();
        let address = lines.next().unwrap_or_default().trim().to_owned();
        let pid: u32 = lines
            .next()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("dbus-daemon gave no pid: {text}"));
        let bus = SessionBus { pid, address };
        let mut unlock = Command::new("gnome-keyring-daemon")
            .args(["--unlock", "--components=secrets"])
            .envs(envs.iter().map(|(k, v)| (*k, v.as_os_str())))
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gnome-keyring-daemon (apt-get install gnome-keyring)");
        if let Some(mut pipe) = unlock.stdin.take() {
            use std::io::Write;
            let _ = pipe.write_all(UNLOCK_PASSWORD.as_bytes());
        }
        let status = unlock.wait().expect("wait for gnome-keyring-daemon");
        assert!(status.success(), "gnome-keyring-daemon did not unlock");
        bus
    }
}

impl Drop for SessionBus {
    fn drop(&mut self) {
        // The keyring daemon leaves with its bus.
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
    }
}

impl Default for KeyringHome {
    fn default() -> Self {
        KeyringHome::new()
    }
}
