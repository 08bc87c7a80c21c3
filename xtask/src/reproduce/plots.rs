//! Plots of the finished cells, each as PNG and SVG: scores against the number of
//! back-propagation steps K, scores against the number of edits (curve mode, or scenarios
//! that differ only in `num_seq`), against the training records (rows that differ in their
//! training budget), the general-capability F1 against the number of edits, and the time per
//! edit of every method. Every point and
//! bar is the mean over a configuration's finished seeds (curves: the mean curve).
//!
//! Text is drawn with DejaVu Sans embedded in the binary (no system fonts needed).

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use super::report::{Agg, glue_rows, has_training, sections};

const FONT: &str = "sans-serif";
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
const LEGEND_WIDTH: u32 = 300;

fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TrueType font; a failure would only mean unreadable text.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

/// One line of a panel.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// (x, y) points, x ascending.
    pub points: Vec<(f64, f64)>,
}

/// Panels of lines sharing the x axis and the legend (the same series in every panel).
#[derive(Debug, Clone)]
pub struct LineFigure {
    /// Figure title.
    pub title: String,
    /// x axis label.
    pub x_label: String,
    /// y axis label.
    pub y_label: String,
    /// Panel titles and their series.
    pub panels: Vec<(String, Vec<Series>)>,
}

/// Grouped bars on a log scale: one group per method, one bar per series.
#[derive(Debug, Clone)]
pub struct BarFigure {
    /// Figure title.
    pub title: String,
    /// y axis label.
    pub y_label: String,
    /// Group (method) names.
    pub groups: Vec<String>,
    /// Series names and one value per group (zero: no bar).
    pub series: Vec<(String, Vec<f64>)>,
}

/// A figure any plotters backend can draw.
pub trait Figure {
    /// Size in pixels.
    fn size(&self) -> (u32, u32);
    /// Draws on `root`.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

fn e<E: std::fmt::Display>(err: E) -> String {
    err.to_string()
}

fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, RGBColor, bool)],
) -> Result<(), String> {
    let title = ("sans-serif", 20).into_font().style(FontStyle::Bold);
    area.draw(&Text::new("Legend", (10, 60), title))
        .map_err(e)?;
    for (i, (name, color, bar)) in entries.iter().enumerate() {
        let y = 100 + 32 * i as i32;
        if *bar {
            area.draw(&Rectangle::new([(10, y - 8), (40, y + 8)], color.filled()))
                .map_err(e)?;
        } else {
            area.draw(&PathElement::new(
                vec![(10, y), (40, y)],
                color.stroke_width(3),
            ))
            .map_err(e)?;
            area.draw(&Circle::new((25, y), 5, color.filled()))
                .map_err(e)?;
        }
        area.draw(&Text::new(name.clone(), (50, y - 10), (FONT, 17)))
            .map_err(e)?;
    }
    Ok(())
}

fn integer(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        String::new()
    }
}

