//! The evaluation pass runs batches in parallel; its results must not depend on the pool.

use burn::prelude::*;
use toploss_data::{DatasetFormat, DatasetSpec, load};
use toploss_train::{Classifier, InputSpec, ModelKind, SplitEval, SplitTensors, evaluate};

const MNIST: InputSpec = InputSpec {
    channels: 1,
    height: 28,
    width: 28,
    classes: 10,
};

fn evaluate_with_threads(threads: usize, model: &Classifier, split: &SplitTensors) -> SplitEval {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| evaluate(model, split, MNIST, 128, &Device::flex(), |_| {}))
}

#[test]
fn parallel_evaluation_matches_one_thread() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    let mut dataset = load(&DatasetSpec::new(DatasetFormat::Mnist, dir)).unwrap();
    // 1,000 real test images: 7 full batches of 128 and a partial one of 104.
    dataset.test.truncate(1000);
    let split = SplitTensors::from_u8(&dataset.test.images, dataset.test.labels.clone());

    let device = Device::flex();
    device.seed(3);
    let model = Classifier::new(ModelKind::ShallowCnn, MNIST, &device);

    let reference = evaluate_with_threads(1, &model, &split);
    let parallel = evaluate_with_threads(3, &model, &split);
    assert_eq!(reference.rows.len(), 1000);
    // Bit for bit: each batch is computed alone whatever the pool, so no tolerance is needed.
    let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&reference.rows.loss), bits(&parallel.rows.loss));
    assert_eq!(bits(&reference.probs), bits(&parallel.probs));
    assert_eq!(reference.rows.predicted, parallel.rows.predicted);
}
