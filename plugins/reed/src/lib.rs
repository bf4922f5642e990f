//! `reed`: datasets in the layout of Reed et al.'s CUB and Oxford-102 caption
//! sets: `text_c10/<class>/<image>.txt` (10 captions each), the images in a
//! folder (`jpg76/`, `jpg144/`, `images/`, or as chosen), and the class lists
//! `allclasses.txt`, `trainvalclasses.txt`, `testclasses.txt`.
//!
//! The path may also be a `text_c10` folder itself (captions only, as the CUB
//! fixtures are). Every malformed file is reported by path; `on_error=skip`
//! (the default) leaves it out, `on_error=stop` refuses the dataset.
//!
//! Options: `size` (76 or 144: picks `jpg76/` or `jpg144/`), `images` (a
//! folder name under the root), `on_error` (skip or stop), `captions` (how
//! many a file must hold, default 10).

use gantry_plugin_api::{declare_dataset_loader, ClassInfo, DatasetLoader, Options, Sample};
use std::path::{Path, PathBuf};

struct Entry {
    class: u32,
    name: String,
    captions: Vec<String>,
    image: Option<PathBuf>,
}

pub struct Reed {
    entries: Vec<Entry>,
    classes: Vec<ClassInfo>,
    has_images: bool,
    problems: Vec<String>,
}

fn read_list(path: &Path) -> Result<Option<Vec<String>>, String> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Some(
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
    ))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .collect();
    paths.sort();
    Ok(paths)
}

/// Reads one caption file; `Err` is the problem to report.
fn read_captions(path: &Path, needed: usize) -> Result<Vec<String>, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("{}: cannot read ({e})", path.display()))?;
    let text =
        String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8 text", path.display()))?;
    let captions: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if captions.is_empty() {
        return Err(format!("{}: empty caption file", path.display()));
    }
    if captions.len() < needed {
        return Err(format!(
            "{}: {} captions, {needed} expected",
            path.display(),
            captions.len()
        ));
    }
    Ok(captions)
}

