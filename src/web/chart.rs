//! The overview's chart: tickets created and resolved in each of the last eight weeks, as
//! inline SVG written here (a few rectangles; each bar is a link to its tickets), so it
//! needs no script, no image request and no font of the reader's.

use std::fmt::Write;

use super::pages::html_escape;
use super::view::Pages;
use crate::domain::Language;

const WIDTH: u32 = 640;
const HEIGHT: u32 = 220;
const LEFT: u32 = 36;
const BOTTOM: u32 = 40;
const TOP: u32 = 16;
const CREATED: &str = "#2b6cb0";
const RESOLVED: &str = "#8cb369";

/// A round step for the y axis: 1, 2 or 5 times a power of ten, about four lines.
fn step(max: u64) -> u64 {
    let rough = (max.max(1) as f64 / 4.0).max(1.0);
    let power = 10f64.powi(rough.log10().floor() as i32);
    let unit = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .find(|m| m * power >= rough)
        .unwrap_or(10.0);
    (unit * power).max(1.0) as u64
}

/// `weeks`: (ISO week, created, resolved), oldest first.
pub fn weekly(weeks: &[(String, u64, u64)], language: Language, pages: &Pages) -> String {
    let max = weeks
        .iter()
        .map(|(_, c, r)| (*c).max(*r))
        .max()
        .unwrap_or(0);
    let step = step(max);
    let top = max.div_ceil(step).max(1) * step;
    let plot_h = (HEIGHT - BOTTOM - TOP) as f64;
    let y = |v: u64| TOP as f64 + plot_h - plot_h * v as f64 / top as f64;
    let slot = (WIDTH - LEFT - 8) as f64 / weeks.len().max(1) as f64;
    let bar = (slot * 0.34).min(28.0);
    let created = html_escape(&pages.word(language, "created"));
    let resolved = html_escape(&pages.word(language, "resolved"));
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" \
         aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">",
        html_escape(&pages.word(language, "chart_title"))
    );
    let mut v = 0;
    while v <= top {
        let yy = y(v);
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" class=\"grid\"/>\
             <text x=\"{}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"end\">{v}</text>",
            WIDTH - 4,
            LEFT - 6,
            yy + 4.0
        );
        v += step;
    }
    for (i, (week, c, r)) in weeks.iter().enumerate() {
        let x0 = LEFT as f64 + slot * i as f64 + slot / 2.0;
        let week = html_escape(week);
        for (value, colour, x, filter, label) in [
            (*c, CREATED, x0 - bar - 1.0, "created", &created),
            (*r, RESOLVED, x0 + 1.0, "resolved", &resolved),
        ] {
            let top_y = y(value);
            let h = (TOP as f64 + plot_h - top_y).max(0.0);
            let _ = write!(
                svg,
                "<a href=\"/tickets?{filter}={week}\"><title>{label} {week}: {value}</title>\
                 <rect x=\"{x:.1}\" y=\"{top_y:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\" fill=\"{colour}\"/>"
            );
            // Quiet weeks stay quiet: no row of zeros along the axis.
            if value > 0 {
                let _ = write!(
                    svg,
                    "<text x=\"{:.1}\" y=\"{:.1}\" class=\"value\" text-anchor=\"middle\">{value}</text>",
                    x + bar / 2.0,
                    top_y - 3.0
                );
            }
            svg.push_str("</a>");
        }
        // "W48": the week's number (its year is in the table and the links).
        let short = week.rsplit('-').next().unwrap_or(&week).to_string();
        let _ = write!(
            svg,
            "<text x=\"{x0:.1}\" y=\"{}\" class=\"axis\" text-anchor=\"middle\">{short}</text>",
            HEIGHT - BOTTOM + 16
        );
    }
    let ly = HEIGHT - 8;
    let _ = write!(
        svg,
        "<rect x=\"{LEFT}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{CREATED}\"/>\
         <text x=\"{}\" y=\"{ly}\" class=\"axis\">{created}</text>\
         <rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{RESOLVED}\"/>\
         <text x=\"{}\" y=\"{ly}\" class=\"axis\">{resolved}</text></svg>",
        ly - 9,
        LEFT + 14,
        LEFT + 130,
        ly - 9,
        LEFT + 144,
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_steps_are_round() {
        assert_eq!(step(0), 1);
        assert_eq!(step(3), 1);
        assert_eq!(step(9), 5);
        assert_eq!(step(40), 10);
        assert_eq!(step(130), 50);
    }
}
