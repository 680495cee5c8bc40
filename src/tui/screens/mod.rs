//! The five screens. Each holds its own state and draws it; the app routes actions to them.

pub mod episode;
pub mod iterations;
pub mod labels;
pub mod scenarios;
pub mod train;

use std::cell::Cell;
use std::ops::Range;

/// A selection in a list and the scroll offset that keeps it visible.
#[derive(Debug, Default, Clone)]
pub struct Cursor {
    pub selected: usize,
    /// First visible row; kept by the view (which alone knows the height).
    offset: Cell<usize>,
    /// Rows visible at the last draw: a page.
    page: Cell<usize>,
}

impl Cursor {
    pub fn up(&mut self, n: usize) {
        self.selected = self.selected.saturating_sub(n);
    }

    pub fn down(&mut self, n: usize, len: usize) {
        self.selected = (self.selected + n).min(len.saturating_sub(1));
    }

    pub fn page(&self) -> usize {
        self.page.get().max(1)
    }

    pub fn top(&mut self) {
        self.selected = 0;
    }

    pub fn bottom(&mut self, len: usize) {
        self.selected = len.saturating_sub(1);
    }

    pub fn clamp(&mut self, len: usize) {
        self.selected = self.selected.min(len.saturating_sub(1));
    }

    /// The rows to draw in `height` rows out of `len`, scrolled so that the selection shows.
    pub fn window(&self, len: usize, height: usize) -> Range<usize> {
        self.page.set(height);
        let mut offset = self.offset.get().min(len.saturating_sub(height));
        if self.selected < offset {
            offset = self.selected;
        } else if height > 0 && self.selected >= offset + height {
            offset = self.selected + 1 - height;
        }
        self.offset.set(offset);
        offset..(offset + height).min(len)
    }
}

/// Text from a model or an environment as a screen shows it: its control characters escaped
/// ([`crate::shown::escape_controls`]), so that they show instead of being dropped or acting.
pub fn shown(text: &str) -> String {
    crate::shown::escape_controls(text).into_owned()
}

/// `text` on one line, shown (see [`shown`]) and cut to `width` characters, with an ellipsis
/// when cut.
pub fn clip(text: &str, width: usize) -> String {
    let one_line = crate::shown::escape_controls(text).replace('\n', " ⏎ ");
    if one_line.chars().count() <= width {
        return one_line;
    }
    let mut out: String = one_line.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}
