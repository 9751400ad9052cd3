//! Faster kernels for the shallow CNN on the Flex CPU backend, added through burn's backend
//! extension mechanism (`#[backend_extension]`, burn 0.22).
//!
//! [`max_pool2x2`] is a 2x2 max-pool with stride 2 and no padding, as [`MaxPool2d`] computes it
//! with kernel `[2, 2]` (burn's default stride is the kernel size). burn-flex 0.22.1 runs every
//! max-pool through a generic 3D loop that also writes `i64` indices. This module's forward
//! pass writes no indices, and its backward pass finds each window's winner again from the
//! input, which autodiff keeps anyway.
//!
//! [`conv2d_valid`] computes the forward pass, the input gradient and the weight gradient as
//! one gemm per image over im2col columns, in parallel over groups of images. burn-flex 0.22.1
//! rebuilds a zeroed im2col tile per image and tile in the forward pass. It runs the input
//! gradient as a transposed convolution, and the weight gradient as a convolution with batch
//! and channels swapped: a gemm with only `kernel_height * kernel_width` output columns. The
//! bias gradient stays burn's.
//!
//! Only Flex and `Autodiff<Flex>` implement [`FastOps`]. The generated dispatch panics on any
//! other backend, so [`max_pool2x2`] and [`conv2d_valid`] check the device and fall back to
//! burn's own ops elsewhere.
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
use burn::tensor::ops::MaxPoolOptions;
use rayon::prelude::*;

/// Window side and stride of the pool.
const POOL: usize = 2;

/// Planes (one channel of one image) per rayon task. A 26x26 plane takes a few thousand
/// instructions, too little for a task of its own.
const PLANES_PER_TASK: usize = 8;

/// Backend operations with a faster Flex implementation than burn's generic module ops.
#[backend_extension(Flex, Autodiff)]
pub trait FastOps: Backend {
    /// Applies a 2x2 max-pool with stride 2, no padding and floor rounding.
    ///
    /// # Shapes
    /// - x: `[batch_size, channels, height, width]`
    /// - output: `[batch_size, channels, height / 2, width / 2]`
    fn max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::max_pool2d(x, [POOL; 2], [POOL; 2], [0; 2], [1; 2], false)
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
}

/// The backward pass of [`FastOps::max_pool2x2`], which autodiff needs.
pub trait MaxPool2x2BackwardOps: Backend {
    /// Returns the gradient of the pool's input `x`: each output gradient goes to the input
    /// element that won its window, and every other element gets zero.
    fn max_pool2x2_backward(
        x: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        max_pool2x2_backward_with_burn_ops::<Self>(x, output_grad)
    }
}

/// Computes [`MaxPool2x2BackwardOps::max_pool2x2_backward`] with burn's own ops: the argmax
/// indices from `max_pool2d_with_indices`, then `max_pool2d_with_indices_backward`.
fn max_pool2x2_backward_with_burn_ops<B: Backend>(
    x: FloatTensor<B>,
    output_grad: FloatTensor<B>,
) -> FloatTensor<B> {
    let int_dtype = burn::backend::get_or_init_device_settings::<B>(&x.device()).int_dtype;
    let indices = B::max_pool2d_with_indices(
        x.clone(),
        [POOL; 2],
        [POOL; 2],
        [0; 2],
        [1; 2],
        false,
        int_dtype,
    )
    .indices;
    B::max_pool2d_with_indices_backward(
        x,
        [POOL; 2],
        [POOL; 2],
        [0; 2],
        [1; 2],
        false,
        output_grad,
        indices,
    )
    .x_grad
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

    fn max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        if x.dtype() != DType::F32 || x.layout().shape().num_dims() != 4 {
            return Self::max_pool2d(x, [POOL; 2], [POOL; 2], [0; 2], [1; 2], false);
        }
        pool_flex_f32(x)
    }
}

