//! A user's ONNX image classifier, run on the CPU by tract (pure Rust, no system library).
//!
//! The model takes one float32 image tensor, `[batch, C, H, W]` or flattened to
//! `[batch, C*H*W]`, and returns `[batch, K]` logits or probabilities. Pixels are scaled to
//! `[0, 1]` and then normalized with `--normalize`. The input's name and shape come from the
//! graph and are checked against the dataset before anything runs.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use toploss_data::ImageShape;
use tract_onnx::prelude::{
    DatumExt, DatumType, Framework, InferenceFact, InferenceModel, InferenceModelExt, IntoRunnable,
    IntoTValue, TDim, Tensor, TypedRunnableModel, tvec,
};
use tract_onnx::tract_hir::infer::{Factoid, GenericFactoid};

/// Largest pixel value of the 8-bit images every dataset reader returns.
const PIXEL_MAX: f32 = 255.0;

/// `--normalize`: `x = (x - mean[c]) / std[c]` after scaling pixels to `[0, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub enum Normalize {
    /// Pixels stay in `[0, 1]`.
    None,
    /// One mean and one standard deviation for every channel, or one per channel.
    MeanStd {
        /// Channel means (one value applies to every channel).
        mean: Vec<f32>,
        /// Channel standard deviations, each finite and above 0.
        std: Vec<f32>,
    },
}

impl FromStr for Normalize {
    type Err = String;

    /// Parses `none`, `MEAN,STD` or `M1/M2/M3,S1/S2/S3`. The messages leave out the flag,
    /// because clap puts `invalid value ... for --normalize` before them.
    fn from_str(value: &str) -> Result<Self, String> {
        let value = value.trim();
        if value.eq_ignore_ascii_case("none") {
            return Ok(Normalize::None);
        }
        let Some((mean, std)) = value.split_once(',') else {
            return Err(
                "expected MEAN,STD (e.g. 0.1307,0.3081), M1/M2/M3,S1/S2/S3 for one value per \
                 channel, or none"
                    .to_string(),
            );
        };
        let mean = parse_channel_values(mean, "mean")?;
        let std = parse_channel_values(std, "standard deviation")?;
        if mean.len() != std.len() && mean.len() != 1 && std.len() != 1 {
            return Err(format!(
                "{} means but {} standard deviations; give one value, or the same number of \
                 values (one per channel), on each side of the comma",
                mean.len(),
                std.len()
            ));
        }
        if let Some(bad) = std.iter().find(|s| **s <= 0.0) {
            return Err(format!("standard deviation {bad} is not above 0"));
        }
        Ok(Normalize::MeanStd { mean, std })
    }
}

/// Parses `V` or `V1/V2/...` as finite numbers.
fn parse_channel_values(part: &str, quantity: &str) -> Result<Vec<f32>, String> {
    part.split('/')
        .map(|text| {
            let number: f32 = text.trim().parse().map_err(|_| {
                format!(
                    "{quantity} {:?} is not a number; expected MEAN,STD such as 0.1307,0.3081",
                    text.trim()
                )
            })?;
            if number.is_finite() {
                Ok(number)
            } else {
                Err(format!("{quantity} {number} is not finite"))
            }
        })
        .collect()
}

impl fmt::Display for Normalize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |values: &[f32]| {
            values
                .iter()
                .map(f32::to_string)
                .collect::<Vec<_>>()
                .join("/")
        };
        match self {
            Normalize::None => f.write_str("none"),
            Normalize::MeanStd { mean, std } => write!(f, "{},{}", join(mean), join(std)),
        }
    }
}

