//! Builds a Hugging Face [`Tokenizer`] from the tokenizer stored in GGUF metadata.
//!
//! candle's own `TokenizerFromGguf` adds a prefix space and falls back to GPT-2
//! for unknown `tokenizer.ggml.pre` values, so its ids differ from the model's
//! HF tokenizer (e.g. SmolLM2). This builder mirrors the HF `tokenizer.json`
//! of each supported pre-tokenizer profile and refuses anything else.

use std::collections::BTreeSet;

use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::processors::template::{SpecialToken, TemplateProcessing};
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

/// `tokenizer.ggml.pre` values this builder understands.
pub const KNOWN_PRE_TOKENIZERS: &[&str] = &[
    "gpt2",
    "gpt-2",
    "smollm",
    "starcoder",
    "llama3",
    "llama-bpe",
    "smaug-bpe",
    "qwen2",
];

// Split regexes copied from the models' HF tokenizer.json files.
const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

// llama.cpp token types (`llama_token_type`).
const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PreProfile {
    /// GPT-2 regex applied by the ByteLevel pre-tokenizer itself.
    Gpt2,
    /// StarCoder family (SmolLM): every digit isolated, then GPT-2 regex.
    StarCoder,
    /// Llama 3: own split regex and `ignore_merges`.
    Llama3,
    /// Qwen2: NFC normalisation and single-digit split regex.
    Qwen2,
}

impl PreProfile {
    fn from_pre(pre: &str) -> Result<Self, String> {
        match pre {
            "gpt2" | "gpt-2" => Ok(Self::Gpt2),
            "smollm" | "starcoder" => Ok(Self::StarCoder),
            "llama3" | "llama-bpe" | "smaug-bpe" => Ok(Self::Llama3),
            "qwen2" => Ok(Self::Qwen2),
            other => Err(format!(
                "unsupported tokenizer.ggml.pre `{other}`; supported: {}",
                KNOWN_PRE_TOKENIZERS.join(", ")
            )),
        }
    }

    fn pre_tokenizer(self) -> Result<PreTokenizerWrapper, String> {
        let split = |regex: &str| {
            Split::new(
                SplitPattern::Regex(regex.to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| format!("invalid pre-tokenizer regex: {e}"))
        };
        // add_prefix_space is always false: HF never prepends a space for these models.
        Ok(match self {
            Self::Gpt2 => ByteLevel::new(false, true, true).into(),
            Self::StarCoder => Sequence::new(vec![
                Digits::new(true).into(),
                ByteLevel::new(false, true, true).into(),
            ])
            .into(),
            Self::Llama3 => Sequence::new(vec![
                split(LLAMA3_REGEX)?.into(),
                ByteLevel::new(false, true, false).into(),
            ])
            .into(),
            Self::Qwen2 => Sequence::new(vec![
                split(QWEN2_REGEX)?.into(),
                ByteLevel::new(false, false, false).into(),
            ])
            .into(),
        })
    }

    /// Default for `add_bos_token` when the key is absent (as llama.cpp does).
    fn default_add_bos(self) -> bool {
        self == Self::Llama3
    }
}

/// Builds a byte-level BPE [`Tokenizer`] equivalent to the model's HF tokenizer
/// from the `tokenizer.ggml.*` metadata of a GGUF file.
pub fn tokenizer_from_gguf(content: &Content) -> Result<Tokenizer, String> {
    let md = Metadata(content);

    let model = md.string("tokenizer.ggml.model")?;
    if model != "gpt2" {
        return Err(format!(
            "unsupported tokenizer.ggml.model `{model}`; only `gpt2` (byte-level BPE) is supported"
        ));
    }
    // No silent GPT-2 fallback: a wrong split regex gives plausible but wrong ids.
    let pre = md.string("tokenizer.ggml.pre")?;
    let profile = PreProfile::from_pre(pre)?;

    let tokens = md.strings("tokenizer.ggml.tokens")?;
    let n_tokens = tokens.len();
    let merges = md
        .strings("tokenizer.ggml.merges")?
        .into_iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| format!("invalid merge `{m}` in tokenizer.ggml.merges"))
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mut vocab = Vocab::with_capacity(n_tokens);
    for (id, token) in tokens.iter().enumerate() {
        let id = u32::try_from(id).map_err(|_| "too many tokens".to_string())?;
        // First occurrence wins if a converter emitted duplicate strings.
        vocab.entry(token.to_string()).or_insert(id);
    }
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .ignore_merges(profile == PreProfile::Llama3)
        .build()
        .map_err(|e| format!("cannot build BPE model from GGUF: {e}"))?;