impl Figure for LineFigure {
    fn size(&self) -> (u32, u32) {
        (460 * self.panels.len() as u32 + LEGEND_WIDTH, 520)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(e)?;
        let (w, _) = root.dim_in_pixel();
        let body = root
            .titled(&self.title, (FONT, 26).into_font().style(FontStyle::Bold))
            .map_err(e)?;
        let (plots, side) = body.split_horizontally(w - LEGEND_WIDTH);
        let xs: Vec<f64> = self
            .panels
            .iter()
            .flat_map(|(_, s)| s.iter().flat_map(|s| s.points.iter().map(|p| p.0)))
            .collect();
        let (lo, hi) = xs
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        if !lo.is_finite() {
            return Err(format!("{}: no points", self.title));
        }
        let pad = if hi > lo { 0.06 * (hi - lo) } else { 0.5 };
        let ticks = if hi - lo <= 10.0 {
            (hi - lo) as usize + 1
        } else {
            6
        };
        // One y range for all panels: the data's, padded, within [0, 100], at least 20 wide.
        let ys: Vec<f64> = self
            .panels
            .iter()
            .flat_map(|(_, s)| s.iter().flat_map(|s| s.points.iter().map(|p| p.1)))
            .collect();
        let (ymin, ymax) = ys
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &y| {
                (a.min(y), b.max(y))
            });
        let mid = 0.5 * (ymin + ymax);
        let half = (0.5 * (ymax - ymin) + 5.0).max(10.0);
        let (y0, y1) = ((mid - half).max(0.0), (mid + half).min(100.0));
        let (y0, y1) = (
            (y0 / 5.0).floor() * 5.0,
            ((y1 / 5.0).ceil() * 5.0).min(100.0) + 2.0,
        );
        let panels = plots.split_evenly((1, self.panels.len()));
        for (area, (title, series)) in panels.iter().zip(&self.panels) {
            let mut chart = ChartBuilder::on(area)
                .caption(title, (FONT, 22))
                .margin(14)
                .x_label_area_size(56)
                .y_label_area_size(64)
                .build_cartesian_2d((lo - pad)..(hi + pad), y0..y1)
                .map_err(e)?;
            chart
                .configure_mesh()
                .x_desc(&self.x_label)
                .y_desc(&self.y_label)
                .x_labels(ticks)
                .y_labels(6)
                .x_label_formatter(&|v| integer(*v))
                .y_label_formatter(&|v| format!("{v:.0}"))
                .label_style((FONT, 16))
                .axis_desc_style((FONT, 18))
                .light_line_style(WHITE.mix(0.0))
                .bold_line_style(BLACK.mix(0.12))
                .draw()
                .map_err(e)?;
            for (i, s) in series.iter().enumerate() {
                let color = PALETTE[i % PALETTE.len()];
                chart
                    .draw_series(LineSeries::new(s.points.clone(), color.stroke_width(3)))
                    .map_err(e)?;
                chart
                    .draw_series(s.points.iter().map(|&p| Circle::new(p, 5, color.filled())))
                    .map_err(e)?;
            }
        }
        let entries: Vec<(String, RGBColor, bool)> = self
            .panels
            .first()
            .map(|(_, series)| {
                series
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (s.name.clone(), PALETTE[i % PALETTE.len()], false))
                    .collect()
            })
            .unwrap_or_default();
        legend(&side, &entries)?;
        root.present().map_err(e)
    }
}

fn seconds_label(v: f64) -> String {
    if v >= 1.0 {
        format!("{v:.0} s")
    } else if v >= 1e-3 {
        format!("{:.0} ms", v * 1e3)
    } else {
        format!("{:.0} µs", v * 1e6)
    }
}

impl Figure for BarFigure {
    fn size(&self) -> (u32, u32) {
        (
            (150 * self.groups.len() as u32).max(700) + 100 + LEGEND_WIDTH,
            560,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(e)?;
        let (w, _) = root.dim_in_pixel();
        let body = root
            .titled(&self.title, (FONT, 26).into_font().style(FontStyle::Bold))
            .map_err(e)?;
        let (plot, side) = body.split_horizontally(w - LEGEND_WIDTH);
        let values: Vec<f64> = self
            .series
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .filter(|&v| v > 0.0)
            .collect();
        let (min, max) = values
            .iter()
            .fold((f64::INFINITY, 0f64), |(a, b), &v| (a.min(v), b.max(v)));
        if values.is_empty() {
            return Err(format!("{}: no positive values", self.title));
        }
        let (lo, hi) = (min / 3.0, max * 3.0);
        let n = self.groups.len() as i32;
        let mut chart = ChartBuilder::on(&plot)
            .margin(14)
            .x_label_area_size(60)
            .y_label_area_size(90)
            .build_cartesian_2d((0..n - 1).into_segmented(), (lo..hi).log_scale())
            .map_err(e)?;
        let groups = &self.groups;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("method")
            .y_desc(&self.y_label)
            .x_labels(self.groups.len())
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => groups.get(*i as usize).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .y_label_formatter(&|v| seconds_label(*v))
            .label_style((FONT, 16))
            .axis_desc_style((FONT, 18))
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.12))
            .draw()
            .map_err(e)?;
        let k = self.series.len().max(1) as f64;
        for (si, (_, vals)) in self.series.iter().enumerate() {
            let color = PALETTE[si % PALETTE.len()];
            for (i, &v) in vals.iter().enumerate() {
                if v <= 0.0 {
                    continue;
                }
                // Bars of a group side by side within the segment, with a gap around it.
                let mut rect = Rectangle::new(
                    [
                        (SegmentValue::Exact(i as i32), v),
                        (
                            if i as i32 + 1 == n {
                                SegmentValue::Last
                            } else {
                                SegmentValue::Exact(i as i32 + 1)
                            },
                            lo,
                        ),
                    ],
                    color.filled(),
                );
                let segment = chart
                    .plotting_area()
                    .get_pixel_range()
                    .0
                    .end
                    .saturating_sub(chart.plotting_area().get_pixel_range().0.start)
                    as f64
                    / f64::from(n.max(1));
                let usable = segment * 0.7;
                let left = segment * 0.15 + usable * si as f64 / k;
                let right = segment - left - usable / k;
                rect.set_margin(0, 0, left as u32, right.max(0.0) as u32);
                chart.draw_series(std::iter::once(rect)).map_err(e)?;
            }
        }
        let entries: Vec<(String, RGBColor, bool)> = self
            .series
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (name.clone(), PALETTE[i % PALETTE.len()], true))
            .collect();
        legend(&side, &entries)?;
        root.present().map_err(e)
    }
}