impl Normalize {
    /// Returns `(mean, std)` for each of `channels` channels.
    ///
    /// Fails when the values are given per channel for another channel count.
    pub fn per_channel(&self, channels: usize) -> anyhow::Result<Vec<(f32, f32)>> {
        let (mean, std) = match self {
            Normalize::None => return Ok(vec![(0.0, 1.0); channels]),
            Normalize::MeanStd { mean, std } => (mean, std),
        };
        let expand = |values: &[f32], what: &str| -> anyhow::Result<Vec<f32>> {
            match values.len() {
                1 => Ok(vec![values[0]; channels]),
                n if n == channels => Ok(values.to_vec()),
                n => bail!(
                    "invalid --normalize {self}: {n} {what} values, but the images have \
                     {channels} channel{}; give one value, or one per channel",
                    if channels == 1 { "" } else { "s" }
                ),
            }
        };
        let mean = expand(mean, "mean")?;
        let std = expand(std, "standard deviation")?;
        Ok(mean.into_iter().zip(std).collect())
    }
}

/// Layout of one image in the model's input tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputLayout {
    /// `[batch, C, H, W]`.
    Nchw,
    /// `[batch, C*H*W]`, the image flattened in C, H, W order.
    Flat,
}

/// A dimension of the model's input: a number, or a symbol fixed only at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Dim {
    Fixed(usize),
    Dynamic(String),
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Dynamic(name) => f.write_str(name),
        }
    }
}

impl Dim {
    fn from_fact(fact: &GenericFactoid<TDim>) -> Self {
        match fact.concretize() {
            Some(dim) => match dim.as_i64() {
                Some(n) if n >= 0 => Dim::Fixed(n as usize),
                _ => Dim::Dynamic(dim.to_string()),
            },
            None => Dim::Dynamic("?".to_string()),
        }
    }

    /// Returns whether this dimension accepts `n`.
    fn accepts(&self, n: usize) -> bool {
        match self {
            Dim::Fixed(fixed) => *fixed == n,
            Dim::Dynamic(_) => true,
        }
    }
}

/// The graph input that receives the images, as declared in the file.
#[derive(Debug, Clone)]
pub struct ModelInput {
    /// Input name in the graph.
    pub name: String,
    /// Declared shape, symbols included.
    dims: Vec<Dim>,
}

impl ModelInput {
    /// Returns the declared shape as text, e.g. `[batch, 3, 32, 32]`.
    pub fn shape_text(&self) -> String {
        let dims: Vec<String> = self.dims.iter().map(Dim::to_string).collect();
        format!("[{}]", dims.join(", "))
    }

    /// Returns the image size the model requires, when its input is `[batch, C, H, W]` with
    /// fixed C, H and W; `folder:` datasets are resized to it.
    pub fn fixed_image_shape(&self) -> Option<ImageShape> {
        match self.dims.as_slice() {
            [
                _,
                Dim::Fixed(channels),
                Dim::Fixed(height),
                Dim::Fixed(width),
            ] => Some(ImageShape {
                channels: *channels,
                height: *height,
                width: *width,
            }),
            _ => None,
        }
    }
}

/// An ONNX file parsed by tract, not yet bound to an image size and batch.
pub struct LoadedModel {
    /// The file.
    pub path: PathBuf,
    /// `sha256:` and the hex digest of the file.
    pub sha256: String,
    /// The image input.
    pub input: ModelInput,
    model: InferenceModel,
}

