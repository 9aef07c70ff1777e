//! Corpora the lens is measured or fitted on: a text of one document per
//! line, tokenized as a run's text is (BOS where the tokenizer adds one),
//! or documents the model writes itself (temperature 1, from BOS or its
//! eos token), each cut to `max_tokens` ids.

use crate::error::Result;
use crate::load::LoadedModel;
use crate::watch::Watch;

use super::decode::sample_corpus;
use super::Count;

/// Where a corpus comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Corpus {
    /// One document per line; blank lines are skipped.
    Text(String),
    /// This many documents sampled from the model, seeded.
    Sample { documents: usize, seed: u64 },
}

/// A corpus checked against a model: a text's documents tokenized, or how
/// many to sample.
#[derive(Debug, Clone, PartialEq)]
pub struct CorpusSpec {
    source: Source,
    /// Each document's first ids.
    pub max_tokens: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Source {
    Ids(Vec<Vec<u32>>),
    Sample { documents: usize, seed: u64 },
}

/// A corpus file's documents: one per line, line endings stripped, blank
/// lines skipped.
pub fn documents(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// The ids of each document as a run's text is encoded (BOS where the
/// tokenizer adds one), cut to `max_tokens`; documents with none are left
/// out.
pub fn corpus_ids(
    model: &LoadedModel,
    docs: &[String],
    max_tokens: usize,
) -> Result<Vec<Vec<u32>>> {
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        let mut ids = model.tokenizer.encode(doc, true)?;
        ids.truncate(max_tokens);
        if !ids.is_empty() {
            out.push(ids);
        }
    }
    Ok(out)
}

impl CorpusSpec {
    /// Check `corpus` against `model`: a text is tokenized (and refused
    /// when it has no document), a sample needs at least one document.
    pub fn check(model: &LoadedModel, corpus: &Corpus, max_tokens: usize) -> Result<Self> {
        if max_tokens == 0 {
            return Err(crate::invalid!(
                "max_tokens is 0: each document needs at least 1 token"
            ));
        }
        let source = match corpus {
            Corpus::Text(text) => {
                let docs = documents(text);
                let ids = corpus_ids(model, &docs, max_tokens)?;
                if ids.is_empty() {
                    return Err(crate::invalid!(
                        "the corpus has no text: give one document per line"
                    ));
                }
                Source::Ids(ids)
            }
            Corpus::Sample { documents: 0, .. } => {
                return Err(crate::invalid!(
                    "sample: 0 documents; a sampled corpus needs at least 1"
                ))
            }
            &Corpus::Sample { documents, seed } => Source::Sample { documents, seed },
        };
        Ok(CorpusSpec { source, max_tokens })
    }

    /// A corpus of token ids already made.
    pub fn of_ids(ids: Vec<Vec<u32>>, max_tokens: usize) -> Self {
        CorpusSpec {
            source: Source::Ids(ids),
            max_tokens,
        }
    }

    pub fn documents(&self) -> usize {
        match &self.source {
            Source::Ids(ids) => ids.len(),
            Source::Sample { documents, .. } => *documents,
        }
    }

    /// Each document's length in ids, when they are known before the run
    /// (a text's; a sample's are written when it runs).
    pub fn lengths(&self) -> Option<Vec<usize>> {
        match &self.source {
            Source::Ids(ids) => Some(ids.iter().map(Vec::len).collect()),
            Source::Sample { .. } => None,
        }
    }

    /// The seed, when the documents are sampled.
    pub fn sample_seed(&self) -> Option<u64> {
        match self.source {
            Source::Ids(_) => None,
            Source::Sample { seed, .. } => Some(seed),
        }
    }

    /// Its documents and, sampled, the tokens written: what a server bounds.
    pub fn counts(&self) -> Vec<(Count, usize)> {
        let mut counts = vec![(Count::Documents, self.documents())];
        if let Source::Sample { documents, .. } = self.source {
            let tokens = documents.saturating_mul(self.max_tokens);
            counts.push((Count::SampledTokens, tokens));
        }
        counts
    }

    /// The documents' ids: as tokenized, or sampled now (`watch` hears
    /// `Stage::Sample`: tokens written of all).
    pub fn ids(self, model: &LoadedModel, watch: &dyn Watch) -> Result<Vec<Vec<u32>>> {
        match self.source {
            Source::Ids(ids) => Ok(ids),
            Source::Sample { documents, seed } => {
                sample_corpus(model, documents, self.max_tokens, seed, watch)
            }
        }
    }
}
