//! The classifiers toploss trains: the shallow CNN, an MLP and the small ResNet of `resnet.rs`.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};

use crate::fast_ops::{self, Kernels, kernels};
use crate::resnet::ResnetSmall;

/// Architecture to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// Three 3x3 convolutions (32, 64, 64 filters) with two 2x2 max-pools, then dense 64 and
    /// dense K, ReLU throughout: the Keras tutorial network used in the top-loss reports.
    ShallowCnn,
    /// Two hidden dense layers (256 and 128 units, ReLU) on the flattened image.
    Mlp,
    /// ResNet-8: a 3x3 stem and three stages of one basic residual block (16, 32, 64
    /// filters) with BatchNorm, global average pooling and dense K. See [`ResnetSmall`].
    ResnetSmall,
}

impl ModelKind {
    /// Returns the name used on the command line and in `run.json`.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::ShallowCnn => "shallow-cnn",
            ModelKind::Mlp => "mlp",
            ModelKind::ResnetSmall => "resnet-small",
        }
    }
}

/// Input geometry and class count a model is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputSpec {
    /// Image channels (1 for grayscale, 3 for RGB).
    pub channels: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// Number of classes, the width of the logits.
    pub classes: usize,
}

/// Kernel size of every convolution in the shallow CNN.
const KERNEL: usize = 3;
/// Side of the max-pool windows (and their stride).
const POOL: usize = 2;
/// Width of the CNN's hidden dense layer.
const CNN_DENSE: usize = 64;
/// Widths of the MLP's hidden layers.
const MLP_HIDDEN: [usize; 2] = [256, 128];

/// The shallow CNN: conv 32 3x3, max-pool, conv 64 3x3, max-pool, conv 64 3x3, dense 64,
/// dense K. Valid padding throughout, so a 28x28 input shrinks to 26, 13, 11, 5 and 3.
#[derive(Module, Debug)]
pub struct ShallowCnn {
    conv1: Conv2d,
    conv2: Conv2d,
    conv3: Conv2d,
    pool: MaxPool2d,
    fc1: Linear,
    fc2: Linear,
}

/// Spatial side after a valid 3x3 convolution.
fn after_conv(side: usize) -> usize {
    side.saturating_sub(KERNEL - 1)
}

/// Spatial side after a 2x2 max-pool with stride 2 (floor, as PyTorch and Keras do).
fn after_pool(side: usize) -> usize {
    side / POOL
}

impl ShallowCnn {
    /// Smallest input side the three convolutions and two pools accept.
    pub const MIN_SIDE: usize = 22;

    /// Builds the network with burn's default initialisers on `device`.
    pub fn new(spec: InputSpec, device: &Device) -> Self {
        let h = after_conv(after_pool(after_conv(after_pool(after_conv(spec.height)))));
        let w = after_conv(after_pool(after_conv(after_pool(after_conv(spec.width)))));
        Self {
            conv1: Conv2dConfig::new([spec.channels, 32], [KERNEL, KERNEL]).init(device),
            conv2: Conv2dConfig::new([32, 64], [KERNEL, KERNEL]).init(device),
            conv3: Conv2dConfig::new([64, 64], [KERNEL, KERNEL]).init(device),
            pool: MaxPool2dConfig::new([POOL, POOL]).init(),
            fc1: LinearConfig::new(64 * h * w, CNN_DENSE).init(device),
            fc2: LinearConfig::new(CNN_DENSE, spec.classes).init(device),
        }
    }

    /// Computes the logits, with the kernels that [`set_kernels`](crate::set_kernels) chose
    /// ([`Kernels::Fast`] unless changed).
    ///
    /// # Shapes
    /// - images: `[batch_size, channels, height, width]`
    /// - output: `[batch_size, classes]`
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_with(images, kernels() == Kernels::Fast)
    }

    /// Computes the logits with burn's own `Conv2d` and `MaxPool2d` forward and backward, in
    /// place of the faster kernels of [`forward`](Self::forward). The values agree up to f32
    /// rounding, and tests use this path as the reference.
    ///
    /// # Shapes
    /// - images: `[batch_size, channels, height, width]`
    /// - output: `[batch_size, classes]`
    pub fn forward_with_burn_ops(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_with(images, false)
    }

    /// Computes the logits, with the kernels of `fast_ops.rs` if `fast` is set.
    fn forward_with(&self, images: Tensor<4>, fast: bool) -> Tensor<2> {
        let conv = |layer: &Conv2d, x: Tensor<4>| {
            if fast {
                fast_ops::conv2d_valid(layer, x)
            } else {
                layer.forward(x)
            }
        };
        // ReLU then max-pool; the fast kernel does both in one pass.
        let relu_pool = |x: Tensor<4>| {
            if fast {
                fast_ops::relu_max_pool2x2(x)
            } else {
                self.pool.forward(relu(x))
            }
        };
        let x = relu_pool(conv(&self.conv1, images)); // [b, 32, 13, 13] for 28x28
        let x = relu_pool(conv(&self.conv2, x)); // [b, 64, 5, 5]
        let x = relu(conv(&self.conv3, x)); // [b, 64, 3, 3]
        let x: Tensor<2> = x.flatten(1, 3); // [b, 576]
        let x = relu(self.fc1.forward(x)); // [b, 64]
        self.fc2.forward(x) // [b, classes]
    }
}

