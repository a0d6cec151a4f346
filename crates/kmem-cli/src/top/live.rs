//! The live screen: read, draw, wait for a key or the next refresh.

use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};

use super::source::{Target, fetch};
use super::view::{SortKey, View, draw};

/// Runs the live view on the terminal until `q`, Esc or Ctrl-C.
pub fn run(target: &Target, sort: SortKey, interval: Duration) -> Result<(), String> {
    // The first read happens before the screen is taken, so a wrong pid or
    // path is a plain error message on the normal screen.
    let (snap, _) = fetch(target)?;
    let mut view = View {
        target: target.label(),
        snap: Some(snap),
        sort,
        status: None,
        help: Some(help(interval)),
    };
    let mut term = ratatui::try_init().map_err(|e| format!("cannot set up the terminal: {e}"))?;
    let r = (|| -> std::io::Result<()> {
        let mut next = Instant::now() + interval;
        loop {
            term.draw(|f| draw(f, &view))?;
            let wait = next.saturating_duration_since(Instant::now());
            if event::poll(wait)? {
                if let Event::Key(k) = event::read()? {
                    if k.kind != KeyEventKind::Press {
                        continue;
                    }
                    match k.code {
                        KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
                        KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                            return Ok(());
                        }
                        KeyCode::Char(' ') => next = Instant::now(),
                        KeyCode::Char(c) => {
                            if let Some(s) = SortKey::from_key(c) {
                                view.sort = s;
                            }
                        }
                        _ => {}
                    }
                }
                continue;
            }
            match fetch(target) {
                Ok((snap, _)) => {
                    view.snap = Some(snap);
                    view.status = None;
                }
                // Keep the last rows on screen and say why they are old.
                Err(e) => view.status = Some(e),
            }
            next = Instant::now() + interval;
        }
    })();
    ratatui::restore();
    r.map_err(|e| format!("terminal: {e}"))
}

fn help(interval: Duration) -> String {
    format!(
        "sort: o objs  a active  s size  c cache  n name  u use  l slabs · space refresh · q quit · {} ms",
        interval.as_millis()
    )
}
