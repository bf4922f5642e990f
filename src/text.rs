//! Captions as the char-CNN-RNN reads them (paper.md §1): a 70 x 201 one-hot
//! matrix over Reed's alphabet.
//!
//! Captions are lowercased first. The original code does not lowercase; since
//! its alphabet has no capital letters, every capital would otherwise become an
//! all-zero column, so "A red flower" and "a red flower" would differ. The
//! other deliberate change: what keyboards, phones and word processors type
//! in place of the alphabet's characters (curly quotes and apostrophes, long
//! dashes, the ellipsis, unbreakable and thin spaces, tabs and line breaks,
//! accented Latin letters, full-width forms) is read as the character it
//! stands for ([`fold`]), so "I’d like a rosé flower" reads as "i'd like a
//! rose flower" and not with blanks. Neither changes a caption written in the
//! alphabet (every training caption), so models trained before read as
//! before.

use thiserror::Error;

/// Reed's alphabet, in its order. '-' is listed twice in the original; a
/// '-' maps to the first slot, so the second is never set. The last slot is
/// the space.
pub const ALPHABET: &str =
    "abcdefghijklmnopqrstuvwxyz0123456789-,;.!?:'\"/\\|_@#$%^&*~`+-=<>()[]{} ";

/// 70 slots (69 distinct characters plus the unused second '-').
pub const ALPHABET_SIZE: usize = 70;

/// Captions longer than this are cut (the rest is not read).
pub const MAX_CAPTION_CHARS: usize = 201;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CaptionError {
    #[error("the caption is empty: type what the image should show, e.g. \"a red flower with five round petals\"")]
    Empty,
}

/// One caption, encoded: for each of the first 201 characters, its alphabet
/// slot or `None` for a character outside the alphabet (an all-zero column).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedCaption {
    pub slots: Vec<Option<u8>>,
    /// Characters after the 201st, which were not encoded.
    pub dropped_chars: usize,
    /// Distinct characters outside the alphabet, in order of appearance.
    pub unknown_chars: Vec<char>,
}

impl EncodedCaption {
    /// Human-readable notes about what was not encoded, if anything.
    pub fn warnings(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.dropped_chars > 0 {
            notes.push(format!(
                "caption is longer than {MAX_CAPTION_CHARS} characters: the last {} were not read",
                self.dropped_chars
            ));
        }
        if !self.unknown_chars.is_empty() {
            let shown: String = self.unknown_chars.iter().take(12).collect();
            notes.push(format!(
                "characters outside the model's alphabet were read as blanks: {shown}"
            ));
        }
        notes
    }
}

/// The alphabet slot of a (lowercased) character.
pub fn slot(c: char) -> Option<u8> {
    ALPHABET.chars().position(|a| a == c).map(|i| i as u8)
}

/// What a character typed in place of the alphabet's stands for (already
/// lowercased): `None` where it is itself, or is nothing the alphabet has
/// (an emoji stays unknown and is warned about), `Some("")` where it is
/// invisible (zero-width spaces and joiners, the byte-order mark).
fn typed_for(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' | '\u{02BC}' => "'",
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' | '\u{00AB}'
        | '\u{00BB}' => "\"",
        '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2015}'
        | '\u{2212}' => "-",
        '\u{2026}' => "...",
        '\u{00D7}' => "x",
        '\t'
        | '\n'
        | '\r'
        | '\u{00A0}'
        | '\u{2000}'..='\u{200A}'
        | '\u{202F}'
        | '\u{205F}'
        | '\u{3000}' => " ",
        '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' => "",
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'č' => "c",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' | 'ě' => "e",
        'ì' | 'í' | 'î' | 'ï' | 'ī' => "i",
        'ñ' | 'ń' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' => "o",
        'œ' => "oe",
        'ß' => "ss",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' => "u",
        'ý' | 'ÿ' => "y",
        'š' | 'ś' => "s",
        'ž' | 'ź' | 'ż' => "z",
        'ł' => "l",
        'ř' => "r",
        _ => return None,
    })
}