/// A multi-layer perceptron on the flattened image.
#[derive(Module, Debug)]
pub struct Mlp {
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
}

impl Mlp {
    /// Builds the network with burn's default initialisers on `device`.
    pub fn new(spec: InputSpec, device: &Device) -> Self {
        let inputs = spec.channels * spec.height * spec.width;
        Self {
            fc1: LinearConfig::new(inputs, MLP_HIDDEN[0]).init(device),
            fc2: LinearConfig::new(MLP_HIDDEN[0], MLP_HIDDEN[1]).init(device),
            fc3: LinearConfig::new(MLP_HIDDEN[1], spec.classes).init(device),
        }
    }

    /// Computes the logits.
    ///
    /// # Shapes
    /// - images: `[batch_size, channels, height, width]`
    /// - output: `[batch_size, classes]`
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let x: Tensor<2> = images.flatten(1, 3); // [b, c*h*w]
        let x = relu(self.fc1.forward(x)); // [b, 256]
        let x = relu(self.fc2.forward(x)); // [b, 128]
        self.fc3.forward(x) // [b, classes]
    }
}

/// One of the supported architectures, as a single burn module.
// A run contains one model, so the size difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Classifier {
    /// See [`ShallowCnn`].
    ShallowCnn(ShallowCnn),
    /// See [`Mlp`].
    Mlp(Mlp),
    /// See [`ResnetSmall`].
    ResnetSmall(ResnetSmall),
}

impl Classifier {
    /// Builds the chosen architecture for `spec` on `device`.
    pub fn new(kind: ModelKind, spec: InputSpec, device: &Device) -> Self {
        match kind {
            ModelKind::ShallowCnn => Classifier::ShallowCnn(ShallowCnn::new(spec, device)),
            ModelKind::Mlp => Classifier::Mlp(Mlp::new(spec, device)),
            ModelKind::ResnetSmall => Classifier::ResnetSmall(ResnetSmall::new(spec, device)),
        }
    }

    /// Number of parameters of `kind` for `spec`. burn draws parameters lazily, so counting
    /// them allocates no weights and uses no random numbers.
    pub fn parameter_count(kind: ModelKind, spec: InputSpec) -> usize {
        Self::new(kind, spec, &Device::flex()).num_params()
    }

