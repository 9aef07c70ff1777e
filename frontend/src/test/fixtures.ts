import type { InferenceResponse, LensRow, ModelStatus } from '../api/types';

export const TOKENS = ['<s>', 'The', ' cat', '\n'];

function preds(seed: number, T: number) {
  return Array.from({ length: T }, (_, i) =>
    Array.from({ length: 5 }, (_, k) => ({ token: k === 0 ? [' the', 'cat', '\t', 'x'][(i + seed) % 4] : `t${k}`, prob: k === 0 ? 0.5 - 0.1 * ((i + seed) % 4) : 0.05, id: k })),
  );
}

export function lensRows(names = ['Embeddings', 'Layer 0', 'Final Output'], T = TOKENS.length): LensRow[] {
  return names.map((layer_name, layer_index) => ({ layer_index, layer_name, predictions: preds(layer_index, T) }));
}

/** attention[layer][head][q][k], causal rows summing to 1 */
export function attention(layers: number, heads: number, T: number): number[][][][] {
  return Array.from({ length: layers }, (_, l) =>
    Array.from({ length: heads }, (_, h) =>
      Array.from({ length: T }, (_, q) => Array.from({ length: T }, (_, k) => (k <= q ? (l + h + 1 + k) / Array.from({ length: q + 1 }, (_, j) => l + h + 1 + j).reduce((a, b) => a + b, 0) : 0))),
    ),
  );
}

export function inferenceResponse(text = 'The cat'): InferenceResponse {
  return { text, input_tokens: TOKENS, logit_lens: lensRows(), attention: attention(2, 2, TOKENS.length) };
}

export const READY: ModelStatus = {
  loaded: true,
  backend: 'custom',
  model_name: '/fixtures/tiny/llama',
  model_class: 'LlamaModel',
  num_layers: 2,
  hidden_size: 8,
  num_heads: 2,
  vocab_size: 512,
  instruct: false,
  has_chat_template: true,
  status: 'ready',
  loading: null,
  last_error: null,
};