/// Parses `path` and finds its image input: `input_name` when given, else the only input.
pub fn load_model(path: &Path, input_name: Option<&str>) -> anyhow::Result<LoadedModel> {
    // Hash first: it also turns a missing or unreadable file into a plain I/O error.
    let sha256 = sha256_of(path)?;
    // Shapes declared inside the graph name the batch symbol (e.g. `batch`), which would
    // conflict with the concrete batch size set below; tract infers them again instead.
    let onnx = tract_onnx::onnx()
        .with_ignore_value_info(true)
        .with_ignore_output_shapes(true);
    let mut model = onnx.model_for_path(path).map_err(|error| {
        anyhow::anyhow!(
            "{} is not an ONNX model that tract can read: {error:#}; export the model with \
             torch.onnx.export (see the user guide) and pass the .onnx file",
            path.display()
        )
    })?;

    // The image input.
    let names = input_names(&model)?;
    let name = match (input_name, names.as_slice()) {
        (Some(wanted), _) if names.iter().any(|name| name == wanted) => wanted.to_string(),
        (Some(wanted), _) => bail!(
            "{} has no input named {wanted:?}; its inputs are {}; pass one of them to \
             --input-name",
            path.display(),
            quoted(&names)
        ),
        (None, []) => bail!(
            "{} declares no input; it cannot take images",
            path.display()
        ),
        (None, [only]) => only.clone(),
        (None, _) => bail!(
            "{} has {} inputs ({}); toploss feeds one image tensor, so pass the image input's \
             name with --input-name. The model then runs only if it does not use the others",
            path.display(),
            names.len(),
            quoted(&names)
        ),
    };
    if names.len() > 1 {
        // The other inputs become unconnected; the optimizer rejects the model later if they
        // are used. NOTE: no test fixture has several inputs, so this path is untested.
        model
            .set_input_names([name.as_str()])
            .with_context(|| format!("{}: cannot select input {name:?}", path.display()))?;
    }

    let fact = model
        .input_fact(0)
        .with_context(|| format!("{}: cannot read the type of input {name:?}", path.display()))?;
    if let Some(datum_type) = fact.datum_type.concretize()
        && datum_type != DatumType::F32
    {
        bail!(
            "{}: input {name:?} has element type {datum_type:?}, but toploss feeds float32 \
             pixels; export the model with a float32 input",
            path.display()
        );
    }
    if fact.shape.is_open() {
        bail!(
            "{}: input {name:?} has no declared shape; export the model with a 4-D input \
             [batch, channels, height, width]",
            path.display()
        );
    }
    let dims = fact.shape.dims().map(Dim::from_fact).collect();
    Ok(LoadedModel {
        path: path.to_path_buf(),
        sha256,
        input: ModelInput { name, dims },
        model,
    })
}

