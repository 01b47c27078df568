//! Statements a study's measurements support, generated from them: per sweep (and per grid cell)
//! the rule its winners follow, phrased over the swept attribute's values, with the crossovers
//! between adjacent values; for a model, how often each form wins; the near ties; and how often each
//! cost model picks within 10% of the fastest form.

use strider_rewrite::isolate::Form;

use super::{Configuration, LAYER_AXIS, Measurement, Study};

/// How a configuration was won: the winner, the runner-up and the winner's lead (runner-up median over
/// the winner's), or `None` when fewer than two forms were timed.
fn margin(c: &Configuration) -> Option<(Form, Form, f64)> {
    let mut ranked: Vec<&Measurement> = c.measurements.iter().collect();
    ranked.sort_by(|a, b| a.median_ms.total_cmp(&b.median_ms));
    let (first, second) = (ranked.first()?, ranked.get(1)?);
    Some((first.lowering, second.lowering, second.median_ms / first.median_ms))
}

/// Statements the data supports: a rule per sweep (per grid cell, or one for every cell when they
/// agree), the tally of winners over a model's layers, the near ties, and each cost model's hit rate.
pub fn conclusions(study: &Study) -> Vec<String> {
    let mut lines = if study.x_label == LAYER_AXIS { layer_tally(study) } else { sweep_rules(study) };
    let close: Vec<String> = study
        .configurations
        .iter()
        .filter_map(|c| margin(c).filter(|m| m.2 < 1.05).map(|(a, b, _)| format!("{} ({a} vs {b})", c.label)))
        .collect();
    if !close.is_empty() {
        lines.push(format!("within 5% of the runner-up, so not a clear win: {}", close.join("; ")));
    }
    let models: Vec<&str> =
        study.configurations.first().map(|c| c.picks.iter().map(|p| p.model.as_str()).collect()).unwrap_or_default();
    for model in models {
        let slowdowns: Vec<f64> = study
            .configurations
            .iter()
            .filter_map(|c| c.picks.iter().find(|p| p.model == model).and_then(|p| p.slowdown))
            .collect();
        if slowdowns.is_empty() {
            continue;
        }
        let within = slowdowns.iter().filter(|&&s| s <= 1.1).count();
        let worst = slowdowns.iter().copied().fold(1.0, f64::max);
        lines.push(format!(
            "cost model {model} picks within 10% of the fastest in {within} of {} configurations (worst {worst:.2}×)",
            slowdowns.len()
        ));
    }
    lines
}

/// A model's layers are unrelated, so no rule over x: how many layers each form wins, and which.
fn layer_tally(study: &Study) -> Vec<String> {
    let mut wins: Vec<(Form, Vec<&str>)> = Vec::new();
    for c in &study.configurations {
        let Some((winner, _, _)) = margin(c) else { continue };
        let layer = c.label.split(' ').next().unwrap_or("");
        match wins.iter_mut().find(|(form, _)| *form == winner) {
            Some((_, layers)) => layers.push(layer),
            None => wins.push((winner, vec![layer])),
        }
    }
    if wins.is_empty() {
        return Vec::new();
    }
    wins.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    let total: usize = wins.iter().map(|(_, layers)| layers.len()).sum();
    let parts: Vec<String> = wins
        .iter()
        .enumerate()
        .map(|(i, (form, layers))| {
            let of = if i == 0 { format!(" of {total} layers") } else { String::new() };
            format!("{form} in {}{of} ({})", layers.len(), layers.join(", "))
        })
        .collect();
    vec![format!("fastest: {}", parts.join("; "))]
}

/// A range of a cell's swept values (indices into them) that one form wins, but for the ties and
/// exceptions.
#[derive(Clone, Debug, PartialEq)]
struct Segment {
    form: Form,
    from: usize,
    to: usize,
    /// Values inside the range won by another form with `form` within 5%: (index, winner).
    ties: Vec<(usize, Form)>,
    /// Values inside the range won clearly by another form: (index, winner).
    exceptions: Vec<(usize, Form)>,
}

/// The rule one cell's winners follow along the swept values.
#[derive(Clone, Debug, PartialEq)]
enum Rule {
    /// Each form wins one contiguous range of values (possibly with ties and lone exceptions inside).
    Ranges(Vec<Segment>),
    /// Some form wins in two separate ranges: the winners alternate.
    Unclear,
}

/// What one swept value measured: its winner and every form within 5% of it (the winner included).
#[derive(Clone, Debug, PartialEq)]
struct Point {
    winner: Form,
    near: Vec<Form>,
}

