//! Minimal SVG charts for `BENCHMARKS.md`: horizontal bars (one figure per
//! tool) and lines (a figure against a swept value). Plain SVG 1.1 text, no
//! scripts or external fonts, so GitHub renders it as an image.
//!
//! ```
//! use sync_benches::chart::{Bar, bar_chart};
//! let svg = bar_chart("Full sync", "rows/s", &[
//!     Bar { label: "sync-cli".into(), value: 120_000.0, ours: true },
//!     Bar { label: "mariadb-dump".into(), value: 100_000.0, ours: false },
//! ]);
//! assert!(svg.starts_with("<svg") && svg.contains("mariadb-dump") && svg.ends_with("</svg>\n"));
//! ```

use std::fmt::Write as _;

/// Colour of this project's figures.
const OURS: &str = "#d9480f";
/// Colours of the peers' figures (and of line series in turn).
const PALETTE: [&str; 6] = [
    "#364fc7", "#2b8a3e", "#862e9c", "#e67700", "#0b7285", "#5c940d",
];
/// Width of one character of the 12 px labels, roughly (DejaVu Sans).
const CHAR_W: f64 = 7.0;

/// One bar.
#[derive(Clone, Debug)]
pub struct Bar {
    /// Label left of the bar.
    pub label: String,
    /// Its length.
    pub value: f64,
    /// Drawn in this project's colour.
    pub ours: bool,
}

/// One line of a line chart.
#[derive(Clone, Debug)]
pub struct Series {
    /// Name in the legend.
    pub name: String,
    /// `(x, y)` points, drawn in x order.
    pub points: Vec<(f64, f64)>,
    /// Drawn solid in this project's colour family; peers dashed.
    pub ours: bool,
}

/// Axes of a line chart.
#[derive(Clone, Debug)]
pub struct Axes {
    /// Name of the swept value.
    pub x_label: String,
    /// Name and unit of the figure.
    pub y_label: String,
    /// A logarithmic x axis (for sweeps over powers of ten).
    pub log_x: bool,
}

/// A horizontal bar chart of `bars` in `unit`.
pub fn bar_chart(title: &str, unit: &str, bars: &[Bar]) -> String {
    let longest = bars
        .iter()
        .map(|b| b.label.chars().count())
        .max()
        .unwrap_or(0);
    let (left, plot_w, right, top, row) = (longest as f64 * CHAR_W + 16.0, 370.0, 90.0, 46.0, 28.0);
    let width = left + plot_w + right;
    let height = top + row * bars.len() as f64 + 40.0;
    let max = nice_ceiling(bars.iter().map(|b| b.value).fold(0.0, f64::max));
    let mut s = header(width, height, title);
    for t in ticks(max) {
        let x = left + t / max * plot_w;
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{:.1}" stroke="#dee2e6"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#495057">{}</text>"##,
            height - 34.0,
            height - 20.0,
            short(t)
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#495057">{}</text>"##,
        left + plot_w / 2.0,
        height - 4.0,
        esc(unit)
    );
    for (i, b) in bars.iter().enumerate() {
        let y = top + row * i as f64;
        let w = if max > 0.0 {
            (b.value / max * plot_w).max(1.0)
        } else {
            1.0
        };
        let colour = if b.ours { OURS } else { PALETTE[0] };
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text><rect x="{left}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="{colour}"/><text x="{:.1}" y="{:.1}" fill="#212529">{}</text>"##,
            left - 8.0,
            y + row * 0.62,
            esc(&b.label),
            y + 4.0,
            row - 8.0,
            left + w + 6.0,
            y + row * 0.62,
            short(b.value)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// A line chart of `series` over `axes`.
pub fn line_chart(title: &str, axes: &Axes, series: &[Series]) -> String {
    let longest = series
        .iter()
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(0);
    let (left, plot_w, top, bottom) = (80.0, 430.0, 46.0, 56.0);
    let width = left + plot_w + 46.0 + longest as f64 * CHAR_W + 16.0;
    let height = (top + 16.0 + 20.0 * series.len() as f64).max(380.0);
    let plot_h = height - top - bottom;
    let xs: Vec<f64> = {
        let mut v: Vec<f64> = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .filter(|x| x.is_finite() && (!axes.log_x || *x > 0.0))
            .collect();
        v.sort_by(f64::total_cmp);
        v.dedup();
        v
    };
    let scale = |x: f64| if axes.log_x { x.log10() } else { x };
    let (x0, x1) = match (xs.first(), xs.last()) {
        (Some(a), Some(b)) if scale(*b) > scale(*a) => (scale(*a), scale(*b)),
        (Some(a), _) => (scale(*a) - 1.0, scale(*a) + 1.0),
        _ => (0.0, 1.0),
    };
    let px = |x: f64| left + (scale(x) - x0) / (x1 - x0) * plot_w;
    let y_max = nice_ceiling(
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0, f64::max),
    );
    let py = |y: f64| top + plot_h - y / y_max * plot_h;
    let mut s = header(width, height, title);
    for t in ticks(y_max) {
        let y = py(t);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#dee2e6"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#495057">{}</text>"##,
            left + plot_w,
            left - 6.0,
            y + 4.0,
            short(t)
        );
    }
    for &x in &xs {
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#495057">{}</text>"##,
            px(x),
            top + plot_h + 18.0,
            short(x)
        );
    }
    let _ = writeln!(
        s,
        r##"<line x1="{left}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#868e96"/><text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#495057">{}</text>"##,
        top + plot_h,
        left + plot_w,
        top + plot_h,
        left + plot_w / 2.0,
        height - 12.0,
        esc(&axes.x_label)
    );
    let _ = writeln!(
        s,
        r##"<text transform="translate(16,{:.1}) rotate(-90)" text-anchor="middle" fill="#495057">{}</text>"##,
        top + plot_h / 2.0,
        esc(&axes.y_label)
    );
    let (mut ours_n, mut peer_n) = (0, 0);
    for (i, ser) in series.iter().enumerate() {
        let colour = if ser.ours {
            ours_n += 1;
            if ours_n == 1 { OURS } else { "#f08c00" }
        } else {
            peer_n += 1;
            PALETTE[(peer_n - 1) % PALETTE.len()]
        };
        let dash = if ser.ours {
            ""
        } else {
            r#" stroke-dasharray="6 4""#
        };
        let mut pts: Vec<(f64, f64)> = ser
            .points
            .iter()
            .copied()
            .filter(|p| p.0.is_finite() && p.1.is_finite() && (!axes.log_x || p.0 > 0.0))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let path: Vec<String> = pts
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2.5"{dash}/>"#,
            path.join(" ")
        );
        for &(x, y) in &pts {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{colour}"/>"#,
                px(x),
                py(y)
            );
        }
        let ly = top + 8.0 + 20.0 * i as f64;
        let lx = left + plot_w + 16.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="2.5"{dash}/><text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 24.0,
            lx + 30.0,
            ly + 4.0,
            esc(&ser.name)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn header(w: f64, h: f64, title: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         font-family=\"DejaVu Sans, Verdana, sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n\
         <text x=\"{:.1}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">{}</text>\n",
        w / 2.0,
        esc(title)
    )
}