fn input_names(model: &InferenceModel) -> anyhow::Result<Vec<String>> {
    let outlets = model.input_outlets()?;
    Ok(outlets
        .iter()
        .map(|outlet| model.node(outlet.node).name.clone())
        .collect())
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|name| format!("{name:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Returns `sha256:` and the hex SHA-256 of the file, read in a stream.
fn sha256_of(path: &Path) -> anyhow::Result<String> {
    let file = fs::File::open(path)
        .with_context(|| format!("cannot read the ONNX model {}", path.display()))?;
    let mut hasher = Sha256::new();
    io::copy(&mut io::BufReader::new(file), &mut hasher)
        .with_context(|| format!("cannot read the ONNX model {}", path.display()))?;
    let digest = hasher.finalize();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    Ok(format!("sha256:{hex}"))
}

/// A model bound to an image size and a batch size, optimized and ready to run.
pub struct Classifier {
    plan: Arc<TypedRunnableModel>,
    /// Images per run; shorter batches are padded with zero images up to it.
    pub batch: usize,
    /// Whether the model's batch dimension is fixed (so `--batch-size` does not apply).
    pub fixed_batch: bool,
    /// Layout of an image in the input.
    pub layout: InputLayout,
    /// `K`, the width of each output row.
    pub classes: usize,
    image: ImageShape,
    normalize: Vec<(f32, f32)>,
}

impl LoadedModel {
    /// Checks the input against `image`, fixes the batch and optimizes the model.
    ///
    /// `batch_size` applies when the batch dimension is dynamic; a fixed batch (often 1) is
    /// used as it is.
    pub fn prepare(
        self,
        image: ImageShape,
        batch_size: usize,
        normalize: &Normalize,
    ) -> anyhow::Result<Classifier> {
        let (layout, batch_dim) = self.check_input(image)?;
        let (batch, fixed_batch) = match batch_dim {
            Dim::Fixed(0) => bail!(
                "{}: input {:?} has a batch dimension of 0",
                self.path.display(),
                self.input.name
            ),
            Dim::Fixed(n) => (n, true),
            Dim::Dynamic(_) => (batch_size, false),
        };
        let normalize = normalize.per_channel(image.channels)?;

        // Concrete input shape, so that tract can plan every buffer once.
        let shape: Vec<usize> = match layout {
            InputLayout::Nchw => vec![batch, image.channels, image.height, image.width],
            InputLayout::Flat => vec![batch, image.len()],
        };
        let path = self.path.display().to_string();
        let fact: InferenceFact = f32::fact(shape.as_slice()).into();
        let typed = self
            .model
            .with_input_fact(0, fact)
            .and_then(|model| model.into_optimized())
            .map_err(|error| {
                anyhow::anyhow!(
                    "{path}: tract cannot prepare the model for input {:?} of shape {shape:?}: \
                     {error:#}",
                    self.input.name
                )
            })?;

        // The output: [batch, K], or [batch, K, 1, ...].
        let output = typed
            .output_fact(0)
            .with_context(|| format!("{path}: the model has no output"))?;
        let output_dims = output.shape.as_concrete().map(<[usize]>::to_vec);
        let classes = match output_dims.as_deref() {
            Some([b, k, rest @ ..]) if *b == batch && rest.iter().all(|&d| d == 1) => *k,
            _ => bail!(
                "{path}: the first output has shape {:?} for a batch of {batch}, but toploss \
                 needs [batch, classes] (one row of class scores per image)",
                output.shape.to_tvec()
            ),
        };
        if classes < 2 {
            bail!("{path}: the output has {classes} class column; a classifier needs at least 2");
        }
        if !output.datum_type.is_float() {
            bail!(
                "{path}: the output has element type {:?}; toploss needs float scores",
                output.datum_type
            );
        }
        let plan = typed
            .into_runnable()
            .map_err(|error| anyhow::anyhow!("{path}: cannot plan the model: {error:#}"))?;
        Ok(Classifier {
            plan,
            batch,
            fixed_batch,
            layout,
            classes,
            image,
            normalize,
        })
    }

    /// Compares the declared input with the dataset's image shape and returns the layout and
    /// the batch dimension.
    fn check_input(&self, image: ImageShape) -> anyhow::Result<(InputLayout, Dim)> {
        let dims = &self.input.dims;
        let data = format!(
            "the dataset's images are {}x{}x{} (channels x height x width)",
            image.channels, image.height, image.width
        );
        let wants = format!(
            "{} wants input {:?} of shape {}",
            self.path.display(),
            self.input.name,
            self.input.shape_text()
        );
        match dims.as_slice() {
            [batch, channels, height, width] => {
                if channels.accepts(image.channels)
                    && height.accepts(image.height)
                    && width.accepts(image.width)
                {
                    return Ok((InputLayout::Nchw, batch.clone()));
                }
                // A channels-last model shows the same numbers in another order.
                let channels_last = height.accepts(image.height)
                    && channels.accepts(image.width)
                    && width.accepts(image.channels)
                    && !channels.accepts(image.channels);
                let hint = if channels_last {
                    "; the model looks channels-last (NHWC): export it with a [batch, \
                     channels, height, width] input"
                } else {
                    "; pass a dataset of that image size, or a model made for these images"
                };
                bail!(
                    "{wants} ({}x{}x{} images), but {data}{hint}",
                    channels,
                    height,
                    width
                )
            }
            [batch, features] => {
                if features.accepts(image.len()) {
                    return Ok((InputLayout::Flat, batch.clone()));
                }
                bail!(
                    "{wants} ({features} values per image), but {data} = {} values",
                    image.len()
                )
            }
            _ => bail!(
                "{wants}, a {}-D input, but toploss feeds images as [batch, channels, height, \
                 width] (or flattened to [batch, values]); {data}",
                dims.len()
            ),
        }
    }
}

impl Classifier {
    /// Runs the model on images given as raw 8-bit pixels, `n x C x H x W`, and returns
    /// `n x K` scores, row-major. `n` may be below the batch; the run is then padded with
    /// zero images, whose outputs are dropped.
    ///
    /// # Shapes
    /// - pixels: `[n, C, H, W]` bytes, `n <= self.batch`
    /// - output: `[n, K]`
    pub fn run(&self, pixels: &[u8]) -> anyhow::Result<Vec<f32>> {
        let per_image = self.image.len();
        let n = pixels.len() / per_image;
        let plane = self.image.height * self.image.width;

        // Scale to [0, 1] as x / 255, then compute (x - mean) / std on each channel plane.
        let mut input = vec![0.0f32; self.batch * per_image];
        for (image_in, image_out) in pixels
            .chunks_exact(per_image)
            .zip(input.chunks_exact_mut(per_image))
        {
            let planes = image_in
                .chunks_exact(plane)
                .zip(image_out.chunks_exact_mut(plane));
            for (&(mean, std), (plane_in, plane_out)) in self.normalize.iter().zip(planes) {
                for (value, &pixel) in plane_out.iter_mut().zip(plane_in) {
                    *value = (f32::from(pixel) / PIXEL_MAX - mean) / std;
                }
            }
        }
        let shape: Vec<usize> = match self.layout {
            InputLayout::Nchw => vec![
                self.batch,
                self.image.channels,
                self.image.height,
                self.image.width,
            ],
            InputLayout::Flat => vec![self.batch, per_image],
        };
        let tensor = Tensor::from_shape(&shape, &input)?;
        drop(input);

        let outputs = self
            .plan
            .run(tvec![tensor.into_tvalue()])
            .map_err(|error| anyhow::anyhow!("the model failed on a batch: {error:#}"))?;
        let output = outputs
            .first()
            .context("the model returned no output")?
            .cast_to::<f32>()?;
        let view = output.to_plain_array_view::<f32>()?;
        Ok(view.iter().take(n * self.classes).copied().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_parses_none_and_pairs() {
        assert_eq!("none".parse::<Normalize>(), Ok(Normalize::None));
        assert_eq!(
            "0.5,0.25".parse::<Normalize>(),
            Ok(Normalize::MeanStd {
                mean: vec![0.5],
                std: vec![0.25]
            })
        );
        assert_eq!(
            "0.4/0.5/0.6,0.2/0.2/0.3".parse::<Normalize>(),
            Ok(Normalize::MeanStd {
                mean: vec![0.4, 0.5, 0.6],
                std: vec![0.2, 0.2, 0.3]
            })
        );
    }

    #[test]
    fn normalize_rejects_bad_values() {
        let cases = [
            ("0.5", "expected MEAN,STD"),
            ("a,0.3", "mean \"a\" is not a number"),
            ("0.1,0", "standard deviation 0 is not above 0"),
            ("0.1,-2", "standard deviation -2 is not above 0"),
            ("0.1,inf", "not finite"),
            ("0.1/0.2,0.3/0.4/0.5", "2 means but 3 standard deviations"),
        ];
        for (value, expected) in cases {
            let error = value.parse::<Normalize>().unwrap_err();
            assert!(error.contains(expected), "{value}: {error}");
        }
    }

    #[test]
    fn normalize_expands_to_channels() {
        let normalize: Normalize = "0.5,0.25".parse().unwrap();
        assert_eq!(normalize.per_channel(3).unwrap(), vec![(0.5, 0.25); 3]);
        let per_channel: Normalize = "0.1/0.2/0.3,0.5/0.5/0.5".parse().unwrap();
        let error = per_channel.per_channel(1).unwrap_err().to_string();
        assert!(error.contains("3 mean values"), "{error}");
        assert_eq!(Normalize::None.per_channel(2).unwrap(), vec![(0.0, 1.0); 2]);
    }
}