/// A caption as the model reads it: lowercased, and each character typed in
/// place of one of the alphabet's ([`typed_for`]: curly quotes, long dashes,
/// accented letters, odd spaces; full-width forms) read as that one. A
/// caption in the alphabet comes back lowercased and otherwise unchanged.
pub fn fold(caption: &str) -> String {
    let mut out = String::with_capacity(caption.len());
    for c in caption.to_lowercase().chars() {
        match typed_for(c) {
            Some(s) => out.push_str(s),
            // Full-width ASCII (East Asian input methods).
            None if ('\u{FF01}'..='\u{FF5E}').contains(&c) => {
                let ascii = char::from_u32(c as u32 - 0xFEE0).unwrap_or(c);
                out.extend(ascii.to_lowercase());
            }
            None => out.push(c),
        }
    }
    out
}

/// Encodes one caption ([`fold`]ed first). Empty (or whitespace-only)
/// captions are an error.
pub fn encode(caption: &str) -> Result<EncodedCaption, CaptionError> {
    let folded = fold(caption);
    let lower = folded.trim();
    if lower.is_empty() {
        return Err(CaptionError::Empty);
    }
    let mut slots = Vec::with_capacity(MAX_CAPTION_CHARS);
    let mut unknown_chars = Vec::new();
    let mut dropped_chars = 0;
    for c in lower.chars() {
        if slots.len() == MAX_CAPTION_CHARS {
            dropped_chars += 1;
            continue;
        }
        let s = slot(c);
        if s.is_none() && !unknown_chars.contains(&c) {
            unknown_chars.push(c);
        }
        slots.push(s);
    }
    Ok(EncodedCaption {
        slots,
        dropped_chars,
        unknown_chars,
    })
}

/// Lays encoded captions out as one-hot floats in [B, 70, 201] order
/// (channels = alphabet, time = characters), ready for `Tensor::from_slice`.
pub fn one_hot(captions: &[EncodedCaption]) -> Vec<f32> {
    let per = ALPHABET_SIZE * MAX_CAPTION_CHARS;
    let mut out = vec![0.0f32; captions.len() * per];
    for (b, caption) in captions.iter().enumerate() {
        for (t, s) in caption.slots.iter().enumerate() {
            if let Some(s) = s {
                out[b * per + *s as usize * MAX_CAPTION_CHARS + t] = 1.0;
            }
        }
    }
    out
}

/// The words of a caption as the vocabulary counts them: [`fold`]ed
/// (lowercased), split at anything but letters, digits, '-' and '\''.
pub fn words(caption: &str) -> Vec<String> {
    fold(caption)
        .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '\''))
        .map(|w| w.trim_matches(|c| c == '-' || c == '\''))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// The words that occur at least `min_count` times over `captions`, sorted
/// (rarer ones are mostly typos the grammar made on purpose).
pub fn vocabulary<'a>(
    captions: impl IntoIterator<Item = &'a str>,
    min_count: usize,
) -> Vec<String> {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for caption in captions {
        for w in words(caption) {
            *counts.entry(w).or_insert(0) += 1;
        }
    }
    let frequent: Vec<(&String, usize)> = counts
        .iter()
        .filter(|(_, n)| **n >= min_count.max(1))
        .map(|(w, n)| (w, *n))
        .collect();
    // A misspelling one edit away from a word a hundred times as common is
    // the grammar's deliberate typo, not vocabulary ("tree" beside "three").
    frequent
        .iter()
        .filter(|(w, n)| {
            !frequent.iter().any(|(u, m)| {
                *m >= 100 * *n && strsim::damerau_levenshtein(w.as_str(), u.as_str()) == 1
            })
        })
        .map(|(w, _)| (*w).clone())
        .collect()
}

/// The fewest occurrences a word needs to count as vocabulary among `captions`
/// captions: deliberate typos in a caption grammar recur, but a real word
/// occurs far more often than any one misspelling of it.
pub fn vocabulary_min_count(captions: usize) -> usize {
    (captions / 10_000).max(2)
}