    let mut tokenizer = Tokenizer::new(bpe);
    if profile == PreProfile::Qwen2 {
        tokenizer
            .with_normalizer(Some(NFC))
            .map_err(|e| format!("cannot set normalizer: {e}"))?;
    }
    tokenizer.with_pre_tokenizer(Some(profile.pre_tokenizer()?));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));

    let bos = md.token_id("tokenizer.ggml.bos_token_id", n_tokens)?;
    let eos = md.token_id("tokenizer.ggml.eos_token_id", n_tokens)?;
    let unk = md.token_id("tokenizer.ggml.unknown_token_id", n_tokens)?;
    let pad = md.token_id("tokenizer.ggml.padding_token_id", n_tokens)?;

    // Control/user-defined tokens must be matched before BPE so that e.g.
    // "<|im_start|>" in text becomes one id, as in HF.
    let mut special_ids: BTreeSet<u32> = [bos, eos, unk, pad].into_iter().flatten().collect();
    if let Some(types) = md.optional_vec("tokenizer.ggml.token_type")? {
        if types.len() != n_tokens {
            return Err(format!(
                "tokenizer.ggml.token_type has {} entries but there are {n_tokens} tokens",
                types.len()
            ));
        }
        for (id, ty) in types.iter().enumerate() {
            let ty = int_value(ty)
                .ok_or_else(|| format!("tokenizer.ggml.token_type[{id}] is not an integer"))?;
            if ty == TOKEN_TYPE_CONTROL || ty == TOKEN_TYPE_USER_DEFINED {
                special_ids.insert(id as u32);
            }
        }
    }
    let specials: Vec<AddedToken> = special_ids
        .iter()
        .map(|&id| AddedToken::from(tokens[id as usize].to_string(), true))
        .collect();
    tokenizer
        .add_special_tokens(specials)
        .map_err(|e| format!("cannot add special tokens: {e}"))?;

    let add_bos = md
        .optional_bool("tokenizer.ggml.add_bos_token")?
        .unwrap_or(profile.default_add_bos());
    let add_eos = md
        .optional_bool("tokenizer.ggml.add_eos_token")?
        .unwrap_or(false);
    let bos = if add_bos {
        let id = bos.ok_or("add_bos_token is set but tokenizer.ggml.bos_token_id is missing")?;
        Some((id, tokens[id as usize]))
    } else {
        None
    };
    let eos = if add_eos {
        let id = eos.ok_or("add_eos_token is set but tokenizer.ggml.eos_token_id is missing")?;
        Some((id, tokens[id as usize]))
    } else {
        None
    };
    if let Some(template) = template_processor(bos, eos)? {
        tokenizer.with_post_processor(Some(template));
    }

    Ok(tokenizer)
}

/// Template adding BOS/EOS around each sequence, laid out like HF's Llama 3 one.
fn template_processor(
    bos: Option<(u32, &str)>,
    eos: Option<(u32, &str)>,
) -> Result<Option<TemplateProcessing>, String> {
    if bos.is_none() && eos.is_none() {
        return Ok(None);
    }
    // Fixed labels: token text like "$x" or "a:b" would be misparsed as template syntax.
    let mut specials = Vec::new();
    let mut single = Vec::new();
    let mut pair = Vec::new();
    if let Some((id, text)) = bos {
        specials.push(special_token("bos", id, text)?);
    }
    if let Some((id, text)) = eos {
        specials.push(special_token("eos", id, text)?);
    }
    for (seq, type_id) in [("$A", 0), ("$B", 1)] {
        let mut pieces = Vec::new();
        if bos.is_some() {
            pieces.push(format!("bos:{type_id}"));
        }
        pieces.push(format!("{seq}:{type_id}"));
        if eos.is_some() {
            pieces.push(format!("eos:{type_id}"));
        }
        if seq == "$A" {
            single.extend(pieces.iter().cloned());
        }
        pair.extend(pieces);
    }
    TemplateProcessing::builder()
        .try_single(single)
        .and_then(|b| b.try_pair(pair))
        .map_err(|e| format!("invalid post-processor template: {e}"))?
        .special_tokens(specials)
        .build()
        .map(Some)
        .map_err(|e| format!("cannot build post-processor: {e}"))
}

