//! `windows.svg`: one panel per number of simultaneous signals, each with the cumulative
//! distribution of the unprotected window of every policy that ran, and the physical floor as
//! a dashed line. Hand-written SVG: no plotting library.

use std::fmt::Write as _;

use super::figures::Run;

const WIDTH: i64 = 760;
const PANEL_HEIGHT: i64 = 250;
const MARGIN_LEFT: i64 = 60;
const MARGIN_RIGHT: i64 = 170;
const MARGIN_TOP: i64 = 40;
const MARGIN_BOTTOM: i64 = 45;
const X_TICKS: i64 = 5;
const COLORS: [&str; 6] = [
    "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
];

const _: () = assert!(MARGIN_LEFT + MARGIN_RIGHT < WIDTH && X_TICKS >= 1);

/// A round axis end at or above `max_ms` (1, 2 or 5 times a power of ten).
fn axis_end(max_ms: i64) -> i64 {
    let mut scale = 1;
    // Bounded: the scale grows tenfold per turn and i64 has 19 digits.
    for _ in 0..18 {
        for step in [1, 2, 5] {
            if step * scale >= max_ms.max(1) {
                return step * scale;
            }
        }
        scale *= 10;
    }
    max_ms
}

pub fn plot(runs: &[Run], floor_ms: i64) -> String {
    let mut concurrencies: Vec<u64> = runs.iter().map(|run| run.concurrency).collect();
    concurrencies.sort_unstable();
    concurrencies.dedup();
    let mut policies: Vec<&str> = Vec::new();
    for run in runs {
        if !policies.contains(&run.policy.as_str()) {
            policies.push(&run.policy);
        }
    }
    let panels = i64::try_from(concurrencies.len()).unwrap_or(1);
    let height = panels * PANEL_HEIGHT;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    for (index, concurrency) in concurrencies.iter().enumerate() {
        let top = i64::try_from(index).unwrap_or(0) * PANEL_HEIGHT;
        let panel_runs: Vec<&Run> = runs
            .iter()
            .filter(|run| run.concurrency == *concurrency && run.available())
            .collect();
        svg.push_str(&panel(&panel_runs, &policies, *concurrency, floor_ms, top));
    }
    svg.push_str("</svg>\n");
    svg
}

fn panel(runs: &[&Run], policies: &[&str], concurrency: u64, floor_ms: i64, top: i64) -> String {
    let plot_width = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    let plot_height = PANEL_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;
    let (left, plot_top) = (MARGIN_LEFT, top + MARGIN_TOP);
    let max_ms = runs
        .iter()
        .filter_map(|run| run.windows().last().copied())
        .max()
        .unwrap_or(0)
        .max(floor_ms);
    let end_ms = axis_end(max_ms);
    let x = |ms: i64| left + ms * plot_width / end_ms;
    let y =
        |fraction_permille: i64| plot_top + plot_height - fraction_permille * plot_height / 1000;
    let mut out = format!(
        "<text x=\"{left}\" y=\"{}\" font-size=\"14\">Unprotected window, {concurrency} signal(s) \
         at once: share of trades protected within x ms</text>\n",
        top + 22
    );
    let _ = writeln!(
        out,
        "<rect x=\"{left}\" y=\"{plot_top}\" width=\"{plot_width}\" height=\"{plot_height}\" \
         fill=\"none\" stroke=\"#999\"/>"
    );
    out.push_str(&axes(&x, &y, end_ms, plot_top + plot_height));
    let _ = writeln!(
        out,
        "<line x1=\"{0}\" y1=\"{plot_top}\" x2=\"{0}\" y2=\"{1}\" stroke=\"#555\" \
         stroke-dasharray=\"4 3\"/><text x=\"{2}\" y=\"{3}\" fill=\"#555\">floor {floor_ms} ms</text>",
        x(floor_ms),
        plot_top + plot_height,
        x(floor_ms) + 4,
        plot_top + 12
    );
    for (slot, policy) in policies.iter().enumerate() {
        let color = COLORS[slot % COLORS.len()];
        let legend_y = plot_top + 16 * i64::try_from(slot).unwrap_or(0) + 10;
        let legend_x = left + plot_width + 12;
        let run = runs.iter().find(|run| run.policy == *policy);
        let label = match run {
            Some(run) => format!("{policy} ({})", run.windows().len()),
            None => format!("{policy} (not run)"),
        };
        let _ = writeln!(
            out,
            "<rect x=\"{legend_x}\" y=\"{}\" width=\"12\" height=\"4\" fill=\"{color}\"/>\
             <text x=\"{}\" y=\"{legend_y}\">{label}</text>",
            legend_y - 5,
            legend_x + 18
        );
        if let Some(run) = run {
            out.push_str(&curve(&run.windows(), color, &x, &y));
        }
    }
    out
}

fn axes(x: &dyn Fn(i64) -> i64, y: &dyn Fn(i64) -> i64, end_ms: i64, bottom: i64) -> String {
    let mut out = String::new();
    for tick in 0..=X_TICKS {
        let ms = end_ms * tick / X_TICKS;
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{ms}</text>",
            x(ms),
            bottom + 16
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">ms from entry fill to both legs live</text>",
        x(end_ms / 2),
        bottom + 32
    );
    for permille in [0, 500, 990, 1000] {
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}%</text>",
            MARGIN_LEFT - 6,
            y(permille) + 4,
            permille / 10
        );
    }
    out
}

/// The cumulative distribution of sorted `windows` as a step line.
fn curve(windows: &[i64], color: &str, x: &dyn Fn(i64) -> i64, y: &dyn Fn(i64) -> i64) -> String {
    if windows.is_empty() {
        return String::new();
    }
    let total = i64::try_from(windows.len()).unwrap_or(1);
    let mut points = format!("{},{}", x(windows[0]), y(0));
    for (index, window_ms) in windows.iter().enumerate() {
        let before = i64::try_from(index).unwrap_or(0) * 1000 / total;
        let after = (i64::try_from(index).unwrap_or(0) + 1) * 1000 / total;
        let _ = write!(
            points,
            " {0},{1} {0},{2}",
            x(*window_ms),
            y(before),
            y(after)
        );
    }
    format!("<polyline points=\"{points}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_ends_are_round() {
        assert_eq!(axis_end(0), 1);
        assert_eq!(axis_end(50), 50);
        assert_eq!(axis_end(51), 100);
        assert_eq!(axis_end(1_234), 2_000);
        assert_eq!(axis_end(4_900), 5_000);
    }
}