/// The rule `points` (one per swept value, in order) support. Ranges are as long as one form stays
/// the winner or within 5% of it (a near tie is noise a second run may reverse, not a crossover);
/// of the forms that hold a range, the one winning most of it names it. A lone value won by
/// another form between two ranges of the same form, which together hold at least three values, is
/// an exception inside one range rather than a range of its own. If a form then still holds two
/// separate ranges, there is no rule.
fn rule(points: &[Point]) -> Rule {
    let mut runs: Vec<Segment> = Vec::new();
    let mut i = 0;
    while i < points.len() {
        let mut held = points[i].near.clone();
        let mut to = i;
        while let Some(next) = points.get(to + 1) {
            let both: Vec<Form> = held.iter().copied().filter(|f| next.near.contains(f)).collect();
            if both.is_empty() {
                break;
            }
            held = both;
            to += 1;
        }
        let wins = |f: Form| points[i..=to].iter().filter(|p| p.winner == f).count();
        let form =
            held.iter().copied().max_by(|a, b| wins(*a).cmp(&wins(*b)).then(b.cmp(a))).unwrap_or(points[i].winner);
        let ties = (i..=to).filter(|&k| points[k].winner != form).map(|k| (k, points[k].winner)).collect();
        runs.push(Segment { form, from: i, to, ties, exceptions: Vec::new() });
        i = to + 1;
    }
    let mut segments: Vec<Segment> = Vec::new();
    let mut i = 0;
    while i < runs.len() {
        let lone = runs[i].from == runs[i].to;
        let flanked = match (segments.last(), runs.get(i + 1)) {
            (Some(before), Some(after)) => {
                let held = (before.to - before.from + 1 - before.exceptions.len()) + (after.to - after.from + 1);
                before.form == after.form && held >= 3
            }
            _ => false,
        };
        match segments.last_mut() {
            Some(before) if lone && flanked => {
                let after = &runs[i + 1];
                before.exceptions.push((runs[i].from, points[runs[i].from].winner));
                before.ties.extend(after.ties.iter().copied());
                before.to = after.to;
                i += 2;
            }
            _ => {
                segments.push(runs[i].clone());
                i += 1;
            }
        }
    }
    let mut forms: Vec<Form> = segments.iter().map(|s| s.form).collect();
    forms.sort();
    forms.dedup();
    if forms.len() < segments.len() { Rule::Unclear } else { Rule::Ranges(segments) }
}

/// `values[from..=to]` phrased over the attribute `x` as a condition.
fn range(x: &str, values: &[f64], from: usize, to: usize) -> String {
    let last = values.len() - 1;
    match (from, to) {
        (f, t) if f == t => format!("at {x} {}", values[f]),
        (0, t) if t == last => format!("for every {x} value from {} to {}", values[0], values[last]),
        (0, t) => format!("for {x} ≤ {}", values[t]),
        (f, t) if t == last => format!("for {x} ≥ {}", values[f]),
        (f, t) => format!("for {x} {} to {}", values[f], values[t]),
    }
}

/// The rule as a sentence, without the cell: the range each form wins with its count, then the
/// crossovers.
fn phrase(x: &str, values: &[f64], points: &[Point], rule: &Rule) -> String {
    match rule {
        Rule::Unclear => {
            let points: Vec<String> = values.iter().zip(points).map(|(v, p)| format!("{} at {v}", p.winner)).collect();
            format!("no clear rule over {x}: the fastest form alternates ({})", points.join(", "))
        }
        Rule::Ranges(segments) => {
            let parts: Vec<String> = segments
                .iter()
                .map(|s| {
                    let total = s.to - s.from + 1;
                    let won = total - s.exceptions.len() - s.ties.len();
                    let mut part = format!("{} fastest {} ({won} of {total}", s.form, range(x, values, s.from, s.to));
                    part.push_str(if total == 1 { " configuration" } else { " configurations" });
                    for (i, form) in &s.ties {
                        part.push_str(&format!("; within 5% of {form} at {x} {}", values[*i]));
                    }
                    for (i, form) in &s.exceptions {
                        part.push_str(&format!("; {form} at {x} {}", values[*i]));
                    }
                    part.push(')');
                    part
                })
                .collect();
            let mut sentence = parts.join("; ");
            let crossovers: Vec<String> = segments
                .windows(2)
                .map(|w| {
                    format!("{} → {} between {x} {} and {}", w[0].form, w[1].form, values[w[0].to], values[w[1].from])
                })
                .collect();
            if !crossovers.is_empty() {
                let s = if crossovers.len() == 1 { "" } else { "s" };
                sentence.push_str(&format!("; crossover{s} {}", crossovers.join(", ")));
            }
            sentence
        }
    }
}

/// One cell of a sweep: its name, swept values with a winner, their winners and the rule they follow.
struct Cell<'a> {
    name: &'a str,
    values: Vec<f64>,
    points: Vec<Point>,
    rule: Rule,
}

