//! Faster kernels for the shallow CNN on the Flex CPU backend, added through burn's backend
//! extension mechanism (`#[backend_extension]`, burn 0.22).
//!
//! [`relu_max_pool2x2`] is ReLU followed by a 2x2 max-pool with stride 2 and no padding, as
//! burn's `relu` and [`MaxPool2d`] with kernel `[2, 2]` compute them (burn's default stride is
//! the kernel size). burn-flex 0.22.1 runs every max-pool through a generic 3D loop that also
//! writes `i64` indices. This module's forward pass pools first and applies ReLU to the pooled
//! values only, so the full-size ReLU output is never written, and it writes no indices. Its
//! backward pass finds each window's winner again from the input, which autodiff keeps anyway.
//!
//! [`conv2d_valid`] computes the forward pass, the input gradient and the weight gradient as
//! one gemm per image over im2col columns, in parallel over groups of images. burn-flex 0.22.1
//! rebuilds a zeroed im2col tile per image and tile in the forward pass. It runs the input
//! gradient as a transposed convolution, and the weight gradient as a convolution with batch
//! and channels swapped: a gemm with only `kernel_height * kernel_width` output columns. The
//! bias gradient is a vectorized sum per channel, where burn's generic version first copies
//! the whole output gradient into channel-major order.
//!
//! Output buffers are not zeroed before the kernels write every element of them.
//!
//! Only Flex and `Autodiff<Flex>` implement [`FastOps`]. The generated dispatch panics on any
//! other backend, so [`relu_max_pool2x2`] and [`conv2d_valid`] check the device and fall back
//! to burn's own ops elsewhere.
//!
//! [`MaxPool2d`]: burn::nn::pool::MaxPool2d

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::ops::{ConvOptions, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    Autodiff, Backend, DType, Dispatch, Flex, Shape, TensorMetadata, backend_extension,
};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::Bytes;
use burn::tensor::activation::relu;
use burn::tensor::ops::MaxPoolOptions;
use rayon::prelude::*;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};

/// Window side and stride of the pool.
const POOL: usize = 2;

/// Choice of the code that runs the shallow CNN's convolutions, ReLUs and max-pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernels {
    /// This module's kernels on Flex devices, burn's ops elsewhere.
    #[default]
    Fast,
    /// burn's own `Conv2d`, `relu` and `MaxPool2d` on every device: slower, and the reference
    /// that the fast kernels agree with up to f32 rounding.
    Burn,
}

impl Kernels {
    /// Name on the command line and in run.json.
    pub fn name(self) -> &'static str {
        match self {
            Kernels::Fast => "fast",
            Kernels::Burn => "burn",
        }
    }
}

/// Set when [`set_kernels`] chose [`Kernels::Burn`]. A process-wide switch, like the size of
/// the global thread pool, because the evaluation pass runs the model on the pool's threads.
static BURN_KERNELS: AtomicBool = AtomicBool::new(false);

/// Chooses the kernels of every later forward pass of the shallow CNN in this process.
pub fn set_kernels(kernels: Kernels) {
    BURN_KERNELS.store(kernels == Kernels::Burn, Ordering::Relaxed);
}

/// Returns the kernels that [`set_kernels`] chose, [`Kernels::Fast`] by default.
pub fn kernels() -> Kernels {
    if BURN_KERNELS.load(Ordering::Relaxed) {
        Kernels::Burn
    } else {
        Kernels::Fast
    }
}

/// Planes (one channel of one image) per rayon task. A 26x26 plane takes a few thousand
/// instructions, too little for a task of its own.
const PLANES_PER_TASK: usize = 8;

/// Backend operations with a faster Flex implementation than burn's generic module ops.
#[backend_extension(Flex, Autodiff)]
pub trait FastOps: Backend {
    /// Applies ReLU and then a 2x2 max-pool with stride 2, no padding and floor rounding, in
    /// one pass. The pool of the ReLU equals the ReLU of the pool, so the kernel pools first and
    /// writes only the pooled values: the full-size ReLU output is never stored.
    ///
    /// # Shapes
    /// - x: `[batch_size, channels, height, width]`
    /// - output: `[batch_size, channels, height / 2, width / 2]`
    fn relu_max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        relu_max_pool2x2_with_burn_ops::<Self>(x)
    }

    /// Applies a valid 2D convolution: stride 1, no padding, dilation 1 and one group, the
    /// settings of burn's `Conv2dConfig::new`.
    ///
    /// # Shapes
    /// - x: `[batch_size, channels_in, height, width]`
    /// - weight: `[channels_out, channels_in, kernel_height, kernel_width]`
    /// - bias: `[channels_out]`
    /// - output: `[batch_size, channels_out, height - kernel_height + 1, width - kernel_width + 1]`
    fn conv2d_valid(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::conv2d(x, weight, Some(bias), valid_options())
    }
}

/// Convolution settings of [`FastOps::conv2d_valid`].
fn valid_options() -> ConvOptions<2> {
    ConvOptions::new([1, 1], [0, 0], [1, 1], 1)
}

/// The input and weight gradients of [`FastOps::conv2d_valid`], which autodiff needs.
pub trait ConvValidBackwardOps: Backend {
    /// Computes the gradient of the convolution's input `x` from its weight and the gradient
    /// of its output.
    fn conv2d_valid_x_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::conv2d_x_backward(x, weight, output_grad, valid_options())
    }

    /// Computes the gradient of the convolution's weight from its input `x` and the gradient of
    /// its output, with the shape of `weight`.
    fn conv2d_valid_weight_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::conv2d_weight_backward(x, weight, output_grad, valid_options())
    }

    /// Computes the gradient of the convolution's bias, the sum of the output gradient over
    /// images and positions, with the shape of `bias`.
    fn conv2d_valid_bias_backward(
        x: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::conv2d_bias_backward(x, bias, output_grad)
    }
}

/// The backward pass of [`FastOps::relu_max_pool2x2`], which autodiff needs.
pub trait ReluMaxPool2x2BackwardOps: Backend {
    /// Returns the gradient of the input `x`: each output gradient goes to the input element
    /// that won its window, unless that element is zero or below (where ReLU passes no
    /// gradient), and every other element gets zero.
    fn relu_max_pool2x2_backward(
        x: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        relu_max_pool2x2_backward_with_burn_ops::<Self>(x, output_grad)
    }
}

/// Computes [`FastOps::relu_max_pool2x2`] with burn's own `relu` and `max_pool2d`.
fn relu_max_pool2x2_with_burn_ops<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    B::max_pool2d(B::relu(x), [POOL; 2], [POOL; 2], [0; 2], [1; 2], false)
}

/// Computes the input gradient of ReLU and the 2x2 max-pool with burn's own ops: the argmax
/// indices from `max_pool2d_with_indices`, `max_pool2d_with_indices_backward`, then
/// `relu_backward`.
fn relu_max_pool2x2_backward_with_burn_ops<B: Backend>(
    x: FloatTensor<B>,
    output_grad: FloatTensor<B>,
) -> FloatTensor<B> {
    let activated = B::relu(x);
    let int_dtype = burn::backend::get_or_init_device_settings::<B>(&activated.device()).int_dtype;
    let indices = B::max_pool2d_with_indices(
        activated.clone(),
        [POOL; 2],
        [POOL; 2],
        [0; 2],
        [1; 2],
        false,
        int_dtype,
    )
    .indices;
    let pool_grad = B::max_pool2d_with_indices_backward(
        activated.clone(),
        [POOL; 2],
        [POOL; 2],
        [0; 2],
        [1; 2],
        false,
        output_grad,
        indices,
    )
    .x_grad;
    B::relu_backward(activated, pool_grad)
}

