//! Tokenizer and chat template with Hugging Face semantics: `encode(text)`
//! adds what the tokenizer's post-processor adds (BOS for Llama), each id is
//! decoded on its own as `decode([id])` does, and chat templates render as
//! transformers renders them (Jinja2 with trim/lstrip blocks).

use std::collections::HashMap;
use std::sync::Mutex;

use minijinja::syntax::SyntaxConfig;
use minijinja::{context, Environment, ErrorKind};
use serde_json::Value;

use crate::error::{EngineError, Result};

pub mod gguf;

const TEMPLATE_NAME: &str = "chat";

pub struct ChatTemplate {
    env: Environment<'static>,
}

impl ChatTemplate {
    pub fn new(source: &str) -> Result<Self> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| EngineError::Template(e.to_string()))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> std::result::Result<String, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
            },
        );
        // Llama 3.x templates print today's date; `strftime_now` is what
        // transformers provides for that.
        env.add_function("strftime_now", |fmt: String| -> String {
            strftime_now(&fmt)
        });
        env.add_template_owned(TEMPLATE_NAME, source.to_owned())
            .map_err(|e| EngineError::Template(format!("cannot compile the chat template: {e}")))?;
        Ok(ChatTemplate { env })
    }

    /// One user message with the generation prompt on: the prompt a chat
    /// model answers.
    pub fn render_user(&self, text: &str, bos: &str, eos: &str) -> Result<String> {
        let tmpl = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| EngineError::Template(e.to_string()))?;
        let messages = vec![HashMap::from([
            ("role".to_string(), "user".to_string()),
            ("content".to_string(), text.to_string()),
        ])];
        tmpl.render(context! {
            messages => messages,
            add_generation_prompt => true,
            bos_token => bos.to_string(),
            eos_token => eos.to_string(),
        })
        .map_err(|e| {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            EngineError::Template(format!("failed to apply chat template: {msg}"))
        })
    }
}

