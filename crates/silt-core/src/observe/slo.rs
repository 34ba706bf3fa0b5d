//! Service-level objectives over the monitor's checks: a compact history of
//! check outcomes per dataset, the error budget left, and multi-window
//! burn-rate alerts in the manner of Google's SRE workbook.
//!
//! Every monitor run is one check per dataset. The history keeps each check
//! for [`RECENT_MS`] (long enough for the longest alert window) and an hourly
//! tally of good and bad checks for the whole SLO window, so the document
//! stays small (a 28-day window is 672 buckets) however often checks run.

use crate::config::FreshnessSlo;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
/// How long single checks are kept: the longest burn-rate window.
pub const RECENT_MS: i64 = 6 * HOUR_MS;

/// A multi-window burn-rate rule: alert when both windows burn at least
/// `threshold` times the sustainable rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BurnRule {
    /// What the alert asks of people.
    pub severity: Severity,
    /// Long window, milliseconds.
    pub long_ms: i64,
    /// Short window, milliseconds: stops alerting soon after recovery.
    pub short_ms: i64,
    /// Share of the whole window's error budget that, spent within the long
    /// window, raises this alert (the SRE workbook's 2% for paging, 5% for tickets).
    pub budget_share: f64,
}

impl BurnRule {
    /// Burn-rate threshold for an SLO window: spending `budget_share` of the
    /// budget in `long_ms` means burning `budget_share * window / long` times
    /// the sustainable rate (13.44 for a page over 28 days, 5.6 for a ticket).
    pub fn threshold(&self, slo_window_ms: i64) -> f64 {
        self.budget_share * slo_window_ms as f64 / self.long_ms as f64
    }
}

/// The fast rule (1 h and 5 min, page) and the slow rule (6 h and 30 min, ticket).
pub const RULES: [BurnRule; 2] = [
    BurnRule {
        severity: Severity::Page,
        long_ms: HOUR_MS,
        short_ms: 5 * MINUTE_MS,
        budget_share: 0.02,
    },
    BurnRule {
        severity: Severity::Ticket,
        long_ms: 6 * HOUR_MS,
        short_ms: 30 * MINUTE_MS,
        budget_share: 0.05,
    },
];

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Wake someone: the budget burns fast enough to be gone within days.
    Page,
    /// Look during working hours.
    Ticket,
}

/// One check of one dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// When it ran, epoch milliseconds.
    pub at_ms: i64,
    /// Landed freshness at that time (`None`: nothing landed yet).
    pub freshness_ms: Option<i64>,
    /// Whether it met the objective (`None`: no objective declared).
    pub good: Option<bool>,
}

/// Good and bad checks within one hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// Start of the hour, epoch milliseconds.
    pub hour_ms: i64,
    /// Checks that met the objective.
    pub good: u64,
    /// Checks that did not.
    pub bad: u64,
    /// Worst freshness seen in the hour.
    pub max_freshness_ms: Option<i64>,
}

/// Checks of one dataset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Series {
    /// Every check of the last [`RECENT_MS`], oldest first.
    pub recent: Vec<Check>,
    /// Hourly tallies over the SLO window, oldest first.
    pub hourly: Vec<Bucket>,
}

/// The monitor's memory between runs, stored as `monitor/history.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// Series by dataset.
    pub datasets: BTreeMap<String, Series>,
}

impl History {
    /// Adds a check and forgets what no window needs any more: single checks
    /// older than [`RECENT_MS`], hourly tallies older than `keep_ms`.
    pub fn record(&mut self, dataset: &str, check: Check, keep_ms: i64) {
        let s = self.datasets.entry(dataset.to_string()).or_default();
        // A check older than the newest is a clock step backwards (or a replay):
        // keep the series ordered rather than trusting it.
        if s.recent.last().is_some_and(|l| l.at_ms >= check.at_ms) {
            return;
        }
        s.recent.push(check);
        let hour_ms = check.at_ms.div_euclid(HOUR_MS) * HOUR_MS;
        if s.hourly.last().is_none_or(|b| b.hour_ms != hour_ms) {
            s.hourly.push(Bucket {
                hour_ms,
                good: 0,
                bad: 0,
                max_freshness_ms: None,
            });
        }
        if let Some(b) = s.hourly.last_mut() {
            match check.good {
                Some(true) => b.good += 1,
                Some(false) => b.bad += 1,
                None => {}
            }
            b.max_freshness_ms = b.max_freshness_ms.max(check.freshness_ms);
        }
        let now = check.at_ms;
        s.recent.retain(|c| c.at_ms > now - RECENT_MS);
        s.hourly
            .retain(|b| b.hour_ms + HOUR_MS > now - keep_ms.max(RECENT_MS));
    }
}