/// Writes `fig` to `<stem>.png` and `<stem>.svg`.
pub fn save(fig: &impl Figure, stem: &Path) -> Result<Vec<PathBuf>, String> {
    fonts();
    let (w, h) = fig.size();
    let png_path = stem.with_extension("png");
    let svg_path = stem.with_extension("svg");
    let mut pixels = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        fig.draw(&root)
            .map_err(|err| format!("{}: {err}", png_path.display()))?;
    }
    let file =
        std::fs::File::create(&png_path).map_err(|err| format!("{}: {err}", png_path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .and_then(|mut writer| writer.write_image_data(&pixels))
        .map_err(|err| format!("{}: {err}", png_path.display()))?;
    {
        let root = SVGBackend::new(&svg_path, (w, h)).into_drawing_area();
        fig.draw(&root)
            .map_err(|err| format!("{}: {err}", svg_path.display()))?;
    }
    Ok(vec![png_path, svg_path])
}

fn slug(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    out.trim_matches('-').to_string()
}

const METRICS: [&str; 3] = ["Efficacy", "Generalization", "Specificity"];

fn metric(s: &emsedit::Scores, m: usize) -> f64 {
    100.0 * [s.efficacy, s.generalization, s.specificity][m]
}

/// Figures of scores against K: per section, one line per method family (and ablation) that
/// ran with at least two values of K; the points are means over seeds.
pub fn steps_figures(aggs: &[Agg]) -> Vec<(String, LineFigure)> {
    let mut out = Vec::new();
    for ((model, dataset, scenario), group) in sections(aggs) {
        let mut lines: Vec<(String, Vec<&Agg>)> = Vec::new();
        for &agg in &group {
            let cell = agg.cell;
            let name = if cell.ablation.is_empty() {
                cell.family.clone()
            } else {
                format!("{} [{}]", cell.family, cell.ablation)
            };
            match lines.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => v.push(agg),
                None => lines.push((name, vec![agg])),
            }
        }
        lines.retain(|(_, v)| {
            let mut ks: Vec<usize> = v.iter().map(|a| a.cell.steps()).collect();
            ks.sort_unstable();
            ks.dedup();
            ks.len() >= 2
        });
        if lines.is_empty() {
            continue;
        }
        let panels = (0..3)
            .map(|m| {
                let series = lines
                    .iter()
                    .map(|(name, v)| {
                        let mut points: Vec<(f64, f64)> = v
                            .iter()
                            .map(|a| (a.cell.steps() as f64, metric(&a.mean_after(), m)))
                            .collect();
                        points.sort_by(|a, b| a.0.total_cmp(&b.0));
                        Series {
                            name: name.clone(),
                            points,
                        }
                    })
                    .collect();
                (METRICS[m].to_string(), series)
            })
            .collect();
        out.push((
            format!(
                "steps_{}_{}_{}",
                slug(&model),
                slug(&dataset),
                slug(&scenario)
            ),
            LineFigure {
                title: format!(
                    "Scores vs back-propagation steps K — {model} · {dataset} · {scenario}"
                ),
                x_label: "back-propagation steps K".into(),
                y_label: y_label("score ×100", &group),
                panels,
            },
        ));
    }
    out
}

