//! A throwaway Prometheus server on loopback: its own config and storage under the
//! target directory, queried through its HTTP API, killed when dropped.

use std::{
    collections::BTreeMap,
    net::{SocketAddr, TcpListener},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use super::http;
use crate::{artifacts, process};

/// One sample of an instant vector: its labels and value.
#[derive(Debug, Clone)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A running Prometheus.
pub struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` every second with `honor_labels`, and
    /// waits until it is ready.
    pub fn start(name: &str, targets: &[SocketAddr]) -> Result<Self> {
        let dir = artifacts::target_dir().join("freestanding").join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: lucid\n    honor_labels: true\n    static_configs:\n      \
             - targets: [{}]\n",
            targets.join(", ")
        );
        let config_file = dir.join("prometheus.yml");
        std::fs::write(&config_file, config).with_context(|| format!("write {}", config_file.display()))?;
        let addr = free_loopback_addr()?;
        let mut cmd = Command::new("prometheus");
        cmd.arg(format!("--config.file={}", config_file.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        process::show(&cmd);
        let child = cmd.spawn().context("start prometheus")?;
        let mut p = Self { child, addr, dir };
        p.wait_ready(Duration::from_secs(30))?;
        Ok(p)
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("prometheus exited at start: {status}");
            }
            if matches!(http::get(self.addr, "/-/ready"), Ok((200, _))) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("prometheus on {} not ready after {} s", self.addr, timeout.as_secs());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The result of the instant query `expr` now; a range vector result counts its
    /// series.
    pub fn query(&self, expr: &str) -> Result<Vec<Sample>> {
        let data = self.api(&format!("/api/v1/query?query={}", http::encode(expr)))?;
        let result = &data["result"];
        match data["resultType"].as_str() {
            Some("vector") => result
                .as_array()
                .context("vector result is not a list")?
                .iter()
                .map(|s| {
                    let labels = s["metric"]
                        .as_object()
                        .map(|m| {
                            m.iter()
                                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                                .collect()
                        })
                        .unwrap_or_default();
                    Ok(Sample {
                        labels,
                        value: value(&s["value"])?,
                    })
                })
                .collect(),
            Some("scalar") => Ok(vec![Sample {
                labels: BTreeMap::new(),
                value: value(result)?,
            }]),
            Some("matrix") => Ok(result
                .as_array()
                .map(|series| {
                    series
                        .iter()
                        .map(|s| Sample {
                            labels: BTreeMap::new(),
                            value: s["values"].as_array().map_or(0.0, |v| v.len() as f64),
                        })
                        .collect()
                })
                .unwrap_or_default()),
            other => bail!("query {expr}: unexpected result type {other:?}"),
        }
    }

    /// Values of `label` on series matching `selector`.
    pub fn label_values(&self, label: &str, selector: &str) -> Result<Vec<String>> {
        let data = self.api(&format!(
            "/api/v1/label/{label}/values?match[]={}",
            http::encode(selector)
        ))?;
        Ok(data
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default())
    }

    fn api(&self, path: &str) -> Result<serde_json::Value> {
        let (status, body) = http::get(self.addr, path)?;
        let mut v: serde_json::Value =
            serde_json::from_str(&body).with_context(|| format!("{path}: HTTP {status}: not JSON: {body}"))?;
        if v["status"] != "success" {
            bail!("{path}: HTTP {status}: {}", v["error"]);
        }
        Ok(v["data"].take())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `[timestamp, "value"]` → value.
fn value(v: &serde_json::Value) -> Result<f64> {
    let s = v[1].as_str().context("no value")?;
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        s => s.parse().with_context(|| format!("value {s:?}")),
    }
}

/// A loopback address with a port nothing listens on right now.
pub fn free_loopback_addr() -> Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(l.local_addr()?)
}