impl MaxPool2x2BackwardOps for Flex {
    fn max_pool2x2_backward(
        x: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let all_f32 = [&x, &output_grad]
            .iter()
            .all(|t| t.dtype() == DType::F32 && t.layout().shape().num_dims() == 4);
        if !all_f32 {
            return max_pool2x2_backward_with_burn_ops::<Self>(x, output_grad);
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

/// Computes a valid convolution as one gemm per image, `Y[o, p] = b[o] + sum_r W[o, r] *
/// columns[r, p]` over the im2col columns, in parallel over groups of images. Every output
/// element is one dot product of length `channels_in * kernel_h * kernel_w`, so the result
/// does not depend on the number of threads.
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
    let (x_values, weight_values, bias_values) =
        (slice_f32(&x), slice_f32(&weight), slice_f32(&bias));

    let mut output = vec![0f32; batch * out_image];
    if out_image > 0 {
        output
            .par_chunks_mut(out_image * FORWARD_IMAGES_PER_TASK)
            .enumerate()
            .for_each(|(task, out_chunk)| {
                let mut columns = vec![0f32; rows * positions];
                for (k, out_img) in out_chunk.chunks_exact_mut(out_image).enumerate() {
                    let image = task * FORWARD_IMAGES_PER_TASK + k;
                    let x_img = &x_values[image * x_image..(image + 1) * x_image];
                    im2col(
                        x_img,
                        [height, width],
                        [kernel_h, kernel_w],
                        out_w,
                        &mut columns,
                    );
                    for (row, &b) in out_img.chunks_exact_mut(positions).zip(bias_values) {
                        row.fill(b);
                    }
                    // SAFETY: `out_img` is [channels_out x positions] with row stride
                    // `positions`, `weight_values` is [channels_out x rows] with row stride
                    // `rows`, and `columns` is [rows x positions] with row stride `positions`.
                    // The slices have exactly those lengths and do not overlap.
                    unsafe {
                        gemm::gemm(
                            channels_out,
                            positions,
                            rows,
                            out_img.as_mut_ptr(),
                            1,
                            positions as isize,
                            true,
                            weight_values.as_ptr(),
                            1,
                            rows as isize,
                            columns.as_ptr(),
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
                }
            });
    }
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

    let mut x_grad = vec![0f32; batch * x_image];
    if x_image > 0 {
        x_grad
            .par_chunks_mut(x_image * FORWARD_IMAGES_PER_TASK)
            .enumerate()
            .for_each(|(task, x_chunk)| {
                let mut columns = vec![0f32; rows * positions];
                for (k, x_img) in x_chunk.chunks_exact_mut(x_image).enumerate() {
                    let image = task * FORWARD_IMAGES_PER_TASK + k;
                    let grad_img = &grad_values[image * grad_image..(image + 1) * grad_image];
                    // SAFETY: `columns` is [rows x positions] with row stride `positions`,
                    // W^T is [rows x channels_out] read from the [channels_out x rows] weight
                    // with row stride 1 and column stride `rows`, and `grad_img` is
                    // [channels_out x positions] with row stride `positions`. The slices have
                    // exactly those lengths and do not overlap.
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
            });
    }
    FlexTensor::new(
        Bytes::from_elems(x_grad),
        Layout::contiguous(Shape::from(x_dims.to_vec())),
        DType::F32,
    )
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

/// Pools a contiguous or strided f32 `[b, c, h, w]` Flex tensor, one rayon task per few planes.
fn pool_flex_f32(x: FlexTensor) -> FlexTensor {
    let (x, dims) = contiguous_f32(&x);
    let (batch, channels, height, width) = (dims[0], dims[1], dims[2], dims[3]);
    let (out_h, out_w) = (height / POOL, width / POOL);
    let (in_plane, out_plane) = (height * width, out_h * out_w);
    let input = slice_f32(&x);

    let mut output = vec![0f32; batch * channels * out_plane];
    if out_plane > 0 {
        output
            .par_chunks_mut(out_plane * PLANES_PER_TASK)
            .zip(input.par_chunks(in_plane * PLANES_PER_TASK))
            .for_each(|(out, inp)| {
                for (o, p) in out.chunks_mut(out_plane).zip(inp.chunks(in_plane)) {
                    pool_plane(p, width, out_h, out_w, o, None);
                }
            });
    }
    FlexTensor::new(
        Bytes::from_elems(output),
        Layout::contiguous(Shape::from(vec![batch, channels, out_h, out_w])),
        DType::F32,
    )
}

/// Computes the input gradient of the 2x2 max-pool of `x`: finds each window's winner again
/// with [`window_argmax`] (the rule of the forward pass) and writes the output gradient there.
/// Recomputing it from `x`, which autodiff keeps anyway, saves the forward pass from writing
/// an index per output.
fn unpool_flex_f32(x: FlexTensor, output_grad: FlexTensor) -> FlexTensor {
    let (x, dims) = contiguous_f32(&x);
    let (grad, grad_dims) = contiguous_f32(&output_grad);
    let (batch, channels, height, width) = (dims[0], dims[1], dims[2], dims[3]);
    let (out_h, out_w) = (height / POOL, width / POOL);
    assert!(
        grad_dims == [batch, channels, out_h, out_w],
        "max_pool2x2_backward: output gradient {grad_dims:?} does not match input {dims:?}"
    );
    let (in_plane, out_plane) = (height * width, out_h * out_w);
    let (input, grads) = (slice_f32(&x), slice_f32(&grad));

    let mut x_grad = vec![0f32; batch * channels * in_plane];
    if out_plane > 0 {
        x_grad
            .par_chunks_mut(in_plane * PLANES_PER_TASK)
            .zip(input.par_chunks(in_plane * PLANES_PER_TASK))
            .zip(grads.par_chunks(out_plane * PLANES_PER_TASK))
            .for_each(|((gx, xp), gp)| {
                for ((gx, xp), gp) in gx
                    .chunks_mut(in_plane)
                    .zip(xp.chunks(in_plane))
                    .zip(gp.chunks(out_plane))
                {
                    for oy in 0..out_h {
                        let (top, bottom) = (2 * oy * width, (2 * oy + 1) * width);
                        for ox in 0..out_w {
                            let x0 = 2 * ox;
                            let (best, _) = window_argmax([
                                xp[top + x0],
                                xp[top + x0 + 1],
                                xp[bottom + x0],
                                xp[bottom + x0 + 1],
                            ]);
                            let at = (2 * oy + best / POOL) * width + x0 + best % POOL;
                            gx[at] = gp[oy * out_w + ox];
                        }
                    }
                }
            });
    }
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

/// Pools one `[height, width]` plane into `[out_h, out_w]`, writing argmax indices if asked.
fn pool_plane(
    plane: &[f32],
    width: usize,
    out_h: usize,
    out_w: usize,
    out: &mut [f32],
    mut indices: Option<&mut [i64]>,
) {
    for oy in 0..out_h {
        let top = &plane[2 * oy * width..];
        let bottom = &plane[(2 * oy + 1) * width..];
        let out_row = &mut out[oy * out_w..(oy + 1) * out_w];
        for (ox, o) in out_row.iter_mut().enumerate() {
            let x0 = 2 * ox;
            let candidates = [top[x0], top[x0 + 1], bottom[x0], bottom[x0 + 1]];
            let (best, value) = window_argmax(candidates);
            *o = value;
            if let Some(idx) = indices.as_deref_mut() {
                let (dy, dx) = (best / POOL, best % POOL);
                idx[oy * out_w + ox] = ((2 * oy + dy) * width + x0 + dx) as i64;
            }
        }
    }
}

/// Backward of [`FastOps::max_pool2x2`], through [`MaxPool2x2BackwardOps`].
#[derive(Debug)]
struct MaxPool2x2Backward;

impl<B: Backend + MaxPool2x2BackwardOps> Backward<B, 1> for MaxPool2x2Backward {
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
            let x_grad = B::max_pool2x2_backward(x, grad);
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
            grads.register::<B>(node.id, B::conv2d_bias_backward(x, bias, grad));
        }
    }
}

impl<B, C> FastOps for Autodiff<B, C>
where
    B: Backend + FastOps + MaxPool2x2BackwardOps + ConvValidBackwardOps,
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

    fn max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match MaxPool2x2Backward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                prep.finish(x_state, B::max_pool2x2(x.into_primitive()))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::max_pool2x2(x.into_primitive())),
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

/// Applies a 2x2 max-pool with stride 2 (floor rounding), the same as burn's `MaxPool2d` with
/// kernel `[2, 2]`, through [`FastOps`] on Flex devices and burn's `max_pool2d` elsewhere.
///
/// # Shapes
/// - x: `[batch_size, channels, height, width]`
/// - output: `[batch_size, channels, height / 2, width / 2]`
pub fn max_pool2x2(x: Tensor<4>) -> Tensor<4> {
    if x.device().inner() == Device::flex() {
        Tensor::from_dispatch(<Dispatch as FastOps>::max_pool2x2(x.into_dispatch()))
    } else {
        burn::tensor::module::max_pool2d(x, MaxPoolOptions::new([POOL; 2]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::module::max_pool2d;

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
        let (mut out, mut idx) = ([0.0; 2], [0; 2]);
        pool_plane(&plane, 5, 1, 2, &mut out, Some(&mut idx));
        assert_eq!(out, [5.0, 7.0]);
        assert_eq!(idx, [1, 8]);
    }

    #[test]
    fn pool_plane_ties_and_nan() {
        // Window 0 is four zeros (what ReLU leaves): the first, index 0, wins. Window 1 contains
        // NaN at (0, 2), 1, 2 and NaN at (1, 3): a NaN wins and the last one is reported, flat
        // index 4 + 3 = 7, as in burn-flex 0.22.1's max_pool3d_with_indices_impl.
        #[rustfmt::skip]
        let plane = [
            0.0, 0.0, f32::NAN, 1.0,
            0.0, 0.0, 2.0, f32::NAN,
        ];
        let (mut out, mut idx) = ([1.0; 2], [-1; 2]);
        pool_plane(&plane, 4, 1, 2, &mut out, Some(&mut idx));
        assert_eq!(out[0], 0.0);
        assert!(
            out[1].is_nan(),
            "a NaN in the window gives NaN, got {}",
            out[1]
        );
        assert_eq!(idx, [0, 7]);
    }

    /// Values 0, 0.25 and 0.5 in `[b, c, h, w]`, three in five of them zero, so many windows tie as
    /// after ReLU, and one NaN.
    fn tied_input(dims: [usize; 4], device: &Device) -> Tensor<4> {
        let count: usize = dims.iter().product();
        let mut values: Vec<f32> = (0..count)
            .map(|k| ((k * 7919 % 5) as f32 - 2.0).max(0.0) * 0.25)
            .collect();
        values[count / 3] = f32::NAN;
        Tensor::from_data(TensorData::new(values, dims), device)
    }

    fn bits(tensor: Tensor<4>) -> Vec<u32> {
        let values: Vec<f32> = tensor.into_data().try_into_vec().unwrap();
        values.iter().map(|v| v.to_bits()).collect()
    }

    #[test]
    fn flex_pool_equals_burn_max_pool2d() {
        let device = Device::flex();
        // Odd sides (11 and 9) check the floor rounding. The swapped view checks that a
        // non-contiguous input is read in logical order.
        for x in [
            tied_input([3, 4, 11, 9], &device),
            tied_input([3, 4, 9, 11], &device).swap_dims(2, 3),
        ] {
            let fast = max_pool2x2(x.clone());
            assert_eq!(fast.dims(), [3, 4, 5, 4]);
            let reference = max_pool2d(x.clone(), MaxPoolOptions::new([POOL; 2]));
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
    fn autodiff_pool_equals_burn_max_pool2d() {
        let device = Device::flex().autodiff();
        let x = tied_input([2, 3, 9, 11], &device);
        let (fast, fast_grad) = pool_and_gradient(x.clone(), max_pool2x2);
        let (reference, reference_grad) =
            pool_and_gradient(x, |x| max_pool2d(x, MaxPoolOptions::new([POOL; 2])));
        assert_eq!(bits(fast), bits(reference));
        // The weights are distinct, so a gradient routed to another element of its window
        // (or dropped) changes the bits.
        assert_eq!(bits(fast_grad), bits(reference_grad));
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
        let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        // The bias gradient comes from burn's own op on both paths, applied to the same output
        // gradient (the fixed weights of the sum).
        assert!(
            bits(&fast[3]) == bits(&reference[3]),
            "bias gradient differs"
        );

        // Each output is a bias plus 3 x 3 x 2 = 18 products of values below 1, summed in
        // another order than burn's, so the two differ by a few 2^-24, far below 1e-5. The
        // input gradient sums at most 5 x 3 x 2 = 30 products per element, so 1e-5 is met
        // too. The weight gradient sums 37 x 7 x 7 = 1,813 products in another order, so they
        // differ by about sqrt(1,813) * 2^-24 = 2.5e-6 of the largest term, below 1e-4. A
        // wrong index or a dropped image changes an element by O(1).
        for (index, name, count, tolerance) in [
            (0, "output", 37 * 5 * 7 * 7, 1e-5),
            (1, "x gradient", 37 * 3 * 9 * 8, 1e-5),
            (2, "weight gradient", 5 * 3 * 3 * 2, 1e-4),
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
