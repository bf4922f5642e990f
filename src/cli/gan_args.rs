//! The GAN options `train gan` and `bench learn` share, said once: the
//! learning curve asks its questions with the very flags a training run
//! takes.

use clap::builder::PossibleValuesParser;
use clap::Args;
use gantry::model::{JointNorm, Layers, Upsampling, UPSAMPLINGS};
use gantry::train::gan::{match_negatives, DBatches, NoiseAlong, Variant, WrongImages};
use gantry::train::text_encoder::Matching;

#[derive(Args)]
pub struct GanArgs {
    /// gan, gan-cls, gan-int or gan-int-cls
    #[arg(long, default_value = "gan-int-cls")]
    pub variant: String,
    /// Architecture preset of G and D: reed, small, tiny
    #[arg(long, default_value = "small")]
    pub preset: String,
    /// Real images per step (G draws half as many again, interpolated)
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Adam's learning rate (β1 0.5) for G and D
    #[arg(long, default_value_t = 2e-4)]
    pub lr: f64,
    /// Where D's wrong images (the CLS term) come from: other classes (the
    /// paper), any other image (D then checks every attribute captions
    /// state, not only the class), or siblings, images that differ in one
    /// content attribute alone (data with attributes, e.g. procedural
    /// flowers: D must check the count and the centre, not the colour alone)
    #[arg(long, default_value = "class", value_parser = WrongImages::NAMES)]
    pub wrong: String,
    /// How D's batch norm meets the (real, right), (wrong, right) and
    /// (fake, right) pairs: each kind in a batch of its own (the paper's
    /// code: D can then tell a batch of mismatched pairs by its statistics
    /// without checking any pair), all three in one batch, for D's update
    /// and G's (D must check each pair against its text), or the real and
    /// wrong pairs in one and G's pictures in their own
    #[arg(long, default_value = "separate", value_parser = DBatches::NAMES)]
    pub d_batches: String,
    /// Weight of a text-matching term in G's loss (0: the paper): the text
    /// encoder's frozen image encoder asks each picture to match its own
    /// text better than the batch's other texts (AttnGAN's DAMSM idea)
    #[arg(long, default_value_t = 0.0)]
    pub match_loss: f64,
    /// Weight of a mode-seeking term in G's loss (0: the paper; MSGAN, Mao
    /// et al. 2019): G's two pictures of each text, under two draws of z,
    /// should differ as much as the draws do (needs fresh noise), so that G
    /// keeps using z when D checks each pair
    #[arg(long, default_value_t = 0.0)]
    pub mode_seeking: f64,
    /// How many of each image's ten caption embeddings G and D read averaged
    /// as its text (the paper: 4). 1 gives them single captions, as a person
    /// types one: the variety of phrasing that averaging smooths away
    #[arg(long, default_value_t = gantry::train::gan::PAPER_CAPTIONS_AVERAGED,
          value_parser = clap::value_parser!(u64).range(1..=10))]
    pub captions_averaged: u64,
    /// Spread of Gaussian noise on the text G draws from in training, in
    /// units of each dimension's spread over the training captions (0: the
    /// paper). D judges G's pictures against the clean text, so G learns to
    /// draw a caption's content from embeddings near it, where phrasings it
    /// never saw land
    #[arg(long, default_value_t = 0.0)]
    pub text_noise: f64,
    /// The directions of the text noise: each dimension by its spread over
    /// the training captions (dimensions), the directions in which one
    /// picture's captions differ (phrasings: their covariance about the
    /// picture's mean, phrasing and what a caption leaves out), or those in
    /// which its captions that state the same attributes differ (statements:
    /// phrasing only; the dataset must say what each caption states, as
    /// procedural-flowers does)
    #[arg(long, default_value = "dimensions", value_parser = NoiseAlong::NAMES)]
    pub text_noise_along: String,
    /// Which of the batch's other texts the matching term ranks each
    /// picture's own text above: other classes' (as the paper's loss), or
    /// every other picture's (where a class fixes only part of a caption,
    /// as procedural flowers' colour and shape, so that G is also asked for
    /// the count and the centre)
    #[arg(long, default_value = "class", value_parser = ["class", "image"])]
    pub match_negatives: String,
    /// How G doubles its maps up to the 64x64 pixels: 4x4 transposed
    /// convolutions (the paper), or a nearest-neighbour upsampling and a 3x3
    /// convolution, which draws no checkerboard of its own, at the last
    /// doubling (resize-last) or at every one (resize), or a bilinear
    /// upsampling and a 3x3 convolution at every one (bilinear)
    #[arg(long, default_value = "transposed", value_parser = PossibleValuesParser::new(UPSAMPLINGS))]
    pub upsampling: String,
    /// D also reads how much its features spread over groups of four images
    /// (minibatch standard deviation, Karras et al. 2018): a G that draws one
    /// picture whatever z is stands out
    #[arg(long)]
    pub minibatch_std: bool,
    /// How D normalises its joint layer, where the image's features meet the
    /// text: over the batch (the paper's batch norm, which lets D tell a
    /// batch of mismatched pairs by its statistics) or over each pair's own
    /// map (layer norm: D must check each pair)
    #[arg(long, default_value = "batch", value_parser = JointNorm::NAMES)]
    pub d_joint_norm: String,
    /// Keep an exponential moving average of G's weights with this decay
    /// (e.g. 0.999; 0: none, the paper) and draw with it: training is
    /// unchanged, the model written holds the average (a GAN's G swings
    /// from step to step with D; the average holds still)
    #[arg(long, default_value_t = 0.0)]
    pub g_ema: f64,
    /// Share of G's texts (0 to 1; 0: the paper) read from the same
    /// captions reworded as people type them: small words left out, chat put
    /// in, clauses reordered, terse lists, every stated attribute kept. D
    /// judges G's pictures against the captions as written, so G learns to
    /// draw what a caption says however it is put
    #[arg(long, default_value_t = 0.0)]
    pub reworded: f64,
    /// Weight of a term asking G for the same picture of a caption as
    /// written and reworded (same z; 0: none, the paper): G learns that how a
    /// caption is put does not change what it shows (e.g. 10)
    #[arg(long, default_value_t = 0.0)]
    pub phrasing_consistency: f64,
}

