//! A small residual network for CIFAR-sized images: ResNet-8 with one basic block per stage.
//!
//! The layout follows the CIFAR networks of He et al., "Deep Residual Learning for Image
//! Recognition" (2016). A 3x3 stem convolution feeds three stages of basic blocks with 16, 32
//! and 64 filters, with stride 2 at the start of stages 2 and 3. Global average pooling and
//! one dense layer give the logits. With `n` blocks per stage the network has `6n + 2` weight
//! layers, so the default `n = 1` is ResNet-8. Where a block changes the shape, its shortcut
//! is a 1x1 convolution with BatchNorm (the paper's projection shortcut). Every other
//! shortcut is the identity.
//!
//! # BatchNorm modes
//! burn 0.22's `BatchNorm` normalises with the statistics of the batch, and updates its
//! running mean and variance, only when the input lives on an autodiff device and the
//! layer's `training` flag is on. The training loop runs on an autodiff device. The
//! evaluation pass runs the model returned by `Module::valid` (flag off, autodiff removed)
//! on a plain device, so it normalises with the running statistics and a sample's logits do
//! not depend on the rest of its batch. The running statistics are module state, so they are
//! saved to and loaded from `model.safetensors` with the weights.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::model::InputSpec;

/// Filters of the stem and of the blocks in stages 1, 2 and 3.
const STAGE_WIDTHS: [usize; 3] = [16, 32, 64];
/// Kernel side of the stem and block convolutions.
const KERNEL: usize = 3;
/// Zero padding on every side of a 3x3 convolution, so that stride 1 keeps the image size.
const PADDING: usize = 1;
/// Stride of the first block of stages 2 and 3, which halves height and width.
const DOWNSAMPLE_STRIDE: usize = 2;

/// Builds a 3x3 convolution padded by 1 and without bias, because the BatchNorm after it has one.
fn conv3x3(inputs: usize, outputs: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([inputs, outputs], [KERNEL, KERNEL])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            PADDING, PADDING, PADDING, PADDING,
        ))
        .with_bias(false)
        .init(device)
}

/// The shortcut of a block that changes shape: 1x1 convolution with the block's stride,
/// then BatchNorm.
#[derive(Module, Debug)]
pub struct Projection {
    conv: Conv2d,
    norm: BatchNorm,
}

impl Projection {
    fn new(inputs: usize, outputs: usize, stride: usize, device: &Device) -> Self {
        Self {
            conv: Conv2dConfig::new([inputs, outputs], [1, 1])
                .with_stride([stride, stride])
                .with_bias(false)
                .init(device),
            norm: BatchNormConfig::new(outputs).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.norm.forward(self.conv.forward(x))
    }
}

/// A basic residual block: `relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))`.
///
/// A 3x3 convolution with stride `s` and padding 1, and a 1x1 convolution with stride `s`
/// and no padding, both turn a side `n` into `ceil(n / s)`, so the two branches always agree
/// in shape, odd sides included.
#[derive(Module, Debug)]
pub struct BasicBlock {
    conv1: Conv2d,
    norm1: BatchNorm,
    conv2: Conv2d,
    norm2: BatchNorm,
    /// `None` for the identity shortcut.
    shortcut: Option<Projection>,
}

impl BasicBlock {
    fn new(inputs: usize, outputs: usize, stride: usize, device: &Device) -> Self {
        let shortcut = (inputs != outputs || stride != 1)
            .then(|| Projection::new(inputs, outputs, stride, device));
        Self {
            conv1: conv3x3(inputs, outputs, stride, device),
            norm1: BatchNormConfig::new(outputs).init(device),
            conv2: conv3x3(outputs, outputs, 1, device),
            norm2: BatchNormConfig::new(outputs).init(device),
            shortcut,
        }
    }

