//! Checks the shallow CNN's training step on the multi-threaded flex kernels, on real MNIST
//! batches. There are three references. The first is the same step on a one-thread pool, the
//! second the same step through burn's own module ops in place of toploss's faster kernels.
//! The third is a plain f64 version of the network written here, which checks per-sample losses
//! and, by central differences, the gradient.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use toploss_data::{DatasetFormat, DatasetSpec, load};
use toploss_train::{
    InputSpec, ShallowCnn, SplitTensors, sample_from_logits, smoothed_cross_entropy,
};

const MNIST: InputSpec = InputSpec {
    channels: 1,
    height: 28,
    width: 28,
    classes: 10,
};
/// Images per batch, as in training.
const BATCH: usize = 128;
/// Images used by the f64 reference (it runs three forward passes over them).
const REFERENCE_IMAGES: usize = 32;
/// Seed of the weights.
const SEED: u64 = 11;

/// Loads the first `n` bundled MNIST train images, scaled to `[0, 1]`.
fn mnist_train(n: usize) -> SplitTensors {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    let mut dataset = load(&DatasetSpec::new(DatasetFormat::Mnist, &dir))
        .unwrap_or_else(|error| panic!("failed to load MNIST from {}: {error}", dir.display()));
    dataset.train.truncate(n);
    SplitTensors::from_u8(&dataset.train.images, dataset.train.labels.clone())
}

/// One parameter tensor of the model: its values and its gradient, both row-major.
#[derive(Debug, Clone)]
struct ParamValues {
    shape: Vec<usize>,
    value: Vec<f32>,
    grad: Vec<f32>,
}

/// Collects every float parameter with its gradient, in the module's field order.
struct Collect<'a> {
    grads: &'a GradientsParams,
    params: Vec<ParamValues>,
}

impl Collect<'_> {
    fn push<const D: usize>(&mut self, value: Tensor<D>, grad: Option<Tensor<D>>) {
        let shape = value.dims().to_vec();
        let to_vec = |tensor: Tensor<D>| -> Vec<f32> { tensor.into_data().try_into_vec().unwrap() };
        let grad = grad.expect("every parameter of the CNN gets a gradient");
        self.params.push(ParamValues {
            shape,
            value: to_vec(value),
            grad: to_vec(grad),
        });
    }
}

impl ModuleVisitor for Collect<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let grad = self.grads.get::<D>(param.id);
        self.push(param.val(), grad);
    }
}

/// Serializes [`seeded_model`], so that tests running in parallel cannot draw weights from
/// the generator another test has just seeded.
static SEEDING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Reads every float parameter, which makes burn draw the lazily initialised ones.
struct Initialise;

impl ModuleVisitor for Initialise {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let _ = param.val();
    }
}

/// Builds the CNN with seeded weights on the autodiff flex device. The weights are drawn
/// while the lock is held: burn initialises parameters on first use, so a test running in
/// parallel could otherwise reseed the generator in between.
fn seeded_model() -> ShallowCnn {
    let _seeding = SEEDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let device = Device::flex().autodiff();
    device.seed(SEED);
    let model = ShallowCnn::new(MNIST, &device);
    model.visit(&mut Initialise);
    model
}

/// The forward pass a step uses: `ShallowCnn::forward` or `ShallowCnn::forward_with_burn_ops`.
type Forward = fn(&ShallowCnn, Tensor<4>) -> Tensor<2>;

/// Per-sample losses and the parameters with the gradient of the batch-mean cross-entropy,
/// computed by burn on a rayon pool of `threads` threads.
fn burn_step(
    model: ShallowCnn,
    threads: usize,
    images: &[f32],
    labels: &[u32],
) -> (Vec<f32>, Vec<ParamValues>) {
    let (_, losses, params) = step_with(ShallowCnn::forward, model, threads, images, labels);
    (losses, params)
}

/// Runs one step as [`burn_step`] does, through `forward`, and also returns the logits.
fn step_with(
    forward: Forward,
    model: ShallowCnn,
    threads: usize,
    images: &[f32],
    labels: &[u32],
) -> (Vec<f32>, Vec<f32>, Vec<ParamValues>) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let device = Device::flex().autodiff();
        let batch = labels.len();
        let images = Tensor::<4>::from_data(
            TensorData::new(images.to_vec(), [batch, 1, 28, 28]),
            &device,
        );
        let logits = forward(&model, images); // [batch, 10]
        let logit_values: Vec<f32> = logits.clone().detach().into_data().try_into_vec().unwrap();
        let mut probs = [0.0; 10];
        let losses = logit_values
            .chunks_exact(10)
            .zip(labels)
            .map(|(row, &label)| sample_from_logits(row, label as usize, &mut probs).loss)
            .collect();

        let loss = smoothed_cross_entropy(logits, labels, 0.0);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let mut collect = Collect {
            grads: &grads,
            params: Vec::new(),
        };
        model.visit(&mut collect);
        (logit_values, losses, collect.params)
    })
}

