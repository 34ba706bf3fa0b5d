//! A moto server for one test: started on a free 127.0.0.1 port,
//! stopped when dropped. `make test` installs it into `.tools/moto`;
//! `SILT_MOTO_SERVER` may point at another `moto_server` executable.
//!
//! It enforces IAM. Each function's role is read from the Terraform module
//! or, with `SILT_ROLES_FROM=sam`, from the SAM template
//! (`infra/checks/roles.py`), and a function under test is given clients
//! acting as its role ([`Moto::sdk_config_as`]), so every call it makes must
//! be allowed by the template. The test's own calls act as a `harness` user
//! allowed everything. The names the template gives the lake bucket, queues,
//! work group and database are in [`Moto::names`].

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helper: failures are test failures"
)]

use serde::Deserialize;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto server.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    port: u16,
    /// What the template names the resources the functions use.
    pub names: Names,
    credentials: HashMap<String, Keys>,
}

/// What a template names, for a deployment called `silt` in moto's account.
#[derive(Debug, Clone, Deserialize)]
pub struct Names {
    /// The lake bucket (the functions use it without a prefix).
    pub lake: String,
    /// The Athena results bucket.
    pub results: String,
    /// Queue names by purpose: `ingest`, `landing`, `transform`.
    pub queues: HashMap<String, String>,
    /// The Athena work group.
    pub workgroup: String,
    /// The Glue database.
    pub database: String,
    /// The SSM parameter holding the PII key.
    pub pii_key_parameter: String,
    /// Where `silt.toml` is in the lake; the models are in `models/` beside it.
    pub project_config_key: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Keys {
    key: String,
    secret: String,
    token: Option<String>,
}

#[derive(Deserialize)]
struct Installed {
    names: Names,
    credentials: HashMap<String, Keys>,
}

/// The functions whose roles the templates define.
pub const FUNCTIONS: [&str; 4] = ["ingest", "land", "transform", "monitor"];

impl Moto {
    /// Starts moto with the functions' roles and waits until it answers.
    pub fn start() -> Moto {
        Moto::start_without(&[])
    }

    /// Starts moto with the functions' roles, less the `function:action`
    /// grants in `dropped`: what a template missing them would allow.
    pub fn start_without(dropped: &[&str]) -> Moto {
        let bin = std::env::var("SILT_MOTO_SERVER").unwrap_or_else(|_| {
            crate::repo_root()
                .join(".tools/moto/bin/moto_server")
                .display()
                .to_string()
        });
        assert!(
            std::path::Path::new(&bin).exists(),
            "moto server not found at {bin}: run `make tools` (make test does) or set SILT_MOTO_SERVER"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let endpoint = format!("http://127.0.0.1:{port}");
        let mut moto = Moto {
            child,
            endpoint,
            port,
            names: Names {
                lake: String::new(),
                results: String::new(),
                queues: HashMap::new(),
                workgroup: String::new(),
                database: String::new(),
                pii_key_parameter: String::new(),
                project_config_key: String::new(),
            },
            credentials: HashMap::new(),
        };
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "moto did not start within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let installed = install_roles(&moto.endpoint, dropped);
        moto.names = installed.names;
        moto.credentials = installed.credentials;
        moto
    }

    /// SDK configuration for the test's own calls (the `harness` user).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        self.config_of("harness").await
    }

    /// SDK configuration acting as `function`'s role.
    pub async fn sdk_config_as(&self, function: &str) -> aws_config::SdkConfig {
        assert!(FUNCTIONS.contains(&function), "no role for {function}");
        self.config_of(function).await
    }

    async fn config_of(&self, who: &str) -> aws_config::SdkConfig {
        let k = &self.credentials[who];
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                &k.key,
                &k.secret,
                k.token.clone(),
                None,
                "moto",
            ))
            .load()
            .await
    }

    /// An S3 client for the test's own calls, with path-style addressing.
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        s3_client(&self.sdk_config().await)
    }

    /// An S3 client acting as `function`'s role.
    pub async fn s3_as(&self, function: &str) -> aws_sdk_s3::Client {
        s3_client(&self.sdk_config_as(function).await)
    }

    /// An SQS client acting as `function`'s role.
    pub async fn sqs_as(&self, function: &str) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk_config_as(function).await)
    }

    /// POSTs JSON to moto's own API (seeding Athena results, state transitions).
    pub fn post(&self, path: &str, body: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(
            out.starts_with("HTTP/1.1 2") || out.starts_with("HTTP/1.0 2"),
            "moto API {path}: {out}"
        );
        out
    }
}

fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Runs `infra/checks/roles.py` against the server at `endpoint`.
fn install_roles(endpoint: &str, dropped: &[&str]) -> Installed {
    let template = std::env::var("SILT_ROLES_FROM").unwrap_or_else(|_| "terraform".into());
    let mut args = vec![template, "--endpoint".into(), endpoint.into()];
    for d in dropped {
        args.extend(["--drop".into(), d.to_string()]);
    }
    serde_json::from_slice(&roles_py(&args)).unwrap()
}

/// The four roles' policies as `template` (`terraform` or `sam`) defines
/// them, resolved for a deployment named `silt`: `{"names": …,
/// "policies": {function: [{"Action": [...], "Resource": [...]}]}}`.
pub fn template_roles(template: &str) -> serde_json::Value {
    serde_json::from_slice(&roles_py(&[template.into(), "--print".into()])).unwrap()
}

fn roles_py(args: &[String]) -> Vec<u8> {
    let python = std::env::var("SILT_INFRA_PYTHON").unwrap_or_else(|_| {
        crate::repo_root()
            .join(".tools/hcl2/bin/python")
            .display()
            .to_string()
    });
    let out = Command::new(&python)
        .arg(crate::repo_root().join("infra/checks/roles.py"))
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {python}: {e}; run `make tools` or set SILT_INFRA_PYTHON")
        });
    assert!(
        out.status.success(),
        "roles.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