    /// Applies the block.
    ///
    /// # Shapes
    /// - x: `[batch_size, inputs, height, width]`
    /// - output: `[batch_size, outputs, ceil(height / stride), ceil(width / stride)]`
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let residual = match &self.shortcut {
            Some(projection) => projection.forward(x.clone()),
            None => x.clone(),
        };
        let y = relu(self.norm1.forward(self.conv1.forward(x)));
        let y = self.norm2.forward(self.conv2.forward(y));
        relu(y + residual)
    }
}

/// ResNet-8 style network for small images, described in the module documentation.
///
/// Padding keeps every size valid, so it takes 28x28 grayscale (MNIST) as well as 32x32 RGB
/// (CIFAR-10). A 32x32 input is 32, 16 and 8 pixels wide in the three stages, and a 28x28
/// input 28, 14 and 7.
#[derive(Module, Debug)]
pub struct ResnetSmall {
    stem: Conv2d,
    stem_norm: BatchNorm,
    /// All blocks of the three stages, in order.
    blocks: Vec<BasicBlock>,
    pool: AdaptiveAvgPool2d,
    head: Linear,
}

impl ResnetSmall {
    /// Basic blocks per stage of the `resnet-small` model: 1, which makes ResNet-8.
    pub const BLOCKS_PER_STAGE: usize = 1;

    /// Builds ResNet-8 ([`Self::BLOCKS_PER_STAGE`] blocks per stage) with burn's default
    /// initialisers on `device`.
    pub fn new(spec: InputSpec, device: &Device) -> Self {
        Self::with_blocks(spec, Self::BLOCKS_PER_STAGE, device)
    }

    /// Builds the network with `blocks_per_stage` basic blocks in each of the three stages,
    /// which gives `6 * blocks_per_stage + 2` weight layers (3 makes ResNet-20).
    ///
    /// `blocks_per_stage = 0` is accepted and leaves the stem, the pooling and the dense layer.
    pub fn with_blocks(spec: InputSpec, blocks_per_stage: usize, device: &Device) -> Self {
        let mut blocks = Vec::with_capacity(3 * blocks_per_stage);
        let mut inputs = STAGE_WIDTHS[0];
        for (stage, &outputs) in STAGE_WIDTHS.iter().enumerate() {
            for block in 0..blocks_per_stage {
                // Only the first block of stages 2 and 3 downsamples.
                let stride = if stage > 0 && block == 0 {
                    DOWNSAMPLE_STRIDE
                } else {
                    1
                };
                blocks.push(BasicBlock::new(inputs, outputs, stride, device));
                inputs = outputs;
            }
        }
        Self {
            stem: conv3x3(spec.channels, STAGE_WIDTHS[0], 1, device),
            stem_norm: BatchNormConfig::new(STAGE_WIDTHS[0]).init(device),
            blocks,
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            head: LinearConfig::new(inputs, spec.classes).init(device),
        }
    }

