//! The monitor report as one self-contained HTML page (`silt monitor --html`):
//! inline CSS and inline SVG charts, no scripts, fonts or links to fetch, so
//! it opens from a file, a mail attachment or an S3 console preview alike.
//!
//! Charts: freshness over time per dataset (from the check history) against
//! its objective, counts per stage per dataset, estimated cost per model and
//! per service, and the error budget left per objective.

use silt_core::observe::monitor::{Report, age};
use silt_core::observe::slo::History;
use std::fmt::Write as _;

/// Series colours; each chart's first series has its own, so a rendering
/// test can tell that every chart was drawn.
pub const FRESHNESS_COLOUR: &str = "#1f77b4";
/// Decoded records bar.
pub const DECODED_COLOUR: &str = "#2ca02c";
/// Landed rows bar.
pub const LANDED_COLOUR: &str = "#ff7f0e";
/// Curated rows bar.
pub const CURATED_COLOUR: &str = "#9467bd";
/// Cost bars.
pub const COST_COLOUR: &str = "#d62728";
/// Error-budget bars.
pub const BUDGET_COLOUR: &str = "#17becf";
const THRESHOLD_COLOUR: &str = "#b00020";
const AXIS_COLOUR: &str = "#888";

const W: f64 = 560.0;
const H: f64 = 220.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 40.0;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// A short number: 12, 3.4k, 5.6M.
fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 || a == 0.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

fn usd(v: f64) -> String {
    if v >= 0.01 {
        format!("${v:.2}")
    } else {
        format!("${v:.6}")
    }
}

/// An SVG element with a title for screen readers.
fn svg_open(out: &mut String, id: &str, title: &str) {
    let _ = write!(
        out,
        r#"<svg id="{}" class="chart" role="img" viewBox="0 0 {W} {H}" width="{W}" height="{H}"><title>{}</title>"#,
        escape(id),
        escape(title)
    );
}

fn axes(out: &mut String, y_max: f64, y_label: &str) {
    let bottom = H - BOTTOM;
    let _ = write!(
        out,
        r#"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" stroke="{AXIS_COLOUR}"/><line x1="{LEFT}" y1="{bottom}" x2="{}" y2="{bottom}" stroke="{AXIS_COLOUR}"/><text x="{}" y="{}" text-anchor="end" class="tick">{}</text><text x="{}" y="{bottom}" text-anchor="end" class="tick">0</text><text x="12" y="{}" class="tick" transform="rotate(-90 12 {})" text-anchor="middle">{}</text>"#,
        W - RIGHT,
        LEFT - 6.0,
        TOP + 10.0,
        escape(&short(y_max)),
        LEFT - 6.0,
        (TOP + bottom) / 2.0,
        (TOP + bottom) / 2.0,
        escape(y_label)
    );
}

/// Freshness of one dataset over time, with its objective as a line.
fn freshness_chart(out: &mut String, dataset: &str, history: &History, objective_ms: Option<i64>) {
    let Some(series) = history.datasets.get(dataset) else {
        out.push_str("<p class=\"empty\">No checks yet.</p>");
        return;
    };
    // Hourly worst values before the single checks begin, then every check.
    let first_recent = series.recent.first().map_or(i64::MAX, |c| c.at_ms);
    let mut points: Vec<(i64, i64)> = series
        .hourly
        .iter()
        .filter(|b| b.hour_ms + 3_600_000 <= first_recent)
        .filter_map(|b| Some((b.hour_ms + 1_800_000, b.max_freshness_ms?)))
        .collect();
    points.extend(
        series
            .recent
            .iter()
            .filter_map(|c| Some((c.at_ms, c.freshness_ms?))),
    );
    if points.is_empty() {
        out.push_str("<p class=\"empty\">Nothing landed yet.</p>");
        return;
    }
    let t0 = points.first().map_or(0, |p| p.0);
    let t1 = points.last().map_or(0, |p| p.0).max(t0 + 1);
    let y_max = points
        .iter()
        .map(|p| p.1)
        .chain(objective_ms)
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.1;
    let x = |t: i64| LEFT + (t - t0) as f64 / (t1 - t0) as f64 * (W - LEFT - RIGHT);
    let y = |v: f64| H - BOTTOM - v / y_max * (H - TOP - BOTTOM);
    svg_open(
        out,
        &format!("chart-freshness-{dataset}"),
        &format!("Freshness of {dataset} over time"),
    );
    axes(out, y_max / 60_000.0, "minutes behind");
    if let Some(o) = objective_ms {
        let yo = y(o as f64);
        let _ = write!(
            out,
            r#"<line x1="{LEFT}" y1="{yo:.1}" x2="{}" y2="{yo:.1}" stroke="{THRESHOLD_COLOUR}" stroke-dasharray="6 4"/><text x="{}" y="{:.1}" text-anchor="end" class="tick" fill="{THRESHOLD_COLOUR}">objective {}</text>"#,
            W - RIGHT,
            W - RIGHT,
            yo - 4.0,
            escape(&age(o))
        );
    }
    let path: Vec<String> = points
        .iter()
        .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v as f64)))
        .collect();
    let _ = write!(
        out,
        r#"<polyline fill="none" stroke="{FRESHNESS_COLOUR}" stroke-width="3" points="{}"/>"#,
        path.join(" ")
    );
    for (t, v) in &points {
        let _ = write!(
            out,
            r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{FRESHNESS_COLOUR}"><title>{}: {}</title></circle>"#,
            x(*t),
            y(*v as f64),
            escape(&utc(*t)),
            escape(&age(*v))
        );
    }
    let _ = write!(
        out,
        r#"<text x="{LEFT}" y="{}" class="tick">{}</text><text x="{}" y="{}" text-anchor="end" class="tick">{}</text></svg>"#,
        H - 8.0,
        escape(&utc(t0)),
        W - RIGHT,
        H - 8.0,
        escape(&utc(t1))
    );
}