/// The y axis label, with "mean over seeds" when a point averages more than one.
fn y_label(what: &str, aggs: &[&Agg]) -> String {
    if aggs.iter().any(|a| a.n() > 1) {
        format!("{what}, mean over seeds")
    } else {
        what.to_string()
    }
}

/// Figures of scores against the number of edits: per section from curve-mode runs (the mean
/// curve over seeds), and per model × data set × batch size over scenarios that differ in
/// `num_seq` (mean final scores).
pub fn edits_figures(aggs: &[Agg]) -> Vec<(String, LineFigure)> {
    let mut out = Vec::new();
    let panels_of = |series_of: &dyn Fn(usize) -> Vec<Series>| -> Vec<(String, Vec<Series>)> {
        (0..3)
            .map(|m| (METRICS[m].to_string(), series_of(m)))
            .collect()
    };
    for ((model, dataset, scenario), group) in sections(aggs) {
        let curves: Vec<(&Agg, Vec<emsedit::Scores>)> = group
            .iter()
            .map(|&a| (a, a.mean_curve()))
            .filter(|(_, c)| !c.is_empty())
            .collect();
        if curves.is_empty() {
            continue;
        }
        let series_of = |m: usize| {
            curves
                .iter()
                .map(|(agg, curve)| Series {
                    name: agg.cell.label.clone(),
                    points: curve
                        .iter()
                        .enumerate()
                        .map(|(t, s)| (((t + 1) * agg.cell.scenario.n_edits) as f64, metric(s, m)))
                        .collect(),
                })
                .collect()
        };
        let with_curves: Vec<&Agg> = curves.iter().map(|(a, _)| *a).collect();
        out.push((
            format!(
                "edits_{}_{}_{}",
                slug(&model),
                slug(&dataset),
                slug(&scenario)
            ),
            LineFigure {
                title: format!("Scores vs number of edits — {model} · {dataset} · {scenario}"),
                x_label: "edits so far".into(),
                y_label: y_label("score ×100 (edits so far)", &with_curves),
                panels: panels_of(&series_of),
            },
        ));
    }
    // The num_seq axis: same model, data set and batch size, several stream lengths.
    let mut keys: Vec<(String, String, usize)> = Vec::new();
    for agg in aggs {
        let c = agg.cell;
        let k = (c.model.clone(), c.dataset.clone(), c.scenario.n_edits);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    for (model, dataset, n) in keys {
        let group: Vec<&Agg> = aggs
            .iter()
            .filter(|a| {
                let c = a.cell;
                c.model == model && c.dataset == dataset && c.scenario.n_edits == n
            })
            .collect();
        let mut lengths: Vec<usize> = group.iter().map(|a| a.cell.scenario.num_seq).collect();
        lengths.sort_unstable();
        lengths.dedup();
        if lengths.len() < 2 {
            continue;
        }
        let labels = labels_of(&group);
        let edits = |a: &Agg| (a.cell.scenario.num_seq * n) as f64;
        out.push((
            format!("edits_{}_{}_n{n}", slug(&model), slug(&dataset)),
            LineFigure {
                title: format!("Scores vs number of edits ({n} per batch) — {model} · {dataset}"),
                x_label: "edits (num_seq × n_edits)".into(),
                y_label: y_label("score ×100", &group),
                panels: final_scores_against(&labels, &group, &edits),
            },
        ));
    }
    out
}

/// The rows' labels, each once, in first-seen order.
fn labels_of(group: &[&Agg]) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    for a in group {
        if !labels.contains(&a.cell.label) {
            labels.push(a.cell.label.clone());
        }
    }
    labels
}

