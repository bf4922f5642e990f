//! Splitting a command line into words (with quotes), and the nearest-name
//! suggestion for typos.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SplitError {
    #[error("unclosed quote {0}: close it, e.g. \"a red flower\"")]
    Unclosed(char),
    #[error("a backslash at the end of the line escapes nothing")]
    TrailingBackslash,
}

/// Splits like a shell: words separated by spaces; "double" or 'single'
/// quotes keep spaces; a backslash escapes the next character (outside
/// single quotes).
pub fn split(line: &str) -> Result<Vec<String>, SplitError> {
    Ok(split_marked(line)?.into_iter().map(|(w, _)| w).collect())
}

/// [`split`], each word with whether any of it was quoted.
pub fn split_marked(line: &str) -> Result<Vec<(String, bool)>, SplitError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                in_word = true;
                quoted = true;
                loop {
                    match chars.next() {
                        None => return Err(SplitError::Unclosed(c)),
                        Some(q) if q == c => break,
                        Some('\\') if c == '"' => match chars.next() {
                            Some(e) => word.push(e),
                            None => return Err(SplitError::Unclosed(c)),
                        },
                        Some(other) => word.push(other),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(chars.next().ok_or(SplitError::TrailingBackslash)?);
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push((std::mem::take(&mut word), quoted));
                    in_word = false;
                    quoted = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push((word, quoted));
    }
    Ok(words)
}

/// Quotes a word if it needs it, so that `split` reads it back.
pub fn quote(word: &str) -> String {
    if !word.is_empty()
        && !word
            .chars()
            .any(|c| c.is_whitespace() || "\"'\\".contains(c))
    {
        return word.to_string();
    }
    format!("\"{}\"", word.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The candidate closest to `word` by edit distance, if it is close enough
/// to be a plausible typo.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The longest common prefix of some strings.
pub fn common_prefix(items: &[String]) -> String {
    let Some(first) = items.first() else {
        return String::new();
    };
    let mut end = first.len();
    for item in &items[1..] {
        end = end.min(
            first
                .bytes()
                .zip(item.bytes())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    while !first.is_char_boundary(end) {
        end -= 1;
    }
    first[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_quotes_and_escapes() {
        assert_eq!(
            split(r#"interp "a red flower" 'a blue one' 8"#).unwrap(),
            vec!["interp", "a red flower", "a blue one", "8"]
        );
        assert_eq!(
            split(r#"a "say \"hi\"" b\ c"#).unwrap(),
            vec!["a", "say \"hi\"", "b c"]
        );
        assert_eq!(split(r#"x """#).unwrap(), vec!["x", ""]);
        assert_eq!(split(r#"interp "a red"#), Err(SplitError::Unclosed('"')));
        assert_eq!(split("x \\"), Err(SplitError::TrailingBackslash));
    }

    #[test]
    fn quote_round_trips() {
        for w in ["plain", "two words", "say \"hi\"", "back\\slash", ""] {
            assert_eq!(split(&quote(w)).unwrap(), vec![w.to_string()]);
        }
    }

    #[test]
    fn nearest_suggests_typos_only() {
        let names = ["interp", "interp-z", "style", "seed", "save"];
        assert_eq!(nearest("intrep", names), Some("interp"));
        assert_eq!(nearest("stlye", names), Some("style"));
        assert_eq!(nearest("zebra", names), None);
    }

    #[test]
    fn common_prefix_of_names() {
        assert_eq!(
            common_prefix(&["interp".into(), "interp-z".into()]),
            "interp"
        );
        assert_eq!(common_prefix(&["seed".into(), "save".into()]), "s");
    }
}