impl FastOps for Flex {
    fn conv2d_valid(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let all_f32 = x.dtype() == DType::F32
            && weight.dtype() == DType::F32
            && bias.dtype() == DType::F32
            && x.layout().shape().num_dims() == 4
            && weight.layout().shape().num_dims() == 4;
        if !all_f32 {
            return Self::conv2d(x, weight, Some(bias), valid_options());
        }
        conv_forward_flex_f32(x, weight, bias)
    }

    fn relu_max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        if x.dtype() != DType::F32 || x.layout().shape().num_dims() != 4 {
            return relu_max_pool2x2_with_burn_ops::<Self>(x);
        }
        pool_flex_f32(x)
    }
}

impl ReluMaxPool2x2BackwardOps for Flex {
    fn relu_max_pool2x2_backward(
        x: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let all_f32 = [&x, &output_grad]
            .iter()
            .all(|t| t.dtype() == DType::F32 && t.layout().shape().num_dims() == 4);
        if !all_f32 {
            return relu_max_pool2x2_backward_with_burn_ops::<Self>(x, output_grad);
        }
        unpool_flex_f32(x, output_grad)
    }
}

impl ConvValidBackwardOps for Flex {
    fn conv2d_valid_x_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let all_f32 = [&x, &weight, &output_grad]
            .iter()
            .all(|t| t.dtype() == DType::F32 && t.layout().shape().num_dims() == 4);
        if !all_f32 {
            return Self::conv2d_x_backward(x, weight, output_grad, valid_options());
        }
        let x_dims = x.layout().shape().clone();
        conv_x_grad_flex_f32(
            [x_dims[0], x_dims[1], x_dims[2], x_dims[3]],
            weight,
            output_grad,
        )
    }

    fn conv2d_valid_weight_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let all_f32 = [&x, &weight, &output_grad]
            .iter()
            .all(|t| t.dtype() == DType::F32 && t.layout().shape().num_dims() == 4);
        if !all_f32 {
            return Self::conv2d_weight_backward(x, weight, output_grad, valid_options());
        }
        let weight_dims = weight.layout().shape().clone();
        conv_weight_grad_flex_f32(
            x,
            [
                weight_dims[0],
                weight_dims[1],
                weight_dims[2],
                weight_dims[3],
            ],
            output_grad,
        )
    }

    fn conv2d_valid_bias_backward(
        x: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        if output_grad.dtype() != DType::F32 || output_grad.layout().shape().num_dims() != 4 {
            return Self::conv2d_bias_backward(x, bias, output_grad);
        }
        conv_bias_grad_flex_f32(output_grad)
    }
}

/// Images per rayon task of the weight gradient. A fixed count (not one task per thread) keeps
/// the order of the f32 sums, and so the result bits, the same on any number of threads.
const IMAGES_PER_TASK: usize = 16;

/// Returns `tensor` in row-major order (a copy only if it is strided) and its dims.
fn contiguous_f32(tensor: &FlexTensor) -> (FlexTensor, Vec<usize>) {
    let tensor = tensor.to_contiguous();
    let dims = tensor.layout().shape().iter().copied().collect();
    (tensor, dims)
}

