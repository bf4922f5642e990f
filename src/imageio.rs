//! Images in and out: tensors <-> RGB bytes, photos read for `:style`, and
//! PNGs written with their provenance in text chunks.

use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;
use tch::{Kind, Tensor};

/// Side of the square images the model works on.
pub const IMAGE_SIZE: u32 = 64;

/// An 8-bit RGB image, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

/// [B, 3, H, W] in [-1, 1] (any device) -> B images.
pub fn images_from_tensor(t: &Tensor) -> Result<Vec<Image>> {
    let (batch, channels, height, width) = t.size4().context("expected a [B, 3, H, W] tensor")?;
    if channels != 3 {
        bail!("expected 3 channels, got {channels}");
    }
    let bytes = ((t.detach().to_device(tch::Device::Cpu).to_kind(Kind::Float) + 1.0) * 127.5)
        .round()
        .clamp(0.0, 255.0)
        .to_kind(Kind::Uint8)
        .permute([0, 2, 3, 1])
        .contiguous();
    let flat = Vec::<u8>::try_from(bytes.view([-1])).context("copying image bytes")?;
    let per = (height * width * 3) as usize;
    Ok(flat
        .chunks(per)
        .take(batch as usize)
        .map(|c| Image {
            width: width as u32,
            height: height as u32,
            rgb: c.to_vec(),
        })
        .collect())
}

/// Images (all the same size) -> [B, 3, H, W] in [-1, 1] on the CPU.
pub fn tensor_from_images(images: &[Image]) -> Result<Tensor> {
    let first = images.first().ok_or_else(|| anyhow!("no images"))?;
    if images
        .iter()
        .any(|i| i.width != first.width || i.height != first.height)
    {
        bail!("images differ in size");
    }
    let flat: Vec<u8> = images.iter().flat_map(|i| i.rgb.iter().copied()).collect();
    let t = Tensor::from_slice(&flat)
        .view([
            images.len() as i64,
            first.height as i64,
            first.width as i64,
            3,
        ])
        .permute([0, 3, 1, 2])
        .to_kind(Kind::Float);
    Ok(t / 127.5 - 1.0)
}

/// Reads a photo for style transfer: centre-cropped to a square, resized to
/// 64x64. Missing, unreadable and non-image files are errors naming the file.
pub fn load_photo(path: &Path) -> Result<Image> {
    if !path.exists() {
        bail!("{}: no such file", path.display());
    }
    let decoded = image::ImageReader::open(path)
        .with_context(|| format!("{}: cannot open", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("{}: cannot read", path.display()))?
        .decode()
        .map_err(|e| anyhow!("{}: not a readable image ({e})", path.display()))?;
    let side = decoded.width().min(decoded.height());
    if side == 0 {
        bail!("{}: the image is empty", path.display());
    }
    let x = (decoded.width() - side) / 2;
    let y = (decoded.height() - side) / 2;
    let square = decoded.crop_imm(x, y, side, side);
    let small = square
        .resize_exact(
            IMAGE_SIZE,
            IMAGE_SIZE,
            image::imageops::FilterType::Triangle,
        )
        .to_rgb8();
    Ok(Image {
        width: IMAGE_SIZE,
        height: IMAGE_SIZE,
        rgb: small.into_raw(),
    })
}

/// Writes a PNG with `metadata` as text chunks (see [`encode_png`]), atomically.
pub fn write_png(path: &Path, image: &Image, metadata: &[(String, String)]) -> Result<()> {
    let bytes = encode_png(image, metadata)?;
    crate::weights::write_atomic(path, &bytes)
        .with_context(|| format!("writing {}", path.display()))
}

/// A PNG's bytes with `metadata` as text chunks: tEXt for the values that are
/// Latin-1, first, then iTXt for the others, so that [`png_metadata`] reads
/// them back in the order given whenever the Latin-1 ones come first.
/// Keywords must be 1 to 79 Latin-1 characters and values without NUL, as PNG
/// requires: anything else is an error naming the key.
pub fn encode_png(image: &Image, metadata: &[(String, String)]) -> Result<Vec<u8>> {
    let latin1 = |s: &str| s.chars().all(|c| (c as u32) < 256);
    for (key, value) in metadata {
        let n = key.chars().count();
        if n == 0 || n > 79 || !latin1(key) || key.contains('\0') || value.contains('\0') {
            bail!("cannot store '{key}' in a PNG (keys are 1-79 Latin-1 characters, values have no NUL)");
        }
    }
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, image.width, image.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let (plain, wide): (Vec<_>, Vec<_>) = metadata.iter().partition(|(_, v)| latin1(v));
        for (key, value) in plain {
            encoder.add_text_chunk(key.clone(), value.clone())?;
        }
        for (key, value) in wide {
            encoder.add_itxt_chunk(key.clone(), value.clone())?;
        }
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&image.rgb)?;
        writer.finish()?;
    }
    Ok(bytes)
}

/// The pixels of a PNG as they are (no resizing), as RGB.
pub fn read_png_pixels(path: &Path) -> Result<Image> {
    let rgb = image::open(path)
        .with_context(|| format!("{}: not a readable image", path.display()))?
        .to_rgb8();
    Ok(Image {
        width: rgb.width(),
        height: rgb.height(),
        rgb: rgb.into_raw(),
    })
}

/// The text chunks of a PNG, in file order.
pub fn read_png_metadata(path: &Path) -> Result<Vec<(String, String)>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    png_metadata(std::io::BufReader::new(file), &path.display().to_string())
}

/// The text chunks of PNG bytes from `reader` (`origin` names them in errors).
pub fn png_metadata(
    reader: impl std::io::BufRead + std::io::Seek,
    origin: &str,
) -> Result<Vec<(String, String)>> {
    // Only the chunks before the pixels are read: no image is decoded here
    // (and the decoder's 64 MiB allocation limit holds).
    let decoder = png::Decoder::new(reader);
    let reader = decoder
        .read_info()
        .map_err(|e| anyhow!("{origin}: not a readable PNG ({e})"))?;
    let info = reader.info();
    let mut out: Vec<(String, String)> = info
        .uncompressed_latin1_text
        .iter()
        .map(|c| (c.keyword.clone(), c.text.clone()))
        .collect();
    for chunk in &info.utf8_text {
        if let Ok(text) = chunk.get_text() {
            out.push((chunk.keyword.clone(), text));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_round_trip_keeps_pixels() {
        let image = Image {
            width: 2,
            height: 1,
            rgb: vec![0, 128, 255, 10, 20, 30],
        };
        let t = tensor_from_images(std::slice::from_ref(&image)).unwrap();
        assert_eq!(t.size(), vec![1, 3, 1, 2]);
        assert_eq!(images_from_tensor(&t).unwrap()[0], image);
    }

    #[test]
    fn png_metadata_round_trips_including_unicode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.png");
        let image = Image {
            width: 1,
            height: 1,
            rgb: vec![1, 2, 3],
        };
        let meta = vec![
            ("caption".to_string(), "a red flower".to_string()),
            ("note".to_string(), "fleur 🌸".to_string()),
        ];
        write_png(&path, &image, &meta).unwrap();
        assert_eq!(read_png_metadata(&path).unwrap(), meta);
    }

    #[test]
    fn bad_photos_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.png");
        assert!(format!("{:#}", load_photo(&missing).unwrap_err())
            .contains("missing.png: no such file"));
        let text = dir.path().join("notes.png");
        std::fs::write(&text, "not an image").unwrap();
        let err = format!("{:#}", load_photo(&text).unwrap_err());
        assert!(err.contains("notes.png"), "{err}");
    }
}