/// Share of bad checks in `(now - window, now]`, `None` without checks.
pub fn error_rate(recent: &[Check], now_ms: i64, window_ms: i64) -> Option<f64> {
    let (mut bad, mut total) = (0u64, 0u64);
    for c in recent {
        if c.at_ms > now_ms - window_ms
            && c.at_ms <= now_ms
            && let Some(good) = c.good
        {
            total += 1;
            bad += u64::from(!good);
        }
    }
    (total > 0).then(|| bad as f64 / total as f64)
}

/// How many times faster than sustainable the budget burns: error rate over
/// the allowed error rate `1 - objective`.
pub fn burn_rate(error_rate: f64, objective: f64) -> f64 {
    error_rate / (1.0 - objective)
}

/// Burn over one window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Burn {
    /// Window length, milliseconds.
    pub window_ms: i64,
    /// Burn rate (`None` without checks in the window).
    pub rate: Option<f64>,
}

/// An alert raised by a burn-rate rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The dataset.
    pub dataset: String,
    /// Which objective (`freshness`).
    pub slo: String,
    /// Page or ticket.
    pub severity: Severity,
    /// Burn rate over the long window.
    pub long_burn: f64,
    /// Burn rate over the short window.
    pub short_burn: f64,
    /// The rule's threshold.
    pub threshold: f64,
    /// Long and short window, milliseconds.
    pub windows_ms: (i64, i64),
    /// What to do about it.
    pub runbook: String,
}

/// Where an objective stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloStatus {
    /// The dataset.
    pub dataset: String,
    /// Which objective (`freshness`).
    pub slo: String,
    /// Target share of good checks.
    pub objective: f64,
    /// Window the objective is measured over, milliseconds.
    pub window_ms: i64,
    /// Checks counted in the window.
    pub checks: u64,
    /// Share of good checks in the window (`None` without checks).
    pub sli: Option<f64>,
    /// Error budget left: 1 is untouched, 0 spent, below 0 overspent.
    pub budget_remaining: Option<f64>,
    /// Burn rate per alert window (5 min, 30 min, 1 h, 6 h).
    pub burns: Vec<Burn>,
    /// Alerts the rules raise now, most severe first.
    pub alerts: Vec<Alert>,
}

/// The runbook freshness alerts link.
pub const FRESHNESS_RUNBOOK: &str = "docs/runbooks/ingest-lag.md";

