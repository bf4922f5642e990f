//! The REPL's state and how keys change it. Nothing here draws or touches
//! the terminal: `view` draws this state, `mod.rs` feeds it events.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use gantry::session::{Entry, Status};
use std::time::Instant;

/// Reverse incremental search over the history (Ctrl-R).
#[derive(Clone, Debug, Default)]
pub struct Search {
    pub query: String,
    /// Index into the history of the current match.
    pub found: Option<usize>,
}

/// The job running in the background, as the status line shows it.
#[derive(Clone, Debug)]
pub struct Busy {
    pub line: String,
    pub started: Instant,
    pub done: usize,
    pub total: usize,
}

#[derive(Clone, Debug, Default)]
pub struct App {
    pub transcript: Vec<Entry>,
    pub input: String,
    /// Cursor position in characters.
    pub cursor: usize,
    pub history: Vec<String>,
    /// Position while walking the history with Up/Down.
    pub history_pos: Option<usize>,
    /// What was typed before walking the history.
    pub draft: String,
    pub search: Option<Search>,
    pub status: Status,
    /// A one-line notice above the input (completions, "busy", ...).
    pub notice: Option<String>,
    /// Lines scrolled up from the bottom of the transcript.
    pub scroll: u16,
    pub busy: Option<Busy>,
    /// The live preview: the text it shows and the picture id in the cache.
    pub preview: Option<String>,
    pub last_key: Option<Instant>,
}

/// What the event loop must do after a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Nothing,
    Execute(String),
    Cancel,
    Complete,
    Quit,
}

impl App {
    fn byte_at(&self, chars: usize) -> usize {
        self.input
            .char_indices()
            .nth(chars)
            .map_or(self.input.len(), |(i, _)| i)
    }

    fn set_input(&mut self, text: String) {
        self.cursor = text.chars().count();
        self.input = text;
    }

    /// Replaces the input (e.g. with a completion).
    pub fn replace_input(&mut self, text: String) {
        self.set_input(text);
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        self.last_key = Some(Instant::now());
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if self.search.is_some() {
            return self.on_search_key(key, ctrl);
        }
        match key.code {
            KeyCode::Char('c') if ctrl => {
                if self.busy.is_some() {
                    return Action::Cancel;
                }
                if self.input.is_empty() {
                    self.notice =
                        Some("Ctrl-C cancels a running job; :quit or Ctrl-D leaves".into());
                } else {
                    self.set_input(String::new());
                }
            }
            KeyCode::Char('d') if ctrl && self.input.is_empty() => return Action::Quit,
            KeyCode::Char('r') if ctrl => {
                self.search = Some(Search::default());
            }
            KeyCode::Char('a') if ctrl => self.cursor = 0,
            KeyCode::Char('e') if ctrl => self.cursor = self.input.chars().count(),
            KeyCode::Char('u') if ctrl => {
                let at = self.byte_at(self.cursor);
                self.input.replace_range(..at, "");
                self.cursor = 0;
                // A completion list belongs to the text just deleted.
                self.notice = None;
            }
            KeyCode::Char('w') if ctrl => {
                // Delete the word before the cursor (and the spaces after it).
                let chars: Vec<char> = self.input.chars().collect();
                let mut start = self.cursor;
                while start > 0 && chars[start - 1].is_whitespace() {
                    start -= 1;
                }
                while start > 0 && !chars[start - 1].is_whitespace() {
                    start -= 1;
                }
                let (from, to) = (self.byte_at(start), self.byte_at(self.cursor));
                self.input.replace_range(from..to, "");
                self.cursor = start;
                self.notice = None;
            }
            KeyCode::Char('l') if ctrl => self.scroll = 0,
            KeyCode::Char(c) if !ctrl => {
                let at = self.byte_at(self.cursor);
                self.input.insert(at, c);
                self.cursor += 1;
                self.history_pos = None;
            }
            KeyCode::Backspace if self.cursor > 0 => {
                let at = self.byte_at(self.cursor - 1);
                self.input.remove(at);
                self.cursor -= 1;
            }
            KeyCode::Delete if self.cursor < self.input.chars().count() => {
                let at = self.byte_at(self.cursor);
                self.input.remove(at);
            }
            KeyCode::Left => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Right => self.cursor = (self.cursor + 1).min(self.input.chars().count()),
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = self.input.chars().count(),
            KeyCode::Up => self.history_back(),
            KeyCode::Down => self.history_forward(),
            KeyCode::PageUp => self.scroll = self.scroll.saturating_add(10),
            KeyCode::PageDown => self.scroll = self.scroll.saturating_sub(10),
            KeyCode::Tab => return Action::Complete,
            KeyCode::Enter => {
                let line = self.input.trim().to_string();
                if line.is_empty() {
                    // Spaces alone: nothing to run, and nothing to keep.
                    self.set_input(String::new());
                    return Action::Nothing;
                }
                self.set_input(String::new());
                self.history_pos = None;
                self.scroll = 0;
                self.notice = None;
                if self.history.last() != Some(&line) {
                    self.history.push(line.clone());
                }
                return Action::Execute(line);
            }
            KeyCode::Esc => self.notice = None,
            _ => {}
        }
        Action::Nothing
    }