/// Vertical bars in groups: one group per label, one bar per series.
fn grouped_bars(
    out: &mut String,
    id: &str,
    title: &str,
    labels: &[String],
    series: &[(&str, &str, Vec<f64>)],
) {
    let y_max = series
        .iter()
        .flat_map(|s| s.2.iter().copied())
        .fold(0.0_f64, f64::max)
        .max(1.0)
        * 1.1;
    svg_open(out, id, title);
    axes(out, y_max, "count");
    let group_w = (W - LEFT - RIGHT) / labels.len().max(1) as f64;
    let bar_w = (group_w * 0.8 / series.len().max(1) as f64).min(48.0);
    let plot_h = H - TOP - BOTTOM;
    for (g, label) in labels.iter().enumerate() {
        let gx = LEFT + g as f64 * group_w + group_w * 0.1;
        for (i, (name, colour, values)) in series.iter().enumerate() {
            let v = values.get(g).copied().unwrap_or(0.0);
            let h = v / y_max * plot_h;
            let _ = write!(
                out,
                r#"<rect x="{:.1}" y="{:.1}" width="{bar_w:.1}" height="{h:.1}" fill="{colour}"><title>{} {}: {}</title></rect>"#,
                gx + i as f64 * bar_w,
                H - BOTTOM - h,
                escape(label),
                escape(name),
                escape(&short(v))
            );
        }
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{}" text-anchor="middle" class="tick">{}</text>"#,
            gx + bar_w * series.len() as f64 / 2.0,
            H - BOTTOM + 16.0,
            escape(label)
        );
    }
    let mut lx = LEFT + 8.0;
    for (name, colour, _) in series {
        let _ = write!(
            out,
            r#"<rect x="{lx:.1}" y="{}" width="10" height="10" fill="{colour}"/><text x="{:.1}" y="{}" class="tick">{}</text>"#,
            TOP,
            lx + 14.0,
            TOP + 9.0,
            escape(name)
        );
        lx += 14.0 + 8.0 * name.len() as f64 + 12.0;
    }
    out.push_str("</svg>");
}

/// Horizontal bars with a value label each.
fn horizontal_bars(
    out: &mut String,
    id: &str,
    title: &str,
    rows: &[(String, f64, String)],
    colour: &str,
) {
    let row_h = 26.0;
    let height = TOP + rows.len().max(1) as f64 * row_h + 8.0;
    let _ = write!(
        out,
        r#"<svg id="{}" class="chart" role="img" viewBox="0 0 {W} {height}" width="{W}" height="{height}"><title>{}</title>"#,
        escape(id),
        escape(title)
    );
    let max = rows.iter().map(|r| r.1).fold(0.0_f64, f64::max);
    let label_w = 170.0;
    let bar_max = W - label_w - 110.0;
    for (i, (label, v, text)) in rows.iter().enumerate() {
        let y = TOP + i as f64 * row_h;
        // A visible sliver even for a tiny share, so nothing looks absent.
        let w = if max > 0.0 {
            (v / max * bar_max).max(2.0)
        } else {
            2.0
        };
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" class="tick">{}</text><rect x="{label_w}" y="{y:.1}" width="{w:.1}" height="{:.1}" fill="{colour}"/><text x="{:.1}" y="{:.1}" class="tick">{}</text>"#,
            label_w - 6.0,
            y + 14.0,
            escape(label),
            row_h - 8.0,
            label_w + w + 6.0,
            y + 14.0,
            escape(text)
        );
    }
    out.push_str("</svg>");
}

