//! Push-order state machine shared by the nested formats (JSON, XML).
//! State is O(number of sheets); it never grows with rows.

use super::{Cell, ExportError, ExportSpec};

/// Structural events, emitted in document order.
pub(crate) trait Emit {
    /// Opens the container of top-level sheet `s`.
    fn open_top(&mut self, s: usize) -> Result<(), ExportError>;
    fn close_top(&mut self, s: usize) -> Result<(), ExportError>;
    /// Opens the child container `c` inside the open parent row.
    fn open_child(&mut self, c: usize) -> Result<(), ExportError>;
    fn close_child(&mut self, c: usize) -> Result<(), ExportError>;
    /// Writes a row's own fields; `first` = first row in its container.
    /// `leave_open` = row may still receive child containers.
    fn row(
        &mut self,
        s: usize,
        cells: &[Cell<'_>],
        first: bool,
        leave_open: bool,
    ) -> Result<(), ExportError>;
    /// Closes a row left open.
    fn close_row(&mut self, s: usize) -> Result<(), ExportError>;
}

pub(crate) struct Nest {
    /// children[p] = child sheet indices of p, in spec order.
    children: Vec<Vec<usize>>,
    tops: Vec<usize>,
    /// Position in `tops` of the open top-level container.
    top_pos: Option<usize>,
    top_rows: u64,
    /// A parent row is open (only if its sheet has children).
    row_open: bool,
    /// Position in children[top] of the last opened child container.
    child_pos: Option<usize>,
    child_open: bool,
    child_rows: u64,
}

impl Nest {
    pub(crate) fn new(spec: &ExportSpec) -> Self {
        let n = spec.sheets.len();
        let mut children = vec![Vec::new(); n];
        let mut tops = Vec::new();
        for (i, s) in spec.sheets.iter().enumerate() {
            match s.parent {
                Some(p) => children[p].push(i),
                None => tops.push(i),
            }
        }
        Nest {
            children,
            tops,
            top_pos: None,
            top_rows: 0,
            row_open: false,
            child_pos: None,
            child_open: false,
            child_rows: 0,
        }
    }

    /// Closes the open parent row, emitting empty containers for missing children.
    fn close_parent(&mut self, e: &mut impl Emit) -> Result<(), ExportError> {
        if !self.row_open {
            return Ok(());
        }
        let top = self.tops[self.top_pos.unwrap_or(0)];
        let kids = self.children[top].len();
        if self.child_open {
            e.close_child(self.children[top][self.child_pos.unwrap_or(0)])?;
            self.child_open = false;
        }
        let start = self.child_pos.map_or(0, |p| p + 1);
        for k in start..kids {
            let c = self.children[top][k];
            e.open_child(c)?;
            e.close_child(c)?;
        }
        e.close_row(top)?;
        self.row_open = false;
        self.child_pos = None;
        Ok(())
    }

    /// Moves to top-level container at position `target` (closing and emitting empty
    /// containers for skipped sheets).
    fn goto_top(&mut self, target: usize, e: &mut impl Emit) -> Result<(), ExportError> {
        let from = match self.top_pos {
            Some(p) if p == target => return Ok(()),
            Some(p) if p > target => {
                return Err(ExportError::Order(format!(
                    "top-level sheet {} already closed",
                    self.tops[target]
                )));
            }
            Some(p) => {
                self.close_parent(e)?;
                e.close_top(self.tops[p])?;
                p + 1
            }
            None => 0,
        };
        for k in from..target {
            e.open_top(self.tops[k])?;
            e.close_top(self.tops[k])?;
        }
        e.open_top(self.tops[target])?;
        self.top_pos = Some(target);
        self.top_rows = 0;
        Ok(())
    }

    /// Emits the structure for one row of `sheet` (fields written by `Emit::row`).
    pub(crate) fn push(
        &mut self,
        spec: &ExportSpec,
        sheet: usize,
        cells: &[Cell<'_>],
        e: &mut impl Emit,
    ) -> Result<(), ExportError> {
        match spec.sheets[sheet].parent {
            None => {
                let pos = self.tops.iter().position(|&t| t == sheet).unwrap_or(0);
                self.goto_top(pos, e)?;
                self.close_parent(e)?;
                let has_kids = !self.children[sheet].is_empty();
                e.row(sheet, cells, self.top_rows == 0, has_kids)?;
                self.top_rows += 1;
                self.row_open = has_kids;
                self.child_pos = None;
            }
            Some(p) => {
                let cur_top = self.top_pos.map(|t| self.tops[t]);
                if !self.row_open || cur_top != Some(p) {
                    return Err(ExportError::Order(format!(
                        "child row of sheet {sheet} without an open parent row of sheet {p}"
                    )));
                }
                let want = self.children[p]
                    .iter()
                    .position(|&c| c == sheet)
                    .unwrap_or(0);
                match self.child_pos {
                    Some(cp) if cp == want && self.child_open => {}
                    Some(cp) if cp >= want => {
                        return Err(ExportError::Order(format!(
                            "child sheet {sheet} after a later child sheet"
                        )));
                    }
                    _ => {
                        let start = match self.child_pos {
                            Some(cp) => {
                                if self.child_open {
                                    e.close_child(self.children[p][cp])?;
                                }
                                cp + 1
                            }
                            None => 0,
                        };
                        for k in start..want {
                            let c = self.children[p][k];
                            e.open_child(c)?;
                            e.close_child(c)?;
                        }
                        e.open_child(sheet)?;
                        self.child_pos = Some(want);
                        self.child_open = true;
                        self.child_rows = 0;
                    }
                }
                e.row(sheet, cells, self.child_rows == 0, false)?;
                self.child_rows += 1;
            }
        }
        Ok(())
    }

    /// Closes everything and emits empty containers for sheets never written.
    pub(crate) fn finish(&mut self, e: &mut impl Emit) -> Result<(), ExportError> {
        let from = match self.top_pos {
            Some(p) => {
                self.close_parent(e)?;
                e.close_top(self.tops[p])?;
                p + 1
            }
            None => 0,
        };
        for k in from..self.tops.len() {
            e.open_top(self.tops[k])?;
            e.close_top(self.tops[k])?;
        }
        self.top_pos = Some(self.tops.len());
        Ok(())
    }
}
