//! Colours and styles, in one place so that every screen marks things the same way.

use ratatui::style::{Color, Modifier, Style};

pub fn title() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

pub fn dim() -> Style {
    Style::new().fg(Color::DarkGray)
}

pub fn selected() -> Style {
    Style::new()
        .bg(Color::Rgb(40, 50, 70))
        .add_modifier(Modifier::BOLD)
}

pub fn key() -> Style {
    Style::new().fg(Color::Black).bg(Color::Cyan)
}

pub fn agree() -> Style {
    Style::new().fg(Color::Green)
}

pub fn differ() -> Style {
    Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
}

pub fn leak() -> Style {
    Style::new()
        .fg(Color::White)
        .bg(Color::Red)
        .add_modifier(Modifier::BOLD)
}

pub fn error() -> Style {
    Style::new().fg(Color::White).bg(Color::Red)
}

pub fn warning() -> Style {
    Style::new().fg(Color::Black).bg(Color::Yellow)
}

pub fn info() -> Style {
    Style::new().fg(Color::Cyan)
}

pub fn privileged() -> Style {
    Style::new().fg(Color::Magenta)
}

pub fn reason() -> Style {
    Style::new().fg(Color::Gray)
}

pub fn action() -> Style {
    Style::new()
        .fg(Color::LightBlue)
        .add_modifier(Modifier::BOLD)
}

pub fn observation() -> Style {
    Style::new().fg(Color::Gray).add_modifier(Modifier::ITALIC)
}

pub fn won() -> Style {
    Style::new().fg(Color::Green).add_modifier(Modifier::BOLD)
}

pub fn lost() -> Style {
    Style::new().fg(Color::Red)
}
