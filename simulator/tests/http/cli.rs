use crate::common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test]
async fn binary_prints_its_url_serves_and_stops_on_ctrl_c() {
    let dir = std::env::temp_dir().join(format!("sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("sim.json");
    std::fs::write(
        &cfg,
        r#"{"token_lifetime_secs": 120, "c2b_allow_reregistration": false}"#,
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_simulator"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--profile",
            "fast",
            "--seed",
            "5",
            "--config",
        ])
        .arg(&cfg)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    let r = client()
        .get(format!("{url}/oauth/v1/generate?grant_type=client_credentials"))
        .basic_auth("sim-consumer-key", Some("sim-consumer-secret"))
        .send()
        .await
        .unwrap();
    let (s, v) = read(r).await;
    assert_eq!(s, 200);
    assert_eq!(v["expires_in"], "120");
    let (_, cfg_now) = read(client().get(format!("{url}/__control/config")).send().await.unwrap()).await;
    assert_eq!(cfg_now["seed"], 5);
    assert_eq!(cfg_now["callback_delay"]["max_ms"], 30);

    // Ctrl-C: SIGINT to the child, by its pid.
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let start = Instant::now();
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "did not stop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "{exit:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_arguments_exit_with_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_simulator"))
        .args(["--profile", "warp"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown profile"));
    let out = Command::new(env!("CARGO_BIN_EXE_simulator"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--listen"));
}