/// Computes the weight gradient of a valid convolution as one gemm per image over im2col
/// columns: `dW[o, (c, i, j)] += sum_p dY[o, p] * X[c, p_row + i, p_col + j]`, with images
/// split into tasks of [`IMAGES_PER_TASK`] and the task sums added in order.
fn conv_weight_grad_flex_f32(
    x: FlexTensor,
    weight_dims: [usize; 4],
    output_grad: FlexTensor,
) -> FlexTensor {
    let [channels_out, channels_in, kernel_h, kernel_w] = weight_dims;
    let (x, x_dims) = contiguous_f32(&x);
    let (grad, grad_dims) = contiguous_f32(&output_grad);
    let (batch, height, width) = (x_dims[0], x_dims[2], x_dims[3]);
    let (out_h, out_w) = (grad_dims[2], grad_dims[3]);
    assert!(
        x_dims[1] == channels_in
            && grad_dims[0] == batch
            && grad_dims[1] == channels_out
            && out_h + kernel_h == height + 1
            && out_w + kernel_w == width + 1,
        "conv2d_valid_weight_backward: input {x_dims:?}, weight {weight_dims:?} and output \
         gradient {grad_dims:?} do not belong to one valid convolution"
    );
    let positions = out_h * out_w;
    let rows = channels_in * kernel_h * kernel_w;
    let x_image = channels_in * height * width;
    let grad_image = channels_out * positions;
    let x_values = slice_f32(&x);
    let grad_values = slice_f32(&grad);

    let starts: Vec<usize> = (0..batch).step_by(IMAGES_PER_TASK).collect();
    let partial_sums: Vec<Vec<f32>> = starts
        .into_par_iter()
        .map(|start| {
            let mut sum = vec![0f32; channels_out * rows];
            // im2col of one image: row (c, i, j) contains X[c, p_row + i, p_col + j] over all
            // output positions p, so the gradient is dY [o x p] times the transpose.
            let mut columns = vec![0f32; rows * positions];
            let end = (start + IMAGES_PER_TASK).min(batch);
            for image in start..end {
                let x_img = &x_values[image * x_image..(image + 1) * x_image];
                im2col(
                    x_img,
                    [height, width],
                    [kernel_h, kernel_w],
                    out_w,
                    &mut columns,
                );
                let grad_img = &grad_values[image * grad_image..(image + 1) * grad_image];
                // SAFETY: `sum` is [channels_out x rows] with row stride `rows`, `grad_img` is
                // [channels_out x positions] with row stride `positions`, and `columns` read as
                // its transpose is [positions x rows] with row stride 1 and column stride
                // `positions`. All three slices have exactly those lengths and do not overlap.
                unsafe {
                    gemm::gemm(
                        channels_out,
                        rows,
                        positions,
                        sum.as_mut_ptr(),
                        1,
                        rows as isize,
                        image != start,
                        grad_img.as_ptr(),
                        1,
                        positions as isize,
                        columns.as_ptr(),
                        positions as isize,
                        1,
                        1.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
            }
            sum
        })
        .collect();

    let mut total = vec![0f32; channels_out * rows];
    for partial in &partial_sums {
        for (t, p) in total.iter_mut().zip(partial) {
            *t += p;
        }
    }
    FlexTensor::new(
        Bytes::from_elems(total),
        Layout::contiguous(Shape::from(weight_dims.to_vec())),
        DType::F32,
    )
}

/// Writes the im2col matrix of one `[channels, height, width]` image into `columns`: row
/// `(c, i, j)` (row-major over the weight's last three dims) contains `X[c, p_row + i, p_col + j]`
/// over all output positions `p`, so `columns` is `[channels * kernel_h * kernel_w, out_h * out_w]`.
fn im2col(
    image: &[f32],
    [height, width]: [usize; 2],
    [kernel_h, kernel_w]: [usize; 2],
    out_w: usize,
    columns: &mut [f32],
) {
    let positions = (height + 1 - kernel_h) * out_w;
    for (row, column) in columns.chunks_exact_mut(positions).enumerate() {
        let (c, i, j) = (
            row / (kernel_h * kernel_w),
            row / kernel_w % kernel_h,
            row % kernel_w,
        );
        for (p_row, out) in column.chunks_exact_mut(out_w).enumerate() {
            let at = c * height * width + (p_row + i) * width + j;
            out.copy_from_slice(&image[at..at + out_w]);
        }
    }
}

/// Images per rayon task of the convolution forward pass and input gradient.
const FORWARD_IMAGES_PER_TASK: usize = 4;

/// Returns `len` f32s written by `fill` in parallel, one call per chunk of `chunk` elements
/// with the chunk's index. This skips the zeroing pass of `vec![0.0; len]`, a full write of
/// memory that every kernel here overwrites anyway.
///
/// # Safety
/// `fill` must write every element of the chunk it is given.
unsafe fn par_filled(
    len: usize,
    chunk: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync,
) -> Vec<f32> {
    let mut values = Vec::with_capacity(len);
    if len > 0 {
        values.spare_capacity_mut()[..len]
            .par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(index, part)| fill(index, part));
    }
    // SAFETY: the capacity is `len`, and the caller's `fill` wrote every chunk in full.
    unsafe { values.set_len(len) };
    values
}

/// Writes `value` to every element of `slots`.
fn fill_uninit(slots: &mut [MaybeUninit<f32>], value: f32) {
    for slot in slots {
        slot.write(value);
    }
}

/// Computes a valid convolution as one gemm per image, `Y[o, p] = b[o] + sum_r W[o, r] *
/// columns[r, p]` over the im2col columns, in parallel over groups of images. The bias is one more
/// column of the weight matrix, matched by a row of ones under the im2col columns, so the gemm
/// writes each output once and nothing fills it first. Every output element is one dot
/// product of length `channels_in * kernel_h * kernel_w + 1`, so the result does not depend
/// on the number of threads.
fn conv_forward_flex_f32(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
    let (x, x_dims) = contiguous_f32(&x);
    let (weight, weight_dims) = contiguous_f32(&weight);
    let (bias, bias_dims) = contiguous_f32(&bias);
    let (batch, channels_in, height, width) = (x_dims[0], x_dims[1], x_dims[2], x_dims[3]);
    let (channels_out, kernel_h, kernel_w) = (weight_dims[0], weight_dims[2], weight_dims[3]);
    assert!(
        weight_dims[1] == channels_in
            && bias_dims == [channels_out]
            && kernel_h <= height
            && kernel_w <= width,
        "conv2d_valid: input {x_dims:?}, weight {weight_dims:?} and bias {bias_dims:?} do not \
         belong to one valid convolution"
    );
    let (out_h, out_w) = (height + 1 - kernel_h, width + 1 - kernel_w);
    let positions = out_h * out_w;
    let rows = channels_in * kernel_h * kernel_w;
    let x_image = channels_in * height * width;
    let out_image = channels_out * positions;
    let x_values = slice_f32(&x);
    // [channels_out x (rows + 1)]: each filter's weights, then its bias.
    let weight_bias: Vec<f32> = slice_f32(&weight)
        .chunks_exact(rows.max(1))
        .zip(slice_f32(&bias))
        .flat_map(|(filter, &b)| filter.iter().copied().chain([b]))
        .collect();
    let depth = rows + 1;

    let fill = |task: usize, out_chunk: &mut [MaybeUninit<f32>]| {
        // The last row stays all ones: im2col writes only the rows above it.
        let mut columns = vec![1f32; depth * positions];
        for (k, out_img) in out_chunk.chunks_exact_mut(out_image).enumerate() {
            let image = task * FORWARD_IMAGES_PER_TASK + k;
            let x_img = &x_values[image * x_image..(image + 1) * x_image];
            im2col(
                x_img,
                [height, width],
                [kernel_h, kernel_w],
                out_w,
                &mut columns[..rows * positions],
            );
            // SAFETY: `out_img` is [channels_out x positions] with row stride `positions`,
            // `weight_bias` is [channels_out x depth] with row stride `depth`, and `columns` is
            // [depth x positions] with row stride `positions`. The slices have exactly those
            // lengths and do not overlap. With `read_dst` false the gemm only writes `out_img`,
            // every element of it.
            unsafe {
                gemm::gemm(
                    channels_out,
                    positions,
                    depth,
                    out_img.as_mut_ptr().cast::<f32>(),
                    1,
                    positions as isize,
                    false,
                    weight_bias.as_ptr(),
                    1,
                    depth as isize,
                    columns.as_ptr(),
                    1,
                    positions as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        }
    };
    let chunk = (out_image * FORWARD_IMAGES_PER_TASK).max(1);
    // SAFETY: every chunk is whole images, and the gemm writes every element of each image.
    let output = unsafe { par_filled(batch * out_image, chunk, fill) };
    FlexTensor::new(
        Bytes::from_elems(output),
        Layout::contiguous(Shape::from(vec![batch, channels_out, out_h, out_w])),
        DType::F32,
    )
}

/// Computes the input gradient of a valid convolution per image as the gemm `columns = W^T dY`
/// followed by col2im, which adds each column entry back onto the input position it was
/// copied from. Images run in parallel and each writes only its own gradient, in a fixed
/// order, so the result does not depend on the number of threads.
fn conv_x_grad_flex_f32(
    x_dims: [usize; 4],
    weight: FlexTensor,
    output_grad: FlexTensor,
) -> FlexTensor {
    let [batch, channels_in, height, width] = x_dims;
    let (weight, weight_dims) = contiguous_f32(&weight);
    let (grad, grad_dims) = contiguous_f32(&output_grad);
    let (channels_out, kernel_h, kernel_w) = (weight_dims[0], weight_dims[2], weight_dims[3]);
    let (out_h, out_w) = (grad_dims[2], grad_dims[3]);
    assert!(
        weight_dims[1] == channels_in
            && grad_dims[0] == batch
            && grad_dims[1] == channels_out
            && out_h + kernel_h == height + 1
            && out_w + kernel_w == width + 1,
        "conv2d_valid_x_backward: input {x_dims:?}, weight {weight_dims:?} and output \
         gradient {grad_dims:?} do not belong to one valid convolution"
    );
    let positions = out_h * out_w;
    let rows = channels_in * kernel_h * kernel_w;
    let x_image = channels_in * height * width;
    let grad_image = channels_out * positions;
    let (weight_values, grad_values) = (slice_f32(&weight), slice_f32(&grad));

    let fill = |task: usize, x_chunk: &mut [MaybeUninit<f32>]| {
        let mut columns = vec![0f32; rows * positions];
        for (k, x_img) in x_chunk.chunks_exact_mut(x_image).enumerate() {
            let image = task * FORWARD_IMAGES_PER_TASK + k;
            let grad_img = &grad_values[image * grad_image..(image + 1) * grad_image];
            // SAFETY: `columns` is [rows x positions] with row stride `positions`, W^T is
            // [rows x channels_out] read from the [channels_out x rows] weight with row
            // stride 1 and column stride `rows`, and `grad_img` is [channels_out x positions]
            // with row stride `positions`. The slices have exactly those lengths and do not
            // overlap.
            unsafe {
                gemm::gemm(
                    rows,
                    positions,
                    channels_out,
                    columns.as_mut_ptr(),
                    1,
                    positions as isize,
                    false,
                    weight_values.as_ptr(),
                    rows as isize,
                    1,
                    grad_img.as_ptr(),
                    1,
                    positions as isize,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
            // Zeroed here rather than at allocation, so the image is still in cache when
            // col2im adds onto it.
            fill_uninit(x_img, 0.0);
            // SAFETY: every element of `x_img` was just written.
            let x_img = unsafe { &mut *(std::ptr::from_mut(x_img) as *mut [f32]) };
            for (row, column) in columns.chunks_exact(positions).enumerate() {
                let (c, i, j) = (
                    row / (kernel_h * kernel_w),
                    row / kernel_w % kernel_h,
                    row % kernel_w,
                );
                for (p_row, values) in column.chunks_exact(out_w).enumerate() {
                    let at = c * height * width + (p_row + i) * width + j;
                    for (dx, v) in x_img[at..at + out_w].iter_mut().zip(values) {
                        *dx += v;
                    }
                }
            }
        }
    };
    let chunk = (x_image * FORWARD_IMAGES_PER_TASK).max(1);
    // SAFETY: every chunk is whole images, and each image is zeroed before col2im adds to it.
    let x_grad = unsafe { par_filled(batch * x_image, chunk, fill) };
    FlexTensor::new(
        Bytes::from_elems(x_grad),
        Layout::contiguous(Shape::from(x_dims.to_vec())),
        DType::F32,
    )
}

/// Computes the bias gradient of a convolution, `db[o] = sum over images and positions of
/// dY[b, o, p]`, with images split into tasks of [`IMAGES_PER_TASK`] and the task sums added
/// in order. burn's generic version first copies the whole gradient into `[o, b * p]` order.
fn conv_bias_grad_flex_f32(output_grad: FlexTensor) -> FlexTensor {
    let (grad, dims) = contiguous_f32(&output_grad);
    let (batch, channels) = (dims[0], dims[1]);
    let positions = dims[2] * dims[3];
    let image = channels * positions;
    let values = slice_f32(&grad);

    let starts: Vec<usize> = (0..batch).step_by(IMAGES_PER_TASK).collect();
    let partial_sums: Vec<Vec<f32>> = starts
        .into_par_iter()
        .map(|start| {
            let mut sum = vec![0f32; channels];
            let end = (start + IMAGES_PER_TASK).min(batch);
            for img in values[start * image..end * image].chunks_exact(image.max(1)) {
                for (s, row) in sum.iter_mut().zip(img.chunks_exact(positions.max(1))) {
                    *s += sum_f32(row);
                }
            }
            sum
        })
        .collect();
    let mut total = vec![0f32; channels];
    for partial in &partial_sums {
        for (t, p) in total.iter_mut().zip(partial) {
            *t += p;
        }
    }
    FlexTensor::new(
        Bytes::from_elems(total),
        Layout::contiguous(Shape::from(vec![channels])),
        DType::F32,
    )
}

/// Sums `values` over 16 lanes, so the compiler can vectorize the loop (a single running f32
/// sum must add one element after the other).
fn sum_f32(values: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut lanes = [0f32; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane += v;
        }
    }
    lanes.iter().sum::<f32>() + rest
}

/// Returns the elements of a contiguous Flex f32 tensor.
fn slice_f32(tensor: &FlexTensor) -> &[f32] {
    let storage: &[f32] = tensor.storage();
    let (start, end) = tensor
        .layout()
        .contiguous_offsets()
        .unwrap_or_else(|| unreachable!("to_contiguous returns a contiguous layout"));
    &storage[start..end]
}

/// Returns ReLU of a pooled value as burn-flex computes it: NaN stays NaN, and zero or below
/// becomes zero.
fn relu_f32(value: f32) -> f32 {
    if value.is_nan() || value > 0.0 {
        value
    } else {
        0.0
    }
}

/// Applies ReLU and the 2x2 max-pool to a contiguous or strided f32 `[b, c, h, w]` Flex tensor,
/// one rayon task per few planes.
fn pool_flex_f32(x: FlexTensor) -> FlexTensor {
    let (x, dims) = contiguous_f32(&x);
    let (batch, channels, height, width) = (dims[0], dims[1], dims[2], dims[3]);
    let (out_h, out_w) = (height / POOL, width / POOL);
    let (in_plane, out_plane) = (height * width, out_h * out_w);
    let input = slice_f32(&x);

    let fill = |task: usize, out: &mut [MaybeUninit<f32>]| {
        let first = task * PLANES_PER_TASK;
        for (k, o) in out.chunks_exact_mut(out_plane).enumerate() {
            let plane = &input[(first + k) * in_plane..(first + k + 1) * in_plane];
            pool_plane(plane, width, out_w, o);
        }
    };
    let chunk = (out_plane * PLANES_PER_TASK).max(1);
    // SAFETY: every chunk is whole planes, and `pool_plane` writes every output of a plane.
    let output = unsafe { par_filled(batch * channels * out_plane, chunk, fill) };
    FlexTensor::new(
        Bytes::from_elems(output),
        Layout::contiguous(Shape::from(vec![batch, channels, out_h, out_w])),
        DType::F32,
    )
}

/// Computes the input gradient of ReLU and the 2x2 max-pool of `x`: finds each window's
/// winner again with [`window_argmax`] (the rule of the forward pass) and writes the output
/// gradient there, or zero if the winner is zero or below. Recomputing the winner from `x`,
/// which autodiff keeps anyway, saves the forward pass from writing an index per output.
fn unpool_flex_f32(x: FlexTensor, output_grad: FlexTensor) -> FlexTensor {
    let (x, dims) = contiguous_f32(&x);
    let (grad, grad_dims) = contiguous_f32(&output_grad);
    let (batch, channels, height, width) = (dims[0], dims[1], dims[2], dims[3]);
    let (out_h, out_w) = (height / POOL, width / POOL);
    assert!(
        grad_dims == [batch, channels, out_h, out_w],
        "relu_max_pool2x2_backward: output gradient {grad_dims:?} does not match input {dims:?}"
    );
    let (in_plane, out_plane) = (height * width, out_h * out_w);
    let (input, grads) = (slice_f32(&x), slice_f32(&grad));

    let fill = |task: usize, gx: &mut [MaybeUninit<f32>]| {
        let first = task * PLANES_PER_TASK;
        for (k, gx) in gx.chunks_exact_mut(in_plane).enumerate() {
            let xp = &input[(first + k) * in_plane..(first + k + 1) * in_plane];
            let gp = &grads[(first + k) * out_plane..(first + k + 1) * out_plane];
            unpool_plane(xp, gp, width, out_w, gx);
        }
    };
    let chunk = (in_plane * PLANES_PER_TASK).max(1);
    // SAFETY: every chunk is whole planes. `unpool_plane` writes each window row in full, odd
    // column included, and any row below the last window.
    let x_grad = unsafe { par_filled(batch * channels * in_plane, chunk, fill) };
    FlexTensor::new(
        Bytes::from_elems(x_grad),
        Layout::contiguous(Shape::from(dims)),
        DType::F32,
    )
}

/// Returns the position (row-major, 0 to 3) of the winner of a 2x2 window: the first of equal
/// maxima, or the last NaN if there is one. This is the rule of burn-flex's own
/// `max_pool3d_with_indices_impl` (0.22.1), so both paths route gradients to the same element,
/// also on the ties that ReLU zeros create.
///
/// Returns the winner's value too. The steps are unrolled on scalars: the same loop over an
/// array with a variable index measured several times slower once inlined (perf, 2 threads).
#[inline(always)]
fn window_argmax(candidates: [f32; 4]) -> (usize, f32) {
    let [a, b, c, d] = candidates;
    // `|` instead of `||` and selects instead of branches: the winner of a ReLU output is
    // unpredictable, so branches would mispredict about once per window.
    let wins = |challenger: f32, current: f32| (challenger > current) | challenger.is_nan();
    let take_b = wins(b, a);
    let (best, value) = (usize::from(take_b), if take_b { b } else { a });
    let take_c = wins(c, value);
    let (best, value) = (
        if take_c { 2 } else { best },
        if take_c { c } else { value },
    );
    let take_d = wins(d, value);
    (
        if take_d { 3 } else { best },
        if take_d { d } else { value },
    )
}

/// Writes the input gradient of ReLU and the 2x2 max-pool for one `[height, width]` plane `x`
/// and its `[height / 2, out_w]` output gradient `grad`. Each window's winner gets its output
/// gradient, or zero if the winner is zero or below. Every other element gets zero, including
/// the row and column an odd side leaves out, so every element of `x_grad` is written.
fn unpool_plane(
    x: &[f32],
    grad: &[f32],
    width: usize,
    out_w: usize,
    x_grad: &mut [MaybeUninit<f32>],
) {
    if out_w == 0 {
        fill_uninit(x_grad, 0.0);
        return;
    }
    let pairs = x.chunks_exact(POOL * width);
    let mut grad_pairs = x_grad.chunks_exact_mut(POOL * width);
    for ((rows, grad_row), grad_rows) in pairs.zip(grad.chunks_exact(out_w)).zip(&mut grad_pairs) {
        let (top, bottom) = rows.split_at(width);
        let (grad_top, grad_bottom) = grad_rows.split_at_mut(width);
        unpool_row_pair(top, bottom, grad_row, grad_top, grad_bottom);
        // The column an odd width leaves out.
        fill_uninit(&mut grad_top[POOL * out_w..], 0.0);
        fill_uninit(&mut grad_bottom[POOL * out_w..], 0.0);
    }
    // The row an odd height leaves out.
    fill_uninit(grad_pairs.into_remainder(), 0.0);
}

/// Writes the gradient of one row pair of 2x2 windows: `top` and `bottom` are the two input
/// rows, `grad` the output gradients of their `grad.len()` windows. Eight windows at a time
/// run on AVX2 where the CPU has it, the rest through [`unpool_window`].
fn unpool_row_pair(
    top: &[f32],
    bottom: &[f32],
    grad: &[f32],
    grad_top: &mut [MaybeUninit<f32>],
    grad_bottom: &mut [MaybeUninit<f32>],
) {
    let n = grad.len();
    let (top, bottom) = (&top[..POOL * n], &bottom[..POOL * n]);
    let (grad_top, grad_bottom) = (&mut grad_top[..POOL * n], &mut grad_bottom[..POOL * n]);
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if n >= 8 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, and all four rows hold 2n elements.
        done = unsafe { unpool_row_pair_avx2(top, bottom, grad, grad_top, grad_bottom) };
    }
    for i in done..n {
        let window = [top[2 * i], top[2 * i + 1], bottom[2 * i], bottom[2 * i + 1]];
        let [a, b, c, d] = unpool_window(window, grad[i]);
        grad_top[2 * i].write(a);
        grad_top[2 * i + 1].write(b);
        grad_bottom[2 * i].write(c);
        grad_bottom[2 * i + 1].write(d);
    }
}

/// Returns the input gradient of one 2x2 window of ReLU and max-pool: `grad` at the winner
/// (the rule of [`window_argmax`]) if the winner is positive or NaN, zero elsewhere.
///
/// The selects are written as bit masks: with plain `if`s the compiler chose branches, and
/// the winner of a ReLU output is too unpredictable for them (perf showed the loop stalled on
/// mispredictions).
#[inline(always)]
fn unpool_window(window: [f32; 4], grad: f32) -> [f32; 4] {
    let mask = |keep: bool| 0u32.wrapping_sub(u32::from(keep));
    let select =
        |keep: u32, x: f32, y: f32| f32::from_bits((x.to_bits() & keep) | (y.to_bits() & !keep));
    let [a, b, c, d] = window;
    let take_b = mask((b > a) | b.is_nan());
    let value = select(take_b, b, a);
    let take_c = mask((c > value) | c.is_nan());
    let value = select(take_c, c, value);
    let take_d = mask((d > value) | d.is_nan());
    let value = select(take_d, d, value);
    let g = grad.to_bits() & mask((value > 0.0) | value.is_nan());
    [
        f32::from_bits(g & !(take_b | take_c | take_d)),
        f32::from_bits(g & take_b & !(take_c | take_d)),
        f32::from_bits(g & take_c & !take_d),
        f32::from_bits(g & take_d),
    ]
}

/// Runs [`unpool_window`] on groups of eight windows with AVX2 and returns how many windows
/// it wrote (a multiple of eight); the caller does the rest.
///
/// # Safety
/// The CPU must support AVX2. `top`, `bottom`, `grad_top` and `grad_bottom` must hold
/// `2 * grad.len()` elements each.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn unpool_row_pair_avx2(
    top: &[f32],
    bottom: &[f32],
    grad: &[f32],
    grad_top: &mut [MaybeUninit<f32>],
    grad_bottom: &mut [MaybeUninit<f32>],
) -> usize {
    use std::arch::x86_64::*;
    let groups = grad.len() / 8;
    for k in 0..groups {
        // SAFETY: group k reads and writes elements 16k..16k + 16 of the rows and 8k..8k + 8
        // of `grad`, within the lengths the caller guarantees. Loads and stores are unaligned.
        unsafe {
            let load = |row: &[f32], at: usize| _mm256_loadu_ps(row.as_ptr().add(at));
            let (t0, t1) = (load(top, 16 * k), load(top, 16 * k + 8));
            let (b0, b1) = (load(bottom, 16 * k), load(bottom, 16 * k + 8));
            // Even and odd elements of each row: windows in the order 0 1 4 5 2 3 6 7.
            let a = _mm256_shuffle_ps::<0b10_00_10_00>(t0, t1);
            let b = _mm256_shuffle_ps::<0b11_01_11_01>(t0, t1);
            let c = _mm256_shuffle_ps::<0b10_00_10_00>(b0, b1);
            let d = _mm256_shuffle_ps::<0b11_01_11_01>(b0, b1);
            // The gradients in the same order: 64-bit pairs 0 2 1 3.
            let g = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(
                _mm256_loadu_ps(grad.as_ptr().add(8 * k)),
            )));
            let wins = |challenger: __m256, current: __m256| {
                _mm256_or_ps(
                    _mm256_cmp_ps::<_CMP_GT_OQ>(challenger, current),
                    _mm256_cmp_ps::<_CMP_UNORD_Q>(challenger, challenger),
                )
            };
            let take_b = wins(b, a);
            let value = _mm256_blendv_ps(a, b, take_b);
            let take_c = wins(c, value);
            let value = _mm256_blendv_ps(value, c, take_c);
            let take_d = wins(d, value);
            let value = _mm256_blendv_ps(value, d, take_d);
            let g = _mm256_and_ps(g, wins(value, _mm256_setzero_ps()));
            let later_cd = _mm256_or_ps(take_c, take_d);
            let out_a = _mm256_andnot_ps(_mm256_or_ps(take_b, later_cd), g);
            let out_b = _mm256_and_ps(_mm256_andnot_ps(later_cd, take_b), g);
            let out_c = _mm256_and_ps(_mm256_andnot_ps(take_d, take_c), g);
            let out_d = _mm256_and_ps(take_d, g);
            // Interleaving each lane's first and last two windows restores the row order.
            let store = |row: &mut [MaybeUninit<f32>], at: usize, v: __m256| {
                _mm256_storeu_ps(row.as_mut_ptr().add(at).cast::<f32>(), v);
            };
            store(grad_top, 16 * k, _mm256_unpacklo_ps(out_a, out_b));
            store(grad_top, 16 * k + 8, _mm256_unpackhi_ps(out_a, out_b));
            store(grad_bottom, 16 * k, _mm256_unpacklo_ps(out_c, out_d));
            store(grad_bottom, 16 * k + 8, _mm256_unpackhi_ps(out_c, out_d));
        }
    }
    8 * groups
}

