//! Charts of a period, drawn with plotters as SVG; a PNG is the same SVG rasterised by
//! resvg. Text is set in DejaVu Sans, built into the binary (`templates/fonts`), so a chart
//! reads the same on a machine without fonts, in the desk's language.

use std::collections::BTreeMap;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::FontStyle;

use super::{Computed, GroupBy, Period};
use crate::domain::{Language, Tier};

static FONT: &[u8] = include_bytes!("../../templates/fonts/DejaVuSans.ttf");
const FAMILY: &str = "DejaVu Sans";
const WIDTH: u32 = 960;
const HEIGHT: u32 = 540;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chart {
    /// Tickets created and resolved per week, by tier.
    WeeklyVolume,
    /// How long first responses took (business time), in bands.
    FirstResponse,
    /// How long the backlog has waited, in bands, by tier.
    BacklogAge,
}

impl std::str::FromStr for Chart {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "weekly-volume" => Ok(Chart::WeeklyVolume),
            "first-response" => Ok(Chart::FirstResponse),
            "backlog-age" => Ok(Chart::BacklogAge),
            _ => Err(format!(
                "{s:?}: draw weekly-volume, first-response or backlog-age"
            )),
        }
    }
}

impl Chart {
    /// What the chart needs its figures grouped by.
    pub fn grouping(self) -> &'static [GroupBy] {
        match self {
            Chart::WeeklyVolume => &[GroupBy::Week, GroupBy::Tier],
            Chart::FirstResponse => &[],
            Chart::BacklogAge => &[GroupBy::Tier],
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("drawing the chart: {0}")]
    Draw(String),
    #[error("rasterising the chart: {0}")]
    Png(String),
}

fn draw_error(e: impl std::fmt::Display) -> ChartError {
    ChartError::Draw(e.to_string())
}

/// One bar's part: how many, in which series (a tier).
struct Bars {
    /// Category labels along the axis.
    labels: Vec<String>,
    /// Per series (legend label, colour): one value per category, and for the weekly
    /// volume a second bar (resolved) beside the first (created).
    series: Vec<(String, RGBColor, Vec<u64>, Vec<u64>)>,
    paired: bool,
}

fn tier_colour(tier: &str) -> RGBColor {
    match tier {
        "L0" => RGBColor(0x8c, 0xb3, 0x69),
        "L1" => RGBColor(0x2b, 0x6c, 0xb0),
        "L2" => RGBColor(0xe0, 0x8e, 0x0b),
        "L3" => RGBColor(0xc0, 0x39, 0x2b),
        _ => RGBColor(0x6c, 0x5b, 0x7b),
    }
}

struct Words {
    title: String,
    x: &'static str,
    y: &'static str,
    note: Option<&'static str>,
}

fn words(chart: Chart, language: Language, period: &Period) -> Words {
    let fr = language == Language::Fr;
    let dates = if fr {
        format!(
            "du {} au {}",
            period.since.format("%d/%m/%Y"),
            period.until.format("%d/%m/%Y")
        )
    } else {
        format!("{} to {}", period.since, period.until)
    };
    match (chart, fr) {
        (Chart::WeeklyVolume, true) => Words {
            title: format!("Tickets créés et résolus par semaine et par niveau, {dates}"),
            x: "Semaine (ISO)",
            y: "Tickets",
            note: Some("Barre pleine : créés · barre claire : résolus"),
        },
        (Chart::WeeklyVolume, false) => Words {
            title: format!("Tickets created and resolved per week, by tier, {dates}"),
            x: "Week (ISO)",
            y: "Tickets",
            note: Some("Solid bar: created · light bar: resolved"),
        },
        (Chart::FirstResponse, true) => Words {
            title: format!("Délai de première réponse (heures ouvrées), {dates}"),
            x: "Délai (heures ouvrées)",
            y: "Tickets",
            note: None,
        },
        (Chart::FirstResponse, false) => Words {
            title: format!("Time to first response (business hours), {dates}"),
            x: "Time taken (business hours)",
            y: "Tickets",
            note: None,
        },
        (Chart::BacklogAge, true) => Words {
            title: format!(
                "Âge des tickets ouverts au {}",
                period.until.format("%d/%m/%Y")
            ),
            x: "Âge (jours calendaires)",
            y: "Tickets ouverts",
            note: None,
        },
        (Chart::BacklogAge, false) => Words {
            title: format!("Age of the tickets open on {}", period.until),
            x: "Age (calendar days)",
            y: "Open tickets",
            note: None,
        },
    }
}

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// Bands of business time for first responses: upper bounds (exclusive) and labels.
fn response_bands() -> Vec<(i64, String)> {
    [
        (HOUR / 4, "< 15 min"),
        (HOUR / 2, "15-30 min"),
        (HOUR, "30 min-1 h"),
        (2 * HOUR, "1-2 h"),
        (4 * HOUR, "2-4 h"),
        (8 * HOUR, "4-8 h"),
        (24 * HOUR, "8-24 h"),
        (i64::MAX, "> 24 h"),
    ]
    .into_iter()
    .map(|(upper, label)| (upper, label.to_string()))
    .collect()
}