    /// Computes the logits.
    ///
    /// # Shapes
    /// - images: `[batch_size, channels, height, width]`
    /// - output: `[batch_size, classes]`
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        match self {
            Classifier::ShallowCnn(model) => model.forward(images),
            Classifier::Mlp(model) => model.forward(images),
            Classifier::ResnetSmall(model) => model.forward(images),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MNIST: InputSpec = InputSpec {
        channels: 1,
        height: 28,
        width: 28,
        classes: 10,
    };

    #[test]
    fn parameter_counts_match_hand_counts() {
        // conv 1->32: 288 + 32, conv 32->64: 18,432 + 64, conv 64->64: 36,864 + 64,
        // dense 576->64: 36,864 + 64, dense 64->10: 640 + 10.
        assert_eq!(
            Classifier::parameter_count(ModelKind::ShallowCnn, MNIST),
            93_322
        );
        // dense 784->256: 200,704 + 256, 256->128: 32,768 + 128, 128->10: 1,280 + 10.
        assert_eq!(Classifier::parameter_count(ModelKind::Mlp, MNIST), 235_146);
        // A 3x64x64 image makes the CNN's last feature map 64 x 12 x 12, so its first dense
        // layer has 9,216 x 64 + 64 weights. The first conv has 3 x 9 x 32 + 32.
        let rgb = InputSpec {
            channels: 3,
            height: 64,
            width: 64,
            classes: 10,
        };
        assert_eq!(
            Classifier::parameter_count(ModelKind::ShallowCnn, rgb),
            896 + 18_496 + 36_928 + 589_888 + 650
        );
    }

    /// Counts of the places where the fast kernels and burn's ops disagree on one layer's
    /// output.
    #[derive(Debug, Default)]
    struct Disagreements {
        /// Largest `|fast - burn|` over the layer's outputs.
        largest_difference: f32,
        /// Outputs on opposite sides of zero, which ReLU passes in one path and stops in the
        /// other.
        relu: usize,
        /// 2x2 windows whose positive maximum is at another position in the two paths.
        pool_winner: usize,
    }

    /// Returns the `[planes, side, side]` outputs of a layer's two paths.
    fn layer_outputs(fast: Tensor<4>, burn: Tensor<4>) -> (Vec<f32>, Vec<f32>) {
        let values = |tensor: Tensor<4>| -> Vec<f32> { tensor.into_data().try_into_vec().unwrap() };
        (values(fast), values(burn))
    }

    /// Counts the disagreements between two conv outputs of `[planes, side, side]`. With
    /// `pooled`, it also counts those of the 2x2 max-pool that follows.
    fn disagreements(fast: &[f32], burn: &[f32], side: usize, pooled: bool) -> Disagreements {
        let mut found = Disagreements {
            largest_difference: fast
                .iter()
                .zip(burn)
                .map(|(f, b)| (f - b).abs())
                .fold(0.0, f32::max),
            relu: fast
                .iter()
                .zip(burn)
                .filter(|&(f, b)| (*f > 0.0) != (*b > 0.0))
                .count(),
            pool_winner: 0,
        };
        if !pooled {
            return found;
        }
        // The first maximum of each window wins, as in burn's max-pool.
        let winner = |values: &[f32], corner: usize| {
            let window = [corner, corner + 1, corner + side, corner + side + 1];
            let mut best = window[0];
            for &index in &window[1..] {
                if values[index] > values[best] {
                    best = index;
                }
            }
            (best, values[best])
        };
        let out = side / 2;
        for plane in 0..fast.len() / (side * side) {
            for row in 0..out {
                for col in 0..out {
                    let corner = plane * side * side + 2 * row * side + 2 * col;
                    let (fast_index, fast_max) = winner(fast, corner);
                    let (burn_index, burn_max) = winner(burn, corner);
                    if fast_max > 0.0 && burn_max > 0.0 && fast_index != burn_index {
                        found.pool_winner += 1;
                    }
                }
            }
        }
        found
    }

    /// The fast kernels and burn's ops part only where f32 rounding decides: at outputs within
    /// rounding of zero (ReLU) and at windows whose two largest values are within rounding of
    /// each other (max-pool). Each layer gets burn's output of the layer before, so that every
    /// count belongs to one layer.
    #[test]
    fn fast_and_burn_part_only_near_ties() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
        let dataset = toploss_data::load(&toploss_data::DatasetSpec::new(
            toploss_data::DatasetFormat::Mnist,
            &dir,
        ))
        .unwrap_or_else(|error| panic!("failed to load MNIST from {}: {error}", dir.display()));
        let device = Device::flex();
        device.seed(42);
        let model = ShallowCnn::new(MNIST, &device);
        const BATCH: usize = 128;
        const BATCHES: usize = 50;
        const PIXELS: usize = 28 * 28;

        let (mut relu_flips, mut pool_winners) = (0, 0);
        for batch in 0..BATCHES {
            let pixels =
                &dataset.train.images[batch * BATCH * PIXELS..(batch + 1) * BATCH * PIXELS];
            let images = crate::SplitTensors::from_u8(pixels, Vec::new()).images;
            let mut input =
                Tensor::<4>::from_data(TensorData::new(images, [BATCH, 1, 28, 28]), &device);
            for (layer, (conv, side, pooled)) in [
                (&model.conv1, 26, true),
                (&model.conv2, 11, true),
                (&model.conv3, 3, false),
            ]
            .into_iter()
            .enumerate()
            {
                let burn = conv.forward(input.clone());
                let (fast_values, burn_values) =
                    layer_outputs(fast_ops::conv2d_valid(conv, input), burn.clone());
                let found = disagreements(&fast_values, &burn_values, side, pooled);
                let largest = burn_values.iter().fold(0f32, |m, v| m.max(v.abs()));
                // A sum of up to 576 products in another order: rounding stays well below
                // 1e-5 of the layer's largest output (measured: at most 1.05e-6).
                assert!(
                    found.largest_difference <= 1e-5 * largest,
                    "batch {batch}, conv{}: outputs differ by {} (largest output {largest})",
                    layer + 1,
                    found.largest_difference
                );
                relu_flips += found.relu;
                pool_winners += found.pool_winner;
                input = if pooled {
                    model.pool.forward(relu(burn))
                } else {
                    burn
                };
            }
        }
        // Outputs agree within rounding, yet such flips happen on real images, and each one
        // sends a gradient elsewhere: this is where the training runs of the two paths part.
        // Kernels that matched burn's order of sums bit for bit would fail these two checks.
        assert!(relu_flips > 0, "no ReLU flip in {BATCHES} batches");
        assert!(
            pool_winners > 0,
            "no pool-winner change in {BATCHES} batches"
        );
    }
}
