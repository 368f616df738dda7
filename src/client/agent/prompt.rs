//! What the person sees when the AS asks for interaction.

use super::*;

/// What the person sees when the AS asks for interaction.
pub trait Prompter: Send + Sync {
    /// Shows `interaction` (never on stdout: stdout is the MCP channel).
    fn interaction(&self, interaction: &Interaction);
    /// Tells the person the wait is over.
    fn approved(&self) {}
}

/// Prints on stderr and, if asked, opens the browser (`xdg-open`).
#[derive(Debug, Clone)]
pub struct StderrPrompter {
    /// The program name to prefix messages with.
    pub program: String,
    /// Open the interaction URI in a browser.
    pub open: bool,
}

impl Prompter for StderrPrompter {
    fn interaction(&self, interaction: &Interaction) {
        for line in interaction.instructions(&self.program) {
            eprintln!("{line}");
        }
        if self.open
            && let Some(uri) = interaction.browser_uri()
        {
            open_browser(uri);
        }
    }

    fn approved(&self) {
        eprintln!("{}: approved", self.program);
    }
}

/// Starts the desktop's browser on `uri`, detached from stdin/stdout (the
/// MCP channel) and stderr.
pub fn open_browser(uri: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let started = std::process::Command::new(opener)
        .arg(uri)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(e) = started {
        eprintln!("could not start {opener}: {e}; open the URL by hand");
    }
}