fn find_image(dir: &Path, class: &str, stem: &str) -> Option<PathBuf> {
    for ext in ["jpg", "jpeg", "png", "JPG"] {
        for candidate in [
            dir.join(format!("{stem}.{ext}")),
            dir.join(class).join(format!("{stem}.{ext}")),
        ] {
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

impl DatasetLoader for Reed {
    fn open(path: &str, options: &Options) -> Result<Self, String> {
        options.check_known(&["size", "images", "on_error", "captions"])?;
        let stop = match options.get("on_error").unwrap_or("skip") {
            "skip" => false,
            "stop" => true,
            other => return Err(format!("on_error must be skip or stop (got {other})")),
        };
        let needed: usize = options.parsed("captions", 10)?;
        if path.is_empty() {
            return Err("reed needs a path: reed:PATH/TO/DATASET".to_string());
        }
        let root = Path::new(path);
        if !root.is_dir() {
            return Err(format!("{path}: no such folder"));
        }
        let text_dir = if root.join("text_c10").is_dir() {
            root.join("text_c10")
        } else {
            root.to_path_buf()
        };

        let images_dir = match (options.get("images"), options.get("size")) {
            (Some(name), _) => {
                let dir = root.join(name);
                if !dir.is_dir() {
                    return Err(format!("{}: no such image folder", dir.display()));
                }
                Some(dir)
            }
            (None, Some(size)) => {
                let dir = root.join(format!("jpg{size}"));
                if !dir.is_dir() {
                    return Err(format!(
                        "{}: no such image folder (size={size})",
                        dir.display()
                    ));
                }
                Some(dir)
            }
            (None, None) => ["jpg76", "jpg144", "images", "jpg"]
                .iter()
                .map(|d| root.join(d))
                .find(|d| d.is_dir()),
        };

        let class_names = match read_list(&root.join("allclasses.txt"))? {
            Some(list) => list,
            None => sorted_entries(&text_dir)?
                .into_iter()
                .filter(|p| p.is_dir())
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect(),
        };
        if class_names.is_empty() {
            return Err(format!(
                "{}: no class folders with caption files",
                text_dir.display()
            ));
        }
        let test_classes = read_list(&root.join("testclasses.txt"))?.unwrap_or_default();
        let classes: Vec<ClassInfo> = class_names
            .iter()
            .map(|name| ClassInfo {
                name: name.clone(),
                held_out: test_classes.contains(name),
            })
            .collect();

        let mut problems = Vec::new();
        let mut entries = Vec::new();
        let mut captioned = std::collections::HashSet::new();
        for (class, name) in class_names.iter().enumerate() {
            let dir = text_dir.join(name);
            if !dir.is_dir() {
                problems.push(format!(
                    "{}: class folder listed in allclasses.txt is missing",
                    dir.display()
                ));
                continue;
            }
            for file in sorted_entries(&dir)? {
                if file.extension().is_none_or(|e| e != "txt") {
                    continue;
                }
                let stem = file
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                captioned.insert(stem.clone());
                let captions = match read_captions(&file, needed) {
                    Ok(c) => c,
                    Err(problem) => {
                        problems.push(problem);
                        continue;
                    }
                };
                let image = match &images_dir {
                    None => None,
                    Some(images) => match find_image(images, name, &stem) {
                        Some(p) => match image::ImageReader::open(&p)
                            .and_then(|r| r.with_guessed_format())
                            .map(|r| r.into_dimensions())
                        {
                            Ok(Ok(_)) => Some(p),
                            _ => {
                                problems
                                    .push(format!("{}: corrupt or unreadable image", p.display()));
                                continue;
                            }
                        },
                        None => {
                            problems.push(format!(
                                "{}: no image {stem}.jpg in {}",
                                file.display(),
                                images.display()
                            ));
                            continue;
                        }
                    },
                };
                entries.push(Entry {
                    class: class as u32,
                    name: stem,
                    captions,
                    image,
                });
            }
        }
        // Images that no caption file describes.
        if let Some(images) = &images_dir {
            for p in sorted_entries(images)? {
                if p.is_file() {
                    let stem = p
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    if !captioned.contains(&stem) {
                        problems.push(format!("{}: no caption file", p.display()));
                    }
                }
            }
        }
        if stop && !problems.is_empty() {
            return Err(format!(
                "{} problem(s) in the data (on_error=stop); the first: {}",
                problems.len(),
                problems[0]
            ));
        }
        if entries.is_empty() {
            return Err(format!(
                "{path}: no usable samples ({} problems)",
                problems.len()
            ));
        }
        Ok(Self {
            entries,
            classes,
            has_images: images_dir.is_some(),
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
        self.has_images
    }

    fn get(&mut self, index: usize) -> Result<Sample, String> {
        let e = &self.entries[index];
        let (width, height, pixels) = match &e.image {
            None => (0, 0, Vec::new()),
            Some(p) => {
                let rgb = image::open(p)
                    .map_err(|err| format!("{}: corrupt image ({err})", p.display()))?
                    .to_rgb8();
                (rgb.width(), rgb.height(), rgb.into_raw())
            }
        };
        Ok(Sample {
            width,
            height,
            pixels,
            captions: e.captions.clone(),
            class: e.class,
            attributes: Vec::new(),
            name: e.name.clone(),
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
    Reed,
    name = "reed",
    description =
        "Reed's layout: text_c10/<class>/<image>.txt + images + class lists (CUB, Oxford-102)"
);

#[cfg(test)]
mod tests {
    use super::*;

    /// A small Reed-layout dataset: 2 classes, 3 images each, all well-formed.
    fn make(root: &Path) {
        std::fs::write(root.join("allclasses.txt"), "class_a\nclass_b\n").unwrap();
        std::fs::write(root.join("trainvalclasses.txt"), "class_a\n").unwrap();
        std::fs::write(root.join("testclasses.txt"), "class_b\n").unwrap();
        std::fs::create_dir_all(root.join("jpg76")).unwrap();
        for (c, class) in ["class_a", "class_b"].iter().enumerate() {
            std::fs::create_dir_all(root.join("text_c10").join(class)).unwrap();
            for i in 0..3 {
                let stem = format!("image_{c}{i}");
                let lines: Vec<String> =
                    (0..10).map(|k| format!("caption {k} of {stem}")).collect();
                std::fs::write(
                    root.join("text_c10")
                        .join(class)
                        .join(format!("{stem}.txt")),
                    lines.join("\n"),
                )
                .unwrap();
                image::RgbImage::from_pixel(8, 6, image::Rgb([c as u8 * 100, i as u8, 7]))
                    .save(root.join("jpg76").join(format!("{stem}.png")))
                    .unwrap();
            }
        }
    }

    fn open(root: &Path, extra: &str) -> Result<Reed, String> {
        Reed::open(root.to_str().unwrap(), &Options::parse(extra).unwrap())
    }

    #[test]
    fn reads_a_well_formed_set() {
        let dir = tempfile::tempdir().unwrap();
        make(dir.path());
        let mut reed = open(dir.path(), "").unwrap();
        assert_eq!(reed.len(), 6);
        assert!(reed.problems().is_empty(), "{:?}", reed.problems());
        assert_eq!(reed.classes().len(), 2);
        assert!(reed.classes()[1].held_out && !reed.classes()[0].held_out);
        let s = reed.get(4).unwrap();
        assert_eq!((s.width, s.height, s.class), (8, 6, 1));
        assert_eq!(s.captions.len(), 10);
        assert_eq!(s.pixels[0], 100);
    }

    /// Each kind of damage is reported naming the file and the sample is
    /// skipped; with on_error=stop the dataset is refused.
    #[test]
    fn malformed_files_are_reported_and_skipped_or_stop() {
        type Damage = fn(&Path);
        let cases: [(&str, Damage, &str); 6] = [
            (
                "missing caption file",
                |r| std::fs::remove_file(r.join("text_c10/class_a/image_00.txt")).unwrap(),
                "image_00.png: no caption file",
            ),
            (
                "empty file",
                |r| std::fs::write(r.join("text_c10/class_a/image_00.txt"), "").unwrap(),
                "image_00.txt: empty caption file",
            ),
            (
                "not UTF-8",
                |r| {
                    std::fs::write(r.join("text_c10/class_a/image_00.txt"), [0xff, 0xfe, 0x41])
                        .unwrap()
                },
                "image_00.txt: not UTF-8",
            ),
            (
                "short file",
                |r| {
                    std::fs::write(r.join("text_c10/class_a/image_00.txt"), "one\ntwo\nthree")
                        .unwrap()
                },
                "image_00.txt: 3 captions, 10 expected",
            ),
            (
                "missing image",
                |r| std::fs::remove_file(r.join("jpg76/image_00.png")).unwrap(),
                "image_00.txt: no image image_00.jpg",
            ),
            (
                "corrupt image",
                |r| {
                    std::fs::write(r.join("jpg76/image_00.png"), b"\x89PNG\r\n\x1a\nbroken")
                        .unwrap()
                },
                "image_00.png: corrupt or unreadable image",
            ),
        ];
        for (what, damage, expected) in cases {
            let dir = tempfile::tempdir().unwrap();
            make(dir.path());
            damage(dir.path());
            let reed = open(dir.path(), "").unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(reed.len(), 5, "{what}: the damaged sample is skipped");
            assert_eq!(reed.problems().len(), 1, "{what}: {:?}", reed.problems());
            assert!(
                reed.problems()[0].contains(expected),
                "{what}: {:?}",
                reed.problems()
            );
            let err = open(dir.path(), "on_error=stop").err().unwrap();
            assert!(
                err.contains("on_error=stop") && err.contains(expected),
                "{what}: {err}"
            );
        }
    }

    #[test]
    fn bad_paths_and_options_are_errors() {
        assert!(open(Path::new("/nonexistent/x"), "")
            .err()
            .unwrap()
            .contains("no such folder"));
        let dir = tempfile::tempdir().unwrap();
        make(dir.path());
        assert!(open(dir.path(), "size=144")
            .err()
            .unwrap()
            .contains("jpg144"));
        assert!(open(dir.path(), "on_error=maybe")
            .err()
            .unwrap()
            .contains("skip or stop"));
        assert!(open(dir.path(), "colour=red")
            .err()
            .unwrap()
            .contains("unknown option"));
    }
}
