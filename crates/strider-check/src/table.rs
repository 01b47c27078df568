//! The one table renderer: every command's tables and the study's Markdown come from a [`Table`], so
//! columns line up and align the same way everywhere, in plain text or in Markdown.

/// How a column's cells line up: names to the left, numbers to the right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    /// Text.
    Left,
    /// Numbers.
    Right,
}

/// A table: a header and rows of cells, rendered as aligned text or as Markdown.
#[derive(Clone, Debug)]
pub struct Table {
    header: Vec<String>,
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
    indent: usize,
}

impl Table {
    /// A table with these column titles and alignments.
    pub fn new<S: Into<String>>(columns: impl IntoIterator<Item = (S, Align)>) -> Table {
        let (header, align) = columns.into_iter().map(|(title, align)| (title.into(), align)).unzip();
        Table { header, align, rows: Vec::new(), indent: 0 }
    }

    /// The text form starts each line with this many spaces (for a table under a heading line).
    pub fn indented(mut self, spaces: usize) -> Table {
        self.indent = spaces;
        self
    }

    /// Appends a row; missing cells are empty.
    ///
    /// # Panics
    /// When the row has more cells than the table has columns: a programming error.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        let mut cells: Vec<String> = cells.into_iter().map(Into::into).collect();
        assert!(
            cells.len() <= self.header.len(),
            "a row of {} cells in a table of {} columns",
            cells.len(),
            self.header.len()
        );
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Aligned plain text: columns two spaces apart, no trailing spaces, one line per row.
    pub fn text(&self) -> String {
        let width =
            |i: usize| std::iter::once(&self.header).chain(&self.rows).map(|r| r[i].chars().count()).max().unwrap_or(0);
        let widths: Vec<usize> = (0..self.header.len()).map(width).collect();
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .zip(&self.align)
                .map(|((cell, &w), align)| match align {
                    Align::Left => format!("{cell:<w$}"),
                    Align::Right => format!("{cell:>w$}"),
                })
                .collect();
            out.push_str(&" ".repeat(self.indent));
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out
    }

    /// A GitHub-flavoured Markdown table, numbers right-aligned; `|` in a cell is escaped.
    pub fn markdown(&self) -> String {
        let line = |cells: &[String]| {
            let cells: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
            format!("| {} |\n", cells.join(" | "))
        };
        let rule: Vec<String> =
            self.align.iter().map(|a| if *a == Align::Right { "---:" } else { "---" }.to_string()).collect();
        let mut out = line(&self.header);
        out.push_str(&format!("|{}|\n", rule.join("|")));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new([("lowering", Align::Left), ("FLOPs", Align::Right)]);
        t.row(["direct", "32"]);
        t.row(["zero|insert", "1.23k"]);
        t.row(["none"]);
        t
    }

    #[test]
    fn text_aligns_names_left_and_numbers_right() {
        assert_eq!(sample().text(), "lowering     FLOPs\ndirect          32\nzero|insert  1.23k\nnone\n");
        assert_eq!(sample().indented(2).text().lines().next(), Some("  lowering     FLOPs"));
    }

    #[test]
    fn markdown_has_the_same_cells_and_right_aligned_numbers() {
        assert_eq!(
            sample().markdown(),
            "| lowering | FLOPs |\n|---|---:|\n| direct | 32 |\n| zero\\|insert | 1.23k |\n| none |  |\n"
        );
    }

    #[test]
    #[should_panic(expected = "a row of 3 cells in a table of 2 columns")]
    fn a_row_longer_than_the_header_is_a_bug() {
        sample().row(["a", "b", "c"]);
    }
}
