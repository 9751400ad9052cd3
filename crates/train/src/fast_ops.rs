//! Faster kernels for the shallow CNN on the Flex CPU backend, added through burn's backend
//! extension mechanism (`#[backend_extension]`, burn 0.22).
//!
//! [`max_pool2x2`] is a 2x2 max-pool with stride 2 and no padding, as [`MaxPool2d`] computes it
//! with kernel `[2, 2]` (burn's default stride is the kernel size). burn-flex 0.22.1 runs every
//! max-pool through a generic 3D loop that also writes `i64` indices. For the 2x2 window this
//! module reads each input row pair once and writes the indices only when autodiff needs them.
//!
//! Only Flex and `Autodiff<Flex>` implement [`FastOps`]: the generated dispatch panics on any
//! other backend, so [`max_pool2x2`] checks the device and falls back to burn's own
//! `max_pool2d` elsewhere.
//!
//! [`MaxPool2d`]: burn::nn::pool::MaxPool2d

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::ops::{MaxPool2dWithIndices, ModuleOps};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{
    Autodiff, Backend, DType, Dispatch, Flex, Shape, TensorMetadata, backend_extension,
};
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
}

/// The forward pass that autodiff needs: the pooled values and, for each, the flat index
/// `row * width + column` of the winning input inside its `[height, width]` plane, as burn's
/// `max_pool2d_with_indices` returns them (so burn's backward can consume them).
pub trait MaxPool2x2WithIndices: Backend {
    /// Applies [`FastOps::max_pool2x2`] and also returns the argmax indices.
    fn max_pool2x2_with_indices(x: FloatTensor<Self>) -> MaxPool2dWithIndices<Self> {
        let int_dtype = burn::backend::get_or_init_device_settings::<Self>(&x.device()).int_dtype;
        Self::max_pool2d_with_indices(x, [POOL; 2], [POOL; 2], [0; 2], [1; 2], false, int_dtype)
    }
}

impl FastOps for Flex {
    fn max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        if x.dtype() != DType::F32 || x.layout().shape().num_dims() != 4 {
            return Self::max_pool2d(x, [POOL; 2], [POOL; 2], [0; 2], [1; 2], false);
        }
        pool_flex_f32(x, false).0
    }
}

impl MaxPool2x2WithIndices for Flex {
    fn max_pool2x2_with_indices(x: FloatTensor<Self>) -> MaxPool2dWithIndices<Self> {
        if x.dtype() != DType::F32 || x.layout().shape().num_dims() != 4 {
            let int_dtype =
                burn::backend::get_or_init_device_settings::<Self>(&x.device()).int_dtype;
            return Self::max_pool2d_with_indices(
                x, [POOL; 2], [POOL; 2], [0; 2], [1; 2], false, int_dtype,
            );
        }
        let (output, indices) = pool_flex_f32(x, true);
        // `pool_flex_f32` returns the indices whenever it is asked for them.
        let indices = indices.unwrap_or_else(|| unreachable!("indices were requested"));
        MaxPool2dWithIndices::new(output, indices)
    }
}

/// Pools a contiguous or strided f32 `[b, c, h, w]` Flex tensor, one rayon task per few planes.
///
/// Within a window the first maximum in row-major order wins and a NaN beats any number, which
/// is the rule of burn-flex's own `max_pool3d_with_indices_impl` (0.22.1), so both paths give
/// the same indices, also on the ties that ReLU zeros create.
fn pool_flex_f32(x: FlexTensor, with_indices: bool) -> (FlexTensor, Option<FlexTensor>) {
    let x = x.to_contiguous();
    let dims = x.layout().shape().clone();
    let (batch, channels, height, width) = (dims[0], dims[1], dims[2], dims[3]);
    let (out_h, out_w) = (height / POOL, width / POOL);
    let in_plane = height * width;
    let out_plane = out_h * out_w;
    let storage: &[f32] = x.storage();
    let (start, end) = x
        .layout()
        .contiguous_offsets()
        .unwrap_or_else(|| unreachable!("into_contiguous returns a contiguous layout"));
    let input = &storage[start..end];

    let mut output = vec![0f32; batch * channels * out_plane];
    let mut indices = if with_indices {
        vec![0i64; output.len()]
    } else {
        Vec::new()
    };
    if out_plane > 0 {
        let chunk_in = in_plane * PLANES_PER_TASK;
        let chunk_out = out_plane * PLANES_PER_TASK;
        if with_indices {
            output
                .par_chunks_mut(chunk_out)
                .zip(indices.par_chunks_mut(chunk_out))
                .zip(input.par_chunks(chunk_in))
                .for_each(|((out, idx), inp)| {
                    for ((o, i), p) in out
                        .chunks_mut(out_plane)
                        .zip(idx.chunks_mut(out_plane))
                        .zip(inp.chunks(in_plane))
                    {
                        pool_plane(p, width, out_h, out_w, o, Some(i));
                    }
                });
        } else {
            output
                .par_chunks_mut(chunk_out)
                .zip(input.par_chunks(chunk_in))
                .for_each(|(out, inp)| {
                    for (o, p) in out.chunks_mut(out_plane).zip(inp.chunks(in_plane)) {
                        pool_plane(p, width, out_h, out_w, o, None);
                    }
                });
        }
    }

    let shape = Shape::from(vec![batch, channels, out_h, out_w]);
    let output = FlexTensor::new(
        Bytes::from_elems(output),
        Layout::contiguous(shape.clone()),
        DType::F32,
    );
    let indices = with_indices.then(|| {
        FlexTensor::new(
            Bytes::from_elems(indices),
            Layout::contiguous(shape),
            DType::I64,
        )
    });
    (output, indices)
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
            // Row-major window order: the first of equal values wins, any NaN replaces a number.
            let candidates = [top[x0], top[x0 + 1], bottom[x0], bottom[x0 + 1]];
            let mut best = 0;
            for (k, &value) in candidates.iter().enumerate().skip(1) {
                if value > candidates[best] || value.is_nan() {
                    best = k;
                }
            }
            *o = candidates[best];
            if let Some(idx) = indices.as_deref_mut() {
                let (dy, dx) = (best / POOL, best % POOL);
                idx[oy * out_w + ox] = ((2 * oy + dy) * width + x0 + dx) as i64;
            }
        }
    }
}

/// Backward of [`FastOps::max_pool2x2`]: routes each output gradient to the recorded argmax,
/// through the inner backend's `max_pool2d_with_indices_backward`.
#[derive(Debug)]
struct MaxPool2x2Backward;

impl<B: Backend> Backward<B, 1> for MaxPool2x2Backward {
    type State = (NodeId, IntTensor<B>);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [parent] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, indices) = ops.state;
        let x: FloatTensor<B> = checkpointer.retrieve_node_output(x_state);
        if let Some(node) = parent {
            let x_grad = B::max_pool2d_with_indices_backward(
                x, [POOL; 2], [POOL; 2], [0; 2], [1; 2], false, grad, indices,
            )
            .x_grad;
            grads.register::<B>(node.id, x_grad);
        }
    }
}

impl<B, C> FastOps for Autodiff<B, C>
where
    B: Backend + FastOps + MaxPool2x2WithIndices,
    C: CheckpointStrategy,
{
    fn max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match MaxPool2x2Backward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let pooled = B::max_pool2x2_with_indices(x.into_primitive());
                prep.finish((x_state, pooled.indices), pooled.output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::max_pool2x2(x.into_primitive())),
        }
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
}