    fn history_back(&mut self) {
        if self.history.is_empty() {
            return;
        }
        let pos = match self.history_pos {
            None => {
                self.draft = self.input.clone();
                self.history.len() - 1
            }
            Some(p) => p.saturating_sub(1),
        };
        self.history_pos = Some(pos);
        self.set_input(self.history[pos].clone());
    }

    fn history_forward(&mut self) {
        let Some(pos) = self.history_pos else { return };
        if pos + 1 >= self.history.len() {
            self.history_pos = None;
            let draft = std::mem::take(&mut self.draft);
            self.set_input(draft);
        } else {
            self.history_pos = Some(pos + 1);
            self.set_input(self.history[pos + 1].clone());
        }
    }

    /// The newest history entry at or before `before` containing `query`.
    fn find(&self, query: &str, before: usize) -> Option<usize> {
        if query.is_empty() {
            return None;
        }
        (0..before.min(self.history.len()))
            .rev()
            .find(|&i| self.history[i].contains(query))
    }

    fn on_search_key(&mut self, key: KeyEvent, ctrl: bool) -> Action {
        let Some(mut search) = self.search.take() else {
            return Action::Nothing;
        };
        match key.code {
            KeyCode::Char('r') if ctrl => {
                let before = search.found.unwrap_or(self.history.len());
                if let Some(i) = self.find(&search.query, before) {
                    search.found = Some(i);
                }
            }
            KeyCode::Char('c') | KeyCode::Char('g') if ctrl => return Action::Nothing,
            KeyCode::Esc => return Action::Nothing,
            KeyCode::Char(c) if !ctrl => {
                search.query.push(c);
                search.found = self.find(&search.query, self.history.len());
            }
            KeyCode::Backspace => {
                search.query.pop();
                search.found = self.find(&search.query, self.history.len());
            }
            KeyCode::Enter | KeyCode::Right | KeyCode::Left | KeyCode::Tab => {
                if let Some(i) = search.found {
                    self.set_input(self.history[i].clone());
                }
                return Action::Nothing;
            }
            _ => {}
        }
        self.search = Some(search);
        Action::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    fn type_text(app: &mut App, text: &str) {
        for c in text.chars() {
            app.on_key(key(KeyCode::Char(c)));
        }
    }

    #[test]
    fn typing_editing_and_enter() {
        let mut app = App::default();
        type_text(&mut app, "a red flowr");
        app.on_key(key(KeyCode::Left));
        app.on_key(key(KeyCode::Char('e')));
        assert_eq!(app.input, "a red flower");
        assert_eq!(
            app.on_key(key(KeyCode::Enter)),
            Action::Execute("a red flower".into())
        );
        assert!(app.input.is_empty());
        assert_eq!(app.history, vec!["a red flower"]);
    }

    #[test]
    fn ctrl_w_ctrl_u_and_an_empty_enter_clean_up() {
        let mut app = App::default();
        type_text(&mut app, "a red  flower ");
        app.on_key(ctrl('w'));
        assert_eq!(app.input, "a red  ");
        app.on_key(ctrl('w'));
        assert_eq!(app.input, "a ");
        app.notice = Some(":interp  :interp-z".into());
        app.on_key(ctrl('u'));
        assert!(app.input.is_empty() && app.notice.is_none());
        type_text(&mut app, "   ");
        assert_eq!(app.on_key(key(KeyCode::Enter)), Action::Nothing);
        assert!(app.input.is_empty(), "{:?}", app.input);
        assert!(app.history.is_empty());
    }

    #[test]
    fn history_up_down_keeps_the_draft() {
        let mut app = App {
            history: vec!["one".into(), "two".into()],
            ..Default::default()
        };
        type_text(&mut app, "dra");
        app.on_key(key(KeyCode::Up));
        assert_eq!(app.input, "two");
        app.on_key(key(KeyCode::Up));
        assert_eq!(app.input, "one");
        app.on_key(key(KeyCode::Down));
        app.on_key(key(KeyCode::Down));
        assert_eq!(app.input, "dra");
    }

    #[test]
    fn ctrl_r_finds_older_lines() {
        let mut app = App {
            history: vec![
                "a red flower".into(),
                ":interp \"a\" \"b\"".into(),
                "a blue flower".into(),
            ],
            ..Default::default()
        };
        app.on_key(ctrl('r'));
        type_text(&mut app, "flower");
        assert_eq!(app.search.as_ref().unwrap().found, Some(2));
        app.on_key(ctrl('r'));
        assert_eq!(app.search.as_ref().unwrap().found, Some(0));
        app.on_key(key(KeyCode::Enter));
        assert_eq!(app.input, "a red flower");
        assert!(app.search.is_none());
    }

    #[test]
    fn ctrl_c_cancels_a_job_or_clears_the_line() {
        let mut app = App::default();
        type_text(&mut app, "abc");
        assert_eq!(app.on_key(ctrl('c')), Action::Nothing);
        assert!(app.input.is_empty());
        app.busy = Some(Busy {
            line: "x".into(),
            started: Instant::now(),
            done: 0,
            total: 4,
        });
        assert_eq!(app.on_key(ctrl('c')), Action::Cancel);
        assert_eq!(app.on_key(key(KeyCode::Tab)), Action::Complete);
    }
}