fn special_token(label: &str, id: u32, text: &str) -> Result<SpecialToken, String> {
    SpecialToken::new(label.to_string(), vec![id], vec![text.to_string()])
        .map_err(|e| format!("invalid special token `{text}`: {e}"))
}

/// GGUF integers may be stored with any width/sign; llama.cpp converters differ.
pub(crate) fn int_value(v: &Value) -> Option<i64> {
    match *v {
        Value::U8(x) => Some(x.into()),
        Value::I8(x) => Some(x.into()),
        Value::U16(x) => Some(x.into()),
        Value::I16(x) => Some(x.into()),
        Value::U32(x) => Some(x.into()),
        Value::I32(x) => Some(x.into()),
        Value::U64(x) => i64::try_from(x).ok(),
        Value::I64(x) => Some(x),
        _ => None,
    }
}

struct Metadata<'a>(&'a Content);

impl<'a> Metadata<'a> {
    fn get(&self, key: &str) -> Result<&'a Value, String> {
        self.0
            .metadata
            .get(key)
            .ok_or_else(|| format!("GGUF metadata has no `{key}`"))
    }

    fn string(&self, key: &str) -> Result<&'a str, String> {
        self.get(key)?
            .to_string()
            .map(String::as_str)
            .map_err(|_| format!("GGUF `{key}` is not a string"))
    }

    fn strings(&self, key: &str) -> Result<Vec<&'a str>, String> {
        self.get(key)?
            .to_vec()
            .map_err(|_| format!("GGUF `{key}` is not an array"))?
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.to_string()
                    .map(String::as_str)
                    .map_err(|_| format!("GGUF `{key}[{i}]` is not a string"))
            })
            .collect()
    }

    fn optional_vec(&self, key: &str) -> Result<Option<&'a Vec<Value>>, String> {
        match self.0.metadata.get(key) {
            None => Ok(None),
            Some(v) => v
                .to_vec()
                .map(Some)
                .map_err(|_| format!("GGUF `{key}` is not an array")),
        }
    }

    fn optional_bool(&self, key: &str) -> Result<Option<bool>, String> {
        match self.0.metadata.get(key) {
            None => Ok(None),
            Some(v) => v
                .to_bool()
                .map(Some)
                .map_err(|_| format!("GGUF `{key}` is not a bool")),
        }
    }

    /// Negative ids mean "none" (llama.cpp's LLAMA_TOKEN_NULL); out of range is an error.
    fn token_id(&self, key: &str, n_tokens: usize) -> Result<Option<u32>, String> {
        let Some(v) = self.0.metadata.get(key) else {
            return Ok(None);
        };
        let id = int_value(v).ok_or_else(|| format!("GGUF `{key}` is not an integer"))?;
        if id < 0 {
            return Ok(None);
        }
        match usize::try_from(id) {
            Ok(i) if i < n_tokens => Ok(Some(id as u32)),
            _ => Err(format!(
                "GGUF `{key}` = {id} is out of range for {n_tokens} tokens"
            )),
        }
    }
}