/// Valid 3x3 convolution of `[c_in, side, side]` with burn's `[c_out, c_in, 3, 3]` weights,
/// followed by ReLU.
fn conv_relu(x: &[f64], c_in: usize, side: usize, weight: &[f64], bias: &[f64]) -> Vec<f64> {
    let c_out = bias.len();
    let out = side - 2;
    let mut y = vec![0.0; c_out * out * out];
    for o in 0..c_out {
        for i in 0..out {
            for j in 0..out {
                let mut sum = bias[o];
                for c in 0..c_in {
                    for di in 0..3 {
                        for dj in 0..3 {
                            sum += weight[((o * c_in + c) * 3 + di) * 3 + dj]
                                * x[(c * side + i + di) * side + j + dj];
                        }
                    }
                }
                y[(o * out + i) * out + j] = sum.max(0.0);
            }
        }
    }
    y
}

/// 2x2 max-pool with stride 2 of `[channels, side, side]`, dropping an odd last row/column.
fn pool(x: &[f64], channels: usize, side: usize) -> Vec<f64> {
    let out = side / 2;
    let mut y = vec![0.0; channels * out * out];
    for c in 0..channels {
        for i in 0..out {
            for j in 0..out {
                let at = |di: usize, dj: usize| x[(c * side + 2 * i + di) * side + 2 * j + dj];
                y[(c * out + i) * out + j] = at(0, 0).max(at(0, 1)).max(at(1, 0)).max(at(1, 1));
            }
        }
    }
    y
}

/// Dense layer with burn's `[inputs, outputs]` weight layout.
fn dense(x: &[f64], weight: &[f64], bias: &[f64], relu: bool) -> Vec<f64> {
    let outputs = bias.len();
    (0..outputs)
        .map(|o| {
            let sum = bias[o]
                + x.iter()
                    .enumerate()
                    .map(|(i, &v)| v * weight[i * outputs + o])
                    .sum::<f64>();
            if relu { sum.max(0.0) } else { sum }
        })
        .collect()
}

/// Per-sample cross-entropy of the shallow CNN computed in f64, with `params` in the order
/// conv1 (weight, bias), conv2, conv3, fc1, fc2.
fn reference_losses(params: &[Vec<f64>], images: &[f32], labels: &[u32]) -> Vec<f64> {
    labels
        .iter()
        .enumerate()
        .map(|(n, &label)| {
            let x: Vec<f64> = images[n * 784..(n + 1) * 784]
                .iter()
                .map(|&p| f64::from(p))
                .collect();
            let x = pool(&conv_relu(&x, 1, 28, &params[0], &params[1]), 32, 26); // [32, 13, 13]
            let x = pool(&conv_relu(&x, 32, 13, &params[2], &params[3]), 64, 11); // [64, 5, 5]
            let x = conv_relu(&x, 64, 5, &params[4], &params[5]); // [64, 3, 3], flattened as burn does
            let x = dense(&x, &params[6], &params[7], true); // [64]
            let z = dense(&x, &params[8], &params[9], false); // [10]
            let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let log_sum_exp = max + z.iter().map(|&v| (v - max).exp()).sum::<f64>().ln();
            log_sum_exp - z[label as usize]
        })
        .collect()
}

fn max_abs(values: &[f32]) -> f32 {
    values.iter().fold(0.0, |max, v| max.max(v.abs()))
}

#[test]
fn threaded_step_matches_one_thread() {
    let data = mnist_train(BATCH);
    let model = seeded_model();
    let (losses_1, params_1) = burn_step(model.clone(), 1, &data.images, &data.labels);
    let (losses_4, params_4) = burn_step(model.clone(), 4, &data.images, &data.labels);
    assert_eq!(params_1.len(), 10, "5 layers with a weight and a bias each");

    // Runs are reproducible: a repeated run on the same number of threads gives the same
    // bits, whatever order the pool's threads happen to finish in.
    let (losses_again, params_again) = burn_step(model, 4, &data.images, &data.labels);
    let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&losses_4),
        bits(&losses_again),
        "losses of a repeated run"
    );
    for (index, (first, again)) in params_4.iter().zip(&params_again).enumerate() {
        assert!(
            bits(&first.grad) == bits(&again.grad),
            "parameter {index} {:?}: gradient of a repeated run differs",
            first.shape
        );
    }

    // Threads split sums of up to 128 x 11 x 11 = 15,488 products differently, so f32
    // results differ by rounding only: about sqrt(15,488) * 2^-24 = 7.4e-6 of the largest
    // term. A bound of 1e-4 of the tensor's largest value leaves a margin of 10 and still
    // catches a wrong index or a missed batch chunk, which change values by O(1).
    for (n, (a, b)) in losses_1.iter().zip(&losses_4).enumerate() {
        assert!(
            (a - b).abs() <= 1e-4 * a.abs().max(1.0),
            "sample {n}: {a} vs {b}"
        );
    }
    for (index, (one, four)) in params_1.iter().zip(&params_4).enumerate() {
        let tolerance = 1e-4 * max_abs(&one.grad);
        for (k, (a, b)) in one.grad.iter().zip(&four.grad).enumerate() {
            assert!(
                (a - b).abs() <= tolerance,
                "parameter {index} {:?}, element {k}: gradient {a} (1 thread) vs {b} (4 threads)",
                one.shape
            );
        }
    }
}

