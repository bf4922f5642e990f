//! `imagefolder`: a folder of images described by `metadata.jsonl`, one JSON
//! object per line with `file_name` and either `text` (one caption) or
//! `captions` (a list), and optionally `class` (a name). The common layout
//! of captioned image sets today.
//!
//! Options: `on_error` (skip or stop).

use gantry_plugin_api::{declare_dataset_loader, ClassInfo, DatasetLoader, Options, Sample};
use std::path::{Path, PathBuf};

struct Entry {
    path: PathBuf,
    captions: Vec<String>,
    class: u32,
}

pub struct ImageFolder {
    entries: Vec<Entry>,
    classes: Vec<ClassInfo>,
    problems: Vec<String>,
}

impl DatasetLoader for ImageFolder {
    fn open(path: &str, options: &Options) -> Result<Self, String> {
        options.check_known(&["on_error"])?;
        let stop = match options.get("on_error").unwrap_or("skip") {
            "skip" => false,
            "stop" => true,
            other => return Err(format!("on_error must be skip or stop (got {other})")),
        };
        let root = Path::new(path);
        let metadata = root.join("metadata.jsonl");
        let text = std::fs::read_to_string(&metadata)
            .map_err(|e| format!("{}: {e}", metadata.display()))?;
        let mut entries = Vec::new();
        let mut class_names: Vec<String> = Vec::new();
        let mut problems = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let at = format!("{}:{}", metadata.display(), i + 1);
            let value: serde_json::Value = match serde_json::from_str(line) {
                Ok(v) => v,
                Err(e) => {
                    problems.push(format!("{at}: not JSON ({e})"));
                    continue;
                }
            };
            let Some(file_name) = value.get("file_name").and_then(|v| v.as_str()) else {
                problems.push(format!("{at}: no file_name"));
                continue;
            };
            let captions: Vec<String> = match (value.get("text"), value.get("captions")) {
                (Some(serde_json::Value::String(t)), _) => vec![t.clone()],
                (_, Some(serde_json::Value::Array(list))) => list
                    .iter()
                    .filter_map(|c| c.as_str())
                    .map(str::to_string)
                    .collect(),
                _ => Vec::new(),
            };
            let captions: Vec<String> = captions
                .into_iter()
                .filter(|c| !c.trim().is_empty())
                .collect();
            if captions.is_empty() {
                problems.push(format!("{at}: {file_name} has no text or captions"));
                continue;
            }
            let image = root.join(file_name);
            if !image.is_file() {
                problems.push(format!("{at}: {} does not exist", image.display()));
                continue;
            }
            let class_name = value
                .get("class")
                .and_then(|v| v.as_str())
                .unwrap_or("all")
                .to_string();
            let class = match class_names.iter().position(|c| *c == class_name) {
                Some(c) => c,
                None => {
                    class_names.push(class_name);
                    class_names.len() - 1
                }
            };
            entries.push(Entry {
                path: image,
                captions,
                class: class as u32,
            });
        }
        if stop && !problems.is_empty() {
            return Err(format!(
                "{} problem(s) (on_error=stop); the first: {}",
                problems.len(),
                problems[0]
            ));
        }
        if entries.is_empty() {
            return Err(format!("{}: no usable samples", metadata.display()));
        }
        Ok(Self {
            entries,
            classes: class_names
                .into_iter()
                .map(|name| ClassInfo {
                    name,
                    held_out: false,
                })
                .collect(),
            problems,
        })
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn classes(&self) -> &[ClassInfo] {
        &self.classes
    }

    fn has_images(&self) -> bool {
        true
    }

    fn get(&mut self, index: usize) -> Result<Sample, String> {
        let e = &self.entries[index];
        let rgb = image::open(&e.path)
            .map_err(|err| format!("{}: corrupt image ({err})", e.path.display()))?
            .to_rgb8();
        Ok(Sample {
            width: rgb.width(),
            height: rgb.height(),
            pixels: rgb.into_raw(),
            captions: e.captions.clone(),
            class: e.class,
            attributes: Vec::new(),
            name: e
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        })
    }

    fn class_of(&self, index: usize) -> u32 {
        self.entries[index].class
    }

    fn caption_count(&self, index: usize) -> usize {
        self.entries[index].captions.len()
    }

    fn problems(&self) -> &[String] {
        &self.problems
    }
}

declare_dataset_loader!(
    ImageFolder,
    name = "imagefolder",
    description = "a folder of images with metadata.jsonl (file_name + text or captions)"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_text_and_caption_lists_and_reports_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a.png", "b.png"] {
            image::RgbImage::from_pixel(4, 4, image::Rgb([1, 2, 3]))
                .save(dir.path().join(name))
                .unwrap();
        }
        std::fs::write(
            dir.path().join("metadata.jsonl"),
            concat!(
                "{\"file_name\": \"a.png\", \"text\": \"a red flower\"}\n",
                "{\"file_name\": \"b.png\", \"captions\": [\"one\", \"two\"], \"class\": \"roses\"}\n",
                "{\"file_name\": \"missing.png\", \"text\": \"x\"}\n",
                "not json\n",
            ),
        )
        .unwrap();
        let path = dir.path().to_str().unwrap();
        let mut set = ImageFolder::open(path, &Options::default()).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(set.classes().len(), 2);
        assert_eq!(set.get(1).unwrap().captions, vec!["one", "two"]);
        assert_eq!(set.problems().len(), 2, "{:?}", set.problems());
        assert!(set.problems()[0].contains("missing.png does not exist"));
        assert!(set.problems()[1].contains(":4: not JSON"));
        let stop = Options::parse("on_error=stop").unwrap();
        assert!(ImageFolder::open(path, &stop).is_err());
    }
}