/// One panel per metric: for each label a line of its rows' mean final scores against `x`.
fn final_scores_against(
    labels: &[String],
    group: &[&Agg],
    x: &dyn Fn(&Agg) -> f64,
) -> Vec<(String, Vec<Series>)> {
    (0..3)
        .map(|m| {
            let series = labels
                .iter()
                .map(|label| {
                    let mut points: Vec<(f64, f64)> = group
                        .iter()
                        .filter(|a| &a.cell.label == label)
                        .map(|a| (x(a), metric(&a.mean_after(), m)))
                        .collect();
                    points.sort_by(|a, b| a.0.total_cmp(&b.0));
                    Series {
                        name: label.clone(),
                        points,
                    }
                })
                .collect();
            (METRICS[m].to_string(), series)
        })
        .collect()
}

/// Figures of the general-capability F1 against the number of edits (the paper's Fig. 14):
/// per section with such scores, one panel per task, one line per method.
pub fn glue_figures(aggs: &[Agg]) -> Vec<(String, LineFigure)> {
    let mut out = Vec::new();
    for ((model, dataset, scenario), group) in sections(aggs) {
        let rows = glue_rows(&group);
        let Some((_, first)) = rows.first() else {
            continue;
        };
        let panels = first[0]
            .1
            .iter()
            .enumerate()
            .map(|(i, (task, _))| {
                let series = rows
                    .iter()
                    .map(|(agg, points)| Series {
                        name: agg.cell.label.clone(),
                        points: points
                            .iter()
                            .filter_map(|(edits, f1)| Some((*edits as f64, f1.get(i)?.1)))
                            .collect(),
                    })
                    .collect();
                (task.name().to_uppercase(), series)
            })
            .collect();
        let with: Vec<&Agg> = rows.iter().map(|(a, _)| *a).collect();
        out.push((
            format!(
                "glue_{}_{}_{}",
                slug(&model),
                slug(&dataset),
                slug(&scenario)
            ),
            LineFigure {
                title: format!("General capability vs edits — {model} · {dataset} · {scenario}"),
                x_label: "edits so far".into(),
                y_label: y_label("weighted F1 ×100", &with),
                panels,
            },
        ));
    }
    out
}

/// Figures of the scores against the training records an editor saw (the paper's Fig. 7):
/// per model, data set and edit layout (`n_edits` × `num_seq`) whose rows ran with at least
/// two training budgets, one line per method.
pub fn training_figures(aggs: &[Agg]) -> Vec<(String, LineFigure)> {
    let mut keys: Vec<(String, String, usize, usize)> = Vec::new();
    for agg in aggs {
        let c = agg.cell;
        let k = (
            c.model.clone(),
            c.dataset.clone(),
            c.scenario.n_edits,
            c.scenario.num_seq,
        );
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let records = |a: &Agg| a.train_records().parse::<f64>().unwrap_or(0.0);
    let mut out = Vec::new();
    for (model, dataset, n, t) in keys {
        let group: Vec<&Agg> = aggs
            .iter()
            .filter(|a| {
                let c = a.cell;
                c.model == model
                    && c.dataset == dataset
                    && c.scenario.n_edits == n
                    && c.scenario.num_seq == t
                    && has_training(c)
            })
            .collect();
        // One point per method and budget: where scenarios share the layout and the budget
        // (the table's and the general-capability run's, say), the row with the most seeds.
        let group =
            most_seeds_per_point(group, |a| (a.cell.label.clone(), records(a) as u64), Agg::n);
        let mut labels = labels_of(&group);
        // Only methods that ran with two or more budgets make a line.
        labels.retain(|label| {
            let mut budgets: Vec<u64> = group
                .iter()
                .filter(|a| &a.cell.label == label)
                .map(|a| records(a) as u64)
                .collect();
            budgets.sort_unstable();
            budgets.dedup();
            budgets.len() >= 2
        });
        if labels.is_empty() {
            continue;
        }
        let layout = if t == 1 {
            format!("batch {n}")
        } else {
            format!("{t} × {n}")
        };
        out.push((
            format!("training_{}_{}_{t}x{n}", slug(&model), slug(&dataset)),
            LineFigure {
                title: format!("Scores vs training records — {model} · {dataset} · {layout}"),
                x_label: "training records".into(),
                y_label: y_label("score ×100", &group),
                panels: final_scores_against(&labels, &group, &records),
            },
        ));
    }
    out
}

/// Keeps one item per `key`: the first with the most `seeds`, in the order of first sight.
fn most_seeds_per_point<'a, T, K: PartialEq>(
    items: Vec<&'a T>,
    key: impl Fn(&T) -> K,
    seeds: impl Fn(&T) -> usize,
) -> Vec<&'a T> {
    let mut kept: Vec<&'a T> = Vec::new();
    for item in items {
        match kept.iter_mut().find(|k| key(k) == key(item)) {
            Some(k) if seeds(item) > seeds(k) => *k = item,
            Some(_) => {}
            None => kept.push(item),
        }
    }
    kept
}