/// Evaluates a freshness objective over a dataset's series at `now_ms`.
pub fn evaluate(dataset: &str, slo: &FreshnessSlo, series: &Series, now_ms: i64) -> SloStatus {
    let (mut good, mut bad) = (0u64, 0u64);
    for b in &series.hourly {
        if b.hour_ms + HOUR_MS > now_ms - slo.window_ms {
            good += b.good;
            bad += b.bad;
        }
    }
    let checks = good + bad;
    let sli = (checks > 0).then(|| good as f64 / checks as f64);
    let allowed = 1.0 - slo.objective;
    let budget_remaining = sli.map(|s| 1.0 - (1.0 - s) / allowed);
    let mut windows: Vec<i64> = RULES.iter().flat_map(|r| [r.short_ms, r.long_ms]).collect();
    windows.sort_unstable();
    let burns = windows
        .iter()
        .map(|&w| Burn {
            window_ms: w,
            rate: error_rate(&series.recent, now_ms, w).map(|e| burn_rate(e, slo.objective)),
        })
        .collect();
    let mut alerts = Vec::new();
    for rule in RULES {
        let threshold = rule.threshold(slo.window_ms);
        let rate = |w| error_rate(&series.recent, now_ms, w).map(|e| burn_rate(e, slo.objective));
        if let (Some(long), Some(short)) = (rate(rule.long_ms), rate(rule.short_ms))
            && long >= threshold
            && short >= threshold
        {
            alerts.push(Alert {
                dataset: dataset.to_string(),
                slo: "freshness".into(),
                severity: rule.severity,
                long_burn: long,
                short_burn: short,
                threshold,
                windows_ms: (rule.long_ms, rule.short_ms),
                runbook: FRESHNESS_RUNBOOK.into(),
            });
        }
    }
    alerts.sort_by_key(|a| a.severity);
    SloStatus {
        dataset: dataset.to_string(),
        slo: "freshness".into(),
        objective: slo.objective,
        window_ms: slo.window_ms,
        checks,
        sli,
        budget_remaining,
        burns,
        alerts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: i64 = MINUTE_MS;
    const DAY: i64 = 24 * HOUR_MS;

    fn slo(objective: f64) -> FreshnessSlo {
        FreshnessSlo {
            max_delay_ms: 15 * M,
            objective,
            window_ms: 28 * DAY,
        }
    }

    /// Checks every 5 minutes from `start`, `bad` deciding each one.
    fn history(start: i64, n: i64, bad: impl Fn(i64) -> bool) -> History {
        let mut h = History::default();
        for i in 0..n {
            h.record(
                "d",
                Check {
                    at_ms: start + i * 5 * M,
                    freshness_ms: Some(if bad(i) { 20 * M } else { M }),
                    good: Some(!bad(i)),
                },
                28 * DAY,
            );
        }
        h
    }

    #[test]
    fn thresholds_match_the_workbook_for_28_and_30_days() {
        // 2% of a 30-day budget in 1 h: 0.02 * 720 = 14.4; 5% in 6 h: 0.05 * 120 = 6.
        assert!((RULES[0].threshold(30 * DAY) - 14.4).abs() < 1e-9);
        assert!((RULES[1].threshold(30 * DAY) - 6.0).abs() < 1e-9);
        // 28 days: 0.02 * 672 = 13.44 and 0.05 * 112 = 5.6.
        assert!((RULES[0].threshold(28 * DAY) - 13.44).abs() < 1e-9);
        assert!((RULES[1].threshold(28 * DAY) - 5.6).abs() < 1e-9);
    }

    #[test]
    fn burn_rate_is_error_rate_over_allowed_errors() {
        // 1 bad in 12 checks against 99%: (1/12) / 0.01 = 8.333...
        assert!((burn_rate(1.0 / 12.0, 0.99) - 8.0 / 0.96).abs() < 1e-9);
        assert!((burn_rate(0.0, 0.999)).abs() < 1e-12);
        assert!((burn_rate(1.0, 0.9) - 10.0).abs() < 1e-9);
    }

    #[test]
    fn one_bad_check_in_an_hour_does_not_page_two_do() {
        // 12 checks over the last hour (t = 0..55 min, now = 55 min).
        let now = 55 * M;
        let one = history(0, 12, |i| i == 11);
        let s = evaluate("d", &slo(0.99), &one.datasets["d"], now);
        // 1h: 1/12 / 0.01 = 8.33 < 13.44: no page although the 5 min burn is 100.
        assert!(
            s.alerts.iter().all(|a| a.severity != Severity::Page),
            "{s:?}"
        );
        let two = history(0, 12, |i| i >= 10);
        let s = evaluate("d", &slo(0.99), &two.datasets["d"], now);
        // 1h: 2/12 / 0.01 = 16.67 >= 13.44; 5 min: 1/1 / 0.01 = 100.
        let page = &s.alerts[0];
        assert_eq!(page.severity, Severity::Page);
        assert!((page.long_burn - 2.0 / 12.0 / 0.01).abs() < 1e-9);
        assert!((page.short_burn - 100.0).abs() < 1e-9);
        // The slow rule over the same checks: 6h holds the same 12 checks (16.67 >= 5.6),
        // 30 min holds 6 checks of which 2 bad: 33.3 >= 5.6, so a ticket too.
        assert_eq!(s.alerts.len(), 2);
        assert_eq!(s.alerts[1].severity, Severity::Ticket);
        assert!((s.alerts[1].short_burn - 2.0 / 6.0 / 0.01).abs() < 1e-9);
    }

    #[test]
    fn short_window_stops_the_page_once_recovered() {
        // Bad from 0 to 25 min, good after: at 55 min the last 5 min are good.
        let h = history(0, 12, |i| i <= 5);
        let s = evaluate("d", &slo(0.99), &h.datasets["d"], 55 * M);
        assert!(s.alerts.is_empty(), "{s:?}");
        // 1h burn is still 6/12 / 0.01 = 50: the long window alone does not alert.
        let hour = s.burns.iter().find(|b| b.window_ms == HOUR_MS).unwrap();
        assert!((hour.rate.unwrap() - 50.0).abs() < 1e-9);
    }

    #[test]
    fn slow_burn_tickets_without_paging() {
        // 6 h of checks (72), one bad per hour (the 12th of each): 1h error 1/12.
        // 6h: 6/72 / 0.01 = 8.33 >= 5.6; 30 min (6 checks, incl. the last): 1/6 / 0.01 = 16.7.
        // Page: 1h 8.33 < 13.44, so none.
        let h = history(0, 72, |i| i % 12 == 11);
        let now = 71 * 5 * M;
        let s = evaluate("d", &slo(0.99), &h.datasets["d"], now);
        assert_eq!(s.alerts.len(), 1, "{s:?}");
        assert_eq!(s.alerts[0].severity, Severity::Ticket);
        assert!((s.alerts[0].long_burn - 6.0 / 72.0 / 0.01).abs() < 1e-9);
    }

    #[test]
    fn budget_counts_the_whole_window() {
        // 72 checks, 1 bad: SLI 71/72; budget 1 - (1/72)/0.01 = -0.3889 (overspent).
        let h = history(0, 72, |i| i == 0);
        let s = evaluate("d", &slo(0.99), &h.datasets["d"], 71 * 5 * M);
        assert_eq!(s.checks, 72);
        assert!((s.sli.unwrap() - 71.0 / 72.0).abs() < 1e-12);
        assert!((s.budget_remaining.unwrap() - (1.0 - (1.0 / 72.0) / 0.01)).abs() < 1e-9);
        // Against 90%: 1 - (1/72)/0.1 = 0.8611.
        let s = evaluate("d", &slo(0.9), &h.datasets["d"], 71 * 5 * M);
        assert!((s.budget_remaining.unwrap() - (1.0 - (1.0 / 72.0) / 0.1)).abs() < 1e-9);
    }

    #[test]
    fn history_stays_small_and_ordered() {
        // Three days of 5-minute checks.
        let h = history(0, 3 * 288, |i| i % 100 == 0);
        let s = &h.datasets["d"];
        assert_eq!(s.recent.len(), 72, "six hours of single checks");
        assert_eq!(s.hourly.len(), 72, "one bucket per hour");
        assert_eq!(s.hourly.iter().map(|b| b.good + b.bad).sum::<u64>(), 864);
        // A short SLO window forgets older buckets, but never recent checks' hours.
        let mut short = History::default();
        for i in 0..100 {
            short.record(
                "d",
                Check {
                    at_ms: i * HOUR_MS,
                    freshness_ms: None,
                    good: Some(true),
                },
                DAY,
            );
        }
        // Hours 75 to 99: the day before 99h overlaps 25 hourly buckets.
        assert_eq!(short.datasets["d"].hourly.len(), 25);
        // A check from the past is ignored.
        let before = short.clone();
        short.record(
            "d",
            Check {
                at_ms: 0,
                freshness_ms: None,
                good: Some(false),
            },
            DAY,
        );
        assert_eq!(short, before);
    }

    #[test]
    fn without_checks_nothing_is_claimed() {
        let s = evaluate("d", &slo(0.99), &Series::default(), 0);
        assert_eq!(s.sli, None);
        assert_eq!(s.budget_remaining, None);
        assert!(s.alerts.is_empty());
        assert!(s.burns.iter().all(|b| b.rate.is_none()));
    }
}