/// The whole page.
pub fn render(project: &str, report: &Report, history: &History) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Silt report: {p}</title><style>
body{{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;background:#fff}}
h1{{font-size:22px;margin:0 0 4px}}h2{{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}}
table{{border-collapse:collapse;margin:8px 0}}td,th{{padding:4px 10px;border-bottom:1px solid #eee;text-align:right}}td:first-child,th:first-child{{text-align:left}}
.chart{{display:block;margin:8px 0 16px;max-width:100%;height:auto}}.tick{{font-size:11px;fill:#555}}
.ok{{color:#1b7f3b;font-weight:600}}.bad{{color:#b00020;font-weight:600}}.empty{{color:#777;font-style:italic}}
.alert{{border-left:4px solid #b00020;background:#fff4f4;padding:6px 10px;margin:6px 0}}.grid{{display:flex;flex-wrap:wrap;gap:0 32px}}
</style></head><body><h1>Silt report: {p}</h1><p>Generated {g}.</p>"#,
        p = escape(project),
        g = escape(&utc(report.generated_ms))
    );

    out.push_str("<h2>Objectives</h2>");
    for a in &report.alerts {
        let _ = write!(
            out,
            r#"<div class="alert"><strong>{:?}</strong>: {} {} burns its error budget {:.1}× over {} and {:.1}× over {} (threshold {:.2}). Runbook: <code>{}</code></div>"#,
            a.severity,
            escape(&a.dataset),
            escape(&a.slo),
            a.long_burn,
            escape(&age(a.windows_ms.0)),
            a.short_burn,
            escape(&age(a.windows_ms.1)),
            a.threshold,
            escape(&a.runbook)
        );
    }
    if report.slos.is_empty() {
        out.push_str("<p class=\"empty\">No objectives declared.</p>");
    } else {
        out.push_str("<table><tr><th>Dataset</th><th>Objective</th><th>Checks</th><th>Good</th><th>Budget left</th>");
        let windows: Vec<i64> = report.slos[0].burns.iter().map(|b| b.window_ms).collect();
        for w in &windows {
            let _ = write!(out, "<th>Burn {}</th>", escape(&age(*w)));
        }
        out.push_str("</tr>");
        let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.2}%", v * 100.0));
        for s in &report.slos {
            let class = if s.budget_remaining.is_some_and(|b| b < 0.0) || !s.alerts.is_empty() {
                "bad"
            } else {
                "ok"
            };
            let _ = write!(
                out,
                r#"<tr><td>{}</td><td>{} {} over {}</td><td>{}</td><td>{}</td><td class="{class}">{}</td>"#,
                escape(&s.dataset),
                escape(&s.slo),
                pct(Some(s.objective)),
                escape(&age(s.window_ms)),
                s.checks,
                pct(s.sli),
                pct(s.budget_remaining)
            );
            for b in &s.burns {
                let _ = write!(
                    out,
                    "<td>{}</td>",
                    b.rate.map_or("-".to_string(), |r| format!("{r:.1}"))
                );
            }
            out.push_str("</tr>");
        }
        out.push_str("</table>");
        let rows: Vec<(String, f64, String)> = report
            .slos
            .iter()
            .map(|s| {
                let b = s.budget_remaining.unwrap_or(0.0);
                (s.dataset.clone(), b.max(0.0), pct(s.budget_remaining))
            })
            .collect();
        horizontal_bars(
            &mut out,
            "chart-budget",
            "Error budget left per objective",
            &rows,
            BUDGET_COLOUR,
        );
    }

    out.push_str("<h2>Freshness over time</h2><div class=\"grid\">");
    for d in &report.datasets {
        let _ = write!(
            out,
            "<div><h3>{} <small>(now {})</small></h3>",
            escape(&d.dataset),
            escape(&d.landed_freshness_ms.map_or("-".into(), age))
        );
        freshness_chart(&mut out, &d.dataset, history, d.freshness_max_delay_ms);
        out.push_str("</div>");
    }
    out.push_str("</div>");

    out.push_str("<h2>Counts per stage</h2>");
    let labels: Vec<String> = report
        .datasets
        .iter()
        .map(|d| {
            d.dataset
                .rsplit('.')
                .next()
                .unwrap_or(&d.dataset)
                .to_string()
        })
        .collect();
    grouped_bars(
        &mut out,
        "chart-counts",
        "Records decoded, rows landed and rows curated per dataset",
        &labels,
        &[
            (
                "decoded",
                DECODED_COLOUR,
                report.datasets.iter().map(|d| d.decoded as f64).collect(),
            ),
            (
                "landed",
                LANDED_COLOUR,
                report
                    .datasets
                    .iter()
                    .map(|d| d.landed_rows as f64)
                    .collect(),
            ),
            (
                "curated",
                CURATED_COLOUR,
                report
                    .datasets
                    .iter()
                    .map(|d| d.curated_rows.unwrap_or(0) as f64)
                    .collect(),
            ),
        ],
    );
    out.push_str("<table><tr><th>Dataset</th><th>Decoded</th><th>Landed</th><th>Curated</th><th>Objects</th><th>Completeness</th><th>Schema version</th><th>Position gaps</th><th>Suspected PII</th></tr>");
    for d in &report.datasets {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
            escape(&d.dataset),
            d.decoded,
            d.landed_rows,
            d.curated_rows.map_or("-".into(), |v| v.to_string()),
            d.raw_objects,
            d.completeness
                .map_or("-".into(), |c| format!("{:.2}%", c * 100.0)),
            d.schema_version,
            d.position_gaps.map_or("-".into(), |g| g.to_string()),
            if d.pii_suspected > 0 { "bad" } else { "ok" },
            d.pii_suspected
        );
    }
    out.push_str("</table>");

    out.push_str("<h2>Cost</h2>");
    let c = &report.cost;
    let _ = write!(
        out,
        "<p>Estimated at the project's <code>[cost]</code> prices: <strong>{}</strong> for {} events{}.</p>",
        escape(&usd(c.total_usd)),
        c.events,
        c.per_million_events_usd.map_or(String::new(), |p| format!(
            ", {} per million events",
            escape(&usd(p))
        ))
    );
    let models: Vec<(String, f64, String)> = c
        .by_model
        .iter()
        .map(|(m, v)| (m.clone(), *v, usd(*v)))
        .collect();
    if models.is_empty() {
        out.push_str("<p class=\"empty\">No model queries in the latest run.</p>");
    } else {
        out.push_str("<h3>Per model (query engine)</h3>");
        horizontal_bars(
            &mut out,
            "chart-cost-models",
            "Estimated cost per model",
            &models,
            COST_COLOUR,
        );
    }
    let services: Vec<(String, f64, String)> = c
        .by_service
        .iter()
        .map(|(s, v)| (s.clone(), *v, usd(*v)))
        .collect();
    out.push_str("<h3>Per service</h3>");
    horizontal_bars(
        &mut out,
        "chart-cost-services",
        "Estimated cost per service",
        &services,
        COST_COLOUR,
    );

    out.push_str("<h2>Models</h2><table><tr><th>Model</th><th>Status</th><th>Rows</th><th>Bytes scanned</th><th>Time</th></tr>");
    for m in &report.models {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{:?}</td><td>{}</td><td>{}</td><td>{} ms</td></tr>",
            escape(&m.model),
            m.status,
            m.rows.map_or("-".into(), |r| r.to_string()),
            m.bytes_scanned,
            m.elapsed_ms
        );
    }
    out.push_str("</table><h2>Indicators</h2><table>");
    let s = &report.slis;
    let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.2}%", v * 100.0));
    for (source, rate) in &s.ingest_success_rate {
        let _ = write!(
            out,
            "<tr><td>Ingest success, source {}</td><td>{}</td></tr>",
            escape(source),
            pct(Some(*rate))
        );
    }
    if let Some(b) = &s.backfill {
        let _ = write!(
            out,
            "<tr><td>Latest backfill ({})</td><td class=\"{}\">{} in {}</td></tr>",
            escape(&b.run_id),
            if b.ok { "ok" } else { "bad" },
            if b.ok { "succeeded" } else { "failed" },
            escape(&age(b.duration_ms))
        );
    }
    let _ = write!(
        out,
        "<tr><td>Transform success</td><td>{}</td></tr><tr><td>Query errors</td><td>{}</td></tr><tr><td>Lineage coverage</td><td>{}</td></tr><tr><td>Raw objects without manifest</td><td>{}</td></tr></table>",
        pct(s.transform_success_rate),
        pct(s.query_error_rate),
        pct(s.lineage_coverage),
        s.orphan_objects
    );
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn short_numbers() {
        assert_eq!(short(0.0), "0");
        assert_eq!(short(12.0), "12");
        assert_eq!(short(25_000.0), "25.0k");
        assert_eq!(short(3_400_000.0), "3.4M");
    }
}
