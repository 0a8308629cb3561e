//! The embedded data dir's filesystem full (a loop-mounted ext4 of the test's own).

use super::*;

/// A loop-mounted ext4 filesystem of its own; unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
    mount: std::path::PathBuf,
}

impl SmallDisk {
    fn new(mb: u64) -> Result<SmallDisk, String> {
        let dir = support::tempdir();
        let image = dir.path().join("disk.img");
        let mount = dir.path().join("mnt");
        std::fs::create_dir_all(&mount).unwrap();
        let run = |cmd: &str, args: &[&str]| -> Result<(), String> {
            let out = std::process::Command::new(cmd)
                .args(args)
                .output()
                .map_err(|e| format!("{cmd}: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "{cmd} {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        };
        run(
            "truncate",
            &["-s", &format!("{mb}M"), image.to_str().unwrap()],
        )?;
        // -m 0: no blocks reserved for root, so the disk is full for this (root) process too.
        run(
            "mkfs.ext4",
            &["-q", "-F", "-m", "0", image.to_str().unwrap()],
        )?;
        run(
            "mount",
            &[
                "-o",
                "loop",
                image.to_str().unwrap(),
                mount.to_str().unwrap(),
            ],
        )?;
        Ok(SmallDisk { dir, mount })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: this test process may still hold the queue file open (its pool's tasks).
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.mount)
            .status();
        let _ = &self.dir;
    }
}

/// The embedded data dir's filesystem full: POSTs fail (503, not acked) while it is full,
/// the worker's store writes fail store-wide (no DLQ), and after space is freed everything
/// acked is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_full_disk_for_the_embedded_data_dir() {
    let disk = match SmallDisk::new(40) {
        Ok(d) => d,
        Err(why) => {
            eprintln!(
                "FAULT full disk: SKIPPED, mounting a loop filesystem was refused here: {why}"
            );
            return;
        }
    };
    let data = disk.mount.join("data");
    let dir = support::tempdir();
    let serve = Serve::start(
        &["--data-dir", data.to_str().unwrap()],
        &STRICT_WORKER,
        dir.path(),
    );
    let load = Load::start(&serve.base, 4, Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Fill what is left, greedily: fallocate (so the blocks are really taken) in chunks that
    // halve whenever one is refused, until not even 64 KiB fits. One fill sized from `df`
    // raced the load, which keeps writing in between, and was refused now and then.
    let free = || {
        let out = std::process::Command::new("df")
            .args(["--output=avail", "-B1", disk.mount.to_str().unwrap()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse::<u64>().ok())
            .unwrap()
    };
    let mut fillers = Vec::new();
    let mut chunk: u64 = 8 << 20;
    while chunk >= 64 << 10 {
        let path = disk.mount.join(format!("filler-{}", fillers.len()));
        let taken = std::process::Command::new("fallocate")
            .args(["-l", &chunk.to_string(), path.to_str().unwrap()])
            .status()
            .is_ok_and(|s| s.success());
        if taken {
            fillers.push(path);
        } else {
            // A refused fallocate may leave a partial file behind.
            let _ = std::fs::remove_file(&path);
            chunk /= 2;
        }
    }
    assert!(
        free() < 1 << 20,
        "the disk is not full after filling it: {} bytes free",
        free()
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let metrics = serve.metrics(&client()).await;
    // Seed 4.2: the disk signal says so before anyone reads a 503. The gauge serve exports...
    let free_gauge: f64 = metrics
        .lines()
        .find(|l| l.starts_with("latamctl_data_dir_filesystem_free_bytes"))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
        .unwrap_or_else(|| panic!("no data dir free-space gauge:\n{metrics}"));
    assert!(
        free_gauge < (2u64 << 20) as f64,
        "free bytes {free_gauge} on a full disk"
    );
    // ...and `status` fails its disk row.
    let status_config = dir.path().join("status.toml");
    std::fs::write(&status_config, format!("data_dir = {:?}\n", data)).unwrap();
    let (code, out, err) = support::run(
        &[
            "--config",
            status_config.to_str().unwrap(),
            "status",
            "--api",
            &serve.base,
            "--window",
            "0s",
            "--no-kubernetes",
            "-o",
            "json",
        ],
        &[],
        dir.path(),
    );
    let report: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    let disk_row = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == "disk")
        .unwrap_or_else(|| panic!("no disk row: {report}"))
        .clone();
    assert_eq!(disk_row["state"], "fail", "{disk_row}");
    assert!(
        disk_row["hint"]
            .as_str()
            .unwrap()
            .contains("refuses publishes"),
        "{disk_row}"
    );
    assert_eq!(code, 2, "{err}");
    for filler in &fillers {
        std::fs::remove_file(filler).unwrap();
    }
    let fixed = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let acked = load.finish().await;
    let (stored, _) = account(&serve.base, &acked, Duration::from_secs(60)).await;
    let recovered_s = fixed.elapsed().as_secs_f64();
    assert!(
        metrics.contains("status=\"503\""),
        "a full disk must answer 503 to POSTs:\n{metrics}"
    );
    if stored != acked.len() || std::env::var("LATAMCTL_FAULTS_DEBUG").is_ok() {
        let logs = serve.logs();
        let tail: Vec<&str> = logs.lines().rev().take(40).collect();
        eprintln!(
            "serve's last log lines:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    assert_eq!(serve.terminate(), Some(0));
    FaultLine {
        fault: "full disk under the embedded data dir (5 s)",
        acked: acked.len(),
        stored,
        duplicates: sqlite_duplicates(&data).await,
        dlq: embedded_dlq(&data).await,
        recovered_s,
    }
    .check();
}