/// Pools one `[height, width]` plane into `[height / 2, out_w]` and applies ReLU to each
/// pooled value. Writes every element of `out`.
fn pool_plane(plane: &[f32], width: usize, out_w: usize, out: &mut [MaybeUninit<f32>]) {
    if out_w == 0 {
        return;
    }
    for (rows, out_row) in plane
        .chunks_exact(POOL * width)
        .zip(out.chunks_exact_mut(out_w))
    {
        let (top, bottom) = rows.split_at(width);
        let windows = top.chunks_exact(POOL).zip(bottom.chunks_exact(POOL));
        for ((t, b), o) in windows.zip(out_row) {
            let (_, value) = window_argmax([t[0], t[1], b[0], b[1]]);
            o.write(relu_f32(value));
        }
    }
}

/// Backward of [`FastOps::relu_max_pool2x2`], through [`ReluMaxPool2x2BackwardOps`].
#[derive(Debug)]
struct ReluMaxPool2x2Backward;

impl<B: Backend + ReluMaxPool2x2BackwardOps> Backward<B, 1> for ReluMaxPool2x2Backward {
    type State = NodeId;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [parent] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let x: FloatTensor<B> = checkpointer.retrieve_node_output(ops.state);
        if let Some(node) = parent {
            let x_grad = B::relu_max_pool2x2_backward(x, grad);
            grads.register::<B>(node.id, x_grad);
        }
    }
}

