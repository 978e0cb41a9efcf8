//! Keys → [`Action`]s.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::Action;

/// The action for `key`, given whether a filter is being typed.
pub fn action(key: KeyEvent, editing_filter: bool) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    if editing_filter {
        return match key.code {
            KeyCode::Enter => Some(Action::FilterDone),
            KeyCode::Esc => Some(Action::Back),
            KeyCode::Backspace => Some(Action::FilterBackspace),
            KeyCode::Char(c) => Some(Action::FilterChar(c)),
            _ => None,
        };
    }
    Some(match key.code {
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Esc => Action::Back,
        KeyCode::Enter => Action::Enter,
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::Char('p') => Action::ToggleProcesses,
        KeyCode::Char('c') => Action::ToggleCumulative,
        KeyCode::Char(' ') => Action::TogglePause,
        KeyCode::Char('?') => Action::ToggleHelp,
        KeyCode::Char('/') => Action::FilterStart,
        KeyCode::Char('a') => Action::ToggleAnatomy,
        KeyCode::Char(d @ '1'..='8') => Action::SortKey((d as u8 - b'0') as usize),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn keys() {
        assert_eq!(action(key(KeyCode::Char('q')), false), Some(Action::Quit));
        assert_eq!(
            action(key(KeyCode::Char('5')), false),
            Some(Action::SortKey(5))
        );
        assert_eq!(
            action(key(KeyCode::Char('a')), false),
            Some(Action::ToggleAnatomy)
        );
        assert_eq!(
            action(key(KeyCode::Char('q')), true),
            Some(Action::FilterChar('q')),
            "typed into the filter"
        );
        assert_eq!(
            action(
                KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
                true
            ),
            Some(Action::Quit)
        );
        assert_eq!(action(key(KeyCode::Char('z')), false), None);
    }
}