/// A rule per grid cell; one sentence for all cells when every cell follows the same rule over the
/// same values; and, when the cells' winners come in the same order but cross over at different
/// values, where each cell's crossovers lie.
fn sweep_rules(study: &Study) -> Vec<String> {
    let x = study.x_label.as_str();
    let mut names: Vec<&str> = Vec::new();
    for c in &study.configurations {
        if !names.contains(&c.cell.as_str()) {
            names.push(&c.cell);
        }
    }
    let cells: Vec<Cell> = names
        .into_iter()
        .filter_map(|name| {
            let mut along: Vec<(f64, Point)> = study
                .configurations
                .iter()
                .filter(|c| c.cell == name)
                .filter_map(|c| {
                    let (winner, _, _) = margin(c)?;
                    let best = c.measurements.iter().map(|m| m.median_ms).fold(f64::INFINITY, f64::min);
                    let near =
                        c.measurements.iter().filter(|m| m.median_ms < 1.05 * best).map(|m| m.lowering).collect();
                    Some((c.x, Point { winner, near }))
                })
                .collect();
            along.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (values, points): (Vec<f64>, Vec<Point>) = along.into_iter().unzip();
            (!values.is_empty()).then(|| Cell { name, rule: rule(&points), values, points })
        })
        .collect();
    let sentences: Vec<String> = cells.iter().map(|c| phrase(x, &c.values, &c.points, &c.rule)).collect();
    let Some(first) = sentences.first() else { return Vec::new() };
    if cells.len() == 1 {
        let cell = cells[0].name;
        return vec![if cell.is_empty() { first.clone() } else { format!("{cell}: {first}") }];
    }
    if sentences.iter().all(|s| s == first) {
        let all: Vec<&str> = cells.iter().map(|c| c.name).collect();
        return vec![format!("in every grid cell ({}): {first}", all.join("; "))];
    }
    let mut lines: Vec<String> = cells.iter().zip(&sentences).map(|(c, s)| format!("{}: {s}", c.name)).collect();
    let order = |c: &Cell| match &c.rule {
        Rule::Ranges(segments) if segments.len() > 1 => Some(segments.iter().map(|s| s.form).collect::<Vec<_>>()),
        _ => None,
    };
    let first_order = order(&cells[0]);
    if first_order.is_some() && cells.iter().all(|c| order(c) == first_order) {
        let forms: Vec<String> = first_order.unwrap_or_default().iter().map(Form::to_string).collect();
        let moves: Vec<String> = cells
            .iter()
            .map(|c| {
                let Rule::Ranges(segments) = &c.rule else { return String::new() };
                let between: Vec<String> = segments
                    .windows(2)
                    .map(|w| format!("between {x} {} and {}", c.values[w[0].to], c.values[w[1].from]))
                    .collect();
                format!("{} {}", c.name, between.join(", "))
            })
            .collect();
        lines.push(format!(
            "the same order of winners in every grid cell ({}), crossing over at different {x}: {}",
            forms.join(" → "),
            moves.join("; ")
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::fixtures::{COL2IM, DIRECT, SUBPIXEL, study, won};

    fn sweep(winners: &[(f64, Form)]) -> Vec<String> {
        conclusions(&study("stride", winners.iter().map(|&(x, w)| won(x, "", w)).collect()))
    }

    #[test]
    fn contiguous_ranges_give_a_rule_with_its_crossover() {
        let lines = sweep(&[(1.0, DIRECT), (2.0, SUBPIXEL), (3.0, SUBPIXEL), (4.0, SUBPIXEL)]);
        assert_eq!(
            lines,
            [
                "direct fastest at stride 1 (1 of 1 configuration); subpixel fastest for stride ≥ 2 (3 of 3 \
                 configurations); crossover direct → subpixel between stride 1 and 2",
                "cost model cpu picks within 10% of the fastest in 3 of 4 configurations (worst 2.00×)",
            ]
        );
    }

    #[test]
    fn three_ranges_give_two_crossovers() {
        let lines = sweep(&[(1.0, DIRECT), (2.0, DIRECT), (4.0, COL2IM), (8.0, COL2IM), (16.0, SUBPIXEL)]);
        assert_eq!(
            lines[0],
            "direct fastest for stride ≤ 2 (2 of 2 configurations); col2im fastest for stride 4 to 8 (2 of 2 \
             configurations); subpixel fastest at stride 16 (1 of 1 configuration); crossovers direct → col2im \
             between stride 2 and 4, col2im → subpixel between stride 8 and 16"
        );
    }

    #[test]
    fn one_winner_everywhere_is_a_rule_without_crossover() {
        let lines = sweep(&[(1.0, SUBPIXEL), (2.0, SUBPIXEL), (3.0, SUBPIXEL)]);
        assert_eq!(lines[0], "subpixel fastest for every stride value from 1 to 3 (3 of 3 configurations)");
    }

    #[test]
    fn a_lone_exception_inside_a_range_is_named_not_a_range() {
        let lines = sweep(&[(1.0, SUBPIXEL), (2.0, SUBPIXEL), (3.0, COL2IM), (4.0, SUBPIXEL)]);
        assert_eq!(
            lines[0],
            "subpixel fastest for every stride value from 1 to 4 (3 of 4 configurations; col2im at stride 3)"
        );
    }

    #[test]
    fn a_near_tie_does_not_make_a_crossover() {
        let mut configurations: Vec<Configuration> =
            [DIRECT, DIRECT, COL2IM, SUBPIXEL].iter().enumerate().map(|(i, &w)| won(i as f64 + 1.0, "", w)).collect();
        // At stride 3 col2im wins, but direct is within 3%.
        configurations[2].measurements[0].median_ms = 1.03;
        let lines = conclusions(&study("stride", configurations));
        assert_eq!(
            lines[0],
            "direct fastest for stride ≤ 3 (2 of 3 configurations; within 5% of col2im at stride 3); subpixel fastest \
             at stride 4 (1 of 1 configuration); crossover direct → subpixel between stride 3 and 4"
        );
    }

    #[test]
    fn alternating_winners_have_no_rule() {
        let lines = sweep(&[(1.0, DIRECT), (2.0, SUBPIXEL), (3.0, DIRECT), (4.0, SUBPIXEL)]);
        assert_eq!(
            lines[0],
            "no clear rule over stride: the fastest form alternates (direct at 1, subpixel at 2, direct at 3, \
             subpixel at 4)"
        );
        // Two values are too few to call one of them an exception.
        let lines = sweep(&[(1.0, DIRECT), (2.0, SUBPIXEL), (3.0, DIRECT)]);
        assert!(lines[0].starts_with("no clear rule over stride"), "{}", lines[0]);
    }

    #[test]
    fn grid_cells_with_one_rule_share_one_sentence() {
        let mut configurations = Vec::new();
        for cell in ["batch 1", "batch 4"] {
            configurations.push(won(1.0, cell, DIRECT));
            configurations.push(won(2.0, cell, SUBPIXEL));
        }
        let lines = conclusions(&study("stride", configurations));
        assert_eq!(
            lines[0],
            "in every grid cell (batch 1; batch 4): direct fastest at stride 1 (1 of 1 configuration); subpixel \
             fastest at stride 2 (1 of 1 configuration); crossover direct → subpixel between stride 1 and 2"
        );
    }

    #[test]
    fn grid_cells_crossing_over_at_different_values_say_where() {
        let mut configurations = Vec::new();
        for (cell, at) in [("batch 1", 2.0), ("batch 4", 3.0)] {
            for x in [1.0, 2.0, 3.0] {
                configurations.push(won(x, cell, if x < at { DIRECT } else { SUBPIXEL }));
            }
        }
        let lines = conclusions(&study("stride", configurations));
        assert_eq!(
            lines[..3],
            [
                "batch 1: direct fastest at stride 1 (1 of 1 configuration); subpixel fastest for stride ≥ 2 (2 of 2 \
                 configurations); crossover direct → subpixel between stride 1 and 2",
                "batch 4: direct fastest for stride ≤ 2 (2 of 2 configurations); subpixel fastest at stride 3 (1 of 1 \
                 configuration); crossover direct → subpixel between stride 2 and 3",
                "the same order of winners in every grid cell (direct → subpixel), crossing over at different stride: \
                 batch 1 between stride 1 and 2; batch 4 between stride 2 and 3",
            ]
        );
    }

    #[test]
    fn model_layers_are_tallied_not_ruled() {
        let mut configurations: Vec<Configuration> =
            [SUBPIXEL, COL2IM, SUBPIXEL].iter().enumerate().map(|(i, &w)| won(i as f64 + 1.0, "", w)).collect();
        for (i, c) in configurations.iter_mut().enumerate() {
            c.label = format!("up{} = ConvTranspose(…)", i + 1);
        }
        let lines = conclusions(&study(LAYER_AXIS, configurations));
        assert_eq!(lines[0], "fastest: subpixel in 2 of 3 layers (up1, up3); col2im in 1 (up2)");
    }

    #[test]
    fn near_ties_are_listed() {
        let mut c = won(1.0, "", SUBPIXEL);
        c.measurements[0].median_ms = 1.03;
        let lines = conclusions(&study("stride", vec![c]));
        assert_eq!(lines[1], "within 5% of the runner-up, so not a clear win: stride 1 (subpixel vs direct)");
    }
}