/// A small strftime for the formats chat templates use (`%d %b %Y`, ...),
/// in UTC, without pulling a date crate for it.
fn strftime_now(fmt: &str) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let tod = secs.rem_euclid(86_400);
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str(&format!("{d:02}")),
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('Y') => out.push_str(&y.to_string()),
            Some('y') => out.push_str(&format!("{:02}", y % 100)),
            Some('b') => out.push_str(&MONTHS[(m - 1) as usize][..3]),
            Some('B') => out.push_str(MONTHS[(m - 1) as usize]),
            Some('H') => out.push_str(&format!("{:02}", tod / 3600)),
            Some('M') => out.push_str(&format!("{:02}", tod / 60 % 60)),
            Some('S') => out.push_str(&format!("{:02}", tod % 60)),
            Some('%') => out.push('%'),
            Some(o) => {
                out.push('%');
                out.push(o);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The tokenizer of one model, with what decoding and templating need.
pub struct TokenizerBundle {
    pub tokenizer: tokenizers::Tokenizer,
    pub chat_template: Option<ChatTemplate>,
    pub bos_token: String,
    pub eos_token: String,
    /// transformers' `clean_up_tokenization_spaces` (" ," -> "," etc.).
    pub clean_up_spaces: bool,
    decoded: Mutex<HashMap<u32, String>>,
    /// The longest token's text, in bytes (see [`Self::max_text_bytes`]).
    longest_token: usize,
}

/// `tokenizer_config.json` values may be a string or an AddedToken object.
fn token_string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// `chat_template` may be a string or a list of `{name, template}`.
pub fn template_from_config(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => {
            let named = |n: &str| {
                items.iter().find_map(|it| {
                    (it.get("name").and_then(Value::as_str) == Some(n))
                        .then(|| {
                            it.get("template")
                                .and_then(Value::as_str)
                                .map(str::to_owned)
                        })
                        .flatten()
                })
            };
            named("default").or_else(|| {
                items
                    .first()
                    .and_then(|it| it.get("template"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
        }
        _ => None,
    }
}

impl TokenizerBundle {
    pub fn new(
        tokenizer: tokenizers::Tokenizer,
        chat_template: Option<String>,
        bos_token: String,
        eos_token: String,
        clean_up_spaces: bool,
    ) -> Result<Self> {
        let chat_template = chat_template.map(|s| ChatTemplate::new(&s)).transpose()?;
        let longest_token = tokenizer
            .get_vocab(true)
            .keys()
            .map(String::len)
            .max()
            .unwrap_or(1)
            .max(1);
        Ok(TokenizerBundle {
            longest_token,
            tokenizer,
            chat_template,
            bos_token,
            eos_token,
            clean_up_spaces,
            decoded: Mutex::new(HashMap::new()),
        })
    }

    /// From `tokenizer.json` plus the optional `tokenizer_config.json` and
    /// `chat_template.jinja` of a Hugging Face model folder.
    pub fn from_hf_files(
        tokenizer_json: &[u8],
        tokenizer_config: Option<&str>,
        chat_template_jinja: Option<String>,
    ) -> Result<Self> {
        let tokenizer = tokenizers::Tokenizer::from_bytes(tokenizer_json)?;
        let cfg: Value = match tokenizer_config {
            Some(s) => serde_json::from_str(s)
                .map_err(|e| EngineError::Model(format!("tokenizer_config.json: {e}")))?,
            None => Value::Null,
        };
        let template =
            chat_template_jinja.or_else(|| template_from_config(cfg.get("chat_template")));
        let bos = token_string(cfg.get("bos_token")).unwrap_or_default();
        let eos = token_string(cfg.get("eos_token")).unwrap_or_default();
        // transformers >= 4.45 defaults this to false when the config omits it.
        let clean = cfg
            .get("clean_up_tokenization_spaces")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Self::new(tokenizer, template, bos, eos, clean)
    }

    /// The longest text that can encode to at most `tokens` tokens, in
    /// bytes, so a text can be refused before tokenizing it. A token's
    /// vocabulary string spends at least one byte per byte of text it covers
    /// (byte-level and SentencePiece vocabularies alike); twice that leaves
    /// room for normalisation that shortens text (NFC).
    pub fn max_text_bytes(&self, tokens: usize) -> usize {
        tokens.saturating_mul(self.longest_token).saturating_mul(2)
    }

    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// `tokenizer.encode(text)` with the tokenizer's special tokens.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        Ok(self
            .tokenizer
            .encode(text, add_special_tokens)?
            .get_ids()
            .to_vec())
    }

    /// The ids `encode(text)` puts before a text's own (BOS for Llama,
    /// nothing for GPT-2 or Qwen), found by encoding a probe with and
    /// without special tokens.
    pub fn leading_special_ids(&self) -> Result<Vec<u32>> {
        const PROBE: &str = "a";
        let with = self.encode(PROBE, true)?;
        let without = self.encode(PROBE, false)?;
        if without.is_empty() {
            return Ok(Vec::new());
        }
        Ok(
            match with.windows(without.len()).position(|w| w == without) {
                Some(i) => with[..i].to_vec(),
                None => Vec::new(),
            },
        )
    }

    /// The ids a request runs: plain `encode(text)` (with the tokenizer's
    /// own special tokens), or the chat template rendered then encoded
    /// without adding special tokens a second time.
    pub fn encode_prompt(&self, text: &str, apply_chat_template: bool) -> Result<Vec<u32>> {
        if apply_chat_template {
            let t = self.chat_template.as_ref().ok_or_else(|| {
                EngineError::InvalidRequest(
                    "this model's tokenizer has no chat template; run without apply_chat_template"
                        .into(),
                )
            })?;
            let prompt = t.render_user(text, &self.bos_token, &self.eos_token)?;
            self.encode(&prompt, false)
        } else {
            self.encode(text, true)
        }
    }

    /// A sequence's text as `tokenizer.decode(ids, skip_special_tokens=True)`
    /// gives it (clean-up applied when configured): what a model wrote.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let s = self.tokenizer.decode(ids, true)?;
        Ok(if self.clean_up_spaces {
            clean_up_tokenization(&s)
        } else {
            s
        })
    }

    /// `decode([id])`: special tokens kept, clean-up applied when configured.
    /// Cached, since the same ids recur across every lens row.
    pub fn decode_one(&self, id: u32) -> Result<String> {
        if let Some(s) = self.decoded.lock().expect("decode cache poisoned").get(&id) {
            return Ok(s.clone());
        }
        let mut s = self.tokenizer.decode(&[id], false)?;
        if self.clean_up_spaces {
            s = clean_up_tokenization(&s);
        }
        self.decoded
            .lock()
            .expect("decode cache poisoned")
            .insert(id, s.clone());
        Ok(s)
    }
}

/// transformers' `clean_up_tokenization`.
fn clean_up_tokenization(s: &str) -> String {
    s.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    #[test]
    fn renders_chatml_like_transformers() {
        let t = ChatTemplate::new(CHATML).unwrap();
        assert_eq!(
            t.render_user("Hello there", "<s>", "</s>").unwrap(),
            "<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn python_methods_and_raise_exception_work() {
        let src = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('only user') }}{% endif %}\
                   {{ bos_token }}{{ messages[0]['content'].strip().upper() }}{% for m in messages[::-1] %}!{% endfor %}";
        let t = ChatTemplate::new(src).unwrap();
        assert_eq!(t.render_user("  hi ", "<s>", "").unwrap(), "<s>HI!");
        let t =
            ChatTemplate::new("{{ raise_exception('nope: ' + messages[0]['content']) }}").unwrap();
        let e = t.render_user("x", "", "").unwrap_err().to_string();
        assert!(e.contains("nope: x"), "{e}");
    }

    #[test]
    fn trim_and_lstrip_blocks_match_jinja2() {
        let src = "{% for m in messages %}\n    {{ m['content'] }}\n{% endfor %}";
        let t = ChatTemplate::new(src).unwrap();
        assert_eq!(t.render_user("a", "", "").unwrap(), "    a\n");
    }

    #[test]
    fn strftime_formats_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
        let s = strftime_now("%d %b %Y");
        assert_eq!(s.len(), 11, "{s}");
    }

    #[test]
    fn template_from_list_prefers_default() {
        let v: Value = serde_json::json!([{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]);
        assert_eq!(template_from_config(Some(&v)).as_deref(), Some("D"));
    }

    #[test]
    fn clean_up_matches_transformers() {
        assert_eq!(clean_up_tokenization(" ,"), ",");
        assert_eq!(clean_up_tokenization("it 's"), "it's");
    }
}
