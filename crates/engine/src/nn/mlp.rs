//! The MLP: gated (`down(act(gate(x)) * up(x))`, Llama and most) or plain
//! (`fc_out(act(fc_in(x)))`, GPT-2, NeoX, Phi), with its activation.

use candle_core::Tensor;

use crate::error::{EngineError, Result};
use crate::nn::record::Mode;
use crate::nn::Linear;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Silu,
    /// The tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
    /// The exact erf form (`gelu`).
    GeluErf,
    Relu,
}

impl Activation {
    pub const NAMES: &'static str = "silu, gelu_new, gelu_pytorch_tanh, gelu, relu";

    /// A transformers `hidden_act` / `activation_function` name.
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "silu" | "swish" => Activation::Silu,
            "gelu_new" | "gelu_pytorch_tanh" => Activation::GeluTanh,
            "gelu" => Activation::GeluErf,
            "relu" => Activation::Relu,
            other => {
                return Err(EngineError::Unsupported(format!(
                    "activation {other:?} is not supported (supported: {})",
                    Self::NAMES
                )))
            }
        })
    }

    fn apply(self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Activation::Silu => candle_nn::ops::silu(x)?,
            Activation::GeluTanh => x.gelu()?,
            Activation::GeluErf => x.gelu_erf()?,
            Activation::Relu => x.relu()?,
        })
    }
}

pub(crate) enum Mlp {
    Gated {
        gate: Linear,
        up: Linear,
        down: Linear,
    },
    Plain {
        fc_in: Linear,
        fc_out: Linear,
    },
}

impl Mlp {
    fn linears(&self) -> Vec<&Linear> {
        match self {
            Mlp::Gated { gate, up, down } => vec![gate, up, down],
            Mlp::Plain { fc_in, fc_out } => vec![fc_in, fc_out],
        }
    }

    pub(crate) fn bytes(&self) -> usize {
        self.linears().iter().map(|l| l.bytes()).sum()
    }

    /// How its weights are held.
    pub(crate) fn kinds(&self) -> Vec<String> {
        self.linears().iter().map(|l| l.kind()).collect()
    }

    /// The MLP on `x`, recorded for autograd when asked (the activations
    /// are candle ops, which have their backward).
    pub(crate) fn forward(&self, act: Activation, x: &Tensor, mode: Mode) -> Result<Tensor> {
        Ok(match self {
            Mlp::Gated { gate, up, down } => {
                let (g, u) = (gate.forward_in(x, mode)?, up.forward_in(x, mode)?);
                let h = match (act, mode) {
                    (Activation::Silu, Mode::Plain) => super::swiglu::silu_times(&g, &u)?,
                    _ => (act.apply(&g)? * u)?,
                };
                down.forward_in(&h, mode)?
            }
            Mlp::Plain { fc_in, fc_out } => {
                fc_out.forward_in(&act.apply(&fc_in.forward_in(x, mode)?)?, mode)?
            }
        })
    }
}