/// Figures of the training and editing time per edit (means over seeds), per section.
pub fn time_figures(aggs: &[Agg]) -> Vec<(String, BarFigure)> {
    sections(aggs)
        .into_iter()
        .filter_map(|((model, dataset, scenario), group)| {
            let groups: Vec<String> = group.iter().map(|a| a.cell.label.clone()).collect();
            let train: Vec<f64> = group
                .iter()
                .map(|a| a.train_time().unwrap_or(0.0))
                .collect();
            let edit: Vec<f64> = group.iter().map(|a| a.edit_time()).collect();
            if train.iter().chain(&edit).all(|&v| v <= 0.0) {
                return None;
            }
            let y = if group.iter().any(|a| a.n() > 1) {
                "seconds per edit, mean over seeds (log scale)"
            } else {
                "seconds per edit (log scale)"
            };
            Some((
                format!(
                    "time_{}_{}_{}",
                    slug(&model),
                    slug(&dataset),
                    slug(&scenario)
                ),
                BarFigure {
                    title: format!("Time per edit — {model} · {dataset} · {scenario}"),
                    y_label: y.into(),
                    groups,
                    series: vec![("training".into(), train), ("editing".into(), edit)],
                },
            ))
        })
        .collect()
}

/// Writes every figure of the rows `aggs` under `dir` and returns the files.
pub fn write_all(aggs: &[Agg], dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    let mut files = Vec::new();
    for (name, fig) in steps_figures(aggs)
        .into_iter()
        .chain(edits_figures(aggs))
        .chain(glue_figures(aggs))
        .chain(training_figures(aggs))
    {
        files.extend(save(&fig, &dir.join(name))?);
    }
    for (name, fig) in time_figures(aggs) {
        files.extend(save(&fig, &dir.join(name))?);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_file_names() {
        assert_eq!(slug("EMSEdit (K=3) · zsre"), "emsedit-k-3-zsre");
        assert_eq!(slug("seq-4x8"), "seq-4x8");
    }

    #[test]
    fn one_point_per_key_from_the_row_with_most_seeds() {
        // (label, budget, seeds)
        let rows = [
            ("a", 100, 1),
            ("a", 100, 3),
            ("a", 300, 1),
            ("b", 100, 1),
            ("a", 100, 3),
        ];
        let kept = most_seeds_per_point(rows.iter().collect(), |r| (r.0, r.1), |r| r.2);
        assert_eq!(kept, [&rows[1], &rows[2], &rows[3]]);
    }

    #[test]
    fn figures_render_to_png_and_svg() {
        let dir = std::env::temp_dir().join(format!("xtask-plots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fig = LineFigure {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            panels: vec![(
                "p".into(),
                vec![Series {
                    name: "a".into(),
                    points: vec![(1.0, 10.0), (2.0, 50.0)],
                }],
            )],
        };
        let bars = BarFigure {
            title: "b".into(),
            y_label: "s".into(),
            groups: vec!["FT".into(), "EMSEdit".into()],
            series: vec![
                ("train".into(), vec![0.0, 0.5]),
                ("edit".into(), vec![0.01, 0.002]),
            ],
        };
        let mut files = save(&fig, &dir.join("lines")).unwrap();
        files.extend(save(&bars, &dir.join("bars")).unwrap());
        for f in files {
            let len = std::fs::metadata(&f).unwrap().len();
            assert!(len > 1000, "{}: {len} bytes", f.display());
        }
        let png = std::fs::read(dir.join("lines.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