/// The bundle of a GGUF file: its tokenizer, BOS/EOS strings and chat template.
impl super::TokenizerBundle {
    pub fn from_gguf(content: &Content) -> crate::error::Result<Self> {
        let tok = tokenizer_from_gguf(content).map_err(crate::error::EngineError::Tokenizer)?;
        let md = &content.metadata;
        let token_at = |key: &str| -> String {
            md.get(key)
                .and_then(|v| v.to_u32().ok())
                .and_then(|id| tok.id_to_token(id))
                .unwrap_or_default()
        };
        let (bos, eos) = (
            token_at("tokenizer.ggml.bos_token_id"),
            token_at("tokenizer.ggml.eos_token_id"),
        );
        let template = md
            .get("tokenizer.chat_template")
            .and_then(|v| v.to_string().ok())
            .cloned();
        Self::new(tok, template, bos, eos, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::gguf_file::VersionedMagic;
    use std::collections::HashMap;
    use std::path::PathBuf;
    use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};

    const DEFAULT_GGUF: &str = "/root/.cache/logitlens/models/SmolLM2-135M-Instruct.Q4_1.gguf";

    fn gguf_path() -> PathBuf {
        std::env::var_os("LOGITLENS_GGUF")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_GGUF))
    }

    /// The SmolLM2 GGUF content and tokenizer, or `None` (test skipped) if absent.
    fn smollm(test: &str) -> Option<(Content, Tokenizer)> {
        let path = gguf_path();
        if !path.exists() {
            eprintln!("SKIPPED: {test}: GGUF {} not found", path.display());
            return None;
        }
        let mut file = std::fs::File::open(&path).expect("open GGUF");
        let content = Content::read(&mut file).expect("read GGUF");
        let tokenizer = tokenizer_from_gguf(&content).expect("build tokenizer");
        Some((content, tokenizer))
    }

    fn ids(tok: &Tokenizer, text: &str) -> Vec<u32> {
        tok.encode(text, true).unwrap().get_ids().to_vec()
    }

    fn decoded_alone(tok: &Tokenizer, ids: &[u32]) -> Vec<String> {
        ids.iter()
            .map(|&id| tok.decode(&[id], false).unwrap())
            .collect()
    }

    fn assert_round_trip(tok: &Tokenizer, text: &str) {
        let ids = ids(tok, text);
        assert_eq!(tok.decode(&ids, false).unwrap(), text, "ids {ids:?}");
    }

    #[test]
    fn smollm_capital_of_france() {
        let Some((_, tok)) = smollm("smollm_capital_of_france") else {
            return;
        };
        let ids = ids(&tok, "The capital of France is");
        assert_eq!(ids, [504, 3575, 282, 4649, 314]);
        assert_eq!(
            decoded_alone(&tok, &ids),
            ["The", " capital", " of", " France", " is"]
        );
    }

    #[test]
    fn smollm_once_upon_a_time() {
        let Some((_, tok)) = smollm("smollm_once_upon_a_time") else {
            return;
        };
        assert_eq!(
            ids(&tok, "Once upon a time there was"),
            [6403, 1980, 253, 655, 665, 436]
        );
    }

    #[test]
    fn smollm_accents_emoji_and_spaced_digits() {
        let Some((_, tok)) = smollm("smollm_accents_emoji_and_spaced_digits") else {
            return;
        };
        let text = "Café naïve 🙂 1 2 3";
        let ids = ids(&tok, text);
        assert_eq!(
            ids,
            [51, 1939, 2756, 15486, 46494, 47526, 216, 33, 216, 34, 216, 35]
        );
        assert_eq!(
            decoded_alone(&tok, &ids),
            ["C", "af", "é", " na", "ïve", " 🙂", " ", "1", " ", "2", " ", "3"]
        );
        assert_round_trip(&tok, text);
    }

    #[test]
    fn smollm_chat_special_tokens_are_single_ids() {
        let Some((content, tok)) = smollm("smollm_chat_special_tokens_are_single_ids") else {
            return;
        };
        let tokens = Metadata(&content).strings("tokenizer.ggml.tokens").unwrap();
        let id_of = |t: &str| tokens.iter().position(|&x| x == t).unwrap() as u32;
        let (start, end) = (id_of("<|im_start|>"), id_of("<|im_end|>"));

        let text = "<|im_start|>user\nHello<|im_end|>\n";
        let got = ids(&tok, text);
        let mut want = vec![start];
        want.extend(ids(&tok, "user\nHello"));
        want.push(end);
        want.extend(ids(&tok, "\n"));
        assert_eq!(got, want);
        assert_eq!(got.iter().filter(|&&i| i == start || i == end).count(), 2);
        assert_eq!(tok.decode(&[start], false).unwrap(), "<|im_start|>");
        assert_eq!(tok.decode(&[end], false).unwrap(), "<|im_end|>");
        assert_round_trip(&tok, text);

        // Every control token in the GGUF encodes to exactly its own id.
        let types = Metadata(&content)
            .optional_vec("tokenizer.ggml.token_type")
            .unwrap()
            .unwrap();
        let mut n_control = 0;
        for (id, ty) in types.iter().enumerate() {
            if int_value(ty) == Some(TOKEN_TYPE_CONTROL) {
                n_control += 1;
                assert_eq!(ids(&tok, tokens[id]), [id as u32], "{}", tokens[id]);
            }
        }
        assert!(n_control >= 2);
    }

    #[test]
    fn smollm_adds_no_bos_or_eos() {
        let Some((_, tok)) = smollm("smollm_adds_no_bos_or_eos") else {
            return;
        };
        let with = tok.encode("Hello", true).unwrap();
        let without = tok.encode("Hello", false).unwrap();
        assert_eq!(with.get_ids(), without.get_ids());
    }

    #[test]
    fn smollm_digits_are_split_individually() {
        let Some((_, tok)) = smollm("smollm_digits_are_split_individually") else {
            return;
        };
        let text = "12345 2024";
        let got = ids(&tok, text);
        // One id per character; the space is the byte-level token "Ġ".
        let want: Vec<u32> = text
            .chars()
            .map(|c| {
                let t = if c == ' ' {
                    "Ġ".to_string()
                } else {
                    c.to_string()
                };
                tok.token_to_id(&t).unwrap()
            })
            .collect();
        assert_eq!(got, want);
        assert_round_trip(&tok, text);
    }

    #[test]
    fn smollm_round_trips_newlines_and_cjk() {
        let Some((_, tok)) = smollm("smollm_round_trips_newlines_and_cjk") else {
            return;
        };
        for text in [
            "line one\nline two\n\n\nline three\r\n\ttabbed   spaces  \n",
            "你好，世界！今天天气很好。",
            "日本語のテキストと한국어 텍스트",
            "  leading and trailing  ",
            "emoji 👩‍👩‍👧 mix: ½ · ∑ x² 🙂🙂",
        ] {
            assert_round_trip(&tok, text);
        }
    }

    #[test]
    fn smollm_partial_utf8_decodes_as_replacement_char() {
        let Some((_, tok)) = smollm("smollm_partial_utf8_decodes_as_replacement_char") else {
            return;
        };
        // Byte 0xE4 (first byte of many CJK chars) is the byte-level char 'ä'.
        let id = tok.token_to_id("ä").unwrap();
        assert_eq!(tok.decode(&[id], false).unwrap(), "\u{FFFD}");
    }

    // ---- Synthetic GGUF metadata: no file needed. ----

    fn byte_chars() -> Vec<String> {
        let mut chars: Vec<char> = ByteLevel::alphabet().into_iter().collect();
        chars.sort_unstable();
        chars.into_iter().map(String::from).collect()
    }

    fn strings(v: &[&str]) -> Value {
        Value::Array(v.iter().map(|s| Value::String(s.to_string())).collect())
    }

    /// Byte alphabet + "He" + "<s>" + "</s>", with `pre` and extra keys.
    fn synthetic(pre: Option<&str>, extra: &[(&str, Value)]) -> Content {
        let mut tokens = byte_chars();
        tokens.extend(["He", "<s>", "</s>"].map(String::from));
        let n = tokens.len();
        let mut types = vec![Value::I32(1); n];
        types[n - 2] = Value::I32(3);
        types[n - 1] = Value::I32(3);
        let mut metadata = HashMap::from([
            (
                "tokenizer.ggml.model".to_string(),
                Value::String("gpt2".into()),
            ),
            (
                "tokenizer.ggml.tokens".to_string(),
                Value::Array(tokens.into_iter().map(Value::String).collect()),
            ),
            ("tokenizer.ggml.merges".to_string(), strings(&["H e"])),
            ("tokenizer.ggml.token_type".to_string(), Value::Array(types)),
            (
                "tokenizer.ggml.bos_token_id".to_string(),
                Value::U32(n as u32 - 2),
            ),
            (
                "tokenizer.ggml.eos_token_id".to_string(),
                Value::U32(n as u32 - 1),
            ),
        ]);
        if let Some(pre) = pre {
            metadata.insert("tokenizer.ggml.pre".into(), Value::String(pre.into()));
        }
        for (k, v) in extra {
            metadata.insert(k.to_string(), v.clone());
        }
        Content {
            magic: VersionedMagic::GgufV3,
            metadata,
            tensor_infos: HashMap::new(),
            tensor_data_offset: 0,
        }
    }

    fn splits(tok: &Tokenizer, text: &str) -> Vec<String> {
        let mut pre = PreTokenizedString::from(text);
        tok.get_pre_tokenizer()
            .unwrap()
            .pre_tokenize(&mut pre)
            .unwrap();
        pre.get_splits(OffsetReferential::Original, OffsetType::Byte)
            .into_iter()
            .map(|(s, _, _)| s.to_string())
            .collect()
    }

    #[test]
    fn rejects_non_bpe_model() {
        let c = synthetic(
            Some("smollm"),
            &[("tokenizer.ggml.model", Value::String("llama".into()))],
        );
        let err = tokenizer_from_gguf(&c).unwrap_err();
        assert!(err.contains("llama") && err.contains("gpt2"), "{err}");
    }

    #[test]
    fn rejects_missing_and_unknown_pre() {
        let err = tokenizer_from_gguf(&synthetic(None, &[])).unwrap_err();
        assert!(err.contains("tokenizer.ggml.pre"), "{err}");
        let err = tokenizer_from_gguf(&synthetic(Some("deepseek-llm"), &[])).unwrap_err();
        assert!(err.contains("deepseek-llm"), "{err}");
        for known in KNOWN_PRE_TOKENIZERS {
            assert!(err.contains(known), "{err}");
            assert!(tokenizer_from_gguf(&synthetic(Some(known), &[])).is_ok());
        }
    }

    #[test]
    fn rejects_out_of_range_token_id() {
        let c = synthetic(
            Some("gpt2"),
            &[("tokenizer.ggml.eos_token_id", Value::U32(1_000_000))],
        );
        let err = tokenizer_from_gguf(&c).unwrap_err();
        assert!(err.contains("out of range"), "{err}");
    }

    #[test]
    fn profile_splits_match_hf() {
        let text = "Hello'VE world 12345\n\n  foo";
        let split = |pre: &str| {
            splits(
                &tokenizer_from_gguf(&synthetic(Some(pre), &[])).unwrap(),
                text,
            )
        };
        assert_eq!(
            split("gpt2"),
            ["Hello", "'", "VE", "Ġworld", "Ġ12345", "ĊĊĠ", "Ġfoo"]
        );
        assert_eq!(
            split("smollm"),
            ["Hello", "'", "VE", "Ġworld", "Ġ", "1", "2", "3", "4", "5", "ĊĊĠ", "Ġfoo"]
        );
        assert_eq!(
            split("llama3"),
            ["Hello", "'VE", "Ġworld", "Ġ", "123", "45", "ĊĊ", "Ġ", "Ġfoo"]
        );
        assert_eq!(
            split("qwen2"),
            ["Hello", "'VE", "Ġworld", "Ġ", "1", "2", "3", "4", "5", "ĊĊ", "Ġ", "Ġfoo"]
        );
    }

    #[test]
    fn qwen2_normalizes_nfc() {
        let decomposed = "e\u{301}";
        let tokens = |pre: &str| {
            let tok = tokenizer_from_gguf(&synthetic(Some(pre), &[])).unwrap();
            tok.encode(decomposed, false).unwrap().get_tokens().to_vec()
        };
        assert_eq!(tokens("qwen2"), ["Ã", "©"]);
        assert_eq!(tokens("gpt2"), ["e", "Ì", "ģ"]);
    }

    #[test]
    fn bos_eos_template_follows_metadata() {
        let enc = |pre: &str, extra: &[(&str, Value)]| {
            let tok = tokenizer_from_gguf(&synthetic(Some(pre), extra)).unwrap();
            tok.encode("Hey", true).unwrap().get_tokens().to_vec()
        };
        assert_eq!(enc("gpt2", &[]), ["He", "y"]);
        // llama.cpp's default for Llama 3 is to add BOS.
        assert_eq!(enc("llama3", &[]), ["<s>", "He", "y"]);
        assert_eq!(
            enc(
                "gpt2",
                &[
                    ("tokenizer.ggml.add_bos_token", Value::Bool(true)),
                    ("tokenizer.ggml.add_eos_token", Value::Bool(true)),
                ]
            ),
            ["<s>", "He", "y", "</s>"]
        );
        let tok = tokenizer_from_gguf(&synthetic(
            Some("llama3"),
            &[("tokenizer.ggml.add_bos_token", Value::Bool(false))],
        ))
        .unwrap();
        assert_eq!(tok.encode("Hey", true).unwrap().get_tokens(), ["He", "y"]);
        // Special tokens in text are single ids, never split by BPE.
        assert_eq!(
            tok.encode("<s>Hey</s>", false).unwrap().get_tokens(),
            ["<s>", "He", "y", "</s>"]
        );
    }
}
