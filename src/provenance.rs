//! What a PNG records so that its picture can be remade (product.md), as one
//! type, written and read here only: the REPL, scripts and the CLI all make
//! their PNGs' text chunks with [`Provenance::to_pairs`], and `:replay` reads
//! them with [`Provenance::from_pairs`].

use anyhow::{bail, Context, Result};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Provenance {
    pub caption: String,
    /// The line that made it (a caption, or a `:command`).
    pub command: String,
    pub model: String,
    /// [`crate::weights::ModelCard::weights_fingerprint`] of the model that
    /// drew it (empty in PNGs of gantry before session 23).
    pub weights: String,
    pub sampler: String,
    /// The sampler's options in force, `key=value` words.
    pub sampler_options: String,
    pub style_encoder: String,
    pub device: String,
    /// "gantry VERSION" (the PNG `Software` keyword).
    pub software: String,
    pub seed: Option<u64>,
    pub batch: Option<Batch>,
    pub style: Option<Style>,
    /// A contact sheet of this many pictures (not one picture).
    pub sheet: Option<u64>,
    /// Text chunks this gantry does not read, kept as they were.
    pub other: Vec<(String, String)>,
}

/// Where in what it was made with a picture is: `n` pictures from seed
/// `first_seed` (a caption's batch), or only its `index` in a row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    pub n: Option<u64>,
    pub first_seed: Option<u64>,
    pub index: u64,
}

/// A style transfer's source and its style code z, exactly.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Style {
    /// What the user named (a file or a `#id`), for people.
    pub source: String,
    pub source_sha256: Option<String>,
    /// z as [`crate::runtime::style_code_text`] writes it.
    pub code: Option<String>,
}

impl Batch {
    fn text(&self) -> String {
        let mut words = Vec::new();
        if let Some(n) = self.n {
            words.push(format!("n={n}"));
        }
        if let Some(first) = self.first_seed {
            words.push(format!("first_seed={first}"));
        }
        words.push(format!("index={}", self.index));
        words.join(" ")
    }

    fn parse(text: &str) -> Result<Self> {
        let mut batch = Batch::default();
        for word in text.split_whitespace() {
            let (key, value) = word
                .split_once('=')
                .with_context(|| format!("'{word}' is not key=value"))?;
            let number: u64 = value
                .parse()
                .with_context(|| format!("{key}={value}: not a whole number"))?;
            match key {
                "n" => batch.n = Some(number),
                "first_seed" => batch.first_seed = Some(number),
                "index" => batch.index = number,
                _ => bail!("unknown field '{key}'"),
            }
        }
        Ok(batch)
    }
}

impl Provenance {
    /// The PNG text chunks, in a fixed order.
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        let mut m: Vec<(String, String)> = [
            ("caption", &self.caption),
            ("command", &self.command),
            ("model", &self.model),
            ("model_weights", &self.weights),
            ("sampler", &self.sampler),
            ("sampler_options", &self.sampler_options),
            ("style_encoder", &self.style_encoder),
            ("device", &self.device),
            ("Software", &self.software),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
        if let Some(seed) = self.seed {
            m.push(("seed".into(), seed.to_string()));
        }
        if let Some(batch) = &self.batch {
            m.push(("batch".into(), batch.text()));
        }
        if let Some(style) = &self.style {
            m.push(("style_source".into(), style.source.clone()));
            if let Some(hash) = &style.source_sha256 {
                m.push(("style_source_sha256".into(), hash.clone()));
            }
            if let Some(code) = &style.code {
                m.push(("style_code".into(), code.clone()));
            }
        }
        if let Some(n) = self.sheet {
            m.push(("sheet".into(), n.to_string()));
        }
        m.extend(self.other.iter().cloned());
        m
    }

    /// Reads text chunks back (a PNG is outside input: a number that is not
    /// one is an error naming its key; keys not known are kept in `other`).
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self> {
        let mut p = Provenance::default();
        let mut style = Style::default();
        let mut styled = false;
        for (key, value) in pairs {
            let number = || -> Result<u64> {
                value
                    .trim()
                    .parse()
                    .with_context(|| format!("its {key} '{value}' is not a whole number"))
            };
            match key.as_str() {
                "caption" => p.caption = value.clone(),
                "command" => p.command = value.clone(),
                "model" => p.model = value.clone(),
                "model_weights" => p.weights = value.clone(),
                "sampler" => p.sampler = value.clone(),
                "sampler_options" => p.sampler_options = value.clone(),
                "style_encoder" => p.style_encoder = value.clone(),
                "device" => p.device = value.clone(),
                "Software" => p.software = value.clone(),
                "seed" => p.seed = Some(number()?),
                "sheet" => p.sheet = Some(number()?),
                "batch" => {
                    p.batch =
                        Some(Batch::parse(value).with_context(|| format!("its batch '{value}'"))?)
                }
                "style_source" => (style.source, styled) = (value.clone(), true),
                "style_source_sha256" => {
                    (style.source_sha256, styled) = (Some(value.clone()), true)
                }
                "style_code" => (style.code, styled) = (Some(value.clone()), true),
                _ => p.other.push((key.clone(), value.clone())),
            }
        }
        if styled {
            p.style = Some(style);
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip_and_bad_numbers_name_their_key() {
        let p = Provenance {
            caption: "a red flower".into(),
            command: ":interp \"a\" \"b\" 5".into(),
            model: "m".into(),
            weights: "0123456789abcdef".into(),
            sampler: "truncated".into(),
            sampler_options: "psi=0.5".into(),
            style_encoder: "learned".into(),
            device: "cpu".into(),
            software: "gantry 0.1.0".into(),
            seed: Some(7),
            batch: Some(Batch {
                n: Some(4),
                first_seed: Some(7),
                index: 2,
            }),
            style: Some(Style {
                source: "#1.1".into(),
                source_sha256: Some("ab".into()),
                code: Some("00000000".into()),
            }),
            sheet: None,
            other: vec![("note".into(), "kept".into())],
        };
        assert_eq!(Provenance::from_pairs(&p.to_pairs()).unwrap(), p);
        let bad = vec![("seed".to_string(), "seven".to_string())];
        let err = format!("{:#}", Provenance::from_pairs(&bad).unwrap_err());
        assert!(err.contains("seed 'seven'"), "{err}");
        let bad = vec![("batch".to_string(), "n=x index=0".to_string())];
        assert!(Provenance::from_pairs(&bad).is_err());
    }
}
