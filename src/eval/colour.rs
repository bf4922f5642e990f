//! Colour on Oxford-102: the petal colour a caption names and the colour a
//! picture mostly is, so that colour accuracy can be read without a probe.

use crate::imageio;

/// The Oxford-102 colour words, in the order the captions use them.
pub const COLOURS: [&str; 8] = [
    "red", "orange", "yellow", "white", "pink", "purple", "blue", "green",
];

/// The petal colour a caption names: its first colour word that is not the
/// centre's ("... with a yellow center").
pub fn caption_colour(caption: &str) -> Option<&'static str> {
    let words: Vec<String> = caption
        .to_lowercase()
        .split(|c: char| c.is_whitespace() || c == ',' || c == '.')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    words.iter().enumerate().find_map(|(i, w)| {
        let c = COLOURS.iter().find(|c| **c == w.as_str())?;
        let next = words.get(i + 1).map(String::as_str);
        (next != Some("center") && next != Some("centre")).then_some(*c)
    })
}

/// The dominant flower colour of an image: the most common colour name over
/// the central half, leaves (green) and shadows discounted.
pub fn dominant_colour(image: &imageio::Image) -> Option<&'static str> {
    let (w, h) = (image.width as usize, image.height as usize);
    let mut votes = [0usize; 8];
    for y in h / 4..3 * h / 4 {
        for x in w / 4..3 * w / 4 {
            let p = &image.rgb[(y * w + x) * 3..][..3];
            let (r, g, b) = (
                p[0] as f64 / 255.0,
                p[1] as f64 / 255.0,
                p[2] as f64 / 255.0,
            );
            let max = r.max(g).max(b);
            let min = r.min(g).min(b);
            let (v, s) = (max, if max > 0.0 { (max - min) / max } else { 0.0 });
            if v < 0.2 {
                continue;
            }
            let hue = if max == min {
                0.0
            } else if max == r {
                (60.0 * (g - b) / (max - min)).rem_euclid(360.0)
            } else if max == g {
                60.0 * (b - r) / (max - min) + 120.0
            } else {
                60.0 * (r - g) / (max - min) + 240.0
            };
            let name = if s < 0.22 {
                if v > 0.65 {
                    3
                } else {
                    continue;
                }
            } else if (70.0..170.0).contains(&hue) {
                continue; // leaves and stems
            } else if !(15.0..345.0).contains(&hue) {
                if s < 0.5 && v > 0.7 {
                    4
                } else {
                    0
                }
            } else if hue < 40.0 {
                1
            } else if hue < 70.0 {
                2
            } else if hue < 260.0 {
                6
            } else if hue < 300.0 {
                5
            } else {
                4
            };
            votes[name] += 1;
        }
    }
    let (best, count) = votes.iter().enumerate().max_by_key(|(_, c)| **c)?;
    (*count > 0).then_some(COLOURS[best])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caption_colour_skips_the_centre() {
        assert_eq!(
            caption_colour("a flower with pink petals with a white center"),
            Some("pink")
        );
        assert_eq!(
            caption_colour("this flower has a yellow center and white petals"),
            Some("white")
        );
        assert_eq!(caption_colour("a picture of a thorn apple"), None);
        assert_eq!(caption_colour("a pink-yellow dahlia"), None);
    }

    #[test]
    fn dominant_colour_names_plain_colours() {
        let solid = |rgb: [u8; 3]| imageio::Image {
            width: 8,
            height: 8,
            rgb: rgb.repeat(64),
        };
        assert_eq!(dominant_colour(&solid([220, 30, 40])), Some("red"));
        assert_eq!(dominant_colour(&solid([245, 245, 240])), Some("white"));
        assert_eq!(dominant_colour(&solid([245, 215, 50])), Some("yellow"));
        assert_eq!(dominant_colour(&solid([120, 45, 165])), Some("purple"));
        assert_eq!(dominant_colour(&solid([30, 140, 40])), None);
    }
}
