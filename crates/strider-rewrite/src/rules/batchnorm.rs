//! Batch normalization folded into the convolution before it.

use egg::{Id, rewrite};
use strider_ir::Op;
use strider_ir::format::DataSpec;

use super::{Lower, Matched, Rule};
use crate::analysis::{Constant, add_const};

/// The BatchNormalization folding rules (Conv and ConvTranspose, with or without bias).
pub fn rules() -> Vec<Rule> {
    vec![
        rewrite!("batchnorm-after-conv-folds-into-conv";
            "(BatchNormalization ?a (Conv ?c ?x ?w) ?s ?b ?m ?v)" => { Lower::new(&["?a", "?c", "?x", "?w", "?s", "?b", "?m", "?v"], fold) }),
        rewrite!("batchnorm-after-biased-conv-folds-into-conv";
            "(BatchNormalization ?a (Conv ?c ?x ?w ?cb) ?s ?b ?m ?v)" => { Lower::new(&["?a", "?c", "?x", "?w", "?cb", "?s", "?b", "?m", "?v"], fold) }),
        rewrite!("batchnorm-after-convtranspose-folds-into-convtranspose";
            "(BatchNormalization ?a (ConvTranspose ?c ?x ?w) ?s ?b ?m ?v)" => { Lower::new(&["?a", "?c", "?x", "?w", "?s", "?b", "?m", "?v"], fold) }),
        rewrite!("batchnorm-after-biased-convtranspose-folds-into-convtranspose";
            "(BatchNormalization ?a (ConvTranspose ?c ?x ?w ?cb) ?s ?b ?m ?v)" => { Lower::new(&["?a", "?c", "?x", "?w", "?cb", "?s", "?b", "?m", "?v"], fold) }),
    ]
}

/// BN(conv(x, W, b?)) = conv(x, W·f, (b − mean)·f + B) with f = scale / sqrt(var + ε) per output
/// channel: the normalization is affine per channel, and a convolution is linear per output channel.
/// Condition: the weights and the normalization parameters are constants (so the new weights fold).
fn fold(m: &mut Matched) -> Option<Id> {
    let Op::BatchNormalization(bn) = &m.op else { return None };
    let epsilon = bn.epsilon;
    let n = m.inputs.len();
    let (conv_attrs, x, w) = (m.inputs[0], m.inputs[1], m.inputs[2]);
    let bias = (n == 8).then(|| m.inputs[3]);
    let [scale, shift, mean, var] = [m.inputs[n - 4], m.inputs[n - 3], m.inputs[n - 2], m.inputs[n - 1]];
    let params = [w, scale, shift, mean, var].into_iter().chain(bias);
    if !params.clone().all(|p| m.egraph[p].data.constant) {
        return None;
    }
    let conv = m.egraph[conv_attrs].data.attrs.clone()?;
    let ws = m.shape(w)?;
    let channels = m.shape(scale)?.dims()[0];
    let eps_name = format!("{}.epsilon", m.name);
    let eps_const = Constant::Generated { shape: strider_ir::Shape(vec![1]), spec: DataSpec::Fill(epsilon) };
    let eps = add_const(m.egraph, &eps_name, eps_const);
    let shifted_var = m.add(Op::Add, &[var, eps], "var_eps")?;
    let std = m.add(Op::Sqrt, &[shifted_var], "std")?;
    let factor = m.add(Op::Div, &[scale, std], "factor")?;
    let mean_scaled = m.add(Op::Mul, &[mean, factor], "mean_scaled")?;
    let offset = m.add(Op::Sub, &[shift, mean_scaled], "offset")?;
    let new_bias = match bias {
        Some(b) => {
            let scaled = m.add(Op::Mul, &[b, factor], "bias_scaled")?;
            m.add(Op::Add, &[scaled, offset], "bias")?
        }
        None => offset,
    };
    let spatial = vec![1; ws.rank() - 2];
    let new_w = match &conv {
        // Conv weights are (M, C/group, k…): output channels first.
        Op::Conv(_) => {
            let f = m.reshape(factor, &[&[channels, 1][..], &spatial].concat(), "factor_w")?;
            m.add(Op::Mul, &[w, f], "weight")?
        }
        // ConvTranspose weights are (C, M/group, k…): output channel g·M/g + m sits at [g-block, m].
        Op::ConvTranspose(a) if a.group == 1 => {
            let f = m.reshape(factor, &[&[1, channels][..], &spatial].concat(), "factor_w")?;
            m.add(Op::Mul, &[w, f], "weight")?
        }
        Op::ConvTranspose(a) => {
            let (g, c, mg) = (a.group, ws.dims()[0], ws.dims()[1]);
            let k: usize = ws.dims()[2..].iter().product();
            let grouped = m.reshape(w, &[g, c / g, mg, k], "weight_groups")?;
            let f = m.reshape(factor, &[g, 1, mg, 1], "factor_w")?;
            let scaled = m.add(Op::Mul, &[grouped, f], "weight_scaled")?;
            m.reshape(scaled, ws.dims(), "weight")?
        }
        _ => return None,
    };
    m.add(conv, &[x, new_w, new_bias], "folded")
}