/// The words of `caption` that are not in `vocabulary` (sorted), in order of
/// first appearance. A hyphenated word is known where its parts are ("5-petal"
/// where "5" and "petal" are).
pub fn unknown_words(caption: &str, vocabulary: &[String]) -> Vec<String> {
    let known = |w: &str| vocabulary.binary_search_by(|v| v.as_str().cmp(w)).is_ok();
    let mut out: Vec<String> = Vec::new();
    for w in words(caption) {
        let parts_known = w.contains('-') && w.split('-').filter(|p| !p.is_empty()).all(known);
        if !known(&w) && !parts_known && !out.contains(&w) {
            out.push(w);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphabet_has_seventy_slots_and_dash_takes_the_first() {
        assert_eq!(ALPHABET.chars().count(), ALPHABET_SIZE);
        assert_eq!(slot('a'), Some(0));
        assert_eq!(slot('0'), Some(26));
        assert_eq!(slot('-'), Some(36));
        assert_eq!(slot(' '), Some(69));
        assert_eq!(slot('}'), Some(68));
    }

    #[test]
    fn lowercases_and_encodes_each_character() {
        let e = encode("A Red flower.").unwrap();
        assert_eq!(e.slots.len(), 13);
        assert_eq!(e.slots[0], slot('a'));
        assert_eq!(e.slots[2], slot('r'));
        assert!(e.warnings().is_empty());
    }

    #[test]
    fn words_outside_the_vocabulary_are_named() {
        let vocabulary = vocabulary(["a red flower", "a red-petaled flower, red!"], 2);
        assert_eq!(vocabulary, ["a", "flower", "red"]);
        // A typo that recurs is still left out beside the word it misspells.
        let mut captions = vec!["a yellow flower"; 300];
        captions.extend(["a yelow flower"; 2]);
        captions.extend(["an orange flower"; 20]);
        let v = super::vocabulary(captions, 2);
        assert_eq!(v, ["a", "an", "flower", "orange", "yellow"]);
        assert_eq!(
            unknown_words("A GREEN flower, green and 'teal'", &vocabulary),
            ["green", "and", "teal"]
        );
        assert!(unknown_words("a red flower.", &vocabulary).is_empty());
        assert!(unknown_words("a red-flower", &vocabulary).is_empty());
        assert_eq!(unknown_words("a red-ish flower", &vocabulary), ["red-ish"]);
    }

    /// What phones, word processors and other keyboards type reads as the
    /// alphabet's character it stands for, with nothing warned about; a
    /// caption in the alphabet is only lowercased.
    #[test]
    fn typographic_characters_read_as_what_they_stand_for() {
        let typed = "I’d like a “rosé” flower — 5× petals…\u{00A0}ＲＥＤ\tcentre\u{200B}";
        let plain = "i'd like a \"rose\" flower - 5x petals... red centre";
        assert_eq!(fold(typed), plain);
        let (a, b) = (encode(typed).unwrap(), encode(plain).unwrap());
        assert_eq!(a, b);
        assert!(a.warnings().is_empty(), "{:?}", a.warnings());
        assert_eq!(words("I’d like Crème"), ["i'd", "like", "creme"]);
        let ascii: String = (' '..='~').collect();
        assert_eq!(fold(&ascii), ascii.to_lowercase());
        assert_eq!(encode("\u{200B}\u{00A0}\t"), Err(CaptionError::Empty));
    }

    #[test]
    fn empty_caption_is_an_error() {
        assert_eq!(encode(""), Err(CaptionError::Empty));
        assert_eq!(encode("  \t\n"), Err(CaptionError::Empty));
    }

    #[test]
    fn long_caption_is_cut_at_201_with_a_warning() {
        let long = "petal ".repeat(50);
        let e = encode(&long).unwrap();
        assert_eq!(e.slots.len(), MAX_CAPTION_CHARS);
        assert_eq!(
            e.dropped_chars,
            long.trim().chars().count() - MAX_CAPTION_CHARS
        );
        assert!(e.warnings()[0].contains("201"));
    }

    #[test]
    fn unicode_and_emoji_become_zero_columns() {
        let e = encode("a flower 🌸 ☃").unwrap();
        assert_eq!(e.slots.len(), "a flower 🌸 ☃".chars().count());
        assert_eq!(e.slots[9], None);
        assert_eq!(e.unknown_chars, vec!['🌸', '☃']);
        let m = one_hot(std::slice::from_ref(&e));
        let column_sum: f32 = (0..ALPHABET_SIZE)
            .map(|s| m[s * MAX_CAPTION_CHARS + 9])
            .sum();
        assert_eq!(column_sum, 0.0);
        let column_sum: f32 = (0..ALPHABET_SIZE).map(|s| m[s * MAX_CAPTION_CHARS]).sum();
        assert_eq!(column_sum, 1.0);
    }
}
