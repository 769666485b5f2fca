//! Output through a pager: a whole text ([`page`]) or a stream written as it is made
//! ([`Streamed`]), through `$PAGER` (`less -FRX` by default) when stdout is a terminal and the
//! text is taller than it, straight to stdout otherwise; a reader who quits early is not an
//! error.

use std::io::{IsTerminal, Write};
use std::process::{Command, Stdio};

use super::CliError;

/// Prints `text`: through `$PAGER` (or `less -FRX`) when stdout is a terminal and the text is
/// taller than it, else as is.
pub fn page(text: &str) -> Result<(), CliError> {
    let stdout = std::io::stdout();
    let tall = text.lines().count() > terminal_rows();
    if stdout.is_terminal() && tall {
        let pager = std::env::var("PAGER").unwrap_or_else(|_| "less -FRX".into());
        let mut words = pager.split_whitespace();
        if let Some(program) = words.next() {
            if let Ok(mut child) = Command::new(program)
                .args(words)
                .stdin(Stdio::piped())
                .spawn()
            {
                if let Some(mut input) = child.stdin.take() {
                    // The person may quit the pager early: a broken pipe is not an error.
                    let _ = input.write_all(text.as_bytes());
                }
                let _ = child.wait();
                return Ok(());
            }
        }
    }
    let mut out = stdout.lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(CliError::io("cannot write the output")),
    }
}

/// Output written as it is made (a listing of any size): through the pager on a terminal once
/// the first part is taller than the screen or more is coming, else straight to stdout. A reader
/// who quits (the pager closed, `| head`) stops the writing: [`Self::write`] answers false.
pub struct Streamed {
    out: Box<dyn Write>,
    pager: Option<std::process::Child>,
    open: bool,
}

impl Streamed {
    /// Starts with `first`; `more` says whether more is to come.
    pub fn start(first: &str, more: bool) -> Self {
        let stdout = std::io::stdout();
        let tall = more || first.lines().count() > terminal_rows();
        let mut pager = None;
        if stdout.is_terminal() && tall {
            let program = std::env::var("PAGER").unwrap_or_else(|_| "less -FRX".into());
            let mut words = program.split_whitespace();
            if let Some(program) = words.next() {
                pager = Command::new(program)
                    .args(words)
                    .stdin(Stdio::piped())
                    .spawn()
                    .ok();
            }
        }
        let out: Box<dyn Write> = match pager.as_mut().and_then(|p| p.stdin.take()) {
            Some(input) => Box::new(std::io::BufWriter::new(input)),
            None => Box::new(std::io::BufWriter::new(stdout)),
        };
        let mut streamed = Self {
            out,
            pager,
            open: true,
        };
        let _ = streamed.write(first);
        streamed
    }

    /// Writes `text`; false once the reader has gone.
    pub fn write(&mut self, text: &str) -> Result<bool, CliError> {
        if !self.open {
            return Ok(false);
        }
        match self.out.write_all(text.as_bytes()) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.open = false;
                Ok(false)
            }
            Err(e) => Err(CliError::io("cannot write the output")(e)),
        }
    }

    /// Flushes, and waits for the pager to be closed.
    pub fn finish(mut self) -> Result<(), CliError> {
        let flushed = match self.out.flush() {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                Err(CliError::io("cannot write the output")(e))
            }
            _ => Ok(()),
        };
        // The pager reads to the end of its input, then waits for the person.
        drop(std::mem::replace(&mut self.out, Box::new(std::io::sink())));
        if let Some(mut pager) = self.pager.take() {
            let _ = pager.wait();
        }
        flushed
    }
}

fn terminal_rows() -> usize {
    std::env::var("LINES")
        .ok()
        .and_then(|l| l.parse().ok())
        .unwrap_or(24)
}