/// Backward of [`FastOps::conv2d_valid`]: the input and weight gradients of
/// [`ConvValidBackwardOps`] and burn's bias gradient.
#[derive(Debug)]
struct ConvValidBackward;

impl<B: Backend + ConvValidBackwardOps> Backward<B, 3> for ConvValidBackward {
    type State = (NodeId, NodeId, NodeId);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state, bias_state) = ops.state;
        let x: FloatTensor<B> = checkpointer.retrieve_node_output(x_state);
        let weight: FloatTensor<B> = checkpointer.retrieve_node_output(weight_state);
        let bias: FloatTensor<B> = checkpointer.retrieve_node_output(bias_state);

        if let Some(node) = node_x {
            let x_grad = B::conv2d_valid_x_backward(x.clone(), weight.clone(), grad.clone());
            grads.register::<B>(node.id, x_grad);
        }
        if let Some(node) = node_weight {
            let weight_grad = B::conv2d_valid_weight_backward(x.clone(), weight, grad.clone());
            grads.register::<B>(node.id, weight_grad);
        }
        if let Some(node) = node_bias {
            grads.register::<B>(node.id, B::conv2d_valid_bias_backward(x, bias, grad));
        }
    }
}

impl<B, C> FastOps for Autodiff<B, C>
where
    B: Backend + FastOps + ReluMaxPool2x2BackwardOps + ConvValidBackwardOps,
    C: CheckpointStrategy,
{
    fn conv2d_valid(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        match ConvValidBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                let bias_state = prep.checkpoint(&bias);
                let output = B::conv2d_valid(
                    x.into_primitive(),
                    weight.into_primitive(),
                    bias.into_primitive(),
                );
                prep.finish((x_state, weight_state, bias_state), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::conv2d_valid(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
            )),
        }
    }

    fn relu_max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match ReluMaxPool2x2Backward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                prep.finish(x_state, B::relu_max_pool2x2(x.into_primitive()))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::relu_max_pool2x2(x.into_primitive())),
        }
    }
}

