//! Terminal hygiene for what a replica sends: the fleet commands and `report` print answers
//! from replicas that may be hostile or broken (issue 25, finding 6).

/// `text` safe for a terminal: control characters (C0 such as ESC and CR, DEL, C1 such as
/// CSI) and the bidirectional overrides that reorder what is shown become `\u{…}` escapes,
/// so a replica's answer cannot move the cursor, clear the screen, set the title (OSC) or
/// disguise one id as another.
#[must_use]
pub(crate) fn escape(text: &str) -> String {
    escape_keeping(text, false)
}

/// [`escape`], keeping line breaks: for multi-line output such as a rendered report.
#[must_use]
pub(crate) fn escape_lines(text: &str) -> String {
    escape_keeping(text, true)
}

fn escape_keeping(text: &str, newlines: bool) -> String {
    let hostile = |c: char| {
        (c.is_control() && c != '\t' && !(newlines && c == '\n'))
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
    };
    if !text.contains(hostile) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if hostile(c) {
                format!("\\u{{{:x}}}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("qa-1 until x"), "qa-1 until x");
        assert_eq!(
            escape("a\u{1b}[2J\u{1b}]0;pwned\u{7}\rb\u{9b}c\u{202e}d"),
            "a\\u{1b}[2J\\u{1b}]0;pwned\\u{7}\\u{d}b\\u{9b}c\\u{202e}d"
        );
    }

    #[test]
    fn line_breaks_are_kept_only_when_asked() {
        assert_eq!(escape("a\nb"), "a\\u{a}b");
        assert_eq!(escape_lines("a\nb\r"), "a\nb\\u{d}");
    }
}