fn age_bands(language: Language) -> Vec<(i64, String)> {
    let d = if language == Language::Fr { "j" } else { "d" };
    vec![
        (DAY, format!("< 1 {d}")),
        (3 * DAY, format!("1-3 {d}")),
        (7 * DAY, format!("3-7 {d}")),
        (14 * DAY, format!("7-14 {d}")),
        (30 * DAY, format!("14-30 {d}")),
        (i64::MAX, format!("> 30 {d}")),
    ]
}

fn band(bands: &[(i64, String)], value: i64) -> usize {
    bands
        .iter()
        .position(|(upper, _)| value < *upper)
        .unwrap_or(bands.len() - 1)
}

fn bars(chart: Chart, computed: &Computed, language: Language) -> Bars {
    match chart {
        Chart::WeeklyVolume => {
            let weeks: Vec<String> = computed
                .period
                .weeks()
                .into_iter()
                .map(|(w, _)| w)
                .collect();
            let mut by_tier: BTreeMap<String, (Vec<u64>, Vec<u64>)> = BTreeMap::new();
            for (key, tally) in &computed.groups {
                let (Some(Some(week)), Some(Some(tier))) = (key.first(), key.get(1)) else {
                    continue;
                };
                let Some(i) = weeks.iter().position(|w| w == week) else {
                    continue;
                };
                let f = tally.figures();
                let entry = by_tier
                    .entry(tier.clone())
                    .or_insert_with(|| (vec![0; weeks.len()], vec![0; weeks.len()]));
                entry.0[i] += f.created;
                entry.1[i] += f.resolved;
            }
            let week = if language == Language::Fr { "S" } else { "W" };
            Bars {
                labels: weeks
                    .iter()
                    .map(|w| format!("{week}{}", w.rsplit('W').next().unwrap_or(w)))
                    .collect(),
                series: by_tier
                    .into_iter()
                    .map(|(tier, (created, resolved))| {
                        (tier.clone(), tier_colour(&tier), created, resolved)
                    })
                    .collect(),
                paired: true,
            }
        }
        Chart::FirstResponse => {
            let bands = response_bands();
            let mut counts = vec![0; bands.len()];
            for ms in computed.total.first_response_business_ms() {
                counts[band(&bands, ms)] += 1;
            }
            let label = if language == Language::Fr {
                "Premières réponses"
            } else {
                "First responses"
            };
            Bars {
                labels: bands.into_iter().map(|(_, l)| l).collect(),
                series: vec![(label.into(), RGBColor(0x2b, 0x6c, 0xb0), counts, Vec::new())],
                paired: false,
            }
        }
        Chart::BacklogAge => {
            let bands = age_bands(language);
            let mut series = Vec::new();
            for tier in Tier::ALL {
                let Some(tally) = computed.groups.get(&vec![Some(tier.as_str().to_string())])
                else {
                    continue;
                };
                let mut counts = vec![0; bands.len()];
                for ms in tally.backlog_ages_ms() {
                    counts[band(&bands, ms)] += 1;
                }
                if counts.iter().any(|c| *c > 0) {
                    series.push((
                        tier.as_str().to_string(),
                        tier_colour(tier.as_str()),
                        counts,
                        Vec::new(),
                    ));
                }
            }
            Bars {
                labels: bands.into_iter().map(|(_, l)| l).collect(),
                series,
                paired: false,
            }
        }
    }
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is a valid TrueType file built into the binary: it registers.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

/// The chart as an SVG document.
pub fn svg(chart: Chart, computed: &Computed, language: Language) -> Result<String, ChartError> {
    register_font();
    let words = words(chart, language, &computed.period);
    let bars = bars(chart, computed, language);
    let n = bars.labels.len().max(1);
    let total = |i: usize, second: bool| -> u64 {
        bars.series
            .iter()
            .map(|(_, _, a, b)| {
                if second { b.get(i) } else { a.get(i) }
                    .copied()
                    .unwrap_or(0)
            })
            .sum()
    };
    let top = (0..n)
        .flat_map(|i| [total(i, false), total(i, true)])
        .max()
        .unwrap_or(0);
    let y_max = ((top as f64) * 1.15).ceil().max(5.0);
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let mut chart_ctx = ChartBuilder::on(&root)
            .caption(&words.title, (FAMILY, 22))
            .margin(16)
            .x_label_area_size(56)
            .y_label_area_size(64)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..y_max)
            .map_err(draw_error)?;
        let labels = bars.labels.clone();
        // At most 13 labels along the axis, so they never overlap.
        let step = n.div_ceil(13).max(1);
        chart_ctx
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n.div_ceil(step) + 1)
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() > 1e-6 || i < 0.0 {
                    return String::new();
                }
                let i = i as usize;
                if i.is_multiple_of(step) {
                    labels.get(i).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_labels((y_max as usize).min(10) + 1)
            .y_label_formatter(&|y| {
                if (y - y.round()).abs() < 1e-6 {
                    format!("{y:.0}")
                } else {
                    String::new()
                }
            })
            .light_line_style(WHITE)
            .x_desc(words.x)
            .y_desc(words.y)
            .label_style((FAMILY, 16))
            .axis_desc_style((FAMILY, 16))
            .draw()
            .map_err(draw_error)?;
        let width = if bars.paired { 0.38 } else { 0.7 };
        let mut base = vec![(0u64, 0u64); n];
        for (label, colour, first, second) in &bars.series {
            let mut rects = Vec::new();
            for (i, stack) in base.iter_mut().enumerate() {
                let x = i as f64;
                let a = first.get(i).copied().unwrap_or(0);
                if a > 0 {
                    let (x0, x1) = if bars.paired {
                        (x - width, x)
                    } else {
                        (x - width / 2.0, x + width / 2.0)
                    };
                    rects.push(Rectangle::new(
                        [(x0, stack.0 as f64), (x1, (stack.0 + a) as f64)],
                        colour.filled(),
                    ));
                    stack.0 += a;
                }
                let b = second.get(i).copied().unwrap_or(0);
                if bars.paired && b > 0 {
                    rects.push(Rectangle::new(
                        [(x, stack.1 as f64), (x + width, (stack.1 + b) as f64)],
                        colour.mix(0.4).filled(),
                    ));
                    stack.1 += b;
                }
            }
            let legend = *colour;
            chart_ctx
                .draw_series(rects)
                .map_err(draw_error)?
                .label(label.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 14, y + 6)], legend.filled())
                });
        }
        if !bars.series.is_empty() {
            chart_ctx
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK.mix(0.3))
                .label_font((FAMILY, 16))
                .draw()
                .map_err(draw_error)?;
        }
        if let Some(note) = words.note {
            root.draw(&Text::new(
                note,
                (80, (HEIGHT - 18) as i32),
                (FAMILY, 15).into_font().color(&BLACK.mix(0.7)),
            ))
            .map_err(draw_error)?;
        }
        root.present().map_err(draw_error)?;
    }
    Ok(out)
}

/// The same chart as a PNG.
pub fn png(svg: &str) -> Result<Vec<u8>, ChartError> {
    use resvg::{tiny_skia, usvg};
    let mut options = usvg::Options {
        font_family: FAMILY.into(),
        ..usvg::Options::default()
    };
    options.fontdb_mut().load_font_data(FONT.to_vec());
    options.fontdb_mut().set_sans_serif_family(FAMILY);
    let tree = usvg::Tree::from_str(svg, &options).map_err(|e| ChartError::Png(e.to_string()))?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| ChartError::Png("empty image".into()))?;
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap
        .encode_png()
        .map_err(|e| ChartError::Png(e.to_string()))
}