/// Applies `conv` to `x`, through [`FastOps::conv2d_valid`] when `x` is on a Flex device and
/// `conv` is a valid convolution with a bias (what `Conv2dConfig::new` builds), and through
/// `conv.forward` otherwise.
///
/// # Shapes
/// - x: `[batch_size, channels_in, height, width]`
/// - output: `[batch_size, channels_out, height - kernel_height + 1, width - kernel_width + 1]`
pub fn conv2d_valid(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let valid = conv.stride == [1, 1]
        && conv.dilation == [1, 1]
        && conv.groups == 1
        && matches!(conv.padding, PaddingConfig2d::Valid);
    match &conv.bias {
        Some(bias) if valid && x.device().inner() == Device::flex() => {
            Tensor::from_dispatch(<Dispatch as FastOps>::conv2d_valid(
                x.into_dispatch(),
                conv.weight.val().into_dispatch(),
                bias.val().into_dispatch(),
            ))
        }
        _ => conv.forward(x),
    }
}

/// Applies ReLU and then a 2x2 max-pool with stride 2 (floor rounding), in one pass through
/// [`FastOps::relu_max_pool2x2`] on Flex devices and as burn's `relu` and `max_pool2d`
/// elsewhere. The values and gradients are those of the two separate ops.
///
/// # Shapes
/// - x: `[batch_size, channels, height, width]`
/// - output: `[batch_size, channels, height / 2, width / 2]`
pub fn relu_max_pool2x2(x: Tensor<4>) -> Tensor<4> {
    if x.device().inner() == Device::flex() {
        Tensor::from_dispatch(<Dispatch as FastOps>::relu_max_pool2x2(x.into_dispatch()))
    } else {
        burn::tensor::module::max_pool2d(relu(x), MaxPoolOptions::new([POOL; 2]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::module::max_pool2d;

    /// Runs [`pool_plane`] and [`unpool_plane`] on a `[height, width]` plane. Returns the pooled
    /// values and, per window, the flat index of the element its gradient reaches (`None` if
    /// ReLU stops it). Checks that the backward pass writes every element of the plane.
    fn pool_and_winners(
        plane: &[f32],
        width: usize,
        out_h: usize,
        out_w: usize,
    ) -> (Vec<f32>, Vec<Option<usize>>) {
        // Sentinels that neither pass may leave behind.
        let mut out = vec![MaybeUninit::new(f32::INFINITY); out_h * out_w];
        pool_plane(plane, width, out_w, &mut out);
        // SAFETY: every element was initialised above.
        let values: Vec<f32> = out.iter().map(|v| unsafe { v.assume_init() }).collect();
        assert!(
            values.iter().all(|v| v.is_finite() || v.is_nan()),
            "{values:?}"
        );

        // Window k gets output gradient k + 1, so each gradient value identifies its window.
        let grad: Vec<f32> = (1..=out_h * out_w).map(|k| k as f32).collect();
        let mut x_grad = vec![MaybeUninit::new(f32::INFINITY); plane.len()];
        unpool_plane(plane, &grad, width, out_w, &mut x_grad);
        // SAFETY: every element was initialised above.
        let x_grad: Vec<f32> = x_grad.iter().map(|v| unsafe { v.assume_init() }).collect();
        assert!(x_grad.iter().all(|v| v.is_finite()), "{x_grad:?}");
        let winners = grad
            .iter()
            .map(|&g| {
                let reached: Vec<usize> = (0..plane.len()).filter(|&i| x_grad[i] == g).collect();
                assert!(reached.len() <= 1, "gradient {g} reaches {reached:?}");
                reached.first().copied()
            })
            .collect();
        let nonzero = x_grad.iter().filter(|&&v| v != 0.0).count();
        assert!(nonzero <= out_h * out_w, "stray gradients in {x_grad:?}");
        (values, winners)
    }

    #[test]
    fn pool_plane_drops_odd_edges() {
        // A 3x5 plane pools to 1x2: the third row and the fifth column fall outside every
        // window, so their 100s and 9s must not appear. Window 0 contains 1, 5, 3, 0: maximum 5 at
        // (0, 1), flat index 1. Window 1 contains 2, 2, 2, 7: maximum 7 at (1, 3), index 5 + 3 = 8.
        #[rustfmt::skip]
        let plane = [
            1.0, 5.0, 2.0, 2.0, 9.0,
            3.0, 0.0, 2.0, 7.0, 9.0,
            100.0, 100.0, 100.0, 100.0, 100.0,
        ];
        let (out, winners) = pool_and_winners(&plane, 5, 1, 2);
        assert_eq!(out, [5.0, 7.0]);
        assert_eq!(winners, [Some(1), Some(8)]);
    }

    #[test]
    fn pool_plane_ties_and_nan() {
        // Window 0 contains zeros (what ReLU leaves) and a 3 at (1, 1), flat index 7, and
        // window 1 ties 4 at (0, 2) and (1, 2): the first one, index 2, wins. Window 2 contains
        // NaN at (0, 4), 1, 2 and NaN at (1, 5): a NaN wins and the last one gets the gradient,
        // flat index 6 + 5 = 11, as in burn-flex 0.22.1's max_pool3d_with_indices_impl.
        #[rustfmt::skip]
        let plane = [
            0.0, 0.0, 4.0, 1.0, f32::NAN, 1.0,
            0.0, 3.0, 4.0, 0.0, 2.0, f32::NAN,
        ];
        let (out, winners) = pool_and_winners(&plane, 6, 1, 3);
        assert_eq!(out[..2], [3.0, 4.0]);
        assert!(
            out[2].is_nan(),
            "a NaN in the window gives NaN, got {}",
            out[2]
        );
        assert_eq!(winners, [Some(7), Some(2), Some(11)]);
    }

    #[test]
    fn pool_plane_applies_relu_after_the_maximum() {
        // Window 0 is all negative: its maximum -1 becomes 0 and passes no gradient. Window 1
        // contains a zero and negatives: 0, no gradient. Window 2 mixes signs: 0.5 at flat index 4
        // survives and gets the gradient.
        #[rustfmt::skip]
        let plane = [
            -3.0, -2.0, -1.0, 0.0, 0.5, -9.0,
            -1.0, -4.0, -5.0, -0.5, -2.0, -1.0,
        ];
        let (out, winners) = pool_and_winners(&plane, 6, 1, 3);
        assert_eq!(out, [0.0, 0.0, 0.5]);
        assert!(
            out.iter().all(|v| v.is_sign_positive()),
            "ReLU gives +0, got {out:?}"
        );
        assert_eq!(winners, [None, None, Some(4)]);
    }

    /// Values -0.5, -0.25, 0, 0.25 and 0.5 in `[b, c, h, w]`, so many windows tie before and
    /// after ReLU, and one NaN.
    fn tied_input(dims: [usize; 4], device: &Device) -> Tensor<4> {
        let count: usize = dims.iter().product();
        let mut values: Vec<f32> = (0..count)
            .map(|k| ((k * 7919 % 5) as f32 - 2.0) * 0.25)
            .collect();
        values[count / 3] = f32::NAN;
        Tensor::from_data(TensorData::new(values, dims), device)
    }

    fn bits(tensor: Tensor<4>) -> Vec<u32> {
        let values: Vec<f32> = tensor.into_data().try_into_vec().unwrap();
        values.iter().map(|v| v.to_bits()).collect()
    }

    #[test]
    fn flex_relu_pool_equals_burn_relu_then_max_pool2d() {
        let device = Device::flex();
        // Odd sides (11 and 9) check the floor rounding. The swapped view checks that a
        // non-contiguous input is read in logical order.
        for x in [
            tied_input([3, 4, 11, 9], &device),
            tied_input([3, 4, 9, 11], &device).swap_dims(2, 3),
        ] {
            let fast = relu_max_pool2x2(x.clone());
            assert_eq!(fast.dims(), [3, 4, 5, 4]);
            let reference = max_pool2d(relu(x.clone()), MaxPoolOptions::new([POOL; 2]));
            assert_eq!(bits(fast), bits(reference));
        }
    }

    /// Pools `x` with `pool` on the autodiff device and returns the output and the gradient of
    /// `sum(output * weights)` with respect to `x`, which is `weights` routed to each argmax.
    fn pool_and_gradient(
        x: Tensor<4>,
        pool: impl Fn(Tensor<4>) -> Tensor<4>,
    ) -> (Tensor<4>, Tensor<4>) {
        let x = x.require_grad();
        let output = pool(x.clone());
        let count = output.shape().num_elements();
        let weights: Vec<f32> = (0..count).map(|k| 1.0 + k as f32).collect();
        let weights = Tensor::<4>::from_data(TensorData::new(weights, output.dims()), &x.device());
        let grads = (output.clone() * weights).sum().backward();
        let grad = x
            .grad(&grads)
            .unwrap_or_else(|| panic!("the pool input gets no gradient"));
        (output.detach(), grad)
    }

    #[test]
    fn autodiff_relu_pool_equals_burn_relu_then_max_pool2d() {
        let device = Device::flex().autodiff();
        // Rows of 5 windows run through the scalar code only. Rows of 17 windows (width 35)
        // also run two groups of 8 through the AVX2 code, on CPUs that have it, and leave an
        // odd column.
        for dims in [[2, 3, 9, 11], [2, 3, 8, 35]] {
            let x = tied_input(dims, &device);
            let (fast, fast_grad) = pool_and_gradient(x.clone(), relu_max_pool2x2);
            let (reference, reference_grad) =
                pool_and_gradient(x, |x| max_pool2d(relu(x), MaxPoolOptions::new([POOL; 2])));
            assert_eq!(bits(fast), bits(reference), "{dims:?}");
            // The weights are distinct, so a gradient routed to another element of its window
            // (or dropped) changes the bits.
            assert_eq!(bits(fast_grad), bits(reference_grad), "{dims:?}");
        }
    }

    #[test]
    fn avx2_and_scalar_unpool_agree() {
        // All 6^4 windows over the values -1, 0, 0.5 (twice, so ties), 2 and NaN, each with a
        // distinct gradient, through `unpool_row_pair` (AVX2 for groups of 8 where available)
        // and through `unpool_window` alone.
        let values = [-1.0, 0.0, 0.5, 0.5, 2.0, f32::NAN];
        let windows: Vec<[f32; 4]> = (0..6usize.pow(4))
            .map(|k| [k % 6, k / 6 % 6, k / 36 % 6, k / 216].map(|i| values[i]))
            .collect();

        let n = windows.len();
        let top: Vec<f32> = windows.iter().flat_map(|w| [w[0], w[1]]).collect();
        let bottom: Vec<f32> = windows.iter().flat_map(|w| [w[2], w[3]]).collect();
        let grad: Vec<f32> = (1..=n).map(|k| k as f32).collect();
        let mut grad_top = vec![MaybeUninit::new(f32::INFINITY); 2 * n];
        let mut grad_bottom = vec![MaybeUninit::new(f32::INFINITY); 2 * n];
        unpool_row_pair(&top, &bottom, &grad, &mut grad_top, &mut grad_bottom);

        for (i, window) in windows.iter().enumerate() {
            // SAFETY: initialised above.
            let row_pair = [
                grad_top[2 * i],
                grad_top[2 * i + 1],
                grad_bottom[2 * i],
                grad_bottom[2 * i + 1],
            ]
            .map(|v| unsafe { v.assume_init() });
            let expected = unpool_window(*window, grad[i]);
            assert_eq!(
                row_pair.map(f32::to_bits),
                expected.map(f32::to_bits),
                "window {window:?}"
            );

            // And the rule itself: the gradient reaches window_argmax's winner when ReLU keeps it.
            let (best, value) = window_argmax(*window);
            let reached = if relu_f32(value) == 0.0 { 0.0 } else { grad[i] };
            assert_eq!(expected[best], reached, "window {window:?}");
            assert_eq!(
                expected.iter().filter(|&&v| v != 0.0).count(),
                usize::from(reached != 0.0)
            );
        }
    }

    /// Deterministic values in `[-1, 1)` of the given shape.
    fn spread<const D: usize>(dims: [usize; D], phase: f32, device: &Device) -> Tensor<D> {
        let count: usize = dims.iter().product();
        let values: Vec<f32> = (0..count)
            .map(|k| (k as f32 * 0.618_034 + phase).fract() * 2.0 - 1.0)
            .collect();
        Tensor::from_data(TensorData::new(values, dims), device)
    }

    /// Runs a valid convolution with `conv` on the autodiff Flex device and returns the
    /// output and the gradients of `sum(output * weights)` for x, weight and bias.
    fn conv_and_gradients(
        conv: impl Fn(Tensor<4>, Tensor<4>, Tensor<1>) -> Tensor<4>,
    ) -> Vec<Vec<f32>> {
        let device = Device::flex().autodiff();
        // 37 images: two full tasks of 16 and a partial one. A 3x2 kernel on 9x8 inputs checks
        // that rows and columns are not swapped.
        let x = spread([37, 3, 9, 8], 0.1, &device).require_grad();
        let weight = spread([5, 3, 3, 2], 0.2, &device).require_grad();
        let bias = spread([5], 0.3, &device).require_grad();
        let output = conv(x.clone(), weight.clone(), bias.clone());
        let weights = spread(output.dims(), 0.4, &device);
        let grads = (output.clone() * weights).sum().backward();
        let flat = |t: Option<Vec<f32>>| t.unwrap_or_else(|| panic!("missing gradient"));
        vec![
            output.detach().into_data().try_into_vec().unwrap(),
            flat(
                x.grad(&grads)
                    .map(|g| g.into_data().try_into_vec().unwrap()),
            ),
            flat(
                weight
                    .grad(&grads)
                    .map(|g| g.into_data().try_into_vec().unwrap()),
            ),
            flat(
                bias.grad(&grads)
                    .map(|g| g.into_data().try_into_vec().unwrap()),
            ),
        ]
    }

    #[test]
    fn autodiff_conv_matches_burn_conv2d() {
        let fast = conv_and_gradients(|x, weight, bias| {
            Tensor::from_dispatch(<Dispatch as FastOps>::conv2d_valid(
                x.into_dispatch(),
                weight.into_dispatch(),
                bias.into_dispatch(),
            ))
        });
        let reference = conv_and_gradients(|x, weight, bias| {
            burn::tensor::module::conv2d(x, weight, Some(bias), valid_options())
        });

        // Each output is a bias plus 3 x 3 x 2 = 18 products of values below 1, summed in
        // another order than burn's, so the two differ by a few 2^-24, far below 1e-5. The
        // input gradient sums at most 5 x 3 x 2 = 30 products per element, so 1e-5 is met
        // too. The weight gradient sums 37 x 7 x 7 = 1,813 products in another order, and the
        // bias gradient as many output gradients, so they differ by about
        // sqrt(1,813) * 2^-24 = 2.5e-6 of the largest term, below 1e-4. A wrong index or a
        // dropped image changes an element by O(1).
        for (index, name, count, tolerance) in [
            (0, "output", 37 * 5 * 7 * 7, 1e-5),
            (1, "x gradient", 37 * 3 * 9 * 8, 1e-5),
            (2, "weight gradient", 5 * 3 * 3 * 2, 1e-4),
            (3, "bias gradient", 5, 1e-4),
        ] {
            assert_eq!(fast[index].len(), count, "{name} length");
            for (k, (a, b)) in fast[index].iter().zip(&reference[index]).enumerate() {
                assert!(
                    (a - b).abs() <= tolerance,
                    "{name} element {k}: {a} vs burn {b}"
                );
            }
        }
    }
}