/// The smallest 1, 2, 2.5 or 5 × 10^k that is at least `v` (1 for `v ≤ 0`).
pub fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|c| *c >= v * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag)
}

/// Five even steps from 0 to `max`.
fn ticks(max: f64) -> Vec<f64> {
    (0..=5).map(|i| max * f64::from(i) / 5.0).collect()
}

/// A number for a tick or bar label: `950`, `1.2k`, `3.4M`, `0.25`.
pub fn short(v: f64) -> String {
    let a = v.abs();
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if a >= 1e9 {
        format!("{}G", trim(format!("{:.2}", v / 1e9)))
    } else if a >= 1e6 {
        format!("{}M", trim(format!("{:.2}", v / 1e6)))
    } else if a >= 1e4 {
        format!("{}k", trim(format!("{:.1}", v / 1e3)))
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        trim(format!("{v:.2}"))
    }
}

/// `text` escaped for SVG text and attributes.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ceilings_and_short_numbers() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(1.0), 1.0);
        assert_eq!(nice_ceiling(1.1), 2.0);
        assert_eq!(nice_ceiling(230.0), 250.0);
        assert_eq!(nice_ceiling(4100.0), 5000.0);
        assert_eq!(nice_ceiling(51_000.0), 100_000.0);
        assert_eq!(short(950.0), "950");
        assert_eq!(short(12_345.0), "12.3k");
        assert_eq!(short(3_400_000.0), "3.4M");
        assert_eq!(short(0.25), "0.25");
        assert_eq!(short(10.0), "10");
    }

    #[test]
    fn line_charts_place_points_on_a_log_axis_and_escape_names() {
        let svg = line_chart(
            "t",
            &Axes {
                x_label: "tables".into(),
                y_label: "rows/s".into(),
                log_x: true,
            },
            &[
                Series {
                    name: "ours <4>".into(),
                    points: vec![(100.0, 50.0), (1.0, 100.0), (10.0, 75.0)],
                    ours: true,
                },
                Series {
                    name: "peer & co".into(),
                    points: vec![(1.0, 80.0), (100.0, 20.0)],
                    ours: false,
                },
            ],
        );
        // y max 100: x=1 at the left edge (80), x=100 at the right (510),
        // x=10 halfway; y=100 at the top (46), y=50 halfway down the plot.
        assert!(
            svg.contains(r#"points="80.0,46.0 295.0,115.5 510.0,185.0""#),
            "{svg}"
        );
        assert!(svg.contains("ours &lt;4&gt;") && svg.contains("peer &amp; co"));
        assert!(svg.contains("stroke-dasharray"));
        assert_eq!(svg.matches("<circle").count(), 5);
    }

    #[test]
    fn bars_scale_to_the_nice_maximum() {
        let svg = bar_chart(
            "t",
            "MB/s",
            &[
                Bar {
                    label: "a".into(),
                    value: 200.0,
                    ours: true,
                },
                Bar {
                    label: "b".into(),
                    value: 50.0,
                    ours: false,
                },
            ],
        );
        // Plot 370 px wide for a maximum of 200 (already nice).
        assert!(
            svg.contains(r##"width="370.0" height="20.0" fill="#d9480f""##),
            "{svg}"
        );
        assert!(
            svg.contains(r##"width="92.5" height="20.0" fill="#364fc7""##),
            "{svg}"
        );
    }
}
