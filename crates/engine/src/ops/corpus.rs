//! Corpora the lens is measured or fitted on: a text of one document per
//! line, tokenized as a run's text is (BOS where the tokenizer adds one),
//! or documents the model writes itself (temperature 1, from BOS or its
//! eos token), each cut to `max_tokens` ids; and their clean runs, made
//! in batches of documents of one length.

use std::ops::Range;

use crate::capture::Capture;
use crate::error::Result;
use crate::hooks::InterventionPlan;
use crate::load::LoadedModel;
use crate::model::ForwardOptions;
use crate::watch::{check, Quiet, Watch};

use super::decode::sample_corpus;
use super::run::sequence_bytes;
use super::{Count, MAX_BATCH_BYTES};

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

/// The bytes a batch of documents of at most `max_tokens` ids holds, at
/// most: what [`batches`] lets in, for the memory an operation lists.
pub(crate) fn batch_bytes(
    model: &LoadedModel,
    max_tokens: usize,
    documents: usize,
    max_batch: Option<usize>,
) -> u64 {
    let one = sequence_bytes(model, max_tokens);
    let fit = (MAX_BATCH_BYTES / one.max(1)).max(1);
    let docs = fit
        .min(documents.max(1) as u64)
        .min(max_batch.unwrap_or(usize::MAX).max(1) as u64);
    docs * one
}

/// `corpus` cut into batches of consecutive documents, each holding at most
/// [`MAX_BATCH_BYTES`] (or one document, however long) and
/// `max_batch` documents (`Some(1)`: one by one). Consecutive, so that
/// what is summed over documents is summed in their order, as one by one.
pub(crate) fn batches(
    model: &LoadedModel,
    corpus: &[Vec<u32>],
    max_batch: Option<usize>,
) -> Vec<Range<usize>> {
    let most = max_batch.unwrap_or(usize::MAX).max(1);
    let mut out: Vec<Range<usize>> = Vec::new();
    let mut bytes = 0;
    for (d, ids) in corpus.iter().enumerate() {
        let add = sequence_bytes(model, ids.len());
        match out.last_mut() {
            Some(b) if b.len() < most && bytes + add <= MAX_BATCH_BYTES => {
                b.end = d + 1;
                bytes += add;
            }
            _ => {
                out.push(d..d + 1);
                bytes = add;
            }
        }
    }
    out
}

/// `run` on each group of the documents `docs` of `corpus` that have one
/// length (the documents one batched pass carries: their indices, in
/// document order), one result per document of the group; the results in
/// document order.
pub(crate) fn by_length<T>(
    corpus: &[Vec<u32>],
    docs: Range<usize>,
    mut run: impl FnMut(&[usize]) -> Result<Vec<T>>,
) -> Result<Vec<T>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for d in docs.clone() {
        let t = corpus[d].len();
        match groups.iter_mut().find(|g| corpus[g[0]].len() == t) {
            Some(g) => g.push(d),
            None => groups.push(vec![d]),
        }
    }
    let mut out: Vec<Option<T>> = (0..docs.len()).map(|_| None).collect();
    for group in groups {
        let results = run(&group)?;
        assert_eq!(results.len(), group.len(), "one result per document");
        for (&d, r) in group.iter().zip(results) {
            out[d - docs.start] = Some(r);
        }
    }
    Ok(out
        .into_iter()
        .map(|r| r.expect("every document in a group"))
        .collect())
}

/// The clean runs of `corpus[docs]` (no intervention, no patterns kept):
/// each document's capture, its states `[T, D]`. The documents of one
/// length go through the model together
/// ([`forward_batch`](crate::model::Transformer::forward_batch)), each
/// one's states a view of the batch's; a document alone takes the plain
/// run. `watch` may stop them between layers.
pub(crate) fn clean_runs(
    model: &LoadedModel,
    corpus: &[Vec<u32>],
    docs: Range<usize>,
    watch: &dyn Watch,
) -> Result<Vec<Capture>> {
    let opts = ForwardOptions {
        keep_patterns: false,
        watch: &Quiet(watch),
    };
    by_length(corpus, docs, |group| {
        check(watch)?;
        if let [d] = group[..] {
            let plan = InterventionPlan::default();
            return Ok(vec![model
                .model
                .forward_with(&corpus[d], &plan, None, &opts)?]);
        }
        let ids: Vec<&[u32]> = group.iter().map(|&d| corpus[d].as_slice()).collect();
        let batch = model.model.forward_batch(&ids, &opts)?;
        group
            .iter()
            .enumerate()
            .map(|(i, &d)| batch.item(i, corpus[d].len()))
            .collect()
    })
}