/// Says that the run rewords its training captions first (about a minute
/// before the first step), where its config reads them reworded.
pub fn say_if_rewording(reads_rewordings: bool) {
    if reads_rewordings {
        eprintln!("rewording the training captions as people type them and embedding them (--reworded, --phrasing-consistency)");
    }
}

/// [`GanArgs`] read: the words parsed, what does not go together refused
/// (before any data is read).
pub struct GanChoices {
    pub variant: Variant,
    pub wrong: WrongImages,
    pub d_batches: DBatches,
    pub match_negatives: Matching,
    pub text_noise_along: NoiseAlong,
    pub layers: Layers,
}

impl GanArgs {
    pub fn choices(&self) -> anyhow::Result<GanChoices> {
        gantry::model::ModelConfig::preset(&self.preset)?;
        gantry::train::gan::check_match_loss(self.match_loss)?;
        // The weight alone here; whether the noise is fresh is the caller's.
        gantry::train::gan::check_mode_seeking(self.mode_seeking, true)?;
        gantry::train::gan::check_g_ema(self.g_ema)?;
        gantry::train::gan::check_reworded(self.reworded)?;
        gantry::train::gan::check_phrasing_consistency(self.phrasing_consistency)?;
        Ok(GanChoices {
            variant: Variant::parse(&self.variant)?,
            wrong: WrongImages::parse(&self.wrong)?,
            d_batches: DBatches::parse(&self.d_batches)?,
            match_negatives: match_negatives(&self.match_negatives, self.match_loss)?,
            text_noise_along: NoiseAlong::parse(&self.text_noise_along)?,
            layers: Layers {
                upsampling: Upsampling::parse(&self.upsampling)?,
                minibatch_std: self.minibatch_std,
                d_joint_norm: JointNorm::parse(&self.d_joint_norm)?,
            },
        })
    }
}