#[test]
fn step_matches_f64_reference() {
    let data = mnist_train(REFERENCE_IMAGES);
    let (losses, params) = burn_step(seeded_model(), 2, &data.images, &data.labels);
    let weights: Vec<Vec<f64>> = params
        .iter()
        .map(|p| p.value.iter().map(|&v| f64::from(v)).collect())
        .collect();

    // Per-sample losses: f32 against f64 on the same weights. The f32 sums have at most
    // 576 terms, so the relative error is far below 1e-4.
    let reference = reference_losses(&weights, &data.images, &data.labels);
    for (n, (&burn, &exact)) in losses.iter().zip(&reference).enumerate() {
        let error = (f64::from(burn) - exact).abs();
        assert!(
            error <= 1e-4 * exact.max(1.0),
            "sample {n}: burn {burn}, f64 {exact}"
        );
    }

    // Gradient: the derivative of the mean loss along a fixed direction d, from burn's
    // gradient (sum of g * d) and from a central difference of the f64 losses. With a step
    // of 1e-6 in f64 the difference is exact to about 1e-9, unless a ReLU or max-pool switches
    // inside the step, which is unlikely at that size. The burn side differs by f32
    // rounding, so the bound is 1e-3 of sum |g * d|, the size the terms could cancel from.
    let direction: Vec<Vec<f64>> = params
        .iter()
        .enumerate()
        .map(|(p, param)| {
            (0..param.value.len())
                .map(|k| ((p * 7919 + k) as f64 * 0.618_034).sin())
                .collect()
        })
        .collect();
    let (mut along, mut magnitude) = (0.0, 0.0);
    for (param, d) in params.iter().zip(&direction) {
        for (&g, &dk) in param.grad.iter().zip(d) {
            along += f64::from(g) * dk;
            magnitude += (f64::from(g) * dk).abs();
        }
    }
    let step = 1e-6;
    let shifted = |sign: f64| -> f64 {
        let moved: Vec<Vec<f64>> = weights
            .iter()
            .zip(&direction)
            .map(|(w, d)| w.iter().zip(d).map(|(w, d)| w + sign * step * d).collect())
            .collect();
        let losses = reference_losses(&moved, &data.images, &data.labels);
        losses.iter().sum::<f64>() / losses.len() as f64
    };
    let central = (shifted(1.0) - shifted(-1.0)) / (2.0 * step);
    assert!(magnitude > 0.0, "the gradient is zero");
    assert!(
        (along - central).abs() <= 1e-3 * magnitude,
        "directional derivative: burn {along}, f64 central difference {central}, sum |g d| {magnitude}"
    );
}

#[test]
fn fast_kernels_match_burn_module_ops() {
    let data = mnist_train(BATCH);
    let model = seeded_model();
    let (fast_logits, fast_losses, fast_params) = step_with(
        ShallowCnn::forward,
        model.clone(),
        2,
        &data.images,
        &data.labels,
    );
    // The reference runs on one thread, so that its sums do not depend on how the pool, which
    // the other tests share, splits the work.
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let (logits, losses, params) = one_thread.install(|| {
        step_with(
            ShallowCnn::forward_with_burn_ops,
            model,
            2,
            &data.images,
            &data.labels,
        )
    });
    assert_eq!(
        fast_params.len(),
        10,
        "5 layers with a weight and a bias each"
    );

    // The fast convolutions add the same products as burn's in another order: up to
    // 64 x 3 x 3 = 576 per output in the forward pass, and for the weight gradients up to
    // 128 x 26 x 26 = 86,528 (conv1). f32 rounding then differs by about sqrt(86,528) * 2^-24
    // = 1.8e-5 of the largest term. The bounds below, 1e-4 of the largest value of each
    // tensor, leave a margin of 5 and still catch a wrong index or a dropped image, which
    // change values by O(1) of it. The max-pool picks the same element as burn's on equal
    // inputs, so only a near-tie that rounding flips could move a gradient further, and the
    // test would then fail for that element.
    let logit_tolerance = 1e-4 * max_abs(&logits);
    for (k, (a, b)) in fast_logits.iter().zip(&logits).enumerate() {
        assert!(
            (a - b).abs() <= logit_tolerance,
            "logit {k}: {a} (fast) vs {b} (burn)"
        );
    }
    for (n, (a, b)) in fast_losses.iter().zip(&losses).enumerate() {
        assert!(
            (a - b).abs() <= 1e-4 * b.abs().max(1.0),
            "sample {n}: loss {a} (fast) vs {b} (burn)"
        );
    }
    for (index, (fast, reference)) in fast_params.iter().zip(&params).enumerate() {
        let tolerance = 1e-4 * max_abs(&reference.grad);
        for (k, (a, b)) in fast.grad.iter().zip(&reference.grad).enumerate() {
            assert!(
                (a - b).abs() <= tolerance,
                "parameter {index} {:?}, element {k}: gradient {a} (fast) vs {b} (burn)",
                reference.shape
            );
        }
    }
}
