//! `Upsample` with ONNX `Resize` semantics, applied one axis at a time (nearest and n-linear
//! interpolation are both separable, so this equals the n-dimensional definition).

use ndarray::{ArrayD, ArrayViewD, Axis, Zip};
use strider_ir::op::{ResizeMode, UpsampleAttrs};

/// How one output index reads the input along one axis: weights on two neighbours.
#[derive(Clone, Copy, Debug)]
struct Tap {
    i0: usize,
    i1: usize,
    w1: f32,
}

fn taps(attrs: &UpsampleAttrs, input: usize, output: usize, scale: f32) -> Vec<Tap> {
    let last = input as i64 - 1;
    (0..output)
        .map(|o| {
            let x = attrs.coordinate_transformation_mode.source(o, input, output, scale);
            match attrs.mode {
                ResizeMode::Nearest => {
                    let i = attrs.nearest_mode.round(x).clamp(0, last) as usize;
                    Tap { i0: i, i1: i, w1: 0.0 }
                }
                ResizeMode::Linear => {
                    // Beyond the border the edge value is used (ONNX pads with the edge).
                    let x0 = x.floor();
                    let w1 = x - x0;
                    let i0 = (x0 as i64).clamp(0, last) as usize;
                    let i1 = (x0 as i64 + 1).clamp(0, last) as usize;
                    Tap { i0, i1, w1 }
                }
            }
        })
        .collect()
}

/// Resizes `x` to `output_shape` (already inferred: floor(in · scale) per axis).
pub fn upsample(x: &ArrayViewD<f32>, attrs: &UpsampleAttrs, output_shape: &[usize]) -> ArrayD<f32> {
    let mut current = x.to_owned();
    for (axis, &out) in output_shape.iter().enumerate() {
        let input = current.shape()[axis];
        let scale = attrs.scales[axis];
        if input == out && scale == 1.0 {
            continue;
        }
        let taps = taps(attrs, input, out, scale);
        let mut shape = current.shape().to_vec();
        shape[axis] = out;
        let mut next = ArrayD::<f32>::zeros(shape);
        Zip::from(next.lanes_mut(Axis(axis))).and(current.lanes(Axis(axis))).for_each(|mut dst, src| {
            for (d, t) in dst.iter_mut().zip(&taps) {
                *d = if t.w1 == 0.0 { src[t.i0] } else { src[t.i0] * (1.0 - t.w1) + src[t.i1] * t.w1 };
            }
        });
        current = next;
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;
    use strider_ir::op::{CoordinateTransform, NearestMode};

    fn arr(shape: &[usize], v: Vec<f32>) -> ArrayD<f32> {
        ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
    }

    fn run(attrs: &UpsampleAttrs, x: &ArrayD<f32>) -> Vec<f32> {
        let out: Vec<usize> =
            x.shape().iter().zip(&attrs.scales).map(|(&d, &s)| (d as f32 * s).floor() as usize).collect();
        upsample(&x.view(), attrs, &out).into_raw_vec_and_offset().0
    }

    #[test]
    fn onnx_upsample_nearest_example() {
        // ONNX Upsample docs: [[1, 2], [3, 4]], scales [1, 1, 2, 3].
        let x = arr(&[1, 1, 2, 2], vec![1., 2., 3., 4.]);
        let a = UpsampleAttrs { scales: vec![1., 1., 2., 3.], ..Default::default() };
        let row1 = [1., 1., 1., 2., 2., 2.];
        let row2 = [3., 3., 3., 4., 4., 4.];
        assert_eq!(run(&a, &x), [row1, row1, row2, row2].concat());
    }

    #[test]
    fn onnx_resize_linear_examples() {
        let x = arr(&[1, 1, 2, 2], vec![1., 2., 3., 4.]);
        // resize_upsample_scales_linear (half_pixel), scales [1, 1, 2, 2].
        let hp = UpsampleAttrs {
            scales: vec![1., 1., 2., 2.],
            mode: ResizeMode::Linear,
            coordinate_transformation_mode: CoordinateTransform::HalfPixel,
            ..Default::default()
        };
        let expected = [1., 1.25, 1.75, 2., 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3., 3.25, 3.75, 4.];
        assert_eq!(run(&hp, &x), expected);
        // resize_upsample_scales_linear_align_corners.
        let ac = UpsampleAttrs { coordinate_transformation_mode: CoordinateTransform::AlignCorners, ..hp };
        let expected = [
            1., 1.3333333, 1.6666667, 2., 1.6666666, 2., 2.3333333, 2.6666667, 2.3333333, 2.6666665, 3., 3.3333333, 3.,
            3.3333333, 3.6666667, 4.,
        ];
        for (g, w) in run(&ac, &x).iter().zip(expected) {
            assert!((g - w).abs() < 1e-6, "{g} vs {w}");
        }
    }

    #[test]
    fn onnx_resize_nearest_fractional_scale() {
        // resize_downsample_scales_nearest: [[1,2,3,4],[5,6,7,8]], scales [1, 1, 0.6, 0.6] → [[1, 3]]
        let x = arr(&[1, 1, 2, 4], (1..=8).map(|v| v as f32).collect());
        let a = UpsampleAttrs {
            scales: vec![1., 1., 0.6, 0.6],
            coordinate_transformation_mode: CoordinateTransform::HalfPixel,
            nearest_mode: NearestMode::RoundPreferFloor,
            ..Default::default()
        };
        assert_eq!(run(&a, &x), [1., 3.]);
    }
}
