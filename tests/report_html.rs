//! The HTML report renders in headless Chromium with every chart drawn.
//!
//! `make test` installs Debian's `chromium` (`make tools`); `SILT_CHROMIUM`
//! may point at another binary. The page is screenshotted whole (kept as
//! `target/test-artifacts/report.png` for people to look at) and each chart
//! alone, and every chart's series colour must be on its screenshot: a chart
//! that failed to draw leaves only white.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration tests: a failed unwrap is a failed test"
)]

use silt_core::ingest::mask::Masker;
use silt_core::ports::ManualClock;
use silt_local::html::{
    BUDGET_COLOUR, COST_COLOUR, CURATED_COLOUR, DECODED_COLOUR, FRESHNESS_COLOUR, LANDED_COLOUR,
};
use silt_local::{Local, NoProgress};
use silt_tests::{TEST_KEY, repo_root, shop_dir, shop_project};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn chromium() -> String {
    let bin = std::env::var("SILT_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&bin).exists(),
        "Chromium not found at {bin}: run `make tools` (make test does) or set SILT_CHROMIUM"
    );
    bin
}

/// Screenshots `page` at `width` x `height` into `png`.
fn screenshot(page: &Path, png: &Path, width: u32, height: u32) {
    let profile = tempfile::tempdir().unwrap();
    // Flags that keep Chromium off the (closed) network and out of the sandbox it cannot create as root.
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium exited with {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish a screenshot in 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(png.exists(), "chromium wrote no screenshot");
}

/// Pixels as RGB triples, with the image's width and height.
fn pixels(png: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let bytes = std::fs::read(png).unwrap();
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let px = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|c| match channels {
            1 | 2 => [c[0], c[0], c[0]],
            _ => [c[0], c[1], c[2]],
        })
        .collect();
    (info.width, info.height, px)
}

fn rgb(hex: &str) -> [u8; 3] {
    let n = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap();
    [(n >> 16) as u8, (n >> 8) as u8, n as u8]
}

/// Pixels within a small tolerance of `colour` (anti-aliasing aside).
fn count(px: &[[u8; 3]], colour: &str) -> usize {
    let c = rgb(colour);
    px.iter()
        .filter(|p| p.iter().zip(c).all(|(a, b)| a.abs_diff(b) <= 3))
        .count()
}

/// A report with history: the shop pipeline, then checks every 5 minutes.
async fn page(dir: &Path) -> String {
    let clock = Arc::new(ManualClock::at(1_767_229_200_000));
    let l = Local::new(
        shop_project(),
        &shop_dir(),
        Some(dir.join("wh")),
        Masker::new(Some(TEST_KEY.to_vec())),
        clock.clone(),
    )
    .unwrap();
    let input = dir.join("events.jsonl");
    std::fs::write(
        &input,
        silt_tests::generated_events(1_500, 7).join("\n") + "\n",
    )
    .unwrap();
    let mut summary = l.run(&[input], None, &NoProgress).await.unwrap();
    assert!(summary.transform.ok(), "{:?}", summary.transform.failures());
    for _ in 0..8 {
        clock.advance(5 * 60_000);
        summary.report = l.monitor().await.unwrap();
    }
    l.html(&summary.report).await.unwrap()
}

/// Every `<svg id="chart-…">…</svg>` in the page, by id.
fn charts(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<svg id=\"chart-") {
        let tail = &rest[start..];
        let end = tail.find("</svg>").unwrap() + "</svg>".len();
        let id_start = "<svg id=\"".len();
        let id_end = tail[id_start..].find('"').unwrap() + id_start;
        out.push((tail[id_start..id_end].to_string(), tail[..end].to_string()));
        rest = &tail[end..];
    }
    out
}

fn colours_of(id: &str) -> &'static [&'static str] {
    match id {
        "chart-budget" => &[BUDGET_COLOUR],
        "chart-counts" => &[DECODED_COLOUR, LANDED_COLOUR, CURATED_COLOUR],
        "chart-cost-models" | "chart-cost-services" => &[COST_COLOUR],
        id if id.starts_with("chart-freshness-") => &[FRESHNESS_COLOUR],
        other => panic!("a chart this test does not know: {other}"),
    }
}

#[tokio::test]
async fn html_report_renders_in_headless_chromium_with_every_chart_drawn() {
    let dir = tempfile::tempdir().unwrap();
    let html = page(dir.path()).await;

    // Self-contained: nothing to fetch, nothing to run.
    for banned in [
        "<script", "src=", "href=", "url(", "@import", "http:", "https:",
    ] {
        assert!(!html.contains(banned), "the page contains `{banned}`");
    }
    let found = charts(&html);
    let ids: Vec<&str> = found.iter().map(|(id, _)| id.as_str()).collect();
    for expected in [
        "chart-budget",
        "chart-freshness-shop.public.customers",
        "chart-freshness-shop.public.orders",
        "chart-counts",
        "chart-cost-models",
        "chart-cost-services",
    ] {
        assert!(ids.contains(&expected), "{expected} missing from {ids:?}");
    }

    // The whole page, kept for people to look at.
    let page_path = dir.path().join("report.html");
    std::fs::write(&page_path, &html).unwrap();
    let artifacts: PathBuf = repo_root().join("target").join("test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let full = artifacts.join("report.png");
    let _ = std::fs::remove_file(&full);
    screenshot(&page_path, &full, 1200, 2600);
    let (w, h, px) = pixels(&full);
    assert_eq!((w, h), (1200, 2600));
    for (id, _) in &found {
        for colour in colours_of(id) {
            assert!(count(&px, colour) > 50, "{colour} of {id} not on the page");
        }
    }

    // Each chart alone: its own colours must be drawn.
    for (id, svg) in &found {
        let alone = dir.path().join(format!("{id}.html"));
        std::fs::write(
            &alone,
            format!(
                "<!doctype html><html><body style=\"margin:0;background:#fff\">{svg}</body></html>"
            ),
        )
        .unwrap();
        let shot = dir.path().join(format!("{id}.png"));
        screenshot(&alone, &shot, 600, 400);
        let (_, _, px) = pixels(&shot);
        for colour in colours_of(id) {
            let n = count(&px, colour);
            assert!(
                n > 20,
                "{id}: only {n} pixels of {colour}: the chart was not drawn"
            );
        }
    }
}
