//! Contact sheets: images in a grid, each with its caption under it, drawn
//! with an 8x8 bitmap font (no font files needed).

use crate::imageio::Image;
use font8x8::UnicodeFonts;

const GLYPH: u32 = 8;
const PAD: u32 = 4;

/// Splits `text` into lines of at most `width` characters, at spaces.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word = word.to_string();
        while word.chars().count() > width {
            let head: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            lines.push(head);
        }
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Lays `cells` (image, caption) out in `columns` columns, each image
/// scaled up `scale` times, captions wrapped under them in at most
/// `caption_lines` lines (as many as the longest caption needs: a sheet of
/// short labels has no empty band under them).
pub fn contact_sheet(
    cells: &[(Image, String)],
    columns: usize,
    scale: u32,
    caption_lines: usize,
) -> Image {
    let columns = columns.max(1);
    let rows = cells.len().div_ceil(columns).max(1);
    let image_side = cells.first().map_or(64, |(i, _)| i.width.max(i.height)) * scale;
    let cell_w = image_side + 2 * PAD;
    let chars_per_line = (image_side / GLYPH) as usize;
    let needed = cells
        .iter()
        .map(|(_, caption)| wrap(caption, chars_per_line).len())
        .max()
        .unwrap_or(0);
    let caption_lines = caption_lines.min(needed);
    let cell_h = image_side + 2 * PAD + caption_lines as u32 * (GLYPH + 2);
    let width = cell_w * columns as u32;
    let height = cell_h * rows as u32;
    let mut rgb = vec![24u8; (width * height * 3) as usize];
    let mut put = |x: u32, y: u32, c: [u8; 3]| {
        if x < width && y < height {
            let i = ((y * width + x) * 3) as usize;
            rgb[i..i + 3].copy_from_slice(&c);
        }
    };
    for (n, (image, caption)) in cells.iter().enumerate() {
        let x0 = (n % columns) as u32 * cell_w + PAD;
        let y0 = (n / columns) as u32 * cell_h + PAD;
        for y in 0..image.height * scale {
            for x in 0..image.width * scale {
                let i = (((y / scale) * image.width + x / scale) * 3) as usize;
                put(
                    x0 + x,
                    y0 + y,
                    [image.rgb[i], image.rgb[i + 1], image.rgb[i + 2]],
                );
            }
        }
        let mut lines = wrap(caption, chars_per_line);
        if lines.len() > caption_lines {
            lines.truncate(caption_lines);
            if let Some(last) = lines.last_mut() {
                let keep: String = last
                    .chars()
                    .take(chars_per_line.saturating_sub(2))
                    .collect();
                *last = format!("{keep}..");
            }
        }
        for (l, line) in lines.iter().enumerate() {
            let ty = y0 + image_side + 2 + l as u32 * (GLYPH + 2);
            for (k, ch) in line.chars().enumerate() {
                let glyph = font8x8::BASIC_FONTS
                    .get(ch)
                    .or_else(|| font8x8::BASIC_FONTS.get('?'));
                let Some(glyph) = glyph else { continue };
                for (gy, bits) in glyph.iter().enumerate() {
                    for gx in 0..8 {
                        if bits & (1 << gx) != 0 {
                            put(x0 + k as u32 * GLYPH + gx, ty + gy as u32, [230, 230, 230]);
                        }
                    }
                }
            }
        }
    }
    Image { width, height, rgb }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_words_and_width() {
        assert_eq!(
            wrap("a red flower with five petals", 10),
            vec!["a red", "flower", "with five", "petals"]
        );
        assert_eq!(wrap("abcdefghijkl", 5), vec!["abcde", "fghij", "kl"]);
        assert!(wrap("", 5).is_empty());
    }

    #[test]
    fn sheet_has_the_expected_size_and_draws_text() {
        let image = Image {
            width: 4,
            height: 4,
            rgb: vec![200; 48],
        };
        let cells = vec![
            (image.clone(), "hi".to_string()),
            (image.clone(), String::new()),
        ];
        let sheet = contact_sheet(&cells, 2, 8, 2);
        // 2 columns of (32 + 8) px; one row of 32 + 8 + 1 * 10 px: one
        // line is all the longest caption needs.
        assert_eq!((sheet.width, sheet.height), (80, 50));
        // A caption of three lines (4 characters a line) gets the two allowed.
        let long = vec![
            (image.clone(), "one two six".to_string()),
            (image.clone(), String::new()),
        ];
        assert_eq!(contact_sheet(&long, 2, 8, 2).height, 60);
        // Some caption pixels are lit under the first image only.
        let lit = |x0: u32| {
            (36..50).any(|y| (x0..x0 + 32).any(|x| sheet.rgb[((y * 80 + x) * 3) as usize] == 230))
        };
        assert!(lit(4));
        assert!(!lit(44));
    }
}
