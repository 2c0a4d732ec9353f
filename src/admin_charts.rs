//! Geometry for the staff dashboard's chart of confirmed signatures per day. The chart is inline
//! SVG drawn by a template (`templates/admin/chart_macros.html`), so it needs no script and
//! nothing from another site; this works out where each bar and label goes. Days are UTC days.
use serde::Serialize;

use crate::clock::{format_date, DAY};

/// The chart's own coordinate space (the SVG's viewBox); CSS scales it to the page.
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 36.0;

/// How many days the chart covers at most.
pub const WINDOW_DAYS: i64 = 30;

#[derive(Debug, Clone, Serialize)]
pub struct Bar {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    pub count: i64,
    /// The day in words, for the bar's tooltip.
    pub label: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Day {
    /// `2026-05-03`, for `<time datetime>`.
    pub date: String,
    /// `3 May 2026`.
    pub label: String,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AxisLabel {
    pub x: f64,
    pub y: f64,
    pub text: String,
    /// SVG `text-anchor`: start, middle or end.
    pub anchor: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct DayChart {
    /// Prefix for element ids, unique on the page (several charts share the dashboard).
    pub id: String,
    pub width: f64,
    pub height: f64,
    /// The plot area: left and right edges, the top line (the maximum) and the baseline (zero).
    pub plot_left: f64,
    pub plot_right: f64,
    pub plot_top: f64,
    pub baseline: f64,
    /// Where the y-axis labels sit (right-aligned just left of the plot).
    pub y_label_x: f64,
    pub max_label_y: f64,
    pub zero_label_y: f64,
    pub bars: Vec<Bar>,
    pub x_labels: Vec<AxisLabel>,
    pub days: Vec<Day>,
    pub max: i64,
    pub total: i64,
    pub title: String,
    pub desc: String,
}

/// One decimal place is plenty for pixels and keeps the markup short.
fn r(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn date_of(day: i64, fmt: &str) -> String {
    chrono::DateTime::from_timestamp_millis(day.saturating_mul(DAY)).map(|d| d.format(fmt).to_string()).unwrap_or_default()
}

/// Confirmed signatures per UTC day over the last `WINDOW_DAYS` days up to `now`, or from the
/// day of the first confirmation if that is later. `None` when nothing is confirmed yet.
pub fn per_day(id: &str, times: &[i64], first: Option<i64>, now: i64) -> Option<DayChart> {
    let first = first?;
    let today = now.div_euclid(DAY);
    // A first confirmation "in the future" (clock change) still gets a one-day chart.
    let start = (today - (WINDOW_DAYS - 1)).max(first.div_euclid(DAY)).min(today);
    let n = (today - start + 1) as usize;
    let mut counts = vec![0i64; n];
    for t in times {
        let d = t.div_euclid(DAY) - start;
        if (0..n as i64).contains(&d) {
            counts[d as usize] += 1;
        }
    }
    let max = counts.iter().copied().max().unwrap_or(0);
    let total: i64 = counts.iter().sum();

    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let baseline = TOP + plot_h;
    let slot = plot_w / n as f64;
    // Narrow enough to leave gaps; capped so a chart of a day or two is not one slab.
    let bar_w = (slot * 0.7).clamp(1.0, 40.0);
    let bars = counts
        .iter()
        .enumerate()
        .filter(|(_, &c)| c > 0)
        .map(|(i, &c)| {
            // A day with one signature among days with hundreds still shows as a sliver.
            let h = (c as f64 / max.max(1) as f64 * plot_h).max(1.0);
            Bar {
                x: r(LEFT + i as f64 * slot + (slot - bar_w) / 2.0),
                y: r(baseline - h),
                width: r(bar_w),
                height: r(h),
                count: c,
                label: format_date((start + i as i64) * DAY),
            }
        })
        .collect();

    let centre = |i: usize| r(LEFT + i as f64 * slot + slot / 2.0);
    let label_y = r(baseline + 20.0);
    let mut x_labels = vec![AxisLabel { x: centre(0), y: label_y, text: date_of(start, "%-d %b"), anchor: if n == 1 { "middle" } else { "start" } }];
    if n >= 7 {
        let mid = n / 2;
        x_labels.push(AxisLabel { x: centre(mid), y: label_y, text: date_of(start + mid as i64, "%-d %b"), anchor: "middle" });
    }
    if n > 1 {
        x_labels.push(AxisLabel { x: centre(n - 1), y: label_y, text: date_of(today, "%-d %b"), anchor: "end" });
    }

    let days: Vec<Day> = counts
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let day = start + i as i64;
            Day { date: date_of(day, "%Y-%m-%d"), label: format_date(day * DAY), count: c }
        })
        .collect();
    let (from, to) = (format_date(start * DAY), format_date(today * DAY));
    let span = if n == 1 { format!("on {to}") } else { format!("per day from {from} to {to}") };
    let busiest = days.iter().find(|d| d.count == max && max > 0).map(|d| d.label.clone());
    let desc = match busiest {
        Some(day) => format!("Bar chart of confirmed signatures {span}: {total} in all, the most in one day {max}, on {day}."),
        None => format!("Bar chart of confirmed signatures {span}: none still confirmed in that time."),
    };

    Some(DayChart {
        id: id.to_string(),
        width: WIDTH,
        height: HEIGHT,
        plot_left: LEFT,
        plot_right: WIDTH - RIGHT,
        plot_top: TOP,
        baseline,
        y_label_x: LEFT - 6.0,
        max_label_y: TOP + 4.0,
        zero_label_y: baseline + 4.0,
        bars,
        x_labels,
        days,
        max,
        total,
        title: "Confirmed signatures per day".to_string(),
        desc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_780_000_000_000; // some time on 28 May 2026

    #[test]
    fn nothing_confirmed_means_no_chart() {
        assert!(per_day("c", &[], None, NOW).is_none());
    }

    #[test]
    fn buckets_by_utc_day_from_the_first_signature() {
        let today = NOW.div_euclid(DAY) * DAY;
        let times = [today - DAY + 5, today - DAY + 10, today + 1];
        let chart = per_day("c", &times, Some(today - DAY + 5), NOW).unwrap();
        assert_eq!(chart.days.len(), 2);
        assert_eq!(chart.days.iter().map(|d| d.count).collect::<Vec<_>>(), vec![2, 1]);
        assert_eq!((chart.max, chart.total), (2, 3));
        assert_eq!(chart.bars.len(), 2);
        // The tallest bar reaches the top of the plot; the other is half its height.
        assert_eq!(chart.bars[0].y, chart.plot_top);
        assert!((chart.bars[1].height * 2.0 - chart.bars[0].height).abs() < 0.2);
        assert!(chart.bars.iter().all(|b| b.x >= chart.plot_left && b.x + b.width <= chart.plot_right));
    }

    #[test]
    fn covers_thirty_days_at_most() {
        let today = NOW.div_euclid(DAY) * DAY;
        let long_ago = today - 100 * DAY;
        let chart = per_day("c", &[long_ago, today - 29 * DAY, today], Some(long_ago), NOW).unwrap();
        assert_eq!(chart.days.len(), WINDOW_DAYS as usize);
        assert_eq!(chart.total, 2, "days before the window are not drawn");
        assert_eq!(chart.x_labels.len(), 3);
        assert!(chart.desc.contains(": 2 in all"), "{}", chart.desc);
    }
}