    /// Computes the logits.
    ///
    /// # Shapes
    /// - images: `[batch_size, channels, height, width]`
    /// - output: `[batch_size, classes]`
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = relu(self.stem_norm.forward(self.stem.forward(images))); // [b, 16, 32, 32] for 32x32
        for block in &self.blocks {
            x = block.forward(x); // [b, 16, 32, 32], then [b, 32, 16, 16], then [b, 64, 8, 8]
        }
        let x = self.pool.forward(x); // [b, 64, 1, 1]
        let x: Tensor<2> = x.flatten(1, 3); // [b, 64]
        self.head.forward(x) // [b, classes]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CIFAR: InputSpec = InputSpec {
        channels: 3,
        height: 32,
        width: 32,
        classes: 10,
    };

    /// Deterministic pseudo-random pixels in `[0, 1)`, so no test depends on a data file.
    fn pixels(count: usize) -> Vec<f32> {
        (0..count)
            .map(|i| ((i as u64 * 2_654_435_761) % 1000) as f32 / 1000.0)
            .collect()
    }

    fn images(batch_size: usize, spec: InputSpec, device: &Device) -> Tensor<4> {
        let shape = [batch_size, spec.channels, spec.height, spec.width];
        let data = TensorData::new(pixels(shape.iter().product()), shape);
        Tensor::<4>::from_data(data, device)
    }

    #[test]
    fn default_is_resnet8() {
        let model = ResnetSmall::new(CIFAR, &Device::flex());
        // 3 stages x 1 block x 2 convolutions + stem + dense = 8 weight layers.
        assert_eq!(model.blocks.len(), 3);
        assert!(model.blocks[0].shortcut.is_none(), "16 -> 16, stride 1");
        assert!(model.blocks[1].shortcut.is_some(), "16 -> 32, stride 2");
        assert!(model.blocks[2].shortcut.is_some(), "32 -> 64, stride 2");
    }

    #[test]
    fn parameter_count_matches_hand_count() {
        // Weights. The convolutions have no bias, and BatchNorm has gamma and beta per channel.
        //   stem 3*16*9 = 432, bn 32
        //   stage 1: 16*16*9 * 2 = 4608, bn 2*32 = 64
        //   stage 2: 16*32*9 + 32*32*9 = 13824, bn 2*64 = 128, projection 16*32 + bn 64 = 576
        //   stage 3: 32*64*9 + 64*64*9 = 55296, bn 2*128 = 256, projection 32*64 + bn 128 = 2176
        //   dense 64*10 + 10 = 650
        //   total 432+32+4608+64+13824+128+576+55296+256+2176+650 = 78042
        // burn's num_params also counts the running mean and variance of the 336 BatchNorm
        // channels (16 + 2*16 + 3*32 + 3*64): 2*336 = 672, so it returns 78714.
        let model = ResnetSmall::new(CIFAR, &Device::flex());
        assert_eq!(model.num_params(), 78_042 + 672);
    }

    #[test]
    fn blocks_per_stage_sets_depth() {
        // ResNet-20: 3 blocks per stage, 6*3 + 2 = 20 weight layers.
        let model = ResnetSmall::with_blocks(CIFAR, 3, &Device::flex());
        assert_eq!(model.blocks.len(), 9);
        let projections = model
            .blocks
            .iter()
            .filter(|block| block.shortcut.is_some())
            .count();
        assert_eq!(projections, 2, "only the first block of stages 2 and 3");
    }

    #[test]
    fn forward_shape_cifar() {
        let device = Device::flex();
        let model = ResnetSmall::new(CIFAR, &device);
        assert_eq!(model.forward(images(3, CIFAR, &device)).dims(), [3, 10]);
    }

    #[test]
    fn forward_shape_mnist() {
        let mnist = InputSpec {
            channels: 1,
            height: 28,
            width: 28,
            classes: 10,
        };
        let device = Device::flex();
        let model = ResnetSmall::new(mnist, &device);
        assert_eq!(model.forward(images(2, mnist, &device)).dims(), [2, 10]);
    }

    #[test]
    fn forward_shape_tiny_image() {
        // 5x3 pixels, 4 classes: padding keeps every stage at least 1 pixel (5 -> 3 -> 2, 3 -> 2 -> 1).
        let spec = InputSpec {
            channels: 2,
            height: 5,
            width: 3,
            classes: 4,
        };
        let device = Device::flex();
        let model = ResnetSmall::new(spec, &device);
        assert_eq!(model.forward(images(2, spec, &device)).dims(), [2, 4]);
    }

    #[test]
    fn block_downsamples_odd_side() {
        // A 7x7 input with stride 2: ceil(7 / 2) = 4 on both branches.
        let device = Device::flex();
        let block = BasicBlock::new(4, 8, 2, &device);
        let x = Tensor::<4>::zeros([2, 4, 7, 7], &device);
        assert_eq!(block.forward(x).dims(), [2, 8, 4, 4]);
    }
}
